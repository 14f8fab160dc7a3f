import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { aethMeaning, decodePacket, formatTree, type PacketRecord } from "../../../host/core/wire/decode.js";
import { notRoce } from "../../../host/core/net/ip-extract.js";
import { readCaptureAll } from "../../../host/core/capture/pcap.js";
import { WireCodec } from "../../../host/core/wire/codec.js";
import { coreModule } from "../../../host/node/wasm-source.js";
import { xorshift32 } from "../support/xorshift.js";

const FIX = new URL("../../fixtures/", import.meta.url);
const ipOf = (file: string) =>
  new Map(readCaptureAll(new Uint8Array(readFileSync(new URL(`captures/${file}.pcap`, FIX)))).map((r) => [r.index, r]));

let codec: WireCodec;
beforeAll(async () => {
  codec = await WireCodec.create(await coreModule());
});

function decodeFrame(file: string, frame: number): PacketRecord {
  const rec = ipOf(file).get(frame)!;
  const d = decodePacket(codec, rec.data!, { frame, tsNanos: rec.tsNanos, frameLen: rec.origLen });
  expect(d.error).toBeUndefined();
  return d.record;
}

describe("decode: known packets from the rxe captures (values as tshark 4.0.17 shows them)", () => {
  it("an ACK: syndrome 31, msn 1", () => {
    const r = decodeFrame("rc-rnr", 23);
    expect(r).toMatchObject({
      "frame.number": 23,
      "frame.len": 62,
      "ip.version": 4,
      "ip.len": 48,
      "ip.src": "192.0.2.2",
      "ip.dst": "192.0.2.3",
      "ip.id": 0x7268,
      "ip.flags.df": 1,
      "ip.ttl": 64,
      "udp.srcport": 49881,
      "udp.dstport": 4791,
      "udp.length": 28,
      "udp.checksum": 0,
      "infiniband.bth.opcode": 17,
      opcode_name: "RC Acknowledge",
      "infiniband.bth.p_key": 0xffff,
      "infiniband.bth.destqp": 0x1b,
      "infiniband.bth.a": 0,
      "infiniband.bth.psn": 5295387,
      "infiniband.aeth.syndrome": 31,
      "infiniband.aeth.msn": 1,
      aeth_meaning: "ACK (no credit limit)",
      payload_len: 0,
      "infiniband.invariant.crc": 0x0dc2be77,
      icrc: "0x0dc2be77",
      icrc_expected: "0x0dc2be77",
      icrc_ok: true,
    });
    expect(r["infiniband.reth.va"]).toBeUndefined();
  });

  it("an RNR NAK and a PSN sequence error NAK", () => {
    expect(decodeFrame("rc-rnr", 35)).toMatchObject({ "infiniband.aeth.syndrome": 44, "infiniband.aeth.msn": 3, aeth_meaning: "RNR NAK (timer code 12)" });
    expect(decodeFrame("rc-rnr", 36)).toMatchObject({ "infiniband.aeth.syndrome": 96, aeth_meaning: "NAK PSN sequence error" });
  });

  it("a READ request: RETH with 64-bit VA as a string, length 8192", () => {
    expect(decodeFrame("rc-read", 22)).toMatchObject({
      "infiniband.bth.opcode": 12,
      opcode_name: "RC RDMA Read Request",
      "infiniband.bth.a": 1,
      "infiniband.bth.psn": 831777,
      "infiniband.bth.destqp": 0x17,
      "infiniband.reth.va": "0x0000558372e85000",
      "infiniband.reth.r_key": 0x813,
      "infiniband.reth.dmalen": 8192,
      payload_len: 0,
      icrc: "0xcf118ee0",
      icrc_ok: true,
    });
  });

  it("a FETCH_ADD and its ATOMIC ACK: operands and original data as 0x strings", () => {
    expect(decodeFrame("rc-atomic-faa", 22)).toMatchObject({
      "infiniband.bth.opcode": 20,
      "infiniband.reth.va": "0x000055a78d671000",
      "infiniband.reth.r_key": 0xba1,
      "infiniband.atomiceth.swapdt": "0x0000000000000001",
      "infiniband.atomiceth.cmpdt": "0x0000000000000000",
      icrc: "0xd729dc32",
    });
    expect(decodeFrame("rc-atomic-cas", 23)).toMatchObject({
      "infiniband.bth.opcode": 18,
      "infiniband.aeth.msn": 1,
      "infiniband.atomicacketh.origremdt": "0x" + (17412016880387507602n).toString(16).padStart(16, "0"),
    });
  });

  it("a UD SEND over IPv6: DETH qkey 0x11111111", () => {
    const r = decodeFrame("ud-send-v6", 12);
    expect(r).toMatchObject({
      "ipv6.version": 6,
      "ipv6.src": "fd00:4791::3",
      "ipv6.dst": "fd00:4791::2",
      "ipv6.hlim": 64,
      "ipv6.plen": 544,
      "frame.len": 598,
      "infiniband.bth.opcode": 100,
      opcode_name: "UD Send Only",
      "infiniband.deth.q_key": 0x11111111,
      "infiniband.deth.srcqp": 0x11,
      payload_len: 512,
      icrc: "0x461d80a0",
      icrc_ok: true,
    });
    expect(r["ip.src"]).toBeUndefined();
  });

  it("formats a compact tree with the same field names", () => {
    const rec = ipOf("rc-rnr").get(23)!;
    const tree = formatTree(decodePacket(codec, rec.data!, { frame: 23 }));
    expect(tree).toBe(
      [
        "Frame 23: 48 bytes",
        "IPv4 192.0.2.2 -> 192.0.2.3, ip.len 48, ip.id 0x7268, ip.flags DF, ip.ttl 64, ip.dsfield 0x00",
        "UDP 49881 -> 4791, udp.length 28, udp.checksum 0x0000",
        "InfiniBand RC Acknowledge",
        "  infiniband.bth.opcode: 17 (0x11)",
        "  infiniband.bth.se: 0",
        "  infiniband.bth.m: 0",
        "  infiniband.bth.padcnt: 0",
        "  infiniband.bth.tver: 0",
        "  infiniband.bth.p_key: 0xffff (65535)",
        "  infiniband.bth.fecn: 0",
        "  infiniband.bth.becn: 0",
        "  infiniband.bth.resv6: 0",
        "  infiniband.bth.destqp: 0x00001b (27)",
        "  infiniband.bth.a: 0",
        "  infiniband.bth.reserved7: 0",
        "  infiniband.bth.psn: 5295387",
        "  infiniband.aeth.syndrome: 31",
        "  infiniband.aeth.msn: 1",
        "  aeth_meaning: ACK (no credit limit)",
        "  payload_len: 0",
        "  icrc: ok (found 0x0dc2be77, expected 0x0dc2be77)",
        "",
      ].join("\n"),
    );
  });
});

describe("decode: bad packets still get a record", () => {
  it("a wrong ICRC: fields decoded, icrc_ok false, expected value shown", () => {
    const ip = ipOf("rc-rnr").get(23)!.data!.slice();
    ip[ip.length - 1] ^= 0xff;
    const d = decodePacket(codec, ip, { frame: 1 });
    expect(d.ok).toBe(false);
    expect(d.error).toBeUndefined();
    expect(d.record).toMatchObject({ icrc: "0x0dc2be88", icrc_expected: "0x0dc2be77", icrc_ok: false, "infiniband.aeth.msn": 1 });
    expect(formatTree(d)).toContain("  icrc: bad (found 0x0dc2be88, expected 0x0dc2be77)\n");
  });

  it("a truncated packet: an error naming the problem", () => {
    const ip = ipOf("rc-read").get(22)!.data!.subarray(0, 40);
    const d = decodePacket(codec, ip, { frame: 5 });
    expect(d.ok).toBe(false);
    expect(d.record["frame.number"]).toBe(5);
    expect(d.record.error).toMatch(/^TRUNCATED\w*: /);
    expect(d.record["infiniband.bth.opcode"]).toBeUndefined();
  });

  it("an unknown opcode: the error names it", () => {
    const ip = ipOf("rc-rnr").get(23)!.data!.slice();
    ip[28] = 0x1f; // BTH opcode byte: RC 0x1f is reserved
    const d = decodePacket(codec, ip, { frame: 1 });
    expect(d.error).toBe("UNKNOWN_OPCODE: opcode not in the table (0x1f)");
  });

  it("names AETH syndromes", () => {
    expect(aethMeaning(0x1f)).toBe("ACK (no credit limit)");
    expect(aethMeaning(0x05)).toBe("ACK (credits code 5)");
    expect(aethMeaning(0x2c)).toBe("RNR NAK (timer code 12)");
    expect(aethMeaning(0x62)).toBe("NAK remote access error");
    expect(aethMeaning(0x40)).toBe("reserved syndrome 0x40");
  });
});

// Every RoCEv2 frame in the fixtures against tshark's own decode (test/fixtures/tshark/roce-fields.tsv).
describe("decode agrees with tshark on every fixture packet", () => {
  const lines = readFileSync(new URL("tshark/roce-fields.tsv", FIX), "utf8").split("\n").filter((l) => l && !l.startsWith("#"));
  const cols = lines[0].split("\t");
  const rows = lines.slice(1).map((l) => Object.fromEntries(l.split("\t").map((v, i) => [cols[i], v])));
  const files = [...new Set(rows.map((r) => r.file))];

  it("has 773 rows over 16 files", () => {
    expect(rows.length).toBe(773);
    expect(files.length).toBe(16);
  });

  for (const file of files) {
    it(file, () => {
      const recs = ipOf(file);
      const mine = [...recs.values()].filter((r) => r.data && notRoce(r.data) === undefined).map((r) => r.index);
      const theirs = rows.filter((r) => r.file === file);
      expect(mine).toEqual(theirs.map((r) => Number(r["frame.number"])));
      for (const t of theirs) {
        const frame = Number(t["frame.number"]);
        const d = decodePacket(codec, recs.get(frame)!.data!, { frame, frameLen: recs.get(frame)!.origLen });
        const r = d.record;
        const want: Record<string, unknown> = {};
        const got: Record<string, unknown> = {};
        const v6 = t["ipv6.src"] !== "";
        want.src = v6 ? t["ipv6.src"] : t["ip.src"];
        got.src = r[v6 ? "ipv6.src" : "ip.src"];
        want.dst = v6 ? t["ipv6.dst"] : t["ip.dst"];
        got.dst = r[v6 ? "ipv6.dst" : "ip.dst"];
        want.ttl = Number(v6 ? t["ipv6.hlim"] : t["ip.ttl"]);
        got.ttl = r[v6 ? "ipv6.hlim" : "ip.ttl"];
        for (const k of cols.slice(1)) {
          const v = t[k];
          if (k === "ipv6.src" || k === "ipv6.dst" || k === "ipv6.hlim" || k === "ip.src" || k === "ip.dst" || k === "ip.ttl" || k === "frame.number") continue;
          if (v === "") {
            want[k] = undefined;
            got[k] = r[k];
          } else if (/swapdt|cmpdt|origremdt/.test(k)) {
            want[k] = BigInt(v);
            got[k] = BigInt(r[k] as string);
          } else if (k === "infiniband.reth.va") {
            want[k] = v;
            got[k] = r[k];
          } else {
            want[k] = Number(v);
            got[k] = r[k];
          }
        }
        want.icrc_ok = true;
        got.icrc_ok = r.icrc_ok;
        expect({ frame, ...got }).toEqual({ frame, ...want });
      }
    });
  }
});

describe("mutated packets never crash the decoder", () => {
  it("3000 seeded mutations and truncations of fixture packets: a record every time", () => {
    const pool = [...ipOf("rc-atomic").values(), ...ipOf("ud-send-v6").values(), ...ipOf("rc-read").values()]
      .filter((r) => r.data && notRoce(r.data) === undefined)
      .map((r) => r.data!);
    const rand = xorshift32(0x1234567);
    const seen = { ok: 0, badIcrc: 0, error: 0 };
    for (let i = 0; i < 3000; i++) {
      const src = pool[rand(pool.length)];
      const p = src.slice(0, rand(4) === 0 ? rand(src.length) : src.length);
      for (let k = rand(3); k > 0 && p.length; k--) p[rand(Math.min(p.length, 80))] ^= 1 << rand(8);
      const d = decodePacket(codec, p, { frame: i + 1 });
      expect(d.record["frame.number"]).toBe(i + 1);
      expect(formatTree(d)).toMatch(/^Frame \d+/);
      JSON.parse(JSON.stringify(d.record));
      if (d.error !== undefined) seen.error++;
      else if (d.ok) seen.ok++;
      else seen.badIcrc++;
    }
    expect(seen.ok).toBeGreaterThan(100);
    expect(seen.badIcrc).toBeGreaterThan(100);
    expect(seen.error).toBeGreaterThan(100);
  });
});

describe("decode: headers the rxe captures lack (built with the codec)", () => {
  const base = { src: "10.0.0.1", dst: "10.0.0.2", destQp: 0x42, psn: 7 };
  it("ImmDt, IETH and FETH as numbers under their names", () => {
    const imm = decodePacket(codec, codec.emit({ ...base, opcode: 5, immDt: 0xdeadbeef, payload: new Uint8Array(8) }), { frame: 1 });
    expect(imm.record).toMatchObject({ opcode_name: "RC Send Only Immediate", "infiniband.immdt": 0xdeadbeef, payload_len: 8, icrc_ok: true });
    const inv = decodePacket(codec, codec.emit({ ...base, opcode: 23, ieth: { rkey: 0xcafe01 }, payload: new Uint8Array(4) }), { frame: 2 });
    expect(inv.record).toMatchObject({ "infiniband.ieth": 0xcafe01, icrc_ok: true });
    expect(inv.record["infiniband.immdt"]).toBeUndefined();
    const flush = decodePacket(
      codec,
      codec.emit({ ...base, opcode: 0x1c, feth: 0x11, reth: { va: 0x1000n, rkey: 2, dmaLength: 64 } }),
      { frame: 3 },
    );
    expect(flush.record).toMatchObject({ opcode_name: "RC Flush", "infiniband.feth": 0x11, "infiniband.reth.va": "0x0000000000001000", icrc_ok: true });
    // wire order: FETH before RETH
    expect(formatTree(flush)).toContain("  infiniband.feth: 0x00000011 (17)\n  infiniband.reth.va: 0x0000000000001000\n");
  });

  it("ECN bits and a 24-bit PSN and QP at their limits", () => {
    const d = decodePacket(codec, codec.emit({ ...base, opcode: 4, fecn: 1, becn: 1, psn: 0xffffff, destQp: 0xffffff, migReq: 1 }), { frame: 1 });
    expect(d.record).toMatchObject({
      "infiniband.bth.fecn": 1,
      "infiniband.bth.becn": 1,
      "infiniband.bth.m": 1,
      "infiniband.bth.psn": 0xffffff,
      "infiniband.bth.destqp": 0xffffff,
      icrc_ok: true,
    });
  });
});
