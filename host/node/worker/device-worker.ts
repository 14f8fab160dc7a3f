// The Node device worker (a worker_threads script, bundled to dist/node/device-thread.js): it
// runs the threads build of the core on shared memory and owns the device's UDP link (the native
// datapath or node:dgram, opened as openDevice opens it) and its timer. Started by
// openDevice({ worker: true }) (open.ts); nothing here is called per work request.
import { readFileSync, readlinkSync } from "node:fs";
import { parentPort } from "node:worker_threads";
import { runDeviceWorker, tunnelOps, type WorkerOps } from "../../core/worker/index.js";
import { tunnelSocket, type TunnelWebSocket } from "../tunnel-socket.js";
import { BUDGET_STATS, logDrops, PacketPort, realClock, type TransportCore } from "../../core/link/index.js";
import { openUdpLink, type UdpLinkChoice } from "../udp-open.js";
import { bindError } from "../open-options.js";
import type { UdpLink } from "../udp.js";
import type { NativeUdpLink } from "../native-link.js";
import { TraceStage } from "../../core/worker/index.js";
import { useMonotonicTraceClock } from "./clock.js";
import { schedYield } from "../sockopt.js";

if (!parentPort) throw new Error("softroce device worker: run as a worker thread (openDevice({ worker: true }))");
const parent = parentPort;
let link: UdpLink | NativeUdpLink | undefined;
let stopDropLog: (() => void) | undefined;

// openTunnelDevice(url, { worker: true }): the WebSocket here, as the Node entry makes it on one thread
// (tunnel version 2, the same client and options: tunnel-socket.ts)
const tunnel = tunnelOps((url, msg) =>
  tunnelSocket(url, { token: msg.token as string | undefined, headers: (msg.headers ?? {}) as Record<string, string>, webSocket: msg.webSocket as TunnelWebSocket | undefined }));

/**
 * This thread's CPU on Linux (/proc/thread-self: its task id, and from schedstat the ns it ran and
 * the ns it waited runnable for a CPU), or undefined elsewhere.
 */
function threadCpu(): { tid: number; runNs: number; waitNs: number } | undefined {
  try {
    const tid = Number(readlinkSync("/proc/thread-self").split("/").pop());
    const [runNs, waitNs] = readFileSync("/proc/thread-self/schedstat", "utf8").split(" ").map(Number);
    return Number.isInteger(tid) && runNs !== undefined && waitNs !== undefined ? { tid, runNs, waitNs } : undefined;
  } catch {
    return undefined;
  }
}

/** An object's own fields that are numbers, strings or booleans (its flags and counters). */
function primitiveFields(o: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (["number", "string", "boolean"].includes(typeof v)) out[k] = v;
  return out;
}

const ops: WorkerOps = {
  tunnel: tunnel.tunnel!,
  async link(msg, ctx) {
    if (link) throw new Error("device worker: link opened twice");
    const o = msg as unknown as UdpLinkChoice;
    const r = await openUdpLink(o, (error) => ctx.report({ report: "sendError", error })).catch((e: unknown) => {
      throw e instanceof TypeError || e instanceof RangeError ? e : bindError(e, o.address, o.port ?? 4791);
    });
    link = r.link;
    return { localPort: r.link.localPort, path: r.link.path, reason: r.reason, perQpPorts: r.link.pool !== undefined };
  },
  attach(msg, ctx) {
    // the worker's spins give the CPU away between looks (sched_yield) when the addon can
    const y = schedYield();
    if (y) ctx.server.yieldCpu = y;
    if (!link) return tunnel.attach!(msg, ctx);
    const port = new PacketPort(ctx.core as unknown as TransportCore, ctx.mem, realClock, link, ctx.server.progress);
    link.port = port;
    ctx.server.port = port;
    const trace = ctx.server.trace;
    if (trace) {
      // the stage trace: every datagram handed to the link, every receive from it
      useMonotonicTraceClock();
      const l = link as { sendRing?: (first: number, count: number, srcPort?: number) => number; send: (...a: unknown[]) => unknown };
      const { sendRing, send } = l;
      if (sendRing) l.sendRing = (first, count, srcPort) => (trace.mark(TraceStage.W_SEND, count), sendRing.call(link, first, count, srcPort));
      l.send = (...a) => (trace.mark(TraceStage.W_SEND, 1), send.apply(link, a));
      const { receive, receiveBatch } = port;
      port.receive = (d) => (trace.mark(TraceStage.W_RECV, 1), receive.call(port, d));
      port.receiveBatch = (recs, count, more) => (trace.mark(TraceStage.W_RECV, count), receiveBatch.call(port, recs, count, more));
    }
    // a spinning worker (workerSpinUs) keeps receiving
    const dp = "datapath" in link ? link.datapath : undefined;
    if (dp?.pollReceive) ctx.server.pollLink = () => dp.pollReceive!(0);
    // the look at the socket for a request's answer (workerAnswerSpinUs; it needs pollLink), while little is in flight
    if (typeof msg.answerSpinUs === "number") ctx.server.answerSpinUs = msg.answerSpinUs;
    const core = ctx.core as unknown as TransportCore;
    const inFlightStat = BUDGET_STATS.indexOf("inflightPackets");
    ctx.server.inFlightPackets = () => core.tx_budget_stat(inFlightStat);
    // held ACKs across the threads (DeviceServer.flushAfterTurn): the deferred flush's end of turn goes there
    if (msg.ackHold === true && "deferFlush" in link && link.holdAcks && core.tx_ack_held) {
      const l = link;
      const defer = l.deferFlush.bind(l);
      const server = ctx.server;
      l.deferFlush = (fn: () => void) => defer(() => server.flushAfterTurn(fn));
      l.holdEveryBatch = true; // a lone ping's ACK too: it waits for the application thread's answer
      server.acksHeld = () => core.tx_ack_held!();
    } else if ("holdEveryBatch" in link) {
      // without workerAckHold nothing on this thread answers a lone request in the worker's turn: a
      // held ACK would wait for nothing (SOFTROCE_ACK_HOLD=every is for the application's own thread)
      link.holdEveryBatch = false;
    }
    if (typeof msg.logDropsMs === "number") stopDropLog = logDrops(port, (record) => ctx.report({ report: "drops", record }), msg.logDropsMs);
    port.service();
    // what the device took (the core may lack icrc_offload; the addon may lack the gate): datapathOf on the application thread
    return "icrcOffloadState" in link ? { icrcOffload: link.icrcOffloadState, busyPoll: link.busyPollState } : undefined;
  },
  /**
   * Tuning at run time (bench/worker.mjs's A/B): `watchOnly: true`, the worker's notifies filtered by
   * the application's watch list from now on (DeviceServer.useWatchList; there is no way back). Any
   * other field, or another value, is refused.
   */
  tune(msg, ctx) {
    const fields = Object.keys(msg).filter((k) => k !== "id" && k !== "op");
    const unknown = fields.find((k) => k !== "watchOnly");
    if (unknown !== undefined) throw new TypeError(`device worker tune: unknown field "${unknown}" (the one field: watchOnly)`);
    if (msg.watchOnly !== true) throw new TypeError(`device worker tune: watchOnly ${String(msg.watchOnly)}: true (the watch-list filter, once on, stays on)`);
    ctx.server.useWatchList();
    return undefined;
  },
  async mcast(msg) {
    if (!link) throw new Error("device worker: no link");
    const group = String(msg.group);
    await (msg.join ? link.joinGroup(group) : link.leaveGroup(group));
    return undefined;
  },
  /** the link's figures (UdpLink/NativeUdpLink stats), the port's, the native datapath's, this thread's CPU */
  stats(msg, ctx) {
    if (!link) return { ...(tunnel.stats!(msg, ctx) as object), thread: threadCpu() };
    const datapath = "datapathStats" in link ? link.datapathStats() : undefined;
    return { link: JSON.parse(JSON.stringify((link as { stats?: unknown }).stats ?? {})), port: ctx.server.port?.stats, datapath, thread: threadCpu() };
  },
  /** a stall's diagnosis (runner's "debug"): the port's and the link's own fields, the device's timer */
  debug(_msg, ctx) {
    const core = ctx.core as unknown as TransportCore & { engine_pending(): number };
    return {
      now: realClock.now(), nextDeadline: core.next_deadline(), enginePending: core.engine_pending(), ackHeld: core.tx_ack_held?.(),
      port: ctx.server.port && primitiveFields(ctx.server.port), portStats: ctx.server.port?.stats, budget: ctx.server.port?.budget(),
      link: link && primitiveFields(link), linkStats: link && JSON.parse(JSON.stringify((link as { stats?: unknown }).stats ?? {})),
      datapath: link && "datapathStats" in link ? link.datapathStats() : undefined,
    };
  },
  async close(msg, ctx) {
    ctx.server.releaseFlush();
    await tunnel.close!(msg, ctx);
    stopDropLog?.();
    await link?.close();
  },
};

runDeviceWorker(
  {
    postMessage: (m) => parent.postMessage(m),
    onMessage: (fn) => parent.on("message", fn),
    exit: () => parent.close(),
  },
  ops,
  () => realClock.now(),
  (fn) => void setImmediate(fn),
);
