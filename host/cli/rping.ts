// softroce rping: rdma-core's librdmacm/examples/rping.c over softroce's rdma_cm
// (QP1 on the device), so it pings Linux's rping and Linux's rping pings it.
// The protocol, per iteration: the client SENDs an rdma_info (buf, rkey, size;
// big-endian 64/32/32) naming its start buffer, which holds "rdma-ping-N: "
// followed by letters; the server RDMA READs it, SENDs "go ahead" (its 16-byte
// send buffer), the client SENDs the rdma_info of its RDMA buffer, the server
// RDMA WRITEs the string back into it and SENDs "go ahead" again. The flags,
// defaults, output lines and exit codes are rping's; the structure is too: a CM
// event pump and a CQ pump drive a state and wake the main flow through one
// semaphore.
import { isIPv6 } from "node:net";
import { openDevice } from "../node/index.js";
import { type Device, type CompletionQueue, type WorkCompletion, type MemoryRegion, type QueuePair, Access, SendFlags, WcOpcode, WcStatus, WrOpcode } from "../core/verbs/index.js";
import { type Qp1Transport, type RdmaCmId, eventStr, RdmaCmEventType as E, type EventChannel, PortSpace } from "../core/cm/index.js";
import { formatFlags, parseArgs, type FlagSpec, UsageError } from "./args.js";
import { optionsCommand, type Io } from "./command.js";
import { giveUpAfter, isIp, openToolCm } from "./cm-tool.js";

/** rping.c's defaults and limits. */
export const RPING_PORT = 7174;
export const RPING_DEFAULT_SIZE = 64;
export const RPING_BUFSIZE = 64 * 1024;
/** sizeof(stringify(INT_MAX)) + sizeof(RPING_MSG_FMT): "INT_MAX" and "rdma-ping-%d: " with their NULs */
export const RPING_MIN_BUFSIZE = 8 + 15;
export const RPING_SQ_DEPTH = 16;
/** struct rping_rdma_info: be64 buf, be32 rkey, be32 size */
export const RDMA_INFO_SIZE = 16;
/** How long the client waits for the DREP after its DREQ before it exits anyway. */
const DISCONNECT_WAIT_MS = 2000;

/** enum test_state (its numbers appear in rping's messages) */
export const RpingState = {
  IDLE: 1, CONNECT_REQUEST: 2, ADDR_RESOLVED: 3, ROUTE_RESOLVED: 4, CONNECTED: 5, RDMA_READ_ADV: 6,
  RDMA_READ_COMPLETE: 7, RDMA_WRITE_ADV: 8, RDMA_WRITE_COMPLETE: 9, DISCONNECTED: 10, ERROR: 11,
} as const;
const S = RpingState;

const FLAGS: FlagSpec[] = [
  { name: "server", short: "s", type: "boolean", help: "server side" },
  { name: "client", short: "c", type: "boolean", help: "client side" },
  { name: "addr", short: "a", type: "string", valueName: "addr", help: "address: the server's bind address (default 0.0.0.0; :: for any IPv6), the client's destination" },
  { name: "source", short: "I", type: "string", valueName: "addr", help: "source address to bind to for the client" },
  { name: "port", short: "p", type: "int", min: 0, max: 65535, default: RPING_PORT, valueName: "port", help: "port" },
  { name: "count", short: "C", type: "int", min: 0, max: 0x7fffffff, default: 0, valueName: "count", help: "ping count times (0: forever)" },
  { name: "size", short: "S", type: "int", min: RPING_MIN_BUFSIZE, max: RPING_BUFSIZE - 1, default: RPING_DEFAULT_SIZE, valueName: "size", help: "ping data size" },
  { name: "verbose", short: "v", type: "boolean", help: "display ping data to stdout" },
  { name: "validate", short: "V", type: "boolean", help: "validate ping data" },
  { name: "debug", short: "d", type: "boolean", help: "debug printfs" },
  { name: "address", type: "string", valueName: "addr", help: "softroce: local IPv4/IPv6 address of the device (default: -I, or the server's -a, else 127.0.0.1 / ::1)" },
  { name: "udp-port", type: "int", min: 1, max: 65535, default: 4791, valueName: "n", help: "softroce: UDP port of the device and of its peers" },
  { name: "timeout", type: "int", min: 0, max: 86400, default: 0, valueName: "sec", help: "softroce: give up after <sec> seconds (0: never, as rping)" },
  { name: "help", short: "h", type: "boolean", help: "show this help" },
];

const HELP = `usage: softroce rping -s [-vVd] [-S size] [-C count] [-a addr] [-p port]
       softroce rping -c [-vVd] [-S size] [-C count] [-I addr] -a addr [-p port]

rdma-core's rping over softroce's rdma_cm: the connection is made with CM MADs on QP1, then the
client's buffer is RDMA READ by the server and RDMA WRITTEN back, each step announced by a SEND.

${formatFlags(FLAGS)}
`;

export interface RpingOptions {
  server: boolean;
  addr: string;
  source?: string;
  port: number;
  count: number;
  size: number;
  verbose: boolean;
  validate: boolean;
  debug: boolean;
  address: string;
  udpPort: number;
  timeoutMs: number;
}

export function rpingOptions(argv: string[]): RpingOptions | "help" {
  const { flags } = parseArgs(argv, FLAGS);
  if (flags.help) return "help";
  if (flags.server && flags.client) throw new UsageError("-s and -c both given");
  if (!flags.server && !flags.client) throw new UsageError("one of -s (server) or -c (client) is needed");
  const server = flags.server === true;
  const addr = (flags.addr as string | undefined) ?? (server ? "0.0.0.0" : undefined);
  if (addr === undefined) throw new UsageError("the client needs -a <server address>");
  if (!isIp(addr)) throw new UsageError(`-a wants an IPv4 or IPv6 address, got '${addr}'`);
  const source = flags.source as string | undefined;
  if (source !== undefined && !isIp(source)) throw new UsageError(`-I wants an IPv4 or IPv6 address, got '${source}'`);
  const wildcard = addr === "0.0.0.0" || addr === "::" || addr === "::0";
  const v6 = isIPv6(source ?? addr);
  const address = (flags.address as string | undefined) ?? source ?? (server && !wildcard ? addr : v6 ? "::1" : "127.0.0.1");
  if (!isIp(address)) throw new UsageError(`--address wants a local IPv4 or IPv6 address, got '${address}'`);
  return {
    server, addr, source, port: flags.port as number, count: flags.count as number, size: flags.size as number,
    verbose: flags.verbose === true, validate: flags.validate === true, debug: flags.debug === true,
    address, udpPort: flags["udp-port"] as number, timeoutMs: (flags.timeout as number) * 1000,
  };
}

/** A counting semaphore (rping's cb->sem). */
export class Sem {
  private count = 0;
  private waiters: (() => void)[] = [];
  post(): void {
    const w = this.waiters.shift();
    if (w) w();
    else this.count++;
  }
  wait(): Promise<void> {
    if (this.count > 0) {
      this.count--;
      return Promise.resolve();
    }
    return new Promise((r) => this.waiters.push(r));
  }
  /** sem_timedwait: true once posted, false if `limit` comes first, its wait withdrawn (a later post is kept) */
  waitUntil(limit: Promise<void>): Promise<boolean> {
    if (this.count > 0) {
      this.count--;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const w = (): void => resolve(true);
      this.waiters.push(w);
      void limit.then(() => {
        const i = this.waiters.indexOf(w);
        if (i < 0) return; // posted first
        this.waiters.splice(i, 1);
        resolve(false);
      });
    });
  }
}

/** The client's ping text for iteration `ping`, starting its letters at `start` (rping_test_client). */
export function pingText(ping: number, start: number, size: number): Uint8Array {
  const b = new Uint8Array(size);
  const head = new TextEncoder().encode(`rdma-ping-${ping}: `).subarray(0, size - 1);
  b.set(head);
  for (let i = head.length, c = start; i < size; i++) {
    b[i] = c;
    c = c + 1 > 122 ? 65 : c + 1;
  }
  b[size - 1] = 0;
  return b;
}

/** The C string at the start of `b` (up to its NUL), as printf's %s shows it. */
function cString(b: Uint8Array): string {
  const n = b.indexOf(0);
  return Buffer.from(n < 0 ? b : b.subarray(0, n)).toString("latin1");
}

class Rping {
  state: number = S.IDLE;
  readonly sem = new Sem();
  cq!: CompletionQueue;
  qp!: QueuePair;
  recvMr!: MemoryRegion;
  sendMr!: MemoryRegion;
  rdmaMr!: MemoryRegion;
  startMr?: MemoryRegion;
  remote = { rkey: 0, addr: 0n, len: 0 };
  child: RdmaCmId | undefined;
  stopped = false;
  cmFailed = false;

  constructor(readonly o: RpingOptions, readonly io: Io, readonly dev: Device, readonly mad: Qp1Transport, readonly ch: EventChannel) {}

  /** The state as the pumps left it (read after every wait). */
  st(): number {
    return this.state;
  }

  debug(text: string): void {
    if (this.o.debug) this.io.out(text);
  }

  /** rping_cma_event_handler, run for every event until stopped. */
  async cmPump(): Promise<void> {
    while (!this.stopped) {
      const ev = await this.ch.getCmEvent();
      if (this.stopped) return;
      this.debug(`cma_event type ${eventStr(ev.event)} cma_id ${ev.id === this.child ? "child" : "parent"} (${ev.id === this.child ? "child" : "parent"})\n`);
      switch (ev.event) {
        case E.ADDR_RESOLVED:
          this.state = S.ADDR_RESOLVED;
          try {
            ev.id.resolveRoute(2000);
          } catch (e) {
            this.state = S.ERROR;
            this.io.err(`rdma_resolve_route: ${(e as Error).message}\n`);
            this.sem.post();
          }
          break;
        case E.ROUTE_RESOLVED:
          this.state = S.ROUTE_RESOLVED;
          this.sem.post();
          break;
        case E.CONNECT_REQUEST:
          this.state = S.CONNECT_REQUEST;
          this.child = ev.id;
          this.debug("child cma\n");
          this.sem.post();
          break;
        case E.ESTABLISHED:
          this.debug("ESTABLISHED\n");
          if (!this.o.server) this.state = S.CONNECTED;
          this.sem.post();
          break;
        case E.ADDR_ERROR:
        case E.ROUTE_ERROR:
        case E.CONNECT_ERROR:
        case E.UNREACHABLE:
        case E.REJECTED:
          this.io.err(`cma event ${eventStr(ev.event)}, error ${ev.status}\n`);
          this.cmFailed = true;
          this.state = S.ERROR;
          this.sem.post();
          break;
        case E.DISCONNECTED:
          this.io.err(`${this.o.server ? "server" : "client"} DISCONNECT EVENT...\n`);
          this.state = S.DISCONNECTED;
          this.sem.post();
          break;
        case E.DEVICE_REMOVAL:
          this.io.err("cma detected device removal!!!!\n");
          this.state = S.ERROR;
          this.sem.post();
          break;
        default:
          this.io.err(`unhandled event: ${eventStr(ev.event)}, ignoring\n`);
      }
      ev.ack();
    }
  }

  /** cq_thread + rping_cq_event_handler */
  async cqPump(): Promise<void> {
    while (!this.stopped) {
      let wc: WorkCompletion;
      try {
        wc = await this.cq.next();
      } catch {
        return; // the CQ was destroyed
      }
      if (this.stopped) return;
      if (wc.status !== WcStatus.SUCCESS) {
        if (wc.status === WcStatus.WR_FLUSH_ERR) continue;
        this.io.err(`cq completion failed status ${wc.status}\n`);
        this.state = S.ERROR;
        this.sem.post();
        return;
      }
      switch (wc.opcode) {
        case WcOpcode.SEND:
          this.debug("send completion\n");
          break;
        case WcOpcode.RDMA_WRITE:
          this.debug("rdma write completion\n");
          this.state = S.RDMA_WRITE_COMPLETE;
          this.sem.post();
          break;
        case WcOpcode.RDMA_READ:
          this.debug("rdma read completion\n");
          this.state = S.RDMA_READ_COMPLETE;
          this.sem.post();
          break;
        case WcOpcode.RECV: {
          this.debug("recv completion\n");
          const ok = this.o.server ? this.serverRecv(wc) : this.clientRecv(wc);
          if (!ok) {
            this.io.err("recv wc error: -1\n");
            this.state = S.ERROR;
            this.sem.post();
            return;
          }
          this.postRecv();
          this.sem.post();
          break;
        }
        default:
          this.debug("unknown!!!!! completion\n");
          this.state = S.ERROR;
          this.sem.post();
          return;
      }
    }
  }

  serverRecv(wc: WorkCompletion): boolean {
    if (wc.byteLen !== RDMA_INFO_SIZE) {
      this.io.err(`Received bogus data, size ${wc.byteLen}\n`);
      return false;
    }
    const dv = new DataView(this.recvMr.bytes.buffer, this.recvMr.bytes.byteOffset, RDMA_INFO_SIZE);
    this.remote = { addr: dv.getBigUint64(0), rkey: dv.getUint32(8), len: dv.getUint32(12) };
    this.debug(`Received rkey ${this.remote.rkey.toString(16)} addr ${this.remote.addr.toString(16)} len ${this.remote.len} from peer\n`);
    this.state = this.state <= S.CONNECTED || this.state === S.RDMA_WRITE_COMPLETE ? S.RDMA_READ_ADV : S.RDMA_WRITE_ADV;
    return true;
  }

  clientRecv(wc: WorkCompletion): boolean {
    if (wc.byteLen !== RDMA_INFO_SIZE) {
      this.io.err(`Received bogus data, size ${wc.byteLen}\n`);
      return false;
    }
    this.state = this.state === S.RDMA_READ_ADV ? S.RDMA_WRITE_ADV : S.RDMA_WRITE_COMPLETE;
    return true;
  }

  postRecv(): void {
    this.qp.postRecv({ wrId: 0n, sgList: [this.recvMr.sge(0, RDMA_INFO_SIZE)] });
  }

  /** rping_setup_qp + rping_setup_buffers, on the connection's ID. */
  setup(id: RdmaCmId): void {
    const pd = this.dev.allocPd();
    this.cq = this.dev.createCq(RPING_SQ_DEPTH * 2);
    this.qp = id.createQp(pd, {
      sendCq: this.cq, recvCq: this.cq, cap: { maxSendWr: RPING_SQ_DEPTH, maxRecvWr: 2, maxRecvSge: 1, maxSendSge: 1 },
    });
    this.recvMr = pd.regMr(RDMA_INFO_SIZE, Access.LOCAL_WRITE);
    this.sendMr = pd.regMr(RDMA_INFO_SIZE, 0);
    const rw = Access.LOCAL_WRITE | Access.REMOTE_READ | Access.REMOTE_WRITE;
    this.rdmaMr = pd.regMr(this.o.size, rw);
    if (!this.o.server) this.startMr = pd.regMr(this.o.size, rw);
    this.debug("allocated & registered buffers...\n");
  }

  /** rping_format_send: the rdma_info of `mr` into the send buffer. */
  formatSend(mr: MemoryRegion): void {
    const dv = new DataView(this.sendMr.bytes.buffer, this.sendMr.bytes.byteOffset, RDMA_INFO_SIZE);
    dv.setBigUint64(0, mr.addr);
    dv.setUint32(8, mr.rkey);
    dv.setUint32(12, this.o.size);
    this.debug(`RDMA addr ${mr.addr.toString(16)} rkey ${mr.rkey.toString(16)} len ${this.o.size}\n`);
  }

  postSendInfo(): void {
    this.qp.postSend({ wrId: 1n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [this.sendMr.sge(0, RDMA_INFO_SIZE)] });
  }

  postRdma(opcode: number, length: number): void {
    this.qp.postSend({
      wrId: 2n, opcode, sendFlags: SendFlags.SIGNALED,
      sgList: [{ addr: this.rdmaMr.addr, length, lkey: this.rdmaMr.lkey }],
      rdma: { remoteAddr: this.remote.addr, rkey: this.remote.rkey },
    });
  }

  /** rping_test_server: 0 when the client disconnected, -1 otherwise. */
  async testServer(): Promise<number> {
    for (;;) {
      await this.sem.wait();
      if (this.st() !== S.RDMA_READ_ADV) {
        this.io.err(`wait for RDMA_READ_ADV state ${this.st()}\n`);
        break;
      }
      this.debug("server received sink adv\n");
      this.postRdma(WrOpcode.RDMA_READ, this.remote.len);
      this.debug("server posted rdma read req \n");
      await this.sem.wait();
      if (this.st() !== S.RDMA_READ_COMPLETE) {
        this.io.err(`wait for RDMA_READ_COMPLETE state ${this.st()}\n`);
        break;
      }
      this.debug("server received read complete\n");
      if (this.o.verbose) this.io.out(`server ping data: ${cString(this.rdmaMr.bytes)}\n`);
      this.postSendInfo();
      this.debug("server posted go ahead\n");
      await this.sem.wait();
      if (this.st() !== S.RDMA_WRITE_ADV) {
        this.io.err(`wait for RDMA_WRITE_ADV state ${this.st()}\n`);
        break;
      }
      this.debug("server received sink adv\n");
      const n = this.rdmaMr.bytes.indexOf(0);
      this.postRdma(WrOpcode.RDMA_WRITE, (n < 0 ? this.o.size : n) + 1);
      await this.sem.wait();
      if (this.st() !== S.RDMA_WRITE_COMPLETE) {
        this.io.err(`wait for RDMA_WRITE_COMPLETE state ${this.st()}\n`);
        break;
      }
      this.debug("server rdma write complete \n");
      this.postSendInfo();
      this.debug("server posted go ahead\n");
    }
    return this.st() === S.DISCONNECTED ? 0 : -1;
  }

  /** rping_test_client: 0 when every ping went through (or the server went away), -1 otherwise. */
  async testClient(): Promise<number> {
    let start = 65;
    for (let ping = 0; !this.o.count || ping < this.o.count; ping++) {
      this.state = S.RDMA_READ_ADV;
      this.startMr!.bytes.set(pingText(ping, start, this.o.size));
      start = start + 1 > 122 ? 65 : start + 1;
      this.formatSend(this.startMr!);
      this.postSendInfo();
      await this.sem.wait();
      if (this.st() !== S.RDMA_WRITE_ADV) {
        this.io.err(`wait for RDMA_WRITE_ADV state ${this.st()}\n`);
        return this.st() === S.DISCONNECTED ? 0 : -1;
      }
      this.formatSend(this.rdmaMr);
      this.postSendInfo();
      await this.sem.wait();
      if (this.st() !== S.RDMA_WRITE_COMPLETE) {
        this.io.err(`wait for RDMA_WRITE_COMPLETE state ${this.st()}\n`);
        return this.st() === S.DISCONNECTED ? 0 : -1;
      }
      if (this.o.validate && Buffer.compare(this.startMr!.bytes, this.rdmaMr.bytes) !== 0) {
        this.io.err("data mismatch!\n");
        return -1;
      }
      if (this.o.verbose) this.io.out(`ping data: ${cString(this.rdmaMr.bytes)}\n`);
    }
    return 0;
  }
}

/** Waits on the semaphore for one of `states`; false (after rping's message) otherwise. */
async function waitFor(r: Rping, what: string, ok: (s: number) => boolean): Promise<boolean> {
  await r.sem.wait();
  if (ok(r.state)) return true;
  r.io.err(`${what} state ${r.state}\n`);
  return false;
}

async function runServer(r: Rping): Promise<number> {
  const o = r.o;
  const listen = r.ch.createId(PortSpace.TCP, r);
  listen.bindAddr({ address: o.addr === "::0" ? "::" : o.addr, port: o.port });
  r.debug("rdma_bind_addr successful\n");
  r.debug("rdma_listen\n");
  listen.listen(3);
  if (!(await waitFor(r, "wait for CONNECT_REQUEST", (s) => s === S.CONNECT_REQUEST))) return -1;
  const child = r.child!;
  r.setup(child);
  r.postRecv();
  void r.cqPump();
  r.debug("accepting client connection request\n");
  child.accept();
  await r.sem.wait();
  if (r.state === S.ERROR) {
    r.io.err(`wait for CONNECTED state ${r.state}\n`);
    r.io.err("connect error -1\n");
    return -1;
  }
  let ret = await r.testServer();
  if (ret) r.io.err(`rping server failed: ${ret}\n`);
  try {
    child.disconnect();
  } catch {
    /* already disconnected */
  }
  await r.mad.drain(); // the DREP leaves before the device closes
  return ret ? -1 : 0;
}

async function runClient(r: Rping): Promise<number> {
  const o = r.o;
  const id = r.ch.createId(PortSpace.TCP, r);
  id.resolveAddr(o.source ? { address: o.source, port: 0 } : undefined, { address: o.addr, port: o.port }, 2000);
  if (!(await waitFor(r, "waiting for addr/route resolution", (s) => s === S.ROUTE_RESOLVED))) return -1;
  r.debug("rdma_resolve_addr - rdma_resolve_route successful\n");
  r.setup(id);
  r.postRecv();
  void r.cqPump();
  id.connect({ responderResources: 1, initiatorDepth: 1, retryCount: 7, rnrRetryCount: 7 });
  if (!(await waitFor(r, "wait for CONNECTED", (s) => s === S.CONNECTED))) {
    r.io.err("connect error -1\n");
    return -1;
  }
  r.debug("rmda_connect successful\n");
  const ret = await r.testClient();
  if (ret) r.io.err(`rping client failed: ${ret}\n`);
  if (r.state !== S.DISCONNECTED) {
    id.disconnect();
    // the DREP brings DISCONNECTED (rping's cm thread prints it while main tears down)
    const limit = new Promise<void>((resolve) => setTimeout(resolve, DISCONNECT_WAIT_MS).unref());
    while (r.st() !== S.DISCONNECTED && r.st() !== S.ERROR) {
      if (!(await r.sem.waitUntil(limit))) break;
    }
  }
  return ret;
}

export async function runRping(o: RpingOptions, io: Io): Promise<number> {
  let dev: Device;
  try {
    dev = await openDevice({ address: o.address, port: o.udpPort, mrArenaBytes: 4 << 20, ringArenaBytes: 4 << 20 });
  } catch (e) {
    io.err(`rdma_create_id: ${(e as Error).message}\n`);
    return 1;
  }
  const { mad, ch } = openToolCm(dev, o.udpPort);
  const r = new Rping(o, io, dev, mad, ch);
  void r.cmPump();
  const giveUp = giveUpAfter(o.timeoutMs, "rping", io, 1);
  try {
    const ret = await Promise.race([o.server ? runServer(r) : runClient(r), giveUp.expired]);
    return ret === 0 ? 0 : 1;
  } catch (e) {
    io.err(`softroce rping: ${(e as Error).message}\n`);
    return 1;
  } finally {
    giveUp.cancel();
    await mad.drain();
    r.stopped = true;
    ch.destroy();
    dev.close();
  }
}

export const rpingCommand = optionsCommand("rping", "rdma-core's rping over rdma_cm (CM MADs on QP1): RDMA READ/WRITE ping, interoperable with Linux's", HELP, rpingOptions, runRping);
