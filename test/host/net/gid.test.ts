import { describe, expect, it } from "vitest";
import { addressGid, addressGidBytes, formatGid, GidCache, gidToAddress, isV4MappedGid, parseGid } from "../../../host/core/net/index.js";
import { formatGid as verbsFormatGid, parseGid as verbsParseGid } from "../../../host/core/verbs/index.js";

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
  it("the verbs API hands out the same functions", () => {
    expect(verbsParseGid).toBe(parseGid);
    expect(verbsFormatGid).toBe(formatGid);
  });
});

describe("IPv4-mapped GIDs and link addresses", () => {
  const mapped = Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1]);
  it("addressGid maps a dotted quad and leaves IPv6 text alone", () => {
    expect(addressGid("10.0.0.1")).toBe("::ffff:10.0.0.1");
    expect(addressGid("fd00::2")).toBe("fd00::2");
  });
  it("addressGidBytes gives 16 bytes for either family and undefined for anything else", () => {
    expect(addressGidBytes("10.0.0.1")).toEqual(mapped);
    expect([...addressGidBytes("fe80::1")!]).toEqual([0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    for (const bad of ["", "10.0.0", "10.0.0.256", "host", "1::2::3"]) expect(addressGidBytes(bad), bad).toBeUndefined();
  });
  it("gidToAddress gives the dotted quad for IPv4-mapped GIDs (at an offset too) and IPv6 text otherwise", () => {
    expect(gidToAddress(mapped)).toBe("10.0.0.1");
    const framed = new Uint8Array(20);
    framed.set(mapped, 4);
    expect(gidToAddress(framed, 4)).toBe("10.0.0.1");
    expect(gidToAddress(parseGid("fe80::1"))).toBe("fe80::1");
    // ::ffff:0:0/96 only: a GID with a nonzero byte before the ffff is IPv6
    const almost = mapped.slice();
    almost[9] = 1;
    expect(isV4MappedGid(almost)).toBe(false);
    expect(gidToAddress(almost)).toBe("::1:ffff:a00:1");
    expect(isV4MappedGid(mapped)).toBe(true);
  });
});


describe("GidCache (the receive paths' address -> GID bytes)", () => {
  it("gives parseGid(addressGid(a)) for IPv4, IPv6 and GID text, parsed once per address", () => {
    const c = new GidCache();
    for (const a of ["10.0.0.1", "::ffff:10.0.0.1", "fe80::1", "2001:db8::7"]) {
      const g = c.of(a);
      expect([...g]).toEqual([...parseGid(addressGid(a))]);
      expect(c.of(a)).toBe(g); // the same bytes, not parsed again
    }
  });
  it("stays bounded: a spray of sources empties it instead of growing it", () => {
    const c = new GidCache();
    const first = c.of("10.9.0.0");
    for (let i = 1; i <= 4096; i++) c.of(`10.9.${i >> 8}.${i & 0xff}`);
    expect(c.of("10.9.0.0")).toBe(first); // 4097 addresses: still held
    c.of("10.10.0.1"); // one more: cleared, then kept
    const again = c.of("10.9.0.0");
    expect(again).not.toBe(first);
    expect([...again]).toEqual([...first]);
  });
});
