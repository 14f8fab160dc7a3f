// Hex helpers shared by the wire/crc specs (as-pect includes *.include.ts in every spec).

/** Writes the bytes of a hex string (spaces ignored) at p; returns the byte count. */
export function hexWrite(p: usize, s: string): u32 {
  let n: u32 = 0;
  let hi: i32 = -1;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let v: i32 = -1;
    if (c >= 48 && c <= 57) v = c - 48;
    else if (c >= 97 && c <= 102) v = c - 87;
    else if (c >= 65 && c <= 70) v = c - 55;
    if (v < 0) continue;
    if (hi < 0) hi = v;
    else { store<u8>(p + n, <u8>((hi << 4) | v)); n++; hi = -1; }
  }
  return n;
}

/** Lowercase hex of len bytes at p. */
export function hexRead(p: usize, len: u32): string {
  const digits = "0123456789abcdef";
  let s = "";
  for (let i: u32 = 0; i < len; i++) {
    const b = <i32>load<u8>(p + i);
    s += digits.charAt(b >> 4) + digits.charAt(b & 15);
  }
  return s;
}

/** A bit-at-a-time CRC-32 (the slow reference). */
export function crcBitwise(p: usize, len: u32, prev: u32): u32 {
  let c = ~prev;
  for (let i: u32 = 0; i < len; i++) {
    c ^= <u32>load<u8>(p + i);
    for (let k = 0; k < 8; k++) c = (c & 1) ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ~c;
}
