// openDevice({ worker: true }) for Node: the device's instance, UDP link and timer in a
// worker_threads worker (device-worker.ts), the verbs on this thread over the shared rings.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { attachWorkerPort, DEFAULT_SPIN_US, deviceOnWorker, MAX_APP_SPIN_US, MAX_SPIN_US, setWorkerAppSpinYield, startWorkerCore, tunnelDeviceOnWorker, WorkerSession, type WorkerTunnelDevice, type SerializedError, type WorkerEndpoint, type WorkerReport } from "../../core/worker/index.js";
import type { Device, OpenDeviceOptions } from "../../core/verbs/index.js";
import type { DropLogRecord } from "../../core/link/index.js";
import type { TunnelLinkOptions } from "../../core/tunnel/index.js";
import { sharedCoreModule } from "../wasm-source.js";
import { UdpBindError } from "../open-options.js";
import type { UdpSendError } from "../udp.js";
import { traceStampsFromEnv, useMonotonicTraceClock } from "./clock.js";
import { envChoice, envInteger } from "../env.js";
import { busyPollFromEnv, checkBusyPoll, WORKER_THREAD_BUSY_POLL, type BusyPoll } from "../native-link.js";
import { schedYield } from "../sockopt.js";

/** Why this Node cannot run a device worker, or undefined when it can. */
export function workerUnavailable(): string | undefined {
  if (typeof SharedArrayBuffer !== "function") return "SharedArrayBuffer is not available (node started with it disabled)";
  if (typeof Atomics !== "object") return "Atomics is not available";
  if (!workerScript()) return "the device worker bundle dist/node/device-thread.js is missing (npm run build)";
  return undefined;
}

/** dist/node/device-thread.js, from the bundles (dist/<entry>/) or from the sources (host/node/worker/). */
function workerScript(): URL | undefined {
  // beside dist/node/index.js; from another bundle two levels under the root (dist/cli, dist/internal,
  // a test's bundle: where build/softroce.wasm is found too); from host/node/worker/ (sources)
  for (const rel of ["./device-thread.js", "../node/device-thread.js", "../../dist/node/device-thread.js", "../../../dist/node/device-thread.js"]) {
    const u = new URL(rel, import.meta.url);
    if (existsSync(fileURLToPath(u))) return u;
  }
  return undefined;
}

function nodeEndpoint(worker: Worker): WorkerEndpoint {
  return {
    postMessage: (m) => worker.postMessage(m),
    onMessage: (fn) => worker.on("message", fn),
    onFailure: (fn) => {
      worker.on("error", fn);
      worker.on("exit", (code) => fn(new Error(`the worker exited (code ${code})`)));
    },
    terminate: () => void worker.terminate(),
  };
}

function reviveNode(s: SerializedError): Error | undefined {
  if (s.name !== "UdpBindError") return undefined;
  const p = s.props;
  return new UdpBindError(String(p.code), String(p.address), Number(p.port), s.message);
}

export interface WorkerLinkInfo {
  localPort: number;
  /** the worker's link sends each QP from its own UDP port (a socket pool) */
  perQpPorts?: boolean;
  path: "native" | "dgram";
  reason?: string;
  /** on the native path: the ICRC offload's state as the worker's link took it (NativeUdpLink.icrcOffloadState) */
  icrcOffload?: string;
  /** on the native path: the busy poll's mode as the worker's link took it (NativeUdpLink.busyPollState) */
  busyPoll?: string;
}

const linkInfo = new WeakMap<Device, WorkerLinkInfo>();

/** The UDP path the worker of a device opened with an address uses (`datapathOf` for worker devices). */
export function workerLinkOf(device: Device): WorkerLinkInfo | undefined {
  return linkInfo.get(device);
}

/** After this turn's promise continuations: a tick queued from a microtask (as the native link's deferred flush). */
function endOfTurn(fn: () => void): void {
  queueMicrotask(() => process.nextTick(fn));
}

/**
 * A worker setting in µs (0 .. max): the option `name`, else env `variable`, else `dflt`. The
 * variable is read strictly even where the option overrides it: a value it cannot take is an error
 * either way, never one that shows only once the option is gone. The option is checked here too,
 * before a thread starts.
 */
function usSetting(name: string, us: number | undefined, variable: string, max: number, dflt: number): number {
  const env = envInteger(variable, 0, max, "µs");
  if (us !== undefined && !(typeof us === "number" && Number.isFinite(us) && us >= 0 && us <= max)) {
    throw new RangeError(`${name} ${us}: 0 .. ${max} µs`);
  }
  return us ?? env ?? dflt;
}

/** The worker's doorbell spin (µs): workerSpinUs, else env SOFTROCE_WORKER_SPIN_US, else DEFAULT_SPIN_US. */
function spinOf(o: { workerSpinUs?: number }): number {
  return usSetting("workerSpinUs", o.workerSpinUs, "SOFTROCE_WORKER_SPIN_US", MAX_SPIN_US, DEFAULT_SPIN_US);
}

/**
 * The defaults of a Node worker device's two round-trip levers: the worker's look for the answer to
 * the requests it sent (µs, DeviceServer.answerSpinUs) and the application thread's look at an
 * awaited CQ yielding between looks. Together, with a quiet machine (load 1.3–1.6, 2 vCPUs), the 64 B
 * round trip took 0.62–0.72x of the same worker device without them, and 0.83–0.91x beside other jobs
 * (load 5–7); WRITE goodput, idle and with the application thread kept busy, 0.97–1.22x (the look
 * stays out of streams: ANSWER_LOOK_MAX_IN_FLIGHT). docs/PERFORMANCE.md, "The levers, and the
 * datapath's busy poll, side by side" and the quiet run of 2026-12-04 23:25.
 */
export const NODE_ANSWER_SPIN_US = 200;
export const NODE_APP_SPIN_YIELD = true;

/**
 * The worker's look at its socket for the answer to requests it sent (µs, DeviceServer.answerSpinUs):
 * workerAnswerSpinUs, else env SOFTROCE_WORKER_ANSWER_SPIN_US, else NODE_ANSWER_SPIN_US.
 */
function answerSpinOf(o: { workerAnswerSpinUs?: number }): number {
  return usSetting("workerAnswerSpinUs", o.workerAnswerSpinUs, "SOFTROCE_WORKER_ANSWER_SPIN_US", MAX_SPIN_US, NODE_ANSWER_SPIN_US);
}

/**
 * Whether the application thread's look yields between looks: workerAppSpinYield, else env
 * SOFTROCE_WORKER_APP_SPIN_YIELD ("0" / "1"), else NODE_APP_SPIN_YIELD. Asked for without an addon
 * that yields: an error; by default without one, the look does not yield.
 */
function appSpinYieldOf(o: { workerAppSpinYield?: boolean }): (() => void) | undefined {
  const env = envChoice("SOFTROCE_WORKER_APP_SPIN_YIELD", ["0", "1"] as const);
  const on = o.workerAppSpinYield;
  if (on !== undefined && typeof on !== "boolean") throw new TypeError(`workerAppSpinYield ${String(on)}: true or false`);
  const asked = on ?? (env === undefined ? undefined : env === "1");
  if (!(asked ?? NODE_APP_SPIN_YIELD)) return undefined;
  const y = schedYield();
  if (!y && asked) throw new Error("workerAppSpinYield: the socket addon has no schedYield (rebuild it: node host/node/native/build.mjs)");
  return y;
}

/**
 * The worker's native datapath busy poll (NativeUdpLinkOptions.busyPollUs): the option, else env
 * SOFTROCE_BUSY_POLL_US, read here (strictly, before a thread starts) and handed to the worker's link
 * explicitly rather than through the thread's copy of the environment; unset, WORKER_THREAD_BUSY_POLL
 * (off: native-link.ts says why).
 */
function busyPollOf(options: WorkerOpenOptions): BusyPoll {
  return checkBusyPoll(options.busyPollUs ?? busyPollFromEnv() ?? WORKER_THREAD_BUSY_POLL);
}

/**
 * The application thread's look at an awaited CQ on Node (µs; session.ts setWorkerAppSpin, adaptive:
 * app-spin.ts). On: with the application thread on a CPU of its own (BENCH_APP_CPU=0, load 4) the 64 B
 * round trip took 0.59x and 0.65x of the same device without it; unpinned on a machine busy with other
 * jobs (load 4-9) its gates keep it off (0.92-1.13x, median ~1.03x: the probes). docs/PERFORMANCE.md,
 * "The round trip, stage by stage". The browser's main thread keeps DEFAULT_APP_SPIN_US (0): a page's
 * main thread does not spin.
 */
export const NODE_APP_SPIN_US = 200;

/** The look's bound: env SOFTROCE_WORKER_APP_SPIN_US (0 .. MAX_APP_SPIN_US), else NODE_APP_SPIN_US. */
function appSpinOf(): number {
  return envInteger("SOFTROCE_WORKER_APP_SPIN_US", 0, MAX_APP_SPIN_US, "µs") ?? NODE_APP_SPIN_US;
}

export interface WorkerOpenOptions extends OpenDeviceOptions {
  /** see DEFAULT_SPIN_US (env SOFTROCE_WORKER_SPIN_US) */
  workerSpinUs?: number;
  /** see DeviceServer.answerSpinUs (env SOFTROCE_WORKER_ANSWER_SPIN_US; default 0) */
  workerAnswerSpinUs?: number;
  /** see setWorkerAppSpinYield (env SOFTROCE_WORKER_APP_SPIN_YIELD; default false) */
  workerAppSpinYield?: boolean;
  /** the worker's native datapath busy poll (NativeUdpLinkOptions.busyPollUs; default WORKER_THREAD_BUSY_POLL, off) */
  busyPollUs?: BusyPoll;
  /**
   * With the deferred flush (the default): a received batch's plain ACKs wait in the worker for
   * the application's answer to the completions that woke it, so they leave together (one send,
   * one wake-up at the peer), at most ACK_HOLD_MAX_MS (false: they leave at the end
   * of the worker's turn). Default false (host/node/index.ts says why)
   */
  workerAckHold?: boolean;
  address?: string;
  port?: number;
  highWaterMark?: number;
  datapath?: "native" | "dgram";
  sourcePortCap?: number;
  logDrops?: (r: DropLogRecord) => void;
  logDropsMs?: number;
}

/**
 * Opens the device in a worker. With an address, `bound` holds what openDevice derived from it
 * (the GID the socket sends from, the node GUID and active MTU for a port) and how send errors
 * are reported.
 */
export async function openWorkerDevice(
  options: WorkerOpenOptions,
  bound?: { gid: string; deviceOptions: (localPort: number) => OpenDeviceOptions; onSendError: (e: UdpSendError) => void },
): Promise<Device> {
  const why = workerUnavailable();
  if (why) throw new Error(`softroce: cannot start a device worker: ${why}`);
  // the environment's settings first: a bad one stops the open before a thread starts
  const spinUs = spinOf(options);
  const answerSpinUs = answerSpinOf(options);
  const appSpinUs = appSpinOf();
  const appSpinYield = appSpinYieldOf(options);
  const busyPollUs = busyPollOf(options);
  const stamps = traceStampsFromEnv();
  const mod = await sharedCoreModule();
  const worker = new Worker(workerScript()!);
  const session = new WorkerSession(nodeEndpoint(worker), reviveNode);
  try {
    if (stamps) useMonotonicTraceClock();
    const ready = await startWorkerCore(session, mod, spinUs, stamps);
    let deviceOptions: OpenDeviceOptions = options;
    let info: WorkerLinkInfo | undefined;
    if (bound) {
      session.onReport((r: WorkerReport) => {
        if (r.report === "sendError") bound.onSendError(r.error as UdpSendError);
        else if (r.report === "drops") options.logDrops?.(r.record as DropLogRecord);
      });
      info = await session.request<WorkerLinkInfo>("link", {
        address: options.address, port: options.port, highWaterMark: options.highWaterMark, txRingSize: options.txRingSize, datapath: options.datapath,
        udpSourcePorts: options.udpSourcePorts, sourcePortCap: options.sourcePortCap, busyPollUs,
      });
      deviceOptions = { ...bound.deviceOptions(info.localPort), udpSourcePorts: info.perQpPorts ? "per-qp" : "device" };
    }
    const device = deviceOnWorker(session, ready, deviceOptions, endOfTurn, appSpinUs);
    setWorkerAppSpinYield(device, appSpinYield);
    try {
      if (bound) {
        const attached = await session.request<{ icrcOffload?: string; busyPoll?: string } | undefined>("attach", {
          logDropsMs: options.logDrops ? (options.logDropsMs ?? 1000) : undefined, ackHold: options.workerAckHold ?? false, answerSpinUs,
        });
        attachWorkerPort(device, session);
        linkInfo.set(device, { ...info!, ...(attached ?? {}) });
        device.onMulticast((group, join) => {
          session.request("mcast", { group, join }).catch((e: Error) => process.emitWarning(`multicast ${join ? "join" : "leave"} ${group}: ${e.message}`, { code: "SOFTROCE_MCAST" }));
        });
      }
    } catch (e) {
      device.close();
      throw e;
    }
    return device;
  } catch (e) {
    await session.close();
    throw e;
  }
}

/** openTunnelDevice(url, { worker: true }): the worker opens the WebSocket (tunnel-socket.ts, with `auth`'s token, headers and client). */
export async function openWorkerTunnelDevice(
  url: string,
  options: Omit<OpenDeviceOptions, "gids" | "port" | "qpnBase"> & TunnelLinkOptions & { workerSpinUs?: number },
  auth: { token?: string; headers?: Record<string, string>; webSocket?: string },
): Promise<WorkerTunnelDevice> {
  const why = workerUnavailable();
  if (why) throw new Error(`softroce: cannot start a device worker: ${why}`);
  const { workerSpinUs, ...rest } = options;
  const spinUs = spinOf({ workerSpinUs });
  const mod = await sharedCoreModule();
  const session = new WorkerSession(nodeEndpoint(new Worker(workerScript()!)), reviveNode);
  try {
    const ready = await startWorkerCore(session, mod, spinUs);
    return await tunnelDeviceOnWorker(session, ready, url, rest, { ...auth });
  } catch (e) {
    await session.close();
    throw e;
  }
}
