// Powers of two: ring capacities and read/atomic depths are rounded up to one.

/** The smallest power of two >= n (1 for 0 and 1). */
export function nextPow2(n: u32): u32 {
  if (n <= 1) return 1;
  return 1 << (32 - clz(n - 1));
}
