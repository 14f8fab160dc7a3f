// The clock of a worker device's stage trace on Node (host/core/worker/trace.ts): performance.now()
// corrected to process.hrtime, i.e. CLOCK_MONOTONIC in µs, which every thread and every process of
// the machine reads alike (performance.timeOrigin is taken per thread from the wall clock).
import { setTraceClockOffset } from "../../core/worker/index.js";

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

/**
 * The trace's size from env SOFTROCE_WORKER_TRACE: unset, "" or "0" none; "1" 262,144 stamps; a
 * larger integer that many. Anything else is refused (a RangeError names the variable).
 */
export function traceStampsFromEnv(): number {
  const v = process.env.SOFTROCE_WORKER_TRACE;
  if (v === undefined || v === "" || v === "0") return 0;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`SOFTROCE_WORKER_TRACE=${v}: 1 (on) or a number of stamps`);
  return n === 1 ? 1 << 18 : n;
}
