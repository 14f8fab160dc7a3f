// host/core/worker: the device on shared linear memory, run by a worker thread. The control block
// (control.ts), the application thread's proxy of the core (proxy.ts) and session (session.ts),
// the worker's server (serve.ts) and message loop (runner.ts); platforms supply the thread.
export * from "./control.js";
export * from "./endpoint.js";
export * from "./messages.js";
export * from "./proxy.js";
export * from "./serve.js";
export * from "./session.js";
export * from "./runner.js";
export * from "./tunnel.js";
export * from "./port.js";
export * from "./watch.js";
export * from "./trace.js";
export * from "./app-spin.js";
export * from "./spin-gate.js";
