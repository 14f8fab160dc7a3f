// Node: the wasm sits in build/, two levels above both host/node (sources)
// and dist/<entry>/ (bundles), so one relative URL serves both.
import { readFile } from "node:fs/promises";

let cached: Promise<WebAssembly.Module> | undefined;

export function coreModule(): Promise<WebAssembly.Module> {
  cached ??= readFile(new URL("../../build/softroce.wasm", import.meta.url)).then((b) => WebAssembly.compile(b));
  return cached;
}

let cachedShared: Promise<WebAssembly.Module> | undefined;

/** The threads build of the core (shared linear memory, atomic ring indices) a device worker runs. */
export function sharedCoreModule(): Promise<WebAssembly.Module> {
  cachedShared ??= readFile(new URL("../../build/softroce-shared.wasm", import.meta.url)).then((b) => WebAssembly.compile(b));
  return cachedShared;
}
