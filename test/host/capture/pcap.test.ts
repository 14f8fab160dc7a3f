import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { extractIp, notRoce } from "../../../host/core/net/ip-extract.js";
import { concat } from "../../../host/core/net/bytes.js";
import { xorshift32 } from "../support/xorshift.js";
import {
  type CaptureRecord,
  linktypeFor,
  PcapCollector,
  PcapError,
  PcapWriter,
  readCapture,
  readCaptureAll,
  writePcap,
} from "../../../host/core/capture/pcap.js";

const CAPTURES = new URL("../../fixtures/captures/", import.meta.url);
const fixture = (name: string) => new Uint8Array(readFileSync(new URL(name, CAPTURES)));

// A minimal IPv4/UDP packet to 4791 (contents need not be a valid RoCE packet for pcap tests).
function ipv4(id: number, len = 40): Uint8Array {
  const p = new Uint8Array(len);
  p.set([0x45, 0, len >> 8, len & 0xff, id >> 8, id & 0xff, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
  p.set([0xc0, 0x00, 0x12, 0xb7, 0, len - 20], 20);
  for (let i = 28; i < len; i++) p[i] = i;
  return p;
}
function ipv6(len = 60): Uint8Array {
  const p = new Uint8Array(len);
  p[0] = 0x60;
  p[4] = (len - 40) >> 8;
  p[5] = (len - 40) & 0xff;
  p[6] = 17;
  p[7] = 64;
  p[23] = 1; // src ::1
  p[39] = 2; // dst ::2
  p.set([0xc0, 0x00, 0x12, 0xb7], 40);
  return p;
}

const T0 = 1_700_000_000_123_456; // µs

describe("pcap writer -> reader", () => {
  for (const nanos of [false, true]) {
    for (const [linktype, packets] of [
      [228, [ipv4(1), ipv4(2, 100)]],
      [229, [ipv6(), ipv6(80)]],
      [101, [ipv4(3), ipv6()]],
      [1, [ipv4(4), ipv6(), ipv4(5, 28)]],
    ] as const) {
      it(`round-trips linktype ${linktype} with ${nanos ? "ns" : "µs"} timestamps`, () => {
        const w = new PcapWriter({ linktype, nanos });
        const file = concat([w.header(), ...packets.map((p, i) => w.record(p, T0 + i))]);
        expect(Array.from(file.subarray(0, 4))).toEqual(nanos ? [0x4d, 0x3c, 0xb2, 0xa1] : [0xd4, 0xc3, 0xb2, 0xa1]);
        const recs = readCaptureAll(file);
        expect(recs.length).toBe(packets.length);
        recs.forEach((r, i) => {
          expect(r.index).toBe(i + 1);
          expect(r.linktype).toBe(linktype);
          expect(r.tsMicros).toBe(T0 + i);
          expect(r.tsNanos).toBe(BigInt(T0 + i) * 1000n);
          expect(r.reason).toBeUndefined();
          expect(Array.from(r.data!)).toEqual(Array.from(packets[i]));
          expect(r.origLen).toBe(packets[i].length + (linktype === 1 ? 14 : 0));
        });
      });
    }
  }

  it("keeps nanoseconds in an ns file and truncates them in a µs file", () => {
    const ns = 1_700_000_000_123_456_789n;
    for (const nanos of [true, false]) {
      const w = new PcapWriter({ linktype: 228, nanos });
      const [r] = readCaptureAll(concat([w.header(), w.recordNanos(ipv4(1), ns)]));
      expect(r.tsNanos).toBe(nanos ? ns : 1_700_000_000_123_456_000n);
      expect(r.tsMicros).toBe(1_700_000_000_123_456);
    }
  });

  it("writes the v2.4 header and synthetic Ethernet addresses", () => {
    const w = new PcapWriter({ linktype: 1 });
    expect(Array.from(w.header())).toEqual([0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 1, 0, 0, 0]);
    const rec = w.record(ipv4(9), 0);
    // dst MAC from 10.0.0.2, src MAC from 10.0.0.1, ethertype IPv4
    expect(Array.from(rec.subarray(16, 30))).toEqual([2, 0, 10, 0, 0, 2, 2, 0, 10, 0, 0, 1, 0x08, 0x00]);
    expect(Array.from(w.record(ipv6(), 0).subarray(28, 30))).toEqual([0x86, 0xdd]);
  });

  it("refuses a packet that does not fit the linktype", () => {
    expect(() => new PcapWriter({ linktype: 228 }).record(ipv6(), 0)).toThrow("IPv6 packet in an IPv4 (228) capture");
    expect(() => new PcapWriter({ linktype: 229 }).record(ipv4(1), 0)).toThrow("IPv4 packet in an IPv6 (229) capture");
    expect(() => new PcapWriter({ linktype: 101 }).record(new Uint8Array([0x12]), 0)).toThrow("not an IP packet");
    expect(() => new PcapWriter({ linktype: 105 })).toThrow("cannot write linktype 105");
  });

  it("collects chunks that concatenate to the same file", () => {
    const c = new PcapCollector({ linktype: 101 });
    c.add(ipv4(1), 10);
    c.add(ipv6(), 20n);
    expect(c.packets).toBe(2);
    expect(c.chunks.length).toBe(3);
    expect(Array.from(c.bytes())).toEqual(Array.from(writePcap([{ data: ipv4(1), tsMicros: 10 }, { data: ipv6(), tsMicros: 20 }])));
  });

  it("picks the linktype from the packets in writePcap", () => {
    expect(linktypeFor([ipv4(1), ipv4(2)])).toBe(228);
    expect(linktypeFor([ipv6()])).toBe(229);
    expect(linktypeFor([ipv4(1), ipv6()])).toBe(101);
    const file = writePcap([{ data: ipv6(), tsMicros: 5n }]);
    expect(new DataView(file.buffer).getUint32(20, true)).toBe(229);
    expect(readCaptureAll(file)[0].tsMicros).toBe(5);
  });
});

describe("pcap reader details", () => {
  it("reads a big-endian µs pcap", () => {
    const p = ipv4(7);
    const file = new Uint8Array(24 + 16 + p.length);
    const v = new DataView(file.buffer);
    v.setUint32(0, 0xa1b2c3d4, false);
    v.setUint16(4, 2, false);
    v.setUint16(6, 4, false);
    v.setUint32(16, 65535, false);
    v.setUint32(20, 228, false);
    v.setUint32(24, 1000, false);
    v.setUint32(28, 42, false);
    v.setUint32(32, p.length, false);
    v.setUint32(36, p.length, false);
    file.set(p, 40);
    const [r] = readCaptureAll(file);
    expect(r.tsMicros).toBe(1_000_000_042);
    expect(r.linktype).toBe(228);
    expect(Array.from(r.data!)).toEqual(Array.from(p));
  });

  it("strips 802.1Q tags and Ethernet padding", () => {
    const p = ipv4(1, 32); // 14 + 4 + 32 = 50 < 60: padded on the wire
    const frame = new Uint8Array(64);
    frame.set([0x81, 0x00, 0x00, 0x05, 0x08, 0x00], 12);
    frame.set(p, 18);
    frame.fill(0xee, 18 + p.length);
    const r = extractIp(frame, 1);
    expect("ip" in r && Array.from(r.ip)).toEqual(Array.from(p));
  });

  it("names what a non-IP or non-RoCE frame is", () => {
    const arp = new Uint8Array(42);
    arp.set([0x08, 0x06], 12);
    expect(extractIp(arp, 1)).toEqual({ reason: "ethertype 0x0806 (ARP)" });
    expect(extractIp(ipv6(), 228)).toEqual({ reason: "IPv6 packet where IPv4 was expected" });
    expect(extractIp(ipv4(1), 113)).toEqual({ reason: "linktype 113 not supported" });
    const tcp = ipv4(1);
    tcp[9] = 6;
    expect(notRoce(tcp)).toBe("TCP");
    const udp = ipv4(1);
    udp[23] = 53;
    expect(notRoce(udp)).toBe("UDP port 4661");
    expect(notRoce(ipv4(1))).toBeUndefined();
    expect(notRoce(ipv6())).toBeUndefined();
  });
});

// pcapng built byte by byte.
function block(type: number, body: number[], le = true): number[] {
  const total = 12 + body.length;
  const u32 = (n: number) => {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, n, le);
    return Array.from(b);
  };
  return [...u32(type), ...u32(total), ...body, ...u32(total)];
}
function u32(n: number, le = true): number[] {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, le);
  return Array.from(b);
}
function u16(n: number, le = true): number[] {
  const b = new Uint8Array(2);
  new DataView(b.buffer).setUint16(0, n, le);
  return Array.from(b);
}
function pad4(b: number[]): number[] {
  return [...b, ...new Array((4 - (b.length % 4)) % 4).fill(0)];
}
function shb(le = true): number[] {
  return block(0x0a0d0d0a, [...u32(0x1a2b3c4d, le), ...u16(1, le), ...u16(0, le), ...new Array(8).fill(0xff)], le);
}
function idb(linktype: number, tsresol?: number, le = true): number[] {
  const opts = tsresol === undefined ? [] : [...u16(9, le), ...u16(1, le), ...pad4([tsresol]), ...u16(0, le), ...u16(0, le)];
  return block(1, [...u16(linktype, le), 0, 0, ...u32(0, le), ...opts], le);
}
function epb(iface: number, ts: bigint, data: Uint8Array, le = true): number[] {
  return block(
    6,
    [...u32(iface, le), ...u32(Number(ts >> 32n), le), ...u32(Number(ts & 0xffffffffn), le), ...u32(data.length, le), ...u32(data.length, le), ...pad4(Array.from(data))],
    le,
  );
}

describe("pcapng reader", () => {
  it("reads SHB + IDB + EPB (µs default resolution)", () => {
    const p = ipv4(1, 41); // odd length: the block pads it
    const file = new Uint8Array([...shb(), ...idb(228), ...epb(0, BigInt(T0), p)]);
    const recs = readCaptureAll(file);
    expect(recs.length).toBe(1);
    expect(recs[0].tsMicros).toBe(T0);
    expect(recs[0].linktype).toBe(228);
    expect(Array.from(recs[0].data!)).toEqual(Array.from(p));
  });

  it("reads a big-endian section", () => {
    const p = ipv6();
    const file = new Uint8Array([...shb(false), ...idb(229, undefined, false), ...epb(0, 77n, p, false)]);
    const [r] = readCaptureAll(file);
    expect(r.tsMicros).toBe(77);
    expect(Array.from(r.data!)).toEqual(Array.from(p));
  });

  it("honours if_tsresol (decimal and binary) per interface", () => {
    const p = ipv4(1);
    const file = new Uint8Array([
      ...shb(),
      ...idb(228, 9), // ns
      ...idb(101, 0x80 | 20), // 2^-20 s
      ...epb(0, 1_700_000_000_123_456_789n, p),
      ...epb(1, 3n << 20n, p), // 3 s
      ...block(4, [0, 0, 0, 0]), // a name resolution block: skipped
      ...epb(1, 1n << 19n, p), // 0.5 s
    ]);
    const recs = readCaptureAll(file);
    expect(recs.map((r) => r.index)).toEqual([1, 2, 3]);
    expect(recs[0].tsNanos).toBe(1_700_000_000_123_456_789n);
    expect(recs[0].tsMicros).toBe(1_700_000_000_123_456);
    expect(recs[1].tsNanos).toBe(3_000_000_000n);
    expect(recs[1].linktype).toBe(101);
    expect(recs[2].tsNanos).toBe(500_000_000n);
  });

  it("reads a simple packet block", () => {
    const p = ipv4(1, 30);
    const file = new Uint8Array([...shb(), ...idb(228), ...block(3, [...u32(p.length), ...pad4(Array.from(p))])]);
    const [r] = readCaptureAll(file);
    expect(Array.from(r.data!)).toEqual(Array.from(p));
  });

  it("rejects a packet naming an undescribed interface", () => {
    const file = new Uint8Array([...shb(), ...idb(228), ...epb(3, 0n, ipv4(1))]);
    expect(() => readCaptureAll(file)).toThrow("block 3 at byte 48: packet 1 names interface 3, which was not described");
  });

  it("rejects a truncated block and keeps the packets before it", () => {
    const file = new Uint8Array([...shb(), ...idb(228), ...epb(0, 0n, ipv4(1)), ...epb(0, 0n, ipv4(2))]);
    const cut = file.subarray(0, file.length - 10);
    const seen: CaptureRecord[] = [];
    expect(() => {
      for (const r of readCapture(cut)) seen.push(r);
    }).toThrow(/^block 4 at byte \d+: truncated block \(62 of 72 bytes\)$/);
    expect(seen.length).toBe(1);
  });
});

const COUNTS: Record<string, [frames: number, roce: number]> = {
  "rc-send-multi": [77, 66],
  "rc-send-v6": [78, 66],
  "uc-send": [29, 18],
  "ud-send": [18, 6],
  "ud-send-v6": [17, 6],
  "rc-write": [84, 45],
  "rc-write-only": [49, 10],
  "rc-write-long": [391, 350],
  "rc-read": [86, 45],
  "rc-read-only": [52, 10],
  "rc-atomic-cas": [53, 10],
  "rc-atomic-faa": [51, 10],
  "rc-atomic": [104, 20],
  "rc-rnr": [72, 43],
  "rc-seqerr": [92, 53],
  "uc-write": [57, 15],
};

describe("fixture captures", () => {
  it("covers every fixture file", () => {
    const files = readdirSync(CAPTURES).filter((f) => f.endsWith(".pcap")).map((f) => f.slice(0, -5));
    expect(files.sort()).toEqual(Object.keys(COUNTS).sort());
  });

  for (const [name, [frames, roce]] of Object.entries(COUNTS)) {
    it(`${name}.pcap: ${frames} frames, ${roce} RoCEv2`, () => {
      const recs = readCaptureAll(fixture(`${name}.pcap`));
      expect(recs.length).toBe(frames);
      expect(recs.every((r) => r.linktype === 1)).toBe(true);
      const isRoce = recs.filter((r) => r.data !== undefined && notRoce(r.data) === undefined);
      expect(isRoce.length).toBe(roce);
      // every skipped frame says why (TCP for the out-of-band exchange, or ARP and the like)
      for (const r of recs) if (!isRoce.includes(r)) expect(r.reason ?? notRoce(r.data!)).toMatch(/\S/);
    });
  }
});

describe("the same captures as editcap writes them (pcapng, ns pcap)", () => {
  const other = (name: string) => new Uint8Array(readFileSync(new URL(`../../fixtures/pcapng/${name}`, import.meta.url)));
  for (const [file, original] of [
    ["rc-read-only.pcapng", "rc-read-only.pcap"],
    ["ud-send-v6.ns.pcap", "ud-send-v6.pcap"],
  ]) {
    it(`${file} holds the frames and times of ${original}`, () => {
      const a = readCaptureAll(other(file));
      const b = readCaptureAll(fixture(original));
      expect(a.length).toBe(b.length);
      a.forEach((r, i) => {
        expect(r.tsNanos).toBe(b[i].tsNanos);
        expect(r.linktype).toBe(1);
        expect(r.origLen).toBe(b[i].origLen);
        expect(Array.from(r.frame)).toEqual(Array.from(b[i].frame));
      });
    });
  }
});

describe("broken captures", () => {
  const good = fixture("rc-write-only.pcap");

  it("bad magic", () => {
    expect(() => readCaptureAll(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]))).toThrow("not a pcap or pcapng file: bad magic 01 02 03 04");
    expect(() => readCaptureAll(new Uint8Array([0xd4]))).toThrow("not a capture: 1 bytes, too short for a file header");
  });

  it("truncated file header", () => {
    expect(() => readCaptureAll(good.subarray(0, 10))).toThrow(new PcapError("truncated pcap file header: 10 of 24 bytes"));
  });

  it("truncated record header", () => {
    const firstLen = new DataView(good.buffer, good.byteOffset).getUint32(24 + 8, true);
    const cut = good.subarray(0, 24 + 16 + firstLen + 6);
    expect(() => readCaptureAll(cut)).toThrow(`record 2: truncated record header at byte ${24 + 16 + firstLen} (6 of 16 bytes)`);
  });

  it("truncated record data: records before it are read, none are invented", () => {
    const cut = good.subarray(0, good.length - 5);
    const seen: CaptureRecord[] = [];
    let err: unknown;
    try {
      for (const r of readCapture(cut)) seen.push(r);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PcapError);
    expect((err as Error).message).toMatch(/^record 49: truncated data at byte \d+ \(\d+ of \d+ bytes\)$/);
    expect(seen.length).toBe(48);
  });

  it("absurd captured length", () => {
    const bad = good.slice();
    new DataView(bad.buffer).setUint32(24 + 8, 0x7fffffff, true);
    expect(() => readCaptureAll(bad)).toThrow("record 1: captured length 2147483647 is absurd (snaplen 262144, maximum 262144)");
  });

  it("unsupported pcap version", () => {
    const bad = good.slice();
    new DataView(bad.buffer).setUint16(4, 3, true);
    expect(() => readCaptureAll(bad)).toThrow("unsupported pcap version 3.4");
  });
});


describe("mutated captures never crash the reader", () => {
  const sources = [fixture("rc-write-only.pcap"), new Uint8Array(readFileSync(new URL("../../fixtures/pcapng/rc-read-only.pcapng", import.meta.url)))];
  it("2000 seeded mutations: records or a PcapError, nothing else", () => {
    const rand = xorshift32(0x5eed); // deterministic mutations
    let errors = 0;
    let records = 0;
    for (let i = 0; i < 2000; i++) {
      const f = sources[i % 2].slice(0, 200 + rand(sources[i % 2].length));
      for (let k = 1 + rand(8); k > 0; k--) f[rand(Math.min(f.length, 400))] = rand(256);
      try {
        for (const r of readCapture(f)) {
          records++;
          expect(r.frame.length).toBeLessThanOrEqual(f.length);
        }
      } catch (e) {
        if (!(e instanceof PcapError)) throw e;
        expect(e.message).not.toContain("\n");
        errors++;
      }
    }
    expect(errors).toBeGreaterThan(100);
    expect(records).toBeGreaterThan(1000);
  });
});
