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
// window (2 x IPID_WINDOW / 2^16): about 2^-30 for IPID_WINDOW 2, while ID 0 is
// checked directly at full strength. A flow's very first datagram has no
// prediction and is checked at 2^-16. The window widens by one per millisecond the
// flow was idle (Linux's random ID jumps, see after()), so a datagram after a pause
// is checked more weakly: after one second idle, about 2^-22.
//
// Delta_i is the CRC register of ID bit i (2 bytes) run over `tail` zero bytes,
// i.e. multiplied by x^(8 tail) modulo the CRC polynomial: computed with
// O(log tail) carry-less multiplications instead of a pass over the zeros, so a
// datagram that fails costs one CRC pass, as one that passes.
import { crc32_raw } from "./crc32";
import { icrc_calc } from "./icrc";
import { IP4_ID, IP4_SIZE, UDP_SIZE } from "../wire/ip";
import { nowUs } from "../sched/clock";

/** Reflected CRC-32 polynomial; in this representation x^0 is bit 31. */
const POLY: u32 = 0xedb88320;
/** Solved IDs accepted after the last accepted one (or after the candidate). */
export const IPID_WINDOW: u32 = 2;

const idBytes = memory.data(8, 8);
const basis = memory.data(16 * 4, 16);
const pivots = memory.data(16 * 4, 16);
const combos = memory.data(16 * 4, 16);
/** x^(2^k) mod P, k = 0..31, and the CRC register of each ID bit over its 2 bytes. */
const x2n = memory.data(32 * 4, 16);
const idCols = memory.data(16 * 4, 16);
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
  tablesReady = true;
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

/**
 * The IPv4 ID that makes the ICRC of this packet equal `found` (the ICRC value
 * as read little-endian from the wire), or -1 when none does. `ip` is a 20-byte
 * IPv4 pseudo header (its ID field is overwritten), `udp` the UDP header, `bth`
 * the `n` covered bytes from the BTH on. `atZero`, when given (`haveAtZero`), is
 * the packet's ICRC with ID 0, so the caller's own pass is not repeated.
 */
export function recover_ipv4_id(ip: usize, udp: usize, bth: usize, n: u32, found: u32, atZero: u32 = 0, haveAtZero: bool = false): i32 {
  if (!tablesReady) initTables();
  const tail = (IP4_SIZE - IP4_ID - 2) + UDP_SIZE + n;
  if (!haveAtZero) {
    store<u16>(ip + IP4_ID, 0);
    atZero = icrc_calc(ip, false, udp, bth, n);
  }
  let target = atZero ^ found;
  if (target == 0) return 0;
  const shift = zerosOperator(tail);
  // Gaussian elimination over GF(2), columns added one by one in reduced form.
  let rank = 0;
  for (let i: u32 = 0; i < 16; i++) {
    let v = mulmod(shift, load<u32>(idCols + (<usize>i << 2)));
    let m: u32 = 1 << i;
    for (let k = 0; k < rank; k++) {
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
  let id: u32 = 0;
  for (let k = 0; k < rank; k++) {
    if (target & load<u32>(pivots + (<usize>k << 2))) {
      target ^= load<u32>(basis + (<usize>k << 2));
      id ^= load<u32>(combos + (<usize>k << 2));
    }
  }
  if (target != 0) return -1;
  return <i32>id;
}

// Per-source ID prediction: a direct-mapped table of flows by source address.
const FLOWS: u32 = 256;
const FLOW_SIZE: usize = 32; // 16-byte address, u32 last accepted ID, u32 candidate (0xffffffff: none), f64 time of the last (µs)
const NONE: u32 = 0xffffffff;
const flows = memory.data(256 * 32, 16); // FLOWS x FLOW_SIZE
let flowsReady = false;

function flowOf(src: usize): usize {
  if (!flowsReady) {
    for (let i: u32 = 0; i < FLOWS; i++) {
      const f = flows + <usize>i * FLOW_SIZE;
      memory.fill(f, 0, 16);
      store<u32>(f + 16, NONE);
      store<u32>(f + 20, NONE);
    }
    flowsReady = true;
  }
  const a = load<u64>(src), b = load<u64>(src + 8);
  let x = a * 0x9e3779b97f4a7c15 ^ b;
  x = (x ^ (x >> 29)) * 0xbf58476d1ce4e5b9;
  const h = <u32>(x >> 56);
  const f = flows + <usize>h * FLOW_SIZE;
  if (load<u64>(f) != a || load<u64>(f + 8) != b) {
    // a new flow in this slot: no prediction yet
    store<u64>(f, a);
    store<u64>(f + 8, b);
    store<u32>(f + 16, NONE);
    store<u32>(f + 20, NONE);
  }
  return f;
}

/**
 * Linux draws a datagram's ID from a counter per destination bucket that also
 * jumps by a random amount below the jiffies since the bucket was last used
 * (ip_idents_reserve), so the window grows with the time since the flow's last
 * accepted datagram: at most one per millisecond (HZ 1000), IPID_WINDOW when
 * datagrams follow each other closely, where the check keeps its full strength.
 */
@inline function after(prev: u32, id: u32, f: usize): bool {
  if (prev == NONE) return false;
  const d = (id - prev) & 0xffff;
  const idle = nowUs - load<f64>(f + 24);
  const grow = idle > 0 ? <u32>Math.min(idle / 1000, 32767) : 0;
  return d >= 1 && d <= IPID_WINDOW + grow;
}

/**
 * Whether the datagram from `src` (a 16-byte GID) may carry IPv4 ID `id`: a
 * directly checked ID (`solved` false: ID 0 matched) always, a solved one only
 * right after the flow's last accepted ID or its candidate. Updates the flow.
 */
export function ipidAccept(src: usize, id: u32, solved: bool): bool {
  const f = flowOf(src);
  // A flow with no prediction yet takes its first solved ID (at the solver's 2^-16): refusing it
  // lost UC and UD messages from Linux peers, which never resend (test/system/interop.sys.mjs).
  const fresh = load<u32>(f + 16) == NONE && load<u32>(f + 20) == NONE;
  if (!solved || fresh || after(load<u32>(f + 16), id, f) || after(load<u32>(f + 20), id, f)) {
    store<u32>(f + 16, id);
    store<u32>(f + 20, NONE);
    store<f64>(f + 24, nowUs);
    return true;
  }
  store<u32>(f + 20, id);
  store<f64>(f + 24, nowUs);
  return false;
}

/** Forgets every flow's prediction (device reset, tests). */
export function ipidReset(): void {
  flowsReady = false;
}
