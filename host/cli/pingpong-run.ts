// The loop every pingpong shares (rdma-core's examples differ in the QP type, how the QP is
// connected and how a send is addressed): pp_init_ctx, pp_post_recv / pp_post_send, the exchange in
// rc_pingpong.c's order, parse_single_wc's accounting, the summary lines and -c. A transport
// (rc_pingpong.ts, uc_pingpong.ts, ud_pingpong.ts, srq_pingpong.ts) supplies its QP type, its connect
// step and its help text; srq_pingpong's has -q QPs whose receives come from one SRQ.
import { openDevice } from "../node/index.js";
import type { PcapRecorder } from "../core/capture/index.js";
import { toolRecorder, writeCaptureFile } from "./capture-file.js";
import { type Device, type QueuePair, type CompletionQueue, type WorkCompletion, type CompletionChannel, type MemoryRegion, type SendWr, type SharedReceiveQueue, Access, QpState, SendFlags, WcStatus, WrOpcode } from "../core/verbs/index.js";
import { type FlagSpec, formatFlags, parseArgs } from "./args.js";
import type { Command, Io } from "./command.js";
import { stallReport } from "./pingpong-stall.js";
import {
  DEVICE_NAME, PINGPONG_FLAGS, PINGPONG_RENAMED, PingpongError, UNSUPPORTED_FLAGS, addressLine, clientExchange, gidBytes,
  pingpongOptions, randomPsn, serverExchange, summaryLines, Deadline, type PingpongDest, type PingpongOptions,
} from "./pingpong.js";

const RECV_WRID = 1n;
const SEND_WRID = 2n;
const PAGE_SIZE = 4096;

/** What distinguishes one pingpong from another. */
export interface PingpongTransport {
  /** the subcommand, e.g. "rc_pingpong" */
  name: string;
  summary: string;
  /** the paragraph under the usage lines */
  about: string;
  qpType: number;
  /** flags beyond PINGPONG_FLAGS */
  extraFlags?: FlagSpec[];
  /** bytes a receive needs beyond the message (UD: the 40-byte GRH) */
  recvExtra?: number;
  /** pp_connect_ctx for one QP: from INIT to RTS, connected to the peer's (throw PingpongError) */
  connect(ctx: PingpongCtx, qp: QueuePair, o: PingpongOptions, myPsn: number, rem: PingpongDest): void;
  /** fields the send WR needs besides the SGE (UD: the address handle) */
  sendWr?(ctx: PingpongCtx): Partial<SendWr>;
  /** where in the buffer a send starts (ud_pingpong: after the 40 GRH bytes) */
  sendOffset?: number;
  /** INIT attributes besides state, P_Key index and port (default: qpAccessFlags 0; UD: its qkey) */
  initAttr?: Record<string, number>;
  /** PINGPONG_FLAGS this tool does not have (ud_pingpong: mtu, as rdma-core's) */
  dropFlags?: string[];
  /** -s default when it differs from rc_pingpong's 4096 (ud_pingpong: 2048) */
  defaultSize?: number;
  /** checks on the opened device before anything is created (ud_pingpong: size <= port MTU) */
  preflight?(dev: Device, o: PingpongOptions): void;
  /**
   * srq_pingpong: -q QPs (its extra flag) share one SRQ of rx_depth receives; the buffer is zeroed
   * (the others fill it with 0x7b) and the exchange carries `srq.exchanged` messages each way.
   */
  srq?: { exchanged: number };
}

export interface PingpongCtx {
  dev: Device;
  mr: MemoryRegion;
  cq: CompletionQueue;
  channel?: CompletionChannel;
  /** the first QP (the only one but for srq_pingpong) */
  qp: QueuePair;
  qps: QueuePair[];
  srq?: SharedReceiveQueue;
  size: number;
  sendFlags: number;
  rxDepth: number;
  /** per QP: the work requests it waits for (RECV_WRID | SEND_WRID) */
  pending: bigint[];
  transport: PingpongTransport;
  /** set by the transport once connected (UD: its AH) */
  peer?: unknown;
}

/**
 * pp_init_ctx: device, PD, MR (0x7b-filled; srq_pingpong's zeroed), CQ of rx_depth + the QPs, the QPs (1 send,
 * rx_depth receives; srq_pingpong's from one SRQ of rx_depth) in INIT.
 */
async function initCtx(t: PingpongTransport, o: PingpongOptions): Promise<PingpongCtx> {
  const dev = await openDevice({ address: o.address, port: o.udpPort, mrArenaBytes: Math.max(16 << 20, o.size * 2 + (1 << 20)) }).catch(
    (e: Error) => {
      throw new PingpongError(`Couldn't get context for ${DEVICE_NAME}: ${e.message}`);
    },
  );
  // Each step fails as rdma-core reports it (the verb's own error after a colon).
  const step = <T>(what: string, fn: () => T): T => {
    try {
      return fn();
    } catch (e) {
      throw new PingpongError(`${what}: ${(e as Error).message}`);
    }
  };
  try {
    t.preflight?.(dev, o);
    const pd = step("Couldn't allocate PD", () => dev.allocPd());
    const mr = step("Couldn't register MR", () => pd.regMr(o.size + (t.recvExtra ?? 0), Access.LOCAL_WRITE));
    mr.bytes.fill(t.srq ? 0 : 0x7b);
    const channel = o.events ? step("Couldn't create completion channel", () => dev.createCompChannel()) : undefined;
    const cq = step("Couldn't create CQ", () => dev.createCq(o.rxDepth + o.numQp, { channel }));
    const srq = t.srq ? step("Couldn't create SRQ", () => pd.createSrq({ attr: { maxWr: o.rxDepth, maxSge: 1 } })) : undefined;
    const qps: QueuePair[] = [];
    for (let i = 0; i < o.numQp; i++) {
      qps.push(step("Couldn't create QP", () =>
        pd.createQp({ qpType: t.qpType, sendCq: cq, recvCq: cq, srq, cap: { maxSendWr: 1, maxRecvWr: srq ? 0 : o.rxDepth, maxSendSge: 1, maxRecvSge: srq ? 0 : 1 } }),
      ));
    }
    for (const qp of qps) step("Failed to modify QP to INIT", () => qp.modify({ qpState: QpState.INIT, pkeyIndex: 0, portNum: o.ibPort, ...(t.initAttr ?? { qpAccessFlags: 0 }) }));
    let sendFlags = SendFlags.SIGNALED;
    if (qps[0]!.cap.maxInlineData >= o.size) sendFlags |= SendFlags.INLINE;
    return { dev, mr, cq, channel, qp: qps[0]!, qps, srq, size: o.size, sendFlags, rxDepth: o.rxDepth, pending: qps.map(() => 0n), transport: t };
  } catch (e) {
    dev.close();
    throw e;
  }
}

function postRecv(ctx: PingpongCtx, n: number): number {
  let i = 0;
  const to = ctx.srq ?? ctx.qp;
  for (; i < n; i++) {
    try {
      to.postRecv({ wrId: RECV_WRID, sgList: [ctx.mr.sge(0, ctx.size + (ctx.transport.recvExtra ?? 0))] });
    } catch {
      break;
    }
  }
  return i;
}

function postSend(ctx: PingpongCtx, qp: QueuePair): void {
  try {
    qp.postSend({ ...ctx.transport.sendWr?.(ctx), wrId: SEND_WRID, opcode: WrOpcode.SEND, sendFlags: ctx.sendFlags, sgList: [ctx.mr.sge(ctx.transport.sendOffset ?? 0, ctx.size)] });
  } catch (e) {
    throw new PingpongError(`Couldn't post send: ${(e as Error).message}`);
  }
}

const WC_STATUS_STR: Record<number, string> = {
  0: "success", 1: "local length error", 2: "local QP operation error", 3: "local EE context operation error",
  4: "local protection error", 5: "Work Request Flushed Error", 6: "memory management operation error",
  7: "bad response error", 8: "local access error", 9: "remote invalid request error", 10: "remote access error",
  11: "remote operation error", 12: "transport retry counter exceeded", 13: "RNR retry counter exceeded",
  14: "local RDD violation error", 15: "remote invalid RD request", 16: "aborted error", 17: "invalid EE context number",
  18: "invalid EE context state", 19: "fatal error", 20: "response timeout error", 21: "general error",
};

export async function runPingpong(t: PingpongTransport, o: PingpongOptions, io: Io): Promise<number> {
  if (o.ibDev !== undefined && o.ibDev !== DEVICE_NAME) throw new PingpongError(`IB device ${o.ibDev} not found`);
  if (t.srq) {
    if (o.numQp > o.rxDepth) throw new PingpongError(`rx_depth ${o.rxDepth} is too small for ${o.numQp} QPs -- must have at least one receive per QP.`);
    if (o.numQp >= t.srq.exchanged) throw new PingpongError(`num_qp ${o.numQp} must be less than ${t.srq.exchanged - 1}`);
  }
  const ctx = await initCtx(t, o);
  let progress: ReturnType<typeof setInterval> | undefined;
  const recorder = o.pcap !== undefined ? toolRecorder() : undefined;
  recorder?.attach(ctx.dev.port!);
  try {
    let routs = postRecv(ctx, ctx.rxDepth);
    if (routs < ctx.rxDepth) throw new PingpongError(`Couldn't post receive (${routs})`);
    if (ctx.channel) ctx.cq.reqNotify(false);
    try {
      ctx.dev.queryPort(o.ibPort);
    } catch {
      throw new PingpongError("Couldn't get port info");
    }
    const gidIdx = o.gidIdx ?? 0;
    if (gidIdx >= ctx.dev.gidTableSize) throw new PingpongError(`can't read sgid of index ${gidIdx}`);
    const gid = gidBytes(ctx.dev.queryGid(gidIdx));
    const my: PingpongDest[] = ctx.qps.map((qp) => ({ lid: 0, qpn: qp.qpNum, psn: randomPsn(), gid }));
    // srq_pingpong exchanges MAX_QP messages, those past -q all zero
    const sent = [...my, ...Array.from({ length: (t.srq?.exchanged ?? 1) - my.length }, () => ({ lid: 0, qpn: 0, psn: 0, gid: new Uint8Array(16) }))];
    const connectAll = (rem: PingpongDest[]) => ctx.qps.forEach((qp, i) => t.connect(ctx, qp, o, my[i]!.psn, rem[i]!));
    const localLines = () => my.forEach((d) => io.out(addressLine("local", d)));
    let rem: PingpongDest[];
    if (o.servername !== undefined) {
      localLines();
      rem = await clientExchange(o.servername, o.tcpPort, sent, { timeoutMs: o.timeoutMs });
    } else {
      // Listen before telling anyone our address, so a client started on that line finds the port.
      rem = await serverExchange(o.tcpPort, sent, connectAll, {
        timeoutMs: o.timeoutMs,
        listening: () => {
          localLines();
          io.err(`${t.name}: waiting for a client on TCP port ${o.tcpPort}${o.timeoutMs ? ` (at most ${o.timeoutMs / 1000} s)` : ""}\n`);
        },
      });
    }
    for (let i = 0; i < ctx.qps.length; i++) io.out(addressLine("remote", rem[i]!));
    if (o.servername !== undefined) connectAll(rem);

    ctx.pending.fill(RECV_WRID);
    if (o.servername !== undefined) {
      // rdma-core's -c: byte i/page_size % sizeof(char) (always 0) at the start of each page of
      // the message (ud_pingpong: buf + 40 + i, past the GRH room, where its sends start).
      if (o.chk) for (let i = 0; i < o.size; i += PAGE_SIZE) ctx.mr.bytes[(t.sendOffset ?? 0) + i] = 0;
      ctx.qps.forEach((qp, i) => {
        postSend(ctx, qp);
        ctx.pending[i] = RECV_WRID | SEND_WRID;
      });
    }
    const start = performance.now();
    let rcnt = 0;
    let scnt = 0;
    // progress once a second, on a terminal only (a log file gets rdma-core's lines alone)
    if (process.stderr.isTTY) {
      progress = setInterval(() => io.err(`${t.name}: ${Math.min(rcnt, scnt)}/${o.iters} iters\n`), 1000);
      progress.unref?.();
    }

    const handle = (wc: WorkCompletion) => {
      if (wc.status !== WcStatus.SUCCESS) {
        // rdma-core's line; softroce adds what usually causes a retry failure on a software device
        const hint = wc.status === WcStatus.RETRY_EXC_ERR || wc.status === WcStatus.RESP_TIMEOUT_ERR
          ? ` (the peer's device never answered on UDP port ${o.udpPort}: both sides need the same --udp-port, and the peer must reach --address ${o.address})`
          : "";
        throw new PingpongError(`Failed status ${WC_STATUS_STR[wc.status] ?? "unknown"} (${wc.status}) for wr_id ${Number(wc.wrId)}${hint}`);
      }
      const q = ctx.qps.length === 1 ? 0 : ctx.qps.findIndex((qp) => qp.qpNum === wc.qpNum);
      if (q < 0) throw new PingpongError(`Couldn't find QPN ${wc.qpNum.toString(16).padStart(6, "0")}`);
      if (wc.wrId === SEND_WRID) {
        ++scnt;
      } else if (wc.wrId === RECV_WRID) {
        if (--routs <= ctx.qps.length) {
          routs += postRecv(ctx, ctx.rxDepth - routs);
          if (routs < ctx.rxDepth) throw new PingpongError(`Couldn't post receive (${routs})`);
        }
        ++rcnt;
      } else {
        throw new PingpongError(`Completion for unknown wr_id ${Number(wc.wrId)}`);
      }
      ctx.pending[q]! &= ~wc.wrId;
      if (scnt < o.iters && !ctx.pending[q]) {
        postSend(ctx, ctx.qps[q]!);
        ctx.pending[q] = RECV_WRID | SEND_WRID;
      }
    };

    const deadline = new Deadline(o.timeoutMs);
    // a wait that times out says where the packet path stands (pingpong-stall.ts) before the device closes
    const waitFor = async <T>(p: Promise<T>, what: string): Promise<T> => {
      try {
        return await deadline.race(p, what);
      } catch (e) {
        if (!(e instanceof PingpongError)) throw e;
        const waiting = ctx.pending.reduce((a, p) => a | p, 0n);
        const waitingFor = [waiting & RECV_WRID ? "a receive" : "", waiting & SEND_WRID ? "a send" : ""].filter(Boolean);
        const report = stallReport({ dev: ctx.dev, qp: ctx.qp, cq: ctx.cq, iters: o.iters, rcnt, scnt, waitingFor });
        throw new PingpongError(`${e.message}\n${report.map((l) => `${t.name}: ${l}`).join("\n")}`);
      }
    };
    // rc_pingpong polls 2 at a time, srq_pingpong num_qp + rx_depth
    const pollBatch = t.srq ? ctx.qps.length + ctx.rxDepth : 2;
    while (rcnt < o.iters || scnt < o.iters) {
      let wcs: WorkCompletion[];
      if (ctx.channel) {
        const evCq = await waitFor(ctx.channel.getCqEvent(), "waiting for a completion");
        if (evCq !== ctx.cq) throw new PingpongError("CQ event for unknown CQ");
        evCq.ackEvents(1);
        ctx.cq.reqNotify(false);
        wcs = ctx.cq.poll(pollBatch);
      } else {
        wcs = ctx.cq.poll(pollBatch);
        if (wcs.length === 0) wcs = [await waitFor(ctx.cq.next(), `waiting for a completion (${Math.min(rcnt, scnt)}/${o.iters} iters done)`)];
      }
      for (const wc of wcs) handle(wc);
    }
    const usec = Math.max(1, Math.round((performance.now() - start) * 1000));
    clearInterval(progress);
    io.out(summaryLines(o.size, o.iters, usec));
    let bad = 0;
    if (o.servername === undefined && o.chk) {
      for (let i = 0; i < o.size; i += PAGE_SIZE) {
        // ud_pingpong checks buf + 40 + i: the payload, not the GRH the receive put first
        if (ctx.mr.bytes[(t.sendOffset ?? 0) + i] !== 0) {
          io.out(`invalid data in page ${i / PAGE_SIZE}\n`);
          bad++;
        }
      }
    }
    // Let the last ACK leave before the socket closes (the peer's send completes on it).
    await new Promise((r) => setTimeout(r, 20));
    return bad ? 1 : 0;
  } finally {
    if (progress) clearInterval(progress);
    ctx.dev.close();
    if (recorder) writeCapture(o.pcap!, recorder, io, t.name);
  }
}

function writeCapture(path: string, rec: PcapRecorder, io: Io, name: string): void {
  let line: string;
  try {
    line = writeCaptureFile(path, rec);
  } catch (e) {
    throw new PingpongError((e as Error).message);
  }
  io.err(`${name}: ${line}\n`);
}

/** The subcommand for a transport: flags, help, usage errors (exit 2), failures (exit 1). */
export function pingpongCommand(t: PingpongTransport): Command {
  const base = PINGPONG_FLAGS.filter((f) => !t.dropFlags?.includes(f.name)).map((f) => (f.name === "size" && t.defaultSize !== undefined ? { ...f, default: t.defaultSize } : f));
  const flags: FlagSpec[] = [...base, ...(t.extraFlags ?? []), ...UNSUPPORTED_FLAGS.map((u) => u.spec)];
  const help = `usage:
  softroce ${t.name} [flags]          start a server and wait for connection
  softroce ${t.name} [flags] <host>   connect to server at <host>

${t.about}
Exit status: 0 done, 1 a failure (rdma-core's message on stderr), 2 usage error.

${formatFlags(flags)}
`;
  return {
    name: t.name,
    summary: t.summary,
    async run(argv: string[], io: Io): Promise<number> {
      const parsed = parseArgs(argv, flags, 1, PINGPONG_RENAMED);
      if (parsed.flags.help) {
        io.out(help);
        return 0;
      }
      const o = pingpongOptions(parsed.flags, parsed.positionals);
      for (const u of UNSUPPORTED_FLAGS) {
        if (parsed.flags[u.spec.name]) {
          io.err(`softroce ${t.name}: ${u.message}\n`);
          return 1;
        }
      }
      try {
        return await runPingpong(t, o, io);
      } catch (e) {
        if (e instanceof PingpongError) {
          io.err(`softroce ${t.name}: ${e.message}\n`);
          return 1;
        }
        throw e;
      }
    },
  };
}
