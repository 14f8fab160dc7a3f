// Node entry ("softroce" under the node condition): the public API of host/index.ts (what
// docs/API.md documents; internals are in host/internal/node.ts), the devices Node can open (UDP,
// or a gateway's WebSocket tunnel) and the TCP exchange that connects two QPs.
export * from "../index.js";
export { coreModule } from "./wasm-source.js";
export {
  connectQpOverTcp, localEndpoint, jsonReplacer, remoteMr, remoteAddr, udpPortOf, ExchangeError, EXCHANGE_TCP_PORT,
  type TcpExchangeOptions, type TcpExchangeResult, type RemoteMr,
} from "./exchange.js";
export { UdpBindError, nodeGuidFor, activeMtuFor } from "./open-options.js";
export { rsConnect, rsListen, rsDgram, RsocketSocket, RsocketServer, type RsConnectOptions } from "./rsocket.js";
export { RsocketError, RDgram, type RsocketOptions, type RDgramCounters, type RDgramOptions } from "../core/rsocket/index.js";

import { openDeviceWith, Errno, VerbsError, type Device, type OpenDeviceOptions } from "../core/verbs/index.js";
import { realClock } from "../core/link/index.js";
import { Qp1Transport } from "../core/cm/index.js";
import { addressGid, formatGid, parseGid } from "../core/net/index.js";
import { coreModule as nodeCoreModule } from "./wasm-source.js";
import { explainSendError, UdpLink, type UdpSendError } from "./udp.js";
import { NativeUdpLink, type BusyPoll } from "./native-link.js";
import { openUdpLink } from "./udp-open.js";
import type { SourcePortStats } from "./sport-pool.js";
export type { SourcePortStats, UdpSourcePorts } from "./sport-pool.js";
import { openWorkerDevice, openWorkerTunnelDevice, workerLinkOf, workerUnavailable } from "./worker/open.js";
import type { WorkerTunnelDevice } from "../core/worker/index.js";
import { activeMtuFor, bindError, nodeGuidFor } from "./open-options.js";

export interface NodeDeviceOptions extends OpenDeviceOptions {
  /** local IPv4 or IPv6 address to bind (no address: a device on no network) */
  address?: string;
  /** UDP port (default 4791; 0 picks a free one, see udpPortOf) */
  port?: number;
  /** bytes in the socket's send queue past which the device holds its datagrams (default 4 MiB) */
  highWaterMark?: number;
  /**
   * A datagram the kernel refused (EMSGSIZE for a path MTU above the interface's). Default: one
   * process warning per error code per device, so a run that silently retries is explained.
   */
  onSendError?: (e: UdpSendError) => void;
  /**
   * Refused datagrams as log records, rate-limited: one record per drop reason per `logDropsMs`
   * (default 1000 ms) with the count since the last, never one per datagram. Default: none.
   */
  logDrops?: (r: DropLogRecord) => void;
  logDropsMs?: number;
  /**
   * "native": the batched datapath of the socket addon (sendmmsg/GSO out of the TX ring,
   * recvmmsg/GRO into linear memory, one core call per batch); "dgram": node:dgram, one
   * datagram per call. Default: native when the addon has it (env SOFTROCE_DATAPATH overrides).
   */
  datapath?: "native" | "dgram";
  /**
   * Sockets the per-QP UDP source port pool may hold at once (udpSourcePorts "per-qp", the
   * default; default 1024 or a quarter of the descriptor limit if less, at most 16384). A QP whose port cannot be bound (taken, the cap
   * reached, out of descriptors) sends from the device's port: `sourcePortStatsOf(device)` counts it.
   */
  sourcePortCap?: number;
  /**
   * Open the port's QP1 (the GSI) with the device, as Linux's MAD layer and ib_cm are always
   * there: a CM REQ for a port nobody listens on is rejected at once, a Get or Set answered
   * "unsupported". Default true; false leaves QP1 to the application (Qp1Transport.open).
   */
  gsi?: boolean;
  /**
   * Run the device in a worker thread (docs/API.md, "The device in a worker"): the worker owns the
   * core's progress, the socket and the timers; this thread posts and polls through the shared
   * rings. Where no worker can run, the device runs on this thread, says why in
   * `device.workerFallback` and emits a SOFTROCE_NO_WORKER warning.
   */
  worker?: boolean;
  /**
   * With `worker`: how long (µs, 0..1000) the worker keeps looking for this thread's next doorbell
   * after a receive ran the device and woke this thread, before it sleeps (default 0; env
   * SOFTROCE_WORKER_SPIN_US; it backs off while its spins find nothing: docs/API.md). Its looks yield
   * the CPU (sched_yield) between them.
   */
  workerSpinUs?: number;
  /**
   * With `worker` on the native datapath: after a run that sent requests, how long (µs, 0..1000) the
   * worker looks at its socket for the first datagram back before it sleeps, yielding the CPU between
   * looks and backing off while its looks find nothing (default NODE_ANSWER_SPIN_US, 200; 0 off; env
   * SOFTROCE_WORKER_ANSWER_SPIN_US). When the answer woke this thread, the workerSpinUs spin follows.
   */
  workerAnswerSpinUs?: number;
  /**
   * With `worker`: this thread's look at an awaited CQ before it sleeps (SOFTROCE_WORKER_APP_SPIN_US)
   * yields the CPU between looks (default NODE_APP_SPIN_YIELD, true, where the socket addon built;
   * env SOFTROCE_WORKER_APP_SPIN_YIELD=0|1).
   */
  workerAppSpinYield?: boolean;
  /**
   * With `worker` (default false): a received batch's plain ACKs wait in the worker for this
   * thread's answer to the completions that woke it (its next send queue doorbell), so both leave
   * in one send (one wake-up at the peer); at most 1 ms, and no longer than this thread's turn when
   * it answers nothing. Off by default: measured, it did not shorten the 64 B round trip here
   * (docs/PERFORMANCE.md, "The device in a worker").
   */
  workerAckHold?: boolean;
  /**
   * On the native datapath: after a received batch that drained the socket, poll it for the next
   * datagram instead of sleeping. "adaptive" (default; env SOFTROCE_BUSY_POLL_US): 200 µs windows
   * while most of them catch a datagram, else only every 16th (a probe); a number, 1..1000 µs: every
   * window opens (CPU for round trips, whatever the traffic); 0: off (NativeUdpLinkOptions.busyPollUs).
   */
  busyPollUs?: BusyPoll;
}

import { logDrops, type DropLogRecord } from "../core/link/index.js";

const links = new WeakMap<Device, UdpLink | NativeUdpLink>();

/** The UDP link of a device opened with an address (its stats: sent, sendErrorsByCode, backpressured; `path`). */
export function udpLinkOf(device: Device): UdpLink | NativeUdpLink | undefined {
  return links.get(device);
}

/**
 * The UDP source ports of a device opened with an address on this thread: "per-qp" (each QP from
 * rxe's port for it, through a socket pool) or "device"; the pool's counters, and `fallbacks`:
 * datagrams moved to the device's port because their QP's port could not be bound (a bind that
 * failed, or the pool at its cap; the QP then stays on the device's port).
 */
export function sourcePortsOf(device: Device): ({ mode: "per-qp" | "device"; fallbacks: number } & Partial<SourcePortStats>) | undefined {
  const link = links.get(device);
  if (!link) return undefined;
  const fallbacks = link.port?.stats.sportFallbacks ?? 0;
  const s = link.sourcePortStats();
  return s ? { mode: "per-qp", fallbacks, ...s } : { mode: "device", fallbacks };
}

/**
 * Which UDP path a device opened with an address uses ("native" or "dgram"), and why not native;
 * on the native path (a device on this thread or in a worker), whether it offloads the ICRC (and why not).
 */
export function datapathOf(device: Device): DatapathState | undefined {
  const w = workerLinkOf(device);
  if (w) return { path: w.path, reason: w.reason, icrcOffload: w.icrcOffload, busyPoll: w.busyPoll };
  const l = links.get(device);
  if (!l) return undefined;
  const state: DatapathState = { path: l.path, reason: fallbackReasons.get(device) };
  if (l instanceof NativeUdpLink) {
    const st = l.datapathStats();
    state.icrcOffload = l.icrcOffloadState;
    state.busyPoll = l.busyPollState;
    state.busyPollStats = { windows: st.rxBusyPolls, hits: st.rxBusyHits, gated: st.rxBusyGated ?? 0 };
  }
  return state;
}

/** datapathOf's answer. */
export interface DatapathState {
  path: "native" | "dgram";
  /** why not native */
  reason?: string;
  /** on the native path: the ICRC offload's state */
  icrcOffload?: string;
  /** on the native path: the busy poll's mode, "adaptive (…)", "fixed N µs (…)" or "off" (a worker device's as its link took it; busyPollStats only for this thread's devices) */
  busyPoll?: string;
  /** its windows so far: opened, those that caught a datagram, those the adaptive gate held back */
  busyPollStats?: { windows: number; hits: number; gated: number };
}
const fallbackReasons = new WeakMap<Device, string>();

/**
 * A device on a UDP socket sends every packet from the socket's address, and the ICRC covers the
 * source address: a GID entry naming another address would make every packet sent with it fail
 * the peer's ICRC check. Such entries are refused when the device opens (EINVAL).
 */
function checkSocketGids(address: string, boundGid: string, gids: OpenDeviceOptions["gids"]): void {
  if (!gids) return;
  const bound = formatGid(parseGid(boundGid));
  const wildcard = bound === formatGid(parseGid("::ffff:0.0.0.0")) || bound === formatGid(parseGid("::"));
  if (wildcard) throw new VerbsError("ibv_open_device", Errno.EINVAL, `GID entries need a bound address: the socket on ${address} sends from whichever address the route picks`);
  gids.forEach((g, i) => {
    let text: string;
    try {
      text = formatGid(parseGid(g));
    } catch (e) {
      throw new VerbsError("ibv_open_device", Errno.EINVAL, `GID ${i}: ${(e as Error).message}`);
    }
    if (text !== bound) {
      throw new VerbsError("ibv_open_device", Errno.EINVAL, `GID ${i} ${text}: the socket is bound to ${address} and cannot send from that address (the peer's ICRC check would fail every packet)`);
    }
  });
}

/**
 * ibv_open_device. With an address the device is bound to UDP there and its
 * GID 0 is that address (IPv4-mapped for IPv4); without, it is on no network. Bound to an address,
 * its active MTU and node GUID come from the address (activeMtuFor, nodeGuidFor) unless given; a
 * bind that fails throws UdpBindError (code EADDRINUSE, EADDRNOTAVAIL, …).
 */
export async function openDevice(options: NodeDeviceOptions = {}): Promise<Device> {
  if (options.worker) {
    const why = workerUnavailable();
    if (why === undefined) return openDeviceInWorker(options);
    const device = await openDevice({ ...options, worker: false });
    device.workerFallback = why;
    process.emitWarning(`softroce: openDevice({ worker: true }) runs the device on this thread: ${why}`, { code: "SOFTROCE_NO_WORKER" });
    return device;
  }
  const mod = await nodeCoreModule();
  if (options.address === undefined) return openDeviceWith(mod, options);
  const onSendError = options.onSendError ?? warnOncePerErrno();
  const gid = addressGid(options.address);
  checkSocketGids(options.address, gid, options.gids);
  const { link, reason } = await openUdpLink({ ...options, address: options.address }, onSendError).catch((e: unknown) => {
    throw e instanceof TypeError || e instanceof RangeError ? e : bindError(e, options.address!, options.port ?? 4791);
  });
  try {
    const device = await openDeviceWith(mod, { gids: [gid], nodeGuid: nodeGuidFor(options.address, link.localPort), activeMtu: activeMtuFor(options.address), ...options, port: link.localPort, udpSourcePorts: link.pool ? "per-qp" : "device" });
    link.port = device.attach(link, realClock);
    const stopDropLog = options.logDrops ? logDrops(link.port, options.logDrops, options.logDropsMs) : undefined;
    if (stopDropLog) device.addEventListener("close", stopDropLog);
    links.set(device, link);
    if (reason) fallbackReasons.set(device, reason);
    // multicast GIDs the device's QPs attach to become groups the link joins (rxe: the netdev's mc list)
    device.onMulticast((group, join) => {
      const op = join ? link.joinGroup(group) : link.leaveGroup(group);
      op.catch((e: Error) => process.emitWarning(`multicast ${join ? "join" : "leave"} ${group}: ${e.message}`, { code: "SOFTROCE_MCAST" }));
    });
    device.addEventListener("close", () => void link.close());
    if (options.gsi ?? true) Qp1Transport.of(device);
    return device;
  } catch (e) {
    await link.close();
    throw e;
  }
}

/** openDevice's default onSendError: one process warning per errno, explained. */
function warnOncePerErrno(): (e: UdpSendError) => void {
  const warned = new Set<string>();
  return (e) => {
    if (warned.has(e.code)) return;
    warned.add(e.code);
    process.emitWarning(explainSendError(e), { code: `SOFTROCE_SEND_${e.code}` });
  };
}

/** openDevice({ worker: true }): what openDevice derives from the address, then the worker. */
async function openDeviceInWorker(options: NodeDeviceOptions): Promise<Device> {
  if (options.address === undefined) return openWorkerDevice(options);
  const address = options.address;
  const onSendError = options.onSendError ?? warnOncePerErrno();
  const gid = addressGid(address);
  checkSocketGids(address, gid, options.gids);
  const device = await openWorkerDevice(options, {
    gid,
    onSendError,
    deviceOptions: (localPort) => ({ gids: [gid], nodeGuid: nodeGuidFor(address, localPort), activeMtu: activeMtuFor(address), ...options, port: localPort }),
  });
  // QP1 as on the thread path, posted and polled from this thread (device.port here is a WorkerPort, with the same real clock)
  if (options.gsi ?? true) Qp1Transport.of(device, { clock: realClock });
  return device;
}

import { openTunnelDeviceWith, type TunnelDevice, type TunnelLinkOptions } from "../core/tunnel/index.js";
import { tunnelSocket, type TunnelWebSocket } from "./tunnel-socket.js";

export interface NodeTunnelDeviceOptions extends Omit<OpenDeviceOptions, "gids" | "port" | "qpnBase">, TunnelLinkOptions {
  /** the gateway's token, sent as `Authorization: Bearer TOKEN` (a `?token=` in the URL works too) */
  token?: string;
  /** extra HTTP headers for the upgrade (e.g. an Origin, when the gateway should see one) */
  headers?: Record<string, string>;
  /** with `worker: true`: as openDevice's workerSpinUs */
  workerSpinUs?: number;
  /** the WebSocket client: "softroce" (the default for ws:// URLs: host/node/ws-client.ts) or "ws" (the package; always for wss://) */
  webSocket?: TunnelWebSocket;
}

/**
 * A device reached through the softroce gateway at `url` (ws:// or wss://, docs/TUNNEL.md), for Node:
 * a WebSocket client in place of the browser's (host/node/tunnel-socket.ts; no compression, as the gateway wants).
 */
export async function openTunnelDevice(url: string, options?: NodeTunnelDeviceOptions & { worker?: false }): Promise<TunnelDevice>;
/** With `worker: true`: the device and its WebSocket in a worker thread (docs/API.md, "The device in a worker"). */
export async function openTunnelDevice(url: string, options: NodeTunnelDeviceOptions & { worker?: boolean }): Promise<TunnelDevice | WorkerTunnelDevice>;
export async function openTunnelDevice(url: string, options: NodeTunnelDeviceOptions & { worker?: boolean } = {}): Promise<TunnelDevice | WorkerTunnelDevice> {
  const { worker, ...opts } = options;
  if (worker) {
    const why = workerUnavailable();
    if (why === undefined) {
      const { token, headers, webSocket, ...rest } = opts;
      return openWorkerTunnelDevice(url, rest, { token, headers, webSocket });
    }
    const t = await openTunnelDevice(url, opts);
    t.device.workerFallback = why;
    process.emitWarning(`softroce: openTunnelDevice({ worker: true }) runs the device on this thread: ${why}`, { code: "SOFTROCE_NO_WORKER" });
    return t;
  }
  // The module first: the HELLO must find TunnelLink's listener when it arrives.
  const mod = await nodeCoreModule();
  const { token, headers, webSocket, ...rest } = opts;
  const ws = tunnelSocket(url, { token, headers, webSocket });
  return openTunnelDeviceWith(mod, ws, rest);
}
