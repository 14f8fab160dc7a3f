// The device in a Web Worker (openDevice / openTunnelDevice with `worker: true`): the worker
// (worker-device.ts, bundled as device-worker.js beside this bundle) runs the threads build of the
// core, owns the WebSocket to the gateway and the timers; this thread keeps the verbs and posts
// and polls through the shared rings. A page that is not cross-origin isolated has no
// SharedArrayBuffer: the caller then opens the single-thread device and says why (workerUnavailable).
import sharedWasmUrl from "../../build/softroce-shared.wasm";
import {
  DEFAULT_SPIN_US, deviceOnWorker, MAX_SPIN_US, startWorkerCore, tunnelDeviceOnWorker, WorkerSession, type WorkerEndpoint, type WorkerReady, type WorkerTunnelDevice,
} from "../core/worker/index.js";
import type { Device, OpenDeviceOptions } from "../core/verbs/index.js";
import type { TunnelLinkOptions } from "../core/tunnel/index.js";

export interface BrowserWorkerOptions {
  /** the device worker script (default: device-worker.js next to this bundle) */
  workerUrl?: string | URL;
  /**
   * How long (µs, 0..1000) the Web Worker keeps looking for this thread's next doorbell after a
   * receive ran the device, before it sleeps (default 0, DEFAULT_SPIN_US; as Node's openDevice).
   * A spin costs a core: it pays only where one is free (docs/PERFORMANCE.md).
   */
  workerSpinUs?: number;
}

/** Why this page cannot run a device worker (undefined: it can). */
export function workerUnavailable(): string | undefined {
  const g = globalThis as { crossOriginIsolated?: boolean; Worker?: unknown };
  const isolate = "serve the page with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp";
  if (typeof SharedArrayBuffer !== "function") return `SharedArrayBuffer is not available: the page is not cross-origin isolated (${isolate})`;
  if (g.crossOriginIsolated === false) return `the page is not cross-origin isolated (${isolate})`;
  if (typeof g.Worker !== "function") return "Web Workers are not available here";
  return undefined;
}

let cached: Promise<WebAssembly.Module> | undefined;

/** The threads build of the core (build/softroce-shared.wasm, copied beside the bundle). */
export function sharedCoreModule(): Promise<WebAssembly.Module> {
  cached ??= (async () => {
    const url = new URL(sharedWasmUrl, import.meta.url);
    const res = await fetch(url);
    if (!res.ok) throw new Error(`softroce: cannot fetch ${url}: HTTP ${res.status}`);
    if ((res.headers.get("content-type") ?? "").startsWith("application/wasm") && WebAssembly.compileStreaming) return WebAssembly.compileStreaming(res);
    return WebAssembly.compile(await res.arrayBuffer());
  })();
  return cached;
}

function webEndpoint(w: Worker): WorkerEndpoint {
  return {
    postMessage: (m) => w.postMessage(m),
    onMessage: (fn) => w.addEventListener("message", (e) => fn(e.data)),
    onFailure: (fn) => {
      w.addEventListener("error", (e) => fn(new Error(e.message || "the device worker failed to load or threw")));
      w.addEventListener("messageerror", () => fn(new Error("a message from the device worker could not be read")));
    },
    terminate: () => w.terminate(),
  };
}

async function start(o: BrowserWorkerOptions): Promise<{ session: WorkerSession; ready: WorkerReady }> {
  const spinUs = o.workerSpinUs ?? DEFAULT_SPIN_US;
  // refused before a worker starts (startWorkerCore checks it too)
  if (!(typeof spinUs === "number" && spinUs >= 0 && spinUs <= MAX_SPIN_US)) throw new RangeError(`workerSpinUs ${spinUs}: 0 .. ${MAX_SPIN_US} µs`);
  const mod = await sharedCoreModule();
  const w = new Worker(o.workerUrl ?? new URL("./device-worker.js", import.meta.url), { type: "module", name: "softroce-device" });
  const session = new WorkerSession(webEndpoint(w));
  try {
    return { session, ready: await startWorkerCore(session, mod, spinUs) };
  } catch (e) {
    await session.close();
    throw e;
  }
}

/** A device on no network, run by a Web Worker. */
export async function openWorkerDevice(options: OpenDeviceOptions & BrowserWorkerOptions = {}): Promise<Device> {
  const { workerUrl, workerSpinUs, ...rest } = options;
  const { session, ready } = await start({ workerUrl, workerSpinUs });
  try {
    return deviceOnWorker(session, ready, rest);
  } catch (e) {
    await session.close();
    throw e;
  }
}

/** A device on the gateway's tunnel at `url`, run by a Web Worker (which owns the WebSocket). */
export async function openWorkerTunnelDevice(
  url: string,
  options: Omit<OpenDeviceOptions, "gids" | "port" | "qpnBase"> & TunnelLinkOptions & BrowserWorkerOptions = {},
): Promise<WorkerTunnelDevice> {
  const { workerUrl, workerSpinUs, ...rest } = options;
  const { session, ready } = await start({ workerUrl, workerSpinUs });
  try {
    return await tunnelDeviceOnWorker(session, ready, new URL(url, location.href).href, rest);
  } catch (e) {
    await session.close();
    throw e;
  }
}
