// The wasm binary format's pieces (host/core/wasm/encode.ts) against the spec's examples and edges,
// and a module built from them that the engine validates and runs.
import { describe, expect, it } from "vitest";
import { name, section, sleb, uleb } from "../../../host/core/wasm/encode.js";

describe("wasm encode", () => {
  it("unsigned LEB128: 0, 127, 128, 624485 (the usual example), 2^32 - 1", () => {
    expect([0, 127, 128, 624485, 0xffffffff].map(uleb)).toEqual([[0], [0x7f], [0x80, 0x01], [0xe5, 0x8e, 0x26], [0xff, 0xff, 0xff, 0xff, 0x0f]]);
  });

  it("signed LEB128: 0, 63, 64, -1, -64, -65, -123456, i32 min and max", () => {
    expect([0, 63, 64, -1, -64, -65, -123456, -0x80000000, 0x7fffffff].map(sleb)).toEqual([
      [0], [0x3f], [0xc0, 0x00], [0x7f], [0x40], [0xbf, 0x7f], [0xc0, 0xbb, 0x78], [0x80, 0x80, 0x80, 0x80, 0x78], [0xff, 0xff, 0xff, 0xff, 0x07],
    ]);
  });

  it("names are UTF-8 with their byte length; a section is id, length, body", () => {
    expect(name("mé")).toEqual([3, 0x6d, 0xc3, 0xa9]);
    expect(section(7, new Array(200).fill(1)).slice(0, 3)).toEqual([7, 0xc8, 0x01]);
  });

  it("a module made of them runs: f() returns an i32.const given in signed LEB128", async () => {
    for (const v of [0, -1, 1 << 20, -0x80000000]) {
      const body = [0, 0x41, ...sleb(v), 0x0b];
      const bytes = Uint8Array.from([
        0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
        ...section(1, [1, 0x60, 0, 1, 0x7f]),
        ...section(3, [1, 0]),
        ...section(7, [1, ...name("f"), 0, 0]),
        ...section(10, [1, ...uleb(body.length), ...body]),
      ]);
      const { instance } = await WebAssembly.instantiate(bytes);
      expect((instance.exports.f as () => number)()).toBe(v);
    }
  });
});
