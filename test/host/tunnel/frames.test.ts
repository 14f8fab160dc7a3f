// The tunnel frame codec (docs/TUNNEL.md): golden bytes for each kind, round trips,
// and hostile input — every malformed frame is a TunnelFrameError with its code.
import { describe, expect, it } from "vitest";
import {
  BATCH_MAX_COUNT, BatchWriter, DATA_HEADER_LEN, visitDatagrams, recordPort, recordIpId, RECORD_ADDRESS_OFF, FrameKind, HELLO_LEN, HELLO_V2_LEN, TunnelFrameError, TUNNEL_ERRORS, emitBatch, emitData,
  emitError, emitHello, parseFrame, type BatchFrame, type FrameErrorCode,
} from "../../../host/core/tunnel/frames.js";
import { Prng } from "../../../host/core/sim/prng.js";
import { addressGidBytes, gidToAddress as gidBytesToAddress } from "../../../host/core/net/gid.js";

function addressGidBytesOf(a: string): Uint8Array {
  const g = addressGidBytes(a);
  if (!g) throw new Error(a);
  return g;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const bytes = (h: string) => Uint8Array.from(Buffer.from(h.replace(/\s/g, ""), "hex"));

function code(f: () => unknown): FrameErrorCode | "no error" {
  try {
    f();
    return "no error";
  } catch (e) {
    if (!(e instanceof TunnelFrameError)) throw new Error(`not a TunnelFrameError: ${String(e)}`);
    return e.code;
  }
}

const ROCE = bytes("04000000 00000011 00000100 01020304 a1b2c3d4"); // SEND_ONLY to QP 0x11, 4 payload bytes, ICRC

describe("tunnel frames", () => {
  it("DATA: golden bytes, IPv4 and IPv6 peers, round trip", () => {
    const f = emitData("192.0.2.7", 4791, 0, [ROCE.subarray(0, 12), ROCE.subarray(12)]);
    expect(hex(f)).toBe("0101" + "12b7" + "00000000000000000000ffffc0000207" + "00000000" + hex(ROCE));
    expect(parseFrame(f)).toEqual({ kind: FrameKind.DATA, address: "192.0.2.7", port: 4791, ipId: 0, payload: ROCE });
    const g = emitData("2001:db8::1", 50000, 0xffffffff, [ROCE]);
    expect(hex(g.subarray(0, DATA_HEADER_LEN))).toBe("0101c350" + "20010db8000000000000000000000001" + "ffffffff");
    expect(parseFrame(g)).toMatchObject({ address: "2001:db8::1", port: 50000, ipId: 0xffffffff });
    expect(parseFrame(g.buffer as ArrayBuffer)).toMatchObject({ kind: FrameKind.DATA });
  });

  it("HELLO: golden bytes and round trip", () => {
    const h = { address: "127.0.0.1", port: 4791, ipIdPolicy: 0, dontFragment: true, maxPayload: 4188, qpnBase: 1024, qpnCount: 1024, clientId: 7 };
    const f = emitHello(h);
    expect(f.length).toBe(HELLO_LEN);
    expect(hex(f)).toBe("0102" + "12b7" + "00000000000000000000ffff7f000001" + "00" + "01" + "105c" + "00000400" + "00000400" + "00000007");
    expect(parseFrame(f)).toEqual({ kind: FrameKind.HELLO, version: 1, ...h });
  });

  it("ERROR: golden bytes, names, reason cut at a character boundary", () => {
    const f = emitError("rate_limited", "slow down");
    expect(hex(f)).toBe("0103" + "0004" + Buffer.from("slow down").toString("hex"));
    expect(parseFrame(f)).toEqual({ kind: FrameKind.ERROR, code: 4, name: "rate_limited", reason: "slow down" });
    const long = emitError("not_roce", "é".repeat(100));
    const p = parseFrame(long);
    expect(p).toMatchObject({ name: "not_roce", reason: "é".repeat(59) });
    expect(TUNNEL_ERRORS.indexOf("qpn_not_owned")).toBe(5);
  });

  it("refuses malformed frames with typed errors", () => {
    const d = emitData("10.0.0.1", 4791, 0, [ROCE]);
    const h = emitHello({ address: "10.0.0.1", port: 4791, ipIdPolicy: 0, dontFragment: true, maxPayload: 4188, qpnBase: 1024, qpnCount: 1024, clientId: 1 });
    const mut = (b: Uint8Array, i: number, v: number) => { const c = b.slice(); c[i] = v; return c; };
    expect(code(() => parseFrame(new Uint8Array(0)))).toBe("short");
    expect(code(() => parseFrame(new Uint8Array([1])))).toBe("short");
    expect(code(() => parseFrame(mut(d, 0, 3)))).toBe("bad_version");
    expect(code(() => parseFrame(mut(d, 0, 0)))).toBe("bad_version");
    // a version-1 connection takes only version-1 frames
    expect(code(() => parseFrame(mut(d, 0, 2), 1))).toBe("bad_version");
    expect(code(() => parseFrame(mut(d, 0, 2)))).toBe("no error");
    expect(code(() => parseFrame(mut(d, 1, 0)))).toBe("bad_kind");
    expect(code(() => parseFrame(mut(d, 1, 9)))).toBe("bad_kind");
    expect(code(() => parseFrame(d.subarray(0, DATA_HEADER_LEN + 15)))).toBe("short");
    expect(code(() => parseFrame(mut(mut(d, 2, 0), 3, 0)))).toBe("bad_port");
    expect(code(() => parseFrame(h.subarray(0, 35)))).toBe("bad_length");
    expect(code(() => parseFrame(mut(h, 20, 1)))).toBe("bad_ip_id");
    expect(code(() => parseFrame(mut(h, 21, 3)))).toBe("bad_reserved");
    expect(code(() => parseFrame(mut(h, 24, 0xff)))).toBe("bad_qpn_range");
    expect(code(() => parseFrame(mut(mut(h, 22, 0), 23, 8)))).toBe("bad_length");
    expect(code(() => parseFrame(new Uint8Array([1, 3, 0, 1, 0xc3])))).toBe("bad_utf8");
    expect(code(() => parseFrame(new Uint8Array([1, 3, 0])))).toBe("bad_length");
    expect(code(() => parseFrame("text" as never))).toBe("not_bytes");
    expect(code(() => emitData("nowhere", 4791, 0, [ROCE]))).toBe("bad_address");
    expect(code(() => emitData("10.0.0.1", 0, 0, [ROCE]))).toBe("bad_port");
  });

  it("random and mutated frames never throw anything but TunnelFrameError", () => {
    const rng = new Prng(7);
    const seeds = [
      emitData("10.0.0.1", 4791, 0, [ROCE]),
      emitHello({ address: "fe80::1", port: 4791, ipIdPolicy: 0, dontFragment: false, maxPayload: 1100, qpnBase: 2, qpnCount: 5, clientId: 3 }),
      emitError("internal", "x"),
    ];
    const seen = new Set<string>();
    for (let i = 0; i < 20000; i++) {
      let b: Uint8Array;
      if (i % 2 === 0) {
        b = new Uint8Array(rng.below(64));
        for (let j = 0; j < b.length; j++) b[j] = rng.below(256);
        if (b.length > 0 && i % 4 === 0) b[0] = 1;
      } else {
        b = seeds[i % 3]!.slice(0, 1 + (rng.below(60)));
        for (let k = 0; k < 3; k++) if (b.length) b[rng.below(b.length)] = rng.below(256);
      }
      seen.add(code(() => parseFrame(b)));
    }
    expect(seen).toContain("no error");
    expect(seen).toContain("bad_version");
    expect(seen).toContain("short");
  });

  it("formats GIDs as rxe shows them", () => {
    expect(gidBytesToAddress(bytes("00000000000000000000ffff0a000001"))).toBe("10.0.0.1");
    expect(gidBytesToAddress(bytes("fe800000000000000000000000000001"))).toBe("fe80::1");
    expect(gidBytesToAddress(new Uint8Array(16))).toBe("::");
    expect(gidBytesToAddress(bytes("00010000000000010000000000000000"))).toBe("1:0:0:1::");
  });
});

describe("tunnel frames, version 2", () => {
  const H2 = { version: 2, address: "127.0.0.1", port: 4791, ipIdPolicy: 0, dontFragment: true, maxPayload: 4188, qpnBase: 1024, qpnCount: 1024, clientId: 7, maxFrame: 262144 };

  it("HELLO v2: 40 bytes, max_frame last; refused below one DATA frame", () => {
    const f = emitHello(H2);
    expect(f.length).toBe(HELLO_V2_LEN);
    expect(hex(f)).toBe("0202" + "12b7" + "00000000000000000000ffff7f000001" + "00" + "01" + "105c" + "00000400" + "00000400" + "00000007" + "00040000");
    expect(parseFrame(f)).toEqual({ kind: FrameKind.HELLO, ...H2 });
    expect(code(() => emitHello({ ...H2, maxFrame: 24 + 4187 }))).toBe("bad_length");
    const small = f.slice();
    small.set([0, 0, 0x10, 0x6f], 36); // 4207 < 24 + 4188
    expect(code(() => parseFrame(small))).toBe("bad_length");
    expect(code(() => parseFrame(f.subarray(0, HELLO_LEN)))).toBe("bad_length");
    // a version-1 HELLO is still 36 bytes
    const v1 = emitHello({ ...H2, version: 1 });
    expect(v1.length).toBe(HELLO_LEN);
    expect(parseFrame(v1)).not.toHaveProperty("maxFrame");
  });

  it("BATCH: golden bytes, round trip, every datagram a view into the frame", () => {
    const other = bytes("0a000000 00000022 00000101 a1b2c3d4"); // RC SEND_ONLY to QP 0x22, no payload
    const f = emitBatch([
      { address: "192.0.2.7", port: 4791, ipId: 0, payload: ROCE },
      { address: "2001:db8::1", port: 50000, ipId: 0xffffffff, payload: other },
    ]);
    expect(hex(f)).toBe(
      "0204" + "0002" +
        "0014" + "12b7" + "00000000000000000000ffffc0000207" + "00000000" + hex(ROCE) +
        "0010" + "c350" + "20010db8000000000000000000000001" + "ffffffff" + hex(other),
    );
    const p = parseFrame(f);
    expect(p).toEqual({
      kind: FrameKind.BATCH,
      datagrams: [
        { kind: FrameKind.DATA, address: "192.0.2.7", port: 4791, ipId: 0, payload: ROCE },
        { kind: FrameKind.DATA, address: "2001:db8::1", port: 50000, ipId: 0xffffffff, payload: other },
      ],
    });
    // emit == what parse accepts: re-emitting the parsed frame gives the same bytes
    expect(hex(emitBatch((p as BatchFrame).datagrams))).toBe(hex(f));
    expect((p as BatchFrame).datagrams[1]!.payload.buffer).toBe(f.buffer);
  });

  it("BATCH: refuses a wrong count, a short or overlong record, a zero port, trailing bytes, version 1", () => {
    const f = emitBatch([{ address: "10.0.0.1", port: 4791, ipId: 0, payload: ROCE }, { address: "10.0.0.2", port: 4791, ipId: 0, payload: ROCE }]);
    const mut = (i: number, v: number) => { const c = f.slice(); c[i] = v; return c; };
    expect(code(() => parseFrame(f))).toBe("no error");
    expect(code(() => parseFrame(mut(3, 0)))).toBe("bad_length"); // count 0
    expect(code(() => parseFrame(mut(3, 3)))).toBe("short"); // a third datagram that is not there
    expect(code(() => parseFrame(mut(3, 1)))).toBe("bad_length"); // one datagram, then 44 stray bytes
    expect(code(() => parseFrame(mut(2, 0x04)))).toBe("bad_length"); // 1026 > BATCH_MAX_COUNT
    expect(code(() => parseFrame(mut(5, 15)))).toBe("bad_length"); // a 15-byte datagram
    expect(code(() => parseFrame(mut(5, 21)))).toBe("short"); // runs into the next record... and past the end
    const port0 = mut(6, 0);
    port0[7] = 0;
    expect(code(() => parseFrame(port0))).toBe("bad_port");
    expect(code(() => parseFrame(mut(0, 1)))).toBe("bad_kind"); // BATCH is not a version-1 kind
    expect(code(() => parseFrame(f.subarray(0, f.length - 1)))).toBe("short");
    expect(code(() => parseFrame(f.subarray(0, 3)))).toBe("short");
    expect(code(() => parseFrame(new Uint8Array([2, 4, 0, 1])))).toBe("short");
    expect(code(() => emitBatch([]))).toBe("bad_length");
    expect(code(() => emitBatch([{ address: "10.0.0.1", port: 0, ipId: 0, payload: ROCE }]))).toBe("bad_port");
    expect(code(() => emitBatch([{ address: "10.0.0.1", port: 1, ipId: 0, payload: ROCE.subarray(0, 15) }]))).toBe("bad_length");
  });

  it("BatchWriter: one datagram is a DATA frame, more a BATCH; full at max frame or count; same bytes as emitBatch", () => {
    const w = new BatchWriter(4 + 2 * (24 + ROCE.length));
    expect(w.take()).toBeUndefined();
    expect(w.add("10.0.0.1", 4791, 0, [ROCE.subarray(0, 5), ROCE.subarray(5)])).toBe(true);
    const one = w.take()!;
    expect(hex(one)).toBe(hex(emitData("10.0.0.1", 4791, 0, [ROCE], 2)));
    expect(parseFrame(one)).toEqual({ kind: FrameKind.DATA, address: "10.0.0.1", port: 4791, ipId: 0, payload: ROCE });
    expect(w.add("10.0.0.1", 4791, 0, [ROCE])).toBe(true);
    expect(w.add("10.0.0.2", 4792, 5, [ROCE])).toBe(true);
    expect(w.add("10.0.0.3", 4793, 0, [ROCE])).toBe(false); // would pass max frame: nothing taken
    expect(w.count).toBe(2);
    const two = w.take()!;
    expect(hex(two)).toBe(hex(emitBatch([{ address: "10.0.0.1", port: 4791, ipId: 0, payload: ROCE }, { address: "10.0.0.2", port: 4792, ipId: 5, payload: ROCE }])));
    expect(w.count).toBe(0);
    // a large batch (over 4 KiB) leaves in the writer's buffer; the next does not overwrite it
    const big = new BatchWriter(1 << 20);
    const pay = new Uint8Array(4000).fill(7);
    pay.set(ROCE.subarray(0, 12));
    for (let i = 0; i < 3; i++) expect(big.add("10.0.0.1", 4791, 0, [pay])).toBe(true);
    const first = big.take()!;
    const copy = first.slice();
    for (let i = 0; i < 3; i++) big.add("10.0.0.9", 9, 0, [new Uint8Array(4000)]);
    big.take();
    expect(hex(first)).toBe(hex(copy));
    expect((parseFrame(first) as BatchFrame).datagrams.length).toBe(3);
    // the count bound
    const many = new BatchWriter(1 << 20);
    let n = 0;
    while (many.add("10.0.0.1", 4791, 0, [ROCE])) n++;
    expect(n).toBe(BATCH_MAX_COUNT);
    expect((parseFrame(many.take()!) as BatchFrame).datagrams.length).toBe(BATCH_MAX_COUNT);
    expect(() => new BatchWriter(20)).toThrow(RangeError);
  });

  it("BatchWriter.lend: take's bytes in the writer's own buffer, untouched until returned (in order), then reused", () => {
    const w = new BatchWriter(1 << 16);
    const ref = new BatchWriter(1 << 16);
    expect(w.lend()).toBeUndefined();
    for (const x of [w, ref]) x.add("10.0.0.1", 4791, 0, [ROCE]);
    const one = w.lend()!;
    expect(hex(one)).toBe(hex(ref.take()!)); // a DATA frame, as take
    const oneBytes = one.slice();
    for (const x of [w, ref]) for (const port of [5000, 5001]) x.add("10.0.0.2", port, 3, [ROCE]);
    const two = w.lend()!;
    expect(hex(two)).toBe(hex(ref.take()!)); // a BATCH, as take
    expect(two.buffer).not.toBe(one.buffer);
    expect(w.lentCount).toBe(2);
    // a third message while both are lent: a new buffer, both lent ones unchanged
    w.add("10.0.0.3", 6000, 0, [new Uint8Array(ROCE.length).fill(0xee)]);
    const three = w.lend()!;
    expect([three.buffer === one.buffer, three.buffer === two.buffer]).toEqual([false, false]);
    expect(hex(one)).toBe(hex(oneBytes));
    // given back oldest first: the writer moves to it at its next lend, the message after is written there
    w.returned();
    expect(w.lentCount).toBe(2);
    w.add("10.0.0.4", 7000, 0, [ROCE]);
    const four = w.lend()!;
    expect([one, two, three].some((x) => x.buffer === four.buffer)).toBe(false);
    w.add("10.0.0.5", 7001, 0, [ROCE]);
    const five = w.lend()!;
    expect(five.buffer).toBe(one.buffer);
    expect(parseFrame(five)).toMatchObject({ kind: FrameKind.DATA, address: "10.0.0.5", port: 7001 });
    expect((parseFrame(two) as BatchFrame).datagrams.map((d) => d.port)).toEqual([5000, 5001]);
    for (let i = 0; i < 5; i++) w.returned(); // more than lent: nothing happens
    expect(w.lentCount).toBe(0);
  });

  it("BatchWriter.addFrom writes what add writes (GID at an offset, payload from a larger buffer); visitDatagrams reads it back in place", () => {
    const a = new BatchWriter(1 << 16);
    const b = new BatchWriter(1 << 16);
    const gids = new Uint8Array(40);
    gids.set(addressGidBytesOf("2001:db8::7"), 3);
    gids.set(addressGidBytesOf("192.0.2.9"), 21);
    const src = new Uint8Array(200).map((_, i) => (i * 7) & 0xff);
    a.add("2001:db8::7", 4791, 0, [src.subarray(10, 42)]);
    a.add("192.0.2.9", 5000, 0xffffffff, [src.subarray(100, 116)]);
    b.addFrom(gids, 3, 4791, 0, src, 10, 32);
    b.addFrom(gids, 21, 5000, 0xffffffff, src, 100, 16);
    const fa = a.take()!;
    expect(Buffer.from(b.take()!).toString("hex")).toBe(Buffer.from(fa).toString("hex"));
    const seen: string[] = [];
    const kind = visitDatagrams(fa, 2, (f, at, p, len) => {
      seen.push(`${recordPort(f, at)} ${gidBytesToAddress(f, at + RECORD_ADDRESS_OFF)} ${recordIpId(f, at)} ${p - at} ${len}`);
      return seen.length < 1; // stops after the first
    });
    expect(kind).toBe(FrameKind.BATCH);
    expect(seen).toEqual(["4791 2001:db8::7 0 24 32"]);
    expect(() => b.addFrom(gids, 30, 4791, 0, src, 0, 16)).toThrow(TunnelFrameError); // a GID that runs past its buffer
    // a frame the visitor refuses is refused whole, before any datagram is visited
    const bad = fa.slice(0, fa.length - 1);
    let visits = 0;
    expect(() => visitDatagrams(bad, 2, () => (visits++, true))).toThrow(TunnelFrameError);
    expect(visits).toBe(0);
    expect(() => visitDatagrams(fa, 1, () => true)).toThrow(/bad_version/);
  });
});
