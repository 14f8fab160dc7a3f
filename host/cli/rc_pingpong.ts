// softroce rc_pingpong: rdma-core 44's ibv_rc_pingpong (libibverbs/examples/rc_pingpong.c) on a
// softroce device bound to UDP: the same flags, defaults, exchange, output and loop (one SEND in
// flight each way, rx_depth receives kept posted, the summary lines). Where a default cannot work
// on RoCE (-g unset) the local GID is GID 0, the bound address.
import { openDevice } from "../node/index.js";
import type { Device } from "../core/verbs/device.js";
import type { QueuePair } from "../core/verbs/qp.js";
import type { CompletionQueue } from "../core/verbs/cq.js";
import type { CompletionChannel } from "../core/verbs/channel.js";
import type { MemoryRegion } from "../core/verbs/mr.js";
import type { WorkCompletion } from "../core/verbs/cq.js";
import { connectQp } from "../core/connect.js";
import { Access, QpState, QpType, SendFlags, WcStatus, WrOpcode } from "../core/verbs/enums.js";
import { formatGid } from "../core/verbs/gid.js";
import { type FlagSpec, formatFlags, parseArgs, UsageError } from "./args.js";
import type { Command, Io } from "./command.js";
import {
  DEVICE_NAME, PINGPONG_FLAGS, PingpongError, UNSUPPORTED_FLAGS, addressLine, clientExchange, gidBytes,
  gidHasInterfaceId, pingpongOptions, randomPsn, serverExchange, summaryLines, Deadline,
  type PingpongDest, type PingpongOptions,
} from "./pingpong.js";

const RECV_WRID = 1n;
const SEND_WRID = 2n;
const PAGE_SIZE = 4096;

const FLAGS: FlagSpec[] = [
  ...PINGPONG_FLAGS,
  { name: "new_send", short: "N", type: "boolean", help: "use new post send WR API (the same post path here)" },
  ...UNSUPPORTED_FLAGS.map((u) => u.spec),
];

const HELP = `usage:
  softroce rc_pingpong [flags]          start a server and wait for connection
  softroce rc_pingpong [flags] <host>   connect to server at <host>

rdma-core's ibv_rc_pingpong on a softroce device: the device binds UDP at --address:--port (its
GID 0), the two sides exchange "LID:QPN:PSN:GID" over TCP (-p, default 18515; the server listens
on all IPv4 addresses), then ping-pong -n SENDs of -s bytes over RC. Prints the local and remote
address lines and rdma-core's two summary lines. Interoperates with ibv_rc_pingpong on Linux rxe
(pass -g there; the UDP port must then be 4791).
Exit status: 0 done, 1 a failure (rdma-core's message on stderr), 2 usage error.

${formatFlags(FLAGS)}
`;

interface Ctx {
  dev: Device;
  mr: MemoryRegion;
  cq: CompletionQueue;
  channel?: CompletionChannel;
  qp: QueuePair;
  size: number;
  sendFlags: number;
  rxDepth: number;
  pending: bigint;
}

/** pp_init_ctx: device, PD, MR (0x7b-filled), CQ of rx_depth + 1, QP (1 send, rx_depth receives) in INIT. */
async function initCtx(o: PingpongOptions): Promise<Ctx> {
  const dev = await openDevice({ address: o.address, port: o.udpPort, mrArenaBytes: Math.max(16 << 20, o.size * 2 + (1 << 20)) }).catch(
    (e: Error) => {
      throw new PingpongError(`Couldn't get context for ${DEVICE_NAME}: ${e.message}`);
    },
  );
  try {
    const pd = dev.allocPd();
    const mr = pd.regMr(o.size, Access.LOCAL_WRITE);
    mr.bytes.fill(0x7b);
    const channel = o.events ? dev.createCompChannel() : undefined;
    const cq = dev.createCq(o.rxDepth + 1, { channel });
    const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 1, maxRecvWr: o.rxDepth, maxSendSge: 1, maxRecvSge: 1 } });
    qp.modify({ qpState: QpState.INIT, pkeyIndex: 0, portNum: o.ibPort, qpAccessFlags: 0 });
    let sendFlags = SendFlags.SIGNALED;
    if (qp.cap.maxInlineData >= o.size) sendFlags |= SendFlags.INLINE;
    return { dev, mr, cq, channel, qp, size: o.size, sendFlags, rxDepth: o.rxDepth, pending: 0n };
  } catch (e) {
    dev.close();
    throw e;
  }
}

function postRecv(ctx: Ctx, n: number): number {
  let i = 0;
  for (; i < n; i++) {
    try {
      ctx.qp.postRecv({ wrId: RECV_WRID, sgList: [ctx.mr.sge(0, ctx.size)] });
    } catch {
      break;
    }
  }
  return i;
}

function postSend(ctx: Ctx): void {
  try {
    ctx.qp.postSend({ wrId: SEND_WRID, opcode: WrOpcode.SEND, sendFlags: ctx.sendFlags, sgList: [ctx.mr.sge(0, ctx.size)] });
  } catch (e) {
    throw new PingpongError(`Couldn't post send: ${(e as Error).message}`);
  }
}

/** pp_connect_ctx: RTR then RTS with rc_pingpong's attributes (hop limit 1, timeout 14, retries 7). */
function connectCtx(ctx: Ctx, o: PingpongOptions, myPsn: number, rem: PingpongDest): void {
  if (!gidHasInterfaceId(rem.gid)) {
    throw new PingpongError("Failed to modify QP to RTR (the peer sent no GID: RoCE needs one, run the peer with -g)");
  }
  try {
    connectQp(ctx.qp, { qpNum: rem.qpn, psn: rem.psn, gid: formatGid(rem.gid), port: o.udpPort }, {
      sqPsn: myPsn, pathMtu: o.mtuEnum, qpAccessFlags: 0, timeout: 14, retryCnt: 7, rnrRetry: 7, minRnrTimer: 12,
      maxRdAtomic: 1, maxDestRdAtomic: 1, sgidIndex: o.gidIdx ?? 0, hopLimit: 1,
    });
  } catch (e) {
    throw new PingpongError(`Failed to modify QP to RTR/RTS: ${(e as Error).message}`);
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

export async function runRcPingpong(o: PingpongOptions, io: Io): Promise<number> {
  if (o.ibDev !== undefined && o.ibDev !== DEVICE_NAME) throw new PingpongError(`IB device ${o.ibDev} not found`);
  const ctx = await initCtx(o);
  let progress: ReturnType<typeof setInterval> | undefined;
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
    const my: PingpongDest = { lid: 0, qpn: ctx.qp.qpNum, psn: randomPsn(), gid: gidBytes(ctx.dev.queryGid(gidIdx)) };
    let rem: PingpongDest;
    if (o.servername !== undefined) {
      io.out(addressLine("local", my));
      rem = await clientExchange(o.servername, o.tcpPort, my, { timeoutMs: o.timeoutMs });
    } else {
      // Listen before telling anyone our address, so a client started on that line finds the port.
      rem = await serverExchange(o.tcpPort, my, (r) => connectCtx(ctx, o, my.psn, r), {
        timeoutMs: o.timeoutMs,
        listening: () => {
          io.out(addressLine("local", my));
          io.err(`rc_pingpong: waiting for a client on TCP port ${o.tcpPort}${o.timeoutMs ? ` (at most ${o.timeoutMs / 1000} s)` : ""}\n`);
        },
      });
    }
    io.out(addressLine("remote", rem));
    if (o.servername !== undefined) connectCtx(ctx, o, my.psn, rem);

    ctx.pending = RECV_WRID;
    if (o.servername !== undefined) {
      // rdma-core's -c: byte i/page_size % sizeof(char) (always 0) at the start of each page.
      if (o.chk) for (let i = 0; i < o.size; i += PAGE_SIZE) ctx.mr.bytes[i] = 0;
      postSend(ctx);
      ctx.pending |= SEND_WRID;
    }
    const start = performance.now();
    let rcnt = 0;
    let scnt = 0;
    progress = setInterval(() => io.err(`rc_pingpong: ${Math.min(rcnt, scnt)}/${o.iters} iters\n`), 1000);
    progress.unref?.();

    const handle = (wc: WorkCompletion) => {
      if (wc.status !== WcStatus.SUCCESS) {
        throw new PingpongError(`Failed status ${WC_STATUS_STR[wc.status] ?? "unknown"} (${wc.status}) for wr_id ${Number(wc.wrId)}`);
      }
      if (wc.wrId === SEND_WRID) {
        ++scnt;
      } else if (wc.wrId === RECV_WRID) {
        if (--routs <= 1) {
          routs += postRecv(ctx, ctx.rxDepth - routs);
          if (routs < ctx.rxDepth) throw new PingpongError(`Couldn't post receive (${routs})`);
        }
        ++rcnt;
      } else {
        throw new PingpongError(`Completion for unknown wr_id ${Number(wc.wrId)}`);
      }
      ctx.pending &= ~wc.wrId;
      if (scnt < o.iters && !ctx.pending) {
        postSend(ctx);
        ctx.pending = RECV_WRID | SEND_WRID;
      }
    };

    const deadline = new Deadline(o.timeoutMs);
    while (rcnt < o.iters || scnt < o.iters) {
      let wcs: WorkCompletion[];
      if (ctx.channel) {
        const evCq = await deadline.race(ctx.channel.getCqEvent(), "waiting for a completion");
        if (evCq !== ctx.cq) throw new PingpongError("CQ event for unknown CQ");
        evCq.ackEvents(1);
        ctx.cq.reqNotify(false);
        wcs = ctx.cq.poll(2);
      } else {
        wcs = ctx.cq.poll(2);
        if (wcs.length === 0) wcs = [await deadline.race(ctx.cq.next(), `waiting for a completion (${Math.min(rcnt, scnt)}/${o.iters} iters done)`)];
      }
      for (const wc of wcs) handle(wc);
    }
    const usec = Math.max(1, Math.round((performance.now() - start) * 1000));
    clearInterval(progress);
    io.out(summaryLines(o.size, o.iters, usec));
    let bad = 0;
    if (o.servername === undefined && o.chk) {
      for (let i = 0; i < o.size; i += PAGE_SIZE) {
        if (ctx.mr.bytes[i] !== 0) {
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
  }
}

export const rcPingpongCommand: Command = {
  name: "rc_pingpong",
  summary: "rdma-core's ibv_rc_pingpong over a softroce device (server: no host; client: <host>)",
  async run(argv: string[], io: Io): Promise<number> {
    const { flags, positionals } = parseArgs(argv, FLAGS, 1);
    if (flags.help) {
      io.out(HELP);
      return 0;
    }
    const o = pingpongOptions(flags, positionals);
    for (const u of UNSUPPORTED_FLAGS) {
      if (flags[u.spec.name]) {
        io.err(`softroce rc_pingpong: ${u.message}\n`);
        return 1;
      }
    }
    try {
      return await runRcPingpong(o, io);
    } catch (e) {
      if (e instanceof PingpongError) {
        io.err(`softroce rc_pingpong: ${e.message}\n`);
        return 1;
      }
      if (e instanceof UsageError) throw e;
      throw e;
    }
  },
};
