// perftest's latency report (print_report_lat) from the times a test posted its work requests: the
// figures of its row, and -U / -H's lists of every measurement. Pure functions over numbers, so each
// figure is checked against a Linux perftest log in the tests.

import { LAT_HEADER, PERF_RULE, fig, latRow, type LatFigures } from "../core/perf/index.js";

/** perftest leaves the largest measurements out of its figures (LAT_MEASURE_TAIL). */
const LAT_MEASURE_TAIL = 2;

/** A latency row's figures (µs), and the measurements behind them. */
export interface PerftestLatency extends LatFigures {
  /** every measurement in the order taken (µs; -U lists them) */
  unsorted: number[];
  /** the measurements sorted, the tail included (µs) */
  sorted: number[];
  /** how many count: all but the tail (-H lists these) */
  counted: number;
}

/**
 * The figures perftest prints for a latency run: each measurement is the time from one post to the next
 * (its tposted deltas), divided by the round-trip factor (2 for SEND and WRITE, whose ping-pong
 * is two trips; 1 for READ and atomics). Sorted, the two largest are left out; t_max is the
 * first of them left out (delta[measure_cnt]), t_typical the median of the rest, the
 * percentiles index it at ceil(n × p) (so may also be the first left out). t_stdev is computed as
 * perftest computes it: each difference from the average truncated to a whole µs before it is squared
 * and the square kept in an int too (its int temporaries: cInt), which is why its logs show whole
 * numbers there; ours does the same so that two rows of the same run compare. With `cyclesPerUs` (-C) every figure is in CPU cycles instead of µs.
 */
export function perftestLatency(postedMs: readonly number[], rttFactor: number, cyclesPerUs?: number): PerftestLatency {
  const unsorted: number[] = [];
  for (let i = 0; i + 1 < postedMs.length; i++) {
    const us = (postedMs[i + 1]! - postedMs[i]!) * 1000;
    // -C: whole cycles (perftest's cycles_t deltas) at the CPU's rate, then the round trip's share
    unsorted.push((cyclesPerUs === undefined ? us : Math.round(us * cyclesPerUs)) / rttFactor);
  }
  const sorted = [...unsorted].sort((a, b) => a - b);
  const counted = Math.max(sorted.length - LAT_MEASURE_TAIL, Math.min(sorted.length, 1));
  if (counted === 0) return { unsorted, sorted, counted, t_min: 0, t_max: 0, t_typical: 0, t_avg: 0, t_stdev: 0, p99: 0, p99_9: 0 };
  const at = (i: number) => sorted[Math.min(i, sorted.length - 1)]!;
  const half = Math.floor(counted / 2);
  const typical = (counted - 1) % 2 ? (sorted[half]! + sorted[half - 1]!) / 2 : sorted[half]!;
  let sum = 0;
  for (let i = 0; i < counted; i++) sum += sorted[i]!;
  const avg = sum / counted;
  let squares = 0;
  for (let i = 0; i < counted; i++) squares += cInt(cInt(avg - sorted[i]!) ** 2);
  return {
    unsorted, sorted, counted, t_min: sorted[0]!, t_max: at(counted), t_typical: typical, t_avg: avg, t_stdev: Math.sqrt(squares / counted),
    p99: at(Math.ceil(counted * 0.99)), p99_9: at(Math.ceil(counted * 0.999)),
  };
}

/**
 * A double stored in a C int on x86 (perftest's int temporaries): truncated, and INT_MIN when it does
 * not fit (cvttsd2si's "integer indefinite"). A squared difference past 46340 does not: the sum then
 * goes negative and t_stdev is -nan, as perftest's -C rows (differences of thousands of cycles) show.
 */
function cInt(x: number): number {
  const t = Math.trunc(x);
  return t > 2147483647 || t < -2147483648 ? -2147483648 : t;
}

/** C's printf %g: six significant digits, trailing zeros dropped, an exponent below 1e-4 or from 1e6. */
export function printfG(x: number): string {
  if (x === 0) return "0";
  if (!Number.isFinite(x)) return Number.isNaN(x) ? "nan" : x > 0 ? "inf" : "-inf";
  const exp = Math.floor(Math.log10(Math.abs(Number(x.toPrecision(6)))));
  if (exp < -4 || exp >= 6) {
    const [m, e] = x.toExponential(5).split("e") as [string, string];
    const mant = m.includes(".") ? m.replace(/0+$/, "").replace(/\.$/, "") : m;
    const n = Number(e);
    return `${mant}e${n < 0 ? "-" : "+"}${String(Math.abs(n)).padStart(2, "0")}`;
  }
  const s = x.toFixed(Math.max(0, 5 - exp));
  return s.includes(".") ? s.replace(/0+$/, "").replace(/\.$/, "") : s;
}

/**
 * What print_report_lat prints for a size: with -U every measurement in the order taken, with -H the
 * counted ones sorted (each list under "#, usec", a line "n, µs" each; with -C "#, cycles"), then,
 * after either, the rule and the column header again (its units say usec either way, as perftest's);
 * then the row.
 */
export function latReport(size: number, iters: number, f: PerftestLatency, r: { unsorted?: boolean; histogram?: boolean; output?: string; cycles?: boolean } = {}): string {
  const list = (v: readonly number[]) => `#, ${r.cycles ? "cycles" : "usec"}\n` + v.map((x, i) => `${i + 1}, ${printfG(x)}\n`).join("");
  let out = "";
  if (r.unsorted) out += list(f.unsorted);
  if (r.histogram) out += list(f.sorted.slice(0, f.counted));
  // --output: the lists, then the average alone (perftest's "%lf")
  if (r.output) return `${out}${fig(f.t_avg)}\n`;
  if (r.unsorted || r.histogram) out += `${PERF_RULE}\n${LAT_HEADER}\n`;
  return `${out}${latRow(size, iters, f)}\n`;
}
