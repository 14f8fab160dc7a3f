// Figures in perftest's units: bandwidth in MB/sec where MB is 2^20 bytes
// (perftest's default MBS format), message rate in Mpps, latency statistics
// in µs over every sample (typical = median, percentiles at floor(n × p)).
// This engine's own method: the run against perftest itself (--perftest, -R)
// computes its figures exactly as perftest does (host/cli/perftest-lat.ts,
// perftestPeak in host/cli/perftest-exchange.ts).

export const MB = 1 << 20;

export interface BwFigures {
  bw_peak_mbps: number;
  bw_avg_mbps: number;
  msg_rate_mpps: number;
  /** time from the first post to the last completion, µs */
  duration_us: number;
}

export interface LatFigures {
  t_min: number;
  t_max: number;
  t_typical: number;
  t_avg: number;
  t_stdev: number;
  p99: number;
  p99_9: number;
}

/**
 * Bandwidth from completion times. `done[i]` is the time (µs) the i-th
 * message completed, in completion order; `t0` the first post. Peak is the
 * best rate over any run of at least `window` consecutive completions that
 * lasts at least 1/20 of the run (perftest's peak is the best over all runs,
 * which costs O(n²) and rewards bursts).
 */
export function bwFigures(size: number, t0: number, done: ArrayLike<number>, window: number): BwFigures {
  const n = done.length;
  if (n === 0) return { bw_peak_mbps: 0, bw_avg_mbps: 0, msg_rate_mpps: 0, duration_us: 0 };
  const duration = done[n - 1]! - t0;
  const rate = duration > 0 ? n / duration : Infinity; // messages per µs
  // Peak: the best rate over an interval of at least `window` completions and at least 1/20 of
  // the run, so a burst of completions polled together cannot pass for a rate.
  let best = rate;
  const w = Math.max(1, Math.min(window, n - 1));
  const minSpan = duration / 20;
  let i = 0;
  for (let j = w; j < n; j++) {
    while (j - (i + 1) >= w && done[j]! - done[i + 1]! >= minSpan) i++;
    const dt = done[j]! - done[i]!;
    if (dt > 0 && dt >= minSpan) best = Math.max(best, (j - i) / dt);
  }
  const mbps = (r: number) => (Number.isFinite(r) ? (r * size * 1e6) / MB : Infinity);
  return { bw_peak_mbps: mbps(best), bw_avg_mbps: mbps(rate), msg_rate_mpps: Number.isFinite(rate) ? rate : Infinity, duration_us: duration };
}

/** Latency statistics over samples in µs (divided by `factor`: 2 for half round trips). */
export function latFigures(samples: ArrayLike<number>, factor: number): LatFigures {
  const n = samples.length;
  if (n === 0) return { t_min: 0, t_max: 0, t_typical: 0, t_avg: 0, t_stdev: 0, p99: 0, p99_9: 0 };
  const s = Float64Array.from(samples, (x) => x / factor).sort();
  let sum = 0;
  for (let i = 0; i < n; i++) sum += s[i]!;
  const avg = sum / n;
  let sq = 0;
  for (let i = 0; i < n; i++) sq += (s[i]! - avg) ** 2;
  const at = (p: number) => s[Math.min(n - 1, Math.floor(n * p))]!;
  return { t_min: s[0]!, t_max: s[n - 1]!, t_typical: s[n >> 1]!, t_avg: avg, t_stdev: Math.sqrt(sq / n), p99: at(0.99), p99_9: at(0.999) };
}

/** BwFigures from a peer's JSON (perf -b's report exchange): undefined unless every field is a finite number >= 0. */
export function bwFromJson(v: unknown): BwFigures | undefined {
  if (typeof v !== "object" || v === null) return undefined;
  const r = v as Record<string, unknown>;
  const keys = ["bw_peak_mbps", "bw_avg_mbps", "msg_rate_mpps", "duration_us"] as const;
  for (const k of keys) if (typeof r[k] !== "number" || !Number.isFinite(r[k]) || (r[k] as number) < 0) return undefined;
  return { bw_peak_mbps: r.bw_peak_mbps as number, bw_avg_mbps: r.bw_avg_mbps as number, msg_rate_mpps: r.msg_rate_mpps as number, duration_us: r.duration_us as number };
}
