// host/core/wasm: instantiating the core; the binary format's pieces for modules assembled in code.
export * from "./instance.js";
export * as wasmEncode from "./encode.js";
