// The order of a round's candidates in the interleaved benches: a permutation drawn from
// BENCH_SEED (default 1) and the round's number, the same in every run with the same seed.
// A rotation (or one fixed order) keeps each candidate behind the same neighbour in every round,
// and that place can carry its own bias: in bench/fast-path.mjs whatever ran right after the
// "native-now" pair measured 3-11 % slower goodput, two identical device pairs included.

/** The indices 0..n-1 in round `round`'s order (xorshift32 over the seed and the round, Fisher–Yates). */
export function roundOrder(n, round, seed = Number(process.env.BENCH_SEED ?? 1)) {
  let x = (Math.imul(seed, 0x9e3779b1) ^ Math.imul(round + 1, 0x85ebca6b)) >>> 0 || 1;
  const next = () => ((x ^= x << 13), (x ^= x >>> 17), (x ^= x << 5), (x >>>= 0));
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const k = next() % (i + 1);
    [order[i], order[k]] = [order[k], order[i]];
  }
  return order;
}

/** `items` in round `round`'s order. */
export const inRoundOrder = (items, round) => roundOrder(items.length, round).map((i) => items[i]);
