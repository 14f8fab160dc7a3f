import { describe, expect, it } from "vitest";
import { concat, copyPieces } from "../../../host/core/net/bytes.js";

describe("joining byte pieces", () => {
  it("concat puts the pieces one after another in a new buffer", () => {
    const a = Uint8Array.from([1, 2]);
    const b = new Uint8Array(0);
    const c = Uint8Array.from([3, 4, 5]);
    const out = concat([a, b, c]);
    expect([...out]).toEqual([1, 2, 3, 4, 5]);
    out[0] = 9;
    expect(a[0]).toBe(1);
    expect(concat([]).length).toBe(0);
  });
  it("copyPieces writes at an offset and returns where it ended", () => {
    const out = new Uint8Array(8);
    const end = copyPieces(out, 2, [Uint8Array.from([7]), Uint8Array.from([8, 9])]);
    expect(end).toBe(5);
    expect([...out]).toEqual([0, 0, 7, 8, 9, 0, 0, 0]);
  });
});
