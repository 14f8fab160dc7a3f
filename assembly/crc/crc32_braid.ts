// CRC-32 over 64-byte blocks with wasm SIMD: 16 interleaved ("braided") CRC streams, one per
// byte lane of four v128 registers ("planes"), advanced a whole block at a time with 4-bit
// tables and i8x16.swizzle. Only compiled with --enable simd.
//
// The layout is chosen so that each plane is one two-input shuffle of the block's loads:
// plane k takes dwords {0, 2} (k even) or {1, 3} (k odd) of loads 2(k >> 1) and 2(k >> 1) + 1
// (a single `shufps` on x64). Lane l = 4q + b then holds the bytes at block offsets
// base(l) + d(k), base(l) = 8q + b, d = {0, 4, 32, 36}. A byte-transposed layout (lane = one
// 4-byte word, d = {0, 1, 2, 3}) needs twelve shuffles a block to build; this one needs four.
//
// Why it works: the CRC is linear. Let A be the CRC's one-byte step (r -> r >> 8 ^ T0[r & 0xff])
// and e(b) a byte b in the register's low byte. A byte at offset o of a block, with the CRC
// taken at offset N, contributes A^(N - o) e(b). A lane's four planes S_0..S_3 therefore stand
// for the register value Q(S) = sum_k A^(36 - d(k)) e(S_k), "its bytes, taken at the lane's
// base + 36". One block later that is A^64 Q(S ^ x) for the block's bytes x, so the planes move
// by Z = Q^-1 A^64 Q, a fixed 32x32 bit matrix that braid_init works out. Q must be invertible:
// that holds for d = {0, 4, 32, 36} and not for every layout (the loads themselves, d = {0, 16,
// 32, 48}, span 31 bits; braid_init traps if a layout does not). Z is applied as 32 swizzles
// (8 nibbles in, 4 bytes out), exactly as a plain byte transpose would need.
//
// The register coming in is xored into the first four bytes (lanes 0..3 of plane 0: offsets
// 0..3), which is what a CRC does with it. The last block is not advanced: its planes xored with
// its bytes go back into block order (the inverse shuffles), and the scalar CRC of those 64
// bytes from register 0 is the register after the run, every byte at its own offset.

/** Blocks below this many bytes are not worth the set-up: the scalar path takes them. */
export const BRAID_MIN: u32 = 256;
const BLOCK: u32 = 64;
/** The offset of plane k in a lane, d(k) = D_LOW * (k & 1) + D_HIGH * (k >> 1); D_TOP = d(3). */
const D_LOW: u32 = 4, D_HIGH: u32 = 32, D_TOP: u32 = D_LOW + D_HIGH;

// ZT[k][h][o]: 16 bytes; byte n = byte o of Z(n << (8k + 4h)).
const ZT = memory.data(4 * 2 * 4 * 16, 16);
/** The last block's planes, back in block order, for the scalar CRC (braid_raw's result). */
const RESIDUE = memory.data(BLOCK, 16);
/** Rows of Q^-1 (row r: the bits whose parity is bit r of Q^-1 v). */
const QINV = memory.data(32 * 4, 16);
/** braid_init's elimination: 32 rows of [Q | I], two words each. */
const ROWS = memory.data(32 * 8, 8);
/** braid_init: Z's 32 columns, Z(e_c) = Q^-1 A^64 Q e_c. */
const ZCOLS = memory.data(32 * 4, 4);

/** The CRC's one-byte step, `n` times; `t0` the one-byte table. */
function step(r: u32, n: u32, t0: usize): u32 {
  for (let i: u32 = 0; i < n; i++) r = (r >>> 8) ^ load<u32>(t0 + ((r & 0xff) << 2));
  return r;
}

/** Column c = 8k + i of Q: A^(D_TOP - d(k)) e(1 << i). */
function q_column(c: u32, t0: usize): u32 {
  const k = c >>> 3;
  return step(1 << (c & 7), D_TOP - D_LOW * (k & 1) - D_HIGH * (k >>> 1), t0);
}

/** Q^-1 v, bit r the parity of row r of QINV and v. */
function q_solve(v: u32): u32 {
  let y: u32 = 0;
  for (let r: u32 = 0; r < 32; r++) y |= (popcnt<u32>(load<u32>(QINV + (r << 2)) & v) & 1) << r;
  return y;
}

/** Fills Q^-1 and the nibble tables of Z; `t0` points at the one-byte table T0 of the scalar CRC. */
export function braid_init(t0: usize): void {
  // Gauss-Jordan on [Q | I], 32 rows kept as (Q row, I row) word pairs.
  const rows = ROWS;
  for (let r: u32 = 0; r < 32; r++) {
    store<u32>(rows + (r << 3), 0);
    store<u32>(rows + (r << 3) + 4, 1 << r);
  }
  for (let c: u32 = 0; c < 32; c++) {
    const col = q_column(c, t0);
    for (let r: u32 = 0; r < 32; r++) store<u32>(rows + (r << 3), load<u32>(rows + (r << 3)) | (((col >>> r) & 1) << c));
  }
  for (let c: u32 = 0; c < 32; c++) {
    let piv: u32 = c;
    while (piv < 32 && ((load<u32>(rows + (piv << 3)) >>> c) & 1) == 0) piv++;
    if (piv == 32) unreachable(); // Q singular: the layout cannot carry a CRC-32 register
    const pq = load<u32>(rows + (piv << 3)), pi = load<u32>(rows + (piv << 3) + 4);
    store<u32>(rows + (piv << 3), load<u32>(rows + (c << 3)));
    store<u32>(rows + (piv << 3) + 4, load<u32>(rows + (c << 3) + 4));
    store<u32>(rows + (c << 3), pq);
    store<u32>(rows + (c << 3) + 4, pi);
    for (let r: u32 = 0; r < 32; r++) {
      if (r != c && ((load<u32>(rows + (r << 3)) >>> c) & 1) != 0) {
        store<u32>(rows + (r << 3), load<u32>(rows + (r << 3)) ^ pq);
        store<u32>(rows + (r << 3) + 4, load<u32>(rows + (r << 3) + 4) ^ pi);
      }
    }
  }
  // Row r of the right half is row r of Q^-1: bit j says register bit j feeds plane bit r.
  for (let r: u32 = 0; r < 32; r++) store<u32>(QINV + (r << 2), load<u32>(rows + (r << 3) + 4));
  // Z(e_c) = Q^-1 A^64 Q e_c, once per column; the tables sum those columns over each nibble's bits.
  for (let c: u32 = 0; c < 32; c++) store<u32>(ZCOLS + (c << 2), q_solve(step(q_column(c, t0), BLOCK, t0)));
  for (let k: u32 = 0; k < 4; k++) {
    for (let h: u32 = 0; h < 2; h++) {
      for (let n: u32 = 0; n < 16; n++) {
        let z: u32 = 0;
        for (let i: u32 = 0; i < 4; i++) {
          if ((n >>> i) & 1) z ^= load<u32>(ZCOLS + ((8 * k + 4 * h + i) << 2));
        }
        for (let o: u32 = 0; o < 4; o++) store<u8>(ZT + (((k * 2 + h) * 4 + o) << 4) + n, <u8>(z >>> (8 * o)));
      }
    }
  }
}

@inline function zt(k: u32, h: u32, o: u32): v128 { return v128.load(ZT + (((k * 2 + h) * 4 + o) << 4)); }

/** One output byte-plane: sum over the 4 input byte-planes and both nibbles of its Z tables. */
@inline function plane(a0: v128, b0: v128, a1: v128, b1: v128, a2: v128, b2: v128, a3: v128, b3: v128,
                       l0: v128, h0: v128, l1: v128, h1: v128, l2: v128, h2: v128, l3: v128, h3: v128): v128 {
  return v128.xor(
    v128.xor(v128.xor(i8x16.swizzle(a0, l0), i8x16.swizzle(b0, h0)),
             v128.xor(i8x16.swizzle(a1, l1), i8x16.swizzle(b1, h1))),
    v128.xor(v128.xor(i8x16.swizzle(a2, l2), i8x16.swizzle(b2, h2)),
             v128.xor(i8x16.swizzle(a3, l3), i8x16.swizzle(b3, h3))));
}

// plane k of a block: dwords {0, 2} / {1, 3} of two loads (see the top)
@inline function even(a: v128, b: v128): v128 {
  return i8x16.shuffle(a, b, 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27);
}
@inline function odd(a: v128, b: v128): v128 {
  return i8x16.shuffle(a, b, 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
}

/**
 * Takes raw register r over the first (len / 64) * 64 bytes at p (len >= 128) up to the last of
 * those blocks, and leaves that block's residue in RESIDUE: the register after the run is the
 * raw CRC of RESIDUE's 64 bytes from register 0.
 */
export function braid_raw(r: u32, p: usize, len: u32): usize {
  const blocks = len / BLOCK - 1; // the last block is not advanced
  let s0 = i32x4.replace_lane(i32x4.splat(0), 0, r);
  let s1 = i32x4.splat(0), s2 = i32x4.splat(0), s3 = i32x4.splat(0);
  const m4 = i8x16.splat(0x0f);
  // The tables as locals: V8 keeps them in stack slots and reloads each right where a swizzle
  // uses it. Loaded inside the loop they are memory loads, which V8 keeps in program order and
  // issues early; about a third were then spilled to the stack and reloaded (measured at 4 KiB:
  // 0.98x node:zlib that way, 1.11x this way; docs/PERFORMANCE.md).
  const t00 = zt(0, 0, 0), t01 = zt(0, 1, 0), t02 = zt(1, 0, 0), t03 = zt(1, 1, 0);
  const t04 = zt(2, 0, 0), t05 = zt(2, 1, 0), t06 = zt(3, 0, 0), t07 = zt(3, 1, 0);
  const t10 = zt(0, 0, 1), t11 = zt(0, 1, 1), t12 = zt(1, 0, 1), t13 = zt(1, 1, 1);
  const t14 = zt(2, 0, 1), t15 = zt(2, 1, 1), t16 = zt(3, 0, 1), t17 = zt(3, 1, 1);
  const t20 = zt(0, 0, 2), t21 = zt(0, 1, 2), t22 = zt(1, 0, 2), t23 = zt(1, 1, 2);
  const t24 = zt(2, 0, 2), t25 = zt(2, 1, 2), t26 = zt(3, 0, 2), t27 = zt(3, 1, 2);
  const t30 = zt(0, 0, 3), t31 = zt(0, 1, 3), t32 = zt(1, 0, 3), t33 = zt(1, 1, 3);
  const t34 = zt(2, 0, 3), t35 = zt(2, 1, 3), t36 = zt(3, 0, 3), t37 = zt(3, 1, 3);
  for (let i: u32 = 0; i < blocks; i++) {
    const a = v128.load(p), b = v128.load(p, 16), c = v128.load(p, 32), d = v128.load(p, 48);
    const x0 = v128.xor(s0, even(a, b)), x1 = v128.xor(s1, odd(a, b));
    const x2 = v128.xor(s2, even(c, d)), x3 = v128.xor(s3, odd(c, d));
    // High nibbles via a 16-bit shift + the hoisted mask: x64 has no byte shift, and this
    // measured a few per cent faster than i8x16.shr_u under V8 11.3.
    const l0 = v128.and(x0, m4), h0 = v128.and(i16x8.shr_u(x0, 4), m4);
    const l1 = v128.and(x1, m4), h1 = v128.and(i16x8.shr_u(x1, 4), m4);
    const l2 = v128.and(x2, m4), h2 = v128.and(i16x8.shr_u(x2, 4), m4);
    const l3 = v128.and(x3, m4), h3 = v128.and(i16x8.shr_u(x3, 4), m4);
    s0 = plane(t00, t01, t02, t03, t04, t05, t06, t07, l0, h0, l1, h1, l2, h2, l3, h3);
    s1 = plane(t10, t11, t12, t13, t14, t15, t16, t17, l0, h0, l1, h1, l2, h2, l3, h3);
    s2 = plane(t20, t21, t22, t23, t24, t25, t26, t27, l0, h0, l1, h1, l2, h2, l3, h3);
    s3 = plane(t30, t31, t32, t33, t34, t35, t36, t37, l0, h0, l1, h1, l2, h2, l3, h3);
    p += BLOCK;
  }
  const a = v128.load(p), b = v128.load(p, 16), c = v128.load(p, 32), d = v128.load(p, 48);
  const u0 = v128.xor(s0, even(a, b)), u1 = v128.xor(s1, odd(a, b));
  const u2 = v128.xor(s2, even(c, d)), u3 = v128.xor(s3, odd(c, d));
  // back to block order: load j's dwords alternate between an even and an odd plane
  v128.store(RESIDUE, v128.shuffle<u32>(u0, u1, 0, 4, 1, 5));
  v128.store(RESIDUE, v128.shuffle<u32>(u0, u1, 2, 6, 3, 7), 16);
  v128.store(RESIDUE, v128.shuffle<u32>(u2, u3, 0, 4, 1, 5), 32);
  v128.store(RESIDUE, v128.shuffle<u32>(u2, u3, 2, 6, 3, 7), 48);
  return RESIDUE;
}
