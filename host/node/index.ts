// Node entry: the core API plus the Node wasm loader (and, later, UDP).
export * from "../core/index.js";
export { coreModule } from "./wasm-source.js";

import { openDeviceWith, type Device, type OpenDeviceOptions } from "../core/verbs/index.js";
import { coreModule as nodeCoreModule } from "./wasm-source.js";
/** ibv_open_device: a device on no network (a later issue binds UDP). */
export async function openDevice(options?: OpenDeviceOptions): Promise<Device> {
  return openDeviceWith(await nodeCoreModule(), options);
}
