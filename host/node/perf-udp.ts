// softroce perf in two processes: perftest's tests between this device and a peer's over UDP.
// The server (no host argument) listens on TCP; the client connects, and the two exchange one
// JSON line each (the out-of-band exchange, below) before the client runs the test on the wire.
//
// Out-of-band exchange (protocol "softroce-perf/1", one JSON object per line over TCP):
//   client -> server  {proto, test, size, iterations, mtu, txDepth, qps, atomicType, timeout, retryCnt,
//                      gid, udpPort, qp: [{qpn, psn, rkey, addr}]}   (the client's options rule)
//   server -> client  {proto, gid, udpPort, qp: [...]} once its QPs are in RTS and receives are posted,
//                     or {error} when it refuses (another test, bad options)
//   client -> server  {done: true} when the client has finished
//   server -> client  {received, corrupted, errors} (what the server saw: SENDs, WRITEs echoed)
import net from "node:net";
import { connectQp } from "../core/verbs/connect.js";
import type { CompletionQueue, WorkCompletion } from "../core/verbs/cq.js";
import type { Device } from "../core/verbs/device.js";
import { Access, nameOf, QpType, SendFlags, WcOpcode, WcStatus, WrOpcode } from "../core/verbs/enums.js";
import type { MemoryRegion } from "../core/verbs/mr.js";
import type { QueuePair } from "../core/verbs/qp.js";
import type { RecvWr, SendWr } from "../core/verbs/post.js";
import { isBwTest, PerfOptionError, resolvePerfOptions, type PerfOptions, type ResolvedPerfOptions } from "../core/perf/options.js";
import { bwFigures, latFigures } from "../core/perf/stats.js";
import type { PerfProgress, PerfResult } from "../core/perf/run.js";
import { PcapRecorder } from "../core/capture/recorder.js";
import { openDevice, udpLinkOf } from "./index.js";
import { interfaceMtu, roceMtuFor } from "./netif.js";

export const PERF_PROTO = "softroce-perf/1";
/** perftest's default TCP port for its exchange. */
export const PERF_TCP_PORT = 18515;

export interface UdpPerfOptions {
  /** the server's host name or address (client); undefined: be the server */
  server?: string;
  tcpPort?: number;
  /** local address the device binds (its GID 0) */
  address: string;
  /** UDP port of this device (0: any free one; the peer learns it in the exchange) */
  udpPort: number;
  /** milliseconds to wait for the peer (TCP) and for progress on the wire */
  timeoutMs?: number;
  pcap?: PcapRecorder;
  onProgress?(p: PerfProgress): void;
  /** status lines (waiting for a client, connected) */
  onStatus?(line: string): void;
}

/** The peer refused, vanished, or spoke another protocol. */
export class PerfPeerError extends Error {
  override name = "PerfPeerError";
}

interface QpInfo {
  qpn: number;
  psn: number;
  rkey: number;
  addr: string;
}

interface Side {
  device: Device;
  sendCq: CompletionQueue;
  recvCq: CompletionQueue;
  qps: QueuePair[];
  mrs: MemoryRegion[];
  slotBytes: number;
  slots: number;
  /** the port's active MTU in bytes (from the interface, as rxe) */
  activeMtu: number;
}

/**
 * perftest's rule: a path MTU above the port's active MTU is lowered to it, with a message.
 * (rxe itself accepts any path MTU up to 4096 in modify_qp; the kernel then refuses the
 * datagrams with EMSGSIZE, which looks like loss. Clamping where the tool starts is clearer.)
 */
function clampMtu(o: ResolvedPerfOptions, active: number, u: UdpPerfOptions): void {
  if (o.mtu <= active) return;
  u.onStatus?.(`Requested mtu is higher than active mtu; changing to active mtu - ${active}`);
  o.mtu = active;
}

const ACCESS = Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ | Access.REMOTE_ATOMIC;

/** Options the client sends; the server checks them with the same rules. */
const WIRE_KEYS = ["test", "size", "iterations", "mtu", "txDepth", "qps", "atomicType", "timeout", "retryCnt"] as const;

async function openSide(o: ResolvedPerfOptions, u: UdpPerfOptions): Promise<Side> {
  const slotBytes = (Math.max(o.size, 8) + 63) & ~63;
  const slots = o.txDepth;
  const mrBytes = o.qps * slots * slotBytes;
  const wr = Math.max(o.txDepth, 16);
  const cqe = Math.min(32767, o.qps * wr + 64);
  const ifMtu = interfaceMtu(u.address);
  const activeMtu = ifMtu === undefined ? 4096 : roceMtuFor(ifMtu);
  const device = await openDevice({
    address: u.address,
    port: u.udpPort,
    activeMtu: Math.log2(activeMtu) - 7,
    mrArenaBytes: Math.max(1 << 20, Math.ceil((mrBytes + o.qps * 4096 + (64 << 10)) / (1 << 20)) * (1 << 20)),
    ringArenaBytes: (16 << 20) + o.qps * wr * 2 * 256 + cqe * 2 * 128,
    maxQp: Math.max(16, o.qps),
  });
  const pd = device.allocPd();
  const sendCq = device.createCq(cqe);
  const recvCq = device.createCq(cqe);
  const qps: QueuePair[] = [];
  const mrs: MemoryRegion[] = [];
  for (let i = 0; i < o.qps; i++) {
    qps.push(pd.createQp({ qpType: QpType.RC, sendCq, recvCq, cap: { maxSendWr: wr, maxRecvWr: wr, maxSendSge: 1, maxRecvSge: 1 } }));
    mrs.push(pd.regMr(slots * slotBytes, ACCESS));
  }
  u.pcap?.attach(device.port!);
  return { device, sendCq, recvCq, qps, mrs, slotBytes, slots, activeMtu };
}

function infos(s: Side): QpInfo[] {
  return s.qps.map((qp, i) => ({ qpn: qp.qpNum, psn: (Math.random() * 0x1000000) >>> 0, rkey: s.mrs[i]!.rkey, addr: s.mrs[i]!.addr.toString() }));
}

function connectAll(s: Side, o: ResolvedPerfOptions, mine: QpInfo[], peer: { gid: string; udpPort: number; qp: QpInfo[] }): void {
  const common = { pathMtu: Math.log2(o.mtu) - 7, qpAccessFlags: ACCESS, timeout: o.timeout, retryCnt: o.retryCnt, rnrRetry: 7, minRnrTimer: 1, maxRdAtomic: 16, maxDestRdAtomic: 16 };
  s.qps.forEach((qp, i) => {
    const r = peer.qp[i]!;
    connectQp(qp, { qpNum: r.qpn, psn: r.psn, gid: peer.gid, port: peer.udpPort }, { ...common, sqPsn: mine[i]!.psn });
  });
}

/** Newline-delimited JSON over a socket, with a deadline per line. */
class Line {
  private buf = "";
  private waiting: ((v: unknown) => void) | undefined;
  private lines: string[] = [];
  private ended: Error | undefined;
  constructor(readonly sock: net.Socket, private readonly timeoutMs: number) {
    sock.setEncoding("utf8");
    sock.on("data", (d: string) => {
      this.buf += d;
      if (this.buf.length > 1 << 20) return this.fail(new PerfPeerError("the peer sent more than 1 MiB without a newline"));
      let i;
      while ((i = this.buf.indexOf("\n")) >= 0) {
        this.lines.push(this.buf.slice(0, i));
        this.buf = this.buf.slice(i + 1);
      }
      this.kick();
    });
    sock.on("error", (e) => this.fail(new PerfPeerError(`out-of-band connection: ${e.message}`)));
    sock.on("close", () => this.fail(new PerfPeerError("the peer closed the out-of-band connection")));
  }
  private fail(e: Error): void {
    this.ended ??= e;
    this.kick();
  }
  private kick(): void {
    const w = this.waiting;
    this.waiting = undefined;
    w?.(undefined);
  }
  send(v: object): void {
    this.sock.write(JSON.stringify(v) + "\n");
  }
  async read(what: string): Promise<Record<string, unknown>> {
    const end = Date.now() + this.timeoutMs;
    while (!this.lines.length) {
      if (this.ended) throw this.ended;
      const left = end - Date.now();
      if (left <= 0) throw new PerfPeerError(`timed out after ${this.timeoutMs / 1000} s waiting for ${what}`);
      await new Promise((r) => {
        this.waiting = r;
        setTimeout(r, Math.min(left, 1000));
      });
    }
    const text = this.lines.shift()!;
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      throw new PerfPeerError(`the peer sent something that is not JSON (${text.slice(0, 40)})`);
    }
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new PerfPeerError(`the peer sent ${text.slice(0, 40)} instead of ${what}`);
    return v as Record<string, unknown>;
  }
}

function checkPeer(v: Record<string, unknown>, qps: number): { gid: string; udpPort: number; qp: QpInfo[] } {
  if (v.proto !== PERF_PROTO) throw new PerfPeerError(`the peer speaks ${JSON.stringify(v.proto)}, not ${PERF_PROTO}`);
  const gid = v.gid;
  const udpPort = v.udpPort;
  const qp = v.qp;
  if (typeof gid !== "string" || !net.isIP(gid)) throw new PerfPeerError(`bad GID from the peer: ${JSON.stringify(gid)}`);
  if (!Number.isInteger(udpPort) || (udpPort as number) < 1 || (udpPort as number) > 65535) throw new PerfPeerError(`bad UDP port from the peer: ${JSON.stringify(udpPort)}`);
  if (!Array.isArray(qp) || qp.length !== qps) throw new PerfPeerError(`the peer sent ${Array.isArray(qp) ? qp.length : "no"} QPs, expected ${qps}`);
  for (const q of qp as QpInfo[]) {
    const ok =
      q && Number.isInteger(q.qpn) && q.qpn > 0 && q.qpn < 1 << 24 && Number.isInteger(q.psn) && q.psn >= 0 && q.psn < 1 << 24 &&
      Number.isInteger(q.rkey) && q.rkey >= 0 && q.rkey <= 0xffffffff && typeof q.addr === "string" && /^[0-9]{1,20}$/.test(q.addr);
    if (!ok) throw new PerfPeerError(`bad QP entry from the peer: ${JSON.stringify(q)}`);
  }
  return { gid, udpPort: udpPort as number, qp: qp as QpInfo[] };
}

/** WRs per side, QP and slot, built once and reused (postSend copies a WR into the SQ; only wrId changes). */
const wrCache = new WeakMap<Side, SendWr[][]>();

function wrFor(o: ResolvedPerfOptions, s: Side, peer: QpInfo[], qp: number, seq: number, slot: number): SendWr {
  let perQp = wrCache.get(s);
  if (!perQp) wrCache.set(s, (perQp = []));
  const row = (perQp[qp] ??= []);
  const wr = (row[slot] ??= buildWr(o, s, peer, qp, slot));
  wr.wrId = BigInt(seq);
  return wr;
}

function buildWr(o: ResolvedPerfOptions, s: Side, peer: QpInfo[], qp: number, slot: number): SendWr {
  const seq = 0;
  const off = slot * s.slotBytes;
  const mr = s.mrs[qp]!;
  const remoteAddr = BigInt(peer[qp]!.addr) + BigInt(off);
  const rkey = peer[qp]!.rkey;
  const base = { wrId: BigInt(seq), sendFlags: SendFlags.SIGNALED, sgList: o.size > 0 ? [mr.sge(off, o.size)] : [] };
  switch (o.test) {
    case "send_bw":
    case "send_lat":
      return { ...base, opcode: WrOpcode.SEND };
    case "write_bw":
    case "write_lat":
      return { ...base, opcode: WrOpcode.RDMA_WRITE, rdma: { remoteAddr, rkey } };
    case "read_bw":
    case "read_lat":
      return { ...base, opcode: WrOpcode.RDMA_READ, rdma: { remoteAddr, rkey } };
    case "atomic_bw":
      return {
        ...base,
        sgList: [mr.sge(off, 8)],
        opcode: o.atomicType === "FETCH_AND_ADD" ? WrOpcode.ATOMIC_FETCH_AND_ADD : WrOpcode.ATOMIC_CMP_AND_SWP,
        atomic: { remoteAddr: BigInt(peer[qp]!.addr), rkey, compareAdd: 1n, swap: 1n },
      };
  }
}

const tick = () => new Promise((r) => setImmediate(r));

/** Counts that both sides keep. */
interface Counts {
  lost: number;
  duplicated: number;
  corrupted: number;
  errors: number;
  error_statuses: Record<string, number>;
}

function status(c: Counts, wc: WorkCompletion): boolean {
  if (wc.status === WcStatus.SUCCESS) return true;
  c.errors++;
  const n = nameOf(WcStatus, wc.status);
  c.error_statuses[n] = (c.error_statuses[n] ?? 0) + 1;
  return false;
}

/** The two-process mode builds RC QPs only (UC and UD: --local). */
export function rcOnly(o: { connection?: string }): void {
  if ((o.connection ?? "RC") !== "RC") throw new PerfOptionError(`the two-process mode runs RC only; use --local for ${o.connection}`);
}

/** The server: answers one client's run and returns what it saw. */
export async function servePerfUdp(options: PerfOptions, u: UdpPerfOptions): Promise<{ test: string; received: number; errors: number }> {
  const timeoutMs = u.timeoutMs ?? 60_000;
  const tcpPort = u.tcpPort ?? PERF_TCP_PORT;
  const srv = net.createServer();
  srv.listen({ port: tcpPort, host: u.address.includes(":") ? "::" : "0.0.0.0", exclusive: true });
  await new Promise<void>((resolve, reject) => {
    srv.once("listening", resolve);
    srv.once("error", (e: NodeJS.ErrnoException) => reject(new PerfPeerError(`cannot listen on TCP port ${tcpPort}: ${e.code ?? e.message}`)));
  });
  u.onStatus?.(`waiting for a client on TCP port ${tcpPort}`);
  const sock = await new Promise<net.Socket>((resolve, reject) => {
    const t = setTimeout(() => reject(new PerfPeerError(`no client within ${timeoutMs / 1000} s`)), timeoutMs);
    srv.once("connection", (s) => (clearTimeout(t), resolve(s)));
  });
  srv.close();
  const line = new Line(sock, timeoutMs);
  let side: Side | undefined;
  try {
    const hello = await line.read("the client's parameters");
    const asked: Record<string, unknown> = {};
    for (const k of WIRE_KEYS) asked[k] = hello[k];
    if (asked.test !== options.test) {
      const msg = `the client runs ${String(asked.test)}, this server ${options.test}`;
      line.send({ error: msg });
      throw new PerfPeerError(msg);
    }
    let o: ResolvedPerfOptions;
    try {
      o = resolvePerfOptions({ ...options, ...(asked as Partial<PerfOptions>) });
      rcOnly(o);
    } catch (e) {
      line.send({ error: (e as Error).message });
      throw new PerfPeerError(`the client asked for bad parameters: ${(e as Error).message}`);
    }
    const peer = checkPeer(hello, o.qps);
    side = await openSide(o, u);
    clampMtu(o, side.activeMtu, u);
    const mine = infos(side);
    connectAll(side, o, mine, peer);
    const s = side;
    const c: Counts = { lost: 0, duplicated: 0, corrupted: 0, errors: 0, error_statuses: {} };
    let received = 0;
    // receive WRs built once per QP and slot, reused
    const recvWrs: RecvWr[][] = [];
    const postRecv = (q: number, slot: number) =>
      s.qps[q]!.postRecv(((recvWrs[q] ??= [])[slot] ??= { wrId: BigInt(slot), sgList: o.size > 0 ? [s.mrs[q]!.sge(slot * s.slotBytes, o.size)] : [] }));
    if (o.test === "send_bw" || o.test === "send_lat") for (let q = 0; q < o.qps; q++) for (let k = 0; k < s.slots; k++) postRecv(q, k % s.slots);
    u.onStatus?.(`connected: ${o.test}, ${o.qps} QP(s), ${o.size} B, MTU ${o.mtu}`);
    line.send({ proto: PERF_PROTO, gid: side.device.queryGid(0), udpPort: (side.device.limits as { port: number }).port, mtu: o.mtu, qp: mine });
    let done = false;
    const doneP = line.read("the client's end of the run").then(() => (done = true), () => (done = true));
    let seq = 0;
    const onRecv = (wc: WorkCompletion) => {
      if (!status(c, wc)) return;
      const q = s.qps.findIndex((qp) => qp.qpNum === wc.qpNum);
      if (wc.byteLen !== o.size) c.corrupted++;
      received++;
      postRecv(q, Number(wc.wrId));
      if (o.test === "send_lat") s.qps[0]!.postSend(wrFor(o, s, peer.qp, 0, seq++, 0));
    };
    if (o.test === "send_bw" || o.test === "send_lat") {
      while (!done) {
        const wc = await Promise.race([s.recvCq.next(), doneP.then(() => undefined)]);
        if (wc) onRecv(wc);
        for (const w of s.recvCq.poll(64)) onRecv(w);
        for (const w of s.sendCq.poll(64)) status(c, w);
      }
    } else if (o.test === "write_lat") {
      // the client's WRITE lands in slot 0, its last byte counting iterations (1..255, then again);
      // the answer is that byte with the top bit flipped, written back into the client's slot 0
      const last = Number(s.mrs[0]!.addr) + o.size - 1;
      while (!done) {
        const u8 = new Uint8Array(s.device.memory.buffer);
        if (u8[last] === (seq % 255) + 1) {
          u8[last]! ^= 0x80;
          received++;
          s.qps[0]!.postSend(wrFor(o, s, peer.qp, 0, seq++, 0));
        }
        for (const wc of s.sendCq.poll(64)) status(c, wc);
        await tick();
      }
    }
    await doneP;
    line.send({ received, corrupted: c.corrupted, errors: c.errors });
    await new Promise<void>((r) => sock.end(() => r()));
    return { test: o.test, received, errors: c.errors };
  } finally {
    sock.destroy();
    side?.device.close();
  }
}

/** The client: runs the test against a server and returns perftest's figures. */
export async function runPerfUdp(options: PerfOptions, u: UdpPerfOptions & { server: string }): Promise<PerfResult> {
  const o = resolvePerfOptions(options);
  rcOnly(o);
  const timeoutMs = u.timeoutMs ?? 60_000;
  const tcpPort = u.tcpPort ?? PERF_TCP_PORT;
  const side = await openSide(o, u);
  clampMtu(o, side.activeMtu, u);
  let sock: net.Socket | undefined;
  try {
    sock = net.connect({ host: u.server, port: tcpPort });
    const conn = sock;
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new PerfPeerError(`no answer from ${u.server}:${tcpPort} within ${timeoutMs / 1000} s`)), timeoutMs);
      conn.once("connect", () => (clearTimeout(t), resolve()));
      conn.once("error", (e: NodeJS.ErrnoException) => {
        clearTimeout(t);
        reject(new PerfPeerError(`cannot reach the server ${u.server} on TCP port ${tcpPort}: ${e.code ?? e.message}`));
      });
    });
    const line = new Line(sock, timeoutMs);
    const mine = infos(side);
    const hello: Record<string, unknown> = { proto: PERF_PROTO, gid: side.device.queryGid(0), udpPort: (side.device.limits as { port: number }).port, qp: mine };
    for (const k of WIRE_KEYS) hello[k] = o[k];
    line.send(hello);
    const answer = await line.read("the server's QPs");
    if (typeof answer.error === "string") throw new PerfPeerError(`the server refused: ${answer.error}`);
    const peer = checkPeer(answer, o.qps);
    // the server may have lowered the path MTU to its own active MTU: both ends must agree
    if (typeof answer.mtu !== "number" || ![256, 512, 1024, 2048, 4096].includes(answer.mtu) || answer.mtu > o.mtu) {
      throw new PerfPeerError(`bad path MTU from the server: ${JSON.stringify(answer.mtu)}`);
    }
    if (answer.mtu < o.mtu) {
      u.onStatus?.(`the server's active mtu is lower; changing to ${answer.mtu}`);
      o.mtu = answer.mtu;
    }
    connectAll(side, o, mine, peer);
    const c: Counts = { lost: 0, duplicated: 0, corrupted: 0, errors: 0, error_statuses: {} };
    const wall0 = performance.now();
    let wall: PerfResult["wall"];
    let messages: number;
    if (isBwTest(o.test)) {
      const times = await clientBw(o, side, peer.qp, c, u, timeoutMs);
      wall = bwFigures(o.size, times.t0, times.done, Math.max(o.txDepth * o.qps, Math.ceil(times.done.length / 20)));
      messages = o.iterations * o.qps;
    } else {
      const samples = await clientLat(o, side, peer.qp, c, u, timeoutMs);
      wall = latFigures(samples, o.test === "read_lat" ? 1 : 2);
      messages = o.iterations;
    }
    line.send({ done: true });
    const report = await line.read("the server's counts");
    if (o.test === "send_bw" && typeof report.received === "number" && report.received < messages) c.lost = Math.max(c.lost, messages - report.received);
    if (typeof report.corrupted === "number") c.corrupted += report.corrupted;
    const counters = side.device.queryCounters();
    const link = udpLinkOf(side.device)!;
    const ok = c.lost === 0 && c.duplicated === 0 && c.corrupted === 0 && c.errors === 0;
    return {
      test: o.test, connection: o.connection, bytes: o.size, iterations: o.iterations, qps: o.qps, mtu: o.mtu, tx_depth: o.txDepth,
      seed: o.seed, verify: false, faults: o.faults, clock: "wall", ...wall, verified: 0, ...c, wall, sim: null,
      retransmissions: counters.completer_retry_err ?? 0, rnr_naks: counters.rcvd_rnr_err ?? 0, seq_naks: counters.rcvd_seq_err ?? 0,
      packets_sent: counters.sent_pkts ?? 0,
      wire: { sent: link.stats.sent, delivered: link.stats.received, lost: link.stats.sendErrors, duplicated: 0, corrupted: 0, reordered: 0 },
      virtual_us: 0, wall_ms: performance.now() - wall0, ok,
      link: `UDP ${u.address}:${(side.device.limits as { port: number }).port} <-> ${peer.gid} port ${peer.udpPort} (send errors ${JSON.stringify(link.stats.sendErrorsByCode)}, backpressured ${link.stats.backpressured})`,
    };
  } finally {
    sock?.destroy();
    side.device.close();
  }
}

/** Waits for the next completion on `cq`, or fails after `ms` without one. */
async function nextOrStall(cq: CompletionQueue, ms: number): Promise<WorkCompletion | undefined> {
  let t: ReturnType<typeof setTimeout> | undefined;
  const r = await Promise.race([cq.next(), new Promise<undefined>((res) => (t = setTimeout(() => res(undefined), ms)))]);
  clearTimeout(t);
  return r;
}

async function clientBw(o: ResolvedPerfOptions, s: Side, peer: QpInfo[], c: Counts, u: UdpPerfOptions, stallMs: number) {
  const n = o.iterations;
  const posted = new Array<number>(o.qps).fill(0);
  const completed = new Array<number>(o.qps).fill(0);
  const failed = new Array<boolean>(o.qps).fill(false);
  const done = new Float64Array(n * o.qps);
  let timed = 0;
  const index = new Map(s.qps.map((qp, i) => [qp.qpNum, i]));
  const post = (q: number) => {
    s.qps[q]!.postSend(wrFor(o, s, peer, q, posted[q]!, posted[q]! % s.slots));
    posted[q]!++;
  };
  const t0 = performance.now() * 1000;
  let lastProgress = performance.now();
  for (let q = 0; q < o.qps; q++) while (posted[q]! < Math.min(n, s.slots)) post(q);
  const finished = () => posted.every((p, q) => failed[q] || (p >= n && completed[q]! >= p));
  const handle = (wc: WorkCompletion) => {
    const q = index.get(wc.qpNum);
    if (q === undefined) return;
    const seq = Number(wc.wrId);
    if (seq < completed[q]!) return void c.duplicated++;
    completed[q] = seq + 1;
    if (timed < done.length) done[timed++] = performance.now() * 1000;
    if (!status(c, wc)) return void (failed[q] = true);
    if (!failed[q] && posted[q]! < n) post(q);
  };
  while (!finished()) {
    const wc = await nextOrStall(s.sendCq, stallMs);
    if (!wc) break;
    handle(wc);
    for (const w of s.sendCq.poll(64)) handle(w);
    const now = performance.now();
    if (u.onProgress && now - lastProgress >= 1000) {
      lastProgress = now;
      u.onProgress({ done: timed, total: n * o.qps, wallMs: now - t0 / 1000, virtualUs: 0 });
    }
  }
  for (let q = 0; q < o.qps; q++) c.lost += n - completed[q]!;
  return { t0, done: done.subarray(0, timed) };
}

async function clientLat(o: ResolvedPerfOptions, s: Side, peer: QpInfo[], c: Counts, u: UdpPerfOptions, stallMs: number): Promise<number[]> {
  const n = o.iterations;
  const samples: number[] = [];
  const qp = s.qps[0]!;
  const slot0 = () => new Uint8Array(s.device.memory.buffer, Number(s.mrs[0]!.addr), Math.max(o.size, 1));
  const postRecv = () => qp.postRecv({ wrId: 0n, sgList: o.size > 0 ? [s.mrs[0]!.sge(0, o.size)] : [] });
  if (o.test === "send_lat") for (let k = 0; k < 4; k++) postRecv();
  const start = performance.now();
  let lastProgress = start;
  for (let seq = 0; seq < n; seq++) {
    const t0 = performance.now();
    const mark = (seq % 255) + 1;
    if (o.test === "write_lat") slot0()[o.size - 1] = mark;
    qp.postSend(wrFor(o, s, peer, 0, seq, 0));
    let ok = false;
    const end = Date.now() + stallMs;
    if (o.test === "write_lat") {
      // the server writes back our mark with its top bit flipped
      const want = mark ^ 0x80;
      for (;;) {
        for (const wc of s.sendCq.poll(16)) if (!status(c, wc)) break;
        if (c.errors || Date.now() > end) break;
        if (slot0()[o.size - 1] === want) {
          ok = true;
          break;
        }
        await tick();
      }
    } else {
      const cq = o.test === "send_lat" ? s.recvCq : s.sendCq;
      for (;;) {
        for (const wc of o.test === "send_lat" ? s.sendCq.poll(16) : []) status(c, wc);
        const wc = await nextOrStall(cq, Math.max(1, end - Date.now()));
        if (!wc) break;
        if (!status(c, wc)) break;
        if (wc.opcode === WcOpcode.RECV) postRecv();
        if (wc.byteLen !== o.size && o.test === "send_lat") c.corrupted++;
        ok = true;
        break;
      }
    }
    if (!ok) {
      c.lost += n - seq;
      break;
    }
    samples.push((performance.now() - t0) * 1000);
    const now = performance.now();
    if (u.onProgress && now - lastProgress >= 1000) {
      lastProgress = now;
      u.onProgress({ done: seq + 1, total: n, wallMs: now - start, virtualUs: 0 });
    }
  }
  for (const wc of s.sendCq.poll(64)) status(c, wc);
  return samples;
}
