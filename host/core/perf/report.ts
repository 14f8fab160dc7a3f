// perftest-style text for a PerfResult (Debian perftest 4.5 column headers),
// shared by the CLI and the playground.
import type { BwFigures, LatFigures } from "./stats.js";
import type { PerfResult } from "./run.js";

/** perftest's rule line (RESULT_LINE): 87 dashes, the one home of it for every perf printer. */
export const PERF_RULE = "-".repeat(87);

/** perftest's title line of each test. */
export const PERF_TITLES: Record<string, string> = {
  send_bw: "Send BW Test",
  write_bw: "RDMA_Write BW Test",
  read_bw: "RDMA_Read BW Test",
  atomic_bw: "Atomic BW Test",
  send_lat: "Send Latency Test",
  write_lat: "RDMA_Write Latency Test",
  read_lat: "RDMA_Read Latency Test",
};

/** The title line's test name; with -b perftest puts "Bidirectional" before "BW". */
export function perfTitle(test: string, bidirectional = false): string {
  const t = PERF_TITLES[test] ?? test;
  return bidirectional ? t.replace(/ BW Test$/, " Bidirectional BW Test") : t;
}

export const BW_HEADER = " #bytes     #iterations    BW peak[MB/sec]    BW average[MB/sec]   MsgRate[Mpps]";
export const LAT_HEADER =
  " #bytes #iterations    t_min[usec]    t_max[usec]  t_typical[usec]    t_avg[usec]    t_stdev[usec]   99% percentile[usec]   99.9% percentile[usec] ";

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

/** The whole report: a header block, the figures (headline clock, then the other), and the counts. */
export function formatPerfText(r: PerfResult): string {
  const bw = r.test.endsWith("_bw");
  const faults = r.faults;
  const lines = [
    PERF_RULE,
    `                    ${perfTitle(r.test, r.bidirectional)} (softroce, ${r.link ? "two processes over UDP" : "local: two devices on the simulated wire"})`,
    ` Number of qps   : ${r.qps}\t\tTransport type : IB`,
    ` Connection type : ${r.connection}\t\tUsing SRQ      : OFF`,
    ` TX depth        : ${r.tx_depth}`,
    ` Mtu             : ${r.mtu}[B]`,
    ` Link type       : Ethernet (RoCEv2, ${r.link ? "UDP" : "simulated"})`,
    r.link
      ? ` Link            : ${r.link}`
      : ` Faults          : loss ${faults.loss} dup ${faults.dup} reorder ${faults.reorder} corrupt ${faults.corrupt} delay ${faults.delayUs}us rate ${faults.rateBps ? `${faults.rateBps / 1e9}Gb/s` : "unlimited"} seed ${r.seed}`,
    ` Data ex. method : Ethernet${r.verify ? "\t\tVerify         : ON" : ""}`,
    PERF_RULE,
  ];
  const iters = r.iterations; // per QP, as perftest prints -n
  const row = (x: BwFigures | LatFigures) => (bw ? bwLine(r.bytes, iters, x as BwFigures) : latLine(r.bytes, iters, x as LatFigures));
  lines.push(bw ? BW_HEADER : LAT_HEADER);
  const first = r.clock === "wall" ? r.wall : r.sim!;
  lines.push(row(first));
  lines.push(PERF_RULE);
  const other = r.clock === "wall" ? r.sim : r.wall;
  if (r.clock === "wall") lines.push(" (wall clock)" + (other ? "; on the virtual clock of the simulated wire:" : ""));
  else lines.push(" (virtual clock of the simulated wire, which has faults); on the wall clock:");
  if (other) lines.push(row(other));
  const statuses = Object.entries(r.error_statuses).map(([k, v]) => `${k} ${v}`).join(", ");
  lines.push(
    ` verified ${r.verified}  lost ${r.lost}  duplicated ${r.duplicated}  corrupted ${r.corrupted}  errors ${r.errors}${statuses ? ` (${statuses})` : ""}`,
    ` retransmissions ${r.retransmissions}  rnr_naks ${r.rnr_naks}  seq_naks ${r.seq_naks}  packets ${r.packets_sent}  wire lost ${r.wire.lost} dup ${r.wire.duplicated} corrupt ${r.wire.corrupted} reordered ${r.wire.reordered}`,
    PERF_RULE,
  );
  return lines.join("\n") + "\n";
}
