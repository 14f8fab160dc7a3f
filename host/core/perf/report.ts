// perftest's text pieces (Debian perftest 4.5): the rule, the title, the column headers and the
// rows, the one home of each for every perf printer (host/cli/perf-report.ts, perftest-exchange.ts).
import type { BwFigures, LatFigures } from "./stats.js";

/** perftest's rule line (RESULT_LINE): 87 dashes, the one home of it for every perf printer. */
export const PERF_RULE = "-".repeat(87);

/** perftest's testsStr: the verb word that starts each test's title. */
const TITLE_VERBS: Record<string, string> = { send: "Send", write: "RDMA_Write", read: "RDMA_Read", atomic: "Atomic" };

/**
 * The title line's text as perftest's ctx_print_test_info builds it: the verb, the atomic type for
 * atomics, "Bidirectional" with -b, "Post List" with -l, "BW" or "Latency", "Test" ("Atomic
 * FETCH_AND_ADD BW Test").
 */
export function perfTitle(test: string, bidirectional = false, atomicType = "FETCH_AND_ADD", postList = false): string {
  const [verb = test, kind] = test.split("_");
  const words = [TITLE_VERBS[verb] ?? test];
  if (verb === "atomic") words.push(atomicType);
  if (bidirectional) words.push("Bidirectional");
  if (postList && kind !== "lat") words.push("Post List");
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

/** A figure as perftest's %.Nf prints it (%lf: six digits); "inf" where a run was too short to time, "-nan" for a NaN (a -C row's stdev). */
export function fig(v: number, digits = 6): string {
  // as glibc's printf prints x86's NaN (its sign bit set) and an infinity
  return Number.isFinite(v) ? v.toFixed(digits) : Number.isNaN(v) ? "-nan" : "inf";
}

/**
 * The decimals of a bandwidth row's peak and average: below 0.1 Gb/sec on average (--report_gbits)
 * perftest prints six (REPORT_FMT_EXT and REPORT_FMT_EXT_JSON, its inc_accuracy), else two. The one
 * home of the rule for the printed row and the --out_json file.
 */
export function bwDecimals(avg: number, gbits: boolean): 2 | 6 {
  return gbits && avg < 0.1 ? 6 : 2;
}

/**
 * perftest's bandwidth row (REPORT_FMT, its spacing): the size, the messages, the peak and the average
 * (MB/sec of 2^20 bytes, or Gb/sec with --report_gbits) and the message rate in Mpps; six decimals
 * where `bwDecimals` says, with REPORT_FMT_EXT's spacing.
 */
export function bwRow(bytes: number, iterations: number, peak: number, avg: number, rate: number, gbits = false): string {
  const size = `${String(bytes).padEnd(7)}    `;
  if (bwDecimals(avg, gbits) === 6) return ` ${size}${iterations}           ${fig(peak, 6).padEnd(7)}            ${fig(avg, 6).padEnd(7)}            ${fig(rate, 6)}`;
  return ` ${size}${String(iterations).padEnd(10)}       ${fig(peak, 2).padEnd(7)}            ${fig(avg, 2).padEnd(7)}\t\t   ${fig(rate, 6)}`;
}

/** perftest's latency row (REPORT_FMT_LAT, its spacing: the count has no width, ten spaces follow it), µs. */
export function latRow(bytes: number, iterations: number, l: LatFigures): string {
  const c = (x: number) => fig(x, 2).padEnd(7);
  return ` ${String(bytes).padEnd(7)} ${iterations}          ${c(l.t_min)}        ${c(l.t_max)}      ${c(l.t_typical)}  \t       ${c(l.t_avg)}     \t${c(l.t_stdev)}\t\t${c(l.p99)} \t\t${c(l.p99_9)}`;
}
