// The hash table's layout in the server's registered memory region, shared by the server
// (which writes it) and the client (which reads it with RDMA READ). Fixed-size slots,
// linear probing within a window of PROBE slots that one READ fetches.
//
// slot (256 bytes):  0 u32 version (odd while the server writes: a seqlock)
//                    4 u16 key length (0: empty)   6 u16 value length
//                    8 key (48 bytes)  56 value (196 bytes)
//                  252 u32 checksum (FNV-1a of bytes 4..251)
export const SLOT = 256;
export const MAX_KEY = 48;
export const MAX_VALUE = 196;
export const PROBE = 4;
const KEY_OFF = 8;
const VAL_OFF = 56;
const SUM_OFF = 252;

const enc = new TextEncoder();
const dec = new TextDecoder();

export function fnv1a(bytes, start = 0, end = bytes.length) {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ bytes[i], 0x01000193) >>> 0;
  return h >>> 0;
}

/** The first slot of a key's probe window in a table of `buckets` slots. */
export function bucketOf(keyBytes, buckets) {
  return fnv1a(keyBytes) % buckets;
}

/** Table bytes for `buckets` (PROBE - 1 spare slots at the end, so a window never wraps). */
export function tableBytes(buckets) {
  return (buckets + PROBE - 1) * SLOT;
}

export function checkKeyValue(key, value) {
  const k = enc.encode(key);
  const v = value === undefined ? new Uint8Array(0) : enc.encode(value);
  if (k.length === 0 || k.length > MAX_KEY) throw new RangeError(`key must be 1..${MAX_KEY} bytes, got ${k.length}`);
  if (v.length > MAX_VALUE) throw new RangeError(`value must be at most ${MAX_VALUE} bytes, got ${v.length}`);
  return { k, v };
}

/**
 * Looks `keyBytes` up in a window of slots read from the table. Returns
 * { found: true, value } | { found: false } | { torn: true } (a slot being written: read again).
 */
export function findInWindow(win, keyBytes) {
  const dv = new DataView(win.buffer, win.byteOffset, win.byteLength);
  for (let s = 0; s + SLOT <= win.length; s += SLOT) {
    const version = dv.getUint32(s, true);
    const klen = dv.getUint16(s + 4, true);
    if (version & 1) return { torn: true };
    if (klen === 0) return { found: false }; // an empty slot ends the probe
    if (dv.getUint32(s + SUM_OFF, true) !== fnv1a(win, s + 4, s + SUM_OFF)) return { torn: true };
    if (klen !== keyBytes.length) continue;
    let same = true;
    for (let i = 0; i < klen && same; i++) same = win[s + KEY_OFF + i] === keyBytes[i];
    if (!same) continue;
    const vlen = dv.getUint16(s + 6, true);
    return { found: true, value: dec.decode(win.subarray(s + VAL_OFF, s + VAL_OFF + vlen)) };
  }
  return { found: false };
}

/** Writes key=value into the table (server side): false when the key's window is full. */
export function putInTable(table, buckets, k, v) {
  const dv = new DataView(table.buffer, table.byteOffset, table.byteLength);
  const first = bucketOf(k, buckets);
  for (let i = 0; i < PROBE; i++) {
    const s = (first + i) * SLOT;
    const klen = dv.getUint16(s + 4, true);
    let mine = klen === k.length;
    for (let j = 0; j < klen && mine; j++) mine = table[s + KEY_OFF + j] === k[j];
    if (klen !== 0 && !mine) continue;
    const version = dv.getUint32(s, true);
    dv.setUint32(s, (version + 1) >>> 0, true); // odd: being written
    table.fill(0, s + 4, s + SLOT);
    dv.setUint16(s + 4, k.length, true);
    dv.setUint16(s + 6, v.length, true);
    table.set(k, s + KEY_OFF);
    table.set(v, s + VAL_OFF);
    dv.setUint32(s + SUM_OFF, fnv1a(table, s + 4, s + SUM_OFF), true);
    dv.setUint32(s, (version + 2) >>> 0, true); // even again: stable
    return true;
  }
  return false;
}

// PUT request (SEND, client -> server): u8 op (1), u8 key length, u16 value length, u32 request id, key, value.
// Reply (SEND, server -> client): u8 status (0 stored, 1 table window full, 2 malformed), 3 pad, u32 request id.
export const PUT_HDR = 8;
export const PUT_MAX = PUT_HDR + MAX_KEY + MAX_VALUE;
export const REPLY_LEN = 8;
export const STATUS = { OK: 0, FULL: 1, MALFORMED: 2 };
