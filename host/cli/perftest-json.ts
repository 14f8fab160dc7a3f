// perftest's --out_json report (perftest 4.5's write_test_info_to_file and write_*_report_to_file):
// a file written anew at each report row perftest prints, so the last row's stays. Despite its name
// the text is not JSON (unquoted keys, trailing commas); it is perftest's, key for key, and tools
// that read perftest's file read ours.

import { writeFileSync } from "node:fs";
import type { Io } from "./command.js";
import { bwDecimals, fig, type LatFigures } from "../core/perf/index.js";
import type { BwRow, PerftestOutput } from "./perftest-exchange.js";

/** perftest's default file, in the working directory (DEFAULT_JSON_FILE_NAME). */
export const PERFTEST_JSON_FILE = "perftest_out.json";

/** What the file's test_info block says: the header's facts (perftestHeader prints the same). */
export interface PerftestInfo {
  title: string;
  /** -e: the completion vector named */
  eventsVector?: number;
  device: string;
  qps: number;
  connection: string;
  /** --use-srq */
  srq: boolean;
  txDepth?: number;
  postList?: number;
  recvPostList?: number;
  rxDepth?: number;
  cqMod?: number;
  mtu: number;
  /** READ and atomics: the outstanding reads (instead of the inline size) */
  outReads?: number;
  inline: number;
  /** perftest's link_layer_str: the port's (Ethernet), or --force-link's */
  link: "Ethernet" | "IB";
  /** perftest's gid_index when it has one (on an IB link only -x gives it) */
  gidIndex?: number;
  rdmaCm: boolean;
  /** the exchange over rdma_cm (-R, or -z with the QPs perftest's own): Data ex. method rdma_cm */
  cmExchange: boolean;
  /** the file's PCIe_relax_order: ON unless --disable_pcie_relaxed */
  relaxedOrdering: boolean;
  /** -T with -R */
  tos?: number;
}

/** write_test_info_to_file's block. */
export function testInfo(i: PerftestInfo): string {
  const line = (k: string, v: string | number | undefined) => (v === undefined ? "" : `${k}: ${v},\n`);
  return "test_info: {\n" +
    `test: ${i.title.replaceAll(" ", "_")},\n` +
    (i.eventsVector === undefined ? "" : `Test with events: Using_${i.device}_comp${i.eventsVector},\n`) +
    `Dual_port: OFF,\nDevice: "${i.device}",\nNumber_of_qps: ${i.qps},\nTransport_type: IB,\n` +
    // ON where the header says OFF: what Debian's perftest 4.5 writes against rxe (interop-cm compares)
    `Connection_type: ${i.connection},\nUsing_SRQ: ${i.srq ? "ON" : "OFF"},\nPCIe_relax_order: ${i.relaxedOrdering ? "ON" : "OFF"},\nibv_wr_API: OFF,\n` +
    // perftest's own spacing: "TX_depth : n"
    line("TX_depth ", i.txDepth) + line("Post_List", i.postList) + line("Recv_Post_List", i.recvPostList) + line("RX_depth", i.rxDepth) + line("CQ_Moderation", i.cqMod) +
    `Mtu: ${i.mtu},\nLink_type: ${i.link},\n` + line("GID_index", i.gidIndex) +
    (i.outReads === undefined ? `Max_inline_data: ${i.inline},\n` : `Outstand_reads: ${i.outReads},\n`) +
    `rdma_cm_QPs: ${i.rdmaCm ? "ON" : "OFF"},\nData_ex_method: ${i.cmExchange ? "rdma_cm" : "Ethernet"},\n` + line("TOS", i.tos) +
    "},\n";
}

/** A bandwidth row with --output: its message rate (message_rate) or its BW average (bandwidth), as the row prints it and the file writes it. */
export function bwOutputFigure(output: PerftestOutput, r: BwRow): number {
  return output === "message_rate" ? r.rate : r.avg;
}

/**
 * A bandwidth row's results (REPORT_FMT_JSON; six decimals where the row has them, REPORT_FMT_EXT_JSON);
 * with --output bandwidth or message_rate the one figure the row prints.
 */
export function bwResults(size: number, r: BwRow, gbits: boolean, output?: PerftestOutput, cpuUtil?: number): string {
  // --cpu_util's figure follows either (REPORT_EXT_CPU_UTIL_JSON)
  const cpu = cpuUtil === undefined ? "" : cpuUtilJson(cpuUtil);
  if (output) return `${output === "message_rate" ? "msgRate_avg" : "bw_avg"}: ${fig(bwOutputFigure(output, r))},\n${cpu}`;
  const d = bwDecimals(r.avg, gbits);
  return `MsgSize: ${size},\nn_iterations: ${r.iters},\nBW_peak: ${r.peak.toFixed(d)},\nBW_average: ${r.avg.toFixed(d)},\nMsgRate: ${r.rate.toFixed(6)},\n${cpu}`;
}

/** --cpu_util's line of the results (REPORT_EXT_CPU_UTIL_JSON). */
function cpuUtilJson(util: number): string {
  return `CPU_util: ${util.toFixed(2)},\n`;
}

/** A latency row's results (REPORT_FMT_LAT_JSON); with --output latency the average alone. */
export function latResults(size: number, iters: number, f: LatFigures, output?: PerftestOutput): string {
  if (output) return `avg_lat: ${fig(f.t_avg)},\n`;
  return `MsgSize: ${size},\nn_iterations: ${iters},\nt_min: ${f.t_min.toFixed(2)},\nt_max: ${f.t_max.toFixed(2)},\nt_typical: ${f.t_typical.toFixed(2)},\n` +
    `t_avg: ${f.t_avg.toFixed(2)},\nt_stdev: ${f.t_stdev.toFixed(2)},\npercentile_99: ${f.p99.toFixed(2)},\npercentile_99.9: ${f.p99_9.toFixed(2)},\n`;
}

/** A -D latency row's results (REPORT_FMT_LAT_DUR_JSON); with --output latency the average alone (no comma after it: perftest's). */
export function latDurResults(size: number, iters: number, tAvg: number, tps: number, output?: PerftestOutput, cpuUtil?: number): string {
  if (output) return `t_avg: ${fig(tAvg)}\n`;
  return `MsgSize: ${size},\nn_iterations: ${iters},\nt_avg: ${tAvg.toFixed(2)},\ntps_average: ${tps.toFixed(2)},\n${cpuUtil === undefined ? "" : cpuUtilJson(cpuUtil)}`;
}

/** The file: each write replaces it (perftest opens it O_TRUNC, mode 0600); a file it cannot write is said on stderr, the test goes on. */
export class JsonReport {
  constructor(
    private readonly path: string,
    private readonly info: string,
    private readonly io: Io,
  ) {}

  write(results: string): void {
    try {
      writeFileSync(this.path, `{\n${this.info}results: {\n${results}},\n}\n`, { mode: 0o600 });
    } catch {
      this.io.err(`failed to open ${this.path}\n`);
    }
  }
}
