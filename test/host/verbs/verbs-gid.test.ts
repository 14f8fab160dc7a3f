import { describe, expect, it } from "vitest";
import { formatGid, parseGid } from "../../../host/core/verbs/index.js";

describe("GID text <-> bytes", () => {
  it("parses IPv6 and IPv4-mapped forms", () => {
    expect([...parseGid("::ffff:10.0.0.1")]).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1]);
    expect([...parseGid("fe80::1")]).toEqual([0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    expect([...parseGid("1:2:3:4:5:6:7:8")]).toEqual([0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8]);
    expect([...parseGid("::")]).toEqual(new Array(16).fill(0));
  });
  it("formats canonically (longest zero run as ::, IPv4-mapped dotted)", () => {
    for (const s of ["::ffff:10.0.0.1", "fe80::1", "1:2:3:4:5:6:7:8", "::", "fe80::211:22ff:fe33:4455", "1::2:0:0:3"]) {
      expect(formatGid(parseGid(s))).toBe(s);
    }
  });
  it("rejects malformed text and wrong byte lengths", () => {
    for (const s of ["1:2:3", "fe80:::1", "1::2::3", "g::1", "::ffff:300.0.0.1", "1:2:3:4:5:6:7:8:9", ".1.2.3.4"]) {
      expect(() => parseGid(s), s).toThrow(RangeError);
    }
    expect(() => parseGid(new Uint8Array(15))).toThrow(RangeError);
  });
});
