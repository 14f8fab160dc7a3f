// The perf engine (softroce perf --local and two-process, the playground, the bench): one engine
// (run.ts) over a bed (bed.ts: the simulated wire here; UDP in host/node/perf-udp.ts).
export * from "./options.js";
export * from "./pattern.js";
export * from "./stats.js";
export { createPerfBed, CLIENT_ADDRESS, SERVER_ADDRESS, type PerfBed, type SimPerfBed, type PerfWireStats } from "./bed.js";
export {
  openPerfSide, perfDeviceOptions, perfConnectAttrs, perfWr, qpRegions, remoteMrs, slotView, mtuEnum, PERF_ACCESS, type PerfRegion, type PerfSide, type PerfShape, type RemoteMr,
} from "./side.js";
export {
  runPerf, runPerfOn, servePerfOn, sumBw, perfCounts, countStatus, type PerfResult, type PerfHooks, type PerfProgress, type PerfCounts,
} from "./run.js";
export * from "./report.js";
