// Browser entry ("softroce" under the browser and default conditions): the public API of
// host/index.ts, a device on no network (openDevice; put it on a SimNetwork) and a device reached
// through the softroce gateway's WebSocket tunnel (openTunnelDevice). Nothing reachable from here
// may import node:*.
export * from "../index.js";
export { coreModule } from "./wasm-source.js";

import { openDeviceWith, type Device, type OpenDeviceOptions } from "../core/verbs/index.js";
import { coreModule as browserCoreModule } from "./wasm-source.js";
import { openTunnelDeviceWith, TUNNEL_SUBPROTOCOL_V2, type TunnelDevice, type TunnelLinkOptions } from "../core/tunnel/index.js";
/** ibv_open_device: a device on no network (attach it to a SimNetwork, or use openTunnelDevice). */
export async function openDevice(options?: OpenDeviceOptions): Promise<Device> {
  return openDeviceWith(await browserCoreModule(), options);
}

/**
 * A device reached through the softroce gateway at `url` (ws:// or wss://, with `?token=` when the
 * gateway wants one: browsers cannot set headers on a WebSocket; docs/TUNNEL.md).
 */
export async function openTunnelDevice(url: string, options: Omit<OpenDeviceOptions, "gids" | "port" | "qpnBase"> & TunnelLinkOptions = {}): Promise<TunnelDevice> {
  // The module first: a HELLO that arrives while the wasm compiles would meet no listener and be lost.
  const mod = await browserCoreModule();
  const ws = new WebSocket(url, [TUNNEL_SUBPROTOCOL_V2]); // tunnel version 2 when the gateway speaks it
  return openTunnelDeviceWith(mod, ws, options);
}
