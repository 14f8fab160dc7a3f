// Browser entry: nothing reachable from here may import node:*.
export * from "../core/index.js";
export { coreModule } from "./wasm-source.js";
