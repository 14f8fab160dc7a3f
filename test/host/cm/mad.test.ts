// The common MAD header: golden bytes, strict parsing with coded errors, and
// the answer Linux's MAD layer gives to a Get/Set nobody registered for.
import { describe, expect, it } from "vitest";
import {
  emitMad, madHeader, MadError, MadMethod, MadStatus, MAD_HDR_SIZE, MAD_SIZE, MgmtClass, parseMad, unmatchedResponse,
  isResponseMethod, SMP_DIRECTION,
} from "../../../host/core/cm/mad.js";
import { checkLayout, readUint, uint, writeUint } from "../../../host/core/cm/iba-fields.js";
import { MAD_HEADER } from "../../../host/core/cm/mad.js";
import { parseHex } from "../../../host/core/wire/hex.js";
import { errorCode } from "./cm-harness.js";

describe("MAD header", () => {
  it("golden bytes: every header field at its offset, big-endian", () => {
    const hdr = madHeader({
      mgmtClass: 0x07, classVersion: 2, method: 0x81, status: 0x000c, classSpecific: 0xbeef,
      transactionId: 0x0102030405060708n, attributeId: 0x0001, attributeModifier: 0xcafef00d,
    });
    const mad = emitMad(hdr, Uint8Array.from([0xaa, 0xbb]));
    expect(mad.length).toBe(MAD_SIZE);
    expect(Buffer.from(mad.subarray(0, 26)).toString("hex")).toBe(
      "01070281" + "000c" + "beef" + "0102030405060708" + "0001" + "0000" + "cafef00d" + "aabb",
    );
    expect(mad.subarray(26).every((x) => x === 0)).toBe(true);
    const back = parseMad(mad);
    expect(back.hdr).toEqual(hdr);
    expect(back.data.length).toBe(MAD_SIZE - MAD_HDR_SIZE);
    expect(checkLayout(MAD_HEADER, MAD_HDR_SIZE)).toEqual([]);
  });

  it("the reserved word survives parse then emit (Linux ignores it; the bytes stay the bytes)", () => {
    const b = parseHex("01070203 0000 0000 0000000000000001 0010 abcd 00000000" + "00".repeat(232));
    const { hdr, data } = parseMad(b);
    expect(hdr.reserved).toBe(0xabcd);
    expect(emitMad(hdr, data)).toEqual(b);
  });

  it("strict: length and base version, each with its code; nothing else thrown", () => {
    const code = (b: unknown) => errorCode(() => parseMad(b as Uint8Array), MadError);
    expect(code(new Uint8Array(256).fill(1))).toBe("ok");
    expect(code(new Uint8Array(255))).toBe("bad_length");
    expect(code(new Uint8Array(24))).toBe("bad_length");
    expect(code("not bytes")).toBe("bad_length");
    expect(code(new Uint8Array(256))).toBe("bad_base_version");
  });

  it("emit refuses what parse would not take", () => {
    expect(() => emitMad(madHeader({ baseVersion: 2 }))).toThrow(RangeError);
    expect(() => emitMad(madHeader({}), new Uint8Array(233))).toThrow(RangeError);
    expect(() => emitMad(madHeader({ method: 0x100 }))).toThrow(/method/);
  });

  it("responses are methods with bit 7 (and TrapRepress)", () => {
    expect(isResponseMethod(MadMethod.GET_RESP)).toBe(true);
    expect(isResponseMethod(MadMethod.TRAP_REPRESS)).toBe(true);
    expect(isResponseMethod(MadMethod.SEND)).toBe(false);
    expect(isResponseMethod(MadMethod.GET)).toBe(false);
  });
});

describe("unmatched Get/Set (mad.c generate_unmatched_resp)", () => {
  it("a Get comes back as GetResp with status 0x000c and the rest of the MAD as it was", () => {
    const get = emitMad(madHeader({ mgmtClass: MgmtClass.PERF_MGMT, classVersion: 1, method: MadMethod.GET, status: 0x1234, transactionId: 9n, attributeId: 0x12 }), new Uint8Array([1, 2, 3]));
    const resp = unmatchedResponse(get)!;
    const { hdr, data } = parseMad(resp);
    expect(hdr).toMatchObject({ method: MadMethod.GET_RESP, status: MadStatus.UNSUPPORTED_METHOD_ATTRIB, transactionId: 9n, attributeId: 0x12, mgmtClass: 4 });
    expect(data.subarray(0, 3)).toEqual(new Uint8Array([1, 2, 3]));
  });

  it("a Set too; a directed-route SMP gets the direction bit; a Send or a response gets nothing", () => {
    expect(parseMad(unmatchedResponse(emitMad(madHeader({ method: MadMethod.SET })))!).hdr.method).toBe(MadMethod.GET_RESP);
    const dr = unmatchedResponse(emitMad(madHeader({ mgmtClass: MgmtClass.SUBN_DIRECTED_ROUTE, method: MadMethod.GET })))!;
    expect(parseMad(dr).hdr.status).toBe(MadStatus.UNSUPPORTED_METHOD_ATTRIB | SMP_DIRECTION);
    expect(unmatchedResponse(emitMad(madHeader({ method: MadMethod.SEND })))).toBeUndefined();
    expect(unmatchedResponse(emitMad(madHeader({ method: MadMethod.GET_RESP })))).toBeUndefined();
  });
});

describe("IBTA Byte[Bit] fields", () => {
  it("reads and writes a field that straddles bytes without touching its neighbours", () => {
    const b = new Uint8Array(8).fill(0xff);
    const f = uint(1, 20, 3); // byte 1 bit 3 .. byte 3 bit 6
    writeUint(b, 0, f, 0);
    expect(Buffer.from(b).toString("hex")).toBe("ffe00001ffffffff");
    writeUint(b, 0, f, 0xabcde);
    expect(readUint(b, 0, f)).toBe(0xabcde);
    expect(b[0]).toBe(0xff);
    expect(b[3]! & 0x01).toBe(1);
    expect(b[4]).toBe(0xff);
    expect(readUint(Uint8Array.from([0xde, 0xad, 0xbe, 0xef]), 0, uint(0, 32))).toBe(0xdeadbeef);
  });
});
