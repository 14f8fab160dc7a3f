// What `softroce perf` prints: perftest 4.5's header block, its local/remote address lines, its
// table (MB/sec, MB = 2^20 bytes, or Gb/sec with --report_gbits), and the JSON form.
//
// JSON keys name their unit, one rule for all: a quantity's key ends in its unit (`_bytes`,
// `_usec`, `_ms`, `_MiBps` = 2^20 bytes per second, `_Gbps` = 10^9 bits per second, `_Mpps` =
// 10^6 messages per second); a key without a unit suffix is a count, a name or a flag. Each mode
// carries only what applies to it: the simulated wire (faults, seed, virtual clock, wire counts)
// in --local only, `verified` only with --verify. docs/CLI.md lists the keys.
import { BW_HEADER, BW_HEADER_GBITS, LAT_HEADER, PERF_RULE, perfTitle, perfVerb, readsResponses, bwRow, latRow, type BwFigures, type LatFigures, type PerfResult, type PerfTest } from "../core/perf/index.js";
import { parseGid } from "../core/verbs/index.js";
import type { PerfConnection } from "./perf-exchange.js";


export interface HeaderFacts {
  test: PerfTest;
  connection: string;
  qps: number;
  txDepth: number;
  mtu: number;
  gidIndex: number;
  /** -I */
  inlineSize: number;
  /** -b */
  bidirectional?: boolean;
  /** -A (an atomic test's title names it) */
  atomicType?: string;
  device: string;
  /** "Ethernet" (two processes over UDP) or "simulated" (--local) */
  link: "udp" | "simulated";
}

/** C's %#0Nx: "0x" and lowercase hex, zero-padded to N characters in all. */
function altHex(v: number | bigint, width: number): string {
  return "0x" + v.toString(16).padStart(width - 2, "0");
}

/** perftest's header block (the lines it prints before the address lines). */
export function perfHeader(h: HeaderFacts): string {
  const lines = [
    PERF_RULE,
    `                    ${perfTitle(h.test, h.bidirectional, h.atomicType)}`,
    ` Dual-port       : OFF\t\tDevice         : ${h.device}`,
    ` Number of qps   : ${h.qps}\t\tTransport type : IB`,
    ` Connection type : ${h.connection}\t\tUsing SRQ      : OFF`,
    ` TX depth        : ${h.txDepth}`,
    ` Mtu             : ${h.mtu}[B]`,
    ` Link type       : Ethernet${h.link === "simulated" ? " (softroce: two devices on the simulated wire)" : ""}`,
    ` GID index       : ${h.gidIndex}`,
    ...(readsResponses(h.test) ? [` Outstand reads  : 16`] : [` Max inline data : ${h.inlineSize}[B]`]),
    ` rdma_cm QPs\t : OFF`,
    ` Data ex. method : Ethernet`,
    PERF_RULE,
  ];
  return lines.join("\n") + "\n";
}

/** " GID: 00:00:…:255:255:127:00:00:01" (perftest prints each byte with %02d). */
function gidLine(gid: string): string {
  return ` GID: ${Array.from(parseGid(gid), (b) => String(b).padStart(2, "0")).join(":")}`;
}

/** perftest's local and remote address lines, one pair per QP (RKey and VAddr for RDMA tests). */
export function addressLines(test: PerfTest, c: PerfConnection): string {
  const rdma = perfVerb(test) !== "send";
  const out: string[] = [];
  const side = (label: string, gid: string, q: { qpn: number; psn: number; rkey: number; addr: string }) => {
    let l = ` ${label} address: LID 0000 QPN ${altHex(q.qpn, 6)} PSN ${altHex(q.psn, 6)}`;
    if (readsResponses(test)) l += " OUT 0x10";
    if (rdma) l += ` RKey ${altHex(q.rkey, 8)} VAddr ${altHex(BigInt(q.addr), 16)}`;
    out.push(l, gidLine(gid));
  };
  c.local.qp.forEach((q) => side("local", c.local.gid, q));
  c.remote.qp.forEach((q) => side("remote", c.remote.gid, q));
  out.push(PERF_RULE);
  return out.join("\n") + "\n";
}

/** MB/sec (2^20) to Gb/sec (10^9 bits). */
export function gbps(mibps: number): number {
  return (mibps * (1 << 20) * 8) / 1e9;
}


/** The table's column line for a test. */
export function tableHeader(test: string, gbits: boolean): string {
  if (!test.endsWith("_bw")) return LAT_HEADER;
  return gbits ? BW_HEADER_GBITS : BW_HEADER;
}

/**
 * One row of the table. A bandwidth row's #iterations is every QP's messages (`iterations` per QP ×
 * `qps`), as perftest 4.5's print_report_bw counts them.
 */
export function tableRow(test: string, bytes: number, iterations: number, f: BwFigures | LatFigures, gbits: boolean, qps = 1): string {
  if (!test.endsWith("_bw")) return latRow(bytes, iterations, f as LatFigures);
  const b = f as BwFigures;
  const unit = (x: number) => (gbits ? gbps(x) : x);
  return bwRow(bytes, iterations * qps, unit(b.bw_peak_mbps), unit(b.bw_avg_mbps), b.msg_rate_mpps, gbits);
}

/** The counts line under the table (what softroce adds to perftest's output). */
export function countsLine(r: PerfResult, local: boolean): string {
  const statuses = Object.entries(r.error_statuses).map(([k, v]) => `${k} ${v}`).join(", ");
  const parts = [
    ...(r.verify ? [`verified ${r.verified} of ${r.messages}`] : []),
    `lost ${r.lost}`, `duplicated ${r.duplicated}`, `corrupted ${r.corrupted}`, `errors ${r.errors}${statuses ? ` (${statuses})` : ""}`,
  ];
  const dev = `retransmissions ${r.retransmissions}  rnr_naks ${r.rnr_naks}  seq_naks ${r.seq_naks}  packets ${r.packets_sent}`;
  const wire = local
    ? `  wire: lost ${r.wire.lost} dup ${r.wire.duplicated} corrupt ${r.wire.corrupted} reordered ${r.wire.reordered} packets`
    : "";
  // UC/UD: a lost message is the transport's nature, not an error; but bytes nobody checked are not verified
  const unreliable = r.connection !== "RC" && (r.lost > 0 || r.duplicated > 0 || (r.verify && r.verified < r.messages))
    ? ` ${r.connection} does not retransmit: lost and duplicated messages are counted, not errors` +
      (r.verify && r.verified < r.messages ? `; ${r.messages - r.verified} of ${r.messages} messages not verified, so the run is not ok` : "") + "\n"
    : "";
  return ` ${parts.join("  ")}\n ${dev}${wire}\n${unreliable}`;
}

export function bwJson(f: BwFigures) {
  return {
    bw_peak_MiBps: f.bw_peak_mbps, bw_avg_MiBps: f.bw_avg_mbps, bw_peak_Gbps: gbps(f.bw_peak_mbps), bw_avg_Gbps: gbps(f.bw_avg_mbps),
    msg_rate_Mpps: f.msg_rate_mpps, duration_usec: f.duration_us,
  };
}

function latJson(f: LatFigures) {
  return {
    t_min_usec: f.t_min, t_max_usec: f.t_max, t_typical_usec: f.t_typical, t_avg_usec: f.t_avg, t_stdev_usec: f.t_stdev,
    t_p99_usec: f.p99, t_p99_9_usec: f.p99_9,
  };
}

function figuresJson(test: string, f: BwFigures | LatFigures) {
  return test.endsWith("_bw") ? bwJson(f as BwFigures) : latJson(f as LatFigures);
}

/** A run as JSON: mode "local" (simulated wire) or "udp" (two processes), only what applies. */
export function perfJson(r: PerfResult, mode: "local" | "udp", conn?: PerfConnection): Record<string, unknown> {
  const j: Record<string, unknown> = {
    mode, test: r.test, connection: r.connection, size_bytes: r.bytes, iterations: r.iterations, qps: r.qps, mtu_bytes: r.mtu,
    tx_depth: r.tx_depth, ok: r.ok,
  };
  if (mode === "local") {
    j.clock = r.clock;
    j.wall = figuresJson(r.test, r.wall);
    j.virtual = r.sim ? figuresJson(r.test, r.sim) : null;
    Object.assign(j, figuresJson(r.test, r.clock === "wall" ? r.wall : r.sim!));
  } else {
    Object.assign(j, figuresJson(r.test, r.wall));
  }
  if (r.bidirectional) {
    j.bidirectional = true;
    if (r.each_way?.[0]) j.client_to_server = bwJson(r.each_way[0]);
    if (r.each_way?.[1]) j.server_to_client = bwJson(r.each_way[1]);
  }
  j.messages = r.messages;
  if (r.verify) j.verified = r.verified;
  Object.assign(j, {
    lost: r.lost, duplicated: r.duplicated, corrupted: r.corrupted, errors: r.errors, error_statuses: r.error_statuses,
    retransmissions: r.retransmissions, rnr_naks: r.rnr_naks, seq_naks: r.seq_naks, packets_sent: r.packets_sent, wall_ms: r.wall_ms,
  });
  if (mode === "local") {
    j.seed = r.seed;
    const f = r.faults;
    j.faults = { loss: f.loss, dup: f.dup, reorder: f.reorder, corrupt: f.corrupt, delay_usec: f.delayUs, rate_Gbps: f.rateBps ? f.rateBps / 1e9 : 0 };
    j.wire = { packets_sent: r.wire.sent, packets_delivered: r.wire.delivered, packets_lost: r.wire.lost, packets_duplicated: r.wire.duplicated, packets_corrupted: r.wire.corrupted, packets_reordered: r.wire.reordered };
    j.virtual_usec = r.virtual_us;
  } else {
    j.link = r.link;
    if (conn) j.local = conn.local;
    if (conn) j.remote = conn.remote;
  }
  return j;
}
