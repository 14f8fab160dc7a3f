// softroce ucmatose: rdma-core's librdmacm/examples/cmatose.c over softroce's
// rdma_cm (QP1 on the device). The server listens (port 7471), accepts
// `-c` connections, posts `-C` receives on each, then SENDs `-C` messages of
// `-S` bytes on each, waits for their completions and for the client's
// replies, and disconnects; the client connects, takes the server's messages,
// answers with as many, and waits to be disconnected. Flags, defaults, output
// lines and the exit status are cmatose's.
import { type Device, type CompletionQueue, type MemoryRegion, Access, WrOpcode } from "../core/verbs/index.js";
import { type RdmaCmId, RdmaCmEventType as E, type EventChannel, type RdmaCmEvent, PortSpace } from "../core/cm/index.js";
import { formatFlags, parseArgs, type FlagSpec, UsageError } from "./args.js";
import { optionsCommand, type Io } from "./command.js";
import { CmatoseFamily, cmatoseFlags, cmatoseOptions, runCmatoseTest, type CmatoseNode, type CmatoseOptions } from "./cm-tool.js";

export const CMATOSE_PORT = 7471;

const FLAGS: FlagSpec[] = cmatoseFlags("cmatose", [
  { name: "port-space", short: "P", type: "string", valueName: "ps", choices: ["tcp", "ib"], default: "tcp", help: "port space" },
  { name: "port", short: "p", type: "int", min: 0, max: 65535, default: CMATOSE_PORT, valueName: "port", help: "port number" },
]);

const HELP = `usage: softroce ucmatose [-s server_address] [-b bind_address] [-P tcp|ib] [-c connections]
                         [-C message_count] [-S message_size] [-p port_number]

rdma-core's ucmatose (cmatose) over softroce's rdma_cm: connections made with CM MADs on QP1, then
SENDs each way on every connection. -t (type of service) and -m (migrate) are not supported.

${formatFlags(FLAGS)}
`;

export type UcmatoseOptions = CmatoseOptions;

export function ucmatoseOptions(argv: string[]): UcmatoseOptions | "help" {
  if (argv.includes("-t") || argv.includes("-m")) throw new UsageError("-t (type of service) and -m (migrate) are not supported");
  const { flags } = parseArgs(argv, FLAGS);
  if (flags.help) return "help";
  const o = cmatoseOptions(flags, flags["port-space"] === "ib" ? PortSpace.IB : PortSpace.TCP);
  if (!o.count) o.size = 0; // no MR without messages
  return o;
}

interface Node extends CmatoseNode {
  sendCq?: CompletionQueue;
  recvCq?: CompletionQueue;
  mr?: MemoryRegion;
}

class Cmatose extends CmatoseFamily<Node> {
  disconnectsLeft = 0;

  constructor(readonly o: UcmatoseOptions, io: Io, readonly dev: Device, ch: EventChannel) {
    super("cmatose", io, ch, Array.from({ length: o.connections }, () => ({ id: undefined, connected: false })));
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

  protected override routeResolved(n: Node, id: RdmaCmId): number {
    return this.attempt("failure connecting", () => {
      this.initNode(n);
      this.postRecvs(n);
      id.connect({ responderResources: 1, initiatorDepth: 1, retryCount: 5 });
    });
  }

  protected override connectRequest(n: Node, id: RdmaCmId): number {
    return this.attempt("failure accepting", () => {
      this.initNode(n);
      this.postRecvs(n);
      id.accept();
    });
  }

  protected other(ev: RdmaCmEvent): number {
    switch (ev.event) {
      case E.ESTABLISHED:
        (ev.id.context as Node).connected = true;
        this.connectsLeft--;
        this.disconnectsLeft++;
        return 0;
      case E.DISCONNECTED:
        try {
          ev.id.disconnect();
        } catch {
          /* already disconnected */
        }
        this.disconnectsLeft--;
        return 0;
      default:
        return 0;
    }
  }

  /** poll_cqs: message_count completions from one CQ of every connected node (their status is not looked at, as cmatose). */
  async pollCqs(which: "sendCq" | "recvCq"): Promise<void> {
    for (const n of this.nodes) {
      if (!n.connected) continue;
      for (let done = 0; done < this.o.count; done++) await n[which]!.next();
    }
  }

  run(): Promise<number> {
    return this.o.dst !== undefined ? this.client() : this.server();
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
    let ret = await this.connectAll(this.o);
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

export function runUcmatose(o: UcmatoseOptions, io: Io): Promise<number> {
  return runCmatoseTest("ucmatose", { ...o, mrBytes: 2 * o.size * o.connections }, io, (dev, ch, run) => new Cmatose(o, run, dev, ch));
}

export const ucmatoseCommand = optionsCommand("ucmatose", "rdma-core's ucmatose over rdma_cm (CM MADs on QP1): connections and SENDs both ways, interoperable with Linux's", HELP, ucmatoseOptions, runUcmatose);
