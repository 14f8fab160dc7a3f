// RFC 6455 §5.3 masking for the Node tunnel's WebSocket client (ws-client.ts): dst = src XOR the
// 4-byte key repeated. In JS a 64 KiB message costs tens of µs (a XOR per 32-bit word); a tiny wasm
// module with one SIMD loop (16 bytes per step) does it in a few µs, through a scratch memory of its
// own (copy in, XOR in place, copy out: copies run at memcpy speed). The module is built here, byte
// by byte, from the instructions below (no file, no build step); where wasm SIMD is missing, the JS
// loop runs.
import { wasmEncode } from "../core/wasm/index.js";

/** Bytes masked per call into the wasm scratch (a multiple of 16, so the key's phase carries over). */
const CHUNK = 256 * 1024;
/** Below this the JS loop is as quick as the two copies. */
const WASM_MIN = 512;

const { uleb, name, section } = wasmEncode;

/**
 * (module (memory (export "mem") PAGES)
 *   (func (export "mask") (param $p i32) (param $n i32) (param $k i32) (local $v v128) (local $end i32)
 *     (local.set $v (i32x4.splat (local.get $k)))
 *     (local.set $end (i32.add (local.get $p) (local.get $n)))
 *     (block (loop
 *       (br_if 1 (i32.ge_u (local.get $p) (local.get $end)))
 *       (v128.store (local.get $p) (v128.xor (v128.load (local.get $p)) (local.get $v)))
 *       (local.set $p (i32.add (local.get $p) (i32.const 16)))
 *       (br 0)))))
 * $n is rounded up to 16 by the loop: the scratch has room past the data, and only $n bytes are copied out.
 */
function maskModule(): Uint8Array<ArrayBuffer> {
  const pages = (CHUNK + 65535 + 16) >>> 16;
  const SIMD = 0xfd;
  const body = [
    2, 1, 0x7b, 1, 0x7f, // locals: one v128 ($v = 3), one i32 ($end = 4)
    0x20, 2, SIMD, ...uleb(0x11), 0x21, 3, // $v = i32x4.splat($k)
    0x20, 0, 0x20, 1, 0x6a, 0x21, 4, // $end = $p + $n
    0x02, 0x40, 0x03, 0x40, // block, loop
    0x20, 0, 0x20, 4, 0x4f, 0x0d, 1, // br_if 1 ($p >= $end)
    0x20, 0, 0x20, 0, SIMD, ...uleb(0x00), 4, 0, 0x20, 3, SIMD, ...uleb(0x51), SIMD, ...uleb(0x0b), 4, 0, // store($p, load($p) ^ $v)
    0x20, 0, 0x41, 16, 0x6a, 0x21, 0, // $p += 16
    0x0c, 0, 0x0b, 0x0b, 0x0b, // br 0, end loop, end block, end func
  ];
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
    ...section(1, [1, 0x60, 3, 0x7f, 0x7f, 0x7f, 0]), // type: (i32, i32, i32) -> ()
    ...section(3, [1, 0]), // one function of type 0
    ...section(5, [1, 0, ...uleb(pages)]), // memory, min `pages`
    ...section(7, [2, ...name("mask"), 0, 0, ...name("mem"), 2, 0]),
    ...section(10, [1, ...uleb(body.length), ...body]),
  ]);
}

interface Simd {
  mask(p: number, n: number, k: number): void;
  u8: Uint8Array;
}
let simd: Simd | null | undefined;
function loadSimd(): Simd | null {
  try {
    const bytes = maskModule();
    if (!WebAssembly.validate(bytes)) return null;
    const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes));
    const e = inst.exports as { mask: Simd["mask"]; mem: WebAssembly.Memory };
    return { mask: e.mask, u8: new Uint8Array(e.mem.buffer) }; // the memory never grows: the view stays valid
  } catch {
    return null;
  }
}

/** Whether masking runs in wasm SIMD here (else the JS loop). */
export function wsMaskSimd(): boolean {
  return (simd ??= loadSimd()) !== null;
}

/** The key's bytes k0..k3 as the little-endian 32-bit word that repeats them. */
export function maskKeyWord(k0: number, k1: number, k2: number, k3: number): number {
  return (k0 | (k1 << 8) | (k2 << 16) | (k3 << 24)) >>> 0;
}

/** The JS loop: dst[at + i] = src[i] ^ key byte (i & 3). */
export function maskJs(dst: Uint8Array, at: number, src: Uint8Array, key: number): void {
  const k0 = key & 0xff, k1 = (key >>> 8) & 0xff, k2 = (key >>> 16) & 0xff, k3 = key >>> 24;
  const n = src.length;
  let i = 0;
  for (; i + 3 < n; i += 4) {
    dst[at + i] = src[i]! ^ k0;
    dst[at + i + 1] = src[i + 1]! ^ k1;
    dst[at + i + 2] = src[i + 2]! ^ k2;
    dst[at + i + 3] = src[i + 3]! ^ k3;
  }
  for (; i < n; i++) dst[at + i] = src[i]! ^ ((i & 3) === 0 ? k0 : (i & 3) === 1 ? k1 : k2);
}

/** dst[at..] = src masked with `key` (maskKeyWord's word); wasm SIMD for long ones where it runs. */
export function maskInto(dst: Uint8Array, at: number, src: Uint8Array, key: number, useSimd = true): void {
  const s = useSimd && src.length >= WASM_MIN ? (simd ??= loadSimd()) : null;
  if (!s) return maskJs(dst, at, src, key);
  for (let off = 0; off < src.length; off += CHUNK) {
    const n = Math.min(CHUNK, src.length - off);
    s.u8.set(src.subarray(off, off + n), 0);
    s.mask(0, n, key | 0);
    dst.set(s.u8.subarray(0, n), at + off);
  }
}
