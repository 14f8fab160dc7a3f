// What the rdma_cm tools (rping, ucmatose, udaddy, perf -R) set up alike: the device's QP1,
// an rdma_cm on it whose timers do not keep the process alive once the tool is done,
// one event channel; the --timeout that gives up on a run that does not end; and for
// cmatose's family (ucmatose, udaddy) the addresses, the event loop and the run's frame.
import { isIPv4, isIPv6 } from "node:net";
import { openDevice } from "../node/index.js";
import type { Device } from "../core/verbs/index.js";
import { realClock, type Clock } from "../core/link/index.js";
import { Qp1Transport, eventStr, openRdmaCm, PortSpace, RdmaCmEventType as E, type EventChannel, type RdmaCm, type RdmaCmEvent, type RdmaCmId } from "../core/cm/index.js";
import { UsageError, type FlagSpec, type FlagValue } from "./args.js";
import type { Io } from "./command.js";

/** realClock whose timers are unref'd: a CM's retry or timewait timer never holds the process. */
export const cliClock: Clock = {
  ...realClock,
  setTimer(atUs: number, fn: () => void) {
    const t = realClock.setTimer(atUs, fn) as { unref?: () => void };
    t.unref?.();
    return t;
  },
};

export interface ToolCm {
  mad: Qp1Transport;
  rcm: RdmaCm;
  ch: EventChannel;
}

/** The device's QP1, an rdma_cm over it (peers' devices on `udpPort`) and an event channel. */
export function openToolCm(dev: Device, udpPort: number): ToolCm {
  const mad = Qp1Transport.of(dev);
  const rcm = openRdmaCm({ devices: [{ device: dev, mad }], clock: cliClock, peerUdpPort: () => udpPort });
  return { mad, rcm, ch: rcm.createEventChannel() };
}

/**
 * A promise that resolves to `code` after `timeoutMs` (never when 0), saying on stderr that `tool` gave up;
 * `cancel` stops it. Race it against the run. `run` is the output to hand the run: it says nothing once
 * the run is given up or `silence` is called (what a receive pending as its connection goes says then is
 * not news).
 */
export function giveUpAfter<T>(
  timeoutMs: number,
  tool: string,
  io: Io,
  code: T,
): { expired: Promise<T>; cancel: () => void; run: Io; silence: () => void } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let over = false;
  const expired = new Promise<T>((resolve) => {
    if (timeoutMs > 0) {
      timer = setTimeout(() => {
        io.err(`softroce ${tool}: no end after ${timeoutMs / 1000} s, giving up\n`);
        over = true;
        resolve(code);
      }, timeoutMs);
    }
  });
  const run: Io = { out: (s) => over || io.out(s), err: (s) => over || io.err(s) };
  return { expired, cancel: () => timer !== undefined && clearTimeout(timer), run, silence: () => (over = true) };
}

/** a numeric IPv4 or IPv6 address */
export const isIp = (a: string): boolean => isIPv4(a) || isIPv6(a);

/** udaddy's and mckey's -p: a UD port space as a number (strtol base 0), UDP (0x111) or IPoIB (0x2). */
export function udPortSpaceNumber(text: string): number {
  const n = /^(0x[0-9a-f]+|[0-9]+)$/i.test(text) ? Number(text) : NaN;
  if (n !== PortSpace.UDP && n !== PortSpace.IPOIB) {
    throw new UsageError(`-p wants a port space, 0x${PortSpace.UDP.toString(16)} (UDP) or 0x${PortSpace.IPOIB.toString(16)} (IPoIB), got '${text}'`);
  }
  return n;
}

/** A cmatose-family test's options (ucmatose's and udaddy's are the same set). */
export interface CmatoseOptions {
  dst?: string;
  bind?: string;
  ps: number;
  connections: number;
  count: number;
  size: number;
  port: number;
  address: string;
  udpPort: number;
  timeoutMs: number;
}

/**
 * The flags cmatose and udaddy share (-s -b -f -c -C -S, softroce's --address --udp-port --timeout, -h)
 * around each tool's own: its port space and port flags.
 */
export function cmatoseFlags(tool: string, own: FlagSpec[]): FlagSpec[] {
  return [
    { name: "server-address", short: "s", type: "string", valueName: "addr", help: "server address: run as the client and connect to it (without: run as the server)" },
    { name: "bind-address", short: "b", type: "string", valueName: "addr", help: "bind address" },
    { name: "address-format", short: "f", type: "string", valueName: "fmt", choices: ["ip", "ipv6", "name"], help: "address format (numeric addresses only)" },
    { name: "connections", short: "c", type: "int", min: 1, max: 64, default: 1, valueName: "n", help: "connections" },
    { name: "message-count", short: "C", type: "int", min: 0, max: 4096, default: 10, valueName: "n", help: "messages each side sends on each connection" },
    { name: "message-size", short: "S", type: "int", min: 0, max: 1 << 20, default: 100, valueName: "bytes", help: "message size" },
    ...own,
    { name: "address", type: "string", valueName: "addr", help: "softroce: local IPv4/IPv6 address of the device (default: -b, else 127.0.0.1 / ::1)" },
    { name: "udp-port", type: "int", min: 1, max: 65535, default: 4791, valueName: "n", help: "softroce: UDP port of the device and of its peers" },
    { name: "timeout", type: "int", min: 0, max: 86400, default: 0, valueName: "sec", help: `softroce: give up after <sec> seconds (0: never, as ${tool})` },
    { name: "help", short: "h", type: "boolean", help: "show this help" },
  ];
}

/**
 * The options from flags parsed with cmatoseFlags, given the tool's port space; no message size means no
 * messages (create_message).
 */
export function cmatoseOptions(flags: Record<string, FlagValue | undefined>, ps: number): CmatoseOptions {
  const { dst, bind, address } = cmatoseAddresses(flags);
  const size = flags["message-size"] as number;
  return {
    dst, bind, ps, connections: flags.connections as number, count: size ? (flags["message-count"] as number) : 0, size,
    port: flags.port as number, address, udpPort: flags["udp-port"] as number, timeoutMs: (flags.timeout as number) * 1000,
  };
}

/** cmatose's family: -s (the server, making this the client), -b (bind), and the device's own address. */
export interface CmatoseAddresses {
  dst?: string;
  bind?: string;
  /** the device's address: --address, else a bind address that is not a wildcard, else loopback of the family */
  address: string;
}

/** -s, -b and --address from parsed flags (numeric addresses only; a name is a usage error). */
export function cmatoseAddresses(flags: Record<string, FlagValue | undefined>): CmatoseAddresses {
  const dst = flags["server-address"] as string | undefined;
  const bind = flags["bind-address"] as string | undefined;
  if (dst !== undefined && !isIp(dst)) throw new UsageError(`-s wants a numeric IPv4 or IPv6 address, got '${dst}'`);
  if (bind !== undefined && !isIp(bind)) throw new UsageError(`-b wants a numeric IPv4 or IPv6 address, got '${bind}'`);
  const v6 = isIPv6(bind ?? dst ?? "0.0.0.0");
  const wild = bind === "0.0.0.0" || bind === "::";
  const address = (flags.address as string | undefined) ?? (bind && !wild ? bind : v6 ? "::1" : "127.0.0.1");
  if (!isIp(address)) throw new UsageError(`--address wants a local IPv4 or IPv6 address, got '${address}'`);
  return { dst, bind, address };
}

/** What an rsockets tool (rstream, riostream, udpong) knows of its peer and its device: -s, -b, -p, and softroce's --address, --udp-port, --timeout. */
export interface RsocketToolOptions {
  server?: string;
  bind?: string;
  address: string;
  port: number;
  udpPort: number;
  timeoutMs: number;
}

/** RsocketToolOptions from parsed flags: -s and -b numeric (cmatoseAddresses) and of one family. */
export function rsocketToolOptions(f: Record<string, FlagValue | undefined>): RsocketToolOptions {
  const { dst: server, bind, address } = cmatoseAddresses(f);
  if (server !== undefined && bind !== undefined && isIPv6(server) !== isIPv6(bind)) throw new UsageError(`-s ${server} and -b ${bind} are of different families`);
  return { server, bind, address, port: f.port as number, udpPort: f["udp-port"] as number, timeoutMs: (f.timeout as number) * 1000 };
}

/**
 * A -T option as the rsockets examples read it (a letter, or a word by its start, any case); whether it
 * is one of the modes that change nothing on softroce's wire: a|async, b|blocking, n|nonblocking.
 */
export function testOptionWord(t: string): { o: string; mode: boolean } {
  const o = t.length === 1 ? t : t.toLowerCase();
  return { o, mode: ["a", "b", "n"].includes(o) || ["async", "block", "nonblock"].some((w) => o.startsWith(w)) };
}

/** A cmatose-family test on one device: `run` is its client or server, `destroyNodes` its destroy_nodes. */
export interface CmatoseTest {
  run(): Promise<number>;
  destroyNodes(): void;
  /** after destroyNodes, with the run's status and the tool's own output (rdma_server's and rdma_client's "end N" line) */
  finish?(ret: number, io: Io): void;
}

/** A connection of a cmatose-family test (struct cmatest_node's common part). */
export interface CmatoseNode {
  id: RdmaCmId | undefined;
  connected: boolean;
}

/**
 * What the cma_handler and connect_events of cmatose, udaddy and mckey do alike: ADDR_RESOLVED resolves
 * the route (mckey: joins instead); ROUTE_RESOLVED (the client) and CONNECT_REQUEST (the server, for the
 * next of `-c` nodes; one more is rejected) set a node up, a failure costing one connect; an error event
 * is said and ends the loop with its status. The rest is each tool's (`other`).
 */
export abstract class CmatoseFamily<N extends CmatoseNode> implements CmatoseTest {
  connIndex = 0;
  connectsLeft: number;

  constructor(readonly tool: string, readonly io: Io, readonly ch: EventChannel, readonly nodes: N[]) {
    this.connectsLeft = nodes.length;
  }

  say(s: string): void {
    this.io.out(`${s}\n`);
  }

  /** Runs `fn`; if it throws, says "<tool>: <what>: <error>" and returns -1 (a C tool's perror and return). */
  protected attempt(what: string, fn: () => void): number {
    try {
      fn();
      return 0;
    } catch (e) {
      this.io.out(`${this.tool}: ${what}: ${(e as Error).message}\n`);
      return -1;
    }
  }

  /** addr_handler: resolve the route; 0 or the error. */
  protected addrResolved(_n: N, id: RdmaCmId): number {
    return this.attempt("resolve route failed", () => id.resolveRoute(2000));
  }
  /** route_handler: set the node up and connect; 0 or the error. */
  protected routeResolved(_n: N, _id: RdmaCmId): number {
    return 0;
  }
  /** connect_handler after the node is taken: set it up and accept; 0 or the error (the request is then rejected). */
  protected connectRequest(_n: N, _id: RdmaCmId): number {
    return 0;
  }
  /** Every other event. */
  protected abstract other(ev: RdmaCmEvent): number;

  /** cma_handler: 0, or a status that ends the event loop. */
  handle(ev: RdmaCmEvent): number {
    const id = ev.id;
    switch (ev.event) {
      case E.ADDR_RESOLVED: {
        const ret = this.addrResolved(id.context as N, id);
        if (ret) this.connectsLeft--;
        return ret;
      }
      case E.ROUTE_RESOLVED: {
        const ret = this.routeResolved(id.context as N, id);
        if (ret) this.connectsLeft--;
        return ret;
      }
      case E.CONNECT_REQUEST: {
        if (this.connIndex === this.nodes.length) {
          this.say(`${this.tool}: failing connection request`);
          id.reject();
          return -12;
        }
        const n = this.nodes[this.connIndex++]!;
        n.id = id;
        id.context = n;
        const ret = this.connectRequest(n, id);
        if (ret) {
          n.id = undefined;
          this.connectsLeft--;
          this.say(`${this.tool}: failing connection request`);
          id.reject();
        }
        return ret;
      }
      case E.ADDR_ERROR:
      case E.ROUTE_ERROR:
      case E.CONNECT_ERROR:
      case E.UNREACHABLE:
      case E.REJECTED:
      case E.MULTICAST_ERROR:
        this.say(`${this.tool}: event: ${eventStr(ev.event)}, error: ${ev.status}`);
        this.connectsLeft--;
        return ev.status;
      default:
        return this.other(ev);
    }
  }

  /** connect_events: handle events until `left()` is 0 or a handler returns non-zero. */
  async events(left: () => number): Promise<number> {
    let ret = 0;
    while (left() && !ret) {
      const ev = await this.ch.getCmEvent();
      ret = this.handle(ev);
      ev.ack();
    }
    return ret;
  }

  /** run_client's start: "<tool>: starting client", "<tool>: connecting", an ID per node resolving `dst`, then the connect events. */
  protected async connectAll(o: { ps: number; bind?: string; dst?: string; port: number }): Promise<number> {
    this.say(`${this.tool}: starting client`);
    this.say(`${this.tool}: connecting`);
    for (const n of this.nodes) {
      n.id = this.ch.createId(o.ps, n);
      n.id.resolveAddr(o.bind ? { address: o.bind, port: 0 } : undefined, { address: o.dst!, port: o.port }, 2000);
    }
    return this.events(() => this.connectsLeft);
  }

  abstract run(): Promise<number>;
  abstract destroyNodes(): void;
}

/**
 * main() of cmatose, udaddy and mckey (and cmtime, without their lines): the device on `address`, its
 * rdma_cm and event channel, the test (given up after `timeoutMs`), then "test complete", the nodes
 * destroyed, "return status N"; exit 0 only for 0. `make` gets the run's output: once the run is given
 * up it says nothing more (what a receive pending then says as its connection goes is not news).
 */
export async function runCmatoseTest(
  tool: string,
  o: { address: string; udpPort: number; timeoutMs: number; mrBytes: number; limits?: { maxQp: number; maxCq: number; ringArenaBytes: number }; lines?: boolean },
  io: Io,
  make: (dev: Device, ch: EventChannel, io: Io) => CmatoseTest,
): Promise<number> {
  let dev: Device;
  try {
    dev = await openDevice({ address: o.address, port: o.udpPort, mrArenaBytes: Math.max(4 << 20, o.mrBytes + (1 << 20)), ringArenaBytes: 4 << 20, ...o.limits });
  } catch (e) {
    io.out(`failed to create event channel: ${(e as Error).message}\n`);
    return 1;
  }
  const { mad, rcm, ch } = openToolCm(dev, o.udpPort);
  const giveUp = giveUpAfter(o.timeoutMs, tool, io, -110);
  const t = make(dev, ch, giveUp.run);
  let ret: number;
  try {
    ret = await Promise.race([t.run(), giveUp.expired]);
  } catch (e) {
    io.err(`softroce ${tool}: ${(e as Error).message}\n`);
    ret = -1;
  }
  giveUp.cancel();
  if (o.lines !== false) io.out("test complete\n");
  await mad.drain();
  t.destroyNodes();
  t.finish?.(ret, io);
  if (o.lines !== false) io.out(`return status ${ret}\n`);
  // as the process's end: an ID the test left (a connection given up mid-handshake) goes with a REJ or DREQ
  rcm.closeChannel(ch);
  await mad.drain();
  dev.close();
  return ret === 0 ? 0 : 1;
}
