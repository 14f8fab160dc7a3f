// The CM message codec: a REQ as Linux's rdma_cm builds it for rping over
// RoCEv2, byte for byte (written out by hand from IBTA Table 106 and Linux's
// cm_format_req); every layout's extent and reserved bits; round trips over
// random messages; the tshark names the tables carry; strict parsing.
import { describe, expect, it } from "vitest";
import {
  blankCm, CLASS_PORT_INFO, CLASS_PORT_INFO_SIZE, CM_MESSAGES, emitClassPortInfo, emitCmMad, parseClassPortInfo, parseCmMad,
  privateDataSize, type CmMsgName,
} from "../../../host/core/cm/cm-msgs.js";
import { checkLayout, fieldEnd, fieldStart, type Layout } from "../../../host/core/cm/iba-fields.js";
import { MadError, MadMethod, MAD_DATA_SIZE, MAD_HEADER } from "../../../host/core/cm/mad.js";
import { emitCmaHdr } from "../../../host/core/cm/cma-hdr.js";
import { parseHex } from "../../../host/core/wire/hex.js";
import { Prng } from "../../../host/core/sim/prng.js";
import { errorCode } from "./cm-harness.js";

const z = (n: number) => "00".repeat(n);

// rping's REQ from 10.0.0.1 (rdma_cm port 0x9a12) to 10.0.0.2:7174, QPN 0x11, PSN 0xabcdef,
// comm ID 0x12345678, hi_tid 1, CA GUID 0x0002c90300000001.
const RPING_REQ_HEX = [
  "01 07 02 03 0000 0000", // base version 1, class CM, class version 2, Send, status, class specific
  "00000001 78563412", // TID: hi_tid, then the comm ID as a little-endian Linux stores it
  "0010 0000 00000000", // attribute REQ, reserved, attribute modifier
  "12345678", // local comm ID
  z(4),
  "0000000001061c06", // service ID: RDMA_PS_TCP << 16 | 7174
  "0002c90300000001", // local CA GUID
  z(4),
  "00000000", // local Q_Key (0 for RC)
  "000011 01", // local QPN, responder resources
  "000000 01", // local EECN, initiator depth
  "000000 a0", // remote EECN; remote CM response timeout 20, transport RC, no e2e flow control
  "abcdef a7", // starting PSN; local CM response timeout 20, retry count 7
  "ffff", // P_Key
  "37", // path MTU 1024 (3), RDC no, RNR retry 7
  "f0", // max CM retries 15, SRQ no, extended transport 0
  "ffff ffff", // routed path: permissive LIDs
  z(10) + "ffff 0a000001", // primary local GID ::ffff:10.0.0.1
  z(10) + "ffff 0a000002", // primary remote GID
  "12345 000", // flow label 0x12345 (20 bits), 6 reserved bits, packet rate 0 (6 bits)
  "00 40 00 88", // traffic class 0, hop limit 64, SL 0 / not subnet local, local ACK timeout 17
  z(44), // no alternate path
  "00 40 9a12", // rdma_cm header: version 0, IPv4, source port
  z(12) + "0a000001", // source 10.0.0.1
  z(12) + "0a000002", // destination 10.0.0.2
  "7270696e67", // "rping"
  z(92 - 36 - 5),
].join("").replace(/\s/g, "");

function rpingReqFields() {
  const pd = new Uint8Array(92);
  emitCmaHdr({ src: "10.0.0.1", dst: "10.0.0.2", port: 0x9a12 }, pd);
  pd.set(new TextEncoder().encode("rping"), 36);
  const gid = (last: number) => Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, last]);
  return {
    localCommId: 0x12345678, serviceId: 0x0000000001061c06n, localCaGuid: 0x0002c90300000001n, localQpn: 0x11,
    responderResources: 1, initiatorDepth: 1, remoteCmResponseTimeout: 20, startingPsn: 0xabcdef, localCmResponseTimeout: 20,
    retryCount: 7, partitionKey: 0xffff, pathPacketPayloadMtu: 3, rnrRetryCount: 7, maxCmRetries: 15,
    primaryLocalPortLid: 0xffff, primaryRemotePortLid: 0xffff, primaryLocalPortGid: gid(1), primaryRemotePortGid: gid(2),
    primaryFlowLabel: 0x12345, primaryHopLimit: 64, primaryLocalAckTimeout: 17, privateData: pd,
  };
}

describe("CM messages: golden bytes", () => {
  it("emits rping's REQ byte for byte and parses it back field for field", () => {
    const golden = parseHex(RPING_REQ_HEX);
    expect(golden.length).toBe(256);
    const mad = emitCmMad("REQ", { transactionId: 0x0000000178563412n }, rpingReqFields());
    expect(Buffer.from(mad).toString("hex")).toBe(Buffer.from(golden).toString("hex"));
    const m = parseCmMad(golden);
    expect(m.name).toBe("REQ");
    expect(m.hdr).toMatchObject({ baseVersion: 1, mgmtClass: 7, classVersion: 2, method: 3, attributeId: 0x10, transactionId: 0x0000000178563412n });
    expect(m.msg).toEqual({ ...blankCm("REQ"), ...rpingReqFields() });
  });

  it("places the bit fields of REP, MRA, REJ, DREQ and SIDR where Linux's IBA_FIELD macros do", () => {
    const rep = emitCmMad("REP", {}, {
      localQpn: 0xabcdef, startingPsn: 0x123456, responderResources: 0x81, initiatorDepth: 0x42, targetAckDelay: 15,
      failoverAccepted: 3, endToEndFlowControl: 1, rnrRetryCount: 5, srq: 1, localCaGuid: 0x1122334455667788n,
    });
    const d = (m: Uint8Array, o: number, n: number) => Buffer.from(m.subarray(24 + o, 24 + o + n)).toString("hex");
    expect(d(rep, 12, 4)).toBe("abcdef00");
    expect(d(rep, 20, 4)).toBe("12345600");
    expect(d(rep, 24, 4)).toBe("8142" + "7f" + "b0"); // 15<<3 | 3<<1 | 1 ; 5<<5 | 1<<4
    expect(d(rep, 28, 8)).toBe("1122334455667788");
    const mra = emitCmMad("MRA", {}, { messageMraed: 1, serviceTimeout: 24 });
    expect(d(mra, 8, 2)).toBe("40c0");
    const rej = emitCmMad("REJ", {}, { messageRejected: 2, rejectedInfoLength: 8, reason: 28 });
    expect(d(rej, 8, 4)).toBe("8010001c");
    const dreq = emitCmMad("DREQ", {}, { remoteQpnEecn: 0x000022 });
    expect(d(dreq, 8, 4)).toBe("00002200");
    const sidr = emitCmMad("SIDR_REP", {}, { status: 2, additionalInformationLength: 0, qpn: 0x33, serviceId: 0x11110000n + 5n, qkey: 0x01234567 });
    expect(d(sidr, 4, 20)).toBe("0200000000003300" + "0000000011110005" + "01234567");
    const sreq = emitCmMad("SIDR_REQ", {}, { requestId: 7, partitionKey: 0xffff, serviceId: 9n });
    expect(d(sreq, 0, 16)).toBe("00000007ffff00000000000000000009");
  });
});

// Bits no field covers, per message (reserved in IBTA chapter 12 and Linux's cm_msgs.h).
const RESERVED_BITS: Record<CmMsgName, number> = {
  REQ: 32 + 32 + (6 + 3 + 3) + (6 + 3 + 2), // rsvd4, rsvd24, primary path, alternate (SAP took one)
  MRA: 6 + 3,
  REJ: 6 + 1,
  REP: 8 + 8 + 8 + 4,
  RTU: 0,
  DREQ: 8,
  DREP: 0,
  SIDR_REQ: 16,
  SIDR_REP: 16 + 8,
  LAP: 32 + 3 + 32 + 4 + 2 + 3 + 3,
  APR: 16,
};

describe("CM messages: layouts", () => {
  for (const name of Object.keys(CM_MESSAGES) as CmMsgName[]) {
    it(`${name}: fields inside 232 bytes, none overlapping, ${RESERVED_BITS[name]} reserved bits, private data last`, () => {
      const layout = CM_MESSAGES[name].layout as Layout;
      expect(checkLayout(layout, MAD_DATA_SIZE)).toEqual([]);
      const covered = Object.values(layout).reduce((n, f) => n + fieldEnd(f) - fieldStart(f), 0);
      expect(MAD_DATA_SIZE * 8 - covered).toBe(RESERVED_BITS[name]);
      expect(fieldEnd(layout.privateData!)).toBe(MAD_DATA_SIZE * 8);
    });
  }

  it("private data sizes are ib_cm.h's", () => {
    expect(Object.fromEntries((Object.keys(CM_MESSAGES) as CmMsgName[]).map((k) => [k, privateDataSize(k)]))).toEqual({
      REQ: 92, MRA: 222, REJ: 148, REP: 196, RTU: 224, DREQ: 220, DREP: 224, SIDR_REQ: 216, SIDR_REP: 136, LAP: 168, APR: 148,
    });
  });

  it("ClassPortInfo is 72 bytes, every bit a field", () => {
    expect(checkLayout(CLASS_PORT_INFO, CLASS_PORT_INFO_SIZE)).toEqual([]);
    const covered = Object.values(CLASS_PORT_INFO).reduce((n, f) => n + fieldEnd(f) - fieldStart(f), 0);
    expect(CLASS_PORT_INFO_SIZE * 8 - covered).toBe(8); // only the byte before RedirectQP
    const mad = emitClassPortInfo({ mgmtClass: 7, classVersion: 2, method: MadMethod.GET_RESP }, { respTimeValue: 18, capabilityMask2: 1, trapQp: 0x123456 });
    expect(Buffer.from(mad.subarray(28, 32)).toString("hex")).toBe("00000032");
    expect(parseClassPortInfo(mad).info).toMatchObject({ respTimeValue: 18, capabilityMask2: 1, trapQp: 0x123456 });
  });

  it("the tshark names the tables carry are names tshark 4.0 has", () => {
    const known = new Set(TSHARK_CM_FIELDS.split(" "));
    for (const name of Object.keys(CM_MESSAGES) as CmMsgName[]) {
      for (const [field, f] of Object.entries(CM_MESSAGES[name].layout as Layout)) {
        if (f.wireshark) expect(known.has(f.wireshark), `${name}.${field}: ${f.wireshark}`).toBe(true);
      }
    }
    // every message tshark dissects has every named field mapped
    const mapped = new Set((["REQ", "REP", "RTU", "REJ", "DREQ", "DREP"] as CmMsgName[]).flatMap((n) =>
      Object.values(CM_MESSAGES[n].layout as Layout).map((f) => f.wireshark)));
    for (const f of Object.values(MAD_HEADER)) mapped.add(f.wireshark);
    mapped.add("infiniband.mad.data");
    const unmapped = [...known].filter((k) => !mapped.has(k) && !/reserved|ip_cm|serviceid\.|_ipv4$/.test(k));
    expect(unmapped).toEqual([]);
  });
});

describe("CM messages: round trips", () => {
  it("random messages of every kind: emit, parse gives the fields, emit again gives the bytes", () => {
    const prng = new Prng(1234);
    for (let round = 0; round < 40; round++) {
      for (const name of Object.keys(CM_MESSAGES) as CmMsgName[]) {
        const layout = CM_MESSAGES[name].layout as Layout;
        const rec: Record<string, unknown> = {};
        for (const [k, f] of Object.entries(layout)) {
          if (f.kind === "uint") rec[k] = f.bits === 32 ? prng.u32() : prng.below(2 ** f.bits);
          else if (f.kind === "u64") rec[k] = (BigInt(prng.u32()) << 32n) | BigInt(prng.u32());
          else rec[k] = Uint8Array.from({ length: f.length }, () => prng.below(256));
        }
        const tid = (BigInt(prng.u32()) << 32n) | BigInt(prng.u32());
        const mad = emitCmMad(name, { transactionId: tid }, rec as never);
        const back = parseCmMad(mad);
        expect(back.name).toBe(name);
        expect(back.hdr.transactionId).toBe(tid);
        expect(back.msg).toEqual(rec);
        expect(emitCmMad(name, back.hdr, back.msg as never)).toEqual(mad);
      }
    }
  });

  it("values that do not fit their field are refused at emit (RangeError), never truncated", () => {
    expect(() => emitCmMad("REQ", {}, { localQpn: 1 << 24 })).toThrow(RangeError);
    expect(() => emitCmMad("REQ", {}, { retryCount: 8 })).toThrow(/retryCount/);
    expect(() => emitCmMad("REQ", {}, { privateData: new Uint8Array(93) })).toThrow(/privateData/);
    expect(() => emitCmMad("REP", {}, { localCaGuid: 1n << 64n })).toThrow(RangeError);
  });
});

describe("CM messages: strict parsing", () => {
  const codeOf = (b: Uint8Array): string => errorCode(() => parseCmMad(b), MadError);

  it("each rule broken gives its code", () => {
    const good = emitCmMad("RTU", {}, {});
    expect(codeOf(good)).toBe("ok");
    expect(codeOf(good.subarray(0, 255))).toBe("bad_length");
    expect(codeOf(new Uint8Array(257))).toBe("bad_length");
    const v = good.slice(); v[0] = 2;
    expect(codeOf(v)).toBe("bad_base_version");
    const c = good.slice(); c[1] = 3;
    expect(codeOf(c)).toBe("bad_class");
    const cv = good.slice(); cv[2] = 1;
    expect(codeOf(cv)).toBe("bad_class_version");
    const mt = good.slice(); mt[3] = MadMethod.GET;
    expect(codeOf(mt)).toBe("bad_method");
    const at = good.slice(); at[17] = 0x1b;
    expect(codeOf(at)).toBe("unknown_attribute");
    expect(codeOf(new Uint8Array(0))).toBe("bad_length");
  });

  it("fuzz: random bytes and mutated MADs only ever give a message or a MadError", () => {
    const prng = new Prng(99);
    const base = parseHex(RPING_REQ_HEX);
    for (let i = 0; i < 3000; i++) {
      let b: Uint8Array;
      if (i % 3 === 0) b = Uint8Array.from({ length: prng.below(300) }, () => prng.below(256));
      else {
        b = base.slice();
        for (let k = 0; k < 1 + prng.below(6); k++) b[prng.below(b.length)] = prng.below(256);
      }
      try {
        const m = parseCmMad(b);
        expect(emitCmMad(m.name, m.hdr, m.msg as never).length).toBe(256);
      } catch (e) {
        expect(e).toBeInstanceOf(MadError);
      }
    }
  });
});

// `tshark -G fields` (4.0.17), the CM and MAD fields.
const TSHARK_CM_FIELDS =
  "infiniband.cm.req infiniband.cm.req.serviceid infiniband.cm.req.serviceid.prefix infiniband.cm.req.serviceid.protocol " +
  "infiniband.cm.req.serviceid.dport infiniband.cm.req.localcaguid infiniband.cm.req.localqkey infiniband.cm.req.localqpn " +
  "infiniband.cm.req.responderres infiniband.cm.req.localeecn infiniband.cm.req.initdepth infiniband.cm.req.remoteeecn " +
  "infiniband.cm.req.remoteresptout infiniband.cm.req.transpsvctype infiniband.cm.req.e2eflowctrl infiniband.cm.req.startpsn " +
  "infiniband.cm.req.localresptout infiniband.cm.req.retrcount infiniband.cm.req.pkey infiniband.cm.req.pppmtu " +
  "infiniband.cm.req.rdcexist infiniband.cm.req.rnrretrcount infiniband.cm.req.maxcmretr infiniband.cm.req.srq " +
  "infiniband.cm.req.ext_transport infiniband.cm.req.prim_locallid infiniband.cm.req.prim_remotelid " +
  "infiniband.cm.req.prim_localgid infiniband.cm.req.prim_remotegid infiniband.cm.req.prim_localgid_ipv4 " +
  "infiniband.cm.req.prim_remotegid_ipv4 infiniband.cm.req.prim_flowlabel infiniband.cm.req.prim_reserved0 " +
  "infiniband.cm.req.prim_pktrate infiniband.cm.req.prim_tfcclass infiniband.cm.req.prim_hoplim infiniband.cm.req.prim_sl " +
  "infiniband.cm.req.prim_subnetlocal infiniband.cm.req.prim_reserved1 infiniband.cm.req.prim_localacktout " +
  "infiniband.cm.req.prim_reserved2 infiniband.cm.req.alt_locallid infiniband.cm.req.alt_remotelid " +
  "infiniband.cm.req.alt_localgid infiniband.cm.req.alt_remotegid infiniband.cm.req.alt_flowlabel " +
  "infiniband.cm.req.alt_reserved0 infiniband.cm.req.alt_pktrate infiniband.cm.req.alt_tfcclass infiniband.cm.req.alt_hoplim " +
  "infiniband.cm.req.alt_sl infiniband.cm.req.alt_subnetlocal infiniband.cm.req.alt_reserved1 " +
  "infiniband.cm.req.alt_localacktout infiniband.cm.req.private infiniband.cm.req.ip_cm infiniband.cm.req.ip_cm.majv " +
  "infiniband.cm.req.ip_cm.minv infiniband.cm.req.ip_cm.ipv infiniband.cm.req.ip_cm.reserved infiniband.cm.req.ip_cm.sport " +
  "infiniband.cm.req.ip_cm.sip6 infiniband.cm.req.ip_cm.dip6 infiniband.cm.req.ip_cm.sip4 infiniband.cm.req.ip_cm.dip4 " +
  "infiniband.cm.req.ip_cm.private infiniband.cm.rep infiniband.cm.rep.remotecommid infiniband.cm.rep.localqkey " +
  "infiniband.cm.rep.localqpn infiniband.cm.rep.localeecn infiniband.cm.rep.startpsn infiniband.cm.rep.respres " +
  "infiniband.cm.rep.initdepth infiniband.cm.rep.tgtackdelay infiniband.cm.rep.failoveracc infiniband.cm.rep.e2eflowctrl " +
  "infiniband.cm.rep.rnrretrcount infiniband.cm.rep.srq infiniband.cm.rep.reserved infiniband.cm.rep.localcaguid " +
  "infiniband.cm.rep.private infiniband.cm.rtu.localcommid infiniband.cm.rtu.remotecommid infiniband.cm.rtu.private " +
  "infiniband.cm.rej.localcommid infiniband.cm.rej.remotecommid infiniband.cm.rej.msgrej infiniband.cm.rej.reserved0 " +
  "infiniband.cm.rej.rejinfolen infiniband.cm.rej.reserved1 infiniband.cm.rej.reason infiniband.cm.rej.ari " +
  "infiniband.cm.rej.private infiniband.cm.dreq.localcommid infiniband.cm.dreq.remotecommid " +
  "infiniband.cm.req.remoteqpneecn infiniband.cm.dreq.private infiniband.cm.drsp.localcommid " +
  "infiniband.cm.drsp.remotecommid infiniband.cm.drsp.private infiniband.mad.baseversion infiniband.mad.mgmtclass " +
  "infiniband.mad.classversion infiniband.mad.method infiniband.mad.status infiniband.mad.classspecific " +
  "infiniband.mad.transactionid infiniband.mad.attributeid infiniband.mad.attributemodifier infiniband.mad.data";
