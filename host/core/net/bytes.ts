// Joining byte pieces: gather lists (a TX descriptor's headers, payload and trailer), file
// sections (pcap header and records), frames (tunnel header and datagram).

/** The pieces one after another in a new buffer (one copy). */
export function concat(pieces: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of pieces) n += p.length;
  const out = new Uint8Array(n);
  copyPieces(out, 0, pieces);
  return out;
}

/** Copies the pieces into `out` from `at`; returns the offset after the last one. */
export function copyPieces(out: Uint8Array, at: number, pieces: readonly Uint8Array[]): number {
  for (const p of pieces) {
    out.set(p, at);
    at += p.length;
  }
  return at;
}
