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
// the sender's sequence predicts it (ipidAccept, the rule and why each of its terms
// exists above it): softroce sends ID 0, or 0, 1, 2, ... across a GSO batch; Linux
// draws each ID from a counter per (source, destination, protocol) that goes up by
// one per datagram plus a random delta below the jiffies elapsed since its last use.
// Per source address the receiver keeps the last ID it took and takes a solved ID
// IPID_BUSY (2) ahead of it when the flow is busy, and further ahead only by as
// many as milliseconds may have passed at the sender (the time since the last
// datagram arrived, plus how long that one may have waited in the sender), up to
// every ID. An ID outside becomes a candidate that the flow's next datagram may
// confirm. A random ICRC passes when it solves (2^-16) and lands in the window:
// on a busy flow 2 / 2^16, about 2^-31; 10 ms after a datagram about 2^-27.5;
// after a flow idled one second about 2^-21; after a minute or more, 2^-16. ID 0
// (softroce) is checked directly at full strength.
//
// A flow's very first datagram has no prediction: its solved ID is checked at the
// solver's 2^-16 only. Such a "weak" ID (also one taken only thanks to elapsed
// time) is taken provisionally (IPID_WEAK): it seeds the flow only when the
// packet then reaches a QP that takes it from that source (ipidCommit, called by
// the receive path); a datagram to no QP, or off the QP's path, seeds nothing.
// docs/SECURITY.md has the acceptance per case (bench/icrc-accept.mjs).
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
// each other on every datagram, each then checked as a new flow). Keyed by source address
// only: Linux's counter is per (source, destination, protocol), not per UDP port.
const SETS: u32 = 128;
const WAYS: u32 = 4;
const FLOW_SIZE: usize = 80;
// a flow's fields
const F_LAST: usize = 16; // u32: the last ID taken (NONE: no prediction yet)
const F_CAND: usize = 20; // u32: the last ID refused (NONE: none), which the next datagram may confirm
const F_TOUCH: usize = 24; // f64: µs of the flow's last use (LRU; -1: an empty way)
const F_T_LAST: usize = 32; // f64: µs at which the last ID was taken
const F_T_CAND: usize = 40; // f64: µs at which the candidate came
const F_SEEN: usize = 48; // u32: bit i set = ID (last - 1 - i) was taken, or never to be taken (reordering)
const F_GAP0: usize = 52; // f32: ms, the longest arrival gap among the taken datagrams of the previous epoch
const F_GAP1: usize = 56; // f32: ms, the same for the current epoch
const F_EPOCH: usize = 64; // f64: µs at which the current epoch began
const NONE: u32 = 0xffffffff;
const flows = memory.data(128 * 4 * 80, 16); // SETS x WAYS x FLOW_SIZE
let flowsReady = false;

function flowOf(src: usize): usize {
  if (!flowsReady) {
    for (let i: u32 = 0; i < SETS * WAYS; i++) {
      const f = flows + <usize>i * FLOW_SIZE;
      memory.fill(f, 0, FLOW_SIZE);
      store<f64>(f + F_TOUCH, -1);
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
    if (load<u64>(f) == a && load<u64>(f + 8) == b && load<f64>(f + F_TOUCH) >= 0) {
      store<f64>(f + F_TOUCH, nowUs);
      return f;
    }
    if (load<f64>(f + F_TOUCH) < load<f64>(oldest + F_TOUCH)) oldest = f;
  }
  // a new flow in the least recently used way: no prediction yet
  memory.fill(oldest, 0, FLOW_SIZE);
  store<u64>(oldest, a);
  store<u64>(oldest + 8, b);
  store<u32>(oldest + F_LAST, NONE);
  store<u32>(oldest + F_CAND, NONE);
  store<f64>(oldest + F_TOUCH, nowUs);
  store<f64>(oldest + F_T_LAST, -1);
  store<f64>(oldest + F_EPOCH, nowUs);
  return oldest;
}

// The rule. What Linux 6.1 does (net/ipv4/route.c ip_idents_reserve, called by rxe's
// prepare_ipv4_hdr through __ip_select_ident for every packet it builds): the ID comes from a
// counter per hash bucket of (source, destination, protocol); each reservation adds the
// datagram's segments (1 for rxe) plus, when the bucket's last use was in an earlier jiffy, a
// random delta in [0, jiffies elapsed). So between two datagrams of a flow the ID advances by
//   (the datagrams the bucket gave out, this one included) + (deltas < the jiffies elapsed)
// and j jiffies elapse only in more than j - 1 jiffy periods: with HZ <= 1000 the deltas add up to
// at most floor(the sender's elapsed ms). A solved ID d ahead of the last one taken is therefore
// taken when
//   1 <= d <= min(IPID_BUSY + floor(T + IPID_TICK_MS), 65535)
// with
//   IPID_BUSY = 1 (this datagram) + 1 (one datagram from that source the receiver did not see:
//     lost, or sent by another socket to this address, which shares the bucket);
//   T = the ms since the last datagram taken from the flow arrived, plus how long that datagram
//     may have waited in the sender after its ID was drawn (its hold, below). The time is the
//     host's (µs, performance.now()): floor(T + IPID_TICK_MS) keeps the bound when the host's
//     clock is coarser than the µs it is counted in (a browser's 5-100 µs; a 1 ms clock can be
//     one ID short at a tick boundary, which the candidate below recovers).
//   The hold: an ID is drawn when rxe builds the packet, not when it leaves. A sender whose
//     transmit queue stalls (a qemu TCG guest, a busy host) sends a burst of packets drawn long
//     before, then the next packet with a fresh jiffies delta, a fraction of a ms after the burst
//     (the interop captures: +66 0.6 ms after a packet that waited 290 ms; +13, +16, +23 likewise).
//     A datagram can only have waited while nothing behind it arrived, so its hold is at most the
//     arrival gap before its burst: the hold term is the longest arrival gap among the flow's
//     datagrams taken in the last IPID_HOLD_SPAN_US to 2 x IPID_HOLD_SPAN_US (two epochs: in the
//     captures the fresh packet came at most 8.7 ms after its burst began, and a receiver reads a
//     queued burst within a few ms; no gap of a ms since then shows a drained queue). A
//     busy flow, with no gap of a ms in that span, keeps T < 1 and the window at IPID_BUSY. The
//     hold counts at most IPID_HOLD_CAP_MS: the longest wait seen was 290 ms; a datagram that
//     waited longer (a sender stuck for seconds) is refused once and its successor confirms it.
//   No cap on T below what the model needs: after an idle of 65 s a sender at HZ 1000 may have
//     moved its counter anywhere, and the window covers every ID (the solver's 2^-16 alone, as for
//     a new source). Refusing there instead (a cap of 8192 before) lost the first datagram after
//     most idles longer than 8 s.
// Reordering: an ID up to IPID_REORDER behind the last one taken is taken once, if it was skipped
// (a hole of the sequence: Linux's deltas make some, reordering fills others). A duplicate of an
// ID already taken is refused: its first copy was delivered, so dropping the second costs nothing,
// and the busy window stays at IPID_BUSY candidates. A random ICRC then passes on a busy flow when
// it solves (2^-16) and lands on one of IPID_BUSY IDs: 2^-31.
// Everything out of the window is refused and becomes the flow's candidate: a next datagram in
// the candidate's own window confirms it (the sender jumped beyond the model, a hash bucket shared
// with traffic the receiver does not see) and the flow follows it; one datagram is lost then.

/** The datagrams a Linux sender may give out between two datagrams of a busy flow: this one and one the receiver did not see. */
export const IPID_BUSY: u32 = 2;
/** How far behind the last ID a skipped ID is still taken (reordering). */
export const IPID_REORDER: u32 = 8;
/** The longest a datagram is taken to have waited in its sender after its ID was drawn (ms). */
export const IPID_HOLD_CAP_MS: f64 = 1000;
/** The host clock's resolution the bound allows for (ms). */
export const IPID_TICK_MS: f64 = 0.1;
/** How long an arrival gap counts as a possible hold of the datagrams that follow it (µs, per epoch; two epochs). */
export const IPID_HOLD_SPAN_US: f64 = 32_000;

/** What ipidAccept decides. */
export const IPID_REFUSE: u32 = 0;
/** Directly checked, or within IPID_BUSY of the last ID (or a skipped one just behind it): taken, the flow follows it. */
export const IPID_TAKE: u32 = 1;
/** No prediction (a new flow), or ahead only by what elapsed time allows: taken if the packet reaches a QP (ipidCommit). */
export const IPID_WEAK: u32 = 2;

/** The longest arrival gap (ms) among the flow's recent taken datagrams: what the last one may have waited. */
@inline function hold(f: usize): f64 {
  return Math.min(Math.max(<f64>load<f32>(f + F_GAP0), <f64>load<f32>(f + F_GAP1)), IPID_HOLD_CAP_MS);
}

/** How far ahead of an ID taken (or refused) at `t` the next may be: IPID_BUSY + floor(T ms), at most every other ID. */
function reach(f: usize, t: f64): u32 {
  const ms = (nowUs - t) / 1000 + hold(f) + IPID_TICK_MS;
  if (!(ms > 0)) return IPID_BUSY; // (also NaN)
  return <u32>Math.min(<f64>IPID_BUSY + Math.floor(ms), 65535);
}

let pendingFlow: usize = 0;
let pendingId: u32 = 0;

/** The flow takes `id` (arrived now): the sequence, its holes, the arrival gap for the hold. */
function take(f: usize, id: u32, direct: bool): void {
  const last = load<u32>(f + F_LAST);
  let seen: u32 = 0xffffffff; // a first ID, a directly checked one: nothing behind it to take
  if (!direct && last != NONE) {
    const d = (id - last) & 0xffff;
    const old = load<u32>(f + F_SEEN);
    seen = d >= 1 && d < 32 ? (old << d) | (<u32>1 << (d - 1)) : d == 32 ? <u32>1 << 31 : 0;
  }
  const cand = load<u32>(f + F_CAND);
  if (cand != NONE) {
    const b = (id - cand) & 0xffff; // a confirmed candidate's own ID is not to be taken again
    if (b >= 1 && b <= 32) seen |= <u32>1 << (b - 1);
  }
  store<u32>(f + F_SEEN, seen);
  const tLast = load<f64>(f + F_T_LAST);
  const gap = tLast >= 0 && nowUs > tLast ? (nowUs - tLast) / 1000 : 0;
  let epoch = load<f64>(f + F_EPOCH);
  if (nowUs - epoch >= IPID_HOLD_SPAN_US) {
    store<f32>(f + F_GAP0, nowUs - epoch >= 2 * IPID_HOLD_SPAN_US ? 0 : load<f32>(f + F_GAP1));
    store<f32>(f + F_GAP1, 0);
    store<f64>(f + F_EPOCH, nowUs);
  }
  if (<f32>gap > load<f32>(f + F_GAP1)) store<f32>(f + F_GAP1, <f32>gap);
  store<u32>(f + F_LAST, id);
  store<u32>(f + F_CAND, NONE);
  store<f64>(f + F_T_LAST, nowUs);
}

/**
 * Whether the datagram from `src` (a 16-byte GID) may carry IPv4 ID `id`: a
 * directly checked ID (`solved` false: the hint or ID 0 matched) always
 * (IPID_TAKE); a solved one within IPID_BUSY after the flow's last, a skipped one
 * just behind it, or one in its candidate's window (IPID_TAKE); ahead only by what
 * the elapsed time allows, or with no prediction (IPID_WEAK: the caller commits it
 * with ipidCommit once the packet reached a QP). Anything else is refused and
 * becomes the flow's candidate.
 */
export function ipidAccept(src: usize, id: u32, solved: bool): u32 {
  const f = flowOf(src);
  pendingFlow = 0;
  if (!solved) {
    take(f, id, true);
    return IPID_TAKE;
  }
  const last = load<u32>(f + F_LAST), cand = load<u32>(f + F_CAND);
  if (last != NONE) {
    const d = (id - last) & 0xffff;
    if (d >= 1 && d <= IPID_BUSY) {
      take(f, id, false);
      return IPID_TAKE;
    }
    const behind = (last - id) & 0xffff;
    if (behind >= 1 && behind <= IPID_REORDER) {
      const seen = load<u32>(f + F_SEEN), bit = <u32>1 << (behind - 1);
      if (!(seen & bit)) {
        store<u32>(f + F_SEEN, seen | bit);
        return IPID_TAKE;
      }
    }
  }
  if (cand != NONE) {
    const d = (id - cand) & 0xffff;
    if (d >= 1 && d <= reach(f, load<f64>(f + F_T_CAND))) {
      take(f, id, false);
      return IPID_TAKE;
    }
  }
  // ahead by what the time since the last taken datagram (and its hold) allows; or no prediction
  // yet, where the first solved ID is taken at the solver's 2^-16: refusing it lost UC and UD
  // messages from Linux peers, which never resend (test/system/interop.sys.mjs)
  const ahead = last != NONE ? (id - last) & 0xffff : 0;
  if ((ahead >= 1 && ahead <= reach(f, load<f64>(f + F_T_LAST))) || (last == NONE && cand == NONE)) {
    pendingFlow = f;
    pendingId = id;
    return IPID_WEAK;
  }
  bump(IdStat.OUT_OF_SEQUENCE);
  store<u32>(f + F_CAND, id);
  store<f64>(f + F_T_CAND, nowUs);
  return IPID_REFUSE;
}

/** The packet ipidAccept took weakly reached a QP (or group) that takes it: the flow follows its ID. */
export function ipidCommit(): void {
  if (!pendingFlow) return;
  take(pendingFlow, pendingId, false);
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
