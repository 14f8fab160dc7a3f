// host/core: everything that runs on any platform.
export { instantiateCore, CoreAbort, type CoreExports } from "./wasm.js";
export * from "./wire.js";
export * from "./addr.js";
