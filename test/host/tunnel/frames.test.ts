// The tunnel frame codec (docs/TUNNEL.md): golden bytes for each kind, round trips,
// and hostile input — every malformed frame is a TunnelFrameError with its code.
import { describe, expect, it } from "vitest";
import {
  DATA_HEADER_LEN, FrameKind, HELLO_LEN, TunnelFrameError, TUNNEL_ERRORS, emitData, emitError, emitHello,
  parseFrame, type FrameErrorCode,
} from "../../../host/core/tunnel/frames.js";
import { Prng } from "../../../host/core/sim/prng.js";
import { gidToAddress as gidBytesToAddress } from "../../../host/core/net/gid.js";

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
    expect(parseFrame(f)).toEqual({ kind: FrameKind.HELLO, ...h });
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
    expect(code(() => parseFrame(mut(d, 0, 2)))).toBe("bad_version");
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
