// The perf engine (softroce perf --local, the playground, the bench).
export * from "./options.js";
export * from "./pattern.js";
export * from "./stats.js";
export { createPerfBed, slotView, CLIENT_ADDRESS, SERVER_ADDRESS, type PerfBed, type PerfSide } from "./bed.js";
export { runPerf, type PerfResult, type PerfHooks, type PerfProgress, type PerfCounts } from "./run.js";
export * from "./report.js";
