// 24-bit packet sequence numbers: addition and comparison across the wrap.
export const PSN_MASK: u32 = 0xffffff;

@inline export function psn_next(a: u32, n: u32): u32 { return (a + n) & PSN_MASK; }

/** Signed distance a - b in [-2^23, 2^23): positive when a is after b (rxe psn_compare). */
@inline export function psn_distance(a: u32, b: u32): i32 { return (<i32>((a - b) << 8)) >> 8; }

/** -1, 0 or 1 as a is before, equal to or after b. */
@inline export function psn_order(a: u32, b: u32): i32 {
  const d = psn_distance(a, b);
  return d < 0 ? -1 : d > 0 ? 1 : 0;
}
