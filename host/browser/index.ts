// Browser entry: nothing reachable from here may import node:*.
export * from "../core/index.js";
export { coreModule } from "./wasm-source.js";

import { openDeviceWith, type Device, type OpenDeviceOptions } from "../core/verbs/index.js";
import { coreModule as browserCoreModule } from "./wasm-source.js";
/** ibv_open_device: a device on no network (a later issue adds the WebSocket tunnel). */
export async function openDevice(options?: OpenDeviceOptions): Promise<Device> {
  return openDeviceWith(await browserCoreModule(), options);
}
