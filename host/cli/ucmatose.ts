// softroce ucmatose: rdma-core's librdmacm/examples/cmatose.c over softroce's
// rdma_cm (QP1 on the device). The server listens (port 7471), accepts
// `-c` connections, posts `-C` receives on each, then SENDs `-C` messages of
// `-S` bytes on each, waits for their completions and for the client's
// replies, and disconnects; the client connects, takes the server's messages,
// answers with as many, and waits to be disconnected. Flags, defaults, output
// lines and the exit status are cmatose's.
import { isIPv4, isIPv6 } from "node:net";
import { openDevice } from "../node/index.js";
import { type Device, type CompletionQueue, type MemoryRegion, Access, WrOpcode } from "../core/verbs/index.js";
import { type RdmaCmId, eventStr, RdmaCmEventType as E, type EventChannel, type RdmaCmEvent, PortSpace } from "../core/cm/index.js";
import { formatFlags, parseArgs, type FlagSpec, UsageError } from "./args.js";
import type { Command, Io } from "./command.js";
import { giveUpAfter, openToolCm } from "./cm-tool.js";

export const CMATOSE_PORT = 7471;

const FLAGS: FlagSpec[] = [
  { name: "server-address", short: "s", type: "string", valueName: "addr", help: "server address: run as the client and connect to it (without: run as the server)" },
  { name: "bind-address", short: "b", type: "string", valueName: "addr", help: "bind address" },
  { name: "address-format", short: "f", type: "string", valueName: "fmt", choices: ["ip", "ipv6", "name"], help: "address format (numeric addresses only)" },
  { name: "port-space", short: "P", type: "string", valueName: "ps", choices: ["tcp", "ib"], default: "tcp", help: "port space" },
  { name: "connections", short: "c", type: "int", min: 1, max: 64, default: 1, valueName: "n", help: "connections" },
  { name: "message-count", short: "C", type: "int", min: 0, max: 4096, default: 10, valueName: "n", help: "messages each side sends on each connection" },
  { name: "message-size", short: "S", type: "int", min: 0, max: 1 << 20, default: 100, valueName: "bytes", help: "message size" },
  { name: "port", short: "p", type: "int", min: 0, max: 65535, default: CMATOSE_PORT, valueName: "port", help: "port number" },
  { name: "address", type: "string", valueName: "addr", help: "softroce: local IPv4/IPv6 address of the device (default: -b, else 127.0.0.1 / ::1)" },
  { name: "udp-port", type: "int", min: 1, max: 65535, default: 4791, valueName: "n", help: "softroce: UDP port of the device and of its peers" },
  { name: "timeout", type: "int", min: 0, max: 86400, default: 0, valueName: "sec", help: "softroce: give up after <sec> seconds (0: never, as cmatose)" },
  { name: "help", short: "h", type: "boolean", help: "show this help" },
];

const HELP = `usage: softroce ucmatose [-s server_address] [-b bind_address] [-P tcp|ib] [-c connections]
                         [-C message_count] [-S message_size] [-p port_number]

rdma-core's ucmatose (cmatose) over softroce's rdma_cm: connections made with CM MADs on QP1, then
SENDs each way on every connection. -t (type of service) and -m (migrate) are not supported.

${formatFlags(FLAGS)}
`;

export interface UcmatoseOptions {
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

const isIp = (a: string) => isIPv4(a) || isIPv6(a);

export function ucmatoseOptions(argv: string[]): UcmatoseOptions | "help" {
  if (argv.includes("-t") || argv.includes("-m")) throw new UsageError("-t (type of service) and -m (migrate) are not supported");
  const { flags } = parseArgs(argv, FLAGS);
  if (flags.help) return "help";
  const dst = flags["server-address"] as string | undefined;
  const bind = flags["bind-address"] as string | undefined;
  if (dst !== undefined && !isIp(dst)) throw new UsageError(`-s wants a numeric IPv4 or IPv6 address, got '${dst}'`);
  if (bind !== undefined && !isIp(bind)) throw new UsageError(`-b wants a numeric IPv4 or IPv6 address, got '${bind}'`);
  const v6 = isIPv6(bind ?? dst ?? "0.0.0.0");
  const wild = bind === "0.0.0.0" || bind === "::";
  const address = (flags.address as string | undefined) ?? (bind && !wild ? bind : v6 ? "::1" : "127.0.0.1");
  if (!isIp(address)) throw new UsageError(`--address wants a local IPv4 or IPv6 address, got '${address}'`);
  let size = flags["message-size"] as number;
  let count = flags["message-count"] as number;
  if (!size) count = 0; // create_message: no size, no messages
  if (!count) size = 0;
  return {
    dst, bind, ps: flags["port-space"] === "ib" ? PortSpace.IB : PortSpace.TCP, connections: flags.connections as number,
    count, size, port: flags.port as number, address, udpPort: flags["udp-port"] as number, timeoutMs: (flags.timeout as number) * 1000,
  };
}

interface Node {
  id: RdmaCmId | undefined;
  connected: boolean;
  sendCq?: CompletionQueue;
  recvCq?: CompletionQueue;
  mr?: MemoryRegion;
}

class Cmatose {
  readonly nodes: Node[];
  connIndex = 0;
  connectsLeft: number;
  disconnectsLeft = 0;

  constructor(readonly o: UcmatoseOptions, readonly io: Io, readonly dev: Device, readonly ch: EventChannel) {
    this.nodes = Array.from({ length: o.connections }, () => ({ id: undefined, connected: false }));
    this.connectsLeft = o.connections;
  }

  say(s: string): void {
    this.io.out(`${s}\n`);
  }

  /** init_node: PD, a send and a receive CQ of message_count entries, an RC QP signalling every send, the message MR. */
  initNode(n: Node): void {
    const pd = this.dev.allocPd();
    const cqe = this.o.count || 1;
    n.sendCq = this.dev.createCq(cqe);
    n.recvCq = this.dev.createCq(cqe);
    n.id!.createQp(pd, {
      sendCq: n.sendCq, recvCq: n.recvCq, sqSigAll: true, cap: { maxSendWr: cqe, maxRecvWr: cqe, maxSendSge: 1, maxRecvSge: 1 },
    });
    if (this.o.count) n.mr = pd.regMr(this.o.size, Access.LOCAL_WRITE);
  }

  postRecvs(n: Node): void {
    for (let i = 0; i < this.o.count; i++) n.id!.qp!.postRecv({ wrId: BigInt(i), sgList: [n.mr!.sge(0, this.o.size)] });
  }

  postSends(n: Node): void {
    if (!n.connected || !this.o.count) return;
    for (let i = 0; i < this.o.count; i++) {
      n.id!.qp!.postSend({ wrId: BigInt(i), opcode: WrOpcode.SEND, sendFlags: 0, sgList: [n.mr!.sge(0, this.o.size)] });
    }
  }

  /** cma_handler: 0, or the event's status (which ends the event loop). */
  handle(ev: RdmaCmEvent): number {
    const id = ev.id;
    switch (ev.event) {
      case E.ADDR_RESOLVED:
        try {
          id.resolveRoute(2000);
        } catch (e) {
          this.io.out(`cmatose: resolve route failed: ${(e as Error).message}\n`);
          this.connectsLeft--;
          return -1;
        }
        return 0;
      case E.ROUTE_RESOLVED: {
        const n = id.context as Node;
        try {
          this.initNode(n);
          this.postRecvs(n);
          id.connect({ responderResources: 1, initiatorDepth: 1, retryCount: 5 });
        } catch (e) {
          this.io.out(`cmatose: failure connecting: ${(e as Error).message}\n`);
          this.connectsLeft--;
          return -1;
        }
        return 0;
      }
      case E.CONNECT_REQUEST: {
        if (this.connIndex === this.o.connections) {
          this.say("cmatose: failing connection request");
          id.reject();
          return -12;
        }
        const n = this.nodes[this.connIndex++]!;
        n.id = id;
        id.context = n;
        try {
          this.initNode(n);
          this.postRecvs(n);
          id.accept();
        } catch (e) {
          this.io.out(`cmatose: failure accepting: ${(e as Error).message}\n`);
          n.id = undefined;
          this.connectsLeft--;
          this.say("cmatose: failing connection request");
          id.reject();
          return -1;
        }
        return 0;
      }
      case E.ESTABLISHED:
        (id.context as Node).connected = true;
        this.connectsLeft--;
        this.disconnectsLeft++;
        return 0;
      case E.ADDR_ERROR:
      case E.ROUTE_ERROR:
      case E.CONNECT_ERROR:
      case E.UNREACHABLE:
      case E.REJECTED:
        this.say(`cmatose: event: ${eventStr(ev.event)}, error: ${ev.status}`);
        this.connectsLeft--;
        return ev.status;
      case E.DISCONNECTED:
        try {
          id.disconnect();
        } catch {
          /* already disconnected */
        }
        this.disconnectsLeft--;
        return 0;
      default:
        return 0;
    }
  }

  async events(left: () => number): Promise<number> {
    let ret = 0;
    while (left() && !ret) {
      const ev = await this.ch.getCmEvent();
      ret = this.handle(ev);
      ev.ack();
    }
    return ret;
  }

  /** poll_cqs: message_count completions from one CQ of every connected node (their status is not looked at, as cmatose). */
  async pollCqs(which: "sendCq" | "recvCq"): Promise<void> {
    for (const n of this.nodes) {
      if (!n.connected) continue;
      for (let done = 0; done < this.o.count; done++) await n[which]!.next();
    }
  }

  async server(): Promise<number> {
    this.say("cmatose: starting server");
    const listen = this.ch.createId(this.o.ps, this);
    listen.bindAddr({ address: this.o.bind ?? "0.0.0.0", port: this.o.port });
    listen.listen(0);
    let ret = await this.events(() => this.connectsLeft);
    if (!ret) {
      if (this.o.count) {
        this.say("initiating data transfers");
        for (const n of this.nodes) this.postSends(n);
        this.say("completing sends");
        await this.pollCqs("sendCq");
        this.say("receiving data transfers");
        await this.pollCqs("recvCq");
        this.say("data transfers complete");
      }
      this.say("cmatose: disconnecting");
      for (const n of this.nodes) {
        if (!n.connected) continue;
        n.connected = false;
        n.id!.disconnect();
      }
      ret = await this.events(() => this.disconnectsLeft);
      this.say("disconnected");
    }
    listen.destroy();
    return ret;
  }

  async client(): Promise<number> {
    this.say("cmatose: starting client");
    this.say("cmatose: connecting");
    for (const n of this.nodes) {
      n.id = this.ch.createId(this.o.ps, n);
      n.id.resolveAddr(this.o.bind ? { address: this.o.bind, port: 0 } : undefined, { address: this.o.dst!, port: this.o.port }, 2000);
    }
    let ret = await this.events(() => this.connectsLeft);
    if (!ret && this.o.count) {
      this.say("receiving data transfers");
      await this.pollCqs("recvCq");
      this.say("sending replies");
      for (const n of this.nodes) this.postSends(n);
      this.say("data transfers complete");
    }
    const ret2 = await this.events(() => this.disconnectsLeft);
    if (ret2) ret = ret2;
    return ret;
  }

  destroyNodes(): void {
    for (const n of this.nodes) {
      if (!n.id) continue;
      try {
        if (n.id.qp) n.id.destroyQp();
        n.id.destroy();
      } catch {
        /* the device is going away anyway */
      }
    }
  }
}

export async function runUcmatose(o: UcmatoseOptions, io: Io): Promise<number> {
  let dev: Device;
  try {
    dev = await openDevice({ address: o.address, port: o.udpPort, mrArenaBytes: Math.max(4 << 20, 2 * o.size * o.connections + (1 << 20)), ringArenaBytes: 4 << 20 });
  } catch (e) {
    io.out(`failed to create event channel: ${(e as Error).message}\n`);
    return 1;
  }
  const { mad, ch } = openToolCm(dev, o.udpPort);
  const t = new Cmatose(o, io, dev, ch);
  const giveUp = giveUpAfter(o.timeoutMs, "ucmatose", io, -110);
  let ret: number;
  try {
    ret = await Promise.race([o.dst !== undefined ? t.client() : t.server(), giveUp.expired]);
  } catch (e) {
    io.err(`softroce ucmatose: ${(e as Error).message}\n`);
    ret = -1;
  }
  giveUp.cancel();
  io.out("test complete\n");
  await mad.drain();
  t.destroyNodes();
  io.out(`return status ${ret}\n`);
  ch.destroy();
  await mad.drain();
  dev.close();
  return ret === 0 ? 0 : 1;
}

export const ucmatoseCommand: Command = {
  name: "ucmatose",
  summary: "rdma-core's ucmatose over rdma_cm (CM MADs on QP1): connections and SENDs both ways, interoperable with Linux's",
  async run(argv, io) {
    const o = ucmatoseOptions(argv);
    if (o === "help") {
      io.out(HELP);
      return 0;
    }
    return runUcmatose(o, io);
  },
};
