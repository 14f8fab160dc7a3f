import { describe, expect, it, beforeAll } from "vitest";
import { readFileSync, readdirSync } from "node:fs";
import { crc32 as zlibCrc32 } from "node:zlib";
import { WireCodec, type PacketSpec } from "../../../host/core/wire/codec.js";
import { ipv6ToString, parseIpv6 } from "../../../host/core/net/addr.js";
import { coreModule } from "../../../host/node/wasm-source.js";

const CAPTURES = new URL("../../fixtures/captures/", import.meta.url);

/** Minimal classic-pcap (Ethernet) reader: the IP packet of every UDP/4791 frame. */
function rocePackets(file: string): Uint8Array[] {
  const b = new Uint8Array(readFileSync(new URL(file, CAPTURES)));
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  expect(dv.getUint32(0, true)).toBe(0xa1b2c3d4);
  expect(dv.getUint32(20, true)).toBe(1); // LINKTYPE_ETHERNET
  const out: Uint8Array[] = [];
  for (let off = 24; off + 16 <= b.length; ) {
    const incl = dv.getUint32(off + 8, true);
    const frame = b.subarray(off + 16, off + 16 + incl);
    off += 16 + incl;
    const etype = (frame[12]! << 8) | frame[13]!;
    const ip = frame.subarray(14);
    let udp: number;
    if (etype === 0x0800 && ip[9] === 17) udp = (ip[0]! & 15) * 4;
    else if (etype === 0x86dd && ip[6] === 17) udp = 40;
    else continue;
    if (((ip[udp + 2]! << 8) | ip[udp + 3]!) === 4791) out.push(ip);
  }
  return out;
}

const hex = (s: string) => Uint8Array.from(s.match(/../g)!.map((x) => parseInt(x, 16)));
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");

// tshark -r <file> -Y udp.dstport==4791 -T fields -e infiniband.bth.opcode | sort | uniq -c
const OPCODE_COUNTS: Record<string, Record<number, number>> = {
  "rc-atomic-cas.pcap": { 18: 5, 19: 5 },
  "rc-atomic-faa.pcap": { 18: 5, 20: 5 },
  "rc-atomic.pcap": { 18: 10, 19: 5, 20: 5 },
  "rc-read-only.pcap": { 12: 5, 16: 5 },
  "rc-read.pcap": { 12: 5, 13: 5, 14: 30, 15: 5 },
  "rc-rnr.pcap": { 4: 26, 17: 17 },
  "rc-send-multi.pcap": { 0: 6, 1: 48, 2: 6, 17: 6 },
  "rc-send-v6.pcap": { 0: 6, 1: 48, 2: 6, 17: 6 },
  "rc-seqerr.pcap": { 6: 5, 7: 36, 8: 6, 17: 6 },
  "rc-write-long.pcap": { 6: 5, 7: 330, 8: 5, 17: 10 },
  "rc-write-only.pcap": { 10: 5, 17: 5 },
  "rc-write.pcap": { 6: 5, 7: 30, 8: 5, 17: 5 },
  "uc-send.pcap": { 32: 6, 33: 6, 34: 6 },
  "uc-write.pcap": { 38: 5, 39: 5, 40: 5 },
  "ud-send-v6.pcap": { 100: 6 },
  "ud-send.pcap": { 100: 6 },
};

let codec: WireCodec;
beforeAll(async () => {
  codec = await WireCodec.create(await coreModule());
});

describe("captured rxe traffic", () => {
  it("has exactly the fixture files listed here", () => {
    const files = readdirSync(CAPTURES).filter((f) => f.endsWith(".pcap")).sort();
    expect(files).toEqual(Object.keys(OPCODE_COUNTS).sort());
  });

  for (const file of Object.keys(OPCODE_COUNTS)) {
    it(`${file}: parses, ICRC ok, opcode counts, emit(parse(p)) == p`, () => {
      const counts: Record<number, number> = {};
      for (const raw of rocePackets(file)) {
        const res = codec.parse(raw);
        if (!res.ok) throw new Error(`${file}: ${res.error}`);
        const { repr, info } = res;
        expect(repr.icrcOk).toBe(true);
        expect(repr.icrc).toBe(repr.icrcExpected);
        counts[repr.opcode] = (counts[repr.opcode] ?? 0) + 1;
        const p = raw.subarray(0, info.packetLength);
        expect(codec.icrc(p)).toBe(repr.icrc);
        expect(toHex(codec.emit(repr))).toBe(toHex(p));
      }
      expect(counts).toEqual(OPCODE_COUNTS[file]);
    });
  }

  it("holds 773 RoCE packets in all", () => {
    let n = 0;
    for (const file of Object.keys(OPCODE_COUNTS)) n += rocePackets(file).length;
    expect(n).toBe(773);
  });

  it("decodes the fields tshark shows (first RC WRITE FIRST, an ACK, a UD SEND over IPv6, an atomic)", () => {
    const write = rocePackets("rc-write.pcap").map((p) => codec.parse(p)).find((r) => r.ok && r.repr.opcode === 6);
    expect(write?.ok).toBe(true);
    if (!write?.ok) return;
    expect(write.repr.reth).toBeDefined();
    expect(write.repr.reth!.dmaLength).toBe(8192);
    expect(write.repr.payload.length).toBe(1024);
    expect(write.repr.udpChecksum).toBe(0);
    expect(write.repr.ipFlags).toBe(2);
    expect(write.repr.ttl).toBe(64);
    expect(write.info.payloadOffset).toBe(20 + 8 + 12 + 16);
    expect(write.info.headerOffsets[0]).toBe(20 + 8 + 12);

    const ud = codec.parse(rocePackets("ud-send-v6.pcap")[0]!);
    expect(ud.ok).toBe(true);
    if (!ud.ok) return;
    expect(ud.repr.ipVersion).toBe(6);
    expect(ud.repr.deth?.qkey).toBe(0x11111111);
    expect(ud.repr.src).toContain(":");
    expect(ud.info.bthOffset).toBe(48);

    const atomic = rocePackets("rc-atomic-cas.pcap").map((p) => codec.parse(p));
    const cas = atomic.find((r) => r.ok && r.repr.opcode === 19);
    const ack = atomic.find((r) => r.ok && r.repr.opcode === 18);
    expect(cas?.ok && cas.repr.atomicEth !== undefined).toBe(true);
    expect(ack?.ok && ack.repr.atomicAckEth !== undefined && ack.repr.aeth !== undefined).toBe(true);
  });

  it("a corrupted byte makes icrcOk false (payload, header, ICRC itself)", () => {
    const p = rocePackets("rc-send-multi.pcap")[0]!.slice();
    const base = codec.parse(p);
    expect(base.ok && base.repr.icrcOk).toBe(true);
    for (const at of [50, 30, p.length - 1]) {
      const q = p.slice();
      q[at]! ^= 0x10;
      const r = codec.parse(q);
      expect(r.ok).toBe(true);
      if (r.ok) expect(r.repr.icrcOk).toBe(false);
    }
    // masked fields do not matter: TTL, TOS, IPv4 checksum, UDP checksum, FECN/BECN
    for (const at of [8, 1, 10, 11, 26, 27, 32]) {
      const q = p.slice();
      q[at]! ^= 0x40;
      const r = codec.parse(q);
      expect(r.ok && r.repr.icrcOk).toBe(true);
    }
  });
});

describe("ICRC golden vectors", () => {
  it("ConnectX CNP frame -> 82 fd 00 2a", () => {
    const frame = hex("e41d2dab2bc27cfe90643b32080045c2003c718c4000401191610a0011010a001201000012b7" +
      "002800008100ffff40000118000000000000000000000000000000000000000082fd002a");
    const r = codec.parse(frame.subarray(14));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.repr.opcode).toBe(0x81);
    expect(r.repr.becn).toBe(1);
    expect(r.repr.destQp).toBe(0x118);
    expect(r.repr.icrc).toBe(0x82fd002a);
    expect(r.repr.icrcOk).toBe(true);
    expect(toHex(codec.emit(r.repr))).toBe(toHex(frame.subarray(14)));
  });

  it("scapy UC SEND_ONLY -> 78 f3 53 f3", () => {
    const p = hex("45010040047840004011b4d5c0a80007c0a80007c00012b7002caca22460ffff000000d300cf" +
      "17104630818be28935d90e9a95505401be885e50000078f353f3");
    const r = codec.parse(p);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.repr.opcode).toBe(0x24);
    expect(r.repr.migReq).toBe(1);
    expect(r.repr.padCount).toBe(2);
    expect(r.repr.destQp).toBe(211);
    expect(r.repr.psn).toBe(13571856);
    expect(r.repr.icrcExpected).toBe(0x78f353f3);
    expect(r.repr.icrcOk).toBe(true);
    expect(toHex(codec.emit(r.repr))).toBe(toHex(p));
  });
});

describe("emit / parse", () => {
  it("builds every opcode from a spec and parses it back", () => {
    let seen = 0;
    for (let op = 0; op < 256; op++) {
      const info = codec.opcode(op);
      if (!info) continue;
      seen++;
      const len = info.flags.atomicWrite ? 8 : info.flags.payload ? 37 : 0;
      const spec: PacketSpec = {
        src: "fd00::1", dst: "fd00::2", opcode: op, destQp: 0x123456, psn: 0xfffffe, ackReq: 1,
        payload: Uint8Array.from({ length: len }, (_, i) => i * 7),
        reth: { va: 0x1122334455667788n, rkey: 0xaabbccdd, dmaLength: 4096 },
        aeth: { syndrome: 0x1f, msn: 77 },
        atomicEth: { va: 0x1000n, rkey: 5, swapAdd: 0xffffffffffffffffn, compare: 3n },
        atomicAckEth: { origRemoteData: 0x8000000000000001n },
        deth: { qkey: 0x11111111, srcQp: 9 },
        immDt: 0xdeadbeef, ieth: { rkey: 0x42 }, feth: 0x11,
      };
      const bytes = codec.emit(spec);
      expect(bytes.length).toBe(40 + 8 + info.length + len + ((4 - (len & 3)) & 3) + 4);
      const r = codec.parse(bytes);
      if (!r.ok) throw new Error(`${info.name}: ${r.error}`);
      expect(r.repr.opcode).toBe(op);
      expect(r.repr.icrcOk).toBe(true);
      expect(r.repr.psn).toBe(0xfffffe);
      expect(r.repr.destQp).toBe(0x123456);
      expect(r.repr.pkey).toBe(0xffff);
      expect(r.repr.udpSrcPort).toBe(0xc000);
      expect(r.repr.src).toBe("fd00::1");
      expect(Array.from(r.repr.payload)).toEqual(Array.from(spec.payload!));
      expect(r.repr.reth !== undefined).toBe(info.headers.includes("RETH"));
      if (r.repr.reth) expect(r.repr.reth).toEqual(spec.reth);
      if (r.repr.atomicEth) expect(r.repr.atomicEth).toEqual(spec.atomicEth);
      if (r.repr.atomicAckEth) expect(r.repr.atomicAckEth).toEqual(spec.atomicAckEth);
      if (r.repr.deth) expect(r.repr.deth).toEqual(spec.deth);
      if (r.repr.immDt !== undefined) expect(r.repr.immDt).toBe(0xdeadbeef);
      if (r.repr.feth !== undefined) expect(r.repr.feth).toBe(0x11);
    }
    expect(seen).toBe(25 + 12 + 2 + 1); // RC 0x00-0x14, 0x16, 0x17, 0x1c, 0x1d; UC 12; UD 2; CNP
  });

  it("emits IPv4 with the defaults and a valid header checksum", () => {
    const b = codec.emit({ src: "10.0.0.1", dst: "10.0.0.2", opcode: 0x11, destQp: 17, psn: 5, aeth: { syndrome: 0x1f, msn: 1 } });
    expect(b.length).toBe(20 + 8 + 12 + 4 + 4);
    expect(toHex(b.subarray(0, 10))).toBe("45000030000040004011");
    expect(toHex(b.subarray(12, 28))).toBe("0a0000010a000002c00012b7001c0000");
    let sum = 0;
    for (let i = 0; i < 20; i += 2) sum += (b[i]! << 8) | b[i + 1]!;
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    expect(sum).toBe(0xffff);
  });

  it("rejects bad specs with the core's error names", () => {
    expect(() => codec.emit({ src: "10.0.0.1", dst: "10.0.0.2", opcode: 0x11, destQp: 1, aeth: { syndrome: 0, msn: 0 }, payload: new Uint8Array(4) })).toThrow(/BAD_PAYLOAD/);
    expect(() => codec.emit({ src: "10.0.0.1", dst: "10.0.0.2", opcode: 0x15, destQp: 1 })).toThrow(/UNKNOWN_OPCODE/);
    expect(() => codec.emit({ src: "10.0.0.1", dst: "fd00::2", opcode: 4, destQp: 1 })).toThrow(/families/);
    expect(() => codec.emit({ src: "10.0.0.1", dst: "10.0.0.2", opcode: 0x0a, destQp: 1 })).toThrow(/needs RETH/);
    expect(() => codec.emit({ src: "10.0.0.1", dst: "10.0.0.2", opcode: 4, destQp: 1, payload: new Uint8Array(16384) })).toThrow(/BUFFER_TOO_SMALL/);
  });

  it("refuses out-of-range fields instead of truncating them", () => {
    const base = { src: "10.0.0.1", dst: "10.0.0.2", opcode: 4, destQp: 1 };
    expect(() => codec.emit({ ...base, destQp: 0x1000000 })).toThrow(/destQp/);
    expect(() => codec.emit({ ...base, psn: -1 })).toThrow(/psn/);
    expect(() => codec.emit({ ...base, pkey: 0x10000 })).toThrow(/pkey/);
    expect(() => codec.emit({ ...base, ttl: 1.5 })).toThrow(/ttl/);
    expect(() => codec.emit({ ...base, src: "10.0.0.256" })).toThrow(/source address/);
  });

  it("does not grow memory while parsing and emitting", () => {
    const before = codec.core.memory.buffer.byteLength;
    const packets = rocePackets("rc-write-long.pcap");
    for (let i = 0; i < 3; i++) for (const p of packets) {
      const r = codec.parse(p);
      if (r.ok) codec.emit(r.repr);
    }
    expect(codec.core.memory.buffer.byteLength).toBe(before);
  });

  it("refuses packets longer than wire_buf_cap with a clear error", () => {
    const r = codec.parse(new Uint8Array(codec.bufCap + 1));
    expect(r).toEqual({ ok: false, code: -1, error: expect.stringMatching(/PACKET_TOO_LONG/) });
  });

  it("reports each parse error code by name", () => {
    const good = codec.emit({ src: "10.0.0.1", dst: "10.0.0.2", opcode: 4, destQp: 1, payload: new Uint8Array(8) });
    const bad = (f: (b: Uint8Array) => Uint8Array) => {
      const r = codec.parse(f(good.slice()));
      return r.ok ? "OK" : r.error;
    };
    expect(bad((b) => b.subarray(0, 10))).toBe("TRUNCATED");
    expect(bad((b) => { b[0] = 0x55; return b; })).toBe("BAD_IP_VERSION");
    expect(bad((b) => { b[0] = 0x46; return b; })).toBe("BAD_IP_HEADER");
    expect(bad((b) => { b[9] = 6; return b; })).toBe("NOT_UDP");
    expect(bad((b) => { b[23] = 0; return b; })).toBe("NOT_ROCE_PORT");
    expect(bad((b) => { b[25] += 1; return b; })).toBe("BAD_UDP_LENGTH");
    expect(bad((b) => { b[29] = 0x01; return b; })).toBe("BAD_TVER");
    expect(bad((b) => { b[28] = 0x15; return b; })).toBe("UNKNOWN_OPCODE");
    expect(bad((b) => { b[6] = 0x20; return b; })).toBe("IP_FRAGMENT");
    expect(bad((b) => { b[28] = 0x11; b[29] = 0; return b; })).toBe("BAD_PAYLOAD");
  });

  it("parses a bare UDP payload with the IP/UDP facts given separately", () => {
    const full = rocePackets("rc-write.pcap")[0]!;
    const r0 = codec.parse(full);
    if (!r0.ok) throw new Error(r0.error);
    const udpPayload = full.subarray(28, r0.info.packetLength);
    const r = codec.parseUdpPayload(udpPayload, {
      src: r0.repr.src, dst: r0.repr.dst, ipId: r0.repr.ipId, ipFlags: r0.repr.ipFlags, ttl: r0.repr.ttl,
      tos: r0.repr.tos, udpSrcPort: r0.repr.udpSrcPort,
    });
    if (!r.ok) throw new Error(r.error);
    expect(r.repr.icrcOk).toBe(true);
    expect(r.repr.ipChecksum).toBe(r0.repr.ipChecksum);
    expect(r.repr.udpLength).toBe(r0.repr.udpLength);
    expect(r.info.bthOffset).toBe(0);
    const wrongId = codec.parseUdpPayload(udpPayload, { src: r0.repr.src, dst: r0.repr.dst, ipId: r0.repr.ipId ^ 1, udpSrcPort: r0.repr.udpSrcPort, ttl: 64 });
    expect(wrongId.ok && wrongId.repr.icrcOk).toBe(false);
  });
});

describe("opcode table", () => {
  it("names and shapes opcodes like Wireshark and rxe", () => {
    expect(codec.opcode(0x0b)).toMatchObject({ name: "RC RDMA Write Only Immediate", transport: "RC", headers: ["RETH", "ImmDt"], length: 32 });
    expect(codec.opcode(0x1c)).toMatchObject({ name: "RC Flush", headers: ["FETH", "RETH"], length: 32, flags: { flush: true, payload: false } });
    expect(codec.opcode(0x1d)).toMatchObject({ name: "RC Atomic Write", headers: ["RETH"], length: 28, flags: { atomicWrite: true, payload: true } });
    expect(codec.opcode(0x12)).toMatchObject({ name: "RC Atomic Acknowledge", headers: ["AETH", "AtomicAckETH"], length: 24, flags: { resp: true } });
    expect(codec.opcode(0x65)).toMatchObject({ name: "UD Send Only Immediate", transport: "UD", headers: ["DETH", "ImmDt"], length: 24 });
    expect(codec.opcode(0x81)).toMatchObject({ name: "CNP", transport: "CNP", headers: [], length: 28, flags: { cnp: true } });
    expect(codec.opcode(0x27)?.name).toBe("UC RDMA Write Middle");
    expect(codec.opcode(0x2c)).toBeUndefined(); // no UC READ
    expect(codec.opcode(0x40)).toBeUndefined(); // RD is not supported
    expect(codec.opcode(256)).toBeUndefined();
  });
});

describe("crc32 and PSN", () => {
  it("matches node:zlib crc32 on random buffers, chained and across the scratch size", () => {
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
    for (const n of [0, 1, 3, 15, 16, 17, 63, 64, 1000, 4096, 16384, 16385, 70000]) {
      const d = Uint8Array.from({ length: n }, rnd);
      expect(codec.crc32(d)).toBe(zlibCrc32(d));
      expect(codec.crc32(d.subarray(n >> 1), codec.crc32(d.subarray(0, n >> 1)))).toBe(zlibCrc32(d));
    }
    expect(codec.crc32(new TextEncoder().encode("123456789"))).toBe(0xcbf43926);
  });

  it("does 24-bit PSN arithmetic across the wrap", () => {
    expect(codec.psnAdd(0xffffff, 1)).toBe(0);
    expect(codec.psnCmp(0, 0xffffff)).toBe(1);
    expect(codec.psnCmp(0xffffff, 0)).toBe(-1);
    expect(codec.psnDiff(2, 0xfffffe)).toBe(4);
    expect(codec.psnDiff(0x800000, 0)).toBe(-0x800000);
  });
});

describe("addresses", () => {
  it("prints IPv6 in RFC 5952 form and parses it back", () => {
    for (const [text, canon] of [
      ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"], ["fe80::1", "fe80::1"], ["::", "::"], ["::1", "::1"],
      ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"], ["::ffff:10.0.0.1", "::ffff:10.0.0.1"], ["1::", "1::"],
      ["2001:0DB8::0001", "2001:db8::1"],
    ] as const) {
      expect(ipv6ToString(parseIpv6(text)!)).toBe(canon);
    }
    expect(parseIpv6("1:2:3")).toBeUndefined();
    expect(parseIpv6("1::2::3")).toBeUndefined();
  });
});
