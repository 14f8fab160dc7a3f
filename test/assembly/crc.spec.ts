import { crcBitwise } from "./wire-hex.include";
import { crc32_update, crc32_raw } from "../../assembly/crc/crc32";
import { crc32 } from "../../assembly/crc/exports";

const BUF = heap.alloc(4096 + 64);

function fill(p: usize, n: u32, seed: u32): void {
  let x = seed;
  for (let i: u32 = 0; i < n; i++) {
    x = x * 1103515245 + 12345;
    store<u8>(p + i, <u8>(x >>> 16));
  }
}

describe("CRC-32", () => {
  it("known values", () => {
    const s = "123456789";
    for (let i = 0; i < s.length; i++) store<u8>(BUF + <usize>i, <u8>s.charCodeAt(i));
    expect(crc32(BUF, 9, 0)).toBe(0xcbf43926);
    expect(crc32(BUF, 0, 0)).toBe(0);
    expect(crc32(BUF, 0, 0x12345678)).toBe(0x12345678);
    store<u8>(BUF, 0);
    expect(crc32(BUF, 1, 0)).toBe(0xd202ef8d);
    store<u8>(BUF, 0x61); // "a"
    expect(crc32(BUF, 1, 0)).toBe(0xe8b7be43);
  });
  it("is built with wasm SIMD, so the braid path is the one under test", () => {
    expect(ASC_FEATURE_SIMD).toBe(true);
  });
  it("8 bytes of 0xFF leave rxe's ICRC seed in the register", () => {
    memory.fill(BUF, 0xff, 8);
    expect(crc32_raw(0xffffffff, BUF, 8)).toBe(0xdebb20e3);
  });
  it("matches a bitwise reference at every alignment and length 0..100", () => {
    fill(BUF, 256, 7);
    for (let start: u32 = 0; start < 16; start++) {
      for (let len: u32 = 0; len <= 100; len++) {
        expect(crc32_update(0, BUF + start, len)).toBe(crcBitwise(BUF + start, len, 0));
      }
    }
  });
  it("matches the reference across the SIMD braid's thresholds (lengths 250..400, 1000, 1024)", () => {
    fill(BUF, 1100, 5);
    for (let start: u32 = 0; start < 4; start++) {
      for (let len: u32 = 250; len <= 400; len++) {
        expect(crc32_update(len, BUF + start, len)).toBe(crcBitwise(BUF + start, len, len));
      }
      expect(crc32_update(0, BUF + start, 1000)).toBe(crcBitwise(BUF + start, 1000, 0));
      expect(crc32_update(0, BUF + start, 1024)).toBe(crcBitwise(BUF + start, 1024, 0));
    }
  });
  it("matches the reference on 4 KiB and chains like zlib", () => {
    fill(BUF, 4096 + 64, 99);
    for (let start: u32 = 0; start < 4; start++) {
      const whole = crc32_update(0, BUF + start, 4096);
      expect(whole).toBe(crcBitwise(BUF + start, 4096, 0));
      const half = crc32_update(0, BUF + start, 1001);
      expect(crc32_update(half, BUF + start + 1001, 4096 - 1001)).toBe(whole);
    }
  });
});
