// softroce rdma_server and rdma_client: rdma-core's librdmacm/examples/rdma_server.c and
// rdma_client.c — the smallest rdma_cm programs: one RC connection (the client's rdma_connect
// without parameters: retry and RNR retry 7), a QP of one send and one receive with 16 bytes of
// inline data, and one 16-byte SEND each way (the client's first, the server's in answer), then
// both disconnect. librdmacm's synchronous calls (rdma_create_ep, rdma_get_request, rdma_accept,
// rdma_disconnect waiting for their event) are waits on the event channel here.
//
// rdma_xserver and rdma_xclient (rdma_xserver.c, rdma_xclient.c): their RC mode (-c r, the default)
// is one 16-byte SEND from the client only, posted inline on a QP that asked for no inline data (rxe,
// and softroce, give a QP inline room for its send SGEs); the server binds the wildcard that
// rdma_getaddrinfo(NULL, port, RAI_PASSIVE) gives first, 0.0.0.0, and accepts with a zeroed
// rdma_conn_param carrying its SRQ number (0) as private data: its REP asks no RDMA reads and
// RNR retry 0. Their XRC mode (-c x, RDMA_PS_IB) fails as it does on rxe, which has no XRC: the
// client at rdma_create_ep, the server at the first connection request.
import { Access, SendFlags, WrOpcode, type Device, type QueuePair } from "../core/verbs/index.js";
import { errnoName, PortSpace, RdmaCmEventType as E, eventStr, type EventChannel, type RdmaCmEvent, type RdmaCmId } from "../core/cm/index.js";
import { isIPv6 } from "node:net";
import { formatFlags, parseArgs, UsageError, type FlagSpec } from "./args.js";
import { optionsCommand, type Io } from "./command.js";
import { cmatoseAddresses, runCmatoseTest, type CmatoseTest } from "./cm-tool.js";

const MSG = 16;
/** rdma_server's and rdma_client's QP: 16 bytes of inline data asked */
const QP_INIT = { cap: { maxSendWr: 1, maxRecvWr: 1, maxSendSge: 1, maxRecvSge: 1, maxInlineData: MSG }, sqSigAll: true };
/** rdma_xserver's and rdma_xclient's (RC): no inline data asked; the client's every send signaled */
const XQP_INIT = { cap: { maxSendWr: 1, maxRecvWr: 1, maxSendSge: 1, maxRecvSge: 1 } };

type Tool = "rdma_server" | "rdma_client" | "rdma_xserver" | "rdma_xclient";
const isServer = (t: Tool): boolean => t === "rdma_server" || t === "rdma_xserver";
const isX = (t: Tool): boolean => t === "rdma_xserver" || t === "rdma_xclient";
/** rdma_xserver's bind: rdma_getaddrinfo(NULL, port, RAI_PASSIVE)'s first answer */
const XSERVER_BIND = "0.0.0.0";
/** what rdma_create_ep (the client) and rdma_get_request (the server) fail with for an XRC QP on rxe: ibv_open_xrcd's EOPNOTSUPP */
const NO_XRC = "Operation not supported";

export interface RdmaExampleOptions {
  server: string;
  port: number;
  address: string;
  udpPort: number;
  timeoutMs: number;
  /** rdma_xserver's and rdma_xclient's -c x */
  xrc: boolean;
}

function flags(tool: Tool, serverDefault: string): FlagSpec[] {
  return [
    ...(tool === "rdma_xserver" ? [] : [{ name: "server-address", short: "s", type: "string", valueName: "addr", default: serverDefault, help: tool === "rdma_server" ? "address to listen on" : "the server's address" } satisfies FlagSpec]),
    { name: "port", short: "p", type: "int", min: 0, max: 65535, default: 7471, valueName: "port", help: tool === "rdma_xserver" ? `port number (the server listens on ${XSERVER_BIND}, as rdma-core's)` : "port number" },
    ...(isX(tool) ? [{ name: "communication-type", short: "c", type: "string", valueName: "type", default: "r", help: "r - RC: reliable-connected (default); x - XRC: extended-reliable-connected (fails: softroce has no XRC, as rxe)" } satisfies FlagSpec] : []),
    { name: "address", type: "string", valueName: "addr", help: tool === "rdma_xserver" ? "softroce: local IPv4 address of the device (default: 127.0.0.1)" : "softroce: local IPv4/IPv6 address of the device (default: the server's -s unless a wildcard, else 127.0.0.1 / ::1)" },
    { name: "udp-port", type: "int", min: 1, max: 65535, default: 4791, valueName: "n", help: "softroce: UDP port of the device and of its peers" },
    { name: "timeout", type: "int", min: 0, max: 86400, default: 0, valueName: "sec", help: `softroce: give up after <sec> seconds (0: never, as ${tool})` },
    { name: "help", short: "h", type: "boolean", help: "show this help" },
  ];
}

function options(tool: Tool, serverDefault: string, argv: string[]): RdmaExampleOptions | "help" {
  const { flags: f } = parseArgs(argv, flags(tool, serverDefault));
  if (f.help) return "help";
  const server = tool === "rdma_xserver" ? XSERVER_BIND : (f["server-address"] as string);
  // the server's -s is where it binds (its device's address unless a wildcard); the client's, where it
  // connects (its device: --address, else loopback of that family)
  const { address } = cmatoseAddresses(isServer(tool) ? { "bind-address": server, address: f.address } : { "server-address": server, address: f.address });
  if (tool === "rdma_xserver" && isIPv6(address)) throw new UsageError(`--address ${address}: rdma_xserver listens on ${XSERVER_BIND} (rdma_getaddrinfo's first passive answer, as rdma-core's), which an IPv6 device never hears; give an IPv4 address`);
  let xrc = false;
  if (isX(tool)) {
    // rdma-core's: the value's first letter, either case
    const c = (f["communication-type"] as string).slice(0, 1).toLowerCase();
    if (c !== "r" && c !== "x") throw new UsageError(`-c wants r (RC) or x (XRC), got '${f["communication-type"] as string}'`);
    xrc = c === "x";
  }
  return { server, port: f.port as number, address, udpPort: f["udp-port"] as number, timeoutMs: (f.timeout as number) * 1000, xrc };
}

/**
 * A wait of librdmacm's synchronous calls (ucma_complete): the next event on the channel, an error if it
 * reports one (a REJECTED one as ECONNREFUSED, perror's "Connection refused") or is not `want`.
 */
async function complete(ch: EventChannel, verb: string, want: number): Promise<RdmaCmEvent> {
  const ev = await ch.getCmEvent();
  ev.ack();
  if (ev.status || ev.event !== want) {
    const what = ev.event === E.REJECTED ? "Connection refused" : ev.status < 0 ? errnoName(ev.status) : "failed";
    throw new Error(`${verb}: ${what} (${eventStr(ev.event)}, status ${ev.status})`);
  }
  return ev;
}

class RdmaExample implements CmatoseTest {
  ids: RdmaCmId[] = [];

  constructor(readonly tool: Tool, readonly o: RdmaExampleOptions, readonly io: Io, readonly ch: EventChannel) {}

  say(s: string): void {
    this.io.out(`${s}\n`);
  }

  /** The ID's QP as rdma_create_ep makes it; SEND inline when the QP takes 16 bytes of it. */
  private qp(id: RdmaCmId): { qp: QueuePair; sendFlags: number } {
    const qp = id.createQp(undefined, QP_INIT);
    if (qp.cap.maxInlineData >= MSG) return { qp, sendFlags: SendFlags.INLINE };
    this.say(`${this.tool}: device doesn't support IBV_SEND_INLINE, using sge sends`);
    return { qp, sendFlags: 0 };
  }

  async run(): Promise<number> {
    try {
      if (this.tool === "rdma_xserver") return await this.xserver();
      if (this.tool === "rdma_xclient") return await this.xclient();
      return this.tool === "rdma_server" ? await this.server() : await this.client();
    } catch (e) {
      this.say(`${(e as Error).message}`);
      return -1;
    }
  }

  private async server(): Promise<number> {
    const id = await this.request(PortSpace.TCP);
    const { qp, sendFlags } = this.qp(id);
    const mr = id.pd!.regMr(MSG, Access.LOCAL_WRITE);
    qp.postRecv({ wrId: 0n, sgList: [mr.sge(0, MSG)] });
    id.accept();
    await complete(this.ch, "rdma_accept", E.ESTABLISHED);
    await id.recvCq!.next();
    qp.postSend({ wrId: 1n, opcode: WrOpcode.SEND, sendFlags, sgList: [mr.sge(0, MSG)] });
    await id.sendCq!.next();
    id.disconnect();
    await complete(this.ch, "rdma_disconnect", E.DISCONNECTED);
    return 0;
  }

  /** rdma_create_ep on the server's address (a listener of `ps`), rdma_listen and rdma_get_request: the first request's ID. */
  private async request(ps: number): Promise<RdmaCmId> {
    const listen = this.ch.createId(ps, undefined);
    this.ids.push(listen);
    listen.bindAddr({ address: this.o.server, port: this.o.port });
    listen.listen(0);
    const id = (await complete(this.ch, "rdma_get_request", E.CONNECT_REQUEST)).id;
    this.ids.unshift(id);
    return id;
  }

  /** rdma_create_ep's part before the QP: an ID of `ps` with its address and route to the server resolved. */
  private async resolved(ps: number): Promise<RdmaCmId> {
    const id = this.ch.createId(ps, undefined);
    this.ids.push(id);
    id.resolveAddr(undefined, { address: this.o.server, port: this.o.port }, 2000);
    await complete(this.ch, "rdma_create_ep", E.ADDR_RESOLVED);
    id.resolveRoute(2000);
    await complete(this.ch, "rdma_create_ep", E.ROUTE_RESOLVED);
    return id;
  }

  private async client(): Promise<number> {
    const id = await this.resolved(PortSpace.TCP);
    const { qp, sendFlags } = this.qp(id);
    const mr = id.pd!.regMr(MSG, Access.LOCAL_WRITE);
    qp.postRecv({ wrId: 0n, sgList: [mr.sge(0, MSG)] });
    id.connect(); // no parameters: librdmacm's retry 7, RNR retry 7, the device's read depths
    await complete(this.ch, "rdma_connect", E.ESTABLISHED);
    qp.postSend({ wrId: 1n, opcode: WrOpcode.SEND, sendFlags, sgList: [mr.sge(0, MSG)] });
    await id.sendCq!.next();
    await id.recvCq!.next();
    id.disconnect();
    await complete(this.ch, "rdma_disconnect", E.DISCONNECTED);
    return 0;
  }

  /** rdma_xserver: one connection, one receive, then disconnect. */
  private async xserver(): Promise<number> {
    const id = await this.request(this.o.xrc ? PortSpace.IB : PortSpace.TCP);
    if (this.o.xrc) {
      // librdmacm's rdma_get_request makes the listener's QP for the request, and destroys the ID
      // when that fails: rdma_cm rejects the request
      id.reject();
      throw new Error(`rdma_get_request: ${NO_XRC}`);
    }
    const qp = id.createQp(undefined, XQP_INIT);
    const mr = id.pd!.regMr(MSG, Access.LOCAL_WRITE);
    qp.postRecv({ wrId: 0n, sgList: [mr.sge(0, MSG)] });
    // a zeroed rdma_conn_param but for the private data: the SRQ number, none (0) for RC
    id.accept({ privateData: new Uint8Array(4) });
    await complete(this.ch, "rdma_accept", E.ESTABLISHED);
    await id.recvCq!.next();
    id.disconnect();
    await complete(this.ch, "rdma_disconnect", E.DISCONNECTED);
    return 0;
  }

  /** rdma_xclient: connect, one inline SEND, then disconnect. */
  private async xclient(): Promise<number> {
    const id = await this.resolved(this.o.xrc ? PortSpace.IB : PortSpace.TCP);
    if (this.o.xrc) throw new Error(`rdma_create_ep: ${NO_XRC}`); // its XRC_SEND QP
    const qp = id.createQp(undefined, { ...XQP_INIT, sqSigAll: true });
    const mr = id.pd!.regMr(MSG, Access.LOCAL_WRITE);
    id.connect(); // no parameters: librdmacm's retry 7, RNR retry 7, the device's read depths
    await complete(this.ch, "rdma_connect", E.ESTABLISHED);
    qp.postSend({ wrId: 0n, opcode: WrOpcode.SEND, sendFlags: SendFlags.INLINE, sgList: [mr.sge(0, MSG)] });
    await id.sendCq!.next();
    id.disconnect();
    await complete(this.ch, "rdma_disconnect", E.DISCONNECTED);
    return 0;
  }

  destroyNodes(): void {
    for (const id of this.ids) {
      try {
        if (id.qp) id.destroyQp();
        id.destroy();
      } catch {
        /* going away anyway */
      }
    }
  }

  finish(ret: number, io: Io): void {
    io.out(`${this.tool}: end ${ret}\n`);
  }
}

function runExample(tool: Tool) {
  return (o: RdmaExampleOptions, io: Io): Promise<number> => {
    io.out(`${tool}: start\n`);
    return runCmatoseTest(tool, { ...o, mrBytes: 0, lines: false }, io, (_dev: Device, ch, run) => new RdmaExample(tool, o, run, ch));
  };
}

const help = (tool: Tool, serverDefault: string, what: string) => `usage: softroce ${tool} ${tool === "rdma_xserver" ? "" : "[-s server_address] "}[-p port_number]${isX(tool) ? " [-c communication type]" : ""}

rdma-core's ${tool} over softroce's rdma_cm: ${what}

${formatFlags(flags(tool, serverDefault))}
`;

export const rdmaServerCommand = optionsCommand(
  "rdma_server", "rdma-core's rdma_server over rdma_cm: accepts one connection, a 16-byte SEND each way; interoperable with Linux's",
  help("rdma_server", "0.0.0.0", "listens on -s:-p, accepts one RC connection, receives a 16-byte SEND and answers with one\n(inline), then disconnects."),
  (argv) => options("rdma_server", "0.0.0.0", argv), runExample("rdma_server"),
);

export const rdmaClientCommand = optionsCommand(
  "rdma_client", "rdma-core's rdma_client over rdma_cm: connects, a 16-byte SEND each way; interoperable with Linux's",
  help("rdma_client", "127.0.0.1", "connects to -s:-p, SENDs 16 bytes (inline), receives the server's 16, then disconnects."),
  (argv) => options("rdma_client", "127.0.0.1", argv), runExample("rdma_client"),
);

export const rdmaXserverCommand = optionsCommand(
  "rdma_xserver", "rdma-core's rdma_xserver over rdma_cm: accepts one RC connection, receives a 16-byte SEND; interoperable with Linux's",
  help("rdma_xserver", XSERVER_BIND, `listens on ${XSERVER_BIND}:-p, accepts one RC connection (its REP asks no RDMA reads, RNR retry 0),\nreceives a 16-byte SEND, then disconnects. -c x (XRC) fails at the first request, as on rxe.`),
  (argv) => options("rdma_xserver", XSERVER_BIND, argv), runExample("rdma_xserver"),
);

export const rdmaXclientCommand = optionsCommand(
  "rdma_xclient", "rdma-core's rdma_xclient over rdma_cm: connects, SENDs 16 bytes; interoperable with Linux's",
  help("rdma_xclient", "127.0.0.1", "connects to -s:-p, SENDs 16 bytes (inline, on a QP that asked for no inline data), then disconnects.\n-c x (XRC) fails at rdma_create_ep, as on rxe."),
  (argv) => options("rdma_xclient", "127.0.0.1", argv), runExample("rdma_xclient"),
);
