// Environment variables a test sets: what they held before, put back after each test.

/** Remembers `names` now; the returned function puts each back (deleted if it was unset). */
export function envRestorer(names: readonly string[]): () => void {
  const before = Object.fromEntries(names.map((v) => [v, process.env[v]]));
  return () => {
    for (const v of names) {
      if (before[v] === undefined) delete process.env[v];
      else process.env[v] = before[v];
    }
  };
}
