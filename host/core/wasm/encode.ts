// The pieces of the wasm binary format that a module assembled byte by byte needs (the Node
// tunnel's SIMD mask, host/node/ws-mask.ts; the tests' stand-in cores): LEB128 numbers, names and
// sections (WebAssembly core spec, "Binary Format", 5.2.2 Integers, 5.2.4 Names, 5.5.2 Sections).

/** Unsigned LEB128 of a u32. */
export function uleb(n: number): number[] {
  const out: number[] = [];
  n >>>= 0;
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
}

/** Signed LEB128 of an i32 (an i32.const's immediate). */
export function sleb(n: number): number[] {
  const out: number[] = [];
  n |= 0;
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) return [...out, b];
    out.push(b | 0x80);
  }
}

/** A name: its UTF-8 length, then its bytes. */
export const name = (s: string): number[] => {
  const bytes = new TextEncoder().encode(s);
  return [...uleb(bytes.length), ...bytes];
};

/** Section `id` around `body`: the id, the body's length, the body. */
export const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
