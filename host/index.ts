// The platform-neutral public API (types entry of the package).
export * from "./core/index.js";
