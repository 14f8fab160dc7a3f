// Random bytes for the device's identities (MR key bits, the QPN mapping, where
// MRs start): a pool in linear memory that the host fills from its CSPRNG
// (crypto.getRandomValues) before the device opens and refills when it runs low
// (entropy_avail), or, on a seeded simulated wire, from the wire's PRNG so runs
// stay reproducible. The core has no randomness source of its own.

/** Bytes the pool holds. */
export const ENTROPY_CAP: u32 = 512;
/** The host refills when fewer than this many bytes are left. */
export const ENTROPY_LOW: u32 = 256;

export const entropyPool: usize = memory.data(ENTROPY_CAP, 16);
let avail: u32 = 0;
/** Values drawn while the pool was empty (a host that never filled it): distinct, not secret. */
let starved: u32 = 0;
let stir: u32 = 0x9e3779b9;

/** The host wrote `n` fresh bytes at the start of the pool. */
export function entropyFilled(n: u32): void { avail = min(n, ENTROPY_CAP) & ~3; }
export function entropyAvail(): u32 { return avail; }
export function entropyStarved(): u32 { return starved; }

/** Four random bytes, each used once. */
export function entropyU32(): u32 {
  if (avail >= 4) {
    avail -= 4;
    const p = entropyPool + avail;
    const v = load<u32>(p);
    store<u32>(p, 0);
    return v;
  }
  starved++;
  stir ^= stir << 13;
  stir ^= stir >> 17;
  stir ^= stir << 5;
  return stir;
}

/** A uniform value in [0, n) (n > 0), by rejection so no value is favoured. */
export function entropyBelow(n: u32): u32 {
  if (n <= 1) return 0;
  const limit = <u32>(0x100000000 - (<u64>0x100000000 % <u64>n)) - 1; // largest multiple of n, minus one
  let v = entropyU32();
  while (v > limit) v = entropyU32();
  return v % n;
}
