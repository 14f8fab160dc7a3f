// softroce perf in two processes: the out-of-band exchange (beside pingpong's, in pingpong.ts)
// and the two roles around the perf engine. The server (no host argument) listens on TCP; the
// client connects, and the two exchange one JSON line each before the client runs the test on
// the wire (host/core/perf on the UDP bed of host/node/perf-udp.ts).
//
// Protocol "softroce-perf/1", one JSON object per line over TCP:
//   client -> server  {proto, test, size, iterations, mtu, txDepth, qps, atomicType, timeout, retryCnt,
//                      gid, udpPort, qp: [{qpn, psn, rkey, addr}]}   (the client's options rule)
//   server -> client  {proto, gid, udpPort, mtu, qp: [...]} once its QPs are in RTS and receives are
//                     posted, or {error} when it refuses (another test, bad options)
//   client -> server  {done: true} when the client has finished (-b: and {bw}, its figures)
//   server -> client  {received, corrupted, errors} (what the server saw: SENDs, WRITEs echoed;
//                     -b: and {bw}, the figures of its own stream, for perftest's summed row)
import net from "node:net";
import { wildcardFor } from "../core/net/index.js";
import {
  MTUS, PerfOptionError, bwFromJson, perftestMtu, resolvePerfOptions, runPerfOn, servePerfOn, type BwFigures, type PerfOptions, type PerfProgress, type PerfResult, type ResolvedPerfOptions,
} from "../core/perf/index.js";
import type { PcapRecorder } from "../core/capture/index.js";
import { openUdpPerfSide, udpPerfBed, type PerfPeer, type PerfQpInfo } from "../node/perf-udp.js";

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
  /** lines perftest itself prints on stdout at this point (the MTU lowered to the active MTU) */
  onNotice?(line: string): void;
  /** both sides' QPs once connected (perftest's local/remote address lines) */
  onConnected?(c: PerfConnection): void;
}

/** What perftest prints as the local and remote address lines, and the options the run uses. */
export interface PerfConnection {
  /** the server's: the client's asked values */
  options: ResolvedPerfOptions;
  mtu: number;
  local: { gid: string; qp: PerfQpInfo[] };
  remote: { gid: string; qp: PerfQpInfo[] };
}

/** The peer refused, vanished, or spoke another protocol. */
export class PerfPeerError extends Error {
  override name = "PerfPeerError";
}

/**
 * This side's path MTU by perftest's rule (perftestMtu: without -m the port's active MTU, a -m
 * above it lowered to it with perftest's two lines). rxe itself accepts any path MTU up to 4096 in
 * modify_qp; the kernel then refuses the datagrams with EMSGSIZE, which looks like loss.
 */
function sideMtu(asked: number | undefined, active: number, u: UdpPerfOptions): number {
  const { mtu, notice } = perftestMtu(asked, active);
  for (const line of notice) u.onNotice?.(line);
  return mtu;
}

/** Options the client sends; the server checks them with the same rules. */
const WIRE_KEYS = ["test", "size", "iterations", "mtu", "txDepth", "qps", "atomicType", "timeout", "retryCnt", "inlineSize", "bidirectional"] as const;

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

function checkPeer(v: Record<string, unknown>, qps: number): PerfPeer {
  if (v.proto !== PERF_PROTO) throw new PerfPeerError(`the peer speaks ${JSON.stringify(v.proto)}, not ${PERF_PROTO}`);
  const gid = v.gid;
  const udpPort = v.udpPort;
  const qp = v.qp;
  if (typeof gid !== "string" || !net.isIP(gid)) throw new PerfPeerError(`bad GID from the peer: ${JSON.stringify(gid)}`);
  if (!Number.isInteger(udpPort) || (udpPort as number) < 1 || (udpPort as number) > 65535) throw new PerfPeerError(`bad UDP port from the peer: ${JSON.stringify(udpPort)}`);
  if (!Array.isArray(qp) || qp.length !== qps) throw new PerfPeerError(`the peer sent ${Array.isArray(qp) ? qp.length : "no"} QPs, expected ${qps}`);
  for (const q of qp as PerfQpInfo[]) {
    const ok =
      q && Number.isInteger(q.qpn) && q.qpn > 0 && q.qpn < 1 << 24 && Number.isInteger(q.psn) && q.psn >= 0 && q.psn < 1 << 24 &&
      Number.isInteger(q.rkey) && q.rkey >= 0 && q.rkey <= 0xffffffff && typeof q.addr === "string" && /^[0-9]{1,20}$/.test(q.addr);
    if (!ok) throw new PerfPeerError(`bad QP entry from the peer: ${JSON.stringify(q)}`);
  }
  return { gid, udpPort: udpPort as number, qp: qp as PerfQpInfo[] };
}

/** The two-process mode builds RC QPs only (UC and UD: --local). */
export function rcOnly(o: { connection?: string }): void {
  if ((o.connection ?? "RC") !== "RC") throw new PerfOptionError(`the two-process mode runs RC only; use --local for ${o.connection}`);
}

/** The server: answers one client's run and returns what it saw. */
export async function servePerfUdp(options: PerfOptions, u: UdpPerfOptions): Promise<{ test: string; received: number; errors: number; bw?: { mine?: BwFigures; peer?: BwFigures } }> {
  const timeoutMs = u.timeoutMs ?? 60_000;
  const tcpPort = u.tcpPort ?? PERF_TCP_PORT;
  const srv = net.createServer();
  srv.listen({ port: tcpPort, host: wildcardFor(u.address), exclusive: true });
  await new Promise<void>((resolve, reject) => {
    srv.once("listening", resolve);
    srv.once("error", (e: NodeJS.ErrnoException) => reject(new PerfPeerError(`cannot listen on TCP port ${tcpPort}: ${e.code ?? e.message}`)));
  });
  u.onStatus?.(`waiting for a client on TCP port ${tcpPort}`);
  const sock = await new Promise<net.Socket>((resolve, reject) => {
    const t = setTimeout(() => {
      srv.close(); // nothing else keeps the process alive
      reject(new PerfPeerError(`no client within ${timeoutMs / 1000} s on TCP port ${tcpPort}`));
    }, timeoutMs);
    srv.once("connection", (s) => (clearTimeout(t), resolve(s)));
  });
  srv.close();
  const line = new Line(sock, timeoutMs);
  let close: (() => void) | undefined;
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
    const side = await openUdpPerfSide(o, u);
    close = () => side.side.device.close();
    // perftest's check_mtu: each side's own (its -m or its port's active MTU), then the smaller of the two
    o.mtu = Math.min(o.mtu, sideMtu(options.mtu, side.activeMtu, u));
    const bed = udpPerfBed(side, o, peer, Infinity);
    u.onConnected?.({ options: o, mtu: o.mtu, local: { gid: side.gid, qp: side.infos }, remote: { gid: peer.gid, qp: peer.qp } });
    u.onStatus?.(`connected: ${o.test}, ${o.qps} QP(s), ${o.size} B, MTU ${o.mtu}`);
    let done = false;
    // the receives are posted before the answer: the client may send at once
    const served = servePerfOn(bed, o, () => done);
    line.send({ proto: PERF_PROTO, gid: side.gid, udpPort: side.udpPort, mtu: o.mtu, qp: side.infos });
    let peerBw: BwFigures | undefined;
    // the client gone before its end of the run (killed, its connection lost, silent past the wait):
    // what this side saw is no run's figures, and the server fails with the reason
    let gone: Error | undefined;
    await line.read("the client's end of the run").then((v) => ((peerBw = bwFromJson(v.bw)), (done = true)), (e: Error) => ((gone = e), (done = true)));
    const { received, counts, bw } = await served;
    if (gone) throw new PerfPeerError(`${gone.message}, before the client's end of the run (${received} messages received here)`);
    line.send({ received, corrupted: counts.corrupted, errors: counts.errors, ...(bw ? { bw } : {}) });
    await new Promise<void>((r) => sock.end(() => r()));
    return { test: o.test, received, errors: counts.errors, ...(o.bidirectional ? { bw: { mine: bw, peer: peerBw } } : {}) };
  } finally {
    sock.destroy();
    close?.();
  }
}

/** The client: runs the test against a server and returns perftest's figures. */
export async function runPerfUdp(options: PerfOptions, u: UdpPerfOptions & { server: string }): Promise<PerfResult> {
  const o = resolvePerfOptions(options);
  rcOnly(o);
  // the server's bytes are in its own process: nothing here can verify them
  o.verify = false;
  const timeoutMs = u.timeoutMs ?? 60_000;
  const tcpPort = u.tcpPort ?? PERF_TCP_PORT;
  const side = await openUdpPerfSide(o, u);
  o.mtu = sideMtu(options.mtu, side.activeMtu, u);
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
    const hello: Record<string, unknown> = { proto: PERF_PROTO, gid: side.gid, udpPort: side.udpPort, qp: side.infos };
    for (const k of WIRE_KEYS) hello[k] = o[k];
    line.send(hello);
    const answer = await line.read("the server's QPs");
    if (typeof answer.error === "string") throw new PerfPeerError(`the server refused: ${answer.error}`);
    const peer = checkPeer(answer, o.qps);
    // the server may have lowered the path MTU to its own active MTU: both ends must agree
    if (typeof answer.mtu !== "number" || !(MTUS as readonly number[]).includes(answer.mtu) || answer.mtu > o.mtu) {
      throw new PerfPeerError(`bad path MTU from the server: ${JSON.stringify(answer.mtu)}`);
    }
    if (answer.mtu < o.mtu) {
      u.onStatus?.(`the server's path MTU is lower; changing to ${answer.mtu}`);
      o.mtu = answer.mtu;
    }
    const bed = udpPerfBed(side, o, peer, timeoutMs);
    u.onConnected?.({ options: o, mtu: o.mtu, local: { gid: side.gid, qp: side.infos }, remote: { gid: peer.gid, qp: peer.qp } });
    return await runPerfOn(bed, o, { onProgress: u.onProgress, progressEveryMs: 1000 }, async (mine) => {
      line.send({ done: true, ...(o.bidirectional ? { bw: mine } : {}) });
      const report = await line.read("the server's counts");
      return { received: typeof report.received === "number" ? report.received : undefined, corrupted: typeof report.corrupted === "number" ? report.corrupted : undefined, bw: bwFromJson(report.bw) };
    });
  } finally {
    sock?.destroy();
    side.side.device.close();
  }
}
