// Recovering an unseen IPv4 Identification from the ICRC, and accepting it only
// where the sender's ID sequence predicts it.
//
// A host that receives through an ordinary UDP socket never sees the IP header,
// but the ICRC covers the IPv4 ID, and Linux rxe sends an unpredictable one. The
// CRC is affine in its input: with everything else fixed,
//   icrc(id) = icrc(0) XOR L(id)
// where L is linear in the 16 ID bits: L(id) = XOR of delta_i over the set bits,
// delta_i being the raw CRC of the message that is all zeros but for ID bit i.
// So the ID is the solution of a 32x16 system over GF(2); with rank 16 it is
// unique when it exists, and the 16 spare equations are a check that a corrupted
// packet fails with probability 1 - 2^-16.
//
// That alone would leave a 16-bit check, so a solved ID is accepted only where
// the sender's sequence predicts it (ipidAccept): softroce sends ID 0, or 0, 1, 2,
// ... across a GSO batch; Linux sends a counter per (source, destination) that
// goes up by one per datagram. Per source address the receiver keeps the last ID
// it accepted and takes a solved ID only in the next IPID_WINDOW after it; an ID
// outside becomes a candidate that the flow's next datagram may confirm (loss,
// a new flow). A random ICRC then passes when it solves (2^-16) and lands in a
// window (IPID_WINDOW / 2^16, twice that with a candidate): about 2^-29 for
// IPID_WINDOW 8, while ID 0 is checked directly at full strength. The window widens by one per millisecond the
// flow was idle (Linux's random ID jumps, see after()), up to IPID_IDLE_CAP, so a
// datagram after a pause is checked more weakly: after one second idle, about
// 2^-22; after IPID_IDLE_CAP ms or more, about 2^-19.
//
// A flow's very first datagram has no prediction: its solved ID is checked at the
// solver's 2^-16 only. Such a "weak" ID (also one taken only thanks to the idle
// growth) is taken provisionally (IPID_WEAK): it seeds the flow only when the
// packet then reaches a QP that takes it from that source (ipidCommit, called by
// the receive path); a datagram to no QP, or off the QP's path, seeds nothing.
// docs/SECURITY.md has the measured acceptance per case (bench/icrc-accept.mjs).
//
// Delta_i is the CRC register of ID bit i (2 bytes) run over `tail` zero bytes,
// i.e. multiplied by x^(8 tail) modulo the CRC polynomial: computed with
// O(log tail) carry-less multiplications instead of a pass over the zeros, so a
// datagram that fails costs one CRC pass, as one that passes. Better still, the
// length only multiplies every column by the same x^(8 tail): the ICRC difference
// is multiplied by its inverse instead, and the system reduced once with a fixed
// basis. The inverse is tabled for every length up to RX_BUF_CAP. A solve is one
// multiplication and at most 16 XORs whatever the datagram: a bad one costs what a
// good one does (bench/icrc-cost.mjs), so there is no solve work left to cap.
import { crc32_raw } from "./crc32";
import { icrc_calc } from "./icrc";
import { IP4_ID, IP4_SIZE, UDP_SIZE } from "../wire/ip";
import { RX_BUF_CAP } from "../abi/net";
import { nowUs } from "../sched/clock";

/** Reflected CRC-32 polynomial; in this representation x^0 is bit 31. */
const POLY: u32 = 0xedb88320;
/**
 * Solved IDs accepted after the last accepted one (or after the candidate). Linux's counter is
 * shared by everything the sender sends to a destination bucket and jumps with its jiffies, so
 * back-to-back packets of one rxe message were seen 3–8 apart (the interop capture: 76 of 10,000
 * consecutive pairs beyond 2 + the ms between them); 8 took them all.
 */
export const IPID_WINDOW: u32 = 8;
/** The most the window grows with a flow's idle time (ms at one ID per ms: Linux at HZ 1000). */
export const IPID_IDLE_CAP: u32 = 8192;

/** What ipidAccept decides. */
export const IPID_REFUSE: u32 = 0;
/** In the flow's predicted window: taken, the flow follows it. */
export const IPID_TAKE: u32 = 1;
/** No prediction (a new flow) or only inside the idle growth: taken if the packet reaches a QP (ipidCommit). */
export const IPID_WEAK: u32 = 2;

/** Counters of the ID solver (exported as icrc_id_stat(i)). */
export enum IdStat {
  SOLVED = 0, // an ID explained the ICRC
  UNSOLVABLE = 1, // no ID did: corrupted
  OUT_OF_SEQUENCE = 2, // solved, outside the flow's windows: refused
  WEAK_TAKEN = 3, // taken without a prediction (first datagram, long idle) and committed
  WEAK_DROPPED = 4, // taken weakly, but the packet reached no QP: seeded nothing
  COUNT = 5,
}
const idStats = memory.data(8 * 4, 16);
@inline function bump(s: IdStat): void {
  const a = idStats + (<usize>s << 2);
  store<u32>(a, load<u32>(a) + 1);
}
export function idStat(s: u32): u32 {
  return s < <u32>IdStat.COUNT ? load<u32>(idStats + (<usize>s << 2)) : 0;
}

const idBytes = memory.data(8, 8);
/** x^(2^k) mod P and x^(-2^k) mod P, k = 0..31; the CRC register of each ID bit over its 2 bytes. */
const x2n = memory.data(32 * 4, 16);
const xinv2n = memory.data(32 * 4, 16);
const idCols = memory.data(16 * 4, 16);
/** The ID columns in reduced form (fixed: the length only multiplies them by an invertible factor). */
const basis = memory.data(16 * 4, 16);
const pivots = memory.data(16 * 4, 16);
const combos = memory.data(16 * 4, 16);
let idRank: u32 = 0;
let tablesReady = false;

/** a(x) * b(x) mod P(x), reflected. */
function mulmod(a: u32, b: u32): u32 {
  let m: u32 = 1 << 31;
  let p: u32 = 0;
  while (a) {
    if (a & m) p ^= b;
    a &= ~m; // bits done are cleared: the loop ends after a's lowest set bit
    m >>= 1;
    b = b & 1 ? (b >>> 1) ^ POLY : b >>> 1;
  }
  return p;
}

function initTables(): void {
  let p: u32 = 1 << 30; // x^1
  store<u32>(x2n, p);
  for (let k = 1; k < 32; k++) {
    p = mulmod(p, p);
    store<u32>(x2n + (<usize>k << 2), p);
  }
  for (let bit: u32 = 0; bit < 16; bit++) {
    // ID is big-endian on the wire: bit i of the value lives in byte 1 - (i >> 3).
    store<u16>(idBytes, 0);
    const one: u32 = 1 << (bit & 7);
    store<u8>(idBytes + 1 - (bit >> 3), <u8>one);
    store<u32>(idCols + (<usize>bit << 2), crc32_raw(0, idBytes, 2));
  }
  // x^-1 = (P + 1) / x, as P has a constant term: in the reflected form, P's bits moved up one
  // (dropping x^0) with x^31 set
  p = (POLY << 1) | 1;
  for (let k = 0; k < 32; k++) {
    store<u32>(xinv2n + (<usize>k << 2), p);
    p = mulmod(p, p);
  }
  // Gauss-Jordan over GF(2) on the 16 columns, once
  let rank: u32 = 0;
  for (let i: u32 = 0; i < 16; i++) {
    let v = load<u32>(idCols + (<usize>i << 2));
    let m: u32 = 1 << i;
    for (let k: u32 = 0; k < rank; k++) {
      if (v & load<u32>(pivots + (<usize>k << 2))) {
        v ^= load<u32>(basis + (<usize>k << 2));
        m ^= load<u32>(combos + (<usize>k << 2));
      }
    }
    if (v == 0) continue;
    store<u32>(basis + (<usize>rank << 2), v);
    store<u32>(pivots + (<usize>rank << 2), v & (0 - v));
    store<u32>(combos + (<usize>rank << 2), m);
    rank++;
  }
  idRank = rank;
  tablesReady = true;
}

/** x^(-8 n) mod P: undoes running the CRC register over n zero bytes. */
function zerosInverse(n: u32): u32 {
  let p: u32 = 1 << 31; // x^0
  let k: u32 = 3;
  while (n) {
    if (n & 1) p = mulmod(load<u32>(xinv2n + (<usize>(k & 31) << 2)), p);
    n >>= 1;
    k++;
  }
  return p;
}

/** x^-1 mod P (tests: x * x^-1 = 1). */
export function xInverse(): u32 {
  if (!tablesReady) initTables();
  return load<u32>(xinv2n);
}

/** x^(8 n) mod P: what running the CRC register over n zero bytes multiplies it by. */
function zerosOperator(n: u32): u32 {
  let p: u32 = 1 << 31; // x^0
  let k: u32 = 3; // 8 n = n << 3
  while (n) {
    if (n & 1) p = mulmod(load<u32>(x2n + (<usize>(k & 31) << 2)), p);
    n >>= 1;
    k++;
  }
  return p;
}

/** crc32_raw(crc, n zero bytes), without the pass. */
export function crc32_zeros(crc: u32, n: u32): u32 {
  if (!tablesReady) initTables();
  return mulmod(zerosOperator(n), crc);
}

// Per covered length n the solver needs x^(-8 tail): the ID columns of a packet are the fixed
// columns multiplied by x^(8 tail), so multiplying the ICRC difference by its inverse leaves a
// system with the fixed basis. A table holds it for every length a received datagram can have,
// extended on demand by one multiplication per length (at most INV_LENGTHS in a device's life):
// no length costs more than another, so no flood of lengths can make solving expensive.
const INV_LENGTHS: u32 = RX_BUF_CAP + 1;
const invTable = memory.data((9216 + 1) * 4, 16); // INV_LENGTHS words
let invFilled: u32 = 0;

/** x^(-8 (bytes after the ID + n)) mod P. */
function inverseFor(n: u32): u32 {
  if (!tablesReady) initTables();
  const after = (IP4_SIZE - IP4_ID - 2) + UDP_SIZE;
  if (n >= INV_LENGTHS) return zerosInverse(after + n); // longer than any received datagram (the export)
  if (n >= invFilled) {
    let v = invFilled ? load<u32>(invTable + (<usize>(invFilled - 1) << 2)) : 0;
    const step = load<u32>(xinv2n + (3 << 2)); // x^-8: one more byte
    for (let k = invFilled; k <= n; k++) {
      v = k ? mulmod(v, step) : zerosInverse(after);
      store<u32>(invTable + (<usize>k << 2), v);
    }
    invFilled = n + 1;
  }
  return load<u32>(invTable + (<usize>n << 2));
}

/** No ID explains the ICRC. */
export const ID_NONE: i32 = -1;

/**
 * The IPv4 ID that makes the ICRC of this packet equal `found` (the ICRC value
 * as read little-endian from the wire), ID_NONE when none does. `ip` is a 20-byte IPv4 pseudo header, `udp` the UDP
 * header, `bth` the `n` covered bytes from the BTH on. `icrc`, when given
 * (`haveIcrc`), is the packet's ICRC computed with ID `icrcId` (the caller's own
 * pass, so it is not repeated); otherwise the ID field of `ip` is zeroed and
 * one pass made.
 */
export function recover_ipv4_id(ip: usize, udp: usize, bth: usize, n: u32, found: u32, icrc: u32 = 0, icrcId: u32 = 0, haveIcrc: bool = false): i32 {
  const inv = inverseFor(n);
  if (!haveIcrc) {
    store<u16>(ip + IP4_ID, 0);
    icrc = icrc_calc(ip, false, udp, bth, n);
    icrcId = 0;
  }
  // icrc(id) ^ icrc(icrcId) = x^(8 tail) C(id ^ icrcId): solve C(d) = x^(-8 tail) (icrc ^ found)
  let target = mulmod(inv, icrc ^ found);
  let d: u32 = 0;
  for (let k: u32 = 0; k < idRank; k++) {
    if (target & load<u32>(pivots + (<usize>k << 2))) {
      target ^= load<u32>(basis + (<usize>k << 2));
      d ^= load<u32>(combos + (<usize>k << 2));
    }
  }
  if (target != 0) {
    bump(IdStat.UNSOLVABLE);
    return ID_NONE;
  }
  bump(IdStat.SOLVED);
  return <i32>((d ^ icrcId) & 0xffff);
}

// Per-source ID prediction: a 4-way set-associative table of flows by source address, the
// least recently used way replaced (a direct-mapped table let two peers in one slot evict
// each other on every datagram, each then checked as a new flow).
const SETS: u32 = 128;
const WAYS: u32 = 4;
const FLOW_SIZE: usize = 32; // 16-byte address, u32 last accepted ID, u32 candidate (0xffffffff: none), f64 time of the last (µs)
const NONE: u32 = 0xffffffff;
const flows = memory.data(128 * 4 * 32, 16); // SETS x WAYS x FLOW_SIZE
let flowsReady = false;

function flowOf(src: usize): usize {
  if (!flowsReady) {
    for (let i: u32 = 0; i < SETS * WAYS; i++) {
      const f = flows + <usize>i * FLOW_SIZE;
      memory.fill(f, 0, 16);
      store<u32>(f + 16, NONE);
      store<u32>(f + 20, NONE);
      store<f64>(f + 24, -1);
    }
    flowsReady = true;
  }
  const a = load<u64>(src), b = load<u64>(src + 8);
  let x = a * 0x9e3779b97f4a7c15 ^ b;
  x = (x ^ (x >> 29)) * 0xbf58476d1ce4e5b9;
  const set = flows + <usize>(<u32>(x >> 57)) * WAYS * FLOW_SIZE; // 128 sets
  let oldest = set;
  for (let w: u32 = 0; w < WAYS; w++) {
    const f = set + <usize>w * FLOW_SIZE;
    if (load<u64>(f) == a && load<u64>(f + 8) == b && load<f64>(f + 24) >= 0) return f;
    if (load<f64>(f + 24) < load<f64>(oldest + 24)) oldest = f;
  }
  // a new flow in the least recently used way: no prediction yet
  store<u64>(oldest, a);
  store<u64>(oldest + 8, b);
  store<u32>(oldest + 16, NONE);
  store<u32>(oldest + 20, NONE);
  store<f64>(oldest + 24, nowUs);
  return oldest;
}

/**
 * Linux draws a datagram's ID from a counter per destination bucket that also
 * jumps by a random amount below the jiffies since the bucket was last used
 * (ip_idents_reserve), so the window grows with the time since the flow's last
 * datagram: at most one per millisecond (HZ 1000), up to IPID_IDLE_CAP;
 * IPID_WINDOW when datagrams follow each other closely, where the check keeps its
 * full strength. 0: not after; 1: in the window; 2: only in the idle growth.
 */
@inline function after(prev: u32, id: u32, f: usize): u32 {
  if (prev == NONE) return 0;
  const d = (id - prev) & 0xffff;
  if (d >= 1 && d <= IPID_WINDOW) return 1;
  const idle = nowUs - load<f64>(f + 24);
  const grow = idle > 0 ? <u32>Math.min(idle / 1000, <f64>IPID_IDLE_CAP) : 0;
  return d >= 1 && d <= IPID_WINDOW + grow ? 2 : 0;
}

let pendingFlow: usize = 0;
let pendingId: u32 = 0;

function take(f: usize, id: u32): void {
  store<u32>(f + 16, id);
  store<u32>(f + 20, NONE);
  store<f64>(f + 24, nowUs);
}

/**
 * Whether the datagram from `src` (a 16-byte GID) may carry IPv4 ID `id`: a
 * directly checked ID (`solved` false: the hint or ID 0 matched) always
 * (IPID_TAKE), a solved one right after the flow's last accepted ID or its
 * candidate (IPID_TAKE), or with no prediction / only inside the idle growth
 * (IPID_WEAK: the caller commits it with ipidCommit once the packet reached a QP).
 * A solved ID out of sequence is refused and becomes the flow's candidate.
 */
export function ipidAccept(src: usize, id: u32, solved: bool): u32 {
  const f = flowOf(src);
  pendingFlow = 0;
  if (!solved) {
    take(f, id);
    return IPID_TAKE;
  }
  const last = load<u32>(f + 16), cand = load<u32>(f + 20);
  const a = after(last, id, f), c = after(cand, id, f);
  if (a == 1 || c == 1) {
    take(f, id);
    return IPID_TAKE;
  }
  // A flow with no prediction yet takes its first solved ID (at the solver's 2^-16): refusing it
  // lost UC and UD messages from Linux peers, which never resend (test/system/interop.sys.mjs).
  if (a == 2 || c == 2 || (last == NONE && cand == NONE)) {
    pendingFlow = f;
    pendingId = id;
    return IPID_WEAK;
  }
  bump(IdStat.OUT_OF_SEQUENCE);
  store<u32>(f + 20, id);
  store<f64>(f + 24, nowUs);
  return IPID_REFUSE;
}

/** The packet ipidAccept took weakly reached a QP (or group) that takes it: the flow follows its ID. */
export function ipidCommit(): void {
  if (!pendingFlow) return;
  take(pendingFlow, pendingId);
  pendingFlow = 0;
  bump(IdStat.WEAK_TAKEN);
}

/** The packet ipidAccept took weakly was dropped later: it seeds nothing. */
export function ipidAbandon(): void {
  if (!pendingFlow) return;
  pendingFlow = 0;
  bump(IdStat.WEAK_DROPPED);
}

/** Forgets every flow's prediction (device reset, tests). */
export function ipidReset(): void {
  flowsReady = false;
  pendingFlow = 0;
}
