// softroce cmtime: rdma-core's librdmacm/examples/cmtime.c over softroce's rdma_cm — how long each
// step of connection management takes for -c connections made at once. The client creates -c IDs,
// (binds them,) resolves every address, then every route, creates every QP, connects them all,
// disconnects them all and destroys them, each step started for all before any is awaited, and
// prints cmtime's table (total ms, the slowest and the fastest connection, µs per connection). The
// server accepts every request and tears each connection down when its peer disconnects; like
// cmtime's it never ends by itself (--timeout stops it, exit 0, with a count on stderr).
import { type Device } from "../core/verbs/index.js";
import { wildcardFor } from "../core/net/index.js";
import { PortSpace, RdmaCmEventType as E, eventStr, type EventChannel, type RdmaCmEvent, type RdmaCmId } from "../core/cm/index.js";
import { formatFlags, parseArgs, type FlagSpec } from "./args.js";
import { optionsCommand, type Io } from "./command.js";
import { cmatoseAddresses, runCmatoseTest, type CmatoseTest } from "./cm-tool.js";

const STEPS = ["create id", "bind addr", "resolve addr", "resolve route", "create qp", "connect", "disconnect", "destroy"] as const;
const S = { CREATE_ID: 0, BIND: 1, RESOLVE_ADDR: 2, RESOLVE_ROUTE: 3, CREATE_QP: 4, CONNECT: 5, DISCONNECT: 6, DESTROY: 7 } as const;

const FLAGS: FlagSpec[] = [
  { name: "server-address", short: "s", type: "string", valueName: "addr", help: "server address: run as the client and connect to it (without: run as the server)" },
  { name: "bind-address", short: "b", type: "string", valueName: "addr", help: "bind address" },
  { name: "connections", short: "c", type: "int", min: 1, max: 4096, default: 100, valueName: "n", help: "connections (the client's; a server takes up to 4096 at once)" },
  { name: "port", short: "p", type: "int", min: 0, max: 65535, default: 7471, valueName: "port", help: "port number" },
  { name: "retries", short: "r", type: "int", min: 0, max: 7, default: 2, valueName: "n", help: "retries of an address or route resolution, and the connection's retry count" },
  { name: "timeout-ms", short: "t", type: "int", min: 1, max: 3_600_000, default: 2000, valueName: "ms", help: "address and route resolution timeout" },
  { name: "address", type: "string", valueName: "addr", help: "softroce: local IPv4/IPv6 address of the device (default: -b, else 127.0.0.1 / ::1)" },
  { name: "udp-port", type: "int", min: 1, max: 65535, default: 4791, valueName: "n", help: "softroce: UDP port of the device and of its peers" },
  { name: "timeout", type: "int", min: 0, max: 86400, default: 0, valueName: "sec", help: "softroce: the client gives up after <sec> seconds; the server stops serving (0: never, as cmtime)" },
  { name: "serve", type: "int", min: 1, max: 1 << 20, valueName: "n", help: "softroce: the server stops once it has torn down <n> connections (cmtime's serves until killed)" },
  { name: "help", short: "h", type: "boolean", help: "show this help" },
];

const HELP = `usage: softroce cmtime [-s server_address] [-b bind_address] [-c connections] [-p port_number]
                       [-r retries] [-t timeout_ms]

rdma-core's cmtime over softroce's rdma_cm: -c RC connections made, broken and destroyed at once,
step by step, with CM MADs on QP1; the client prints how long each step took.

${formatFlags(FLAGS)}
`;

export interface CmtimeOptions {
  dst?: string;
  bind?: string;
  connections: number;
  port: number;
  retries: number;
  resolveTimeoutMs: number;
  address: string;
  udpPort: number;
  timeoutMs: number;
  /** the server: stop after this many connections were torn down */
  serve?: number;
}

export function cmtimeOptions(argv: string[]): CmtimeOptions | "help" {
  const { flags } = parseArgs(argv, FLAGS);
  if (flags.help) return "help";
  const { dst, bind, address } = cmatoseAddresses(flags);
  return {
    dst, bind, address, connections: flags.connections as number, port: flags.port as number, retries: flags.retries as number,
    resolveTimeoutMs: flags["timeout-ms"] as number, udpPort: flags["udp-port"] as number, timeoutMs: (flags.timeout as number) * 1000,
    serve: flags.serve as number | undefined,
  };
}

/** A connection's times per step: [start, end] in ms (0: not taken). */
interface Node {
  id?: RdmaCmId;
  times: [number, number][];
  error: boolean;
  retries: number;
}

const QP_INIT = { cap: { maxSendWr: 1, maxRecvWr: 1, maxSendSge: 1, maxRecvSge: 1 } };

class Cmtime implements CmatoseTest {
  readonly nodes: Node[];
  /** the whole step, for all connections */
  readonly times: [number, number][] = STEPS.map(() => [0, 0]);
  readonly started = STEPS.map(() => 0);
  readonly completed = STEPS.map(() => 0);
  private wake: (() => void) | undefined;
  private stopped = false;
  /** the server's connections established, and torn down */
  served = 0;
  tornDown = 0;
  private allServed: (() => void) | undefined;

  constructor(readonly o: CmtimeOptions, readonly io: Io, readonly dev: Device, readonly ch: EventChannel) {
    this.nodes = Array.from({ length: o.connections }, () => ({ times: STEPS.map(() => [0, 0] as [number, number]), error: false, retries: 0 }));
  }

  say(s: string): void {
    this.io.out(`${s}\n`);
  }

  private end(n: Node, step: number): void {
    n.times[step]![1] = performance.now();
    this.completed[step]!++;
    if (this.completed[step] === this.started[step]) this.wake?.();
  }

  /** cma_handler */
  handle(ev: RdmaCmEvent): void {
    const n = ev.id.context as Node | undefined;
    switch (ev.event) {
      case E.ADDR_RESOLVED:
        this.end(n!, S.RESOLVE_ADDR);
        break;
      case E.ROUTE_RESOLVED:
        this.end(n!, S.RESOLVE_ROUTE);
        break;
      case E.CONNECT_REQUEST:
        this.accept(ev.id);
        break;
      case E.ESTABLISHED:
        if (n) this.end(n, S.CONNECT);
        else this.served++;
        break;
      case E.ADDR_ERROR:
        if (n!.retries-- > 0 && this.retry(() => n!.id!.resolveAddr(this.src(), this.dstAddr(), this.o.resolveTimeoutMs))) break;
        this.say(`RDMA_CM_EVENT_ADDR_ERROR, error: ${ev.status}`);
        this.end(n!, S.RESOLVE_ADDR);
        n!.error = true;
        break;
      case E.ROUTE_ERROR:
        if (n!.retries-- > 0 && this.retry(() => n!.id!.resolveRoute(this.o.resolveTimeoutMs))) break;
        this.say(`RDMA_CM_EVENT_ROUTE_ERROR, error: ${ev.status}`);
        this.end(n!, S.RESOLVE_ROUTE);
        n!.error = true;
        break;
      case E.CONNECT_ERROR:
      case E.UNREACHABLE:
      case E.REJECTED:
        this.say(`event: ${eventStr(ev.event)}, error: ${ev.status}`);
        if (n) {
          this.end(n, S.CONNECT);
          n.error = true;
        }
        break;
      case E.DISCONNECTED:
        if (n) this.end(n, S.DISCONNECT);
        else this.teardown(ev.id);
        break;
      default:
        break;
    }
  }

  private retry(fn: () => void): boolean {
    try {
      fn();
      return true;
    } catch {
      return false;
    }
  }

  /** __req_handler: a QP (rdma_cm's PD and CQs), then accept; on failure reject and destroy. */
  private accept(id: RdmaCmId): void {
    try {
      id.createQp(undefined, QP_INIT);
    } catch (e) {
      this.say(`failure creating qp: ${(e as Error).message}`);
      this.say("failing connection request");
      id.reject();
      id.destroy();
      return;
    }
    try {
      id.accept();
    } catch (e) {
      this.say(`failure accepting: ${(e as Error).message}`);
      id.destroyQp();
      this.say("failing connection request");
      id.reject();
      id.destroy();
    }
  }

  /** disc_handler_thread: the server's side of a connection its client disconnected. */
  private teardown(id: RdmaCmId): void {
    try {
      id.disconnect();
    } catch {
      /* the DREP went with the event */
    }
    id.destroyQp();
    id.destroy();
    if (++this.tornDown === this.o.serve) this.allServed?.();
  }

  private src() {
    return this.o.bind === undefined ? undefined : { address: this.o.bind, port: 0 };
  }

  private dstAddr() {
    return { address: this.o.dst!, port: this.o.port };
  }

  /** process_events, until stopped */
  private async pump(): Promise<void> {
    while (!this.stopped) {
      const ev = await this.ch.getCmEvent();
      this.handle(ev);
      ev.ack();
    }
  }

  /** Runs `fn` for every node without an error, timing each (its end taken now unless `async`), the whole step too. */
  private async step(step: number, line: string, fn: (n: Node) => void, async: boolean): Promise<void> {
    this.say(line);
    this.times[step]![0] = performance.now();
    for (const n of this.nodes) {
      if (n.error) continue;
      n.times[step]![0] = performance.now();
      try {
        fn(n);
      } catch (e) {
        this.say(`failure ${line}: ${(e as Error).message}`);
        n.error = true;
        continue;
      }
      if (async) this.started[step]!++;
      else n.times[step]![1] = performance.now();
    }
    // "while (started != completed) sched_yield()"
    if (async) while (this.started[step] !== this.completed[step]) await new Promise<void>((r) => (this.wake = r));
    this.times[step]![1] = performance.now();
  }

  run(): Promise<number> {
    const pump = this.pump();
    void pump.catch(() => undefined);
    return this.o.dst !== undefined ? this.client() : this.server();
  }

  async client(): Promise<number> {
    const o = this.o;
    await this.step(S.CREATE_ID, "creating id", (n) => (n.id = this.ch.createId(PortSpace.TCP, n)), false);
    if (o.bind !== undefined) await this.step(S.BIND, "binding source address", (n) => n.id!.bindAddr(this.src()!), false);
    await this.step(S.RESOLVE_ADDR, "resolving address", (n) => {
      n.retries = o.retries;
      n.id!.resolveAddr(this.src(), this.dstAddr(), o.resolveTimeoutMs);
    }, true);
    await this.step(S.RESOLVE_ROUTE, "resolving route", (n) => {
      n.retries = o.retries;
      n.id!.resolveRoute(o.resolveTimeoutMs);
    }, true);
    await this.step(S.CREATE_QP, "creating qp", (n) => n.id!.createQp(undefined, QP_INIT), false);
    await this.step(S.CONNECT, "connecting", (n) => n.id!.connect({ responderResources: 1, initiatorDepth: 1, retryCount: o.retries }), true);
    await this.step(S.DISCONNECT, "disconnecting", (n) => {
      n.id!.disconnect();
      n.id!.destroyQp();
    }, true);
    this.stopped = true;
    return 0;
  }

  async server(): Promise<number> {
    const listen = this.ch.createId(PortSpace.TCP, undefined);
    try {
      listen.bindAddr({ address: this.o.bind ?? wildcardFor(this.o.address), port: this.o.port });
      listen.listen(0);
    } catch (e) {
      this.say(`bind address failed: ${(e as Error).message}`);
      return -1;
    }
    // cmtime's server serves until it is killed; --timeout or --serve ends it, exit 0, with a count
    let timer: ReturnType<typeof setTimeout> | undefined;
    await new Promise<void>((resolve) => {
      this.allServed = resolve;
      if (this.o.timeoutMs > 0) timer = setTimeout(resolve, this.o.timeoutMs);
    });
    clearTimeout(timer);
    this.stopped = true;
    listen.destroy();
    return 0;
  }

  /** cleanup_nodes, then show_perf */
  destroyNodes(): void {
    if (this.o.dst === undefined) {
      this.io.err(`softroce cmtime: served ${this.served} connections, tore down ${this.tornDown}\n`);
      return;
    }
    this.say("destroying id");
    this.times[S.DESTROY]![0] = performance.now();
    for (const n of this.nodes) {
      n.times[S.DESTROY]![0] = performance.now();
      try {
        n.id?.destroy();
      } catch {
        /* going away anyway */
      }
      n.times[S.DESTROY]![1] = performance.now();
    }
    this.times[S.DESTROY]![1] = performance.now();
    this.showPerf();
  }

  private showPerf(): void {
    const f = (v: number) => v.toFixed(2).padStart(11);
    this.say("step              total ms     max ms     min us  us / conn");
    STEPS.forEach((name, i) => {
      if (i === S.BIND && this.o.bind === undefined) return;
      let max = 0;
      let min = 999999999;
      for (const n of this.nodes) {
        const [a, b] = n.times[i]!;
        if (!a || !b) continue;
        const us = (b - a) * 1000;
        max = Math.max(max, us);
        min = Math.min(min, us);
      }
      const us = (this.times[i]![1] - this.times[i]![0]) * 1000;
      this.say(`${name.padEnd(13)}: ${f(us / 1000)}${f(max / 1000)}${f(min)}${f(us / this.o.connections)}`);
    });
  }
}

/** The most connections a run makes at once (-c), and what a server is sized for (it does not know the client's -c). */
const MAX_CONNECTIONS = 4096;

/** A device with room for `n` connections: a QP and rdma_cm's two CQs each (QP1's besides), their rings. */
function deviceLimits(n: number): { maxQp: number; maxCq: number; ringArenaBytes: number } {
  return { maxQp: n + 8, maxCq: 2 * n + 8, ringArenaBytes: Math.max(4 << 20, n * (16 << 10)) };
}

export function runCmtime(o: CmtimeOptions, io: Io): Promise<number> {
  // the server's --timeout is the end of its service, not a run given up: it waits for it itself
  const timeoutMs = o.dst === undefined ? 0 : o.timeoutMs;
  return runCmatoseTest("cmtime", { ...o, timeoutMs, mrBytes: 0, limits: deviceLimits(o.dst === undefined ? MAX_CONNECTIONS : o.connections), lines: false }, io, (dev, ch, run) => new Cmtime(o, run, dev, ch));
}

export const cmtimeCommand = optionsCommand("cmtime", "rdma-core's cmtime over rdma_cm: -c RC connections made and broken at once, each step timed; interoperable with Linux's", HELP, cmtimeOptions, runCmtime);
