// The clock of a worker device's stage trace on Node (host/core/worker/trace.ts): performance.now()
// corrected to process.hrtime, i.e. CLOCK_MONOTONIC in µs, which every thread and every process of
// the machine reads alike (performance.timeOrigin is taken per thread from the wall clock).
import { setTraceClockOffset, TRACE_MAX } from "../../core/worker/index.js";
import { envInteger } from "../env.js";

/** µs to add to performance.now() * 1000 for process.hrtime's clock (the closest of a few paired reads). */
export function monotonicOffsetUs(): number {
  let best = Infinity;
  let offset = 0;
  for (let i = 0; i < 16; i++) {
    const a = performance.now();
    const hr = Number(process.hrtime.bigint()) / 1000;
    const b = performance.now();
    if (b - a < best) {
      best = b - a;
      offset = hr - ((a + b) / 2) * 1000;
    }
  }
  return offset;
}

/** Makes this thread's trace stamps read the monotonic clock. */
export function useMonotonicTraceClock(): void {
  setTraceClockOffset(monotonicOffsetUs());
}

/** The trace's size when SOFTROCE_WORKER_TRACE is 1 (stamps). */
export const TRACE_DEFAULT_STAMPS = 1 << 18;

/**
 * The trace's size from env SOFTROCE_WORKER_TRACE: unset, "" or "0" none; "1" TRACE_DEFAULT_STAMPS
 * (262,144); a larger integer up to TRACE_MAX that many. Anything else is refused (envInteger).
 */
export function traceStampsFromEnv(): number {
  const n = envInteger("SOFTROCE_WORKER_TRACE", 0, TRACE_MAX, "stamps (1: on)") ?? 0;
  return n === 1 ? TRACE_DEFAULT_STAMPS : n;
}
