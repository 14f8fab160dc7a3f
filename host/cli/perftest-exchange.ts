// perftest's own out-of-band exchange (Debian 12's perftest 4.5+0.17, version
// string "6.06"), so `softroce perf <test> --perftest` runs against ib_write_bw /
// ib_read_bw in either role: over TCP (port 18515), the version (16 bytes),
// the cycle buffer and cache line size (4-byte big-endian each), the MTU (an
// ibv_mtu digit and a NUL), one 108-byte text key message per QP (-q), every QP's
// again and the first QP's as barriers, the bandwidth report (size, iterations, three doubles, all
// big-endian) and the closing key message and "done". Facts and the capture
// they come from: docs/reference/perftest-exchange.md. With -R the same messages
// travel as SENDs on an rdma_cm connection and the test QP is connected by
// rdma_cm (perftest-rdmacm.ts). Then the test itself on an RC QP connected as
// perftest connects it; the output is perftest's table.
import net from "node:net";
import { wildcardFor } from "../core/net/index.js";
import { openDevice } from "../node/index.js";
import { type AddressHandle, type Device, type CompletionQueue, type QueuePair, type WorkCompletion, type ProtectionDomain, type QpInitAttr, type RecvWr, type SendWr, type SharedReceiveQueue, Access, DEFAULT_MAX_CQE, NUM_COMP_VECTORS, mtuBytes, QpState, QpType, SendFlags, WcOpcode, WcStatus, WrOpcode } from "../core/verbs/index.js";
import { parseGid } from "../core/net/index.js";
import {
  ATOMIC_SIZE, BW_HEADER, BW_HEADER_GBITS, LAT_DUR_HEADER, LAT_HEADER, PERF_RULE, PERF_TESTS, PERFTEST_CACHE_LINE, PERFTEST_CYCLE_BUFFER, bwRow, fig, isBwTest, mtuEnum, perfTitle, perfVerb, perftestMtu, qpRegions, readsResponses, testsFor,
  type AtomicType, type Connection, type PerfOptions, type PerfRegion, type PerfTest,
} from "../core/perf/index.js";
import { UsageError } from "./args.js";
import type { Io } from "./command.js";
import { PerftestCm, formatCmKeyMsg, parseCmKeyMsg, type UdTarget } from "./perftest-rdmacm.js";
import { gbps } from "./perf-report.js";
import { Completions, DurationClock, cpuMhz, sleepUntil } from "./perftest-clock.js";
import { type ReadStall, unstalled } from "./perftest-stall.js";
import { type PerftestRateLimit, type RateFlags, Pace, burstGapMs, rateLimitFrom } from "./perftest-rate.js";
import { perftestLatency, latReport } from "./perftest-lat.js";
import { type PerftestInfo, JsonReport, bwOutputFigure, bwResults, latDurResults, latResults, testInfo } from "./perftest-json.js";
import { DEVICE_NAME } from "./pingpong.js";
import { ReportCounters } from "./perftest-counters.js";
import { toolRecorder, writeCaptureFileQuietly } from "./capture-file.js";

/** The version perftest 4.5+0.17 sends (configure.ac AC_INIT 6.06) and the oldest it accepts. */
export const PERFTEST_VERSION = "6.06";
export const PERFTEST_MIN_VERSION = 5.7;
export const PERFTEST_PORT = 18515;
export const VERSION_LEN = 16;
/** KEY_PRINT_FMT_GID with its NUL */
export const KEY_MSG_LEN = 108;
export const DONE = "done\0";
const CYCLE_BUFFER = PERFTEST_CYCLE_BUFFER;
const CACHE_LINE = PERFTEST_CACHE_LINE;

/** The second half of the buffer is what the peer writes into (perftest: buf + BUFF_SIZE, the cycle buffer). */
const HALF = CYCLE_BUFFER;
/** Receives kept posted on a SEND test's receiver. */
const RX_DEPTH = 512;

/** One side's QP as the key message carries it (struct pingpong_dest). */
export interface PerftestDest {
  lid: number;
  outReads: number;
  qpn: number;
  psn: number;
  rkey: number;
  vaddr: bigint;
  gid: Uint8Array;
  srqn: number;
}

/** KEY_PRINT_FMT_GID: "%04x:%04x:%06x:%06x:%08x:%016llx:" then 16 × "%02x:" then "%08x:", NUL-padded to 108. */
export function formatKeyMsg(d: PerftestDest): Uint8Array {
  const h = (v: number | bigint, w: number) => v.toString(16).padStart(w, "0");
  const text = `${h(d.lid, 4)}:${h(d.outReads, 4)}:${h(d.qpn, 6)}:${h(d.psn, 6)}:${h(d.rkey, 8)}:${h(d.vaddr, 16)}:` +
    [...d.gid].map((b) => `${h(b, 2)}:`).join("") + `${h(d.srqn, 8)}:`;
  const out = new Uint8Array(KEY_MSG_LEN);
  out.set(new TextEncoder().encode(text));
  return out;
}

export class PerftestExchangeError extends Error {
  override name = "PerftestExchangeError";
}

/**
 * The test itself failed (perftest's run_iter, or its warm-up), not the exchange around it: `line` is
 * what perftest's main says after run_iter's own lines, `status` its exit status (runIterFailure).
 */
class PerftestRunIterError extends Error {
  override name = "PerftestRunIterError";
  constructor(
    failure: Error,
    readonly line: string | undefined,
    readonly status: number,
  ) {
    super(failure.message);
  }
}

/**
 * What perftest 4.5's main does when the test fails under it, read off each test's main: the line it
 * says (none where it only sets `error = 17`) and its exit status (17 there, else FAILURE, 1).
 */
export function runIterFailure(o: { test: PerfTest; infinite?: boolean; sizes?: readonly number[] }, client: boolean): { line?: string; status: number } {
  const FAILED_BW = " Failed to complete run_iter_bw function successfully";
  if (o.infinite) {
    if (o.test === "send_bw" && !client) return { line: " Error occurred while running infinitely on server! aborting ...", status: 1 };
    return { line: o.test === "read_bw" ? " Error occurred while running! aborting ..." : " Error occurred while running infinitely! aborting ...", status: 1 };
  }
  switch (o.test) {
    case "send_bw":
    case "send_lat":
    case "read_lat":
    case "atomic_lat":
      return { status: 17 };
    case "read_bw":
      // its -a loop sets 17; one size says the line
      return o.sizes ? { status: 17 } : { line: FAILED_BW, status: 1 };
    case "write_bw":
      return { line: FAILED_BW, status: 1 };
    case "atomic_bw":
      return { line: " Error occurred in run_iter function", status: 1 };
    case "write_lat":
      return { line: "Test exited with Error", status: 1 };
  }
}

/** The test's wait gave up: nothing from the peer for --wait seconds (StallGuard). */
class PerftestStallError extends PerftestExchangeError {
  override name = "PerftestStallError";
}

/** The key message the peer sent; PerftestExchangeError when it is not one. */
export function parseKeyMsg(b: Uint8Array): PerftestDest {
  const n = b.indexOf(0);
  const text = Buffer.from(n < 0 ? b : b.subarray(0, n)).toString("latin1");
  const m = /^([0-9a-f]{4}):([0-9a-f]{4}):([0-9a-f]{6}):([0-9a-f]{6}):([0-9a-f]{8}):([0-9a-f]{16}):((?:[0-9a-f]{2}:){16})([0-9a-f]{8}):$/.exec(text);
  if (!m) throw new PerftestExchangeError(`Failed to parse message from peer: '${text.slice(0, 120)}'`);
  return {
    lid: parseInt(m[1]!, 16), outReads: parseInt(m[2]!, 16), qpn: parseInt(m[3]!, 16), psn: parseInt(m[4]!, 16),
    rkey: parseInt(m[5]!, 16), vaddr: BigInt(`0x${m[6]}`), gid: Uint8Array.from(m[7]!.split(":").slice(0, 16).map((x) => parseInt(x, 16))),
    srqn: parseInt(m[8]!, 16),
  };
}

/** A TCP stream read in exact sizes (perftest's messages are fixed-size and unframed). */
export class ExactReader {
  private chunks: Buffer[] = [];
  private have = 0;
  /** bytes that ever came (a read's progress) */
  private came = 0;
  private waiter: (() => void) | undefined;
  private ended: Error | undefined;

  constructor(
    readonly sock: net.Socket,
    private readonly stall?: ReadStall,
  ) {
    sock.on("data", (d: Buffer) => {
      this.chunks.push(d);
      this.have += d.length;
      this.came += d.length;
      this.waiter?.();
    });
    const end = (e?: Error) => {
      this.ended ??= e ?? new PerftestExchangeError("the peer closed the connection");
      this.waiter?.();
    };
    sock.on("end", () => end());
    sock.on("close", () => end());
    sock.on("error", (e) => end(e));
  }

  async read(n: number): Promise<Uint8Array> {
    const stall = this.stall;
    // a byte that came is progress as much as a packet on the device
    const progress = stall && (() => this.came + stall.progress());
    while (this.have < n) {
      if (this.ended) throw new PerftestExchangeError(`Failed to read from socket (${n} bytes wanted, ${this.have} came): ${this.ended.message}`);
      const woken = new Promise<void>((r) => (this.waiter = r));
      try {
        await unstalled(woken, stall, () => new PerftestExchangeError(
          `Failed to read from socket: nothing from the peer for ${stall!.ms / 1000} s, on the exchange or the device (${n} bytes wanted, ${this.have} came; do both sides run the same test with the same -q?)`,
        ), progress);
      } finally {
        this.waiter = undefined;
      }
    }
    const all = Buffer.concat(this.chunks);
    this.chunks = [all.subarray(n)];
    this.have -= n;
    return new Uint8Array(all.subarray(0, n));
  }

  write(b: Uint8Array): void {
    this.sock.write(b);
  }

  /** perftest's symmetric step: the side that connected writes then reads, the other reads then writes. */
  async swap(mine: Uint8Array, connects: boolean, n = mine.length): Promise<Uint8Array> {
    if (connects) {
      this.write(mine);
      return this.read(n);
    }
    const theirs = await this.read(n);
    this.write(mine);
    return theirs;
  }
}

const be32 = (v: number) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0);
  return b;
};
const be64 = (v: bigint) => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, v));
  return b;
};
const beDouble = (v: number) => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setFloat64(0, v);
  return b;
};
const readBe64 = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset).getBigUint64(0);
const readDouble = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset).getFloat64(0);

/** Steps 1–4: version (checked as perftest checks it), cycle buffer, cache line, MTU; returns the MTU both use. */
export async function exchangeSysData(r: { swap(mine: Uint8Array, connects: boolean): Promise<Uint8Array> }, connects: boolean, mtu: number): Promise<{ version: string; mtu: number }> {
  const mine = new Uint8Array(VERSION_LEN);
  mine.set(new TextEncoder().encode(PERFTEST_VERSION));
  const theirs = await r.swap(mine, connects);
  const z = theirs.indexOf(0);
  const version = Buffer.from(z < 0 ? theirs : theirs.subarray(0, z)).toString("latin1");
  if (!(Number.parseFloat(version) >= PERFTEST_MIN_VERSION)) {
    throw new PerftestExchangeError(`Current implementation is not compatible with versions older than 5.70 (the peer sent '${version}')`);
  }
  await r.swap(be32(CYCLE_BUFFER), connects);
  await r.swap(be32(CACHE_LINE), connects);
  const mtuMsg = new Uint8Array([0x30 + mtu, 0]);
  const peer = await r.swap(mtuMsg, connects);
  const peerMtu = peer[0]! - 0x30;
  return { version, mtu: peerMtu >= 1 && peerMtu <= 5 ? Math.min(peerMtu, mtu) : mtu };
}

export interface PerftestOptions {
  test: PerfTest;
  /** -A: the atomic tests' operation (perftest's default FETCH_AND_ADD) */
  atomicType?: AtomicType;
  /** the server's address: run as the client */
  server?: string;
  tcpPort: number;
  address: string;
  udpPort: number;
  size: number;
  iters: number;
  txDepth: number;
  /** -m in bytes (undefined: the port's active MTU, as perftest without -m) */
  mtu?: number;
  timeoutMs: number;
  /** perftest's -R: the exchange and the test QP's connection over rdma_cm */
  rdmaCm?: boolean;
  /** -z/--comm_rdma_cm: the exchange over rdma_cm (as -R's), the test QPs perftest's own (connected by its key messages, as without -R) */
  cmExchange?: boolean;
  /** perftest's -q (bandwidth tests; default 1) */
  qps?: number;
  /** perftest's --mr_per_qp: each QP's buffer an MR of its own (default: one MR holds them all) */
  mrPerQp?: boolean;
  /** -I was given (perftest disables inline on a device it does not know, as it does for READ and atomics) */
  inlineAsked?: boolean;
  /** -a: the sizes to run, a row each (`size` is then the largest, what the buffers hold, as perftest's MAX_SIZE) */
  sizes?: readonly number[];
  /** -D: run for this many seconds instead of -n messages (perftest's duration mode) */
  durationS?: number;
  /** --report_gbits: bandwidth in Gb/sec (10^9 bits) instead of MB/sec */
  gbits?: boolean;
  /** -u: the QP's local ACK timeout exponent (perftest's default 14; with -R the CM's) */
  qpTimeout?: number;
  /** -c: RC (default), UC (SEND and WRITE tests) or UD (SEND tests); without -R */
  connection?: PerftestConnection;
  /** -e: perftest's events mode (our waits sleep on the CQ's events always): its header line */
  events?: boolean;
  /** -X: the CQ's completion vector, with -e (perftest's eq_num; default 0) */
  compVector?: number;
  /** -U: before a latency row, every measurement in the order taken */
  unsorted?: boolean;
  /** -H: before a latency row, the measurements it counts, sorted */
  histogram?: boolean;
  /** -o: outstanding RDMA READs and atomics per QP (READ and atomic tests; runPerftest sets it to what is used: none, 0 or less, the device's max_qp_rd_atom, as perftest's; 1 on the other tests) */
  outReads?: number;
  /** -C: a latency row's figures (and -U, -H's lists) in CPU cycles, not µs (perftest's --report-cycles; a -D row stays in µs, as perftest's) */
  cycles?: boolean;
  /** -Q: a completion every this many messages of a QP (perftest's CQ moderation; default cqModeration's) */
  cqMod?: number;
  /** -l: a bandwidth test posts its WRs in lists of this many (one ibv_post_send each) */
  postList?: number;
  /** -r: a SEND test's rx depth before force_dependecies (default RX_DEPTH) */
  rxDepth?: number;
  /** -N: no peak (0.00 in the row) */
  noPeak?: boolean;
  /** --perform_warm_up: a tx depth of WRs per QP before a WRITE, READ or atomic bandwidth run */
  warmUp?: boolean;
  /** -b: both sides run the test (WRITE, READ and atomic bandwidth) and print the two summed */
  duplex?: boolean;
  /** -w: the BW average (the row's unit) a bandwidth row must reach, or the run exits 1 (perftest's verifier limit) */
  limitBw?: number;
  /** -y: the message rate (Mpps) a bandwidth row must reach, or the run exits 1 */
  limitMsgRate?: number;
  /** --report-both: with -b, each side's own row after the summed one (perftest's Local and Remote results) */
  reportBoth?: boolean;
  /** --out_json: the file perftest's report goes to as well (--out_json_file, or perftest_out.json) */
  outJson?: string;
  /** --output: each row is this one figure and nothing but the rows is printed (perftest's verbosity) */
  output?: PerftestOutput;
  /** --recv_post_list: a SEND test's receives posted in lists of n, one doorbell each (bandwidth tests) */
  recvPostList?: number;
  /** --disable_pcie_relaxed: the MRs without relaxed ordering (softroce has none to give; the report file says OFF) */
  noRelaxedOrdering?: boolean;
  /** --use-srq: a SEND test's receiving side posts its receives to one SRQ its QPs share */
  srq?: boolean;
  /** --tclass: the GRH traffic class of the test's packets (the IP header's TOS byte; perftest's Ethernet exchange) */
  tclass?: number;
  /** --retry (--retry_count): the RC QPs' retry count (perftest's 7; its --retry_count sets rdma_cm's, which the REQ carries) */
  retryCnt?: number;
  /** -f/--margin: with -D, the seconds before and after the sample (default a quarter of the duration) */
  marginS?: number;
  /** --run_infinitely: a bandwidth test runs until it is stopped, a row for every -D seconds (durationS is set) */
  infinite?: boolean;
  /** --latency_gap: a latency test waits this many µs before each post (its post times, so its latency, include it) */
  latencyGapUs?: number;
  /** --wait_destroy: seconds to wait, saying so, before the test's resources go (and with -R its connections) */
  waitDestroyS?: number;
  /** --cpu_util: with -D, the machine's CPU use over the sample after each row (perftest's CPU_Util[%] column) */
  cpuUtil?: boolean;
  /** -T/--tos: with -R, the type of service rdma_cm's connections are made with (their traffic class) */
  tos?: number;
  /** --pcap: this side's datagrams written to this file when the run ends (softroce's, not perftest's) */
  pcap?: string;
  /** --pkey_index: the test QPs' P_Key index (perftest's own exchange; past the device's P_Keys 0, said so) */
  pkeyIndex?: number;
  /** --reversed: the test's roles swapped (perftest's machine: the side without a server address runs the client's part); the exchange's stay */
  reversed?: boolean;
  /** --rate_limit and its kin: the software limiter a bandwidth test's sender posts under (perftest-rate.ts) */
  rateLimit?: PerftestRateLimit;
  /** -S/--sl: the service level of the test QPs' address vectors (perftest's own exchange; with -R the route's) */
  sl?: number;
  /** -W/--report-counters: the port's counter files to print the change of after each row (perftest-counters.ts) */
  counters?: string;
  /** --source_ip: the address the exchange's TCP connection is made from (perftest's) */
  sourceIp?: string;
  /** --force-link IB: the link taken as InfiniBand's (the header says so; without -x no GID, so no GRH: RTR fails on RoCE, unless -R) */
  linkIb?: boolean;
  /** -x was given (perftest's gid_index; on an Ethernet link perftest picks one anyway) */
  gidIndexGiven?: boolean;
}

/** perftest's --output levels: a bandwidth test's BW average or message rate, a latency test's average. */
export const PERFTEST_OUTPUTS = ["bandwidth", "message_rate", "latency"] as const;
export type PerftestOutput = (typeof PERFTEST_OUTPUTS)[number];

export type PerftestConnection = Connection;

/** The flags of perftest's that only --perftest and -R take, as the command line gives them. */
export type PerftestFlags = Pick<
  PerftestOptions,
  | "events" | "compVector" | "unsorted" | "histogram" | "cycles" | "outReads" | "cqMod" | "postList" | "recvPostList" | "rxDepth" | "noPeak" | "warmUp" | "limitBw" | "limitMsgRate" | "reportBoth"
  | "outJson" | "output" | "noRelaxedOrdering" | "srq" | "tclass" | "tos" | "marginS" | "infinite" | "latencyGapUs" | "waitDestroyS" | "cpuUtil" | "pkeyIndex" | "reversed" | "sl" | "counters"
  | "linkIb" | "gidIndexGiven"
> & RateFlags & { dontXchgVersions?: boolean; dualport?: boolean; hopLimit?: number };

/**
 * print_full_bw_report's rows: each run's row (with -b its own figures plus the peer's report) printed
 * and held against -w and -y, which a run passes when any of its rows reaches them (perftest's
 * is_bw_limit_passed: one row of -a's reaching it is enough). With -b and --report-both (one size
 * only, as perftest's RUN_REGULAR) each side's row follows under its own header.
 */
class BwRows {
  private bwPassed = false;
  private ratePassed = false;

  constructor(
    private readonly o: PerftestOptions,
    private readonly io: Io,
    private readonly json?: JsonReport,
    /** -W: each row is followed by the counters' changes */
    private readonly counters?: ReportCounters,
  ) {}

  /** The row of one run: `mine`, or with -b `mine` and the peer's report summed. */
  print(size: number, mine: BwRow, peer?: BwRow): void {
    const sum = peer ? { ...mine, peak: mine.peak + peer.peak, avg: mine.avg + peer.avg, rate: mine.rate + peer.rate } : mine;
    this.io.out(this.row(size, sum));
    if (sum.avg >= (this.o.limitBw ?? 0)) this.bwPassed = true;
    if (sum.rate >= (this.o.limitMsgRate ?? 0)) this.ratePassed = true;
    if (peer && this.o.reportBoth && !this.o.sizes) {
      const section = (title: string, r: BwRow) => `${RULE}\n ${title} results: \n${RULE}${bwHeader(this.o)}${headerEnd(this.o)}${this.row(size, r)}`;
      this.io.out(section("Local", mine) + section("Remote", peer));
    }
  }

  /** perftest's error for a limit no row reached (the -w one first, as its order). */
  failure(): string | undefined {
    if (this.o.limitBw !== undefined && !this.bwPassed) return "Error: BW result is below bw limit";
    if (this.o.limitMsgRate !== undefined && !this.ratePassed) return "Error: Msg rate  is below msg_rate limit";
    return undefined;
  }

  /** A row as print_full_bw_report prints it (-W: the counters' changes after it), and (--out_json) writes it to the file. */
  private row(size: number, r: BwRow): string {
    const output = this.o.output;
    const cpu = rowCpu(this.o, r.cpuUtil);
    this.json?.write(bwResults(size, r, this.o.gbits === true, output, cpu));
    const line = output ? fig(bwOutputFigure(output, r)) + "\n" : bwRow(size, r.iters, r.peak, r.avg, r.rate, this.o.gbits) + rowEnd(cpu);
    return line + (this.counters?.print() ?? "");
  }
}

/** One test QP and its buffer (2 × half bytes: what it sends, then what the peer writes into). */
export interface QpCtx {
  qp: QueuePair;
  buf: PerfRegion;
  me: PerftestDest;
  /** UD: where this QP's SENDs go (the peer's QP, by an address handle) */
  ud?: { ah: AddressHandle; remoteQpn: number; remoteQkey: number };
}

/**
 * The watch over the test's waits (a completion, a byte in the buffer): one that sees no progress
 * (ReadStall: no packet on the device) for stall.ms fails, as an exchange read does, instead of
 * waiting for a peer that is gone. One interval over the whole test, not unstalled's timer per wait
 * (perftest-stall.ts): a timer per completion would sit on the measured path.
 */
class StallGuard {
  /** when a wait last let the event loop take a turn (ms) */
  private yielded = performance.now();
  private mark: number;
  private readonly timer: ReturnType<typeof setInterval> | undefined;
  private error: PerftestExchangeError | undefined;
  private reject: (e: Error) => void = () => {};
  /** rejects with the stall's error */
  private readonly failed: Promise<never>;

  constructor(private readonly stall: ReadStall | undefined) {
    this.failed = new Promise<never>((_, reject) => (this.reject = reject));
    this.failed.catch(() => {}); // raced by the waits, not awaited alone
    this.mark = stall?.progress() ?? 0;
    this.timer = stall ? setInterval(this.tick, stall.ms) : undefined;
  }

  private readonly tick = (): void => {
    const now = this.stall!.progress();
    if (now !== this.mark) {
      this.mark = now;
      return;
    }
    this.error = new PerftestStallError(`nothing from the peer for ${this.stall!.ms / 1000} s during the test (no packet on the device)`);
    this.stop();
    this.reject(this.error);
  };

  /**
   * The CQ's next completion, or the stall's error. At least every YIELD_MS the wait first lets the
   * event loop take a turn: a UD or UC sender's completions come as its datagrams leave, each wait
   * answered at once, and a loop of such waits would otherwise never let a timer run (-D's clock, this
   * guard's own).
   */
  async next(cq: CompletionQueue): Promise<Awaited<ReturnType<CompletionQueue["next"]>>> {
    const now = performance.now();
    if (now - this.yielded >= YIELD_MS) {
      this.yielded = now;
      await new Promise((r) => setImmediate(r));
    }
    return this.timer === undefined ? cq.next() : Promise.race([cq.next(), this.failed]);
  }

  /** Throws the stall's error once there is one. */
  check(): void {
    if (this.error) throw this.error;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** The longest the test's waits go without letting the event loop take a turn, ms. */
const YIELD_MS = 1;

/** A bandwidth row's figures: MB/s of 2^20 bytes, Mpps, and the messages it counts. */
export interface BwRow {
  peak: number;
  avg: number;
  rate: number;
  iters: number;
  /** --cpu_util: the side's CPU use over its sample, % (a row the side did not measure has none: 0.00, as perftest's) */
  cpuUtil?: number;
}

/**
 * --cpu_util's column is on (perftest's cpu_util_data.enable): with -D only — its force_dependecies
 * turns it on in duration mode, before --run_infinitely makes a run one, so not for those.
 */
export function cpuColumn(o: PerftestOptions): boolean {
  return o.cpuUtil === true && o.durationS !== undefined && !o.infinite;
}

/** What ends a table header (RESULT_EXT, or RESULT_EXT_CPU_UTIL with --cpu_util's column) */
function headerEnd(o: PerftestOptions): string {
  return cpuColumn(o) ? "    CPU_Util[%]\n" : "\n";
}

/**
 * A row's --cpu_util figure, asked once per row for its end and its JSON: none when the column is
 * off, else the side's figure (0 on a row the side did not measure, as perftest's).
 */
function rowCpu(o: PerftestOptions, util: number | undefined): number | undefined {
  return cpuColumn(o) ? util ?? 0 : undefined;
}

/** What ends a row (REPORT_EXT, or REPORT_EXT_CPU_UTIL with rowCpu's figure, %) */
function rowEnd(cpu: number | undefined): string {
  return cpu === undefined ? "\n" : `\t    ${cpu.toFixed(2).padEnd(3)}\n`;
}

/** --report_gbits: a row's bandwidth in Gb/sec (10^9 bits) instead of MB/sec, as perftest's format_factor (the report the client sends is in its unit). */
function inUnit(o: PerftestOptions, f: BwRow): BwRow {
  return o.gbits ? { ...f, peak: gbps(f.peak), avg: gbps(f.avg) } : f;
}

const bwHeader = (o: PerftestOptions) => (o.gbits ? BW_HEADER_GBITS : BW_HEADER);

/** A -D run's row: the messages within the sample over its time; no peak, as perftest's (noPeak). */
function durationBw(size: number, clock: DurationClock): BwRow {
  return { ...sampleBw(size, clock.count, clock.seconds), ...(clock.sampleCpu ? { cpuUtil: clock.cpuUtil } : {}) };
}

/**
 * `count` messages of `size` bytes over `seconds`, no peak; `factor` 2 for a --run_infinitely period of
 * WRITE, READ or atomics with -b, whose BW and rate perftest doubles (its run_inf_bi_factor).
 */
function sampleBw(size: number, count: number, seconds: number, factor = 1): BwRow {
  return { peak: 0, avg: (factor * size * count) / seconds / 2 ** 20, rate: (factor * count) / seconds / 1e6, iters: count };
}

interface Ctx {
  dev: Device;
  pd: ProtectionDomain;
  cq: CompletionQueue;
  /** --use-srq on a side that receives: the receives of every QP, each tagged with its QP's slot (perftest's wr_id) */
  srq?: SharedReceiveQueue;
  /** the test's waits */
  guard: StallGuard;
  qps: QpCtx[];
  /** QP number -> index in qps */
  index: Map<number, number>;
  /** bytes of each half of a QP's buffer: the first is what it sends, the second what the peer writes into */
  half: number;
  /** UD QPs: each receive starts with the 40-byte GRH */
  ud: boolean;
}

const isLat = (t: PerfTest) => !isBwTest(t);

function gidText(g: Uint8Array): string {
  return [...g].map((b) => b.toString().padStart(2, "0")).join(":");
}

/**
 * ctx_print_pingpong_data: OUT for READ, RKey and VAddr for READ and WRITE, the basic line for SEND and
 * atomics (perftest's switch on the verb); with -R and -z the verb it looks at is its comm struct's, SEND.
 */
function addressLine(which: string, d: PerftestDest, t: PerfTest, cmExchange: boolean, gid: boolean): string {
  const h = (v: number | bigint, w: number) => v.toString(16).padStart(w, "0");
  const read = perfVerb(t) === "read";
  // over rdma_cm perftest prints by its exchange's parameters (a SEND connection's): no RKey, VAddr or OUT
  const rdma = !cmExchange && (read || perfVerb(t) === "write");
  const extra = rdma ? `${read ? ` OUT 0x${h(d.outReads, 2)}` : ""} RKey 0x${h(d.rkey, 6)} VAddr 0x${h(d.vaddr, 14)}` : "";
  return ` ${which} address: LID ${h(d.lid, 4)} QPN 0x${h(d.qpn, 4)} PSN 0x${h(d.psn, 6)}${extra}\n${gid ? ` GID: ${gidText(d.gid)}\n` : ""}`;
}

const RULE = PERF_RULE + "\n";

/** perftest's use_rdma_cm: the exchange over an rdma_cm connection (-R, or -z with perftest's own QPs). */
const cmExchanged = (o: PerftestOptions): boolean => o.rdmaCm === true || o.cmExchange === true;

/**
 * perftest's gid_index > -1: on an Ethernet link it picks one when -x is not given; with --force-link IB
 * only -x gives one. Without it the header has no GID index line, the address lines no GID line.
 */
const hasGid = (o: PerftestOptions): boolean => !o.linkIb || o.gidIndexGiven === true;

/** perftest's default CQ moderation (DEF_CQ_MOD), and the message size above which it is off (MSG_SIZE_CQ_MOD_LIMIT: 1, DISABLED_CQ_MOD_VALUE). */
const CQ_MOD = 100;
const CQ_MOD_SIZE_LIMIT = 8192;

/** Above 8192-byte messages perftest turns CQ moderation off (but not on UD, with -a, whose sizes change under one setting, or with -e). */
const largeForCqMod = (o: PerftestOptions) => o.size > CQ_MOD_SIZE_LIMIT && o.connection !== "UD" && !o.sizes && !o.events;

/**
 * The CQ moderation perftest 4.5 runs with and prints (force_dependecies): -Q, or 100 (1 for a large
 * message), at most the tx depth; with -l and no -Q the post list's size.
 */
function cqModeration(o: PerftestOptions): number {
  if ((o.postList ?? 1) > 1 && o.cqMod === undefined) return o.postList!;
  return Math.min(o.cqMod ?? (largeForCqMod(o) ? 1 : CQ_MOD), o.txDepth);
}

/** What perftest's option checks print on stdout before anything else (force_dependecies' notes on -Q and -l). */
function optionNotes(o: PerftestOptions): string {
  let out = "";
  if (largeForCqMod(o) && (o.cqMod ?? 1) > 1) out += RULE + "Warning: Large message requested and CQ moderation enabled\nWarning: It can lead to inaccurate results\n";
  if ((o.postList ?? 1) > 1 && o.cqMod === undefined && !isLat(o.test)) out += RULE + "Post List requested - CQ moderation will be the size of the post list\n";
  return out;
}

/** perftest's header (ctx_print_test_info) as a side prints it before the address lines. */
export function perftestHeader(o: PerftestOptions, client: boolean, mtu: number): string {
  const i = perftestInfo(o, client, mtu);
  return RULE + `                    ${i.title}\n` +
    (i.eventsVector === undefined ? "" : ` Test with events. Using ${i.device}_comp${i.eventsVector}\n`) +
    ` Dual-port       : OFF\t\tDevice         : ${i.device}\n` +
    ` Number of qps   : ${i.qps}\t\tTransport type : IB\n` +
    ` Connection type : ${i.connection}\t\tUsing SRQ      : ${i.srq ? "ON" : "OFF"}\n` +
    " PCIe relax order: OFF\n" +
    " ibv_wr* API     : OFF\n" +
    (i.txDepth === undefined ? "" : ` TX depth        : ${i.txDepth}\n`) +
    (i.postList === undefined ? "" : ` Post List       : ${i.postList}\n`) +
    (i.recvPostList === undefined ? "" : ` Recv Post List  : ${i.recvPostList}\n`) +
    (i.rxDepth === undefined ? "" : ` RX depth        : ${i.rxDepth}\n`) +
    (i.cqMod === undefined ? "" : ` CQ Moderation   : ${i.cqMod}\n`) +
    ` Mtu             : ${i.mtu}[B]\n` +
    ` Link type       : ${i.link}\n` +
    (i.gidIndex === undefined ? "" : ` GID index       : ${i.gidIndex}\n`) +
    (i.outReads === undefined ? ` Max inline data : ${i.inline}[B]\n` : ` Outstand reads  : ${i.outReads}\n`) +
    ` rdma_cm QPs\t : ${i.rdmaCm ? "ON" : "OFF"}\n` +
    ` Data ex. method : ${i.cmExchange ? "rdma_cm" : "Ethernet"}${i.tos === undefined ? "" : ` \tTOS    : ${i.tos}`}\n` +
    (o.rdmaCm && !client ? RULE + " Waiting for client rdma_cm QP to connect\n Please run the same command with the IB/RoCE interface IP\n" : "") + RULE;
}

/** What perftest's header says of a run (print_header), which its --out_json file says too. */
function perftestInfo(o: PerftestOptions, client: boolean, mtu: number): PerftestInfo {
  const list = o.postList ?? 1;
  return {
    title: perfTitle(o.test, o.duplex, o.atomicType, list > 1),
    eventsVector: o.events ? o.compVector ?? 0 : undefined,
    device: DEVICE_NAME,
    qps: o.qps ?? 1,
    connection: o.connection ?? "RC",
    srq: o.srq === true,
    txDepth: client || o.duplex ? o.txDepth : undefined,
    postList: list > 1 ? list : undefined,
    recvPostList: (o.recvPostList ?? 1) > 1 ? o.recvPostList : undefined,
    rxDepth: isSend(o.test) && (!client || o.duplex) ? rxDepth(o) : undefined,
    cqMod: isLat(o.test) ? undefined : cqModeration(o),
    mtu,
    outReads: readsResponses(o.test) ? o.outReads : undefined,
    // a device perftest does not know gets no inline data (ctx_set_max_inline)
    inline: 0,
    link: o.linkIb ? "IB" : "Ethernet",
    gidIndex: hasGid(o) ? 0 : undefined,
    rdmaCm: o.rdmaCm === true,
    cmExchange: cmExchanged(o),
    relaxedOrdering: o.noRelaxedOrdering !== true,
    ...(o.rdmaCm && o.tos !== undefined ? { tos: o.tos } : {}),
  };
}

/**
 * perftest's -D latency figures (print_report_lat_duration): the sample's time over its operations
 * (halved for SEND and WRITE, rtt_factor 2), and operations per second.
 */
function latDurFigures(d: DurationClock, rttFactor: number): { iters: number; tAvg: number; tps: number } {
  return { iters: d.count, tAvg: (d.seconds * 1e6) / rttFactor / Math.max(d.count, 1), tps: d.count / d.seconds };
}

/** Their row (REPORT_FMT_LAT_DUR), without its end (rowEnd). */
function latDurRow(size: number, f: { iters: number; tAvg: number; tps: number }): string {
  return ` ${String(size).padEnd(7)}       ${f.iters}            ${f.tAvg.toFixed(2).padEnd(7)}        ${f.tps.toFixed(2).padEnd(7)}`;
}

/** The largest message perftest's -s takes (UINT_MAX / 2). */
const REPORT_MAX_SIZE = 0x7fffffff;
/** The most messages a report may count: perftest's MAX_ITER per QP × MAX_QP_NUM. */
const REPORT_MAX_ITERS = 100_000_000 * 16384;

/**
 * The client's report (step 7), which the server prints: PerftestExchangeError when it is none —
 * a size or count no perftest run has, or a figure that is not a finite number ≥ 0, as when the two
 * sides' exchanges are out of step (another message where the report belongs).
 */
export function checkReport(r: { size: number; iters: number; peak: number; avg: number; rate: number }): void {
  const figure = (x: number) => Number.isFinite(x) && x >= 0;
  if (!(r.size >= 1 && r.size <= REPORT_MAX_SIZE && r.iters >= 1 && r.iters <= REPORT_MAX_ITERS && figure(r.peak) && figure(r.avg) && figure(r.rate))) {
    throw new PerftestExchangeError(`the peer's report is not one (size ${r.size}, iterations ${r.iters}): do both sides run the same test with the same -q?`);
  }
}



const isSend = (t: PerfTest) => perfVerb(t) === "send";

/** The most receives perftest posts on a UC or UD QP (UC_MAX_RX). */
const UC_MAX_RX = 16000;

/**
 * A SEND test's rx depth (force_dependecies), the receives each QP posts before the test: -r or
 * RX_DEPTH, at most -n; on UC and UD -n up to UC_MAX_RX where it is RX_DEPTH; -D keeps it; an odd one is
 * made even (perftest's "WA for a bug when rx_depth is odd in SEND"; not with -a).
 */
function rxDepth(o: PerftestOptions): number {
  let rx = o.rxDepth ?? RX_DEPTH;
  if (!o.durationS) {
    rx = Math.min(rx, o.iters);
    if ((o.connection === "UC" || o.connection === "UD") && rx === RX_DEPTH) rx = Math.min(o.iters, UC_MAX_RX);
  }
  return rx % 2 === 1 && !o.sizes ? rx + 1 : rx;
}

/** Each QP's receive queue: the rx depth on a SEND test, else one (perftest's DEF_RX_RDMA). */
const recvDepth = (o: PerftestOptions) => (isSend(o.test) ? rxDepth(o) : 1);

/** The CQ entries a side needs: every QP's sends in flight, and on a SEND test its receives (perftest's CQs hold as many). */
function cqDepth(o: PerftestOptions): number {
  return (o.qps ?? 1) * (o.txDepth + (isSend(o.test) ? rxDepth(o) : 0)) + 16;
}

/** The device a side opens: its MR arena holds every QP's buffer; QP1 and the test QPs fit. */
function deviceSizes(o: PerftestOptions): { mrArenaBytes: number; maxQp: number; ringArenaBytes: number } {
  const qps = o.qps ?? 1;
  const perQp = 2 * Math.max(HALF, o.size);
  return {
    mrArenaBytes: Math.max(16 << 20, Math.ceil((qps * (perQp + 4096) + (1 << 20)) / (1 << 20)) * (1 << 20)),
    maxQp: Math.max(256, qps + 1),
    ringArenaBytes: (16 << 20) + qps * (o.txDepth + recvDepth(o)) * 256 + cqDepth(o) * 128,
  };
}

/**
 * ctx_init: the device's CQ, each QP's buffer (in one MR, or with mrPerQp one MR each) and the QPs
 * on them by `makeQp` (ibv_create_qp, or rdma_create_qp on a CM ID).
 */
async function setup(o: PerftestOptions, client: boolean, dev: Device, makeQp: (pd: ProtectionDomain, init: QpInitAttr) => Promise<QueuePair>): Promise<Ctx> {
  const n = o.qps ?? 1;
  const pd = dev.allocPd();
  const cq = dev.createCq(cqDepth(o), { compVector: o.compVector ?? 0 });
  // --use-srq: the side that receives (a latency test's both, a bandwidth test's server, -b's both), its rx depth the SRQ's
  const srq = receivesOnSrq(o, client) ? pd.createSrq({ maxWr: rxDepth(o), maxSge: 1 }) : undefined;
  const half = Math.max(HALF, o.size);
  const access = Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ | Access.REMOTE_ATOMIC;
  // UD: a cache line more, the receive starting 40 bytes before one (its GRH) as perftest's
  const { regions } = qpRegions(pd, n, 2 * half + (o.connection === "UD" ? CACHE_LINE : 0), o.mrPerQp ?? false, access);
  const gid = parseGid(dev.queryGid(0));
  const qps: QpCtx[] = [];
  const index = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const buf = regions[i]!;
    const qpType = { RC: QpType.RC, UC: QpType.UC, UD: QpType.UD }[o.connection ?? "RC"];
    const cap = { maxSendWr: o.txDepth, maxRecvWr: srq ? 0 : recvDepth(o), maxSendSge: 1, maxRecvSge: srq ? 0 : 1 };
    const qp = await makeQp(pd, { qpType, sendCq: cq, recvCq: cq, ...(srq ? { srq } : {}), cap });
    const psn = o.rdmaCm ? qp.query().attr.sqPsn : globalThis.crypto.getRandomValues(new Uint32Array(1))[0]! & 0xffffff;
    const me: PerftestDest = {
      lid: 0, outReads: o.outReads ?? 1, qpn: qp.qpNum, psn, rkey: buf.rkey, vaddr: buf.addr + BigInt(half), gid, srqn: 0,
    };
    index.set(qp.qpNum, i);
    qps.push({ qp, buf, me });
  }
  return { dev, pd, cq, ...(srq ? { srq } : {}), qps, index, half, ud: o.connection === "UD", guard: new StallGuard(undefined) };
}

/** perftest's Q_Key of its UD QPs (DEFF_QKEY). */
const PERFTEST_QKEY = 0x11111111;
/** The bytes of a UD receive's GRH (perftest's UD_ADDITION). */
const UD_ADDITION = 40;

/**
 * The QP perftest's own exchange connects by hand (ctx_modify_qp_to_init): INIT at the P_Key index
 * (--pkey_index) with every remote access (RC), WRITE's (UC), or perftest's Q_Key (UD).
 */
export const plainQp = (pkeyIndex: number) => async (pd: ProtectionDomain, init: QpInitAttr): Promise<QueuePair> => {
  const qp = pd.createQp(init);
  if (init.qpType === QpType.UD) qp.modify({ qpState: QpState.INIT, pkeyIndex, portNum: 1, qkey: PERFTEST_QKEY });
  else {
    const access = init.qpType === QpType.UC ? Access.REMOTE_WRITE | Access.LOCAL_WRITE : Access.REMOTE_WRITE | Access.LOCAL_WRITE | Access.REMOTE_READ | Access.REMOTE_ATOMIC;
    qp.modify({ qpState: QpState.INIT, pkeyIndex, portNum: 1, qpAccessFlags: access });
  }
  return qp;
};

/**
 * ctx_connect: RTR towards the peer's QP (hop limit 0xff and -S's service level, as perftest's), RTS with
 * our PSN; UC without the reads, timeouts and retries; UD by an address handle to the peer's GID, its QPN
 * and perftest's Q_Key.
 */
export function connectQp(c: QpCtx, peer: PerftestDest, mtu: number, o: PerftestOptions, pd: ProtectionDomain, maxReads: number): void {
  const ahAttr = { grh: { dgid: peer.gid, sgidIndex: 0, hopLimit: 0xff, trafficClass: o.tclass ?? 0 }, sl: o.sl ?? 0, isGlobal: true, portNum: 1, destPort: o.udpPort === 4791 ? undefined : o.udpPort };
  const conn = o.connection ?? "RC";
  if (conn === "UD") {
    c.qp.modify({ qpState: QpState.RTR });
    c.qp.modify({ qpState: QpState.RTS, sqPsn: c.me.psn });
    c.ud = { ah: pd.createAh(ahAttr), remoteQpn: peer.qpn, remoteQkey: PERFTEST_QKEY };
    return;
  }
  if (conn === "UC") {
    c.qp.modify({ qpState: QpState.RTR, pathMtu: mtu, destQpNum: peer.qpn, rqPsn: peer.psn, ahAttr });
    c.qp.modify({ qpState: QpState.RTS, sqPsn: c.me.psn });
    return;
  }
  // as perftest's: the reads this side answers are its own -o (max_dest_rd_atomic at RTR), the reads it
  // issues the peer's (max_rd_atomic at RTS; a peer's past this device's limit is held to it)
  c.qp.modify({ qpState: QpState.RTR, pathMtu: mtu, destQpNum: peer.qpn, rqPsn: peer.psn, maxDestRdAtomic: c.me.outReads, minRnrTimer: 12, ahAttr });
  c.qp.modify({ qpState: QpState.RTS, sqPsn: c.me.psn, timeout: o.qpTimeout ?? 14, retryCnt: o.retryCnt ?? 7, rnrRetry: 7, maxRdAtomic: Math.min(peer.outReads || 1, maxReads) });
}

type FailedWc = { status: number; wrId: bigint; vendorErr: number };
const failedStatus = (wc: FailedWc): string => ` Failed status ${wc.status}: wr_id ${wc.wrId} syndrom 0x${wc.vendorErr.toString(16)}`;

/**
 * perftest's NOTIFY_COMP_ERROR_SEND: a send queue's completion failed ("at client" on either side, as
 * perftest's). perftest polls its send and receive CQs apart; a test here has one CQ, whose failed
 * completion says nothing of its queue (no opcode, as rxe's), so a side that both sends and receives
 * (send_lat, -b) reports it as its send's — the first to fail when the peer is gone.
 */
function wcFailed(wc: FailedWc, posted: number, done: number): never {
  throw new PerftestExchangeError(` Completion with error at client\n${failedStatus(wc)}\nscnt=${posted}, ccnt=${done}`);
}

/** perftest's NOTIFY_COMP_ERROR_RECV: a receive failed (send_bw's server, which only receives). */
function wcRecvFailed(wc: FailedWc, received: number): never {
  throw new PerftestExchangeError(` Completion with error at server\n${failedStatus(wc)}\n rcnt=${received}`);
}

/**
 * perftest's BW peak (print_report_bw): the shortest time per message over any run of messages i..j,
 * from the post of i to the completion of j; MB/s of 2^20 bytes. As perftest's, a run starts at a
 * post (every `postList`-th message: a list is posted at once) and ends at a completion it saw (every
 * `cqMod`-th message, and the last). Exact up to 10,000 starts, then over every k-th (perftest's own
 * double loop is quadratic in -n).
 */
export function perftestPeak(size: number, posted: Float64Array, completed: Float64Array, cqMod = 1, postList = 1): number {
  const n = Math.min(posted.length, completed.length);
  const step = postList * Math.max(1, Math.ceil(n / postList / 10_000));
  let best = Infinity;
  const consider = (i: number, j: number) => {
    const per = (completed[j]! - posted[i]!) / (j - i + 1);
    if (per > 0 && per < best) best = per;
  };
  for (let i = 0; i < n; i += step) {
    for (let j = Math.ceil((i + 1) / cqMod) * cqMod - 1; j < n; j += cqMod) consider(i, j);
    if (n % cqMod) consider(i, n - 1);
  }
  return best === Infinity ? 0 : size / (best / 1000) / 2 ** 20;
}

/** The opcode of a test's work requests: its verb's, an atomic test's by -A. */
function testOpcode(o: PerftestOptions): WrOpcode {
  switch (perfVerb(o.test)) {
    case "send": return WrOpcode.SEND;
    case "write": return WrOpcode.RDMA_WRITE;
    case "read": return WrOpcode.RDMA_READ;
    case "atomic": return o.atomicType === "CMP_AND_SWAP" ? WrOpcode.ATOMIC_CMP_AND_SWP : WrOpcode.ATOMIC_FETCH_AND_ADD;
  }
}

/**
 * An atomic's operands as perftest sets them (ctx_set_send_reg_wqes): FETCH_AND_ADD adds 1
 * (ATOMIC_ADD_VALUE), CMP_AND_SWAP compares with 0 and swaps in 0 (ATOMIC_SWAP_VALUE), on the 8
 * bytes at the start of the peer's buffer.
 */
function atomicOperands(o: PerftestOptions, peer: PerftestDest): { remoteAddr: bigint; rkey: number; compareAdd: bigint; swap?: bigint } {
  return o.atomicType === "CMP_AND_SWAP"
    ? { remoteAddr: peer.vaddr, rkey: peer.rkey, compareAdd: 0n, swap: 0n }
    : { remoteAddr: peer.vaddr, rkey: peer.rkey, compareAdd: 1n };
}

/** perftest computes no peak past 20,000 messages per QP (its noPeak): the row's peak is 0.00 then, as with -D. */
const PEAK_MAX_ITERS = 20_000;

/** Per QP: the test's work request for its message k (signaled or not). */
function testWrs(c: Ctx, peers: PerftestDest[], o: PerftestOptions): ((k: number, signaled: boolean) => SendWr)[] {
  const opcode = testOpcode(o);
  const verb = perfVerb(o.test);
  return c.qps.map((q, i) => {
    const sgList = [q.buf.sge(0, o.size)];
    const peer = peers[i]!;
    const rdma = { remoteAddr: peer.vaddr, rkey: peer.rkey };
    const atomic = atomicOperands(o, peer);
    return (k, signaled) => {
      const base = { wrId: BigInt(k), opcode, sendFlags: signaled ? SendFlags.SIGNALED : 0, sgList };
      return verb === "atomic" ? { ...base, atomic } : verb === "send" ? (q.ud ? { ...base, ud: q.ud } : base) : { ...base, rdma };
    };
  });
}

/**
 * --perform_warm_up (perftest's perform_warm_up, before a WRITE, READ or atomic bandwidth run): on each
 * QP in turn a tx depth of the test's WRs (in lists of -l), every one signaled, and all their
 * completions waited for; nothing of it is counted.
 */
async function warmUp(c: Ctx, peers: PerftestDest[], o: PerftestOptions): Promise<void> {
  const list = o.postList ?? 1;
  const session = list === 1 ? o.txDepth : list;
  for (const [i, wr] of testWrs(c, peers, o).entries()) {
    const qp = c.qps[i]!.qp;
    for (let k = 0; k < session; k += list) qp.postSend(Array.from({ length: list }, (_, j) => wr(k + j, true)));
    for (let done = 0; done < session; done++) {
      const wc = await c.guard.next(c.cq);
      if (wc.status !== WcStatus.SUCCESS) throw new PerftestExchangeError(`Problems with warm up\n Failed status ${wc.status}: wr_id ${wc.wrId}`);
    }
  }
}

/**
 * The client's bandwidth test (perftest's run_iter_bw): on each QP `iters` RDMA WRITEs, READs, SENDs or
 * atomics of `size` bytes (with -D: until the clock ends), at most tx depth in flight per QP, the QPs
 * in turn; a QP's WRs are posted as a list (one doorbell; with -l lists of that many, whole lists only)
 * and completions taken as many as are there. As perftest's CQ moderation, only every cq_mod-th WR of a
 * QP asks for a completion (and its last), which completes it and the unsignaled ones before it.
 * The figures as print_report_bw's: every QP's messages from the first post to the last completion,
 * the peak over any run of them; with -D what completed within the sample.
 *
 * `bi`: send_bw -b (perftest's run_iter_bi): the peer's SENDs arrive on the same CQ meanwhile, each
 * receive reposted while fewer than -n are posted, and the loop runs until -n have come on each QP too;
 * a server sends nothing before its first receive (so it cannot start before the client does). With
 * -D the receives are reposted to the end, the sample counts both the sends and the receives completed
 * in it, and a server starts its clock at its first receive, as run_iter_bi's.
 */
async function runBw(c: Ctx, peers: PerftestDest[], o: PerftestOptions, clock?: DurationClock, bi?: { client: boolean }): Promise<BwRow> {
  const n = c.qps.length;
  const limit = clock ? Infinity : o.iters;
  const total = clock ? 0 : o.iters * n;
  const cqMod = cqModeration(o);
  const list = o.postList ?? 1;
  const peaks = !clock && !o.noPeak && o.iters <= PEAK_MAX_ITERS;
  const tposted = new Float64Array(peaks ? total : 0);
  const tcompleted = new Float64Array(peaks ? total : 0);
  // per QP: the work request of its message k
  const wrs = testWrs(c, peers, o);
  const wrOf = wrs.map((wr) => (k: number) => wr(k, (k + 1) % cqMod === 0 || k === limit - 1));
  const posted = new Array<number>(n).fill(0);
  const done = new Array<number>(n).fill(0);
  /** per QP: the messages up to its last signaled WR posted (what its completions will account for) */
  const covered = new Array<number>(n).fill(0);
  let postedAll = 0;
  let coveredAll = 0;
  let doneAll = 0;
  let started = !bi || bi.client;
  let rcvd = 0;
  const receives = bi ? new Receives(c, o, clock !== undefined) : undefined;
  let start = 0;
  let lastDone = 0;
  // --rate_limit: the posts go in bursts, one a gap (perftest's SW limiter)
  const pace = o.rateLimit ? new Pace(o.rateLimit.burst, burstGapMs(o.rateLimit, o.size)) : undefined;
  const post = (i: number) => {
    if (clock?.done || !started) return;
    let k = Math.min(limit - posted[i]!, o.txDepth - (posted[i]! - done[i]!));
    if (list > 1) k -= k % list;
    if (k > 0 && pace) k = pace.take(k, list);
    if (k <= 0) return;
    const wrs: SendWr[] = [];
    const now = performance.now();
    for (let j = 0; j < k; j++) {
      const wr = wrOf[i]!(posted[i]! + j);
      wrs.push(wr);
      if (wr.sendFlags) {
        coveredAll += posted[i]! + j + 1 - covered[i]!;
        covered[i] = posted[i]! + j + 1;
      }
      if (peaks) tposted[postedAll] = now;
      postedAll++;
    }
    const qp = c.qps[i]!.qp;
    if (list > 1) for (let j = 0; j < k; j += list) qp.postSend(wrs.slice(j, j + list));
    else qp.postSend(wrs);
    posted[i]! += k;
  };
  // the QPs a batch of completions freed room on, each once
  const freed: number[] = [];
  const isFreed = new Uint8Array(n);
  const waits = new Completions(() => c.guard.next(c.cq), clock);
  start = performance.now();
  if (started) clock?.start();
  for (let i = 0; i < n; i++) post(i);
  // with -D: until the clock ends, then the signaled messages still in flight
  while (clock ? !clock.done || doneAll < coveredAll : doneAll < total || (bi !== undefined && rcvd < total)) {
    // once the clock has ended, a wait for what is still in flight; with a post held back by the
    // rate limiter, until its next burst (then each QP's posts, from the first, as perftest's loop)
    const first = await waits.next(!clock?.done, pace?.next());
    if (!first) {
      if (pace) for (let q = 0; q < n; q++) post(q);
      continue;
    }
    const now = performance.now();
    for (const wc of [first, ...c.cq.poll(64)]) {
      if (wc.status !== WcStatus.SUCCESS) wcFailed(wc, postedAll, doneAll);
      if (receives && wc.opcode === WcOpcode.RECV) {
        rcvd++;
        receives.completed(recvSlot(c, wc));
        if (!started) {
          started = true;
          start = performance.now();
          clock?.start();
          for (let q = 0; q < n; q++) post(q);
        }
        clock?.tick();
        continue;
      }
      const i = c.index.get(wc.qpNum)!;
      lastDone = now;
      // a completion stands for its WR and the unsignaled ones before it
      const upTo = Number(wc.wrId) + 1;
      const newly = upTo - done[i]!;
      done[i] = upTo;
      if (peaks) tcompleted.fill(now, doneAll, doneAll + newly);
      doneAll += newly;
      clock?.tick(newly);
      if (!isFreed[i]) {
        isFreed[i] = 1;
        freed.push(i);
      }
    }
    for (const i of freed) {
      isFreed[i] = 0;
      post(i);
    }
    freed.length = 0;
  }
  if (clock) return durationBw(o.size, clock);
  // from the first post to the last send's completion (with -b the receives may go on after it)
  const secs = Math.max((lastDone - start) / 1000, 1e-9);
  const avg = (o.size * total) / secs / 2 ** 20;
  return { peak: peaks ? Math.max(perftestPeak(o.size, tposted, tcompleted, cqMod, list), avg) : 0, avg, rate: total / secs / 1e6, iters: total };
}

/** `n` receives of QP slot `i` in one list (one doorbell), as perftest's --recv_post_list chains them; to the SRQ with --use-srq. */
function postRecvs(c: Ctx, i: number, size: number, n: number): void {
  const wrs = n === 1 ? recvWr(c, i, size) : Array.from({ length: n }, () => recvWr(c, i, size));
  if (c.srq) c.srq.postRecv(wrs);
  else c.qps[i]!.qp.postRecv(wrs);
}

/** A receive into the half of slot `i`'s buffer the peer's messages land in, its wr_id the slot (perftest's: an SRQ's completion names the slot it was posted for, not its QP). */
function recvWr(c: Ctx, i: number, size: number): RecvWr {
  const buf = c.qps[i]!.buf;
  // UD: the GRH in the 40 bytes before the second half's first cache line, the message from it (as perftest's)
  const sge = c.ud ? buf.sge(c.half + CACHE_LINE - UD_ADDITION, size + UD_ADDITION) : buf.sge(c.half, Math.max(size, 1));
  return { wrId: BigInt(i), sgList: [sge] };
}

/** The slot a receive's completion counts for: its QP's, or with an SRQ the one it was posted for. */
function recvSlot(c: Ctx, wc: WorkCompletion): number {
  return c.srq ? Number(wc.wrId) : c.index.get(wc.qpNum)!;
}

/** --use-srq: whether this side's QPs receive through an SRQ (perftest's srq_exists: a latency test, the server, or -b). */
const receivesOnSrq = (o: PerftestOptions, client: boolean) => o.srq === true && (isLat(o.test) || !client || o.duplex === true);

/** ctx_set_recv_wqes: the first receives of a SEND test's size on every QP, its rx depth of them. */
function postFirstRecvs(c: Ctx, o: PerftestOptions): void {
  const list = o.recvPostList ?? 1;
  for (let q = 0; q < c.qps.length; q++) for (let i = 0; i < firstRecvs(o); i += list) postRecvs(c, q, o.size, list);
}

/**
 * The receives postFirstRecvs posts for each QP: the rx depth, whole lists of --recv_post_list only
 * (perftest's rx_depth / recv_post_list lists); with --use-srq the SRQ's rx depth shared out among the QPs.
 */
function firstRecvs(o: PerftestOptions): number {
  const list = o.recvPostList ?? 1;
  // floor(floor(rx / q) / list) is floor(floor(rx / list) / q): perftest's lists shared out, the same count
  return Math.floor(recvShare(o) / list) * list;
}

/** A QP's share of the rx depth: all of it, or with --use-srq the SRQ's shared out among the QPs. */
function recvShare(o: PerftestOptions): number {
  return o.srq ? Math.floor(rxDepth(o) / (o.qps ?? 1)) : rxDepth(o);
}

/**
 * The receives of a SEND test's QPs after postFirstRecvs: one reposted for each that completes while
 * fewer than -n are posted on its QP, so none is left over for the next size of -a (each size posts its
 * own, as perftest's run_iter_*); with -D (`always`) for each until the end. With --recv_post_list n,
 * n at once in a list when n have completed (and n more fit under -n), as perftest's.
 */
class Receives {
  private readonly posted: number[];
  /** completed and not yet reposted, per QP */
  private readonly unused: number[];
  private readonly list: number;

  constructor(
    private readonly c: Ctx,
    private readonly o: PerftestOptions,
    private readonly always: boolean,
  ) {
    this.posted = new Array<number>(c.qps.length).fill(firstRecvs(o));
    this.unused = new Array<number>(c.qps.length).fill(0);
    this.list = o.recvPostList ?? 1;
  }

  /** A receive of QP `i` completed. */
  completed(i: number): void {
    const n = this.list;
    if (++this.unused[i]! < n || (!this.always && this.posted[i]! + n > this.o.iters)) return;
    postRecvs(this.c, i, this.o.size, n);
    this.posted[i]! += n;
    this.unused[i]! -= n;
  }
}

/**
 * send_bw's server: `iters` receives on each QP (kept posted), its own figures from the first to the
 * last; with -D receives kept posted until its clock, started at the first message (as perftest's), ends.
 */
async function receiveBw(c: Ctx, o: PerftestOptions, clock?: DurationClock): Promise<BwRow> {
  const total = o.iters * c.qps.length;
  const receives = new Receives(c, o, clock !== undefined);
  const waits = new Completions(() => c.guard.next(c.cq), clock);
  let got = 0;
  let first = 0;
  while (clock ? !clock.done : got < total) {
    const wc = await waits.next(true).catch((e: unknown) => {
      // perftest's check_alive (-n runs only): a minute without a receive, it says so with the count
      // and ends the test; here after --wait with no packet, its words and then ours
      if (!clock && e instanceof PerftestStallError) {
        throw new PerftestStallError(` Did not get Message for 120 Seconds, exiting..\n Total Received=${got}, Total Iters Required=${total}\n(${e.message})`);
      }
      throw e;
    });
    if (!wc) break;
    if (wc.status !== WcStatus.SUCCESS) wcRecvFailed(wc, got);
    if (got === 0) {
      first = performance.now();
      clock?.start();
    }
    got++;
    clock?.tick();
    receives.completed(recvSlot(c, wc));
  }
  if (clock) return durationBw(o.size, clock);
  const secs = Math.max((performance.now() - first) / 1000, 1e-6);
  const avg = (o.size * total) / secs / 2 ** 20;
  return { peak: 0, avg, rate: total / secs / 1e6, iters: total };
}

/** Waits until `cond` holds, letting the device's I/O run in between. */
async function spin(cond: () => boolean, guard: StallGuard): Promise<void> {
  while (!cond()) {
    guard.check();
    await new Promise((r) => setImmediate(r));
  }
}

/**
 * write_lat -D: a side whose clock has ended goes on answering its peer's writes until none has come for
 * WRITE_LAT_QUIET_MS, for WRITE_LAT_GRACE_MS at most (two such sides would answer each other for ever).
 */
const WRITE_LAT_QUIET_MS = 200;
const WRITE_LAT_GRACE_MS = 1000;

/**
 * write_lat: the counter in the last byte of each write, polled in the buffer; the server writes first,
 * then strict turns (run_iter_lat_write); half the round trip, µs. With -D each side runs until its
 * clock (started here, as perftest's) ends, counting its writes completed within the sample.
 */
async function writeLat(c: Ctx, peer: PerftestDest, o: PerftestOptions, client: boolean, clock?: DurationClock): Promise<number[]> {
  const q = c.qps[0]!;
  const bytes = q.buf.bytes;
  const pollAt = c.half + o.size - 1;
  const tposted: number[] = [];
  let sent = 0;
  let rcnt = 0;
  /** rcnt is the write waited for, not yet come */
  let waiting = false;
  /** the peer's next write came (false: the clock ended first) */
  const receive = async () => {
    rcnt++;
    waiting = true;
    await spin(() => bytes[pollAt] === (rcnt & 0xff) || clock?.done === true, c.guard);
    if (clock?.done) return false;
    waiting = false;
    return true;
  };
  // with -D a write still in flight at the end is not waited for, as perftest's (its peer may be gone)
  const waits = new Completions(() => c.guard.next(c.cq), clock);
  let i = 1;
  const write = () => {
    bytes[o.size - 1] = i & 0xff;
    if (!clock) tposted.push(performance.now());
    q.qp.postSend({ wrId: BigInt(i), opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED, sgList: [q.buf.sge(0, o.size)], rdma: { remoteAddr: peer.vaddr, rkey: peer.rkey } });
    i++;
  };
  clock?.start();
  for (; clock ? !clock.done : i <= o.iters; ) {
    // the server writes first (run_iter_lat_write); then each waits for the peer's write
    if (client || i > 1) {
      if (!(await receive())) break;
    }
    await latencyGap(o.latencyGapUs);
    write();
    const wc = await waits.next(true);
    if (!wc) break;
    if (wc.status !== WcStatus.SUCCESS) wcFailed(wc, i - 1, sent);
    sent++;
    clock?.tick();
  }
  if (clock) {
    // perftest's peer started its clock a little later, and its wait for our write does not look at its
    // clock again (a loop a compiler may keep from reading it): answer each write it still sends,
    // uncounted, until none has come for a while; its last one's answer may find it gone (not an error)
    const ended = performance.now();
    let quiet = ended;
    while (performance.now() - quiet < WRITE_LAT_QUIET_MS && performance.now() - ended < WRITE_LAT_GRACE_MS) {
      const next = waiting ? rcnt : rcnt + 1;
      if (bytes[pollAt] === (next & 0xff)) {
        rcnt = next;
        waiting = false;
        write();
        quiet = performance.now();
      }
      c.cq.poll(16);
      await new Promise((r) => setImmediate(r));
    }
  }
  if (!client && !clock) await receive(); // the client's last write
  return tposted;
}

/**
 * send_lat: SEND, wait for the peer's SEND, again (the client starts); half the round trip, µs. With -D
 * each side's clock starts at its first message (as perftest's) and it runs until the clock ends,
 * counting the messages received within the sample.
 */
async function sendLat(c: Ctx, o: PerftestOptions, client: boolean, clock?: DurationClock): Promise<number[]> {
  const q = c.qps[0]!;
  const tposted: number[] = [];
  const waits = new Completions(() => c.guard.next(c.cq), clock);
  let recvs = 0;
  let sends = 0;
  // as run_iter_lat_send
  const receives = new Receives(c, o, clock !== undefined);
  /** the peer's next SEND came (false: the clock ended first) */
  const waitRecv = async () => {
    while (recvs === 0) {
      const wc = await waits.next(true);
      if (!wc) return false;
      if (wc.status !== WcStatus.SUCCESS) wcFailed(wc, sends, sends);
      if (wc.opcode === WcOpcode.RECV) {
        recvs++;
        clock?.start();
        clock?.tick();
      }
    }
    recvs--;
    receives.completed(0);
    return true;
  };
  for (let i = 0; clock ? !clock.done : i < o.iters; i++) {
    if (!client && !(await waitRecv())) break;
    await latencyGap(o.latencyGapUs);
    if (!clock) tposted.push(performance.now());
    q.qp.postSend({ wrId: BigInt(i), opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [q.buf.sge(0, o.size)], ...(q.ud ? { ud: q.ud } : {}) });
    sends++;
    if (client && !(await waitRecv())) break;
  }
  // the last send completions
  c.cq.poll(64);
  return tposted;
}

/**
 * --latency_gap: perftest's wait of `us` µs before a latency test's post (spun on the clock, before the
 * post's time is taken, so the gap is in each measurement). A gap of milliseconds sleeps all but its
 * last one, so that the event loop (the device's I/O, the stall guard) runs meanwhile.
 */
async function latencyGap(us: number | undefined): Promise<void> {
  if (us) await sleepUntil(performance.now() + us / 1000);
}

/**
 * read_lat and atomic_lat (perftest's run_iter_lat): one RDMA READ or atomic at a time; the round trip,
 * µs. With -D until the clock (started here) ends, counting those completed within the sample.
 */
async function responseLat(c: Ctx, peer: PerftestDest, o: PerftestOptions, clock?: DurationClock): Promise<number[]> {
  const q = c.qps[0]!;
  const tposted: number[] = [];
  const opcode = testOpcode(o);
  const sgList = [q.buf.sge(0, o.size)];
  const target = perfVerb(o.test) === "atomic" ? { atomic: atomicOperands(o, peer) } : { rdma: { remoteAddr: peer.vaddr, rkey: peer.rkey } };
  clock?.start();
  for (let i = 0; clock ? !clock.done : i < o.iters; i++) {
    await latencyGap(o.latencyGapUs);
    if (!clock) tposted.push(performance.now());
    q.qp.postSend({ wrId: BigInt(i), opcode, sendFlags: SendFlags.SIGNALED, sgList, ...target });
    const wc = await c.guard.next(c.cq);
    if (wc.status !== WcStatus.SUCCESS) wcFailed(wc, i + 1, i);
    clock?.tick();
  }
  return tposted;
}

/** How the two sides exchange their messages: perftest's TCP socket, or SENDs on its rdma_cm connection (-R, -z). */
interface Exchange {
  /** one step: the side that connects (perftest's servername) writes first */
  swap(mine: Uint8Array, connects: boolean): Promise<Uint8Array>;
  formatKey(d: PerftestDest): Uint8Array;
  parseKey(b: Uint8Array): PerftestDest;
}

/** The server's banner before the connection (both exchanges; not with --output, as perftest). */
const WAITING = "\n************************************\n* Waiting for client to connect... *\n************************************\n";

/** The TCP connection of perftest's default exchange (the side with the server's address connects, the other listens on -p). */
async function tcpExchange(o: PerftestOptions, connects: boolean, held: { sock?: net.Socket; server?: net.Server }, progress: () => number): Promise<Exchange> {
  let sock: net.Socket;
  if (connects) {
    sock = await new Promise<net.Socket>((resolve, reject) => {
      // --source_ip: perftest binds its exchange socket to it before it connects
      const s = net.connect({ host: o.server!, port: o.tcpPort, ...(o.sourceIp !== undefined ? { localAddress: o.sourceIp } : {}) }, () => resolve(s));
      s.once("error", (e) => reject(new PerftestExchangeError(`Couldn't connect to ${o.server}:${o.tcpPort}: ${e.message}`)));
    });
  } else {
    let timer: ReturnType<typeof setTimeout> | undefined;
    sock = await new Promise<net.Socket>((resolve, reject) => {
      held.server = net.createServer((s) => resolve(s));
      held.server.once("error", (e) => reject(new PerftestExchangeError(`Couldn't listen to port ${o.tcpPort}: ${e.message}`)));
      held.server.listen(o.tcpPort, wildcardFor(o.address));
      timer = setTimeout(() => reject(new PerftestExchangeError(`no client connected to TCP port ${o.tcpPort} in ${o.timeoutMs / 1000} s (--wait)`)), o.timeoutMs);
    }).finally(() => clearTimeout(timer));
    held.server!.close();
  }
  held.sock = sock;
  sock.setNoDelay(true);
  const r = new ExactReader(sock, { ms: o.timeoutMs, progress });
  return { swap: (m, c) => r.swap(m, c), formatKey: formatKeyMsg, parseKey: parseKeyMsg };
}

/**
 * xchg_bw_reports: size, iterations (64-bit, the peer being 5.33 or later), peak, average and message
 * rate, each swapped in turn; the peer's, checked. A one-way client sends its report and takes nothing
 * back: what perftest's server swaps then is a report it never filled (uninitialized memory).
 */
async function swapReport(x: Exchange, connects: boolean, mine: BwRow & { size: number }, peerFilled = true): Promise<BwRow & { size: number }> {
  const got: Uint8Array[] = [];
  for (const m of [be64(BigInt(mine.size)), be64(BigInt(mine.iters)), beDouble(mine.peak), beDouble(mine.avg), beDouble(mine.rate)]) got.push(await x.swap(m, connects));
  const r = { size: Number(readBe64(got[0]!)), iters: Number(readBe64(got[1]!)), peak: readDouble(got[2]!), avg: readDouble(got[3]!), rate: readDouble(got[4]!) };
  if (peerFilled) checkReport(r);
  return r;
}

/** One side of a perftest run with perftest's exchange. Exit status: 0, or 1 with perftest's message on stderr. */
export async function runPerftest(o: PerftestOptions, io: Io): Promise<number> {
  // perftest's two roles: who connects (its servername: the exchange's order) and which part of the
  // test this side runs (its machine: the client's, that of the side with the server name, unless --reversed)
  const connects = o.server !== undefined;
  const client = connects !== (o.reversed === true);
  const held: { sock?: net.Socket; server?: net.Server } = {};
  // --pcap: what the device sent and received, written when the run ends (a failed run's too)
  const recorder = toolRecorder();
  /** false when --pcap's file cannot be written (said on stderr, as a capture past its bound is) */
  const savePcap = (): boolean => {
    if (o.pcap === undefined) return true;
    try {
      const line = writeCaptureFileQuietly(o.pcap, recorder);
      if (line) io.err(`${line}\n`);
      return true;
    } catch (e) {
      io.err(`${(e as Error).message}\n`);
      return false;
    }
  };
  let dev: Device | undefined;
  let cm: PerftestCm | undefined;
  let guard: StallGuard | undefined;
  let clock: DurationClock | undefined;
  // --output: the header, the address lines and the table's header and rules are not printed (the
  // notes and notices are, as perftest's)
  const table = (s: string) => {
    if (!o.output) io.out(s);
  };
  try {
    // -C: the CPU's rate the latency figures count cycles by (perftest's get_cpu_mhz)
    const mhz = o.cycles ? cpuMhz() : undefined;
    if (o.cycles && mhz === undefined) throw new PerftestExchangeError("-C/--report-cycles: no \"cpu MHz\" in /proc/cpuinfo to count cycles by");
    io.out(optionNotes(o));
    // force_dependecies: --cpu_util outside duration mode is said and left off (--run_infinitely makes a run one only after it)
    if (o.cpuUtil && !cpuColumn(o)) {
      io.out(RULE);
      io.err(" CPU Utilization works only with Duration mode.\n");
    }
    if (o.rateLimit?.burstDefaulted) io.err(` Setting burst size to tx depth = ${o.txDepth}\n`);
    dev = await openDevice({ address: o.address, port: o.udpPort, ...deviceSizes(o) });
    if (o.pcap !== undefined) recorder.attach(dev.port!);
    // perftest's set_mtu (at its link check, before the exchange): -m, lowered to the active MTU, or the active MTU
    const own = perftestMtu(o.mtu, mtuBytes(dev.queryPort().activeMtu));
    // what a wait for the peer may wait out (--wait): a read of the exchange or a wait of the test
    // gives up after that long with no byte from the peer and no packet on the device (its test running)
    const d = dev;
    const stall: ReadStall = {
      ms: o.timeoutMs,
      progress: () => {
        const k = d.queryCounters();
        return (k["sent_pkts"] ?? 0) + (k["rcvd_pkts"] ?? 0);
      },
    };
    // perftest's ctx_set_max_inline at its link check: a device it does not know (rxe, softroce) gets no
    // inline data, and where the test had an inline size other than its default (READ and atomics,
    // the tests with outstanding reads: 0; or -I) it says so: a rule on stdout, the notice on stderr
    if (readsResponses(o.test) || o.inlineAsked) {
      io.out(RULE);
      io.err("Device not recognized to implement inline feature. Disabling it\n");
    }
    // ctx_set_out_reads (READ and atomics; the other tests 1): -o past the device's max_qp_rd_atom is
    // said and lowered to it; none, or 0 and less, is that max
    const attr = dev.query();
    const maxReads = attr.maxQpRdAtom;
    if (readsResponses(o.test)) {
      const asked = o.outReads ?? 0;
      if (asked > maxReads) {
        io.out(RULE);
        io.err(` Number of outstanding reads is above max = ${maxReads}\n Changing to that max value\n`);
      }
      o = { ...o, outReads: asked > maxReads || asked <= 0 ? maxReads : asked };
    } else o = { ...o, outReads: 1 };
    for (const line of own.notice) io.out(`${line}\n`);
    // perftest's check_link: a UD message is at most the MTU (-a: the sizes up to it, saying so on stderr)
    const mtuMax = own.mtu;
    if (o.connection === "UD" && o.size > mtuMax) {
      if (o.sizes) io.err(` Max msg size in UD is MTU ${mtuMax}\n Changing to this MTU\n`);
      o = { ...o, size: mtuMax, ...(o.sizes ? { sizes: o.sizes.filter((x) => x <= mtuMax) } : {}) };
    }
    // check_link's last check: --pkey_index past the device's P_Keys is said and taken as 0
    // (with -R rdma_cm makes the QPs, with the route's P_Key, as perftest's)
    let pkeyIndex = o.pkeyIndex ?? 0;
    if (pkeyIndex > attr.maxPkeys - 1) {
      io.out(RULE);
      io.err(` Specified PKey Index, ${pkeyIndex}, greater than allowed max, ${attr.maxPkeys - 1}\n Changing to 0\n`);
      pkeyIndex = 0;
    }
    // -W: perftest opens the counters after check_link, before the banner (create_comm_struct)
    const counters = o.counters === undefined ? undefined : ReportCounters.open(dev, o.counters);
    if (o.counters !== undefined && !counters) throw new PerftestExchangeError(" Unable to access performance counters\n Unable to create RDMA_CM resources");
    // the banner before the connection: on the side running the server's part (perftest's machine), whichever connects
    if (!client && !o.output) io.out(WAITING);
    let x: Exchange;
    if (cmExchanged(o)) {
      cm = new PerftestCm(dev, o, stall);
      await cm.open();
      x = { swap: (m, c) => cm!.swap(m, c), formatKey: formatCmKeyMsg, parseKey: parseCmKeyMsg };
    } else {
      x = await tcpExchange(o, connects, held, stall.progress);
    }
    const { mtu } = await exchangeSysData(x, connects, mtuEnum(own.mtu));
    let c: Ctx;
    if (cm && o.rdmaCm) {
      // create_rdma_cm_connection: a handshake, the test QP's rdma_cm connection, a handshake
      const blank: PerftestDest = { lid: 0, outReads: 0, qpn: 0, psn: 0, rkey: 0, vaddr: 0n, gid: new Uint8Array(16), srqn: 0 };
      await x.swap(x.formatKey(blank), connects);
      const depth = readsResponses(o.test) ? o.outReads ?? 1 : 0;
      // UD: where each QP's SENDs go comes with its connection (a latency test's server sends too)
      const targets: (UdTarget | undefined)[] = [];
      c = await setup(o, client, dev, async (pd, init) => {
        const r = await cm!.connectTest({ pd, init: { ...init, sendCq: init.sendCq, recvCq: init.recvCq }, depth, serverSends: isLat(o.test) || o.duplex === true });
        targets.push(r.ud);
        return r.qp;
      });
      c.qps.forEach((q, i) => {
        if (targets[i]) q.ud = targets[i];
      });
      await x.swap(x.formatKey(blank), connects);
    } else {
      c = await setup(o, client, dev, plainQp(pkeyIndex));
    }
    // a key message per QP, in QP order; the barriers after carry the first QP's (perftest's my_dest[0])
    c.guard = new StallGuard(stall);
    guard = c.guard;
    const peers: PerftestDest[] = [];
    for (const q of c.qps) peers.push(x.parseKey(await x.swap(x.formatKey(q.me), connects)));
    const peer = peers[0]!;
    if (!o.rdmaCm) c.qps.forEach((q, i) => connectQp(q, peers[i]!, mtu, o, c.pd, maxReads));
    const sizes = o.sizes ?? [o.size];
    // --out_json: perftest's file, rewritten at each row
    const json = o.outJson !== undefined ? new JsonReport(o.outJson, testInfo(perftestInfo(o, client, mtuBytes(mtu))), io) : undefined;
    const rows = new BwRows(o, io, json, counters);
    /** the run of one size (-a: each in turn) */
    const run = (size: number): PerftestOptions => ({ ...o, size });
    // the receives: send_lat's on both sides, send_bw's on the server (the client only sends), as perftest's
    const receives = o.test === "send_lat" || (o.test === "send_bw" && (!client || o.duplex === true));
    if (receives) postFirstRecvs(c, run(sizes[0]!));
    table(perftestHeader(o, client, mtuBytes(mtu)));
    // ctx_connect's check of a HW rate limit, which a RoCE port's QP does not take (it has no static
    // rate): perftest falls back to its SW limiter, or fails when --rate_limit_type HW was given
    if (o.rateLimit?.hw === "fallback") io.err(`${RED}The QP failed to accept HW rate limit, providing SW rate limit ${RED_OFF}\n`);
    if (o.rateLimit?.hw === "fail") {
      io.err(`${RED}The QP failed to accept HW rate limit  ${RED_OFF}\n`);
      throw new PerftestExchangeError(" Unable to Connect the HCA's through the link");
    }
    // --force-link IB without -x: no GID, so an address vector without a GRH, which a RoCE port's QP
    // refuses at RTR (ib_core's EINVAL; perftest's lines, seen against rxe); rdma_cm's route has one
    if (!hasGid(o) && !o.rdmaCm) {
      io.err(`Failed to modify QP ${c.qps[0]!.me.qpn} to RTR\n`);
      throw new PerftestExchangeError(" Unable to Connect the HCA's through the link");
    }
    // every local QP's line, then every remote one's (perftest prints its own before the exchange)
    const line = (which: string) => (d: PerftestDest) => addressLine(which, d, o.test, cmExchanged(o), hasGid(o));
    table(c.qps.map((q) => line("local")(q.me)).join("") + peers.map(line("remote")).join("") + RULE);
    const me = c.qps[0]!.me;
    const barrier = async () => void (await x.swap(x.formatKey(me), connects));
    // perftest 4.5 exchanges every QP's key message a second time (the loop that prints the remote
    // lines); around it handshakes of the first QP's: SEND tests one before it and one after, the
    // others two after (after RTR; the server's wait for the client's run, which ours takes first).
    // With one QP each is the key message and three handshakes.
    const keysAgain = async () => {
      for (const q of c.qps) await x.swap(x.formatKey(q.me), connects);
    };
    if (o.test === "send_bw") {
      await barrier();
      await keysAgain();
      await barrier();
    } else {
      await keysAgain();
      await barrier();
      await barrier();
    }
    const t = o.test;
    // -D: one run on a clock (perftest refuses -D with -a); --run_infinitely: a clock that never ends,
    // each period's row printed as it closes (perftest's print thread), its -b rows doubled but for SEND
    const clockFor = (): DurationClock | undefined => {
      if (!o.durationS) return undefined;
      const factor = o.duplex && o.test !== "send_bw" ? 2 : 1;
      const everyPeriod = o.infinite ? (count: number, secs: number) => rows.print(o.size, inUnit(o, sampleBw(o.size, count, secs, factor))) : undefined;
      clock = new DurationClock(o.durationS, o.infinite ? 0 : o.marginS, everyPeriod);
      clock.sampleCpu = cpuColumn(o);
      return clock;
    };
    // the test itself (run_iter) failing, and its warm-up: perftest's main says more, and its status
    const iterFailed = runIterFailure(o, client);
    const iter = <T>(test: () => Promise<T>): Promise<T> =>
      test().catch((e: unknown) => {
        throw new PerftestRunIterError(e as Error, iterFailed.line, iterFailed.status);
      });
    const warmedUp = (r: PerftestOptions): Promise<void> =>
      warmUp(c, peers, r).catch((e: unknown) => {
        throw new PerftestRunIterError(e as Error, "Problems with warm up", 1);
      });
    if (isLat(t)) {
      // read_lat's and atomic_lat's server only serves: the closing handshake below waits for the client's test to end
      const serves = readsResponses(t) && !client;
      if (!serves) table((o.durationS ? LAT_DUR_HEADER : LAT_HEADER) + headerEnd(o));
      for (const [k, size] of sizes.entries()) {
        const r = run(size);
        // send_lat's -a: each size posts its receives, then a handshake (the first size's is the one above)
        if (t === "send_lat" && k > 0) {
          postFirstRecvs(c, r);
          await barrier();
        }
        if (serves) continue;
        const d = clockFor();
        const posted = await iter(() => (t === "write_lat" ? writeLat(c, peer, r, client, d) : t === "send_lat" ? sendLat(c, r, client, d) : responseLat(c, peer, r, d)));
        const rttFactor = readsResponses(t) ? 1 : 2;
        if (d) {
          const f = latDurFigures(d, rttFactor);
          const cpu = rowCpu(o, d.cpuUtil);
          io.out((o.output ? fig(f.tAvg) + "\n" : latDurRow(size, f) + rowEnd(cpu)) + (counters?.print() ?? ""));
          json?.write(latDurResults(size, f.iters, f.tAvg, f.tps, o.output, cpu));
        } else {
          const f = perftestLatency(posted, rttFactor, mhz);
          io.out(latReport(size, r.iters, f, o) + (counters?.print() ?? ""));
          json?.write(latResults(size, r.iters, f, o.output));
        }
      }
      if (!serves) table(RULE);
    } else if (t === "send_bw") {
      // both sides measure and print their own row, a row per size; -a: a handshake before each size
      // but the first (after its receives are posted) and after each
      table(bwHeader(o) + headerEnd(o));
      for (const [k, size] of sizes.entries()) {
        const r = run(size);
        if (k > 0) {
          if (receives) postFirstRecvs(c, r);
          await barrier();
        }
        const d = clockFor();
        const f = inUnit(o, await iter(() => (o.duplex ? runBw(c, peers, r, d, { client }) : client ? runBw(c, peers, r, d) : receiveBw(c, r, d))));
        // -b: its own figures plus the peer's report, as the other bandwidth tests' (with -D its own only:
        // perftest's send_bw swaps no report then)
        rows.print(size, f, o.duplex && !d ? await swapReport(x, connects, { size, ...f }) : undefined);
        if (o.sizes) await barrier();
      }
      table(RULE);
    } else if (o.duplex) {
      // -b: both sides run the test (run_iter_bw) and swap their reports (xchg_bw_reports); each prints its
      // own figures plus the peer's (print_full_bw_report). The first size's handshake before its run is the
      // one above; -a: one before each later size and one after each
      table(bwHeader(o) + headerEnd(o));
      for (const [k, size] of sizes.entries()) {
        if (o.warmUp) await warmedUp(run(size));
        if (k > 0) await barrier();
        const f = inUnit(o, await iter(() => runBw(c, peers, run(size), clockFor())));
        if (o.sizes) await barrier();
        rows.print(size, f, await swapReport(x, connects, { size, ...f }));
      }
      table(RULE);
    } else {
      table(bwHeader(o) + headerEnd(o));
      if (client) {
        // a row per size; the server prints the last one's, the report it gets
        let f: BwRow = { peak: 0, avg: 0, rate: 0, iters: 0 };
        for (const size of sizes) {
          if (o.warmUp) await warmedUp(run(size));
          f = inUnit(o, await iter(() => runBw(c, peers, run(size), clockFor())));
          rows.print(size, f);
        }
        await swapReport(x, connects, { size: sizes[sizes.length - 1]!, ...f }, false);
      } else {
        // the server only serves: the report exchange waits for the client's test to end
        const report = await swapReport(x, connects, { size: o.size, iters: o.iters * c.qps.length, peak: 0, avg: 0, rate: 0 });
        rows.print(report.size, report);
      }
      table(RULE);
    }
    if (t !== "write_lat") {
      await barrier(); // ctx_close_connection
      if (!cmExchanged(o)) await x.swap(new TextEncoder().encode(DONE), connects); // rdma_cm mode sends no "done"
    }
    // destroy_ctx: --wait_destroy's wait first, then (-R) the connections' disconnect
    if (o.waitDestroyS) {
      io.out(` Waiting ${o.waitDestroyS} seconds before releasing resources...\n`);
      await new Promise((r) => setTimeout(r, o.waitDestroyS! * 1000));
    }
    if (cm) await cm.close();
    held.sock?.end();
    const limit = rows.failure();
    if (limit) io.err(`${limit}\n`);
    return savePcap() && !limit ? 0 : 1;
  } catch (e) {
    io.err(`${(e as Error).message}\n`);
    if (e instanceof PerftestRunIterError && e.line) io.err(`${e.line}\n`);
    savePcap();
    return e instanceof PerftestRunIterError ? e.status : 1;
  } finally {
    guard?.stop();
    clock?.stop();
    held.sock?.destroy();
    held.server?.close();
    cm?.destroy();
    dev?.close();
  }
}

/** perftest's DEF_HOP_LIMIT: the one -L its RC, UC and UD tests take. */
export const PERFTEST_DEF_HOP_LIMIT = 64;

/** perftest's MIN_ITER: -n below it is refused in its modes. */
export const PERFTEST_MIN_ITERS = 5;
/** perftest's red for the rate limiter's HW notices (its escape sequences, as it prints them) */
const RED = "\x1b[31m";
const RED_OFF = "\x1b[0m";

/** perftest's DEF_DURATION: --run_infinitely's period without -D, seconds */
export const PERFTEST_DEF_DURATION = 5;

/** What the perf command line gives perftest's tests besides PerfOptions and PerftestFlags. */
export interface PerftestRunArgs {
  /** -a: the sizes to run */
  sizes?: readonly number[];
  /** -D, seconds */
  durationS?: number;
  gbits?: boolean;
  /** -I was given */
  inlineAsked?: boolean;
}

/** Where a run of perftest's tests meets its peer (the perf command's two-process flags). */
export interface PerftestEndpoint {
  server?: string;
  address: string;
  udpPort: number;
  tcpPort: number;
  waitMs: number;
  /** -R */
  rdmaCm?: boolean;
  /** -z */
  cmExchange?: boolean;
  /** --pcap */
  pcap?: string;
  /** --source_ip: the exchange's TCP connection is made from it (perftest's) */
  sourceIp?: string;
}

/**
 * `softroce perf <test> [server] --perftest` (or -R): the perf command's options as perftest's, its
 * defaults where none are given; or perftest's refusal as a UsageError. Every check that is perftest's
 * (its ranges, its refusals, what its queues cannot hold) is here; perf.ts checks the command line.
 */
export function perftestOptions(p: PerfOptions & PerftestRunArgs, flags: PerftestFlags, u: PerftestEndpoint): PerftestOptions {
  const test = p.test;
  const connection = p.connection ?? "RC";
  const send = isSend(test);
  const lat = isLat(test);
  const atomic = perfVerb(test) === "atomic";
  const refuse = (msg: string): never => {
    throw new UsageError(msg);
  };
  const cli = u.rdmaCm ? "-R/--rdma_cm" : "--perftest";
  if (!testsFor(connection).includes(test)) {
    refuse(`${test} does not run on ${connection} (perftest: ${connection === "UC" ? "UC connection not possible in READ/ATOMIC verbs" : "UD runs the SEND tests"})`);
  }
  if (u.rdmaCm && connection === "UC") refuse("-c UC with -R: UC is not supported in librdmacm (perftest's refusal)");
  // CHECK_VALUE_IN_RANGE with MIN_ITER and MAX_ITER: its peers run no fewer than 5
  if (p.iterations !== undefined && p.iterations < PERFTEST_MIN_ITERS) {
    refuse(`-n/--iters ${p.iterations}: Iteration num should be between ${PERFTEST_MIN_ITERS} and 100000000 (perftest's range; ${cli} runs perftest's tests)`);
  }
  // --run_infinitely's checks (perftest's force_dependecies), and ours where a run that never ends has nothing to give
  if (flags.infinite) {
    const inf = "--run_infinitely";
    if (flags.events) refuse(`${inf}: run_infinitely does not support events feature yet (-e; perftest's refusal)`);
    if (lat) refuse(`${inf}: run_infinitely exists only in BW tests for now (${test}, perftest's refusal)`);
    if (send && p.bidirectional) refuse(`${inf}: run_infinitely mode is not supported in SEND Bidirectional BW test (-b; perftest's refusal)`);
    if (p.sizes) refuse(`${inf} runs one size until it is stopped: drop -a`);
    if (flags.marginS !== undefined) refuse(`-f/--margin with ${inf}: every period of -D is a sample, there are no margins`);
    for (const [on, name] of [[flags.limitBw, "-w/--limit_bw"], [flags.limitMsgRate, "-y/--limit_msgrate"], [flags.reportBoth || undefined, "--report-both"]] as const) {
      if (on !== undefined) refuse(`${name} with ${inf}: a run that never ends has no last row to hold against it`);
    }
    if (u.pcap !== undefined) refuse(`--pcap with ${inf}: the capture is written when the run ends, and this one does not (give -D)`);
    // test_type DURATION, its period -D or perftest's DEF_DURATION
    p = { ...p, durationS: p.durationS ?? PERFTEST_DEF_DURATION };
  }
  if (p.durationS !== undefined && p.sizes) refuse("Duration mode currently doesn't support running on all sizes (-D with -a, as perftest)");
  if (flags.latencyGapUs && !lat) refuse(`--latency_gap: Latency gap feature is only for latency tests (${test}, perftest's refusal)`);
  if (flags.events && perfVerb(test) === "write") refuse(`-e/--events: Events feature not available on WRITE verb (${test}, perftest's refusal)`);
  if (flags.events && p.durationS !== undefined) refuse("-e/--events with -D: Duration mode doesn't work with events (perftest's refusal)");
  if (flags.compVector !== undefined) {
    // perftest's order: -X on a WRITE test at parsing, without -e after it, then the device's vectors
    if (perfVerb(test) === "write") refuse(`-X/--vector: Events feature not available on WRITE verb (${test}, perftest's refusal)`);
    if (!flags.events) refuse("-X/--vector: Events must be enabled to select a completion vector (-e; perftest's refusal)");
    if (flags.compVector >= NUM_COMP_VECTORS) refuse(`-X/--vector ${flags.compVector}: Completion vector specified is invalid (Max completion vector = ${NUM_COMP_VECTORS - 1})`);
  }
  if (flags.rxDepth !== undefined && flags.rxDepth > 1 && !send) refuse(`-r/--rx-depth ${flags.rxDepth}: On RDMA verbs rx depth can be only 1 (${test}, perftest's refusal)`);
  for (const [on, name] of [[flags.unsorted, "-U/--report-unsorted"], [flags.histogram, "-H/--report-histogram"], [flags.cycles, "-C/--report-cycles"]] as const) {
    if (on && !lat) refuse(`${name}: Available only on Latency tests (${test}, perftest's refusal)`);
  }
  // perftest's help lists them for its BW tests only (its latency tests would take them and check nothing)
  for (const [on, name] of [[flags.limitBw, "-w/--limit_bw"], [flags.limitMsgRate, "-y/--limit_msgrate"], [flags.reportBoth || undefined, "--report-both"]] as const) {
    if (on !== undefined && lat) refuse(`${name}: a bandwidth test's option (${test} prints no BW row)`);
  }
  // perftest's check of --output against the test's kind (after its parsing, which takes only the three names)
  if (flags.output !== undefined && (flags.output === "latency") !== lat) {
    refuse(`--output ${flags.output}: Output verbosity level for ${lat ? "LAT can be: latency" : "BW can be: bandwidth, message_rate"} (${test}, perftest's refusal)`);
  }
  // perftest's defaults: 65536 B x 5000 for bandwidth (8 B for atomics), 2 B x 1000 for latency; tx depth 128 / 1
  // -a: the buffers hold the largest size (perftest's MAX_SIZE), each size runs in turn
  const size = p.sizes ? Math.max(...p.sizes) : p.size ?? (atomic ? ATOMIC_SIZE : lat ? 2 : 65536);
  if (atomic && size !== ATOMIC_SIZE) refuse(`${test} moves ${ATOMIC_SIZE} bytes a message (-s ${ATOMIC_SIZE}; perftest: "Message size cannot be changed for Atomic tests")`);
  const iters = p.iterations ?? (lat ? 1000 : 5000);
  const qps = p.qps ?? 1;
  // --dont_xchg_versions: perftest checks the version it did not exchange (its zeroes: "older than 5.70") and exits
  if (flags.dontXchgVersions) refuse("--dont_xchg_versions: perftest then checks the peer's version it never received and exits: Current implementation is not compatible with versions older than 5.70 (its refusal, whatever the peer; softroce's exchange always sends the version)");
  // -O: perftest's dual-port mode (its checks: BW tests only, then port 2's attributes, which a one-port device has none of)
  if (flags.dualport) {
    if (lat) refuse("-O/--dualport: Dual-port mode only supports BW tests. (perftest's refusal)");
    refuse("-O/--dualport: Unable to query port 2 attributes (the device has one port; perftest's dual-port mode runs QPs on ports 1 and 2)");
  }
  const { rateLimitStr, rateUnits, rateLimitType, burstSize, dontXchgVersions: _, dualport: __, hopLimit: ___, ...perftestFlags } = flags;
  const o: PerftestOptions = {
    test, server: u.server, tcpPort: u.tcpPort, address: u.address, udpPort: u.udpPort,
    // perftest's force_dependecies: no more in flight per QP than it sends in all
    // (-D: -n is not used, and the depth is not lowered)
    size, iters, txDepth: lat ? 1 : p.durationS !== undefined ? p.txDepth ?? 128 : Math.min(p.txDepth ?? 128, iters), mtu: p.mtu, timeoutMs: u.waitMs, rdmaCm: u.rdmaCm,
    // -z with -R is -R (perftest's -R sets use_rdma_cm too)
    ...(u.cmExchange && !u.rdmaCm ? { cmExchange: true } : {}), ...(u.pcap !== undefined ? { pcap: u.pcap } : {}), ...(u.sourceIp !== undefined ? { sourceIp: u.sourceIp } : {}),
    qps, mrPerQp: p.mrPerQp === true, inlineAsked: p.inlineAsked ?? (p.inlineSize ?? 0) > 0,
    ...(atomic ? { atomicType: p.atomicType ?? "FETCH_AND_ADD" } : {}),
    ...(p.sizes ? { sizes: p.sizes } : {}),
    ...(p.durationS !== undefined ? { durationS: p.durationS } : {}),
    ...(p.gbits ? { gbits: true } : {}),
    ...(p.timeout !== undefined ? { qpTimeout: p.timeout } : {}),
    ...(p.retryCnt !== undefined ? { retryCnt: p.retryCnt } : {}),
    ...(connection !== "RC" ? { connection } : {}),
    ...(p.bidirectional ? { duplex: true } : {}),
    ...perftestFlags,
    rxDepth: send ? flags.rxDepth : undefined,
  };
  // --reversed swaps perftest's machine, and with -R its rdma_cm connects by the machine: from the side without a server name
  if (flags.reversed && (u.rdmaCm || u.cmExchange)) refuse(`--reversed with ${u.rdmaCm ? "-R" : "-z"}: perftest's rdma_cm then connects from the side without the server's address, and fails (Linux's: rdma_resolve_route failed / Unable to perform rdma_client function); --reversed takes perftest's TCP exchange`);
  // -T is rdma_cm's (perftest refuses it without -R); --tclass goes in the address vector perftest's own exchange connects by (rdma_cm makes its route)
  if (flags.tos !== undefined && !u.rdmaCm) refuse(`-T/--tos ${flags.tos}: TOS only valid for rdma_cm based QP and RawEth QP (-R; perftest's refusal)`);
  if (flags.tclass !== undefined && u.rdmaCm) refuse("--tclass with -R: rdma_cm connects the QPs (perftest uses --tclass only in its Ethernet exchange and ignores it with -R)");
  // -L is Raw Ethernet's IP header's hop limit (perftest's RC, UC and UD QPs say 0xff in their GRH whatever it is): another than its default is refused, after -T's check, as perftest's
  if (flags.hopLimit !== undefined && flags.hopLimit !== PERFTEST_DEF_HOP_LIMIT) refuse(`-L/--hop_limit ${flags.hopLimit}: Hop limit only valid for RawEth QP (perftest's refusal; its RC, UC and UD QPs' GRH hop limit is 0xff)`);
  // -f: the margins of -D's sample (perftest's check; without -D perftest would hold it against its default duration)
  if (flags.marginS !== undefined) {
    if (p.durationS === undefined) refuse("-f/--margin: the margins of the duration mode's sample; give -D");
    else if (!(p.durationS > 2 * flags.marginS)) refuse(`-f/--margin ${flags.marginS}: please check that DURATION > 2*MARGIN (-D ${p.durationS}; perftest's refusal)`);
  }
  // --use-srq's (force_dependecies), and rdma_cm's UD exchange, which posts its receive on the QP (perftest's fails there)
  if (o.srq) {
    if (!send) refuse(`--use-srq: Using SRQ only available in SEND tests (${test}, perftest's refusal)`);
    if (qps > rxDepth(o)) refuse(`--use-srq: Using SRQ depth should be greater than number of QPs (-q ${qps}, rx depth ${rxDepth(o)}; perftest's refusal)`);
    if (u.rdmaCm && connection === "UD" && (lat || o.duplex)) refuse("--use-srq with -R -c UD: rdma_cm's UD exchange posts a receive on the QP, which a QP on an SRQ does not take");
  }
  // --recv_post_list's checks (force_dependecies), and a list longer than the receives posted, which would post none
  const recvList = o.recvPostList ?? 1;
  if (recvList > 1) {
    if (lat) refuse("--recv_post_list: Receive post list is supported in BW tests only");
    if (p.durationS === undefined && iters % recvList !== 0) refuse(`--recv_post_list ${recvList}: Number of iterations must be a multiple of receive post list size (-n ${iters})`);
    if (send && firstRecvs(o) === 0) {
      refuse(`--recv_post_list ${recvList}: a list longer than the receives posted for each QP (${recvShare(o)}${o.srq ? `, the SRQ's ${rxDepth(o)} over ${qps} QPs` : ""}) posts none`);
    }
  }
  // perftest's checks of -l (force_dependecies); and a list that cannot fit the send queue, where perftest would wait for ever
  const list = o.postList ?? 1;
  if (list > 1) {
    if (lat) refuse("-l/--post_list: Post list is supported in BW tests only");
    if (p.durationS === undefined && iters % list !== 0) refuse(`-l/--post_list ${list}: Number of iterations must be a multiple of post list size (-n ${iters})`);
    const mod = o.cqMod === undefined ? undefined : Math.min(o.cqMod, o.txDepth);
    if (mod !== undefined && list % mod !== 0) refuse(`-l/--post_list ${list}: Post list size must be a multiple of CQ moderation (-Q ${mod})`);
    if (list > o.txDepth) refuse(`-l/--post_list ${list}: a list longer than the tx depth (${o.txDepth}) never fits in the send queue`);
  }
  // the rate limiter (perftest-rate.ts): perftest's checks of it and ours
  const rate = rateLimitFrom(
    { rateLimitStr, rateUnits, rateLimitType, burstSize },
    { test, bw: !lat, atomic, biSend: send && o.duplex === true, infinite: o.infinite === true, cmExchange: u.rdmaCm === true || u.cmExchange === true, txDepth: o.txDepth, size, timeoutMs: u.waitMs },
    refuse,
  );
  if (rate) o.rateLimit = rate;
  // one CQ holds every QP's sends in flight and, on a SEND test, its receives: past the device's max_cqe it cannot be created
  if (cqDepth(o) > DEFAULT_MAX_CQE) {
    refuse(`-q ${qps} × (tx depth ${o.txDepth}${send ? ` + ${rxDepth(o)} receives` : ""}) needs ${cqDepth(o)} CQ entries; the device's max_cqe is ${DEFAULT_MAX_CQE}`);
  }
  return o;
}
