// What a perf run is: the test, the message shape, the queue depths, the
// simulated link's faults, and whether to verify every byte. Validation lives
// here so the CLI and the browser playground reject the same things with the
// same messages.

import { DEFAULT_MAX_CQE } from "../verbs/device.js";
import { GRH_SIZE } from "../verbs/ah.js";

export const BW_TESTS = ["send_bw", "write_bw", "read_bw", "atomic_bw"] as const;
export const LAT_TESTS = ["send_lat", "write_lat", "read_lat", "atomic_lat"] as const;
export const PERF_TESTS = [...BW_TESTS, ...LAT_TESTS] as const;
export type PerfTest = (typeof PERF_TESTS)[number];
/** A test's verb, as perftest builds every test from one (its `verb` × `tst`: ib_<verb>_<bw|lat>). */
export type PerfVerb = "send" | "write" | "read" | "atomic";
export type Connection = "RC" | "UC" | "UD";
export type AtomicType = "FETCH_AND_ADD" | "CMP_AND_SWAP";

export const MTUS = [256, 512, 1024, 2048, 4096] as const;
/** The path MTU without -m on the simulated wire (--local, the playground); over UDP a side takes its port's active MTU (perftestMtu). */
export const DEFAULT_MTU = 1024;

export interface PerfFaults {
  /** probabilities in [0, 1] */
  loss?: number;
  dup?: number;
  reorder?: number;
  corrupt?: number;
  /** one-way delay, µs */
  delayUs?: number;
  /** link rate, bits per second (0 = unlimited) */
  rateBps?: number;
}

export interface PerfOptions {
  test: PerfTest;
  connection?: Connection;
  /** message size in bytes (atomic tests: always 8) */
  size?: number;
  /** messages per QP */
  iterations?: number;
  /** path MTU in bytes [default: DEFAULT_MTU; two processes: the port's active MTU] */
  mtu?: number;
  /** outstanding work requests per QP */
  txDepth?: number;
  qps?: number;
  faults?: PerfFaults;
  seed?: number;
  verify?: boolean;
  atomicType?: AtomicType;
  /** local ACK timeout exponent: 4.096 µs × 2^timeout */
  timeout?: number;
  retryCnt?: number;
  /** perftest's -I: SEND and RDMA WRITE messages up to this many bytes are posted inline (0: none; at most 512, the device's maxInlineData) */
  inlineSize?: number;
  /** perftest's -b: both sides post at once (bandwidth tests); the figures are the two directions summed */
  bidirectional?: boolean;
  /**
   * perftest's --mr_per_qp: each QP's messages in an MR of its own (bandwidth tests). Default false:
   * one MR holds every QP's places, each QP its own part of it, as perftest registers by default.
   */
  mrPerQp?: boolean;
  /**
   * A UD message larger than the path MTU is taken down to it (perftest's check_link, once it knows
   * its port's MTU) instead of refused. Default false: the simulated wire's runs refuse it.
   */
  udSizeToMtu?: boolean;
  /** gives up (counting what is outstanding as lost) after this much virtual time, µs */
  virtualLimitUs?: number;
}

/** A checked, complete set of options. */
export type ResolvedPerfOptions = Required<Omit<PerfOptions, "faults">> & { faults: Required<PerfFaults> };

/** A bad option: the CLI turns it into a usage error (exit 2). */
export class PerfOptionError extends RangeError {
  override name = "PerfOptionError";
}

export function isBwTest(t: PerfTest): boolean {
  return (BW_TESTS as readonly string[]).includes(t);
}

/** The verb of a test ("atomic" for atomic_bw and atomic_lat). */
export function perfVerb(t: PerfTest): PerfVerb {
  return t.slice(0, t.indexOf("_")) as PerfVerb;
}

/**
 * Whether the test's messages come back as responses (RDMA READ and atomics): perftest gives those
 * tests outstanding reads ("Outstand reads" in the header, OUT in the address lines), and their
 * latency is the whole round trip, where SEND's and WRITE's is half of a ping-pong's (rtt_factor).
 */
export function readsResponses(t: PerfTest): boolean {
  const v = perfVerb(t);
  return v === "read" || v === "atomic";
}

/** The tests a connection type runs, as perftest: UC does SEND and WRITE, UD only SEND (READ and atomics are RC only). */
export function testsFor(connection: Connection): readonly PerfTest[] {
  const verbs: readonly PerfVerb[] = { RC: ["send", "write", "read", "atomic"] as const, UC: ["send", "write"] as const, UD: ["send"] as const }[connection] ?? [];
  return PERF_TESTS.filter((t) => verbs.includes(perfVerb(t)));
}

/** The atomic operand size: every atomic test moves 8 bytes a message. */
export const ATOMIC_SIZE = 8;

/** perftest's -a: every power of two from 2 to its MAX_SIZE, 2^23 bytes, a row each. */
export const ALL_SIZES: readonly number[] = Array.from({ length: 23 }, (_, i) => 2 << i);

/** Largest message the local mode accepts. */
export const MAX_SIZE = 1 << 24;
/** Messages per run (every completion time is kept for the peak figure). */
export const MAX_MESSAGES = 10_000_000;
/** Most work requests in flight per QP (perftest's MAX_TX; the device's max_qp_wr is 16384). */
export const MAX_TX_DEPTH = 15000;
/** Most QPs a run may have (perftest's MAX_QP_NUM). */
export const MAX_QPS = 16384;
/** Largest inline message (the device's default maxInlineData). */
export const MAX_INLINE = 512;
/** Bytes of MR memory per device the local mode may use. */
export const MAX_MR_BYTES = 512 << 20;

function int(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isInteger(v)) throw new PerfOptionError(`${name} must be an integer, got ${String(v)}`);
  if (v < min || v > max) throw new PerfOptionError(`${name} must be from ${min} to ${max}, got ${v}`);
  return v;
}

function fraction(name: string, v: unknown): number {
  if (typeof v !== "number" || !(v >= 0 && v <= 1)) throw new PerfOptionError(`${name} must be a probability from 0 to 1, got ${String(v)}`);
  return v;
}

function nonNegative(name: string, v: unknown, max: number): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0 || v > max) throw new PerfOptionError(`${name} must be a number from 0 to ${max}, got ${String(v)}`);
  return v;
}

/** Fills in defaults (perftest's where it has one) and checks every option. */
export function resolvePerfOptions(o: PerfOptions): ResolvedPerfOptions {
  if (!(PERF_TESTS as readonly string[]).includes(o.test)) {
    throw new PerfOptionError(`unknown test '${String(o.test)}' (one of ${PERF_TESTS.join(", ")})`);
  }
  const bw = isBwTest(o.test);
  const connection = o.connection ?? "RC";
  if (connection !== "RC" && connection !== "UC" && connection !== "UD") {
    throw new PerfOptionError(`connection type must be RC, UC or UD, got '${String(connection)}'`);
  }
  const allowed = testsFor(connection);
  if (!allowed.includes(o.test)) {
    throw new PerfOptionError(`${o.test} does not run on ${connection} (${connection} supports ${allowed.join(", ")})`);
  }
  const atomicType = o.atomicType ?? "FETCH_AND_ADD";
  if (atomicType !== "FETCH_AND_ADD" && atomicType !== "CMP_AND_SWAP") {
    throw new PerfOptionError(`atomic type must be FETCH_AND_ADD or CMP_AND_SWAP, got '${String(atomicType)}'`);
  }
  let size = o.size ?? (bw ? 65536 : 2);
  size = int("size", size, 0, MAX_SIZE);
  if (perfVerb(o.test) === "atomic") {
    if (o.size !== undefined && o.size !== ATOMIC_SIZE) throw new PerfOptionError(`${o.test} moves ${ATOMIC_SIZE} bytes per operation; size must be ${ATOMIC_SIZE}, got ${o.size}`);
    size = ATOMIC_SIZE;
  }
  if (o.test === "write_lat" && size === 0) throw new PerfOptionError("write_lat needs size >= 1 (the receiver watches the buffer for the message)");
  const iterations = int("iterations", o.iterations ?? (bw ? 5000 : 1000), 1, MAX_MESSAGES);
  const mtu = o.mtu ?? DEFAULT_MTU;
  if (!(MTUS as readonly number[]).includes(mtu)) throw new PerfOptionError(`mtu must be one of ${MTUS.join(", ")}, got ${String(mtu)}`);
  const udSizeToMtu = o.udSizeToMtu ?? false;
  if (connection === "UD" && size > mtu) {
    if (!udSizeToMtu) throw new PerfOptionError(`UD messages must fit the MTU: size ${size} > mtu ${mtu}`);
    size = mtu;
  }
  let txDepth = int("tx depth", o.txDepth ?? (bw ? 128 : 1), 1, MAX_TX_DEPTH);
  if (!bw && txDepth !== 1) throw new PerfOptionError(`latency tests keep one message in flight; tx depth must be 1, got ${txDepth}`);
  // as perftest (force_dependecies): no more in flight per QP than the QP sends in all; its header
  // then shows the smaller depth, and its CQ is that much smaller
  txDepth = Math.min(txDepth, iterations);
  const qps = int("qps", o.qps ?? 1, 1, MAX_QPS);
  if (!bw && qps !== 1) throw new PerfOptionError(`latency tests run on one QP; qps must be 1, got ${qps}`);
  if (iterations * qps > MAX_MESSAGES) throw new PerfOptionError(`iterations × qps must be at most ${MAX_MESSAGES}, got ${iterations * qps}`);
  // one send CQ holds every QP's completions, as perftest creates it (tx depth × qps CQEs): beyond
  // the device's max_cqe its ibv_create_cq fails ("Couldn't create CQ"), and so would ours
  if (qps * txDepth > DEFAULT_MAX_CQE) throw new PerfOptionError(`qps × tx depth must be at most ${DEFAULT_MAX_CQE} (one CQ holds every QP's completions; the device's max_cqe), got ${qps * txDepth}`);
  const f = o.faults ?? {};
  const faults: Required<PerfFaults> = {
    loss: fraction("loss", f.loss ?? 0),
    dup: fraction("dup", f.dup ?? 0),
    reorder: fraction("reorder", f.reorder ?? 0),
    corrupt: fraction("corrupt", f.corrupt ?? 0),
    delayUs: nonNegative("delay", f.delayUs ?? 0, 10_000_000),
    rateBps: nonNegative("rate", f.rateBps ?? 0, 1e13),
  };
  const seed = int("seed", o.seed ?? 1, 0, 0xffffffff);
  const timeout = int("timeout", o.timeout ?? 14, 0, 31);
  const retryCnt = int("retry count", o.retryCnt ?? 7, 0, 7);
  const inlineSize = int("inline size", o.inlineSize ?? 0, 0, MAX_INLINE);
  if (inlineSize > 0 && readsResponses(o.test)) throw new PerfOptionError(`inline size applies to send and write tests only (${o.test} posts no inline data)`);
  const virtualLimitUs = nonNegative("virtual time limit", o.virtualLimitUs ?? 3_600e6, 1e15);
  const bidirectional = o.bidirectional ?? false;
  if (typeof bidirectional !== "boolean") throw new PerfOptionError(`bidirectional must be true or false, got ${String(bidirectional)}`);
  if (bidirectional && !bw) throw new PerfOptionError(`bidirectional applies to the bandwidth tests (${BW_TESTS.join(", ")}), not ${o.test}`);
  const mrPerQp = o.mrPerQp ?? false;
  if (typeof mrPerQp !== "boolean") throw new PerfOptionError(`mr per qp must be true or false, got ${String(mrPerQp)}`);
  if (mrPerQp && !bw) throw new PerfOptionError(`an MR per QP applies to the bandwidth tests (${BW_TESTS.join(", ")}), not ${o.test}`);
  const verify = o.verify ?? false;
  // UC and UD may lose a message: to say which arrived, each must carry its sequence number
  if (verify && connection !== "RC" && size < 4) {
    throw new PerfOptionError(`verify on ${connection} needs messages of at least 4 bytes (each carries its sequence number), got size ${size}`);
  }
  const mrBytes = perfMrBytes({ size, connection, txDepth, verify, bidirectional }) * qps;
  if (mrBytes > MAX_MR_BYTES) {
    const places = verify ? " × tx depth (--verify keeps every message in flight apart)" : "";
    throw new PerfOptionError(`size${places} × qps${bidirectional ? " × 2 (bidirectional)" : ""} needs ${mrBytes} bytes of MR per device; the limit is ${MAX_MR_BYTES}`);
  }
  return { test: o.test, connection, size, iterations, mtu, txDepth, qps, faults, seed, verify, atomicType, timeout, retryCnt, inlineSize, bidirectional, mrPerQp, udSizeToMtu, virtualLimitUs };
}

/**
 * The path MTU a perftest side runs with (perftest's set_mtu): without -m, the port's active MTU;
 * a -m above it is lowered to it, and perftest says so in two lines on stdout, the second naming
 * the active MTU by its ibv_mtu enum value (3 for 1024), as perftest prints it. Bytes in and out.
 * The two sides then agree on the smaller of their two (perftest's check_mtu), silently.
 */
export function perftestMtu(asked: number | undefined, activeBytes: number): { mtu: number; notice: string[] } {
  if (asked === undefined || asked <= activeBytes) return { mtu: asked ?? activeBytes, notice: [] };
  return { mtu: activeBytes, notice: ["Requested mtu is higher than active mtu ", `Changing to active mtu - ${Math.log2(activeBytes) - 7}`] };
}

/**
 * perftest's cycle buffer (its default: a page). A message of at most half of it goes to the next
 * cache-line-aligned place in the buffer, wrapping at its end; a larger one always to the buffer's start.
 */
export const PERFTEST_CYCLE_BUFFER = 4096;
/** perftest's cache line (its default), the step between places. */
export const PERFTEST_CACHE_LINE = 64;

/** Bytes between message places: the message (UD: after the 40-byte GRH its receive buffer starts with), rounded up to a cache line. */
export function perfSlotBytes(size: number, connection: Connection): number {
  return (Math.max(size + (connection === "UD" ? GRH_SIZE : 0), 8) + PERFTEST_CACHE_LINE - 1) & -PERFTEST_CACHE_LINE;
}

type PerfLayoutOptions = Pick<ResolvedPerfOptions, "size" | "connection" | "txDepth" | "verify">;

/**
 * Message places per QP and direction in an MR, as perftest lays its buffer out: one buffer of
 * max(size, cycle buffer) per QP, cycled through by messages up to half the cycle buffer (work
 * request k uses place k mod places) and reused by every larger one. So its 64 KiB write_bw
 * keeps one 64 KiB buffer per QP, whatever the tx depth. --verify (ours, --local only) checks each
 * message's bytes after it lands, so there every message in flight keeps a place of its own.
 */
export function perfPlaces(o: PerfLayoutOptions): number {
  if (o.verify) return o.txDepth;
  const slotBytes = perfSlotBytes(o.size, o.connection);
  // the whole cycle buffer even when fewer messages are in flight: a perftest peer cycles through all of it
  return slotBytes <= PERFTEST_CYCLE_BUFFER / 2 ? Math.floor(PERFTEST_CYCLE_BUFFER / slotBytes) : 1;
}

/**
 * Regions of message places in each MR: one, or two with -b (bidirectional), where the client's
 * messages use region 0 on both sides and the server's region 1, so the two directions never
 * write each other's bytes.
 */
export function perfRegions(o: { bidirectional: boolean }): number {
  return o.bidirectional ? 2 : 1;
}

/** Where a message slot's bytes are in a region: place slot mod places, slotBytes apart. */
export interface PerfLayout {
  /** bytes between places (the message rounded up to a cache line: perfSlotBytes) */
  slotBytes: number;
  /** places per QP and region (perfPlaces: perftest's buffer, or one per slot with --verify) */
  places: number;
}

/** The layout of every region of a run's MRs. */
export function perfLayout(o: PerfLayoutOptions): PerfLayout {
  return { slotBytes: perfSlotBytes(o.size, o.connection), places: perfPlaces(o) };
}

/** Byte offset of slot `slot`'s place in a region laid out as `l`. */
export function slotOffset(l: PerfLayout, slot: number): number {
  return (slot % l.places) * l.slotBytes;
}

/** Bytes of one QP's MR: its places in each region. */
export function perfMrBytes(o: PerfLayoutOptions & Pick<ResolvedPerfOptions, "bidirectional">): number {
  const l = perfLayout(o);
  return l.places * l.slotBytes * perfRegions(o);
}

/** Whether the link is perfect (bandwidth then is wall-clock time). */
export function faultFree(f: Required<PerfFaults>): boolean {
  return f.loss === 0 && f.dup === 0 && f.reorder === 0 && f.corrupt === 0;
}
