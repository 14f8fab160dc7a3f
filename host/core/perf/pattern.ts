// The verification pattern: message `seq` of QP `qp` under `seed` starts with
// its sequence number (u32, little-endian) and continues with an arithmetic
// progression of u32 words whose start and step are hashed from (seed, qp,
// seq), so a byte from another message, another offset or another QP differs.
// Cheap to generate and to check (one add per word).

function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

export interface PatternKey {
  seed: number;
  qp: number;
  seq: number;
}

function start(k: PatternKey): number {
  return mix32((k.seed ^ mix32(k.qp * 0x9e3779b9 + 0x632be5ab)) + Math.imul(k.seq, 0x85ebca6b));
}

/** The word at word index i (i >= 1) of message k. */
function params(k: PatternKey): [number, number] {
  const a = start(k);
  return [a, (mix32(a ^ 0x5bd1e995) | 1) >>> 0];
}

/** Writes message k into `buf` (any length; bytes past the last whole word follow the same words). */
export function fillPattern(buf: Uint8Array, k: PatternKey): void {
  const n = buf.length;
  if (n === 0) return;
  const [a, step] = params(k);
  let w = a;
  let i = 0;
  // word 0: the sequence number
  const head = k.seq >>> 0;
  for (; i < Math.min(4, n); i++) buf[i] = (head >>> (8 * i)) & 0xff;
  if (n <= 4) return;
  const aligned = (buf.byteOffset & 3) === 0;
  const words = n >>> 2;
  if (aligned) {
    const u32 = new Uint32Array(buf.buffer, buf.byteOffset, words);
    for (let j = 1; j < words; j++) {
      u32[j] = w;
      w = (w + step) >>> 0;
    }
  } else {
    for (let j = 1; j < words; j++) {
      const o = 4 * j;
      buf[o] = w & 0xff;
      buf[o + 1] = (w >>> 8) & 0xff;
      buf[o + 2] = (w >>> 16) & 0xff;
      buf[o + 3] = w >>> 24;
      w = (w + step) >>> 0;
    }
  }
  for (i = 4 * words; i < n; i++) buf[i] = (w >>> (8 * (i & 3))) & 0xff;
}

/** Index of the first byte of `buf` that differs from message k, or -1 when all match. */
export function checkPattern(buf: Uint8Array, k: PatternKey): number {
  const n = buf.length;
  if (n === 0) return -1;
  const head = k.seq >>> 0;
  for (let i = 0; i < Math.min(4, n); i++) if (buf[i] !== ((head >>> (8 * i)) & 0xff)) return i;
  if (n <= 4) return -1;
  const [a, step] = params(k);
  let w = a;
  const words = n >>> 2;
  if ((buf.byteOffset & 3) === 0) {
    const u32 = new Uint32Array(buf.buffer, buf.byteOffset, words);
    for (let j = 1; j < words; j++) {
      if (u32[j] !== w) return firstDiff(buf, 4 * j, w);
      w = (w + step) >>> 0;
    }
  } else {
    for (let j = 1; j < words; j++) {
      const o = 4 * j;
      const v = (buf[o]! | (buf[o + 1]! << 8) | (buf[o + 2]! << 16) | (buf[o + 3]! << 24)) >>> 0;
      if (v !== w) return firstDiff(buf, o, w);
      w = (w + step) >>> 0;
    }
  }
  for (let i = 4 * words; i < n; i++) if (buf[i] !== ((w >>> (8 * (i & 3))) & 0xff)) return i;
  return -1;
}

function firstDiff(buf: Uint8Array, o: number, w: number): number {
  for (let b = 0; b < 4; b++) if (buf[o + b] !== ((w >>> (8 * b)) & 0xff)) return o + b;
  return o;
}

/** The sequence number a message of at least 4 bytes carries. */
export function patternSeq(buf: Uint8Array): number {
  return (buf[0]! | (buf[1]! << 8) | (buf[2]! << 16) | (buf[3]! << 24)) >>> 0;
}

/** 64-bit operand for atomic op `seq` (FETCH_ADD adds it; CMP_SWAP chains values). */
export function atomicOperand(seed: number, qp: number, seq: number): bigint {
  const hi = mix32(seed ^ mix32(qp + 0x1234567) ^ Math.imul(seq, 0x27d4eb2d));
  const lo = mix32(hi ^ 0x165667b1 ^ seq);
  return (BigInt(hi) << 32n) | BigInt(lo);
}
