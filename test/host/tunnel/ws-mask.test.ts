// RFC 6455 masking for the Node tunnel's WebSocket client (host/node/ws-mask.ts): the wasm SIMD path
// (built in the module, byte by byte) and the JS loop give exactly the reference XOR, for every length
// around the SIMD step, the switch-over and the scratch's chunk, at any destination offset.
import { describe, expect, it } from "vitest";
import { maskInto, maskJs, maskKeyWord, wsMaskSimd } from "../../../host/node/ws-mask.js";
import { Prng } from "../../../host/core/sim/prng.js";

function reference(src: Uint8Array, key: number[]): Uint8Array {
  return src.map((b, i) => b ^ key[i & 3]!);
}

describe("ws-mask", () => {
  it("the wasm SIMD module validates and runs on this Node", () => {
    expect(wsMaskSimd()).toBe(true);
  });

  it("maskInto (SIMD and JS) equals the reference XOR: lengths 0..600 and around 256 KiB, any offset, bytes around the result untouched", () => {
    const rng = new Prng(0x5e11);
    const lengths = [...Array.from({ length: 601 }, (_, i) => i), 4095, 4096, 65536, 65560, 262143, 262144, 262145, 300001];
    for (const len of lengths) {
      const key = [rng.below(256), rng.below(256), rng.below(256), rng.below(256)];
      const src = Uint8Array.from({ length: len }, () => rng.below(256));
      const want = reference(src, key);
      const at = rng.below(20);
      for (const useSimd of [true, false]) {
        const dst = new Uint8Array(len + at + 8).fill(0xee);
        maskInto(dst, at, src, maskKeyWord(key[0]!, key[1]!, key[2]!, key[3]!), useSimd);
        expect(Buffer.compare(dst.subarray(at, at + len), want), `len ${len} simd ${useSimd}`).toBe(0);
        expect(dst.subarray(0, at).every((b) => b === 0xee) && dst.subarray(at + len).every((b) => b === 0xee), `len ${len}`).toBe(true);
      }
      const dst = new Uint8Array(len);
      maskJs(dst, 0, src, maskKeyWord(key[0]!, key[1]!, key[2]!, key[3]!));
      expect(Buffer.compare(dst, want)).toBe(0);
    }
  });

  it("masking twice with the same key gives the bytes back (an all-zero key changes nothing)", () => {
    const src = Uint8Array.from({ length: 70000 }, (_, i) => (i * 13) & 0xff);
    const once = new Uint8Array(src.length), twice = new Uint8Array(src.length);
    maskInto(once, 0, src, 0xdeadbeef);
    expect(Buffer.compare(once, src)).not.toBe(0);
    maskInto(twice, 0, once, 0xdeadbeef);
    expect(Buffer.compare(twice, src)).toBe(0);
    maskInto(twice, 0, src, 0);
    expect(Buffer.compare(twice, src)).toBe(0);
  });
});
