// Browser entry ("softroce" under the browser and default conditions): the public API of
// host/index.ts, a device on no network (openDevice; put it on a SimNetwork) and a device reached
// through the softroce gateway's WebSocket tunnel (openTunnelDevice). Nothing reachable from here
// may import node:*.
export * from "../index.js";
export { coreModule } from "./wasm-source.js";

import { openDeviceWith, type Device, type OpenDeviceOptions } from "../core/verbs/index.js";
import { coreModule as browserCoreModule } from "./wasm-source.js";
import { openTunnelDeviceWith, type TunnelDevice, type TunnelLinkOptions } from "../core/tunnel/index.js";
import { tunnelSocket } from "./tunnel-socket.js";
import type { WorkerTunnelDevice } from "../core/worker/index.js";
import { openWorkerDevice, openWorkerTunnelDevice, workerUnavailable, type BrowserWorkerOptions } from "./worker.js";
/** Options of the browser's openDevice / openTunnelDevice that choose the thread. */
export interface BrowserThreadOptions extends BrowserWorkerOptions {
  /**
   * Run the device in a Web Worker (docs/API.md, "The device in a worker"). A page that is not
   * cross-origin isolated has no SharedArrayBuffer: the device then runs on this thread,
   * `device.workerFallback` says why and a console warning repeats it.
   */
  worker?: boolean;
}

/** ibv_open_device: a device on no network (attach it to a SimNetwork, or use openTunnelDevice). */
export async function openDevice(options?: OpenDeviceOptions & BrowserThreadOptions): Promise<Device> {
  const { worker, workerUrl, ...rest } = options ?? {};
  if (worker) {
    const why = workerUnavailable();
    if (why === undefined) return openWorkerDevice({ ...rest, workerUrl });
    return fallback(await openDeviceWith(await browserCoreModule(), rest), why);
  }
  return openDeviceWith(await browserCoreModule(), rest);
}

function fallback<T extends Device>(device: T, why: string): T {
  device.workerFallback = why;
  console.warn(`softroce: the device runs on this thread, not in a worker: ${why}`);
  return device;
}

/**
 * A device reached through the softroce gateway at `url` (ws:// or wss://, with `?token=` when the
 * gateway wants one: browsers cannot set headers on a WebSocket; docs/TUNNEL.md).
 */
export async function openTunnelDevice(url: string, options?: Omit<OpenDeviceOptions, "gids" | "port" | "qpnBase"> & TunnelLinkOptions & { worker?: false }): Promise<TunnelDevice>;
/** With `worker: true`: the device and its WebSocket in a Web Worker (or, without SharedArrayBuffer, here: see workerFallback). */
export async function openTunnelDevice(url: string, options: Omit<OpenDeviceOptions, "gids" | "port" | "qpnBase"> & TunnelLinkOptions & BrowserThreadOptions): Promise<TunnelDevice | WorkerTunnelDevice>;
export async function openTunnelDevice(url: string, options: Omit<OpenDeviceOptions, "gids" | "port" | "qpnBase"> & TunnelLinkOptions & BrowserThreadOptions = {}): Promise<TunnelDevice | WorkerTunnelDevice> {
  const { worker, workerUrl, ...rest } = options;
  const why = worker ? workerUnavailable() : undefined;
  if (worker && why === undefined) return openWorkerTunnelDevice(url, { ...rest, workerUrl });
  // The module first: a HELLO that arrives while the wasm compiles would meet no listener and be lost.
  const mod = await browserCoreModule();
  const ws = tunnelSocket(url); // tunnel version 2 when the gateway speaks it
  const t = await openTunnelDeviceWith(mod, ws, rest);
  if (why !== undefined) fallback(t.device, why);
  return t;
}
