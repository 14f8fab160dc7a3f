// QP numbers: slot index -> QPN through a random affine bijection of the
// device's QPN range, base + (mul * index + add) mod span, drawn at device open
// from the entropy pool. QPNs are then no function of open order (a fresh
// device's first QP is not base), the receive path inverts the map with one
// multiply, and every slot keeps one QPN so nothing else changes.
import { entropyBelow } from "../mem/entropy";
import { cfg, CFG_QPN_BASE, CFG_QPN_COUNT } from "./config";

let span: u64 = 1;
let mul: u64 = 1;
let inv: u64 = 1;
let add: u64 = 0;

function gcd(a: u64, b: u64): u64 {
  while (b) {
    const t = a % b;
    a = b;
    b = t;
  }
  return a;
}

/** x with (a * x) mod m == 1, for a coprime to m (extended Euclid). */
function modInverse(a: u64, m: u64): u64 {
  let r0 = <i64>m, r1 = <i64>a;
  let t0: i64 = 0, t1: i64 = 1;
  while (r1) {
    const q = r0 / r1;
    const r = r0 - q * r1;
    r0 = r1;
    r1 = r;
    const t = t0 - q * t1;
    t0 = t1;
    t1 = t;
  }
  return <u64>(t0 < 0 ? t0 + <i64>m : t0);
}

/** Draws the map for `cap` QP slots (call at device open, after the configuration is written). */
export function qpnMapInit(cap: u32): void {
  let n = cfg(CFG_QPN_COUNT);
  if (n < cap) n = cap;
  span = max<u64>(<u64>n, 1);
  add = span > 1 ? <u64>entropyBelow(<u32>span) : 0;
  mul = 1;
  if (span > 2) {
    do mul = 1 + <u64>entropyBelow(<u32>span - 1); while (gcd(mul, span) != 1);
  }
  inv = span > 1 ? modInverse(mul, span) : 1;
}

/** The QPN of slot `idx`. */
@inline export function qpnOf(idx: u32): u32 {
  return cfg(CFG_QPN_BASE) + <u32>((mul * <u64>idx + add) % span);
}

/** The slot index QPN `qpn` names: an index >= the pool's cap when it names none. */
@inline export function qpnIndex(qpn: u32): u32 {
  const j = <u64>(qpn - cfg(CFG_QPN_BASE));
  if (j >= span) return 0xffffffff;
  return <u32>((inv * ((j + span - add) % span)) % span);
}
