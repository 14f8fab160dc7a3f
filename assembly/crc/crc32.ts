// zlib-compatible CRC-32 (reflected polynomial 0xEDB88320), slicing-by-16; with wasm SIMD
// enabled, runs of 256 bytes or more go through the 16-stream braid in crc32_braid.ts.
// T[k][b] is the CRC of byte b followed by k zero bytes, so sixteen input bytes fold into
// the state with sixteen independent table loads.
import { braid_init, braid_raw, BRAID_MIN } from "./crc32_braid";
export const CRC32_POLY: u32 = 0xedb88320;

const SLICES: u32 = 16;
const TABLES = memory.data(16 * 256 * 4, 64);

function build_tables(): void {
  for (let b: u32 = 0; b < 256; b++) {
    let c = b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (CRC32_POLY & (0 - (c & 1)));
    store<u32>(TABLES + (b << 2), c);
  }
  for (let k: u32 = 1; k < SLICES; k++) {
    for (let b: u32 = 0; b < 256; b++) {
      const prev = load<u32>(TABLES + ((k - 1) << 10) + (b << 2));
      store<u32>(TABLES + (k << 10) + (b << 2), (prev >>> 8) ^ load<u32>(TABLES + ((prev & 0xff) << 2)));
    }
  }
}
build_tables();
if (ASC_FEATURE_SIMD) braid_init(TABLES);

@inline function t(k: u32, b: u32): u32 { return load<u32>(TABLES + (k << 10) + (b << 2)); }

/** Advances a raw CRC register (no pre/post inversion) over len bytes at p. */
export function crc32_raw(crc: u32, p: usize, len: u32): u32 {
  let end = p + len;
  if (ASC_FEATURE_SIMD && len >= BRAID_MIN) {
    // the braid leaves one block whose CRC from 0 is the register after its run (64 < BRAID_MIN)
    crc = crc32_raw(0, braid_raw(crc, p, len), 64);
    p += <usize>(len & ~63);
  }
  // Bytes until p is 4-aligned, so the wide loop loads aligned words.
  while (p < end && (p & 3) != 0) {
    crc = (crc >>> 8) ^ t(0, (crc ^ load<u8>(p)) & 0xff);
    p++;
  }
  // Two 16-byte blocks per pass. Only the first word of a block depends on the running CRC;
  // the lookups of the other twelve bytes of both blocks are issued before that chain.
  while (end - p >= 32) {
    const b = load<u32>(p, 4);
    const c = load<u32>(p, 8);
    const d = load<u32>(p, 12);
    const f = load<u32>(p, 20);
    const g = load<u32>(p, 24);
    const h = load<u32>(p, 28);
    const rest1 = t(11, b & 0xff) ^ t(10, (b >>> 8) & 0xff) ^ t(9, (b >>> 16) & 0xff) ^ t(8, b >>> 24)
        ^ t(7, c & 0xff) ^ t(6, (c >>> 8) & 0xff) ^ t(5, (c >>> 16) & 0xff) ^ t(4, c >>> 24)
        ^ t(3, d & 0xff) ^ t(2, (d >>> 8) & 0xff) ^ t(1, (d >>> 16) & 0xff) ^ t(0, d >>> 24);
    const rest2 = t(11, f & 0xff) ^ t(10, (f >>> 8) & 0xff) ^ t(9, (f >>> 16) & 0xff) ^ t(8, f >>> 24)
        ^ t(7, g & 0xff) ^ t(6, (g >>> 8) & 0xff) ^ t(5, (g >>> 16) & 0xff) ^ t(4, g >>> 24)
        ^ t(3, h & 0xff) ^ t(2, (h >>> 8) & 0xff) ^ t(1, (h >>> 16) & 0xff) ^ t(0, h >>> 24);
    const a = load<u32>(p) ^ crc;
    crc = t(15, a & 0xff) ^ t(14, (a >>> 8) & 0xff) ^ t(13, (a >>> 16) & 0xff) ^ t(12, a >>> 24) ^ rest1;
    const e = load<u32>(p, 16) ^ crc;
    crc = t(15, e & 0xff) ^ t(14, (e >>> 8) & 0xff) ^ t(13, (e >>> 16) & 0xff) ^ t(12, e >>> 24) ^ rest2;
    p += 32;
  }
  if (end - p >= 16) {
    const a = load<u32>(p) ^ crc;
    const b = load<u32>(p, 4);
    const c = load<u32>(p, 8);
    const d = load<u32>(p, 12);
    crc = t(15, a & 0xff) ^ t(14, (a >>> 8) & 0xff) ^ t(13, (a >>> 16) & 0xff) ^ t(12, a >>> 24)
        ^ t(11, b & 0xff) ^ t(10, (b >>> 8) & 0xff) ^ t(9, (b >>> 16) & 0xff) ^ t(8, b >>> 24)
        ^ t(7, c & 0xff) ^ t(6, (c >>> 8) & 0xff) ^ t(5, (c >>> 16) & 0xff) ^ t(4, c >>> 24)
        ^ t(3, d & 0xff) ^ t(2, (d >>> 8) & 0xff) ^ t(1, (d >>> 16) & 0xff) ^ t(0, d >>> 24);
    p += 16;
  }
  while (end - p >= 4) {
    const a = load<u32>(p) ^ crc;
    crc = t(3, a & 0xff) ^ t(2, (a >>> 8) & 0xff) ^ t(1, (a >>> 16) & 0xff) ^ t(0, a >>> 24);
    p += 4;
  }
  while (p < end) {
    crc = (crc >>> 8) ^ t(0, (crc ^ load<u8>(p)) & 0xff);
    p++;
  }
  return crc;
}

/** zlib crc32(prev, data): continue a finished CRC `prev` over len bytes at p. */
export function crc32_update(prev: u32, p: usize, len: u32): u32 {
  return ~crc32_raw(~prev, p, len);
}
