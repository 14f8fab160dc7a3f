// perftest's text pieces (Debian perftest 4.5): the rule, the title, the column headers and the
// rows, the one home of each for every perf printer (host/cli/perf-report.ts, perftest-exchange.ts).
import type { BwFigures, LatFigures } from "./stats.js";

/** perftest's rule line (RESULT_LINE): 87 dashes, the one home of it for every perf printer. */
export const PERF_RULE = "-".repeat(87);

/** perftest's testsStr: the verb word that starts each test's title. */
const TITLE_VERBS: Record<string, string> = { send: "Send", write: "RDMA_Write", read: "RDMA_Read", atomic: "Atomic" };

/**
 * The title line's text as perftest's ctx_print_test_info builds it: the verb, the atomic type for
 * atomics, "Bidirectional" with -b, "BW" or "Latency", "Test" ("Atomic FETCH_AND_ADD BW Test").
 */
export function perfTitle(test: string, bidirectional = false, atomicType = "FETCH_AND_ADD"): string {
  const [verb = test, kind] = test.split("_");
  const words = [TITLE_VERBS[verb] ?? test];
  if (verb === "atomic") words.push(atomicType);
  if (bidirectional) words.push("Bidirectional");
  words.push(kind === "lat" ? "Latency" : "BW", "Test");
  return words.join(" ");
}

export const BW_HEADER = " #bytes     #iterations    BW peak[MB/sec]    BW average[MB/sec]   MsgRate[Mpps]";
/** --report_gbits: the same columns in Gb/sec (10^9 bits). */
export const BW_HEADER_GBITS = BW_HEADER.replaceAll("MB/sec", "Gb/sec");
export const LAT_HEADER =
  " #bytes #iterations    t_min[usec]    t_max[usec]  t_typical[usec]    t_avg[usec]    t_stdev[usec]   99% percentile[usec]   99.9% percentile[usec] ";
/** The latency table's columns with -D (RESULT_FMT_LAT_DUR): the average over the sample and transactions per second. */
export const LAT_DUR_HEADER = " #bytes        #iterations       t_avg[usec]    tps average";

function f(v: number, digits: number): string {
  return Number.isFinite(v) ? v.toFixed(digits) : "inf";
}

export function bwLine(bytes: number, iterations: number, b: BwFigures): string {
  return ` ${String(bytes).padEnd(10)} ${String(iterations).padEnd(14)} ${f(b.bw_peak_mbps, 2).padEnd(18)} ${f(b.bw_avg_mbps, 2).padEnd(20)} ${f(b.msg_rate_mpps, 6)}`;
}

export function latLine(bytes: number, iterations: number, l: LatFigures): string {
  return (
    ` ${String(bytes).padEnd(7)}${String(iterations).padEnd(15)}${f(l.t_min, 2).padEnd(15)}${f(l.t_max, 2).padEnd(13)}` +
    `${f(l.t_typical, 2).padEnd(19)}${f(l.t_avg, 2).padEnd(15)}${f(l.t_stdev, 2).padEnd(16)}${f(l.p99, 2).padEnd(23)}${f(l.p99_9, 2)}`
  );
}
