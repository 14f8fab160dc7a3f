// xorshift32 for tests that mutate inputs deterministically: the function returned draws 0 .. n - 1
// from the seed's sequence (the same sequence for the same seed, run after run).
export function xorshift32(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n: number) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
}
