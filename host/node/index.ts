// Node entry: the core API plus the Node wasm loader (and, later, UDP).
export * from "../core/index.js";
export { coreModule } from "./wasm-source.js";
