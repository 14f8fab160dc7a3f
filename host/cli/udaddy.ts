// softroce udaddy: rdma-core's librdmacm/examples/udaddy.c over softroce's rdma_cm —
// rdma_cm's UD port space, where a "connection" is a SIDR exchange on QP1 (the client's
// SIDR_REQ, the server's SIDR_REP with its QPN and Q_Key) and the data are UD SEND WITH
// IMMEDIATE datagrams (the immediate: the sender's QPN). The client resolves, posts `-C`
// receives, connects, SENDs `-C` messages of `-S` bytes (unsignaled) and waits for as many
// replies; the server accepts, waits for the messages, makes the reply address from the
// first one's completion and GRH (ibv_create_ah_from_wc), and SENDs as many back. Flags,
// defaults, output lines and the exit status are udaddy's; like udaddy, nothing is resent
// when a datagram is lost (--timeout ends such a run).
import {
  type AddressHandle, type CompletionQueue, type Device, type MemoryRegion, type ProtectionDomain, type WorkCompletion,
  Access, GRH_SIZE, QpType, SendFlags, WrOpcode, mtuBytes,
} from "../core/verbs/index.js";
import { wildcardFor } from "../core/net/index.js";
import { PortSpace, RdmaCmEventType as E, type EventChannel, type RdmaCmEvent, type RdmaCmId, type UdEventParam } from "../core/cm/index.js";
import { formatFlags, parseArgs, type FlagSpec, UsageError } from "./args.js";
import { optionsCommand, type Io } from "./command.js";
import { CmatoseFamily, cmatoseFlags, cmatoseOptions, runCmatoseTest, udPortSpaceNumber, type CmatoseNode, type CmatoseOptions } from "./cm-tool.js";

/** udaddy's port (a string constant in udaddy.c; it has no flag for it). */
export const UDADDY_PORT = 7174;

const FLAGS: FlagSpec[] = cmatoseFlags("udaddy", [
  { name: "port-space", short: "P", type: "string", valueName: "ps", help: "port space: udp (default) or ipoib" },
  { name: "port-space-number", short: "p", type: "string", valueName: "n", help: "port space as a number: 0x111 for UDP, 0x2 for IPoIB (udaddy's older flag)" },
  { name: "port", type: "int", min: 0, max: 65535, default: UDADDY_PORT, valueName: "port", help: "softroce: the rdma_cm port (udaddy's is fixed: 7174)" },
]);

const HELP = `usage: softroce udaddy [-s server_address] [-b bind_address] [-P udp|ipoib] [-c connections]
                       [-C message_count] [-S message_size]

rdma-core's udaddy over softroce's rdma_cm: UD "connections" made with SIDR MADs on QP1, then
SEND WITH IMMEDIATE datagrams each way on every connection. -t (type of service) is not supported.

${formatFlags(FLAGS)}
`;

export type UdaddyOptions = CmatoseOptions;

/** -P: udaddy compares the first letters without case ("udp", "ipoib"); anything else keeps UDP with a warning. */
function portSpaceOf(flags: Record<string, unknown>, io: Pick<Io, "err">): number {
  const num = flags["port-space-number"] as string | undefined;
  const name = flags["port-space"] as string | undefined;
  let ps: number = PortSpace.UDP;
  if (num !== undefined) ps = udPortSpaceNumber(num);
  if (name !== undefined) {
    if (name.toLowerCase().startsWith("ipoib")) ps = PortSpace.IPOIB;
    else if (!name.toLowerCase().startsWith("udp")) io.err("Warning: unknown port space format\n");
  }
  return ps;
}

export function udaddyOptions(argv: string[], io: Pick<Io, "err">): UdaddyOptions | "help" {
  if (argv.includes("-t")) throw new UsageError("-t (type of service) is not supported");
  const { flags } = parseArgs(argv, FLAGS);
  if (flags.help) return "help";
  return cmatoseOptions(flags, portSpaceOf(flags, io));
}

/** A node of udaddy and mckey (their struct cmatest_node). */
export interface UdNode extends CmatoseNode {
  pd?: ProtectionDomain;
  cq?: CompletionQueue;
  mr?: MemoryRegion;
  ah?: AddressHandle;
  remoteQpn: number;
  remoteQkey: number;
}

/** What udaddy and mckey share: a UD QP per node, one CQ, one message buffer (GRH first), SEND WITH IMMEDIATE. */
export abstract class UdCmTest extends CmatoseFamily<UdNode> {
  constructor(tool: string, readonly ud: { count: number; size: number; connections: number; udpPort: number }, io: Io, readonly dev: Device, ch: EventChannel) {
    super(tool, io, ch, Array.from({ length: ud.connections }, () => ({ id: undefined, connected: false, remoteQpn: 0, remoteQkey: 0 })));
  }

  /** verify_test_params: a message must fit the port's active MTU (a UD message is one packet). */
  verifyTestParams(n: UdNode): number {
    const mtu = mtuBytes(this.dev.queryPort(n.id!.portNum || 1).activeMtu);
    if (this.ud.count && this.ud.size > mtu) {
      this.say(`${this.tool}: message_size ${this.ud.size} is larger than active mtu ${mtu}`);
      return -22;
    }
    return 0;
  }

  /** init_node: PD, one CQ of 2 × message_count entries for both queues, a UD QP signalling only what asks, the message MR (the GRH's 40 bytes first). */
  initNode(n: UdNode): void {
    n.pd = this.dev.allocPd();
    const count = this.ud.count;
    n.cq = this.dev.createCq(count ? count * 2 : 2);
    const wr = count || 1;
    n.id!.createQp(n.pd, { sendCq: n.cq, recvCq: n.cq, sqSigAll: false, cap: { maxSendWr: wr, maxRecvWr: wr, maxSendSge: 1, maxRecvSge: 1 } });
    if (count) n.mr = n.pd.regMr(this.ud.size + GRH_SIZE, Access.LOCAL_WRITE);
  }

  /** post_recvs: message_count receives, every one into the same buffer (GRH, then the message). */
  postRecvs(n: UdNode): void {
    for (let i = 0; i < this.ud.count; i++) n.id!.qp!.postRecv({ wrId: BigInt(i), sgList: [n.mr!.sge(0, this.ud.size + GRH_SIZE)] });
  }

  /** post_sends: message_count SEND WITH IMMEDIATE (our QPN) of message_size bytes from the buffer's start. */
  postSends(n: UdNode, sendFlags: number): void {
    if (!n.connected || !this.ud.count) return;
    const qp = n.id!.qp!;
    for (let i = 0; i < this.ud.count; i++) {
      qp.postSend({
        wrId: BigInt(i), opcode: WrOpcode.SEND_WITH_IMM, sendFlags, immData: qp.qpNum,
        ud: { ah: n.ah!, remoteQpn: n.remoteQpn, remoteQkey: n.remoteQkey }, sgList: [n.mr!.sge(0, this.ud.size)],
      });
    }
  }

  /** udaddy's resolved_handler, mckey's join_handler: the peer's (or group's) QPN and Q_Key and an AH to it; the node is connected. */
  protected takeAddress(n: UdNode, ud: UdEventParam): number {
    n.remoteQpn = ud.qpNum;
    n.remoteQkey = ud.qkey;
    try {
      n.ah = n.pd!.createAh(ud.ahAttr!);
    } catch {
      this.say(`${this.tool}: failure creating address handle`);
      this.connectsLeft--;
      return -1;
    }
    n.connected = true;
    this.connectsLeft--;
    return 0;
  }

  /** udaddy's create_reply_ah: answer where the first message came from, at the QPN in its immediate, with our own Q_Key. */
  createReplyAh(n: UdNode, wc: WorkCompletion): void {
    n.ah = n.pd!.createAhFromWc(wc, n.mr!.bytes.subarray(0, GRH_SIZE), n.id!.portNum || 1, this.ud.udpPort);
    n.remoteQpn = wc.immData;
    n.remoteQkey = n.id!.qp!.query().attr.qkey;
  }

  /** poll_cqs: message_count completions from every connected node's CQ (their status is not looked at, as udaddy and mckey); a node without an AH gets the reply AH from the first. */
  async pollCqs(): Promise<number> {
    for (const n of this.nodes) {
      if (!n.connected) continue;
      for (let done = 0; done < this.ud.count; done++) {
        const wc = await n.cq!.next();
        if (n.ah) continue;
        try {
          this.createReplyAh(n, wc);
        } catch {
          this.say(`${this.tool}: failed to create reply AH`);
          return -1;
        }
      }
    }
    return 0;
  }

  /** destroy_node for each: AH, QP, CQ, MR, PD, then the ID. */
  destroyNodes(): void {
    for (const n of this.nodes) {
      if (!n.id) continue;
      try {
        n.ah?.destroy();
        if (n.id.qp) n.id.destroyQp();
        n.cq?.destroy();
        n.mr?.destroy();
        n.pd?.destroy();
        n.id.destroy();
      } catch {
        /* the device is going away anyway */
      }
    }
  }
}

class Udaddy extends UdCmTest {
  constructor(readonly o: UdaddyOptions, io: Io, dev: Device, ch: EventChannel) {
    super("udaddy", o, io, dev, ch);
  }

  /** verify_test_params, init_node, post_recvs, then connect or accept. */
  private setUp(n: UdNode, what: string, then: () => void): number {
    return this.verifyTestParams(n) || this.attempt(what, () => {
      this.initNode(n);
      this.postRecvs(n);
      then();
    });
  }

  protected override routeResolved(n: UdNode, id: RdmaCmId): number {
    return this.setUp(n, "failure connecting", () => id.connect());
  }

  protected override connectRequest(n: UdNode, id: RdmaCmId): number {
    const ret = this.setUp(n, "failure accepting", () => id.accept({ qpNum: id.qp!.qpNum }));
    if (!ret) {
      n.connected = true;
      this.connectsLeft--;
    }
    return ret;
  }

  /** resolved_handler (ESTABLISHED): the server's QPN and Q_Key from its SIDR_REP, an AH from the route. */
  protected other(ev: RdmaCmEvent): number {
    return ev.event === E.ESTABLISHED ? this.takeAddress(ev.id.context as UdNode, ev.param.ud!) : 0;
  }

  run(): Promise<number> {
    return this.o.dst !== undefined ? this.client() : this.server();
  }

  async server(): Promise<number> {
    this.say("udaddy: starting server");
    const listen = this.ch.createId(this.o.ps, this);
    let ret = 0;
    try {
      listen.bindAddr({ address: this.o.bind ?? wildcardFor(this.o.address), port: this.o.port });
      listen.listen(0);
    } catch (e) {
      this.io.out(`udaddy: bind address failed: ${(e as Error).message}\n`);
      listen.destroy();
      return -1;
    }
    await this.events(() => this.connectsLeft); // udaddy goes on whatever it returns
    if (this.o.count) {
      this.say("receiving data transfers");
      ret = await this.pollCqs();
      if (!ret) {
        this.say("sending replies");
        for (const n of this.nodes) this.postSends(n, SendFlags.SIGNALED);
        ret = await this.pollCqs();
        if (!ret) this.say("data transfers complete");
      }
    }
    listen.destroy();
    return ret;
  }

  async client(): Promise<number> {
    let ret = await this.connectAll(this.o);
    if (!ret && this.o.count) {
      this.say("initiating data transfers");
      for (const n of this.nodes) this.postSends(n, 0);
      this.say("receiving data transfers");
      ret = await this.pollCqs();
      if (!ret) this.say("data transfers complete");
    }
    return ret;
  }
}

export function runUdaddy(o: UdaddyOptions, io: Io): Promise<number> {
  return runCmatoseTest("udaddy", { ...o, mrBytes: (o.size + GRH_SIZE) * o.connections }, io, (dev, ch, run) => new Udaddy(o, run, dev, ch));
}

export const udaddyCommand = optionsCommand("udaddy", "rdma-core's udaddy over rdma_cm's UD port space (SIDR on QP1): SEND WITH IMMEDIATE datagrams both ways, interoperable with Linux's", HELP, udaddyOptions, runUdaddy);
