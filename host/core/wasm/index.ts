// host/core/wasm: instantiating the core.
export * from "./instance.js";
