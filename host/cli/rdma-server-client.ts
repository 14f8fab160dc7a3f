// softroce rdma_server and rdma_client: rdma-core's librdmacm/examples/rdma_server.c and
// rdma_client.c — the smallest rdma_cm programs: one RC connection (the client's rdma_connect
// without parameters: retry and RNR retry 7), a QP of one send and one receive with 16 bytes of
// inline data, and one 16-byte SEND each way (the client's first, the server's in answer), then
// both disconnect. librdmacm's synchronous calls (rdma_create_ep, rdma_get_request, rdma_accept,
// rdma_disconnect waiting for their event) are waits on the event channel here.
import { Access, SendFlags, WrOpcode, type Device, type QueuePair } from "../core/verbs/index.js";
import { errnoName, PortSpace, RdmaCmEventType as E, eventStr, type EventChannel, type RdmaCmEvent, type RdmaCmId } from "../core/cm/index.js";
import { formatFlags, parseArgs, type FlagSpec } from "./args.js";
import { optionsCommand, type Io } from "./command.js";
import { cmatoseAddresses, runCmatoseTest, type CmatoseTest } from "./cm-tool.js";

const MSG = 16;
const QP_INIT = { cap: { maxSendWr: 1, maxRecvWr: 1, maxSendSge: 1, maxRecvSge: 1, maxInlineData: MSG }, sqSigAll: true };

export interface RdmaExampleOptions {
  server: string;
  port: number;
  address: string;
  udpPort: number;
  timeoutMs: number;
}

function flags(tool: string, serverDefault: string): FlagSpec[] {
  return [
    { name: "server-address", short: "s", type: "string", valueName: "addr", default: serverDefault, help: tool === "rdma_server" ? "address to listen on" : "the server's address" },
    { name: "port", short: "p", type: "int", min: 0, max: 65535, default: 7471, valueName: "port", help: "port number" },
    { name: "address", type: "string", valueName: "addr", help: "softroce: local IPv4/IPv6 address of the device (default: the server's -s unless a wildcard, else 127.0.0.1 / ::1)" },
    { name: "udp-port", type: "int", min: 1, max: 65535, default: 4791, valueName: "n", help: "softroce: UDP port of the device and of its peers" },
    { name: "timeout", type: "int", min: 0, max: 86400, default: 0, valueName: "sec", help: `softroce: give up after <sec> seconds (0: never, as ${tool})` },
    { name: "help", short: "h", type: "boolean", help: "show this help" },
  ];
}

function options(tool: string, serverDefault: string, argv: string[]): RdmaExampleOptions | "help" {
  const { flags: f } = parseArgs(argv, flags(tool, serverDefault));
  if (f.help) return "help";
  const server = f["server-address"] as string;
  // the server's -s is where it binds (its device's address unless a wildcard); the client's, where it
  // connects (its device: --address, else loopback of that family)
  const { address } = cmatoseAddresses(tool === "rdma_server" ? { "bind-address": server, address: f.address } : { "server-address": server, address: f.address });
  return { server, port: f.port as number, address, udpPort: f["udp-port"] as number, timeoutMs: (f.timeout as number) * 1000 };
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

  constructor(readonly tool: "rdma_server" | "rdma_client", readonly o: RdmaExampleOptions, readonly io: Io, readonly ch: EventChannel) {}

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
      return this.tool === "rdma_server" ? await this.server() : await this.client();
    } catch (e) {
      this.say(`${(e as Error).message}`);
      return -1;
    }
  }

  private async server(): Promise<number> {
    const listen = this.ch.createId(PortSpace.TCP, undefined);
    this.ids.push(listen);
    listen.bindAddr({ address: this.o.server, port: this.o.port });
    listen.listen(0);
    const id = (await complete(this.ch, "rdma_get_request", E.CONNECT_REQUEST)).id;
    this.ids.unshift(id);
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

  private async client(): Promise<number> {
    const id = this.ch.createId(PortSpace.TCP, undefined);
    this.ids.push(id);
    id.resolveAddr(undefined, { address: this.o.server, port: this.o.port }, 2000);
    await complete(this.ch, "rdma_create_ep", E.ADDR_RESOLVED);
    id.resolveRoute(2000);
    await complete(this.ch, "rdma_create_ep", E.ROUTE_RESOLVED);
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

  finish(ret: number): void {
    this.say(`${this.tool}: end ${ret}`);
  }
}

function runExample(tool: "rdma_server" | "rdma_client") {
  return (o: RdmaExampleOptions, io: Io): Promise<number> => {
    io.out(`${tool}: start\n`);
    return runCmatoseTest(tool, { ...o, mrBytes: 0, lines: false }, io, (_dev: Device, ch) => new RdmaExample(tool, o, io, ch));
  };
}

const help = (tool: string, serverDefault: string, what: string) => `usage: softroce ${tool} [-s server_address] [-p port_number]

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
