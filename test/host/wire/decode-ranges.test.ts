// The decoder's byte ranges: for every field of every packet in the rxe captures, the bytes the
// range names must hold the value the record shows (read back independently here).
import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { decodePacket, type DecodedPacket } from "../../../host/core/wire/decode.js";
import { readCaptureAll } from "../../../host/core/capture/pcap.js";
import { WireCodec } from "../../../host/core/wire/codec.js";
import { coreModule } from "../../../host/node/wasm-source.js";

const FIX = new URL("../../fixtures/", import.meta.url);
const FILES = ["rc-rnr", "rc-read", "rc-atomic", "rc-write", "rc-send-v6", "uc-send", "ud-send", "ud-send-v6", "rc-seqerr"];

let codec: WireCodec;
beforeAll(async () => {
  codec = await WireCodec.create(await coreModule());
});

const be = (b: Uint8Array) => b.reduce((v, x) => v * 256 + x, 0);
const beBig = (b: Uint8Array) => b.reduce((v, x) => (v << 8n) | BigInt(x), 0n);

/** The value a field's bytes hold, the way the record writes it. */
function valueAt(name: string, bytes: Uint8Array, d: DecodedPacket): unknown {
  const r = d.record;
  switch (name) {
    case "ip.src":
    case "ip.dst":
      return Array.from(bytes).join(".");
    case "ip.version":
    case "ipv6.version":
      return bytes[0] >> 4;
    case "ip.flags":
      return bytes[0] >> 5;
    case "ip.flags.df":
      return (bytes[0] >> 6) & 1;
    case "ip.flags.mf":
      return (bytes[0] >> 5) & 1;
    case "ip.frag_offset":
      return be(bytes) & 0x1fff;
    case "ipv6.tclass":
      return (be(bytes) >> 4) & 0xff;
    case "ipv6.flow":
      return be(bytes) & 0xfffff;
    case "infiniband.bth.se":
      return bytes[0] >> 7;
    case "infiniband.bth.m":
      return (bytes[0] >> 6) & 1;
    case "infiniband.bth.padcnt":
      return (bytes[0] >> 4) & 3;
    case "infiniband.bth.tver":
      return bytes[0] & 15;
    case "infiniband.bth.fecn":
      return bytes[0] >> 7;
    case "infiniband.bth.becn":
      return (bytes[0] >> 6) & 1;
    case "infiniband.bth.resv6":
      return bytes[0] & 0x3f;
    case "infiniband.bth.a":
      return bytes[0] >> 7;
    case "infiniband.bth.reserved7":
      return bytes[0] & 0x7f;
    case "payload_len":
      return bytes.length;
    case "icrc":
      return "0x" + Array.from(bytes, (x) => x.toString(16).padStart(2, "0")).join("");
    case "infiniband.invariant.crc":
      return be(bytes) >>> 0;
  }
  const v = r[name];
  if (typeof v === "string" && v.startsWith("0x") && bytes.length === 8) return "0x" + beBig(bytes).toString(16).padStart(16, "0");
  return be(bytes);
}

// Fields whose value is derived rather than stored verbatim in their bytes.
const DERIVED = new Set(["opcode_name", "aeth_meaning", "icrc_expected", "icrc_ok", "ipv6.src", "ipv6.dst"]);

describe("decode: field byte ranges", () => {
  for (const file of FILES) {
    it(`every field of ${file}.pcap reads back from its range`, () => {
      const recs = readCaptureAll(new Uint8Array(readFileSync(new URL(`captures/${file}.pcap`, FIX))));
      let checked = 0;
      for (const rec of recs) {
        const pkt = rec.data!;
        const d = decodePacket(codec, pkt, { frame: rec.index });
        if (d.error) continue;
        const ranges = d.ranges!;
        expect(ranges, `frame ${rec.index}`).toBeDefined();
        for (const key of Object.keys(d.record)) {
          if (key.startsWith("frame.")) continue;
          expect(ranges[key], `frame ${rec.index}: ${key} has no range`).toBeDefined();
          const [s, e] = ranges[key];
          expect(s).toBeGreaterThanOrEqual(0);
          expect(e).toBeLessThanOrEqual(pkt.length);
          if (DERIVED.has(key)) continue;
          expect(valueAt(key, pkt.subarray(s, e), d), `frame ${rec.index}: ${key}`).toEqual(d.record[key]);
          checked++;
        }
        // header spans tile the packet: ip, udp, bth, extension headers, payload, pad, icrc
        const ip = ranges.ip ?? ranges.ipv6;
        expect(ip[0]).toBe(0);
        expect(ranges.udp[0]).toBe(ip[1]);
        expect(ranges["infiniband.bth"][0]).toBe(ranges.udp[1]);
        expect(ranges.icrc[1]).toBe(pkt.length);
      }
      expect(checked).toBeGreaterThan(50);
    });
  }

  it("a packet that does not parse has no ranges", () => {
    const d = decodePacket(codec, new Uint8Array([0x45, 0, 0]), { frame: 1 });
    expect(d.error).toBeDefined();
    expect(d.ranges).toBeUndefined();
  });
});
