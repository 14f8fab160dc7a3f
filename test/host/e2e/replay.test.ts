// Capture replay: real Linux rxe ↔ rxe traffic (test/fixtures/captures, MTU 1024) against our
// device, in both roles, for RC, UC and UD — one table, one harness (test/host/support/replay.ts).
//
// RC responder: our device takes the place of the capture's responder and gets the requester's
// packets in capture order; its answers must equal rxe's (opcode, PSN, destination QP, AckReq,
// AETH syndrome and MSN, atomic original value, payload bytes), and memory, receive completions
// and receive buffers must hold what rxe's did.
// RC requester: our device takes the requester's place, is given the same work requests when the
// capture starts them and rxe's responses at their times; every request it sends must equal the
// next one rxe sent (retransmissions after an RNR NAK or a sequence NAK included), nothing more,
// and every work request completes with rxe's results.
// RC both sides: rc_pingpong, our device answering and sending at once.
// UC/UD: the receiver must accept every request and produce rxe's completions and buffers (UD:
// the GRH from the packet's own IP header); the sender must emit rxe's packets.
import { describe, expect, it } from "vitest";
import {
  core, isFetchAdd, replayRcDuplex, replayRcRequester, replayRcResponder, replayUnreliableRequester, replayUnreliableResponder, WC_OF_WR, MTU,
  type ResponderReplay,
} from "../support/replay.js";
import { addressGid, parseGid } from "../../../host/core/net/index.js";
import { AETH_NAK_SEQ, isRnrNak, OpMask, type WireCodec } from "../../../host/core/wire/index.js";
import { WcOpcode, WcStatus, WrOpcode } from "../../../host/core/verbs/index.js";

type RcCheck = "writes" | "reads" | "atomics" | "sends" | "rnr" | "seqerr";

const RC: { file: string; what: string; check: RcCheck; requester: boolean; duplex?: boolean }[] = [
  { file: "rc-write-only", what: "WRITE ONLY + ACK", check: "writes", requester: true },
  { file: "rc-write", what: "WRITE FIRST/MIDDLE/LAST, one ACK per message", check: "writes", requester: true },
  { file: "rc-write-long", what: "68-packet WRITEs, AckReq on the 66th packet", check: "writes", requester: true },
  { file: "rc-read-only", what: "READ RESPONSE ONLY", check: "reads", requester: true },
  { file: "rc-read", what: "READ requests, one PSN per response packet", check: "reads", requester: true },
  { file: "rc-atomic-cas", what: "CMP_SWAP -> ATOMIC ACK", check: "atomics", requester: true },
  { file: "rc-atomic-faa", what: "FETCH_ADD -> ATOMIC ACK", check: "atomics", requester: true },
  { file: "rc-send-multi", what: "multi-packet SENDs (rc_pingpong, IPv4)", check: "sends", requester: false, duplex: true },
  { file: "rc-send-v6", what: "multi-packet SENDs over IPv6", check: "sends", requester: false, duplex: true },
  { file: "rc-rnr", what: "RNR NAKs (rxe's timer code), then a PSN sequence NAK; resent after the RNR timer", check: "rnr", requester: true },
  { file: "rc-seqerr", what: "a lost WRITE MIDDLE: PSN-sequence NAK, go-back-N", check: "seqerr", requester: true },
];

/**
 * Applies the capture's WRITE packets (each PSN once; a packet lands at its message's VA +
 * (PSN - first PSN) × MTU) to zeroed copies of the MRs (rxe's started with unknown bytes; ours
 * zeroed) and compares.
 */
function expectWrites(res: ResponderReplay): void {
  const model = new Map([...res.mrs].map(([k, { mr }]) => [k, new Uint8Array(mr.length)]));
  let start: { rkey: number; off: number; psn: number } | undefined;
  for (const q of res.requests) {
    if (!(q.mask & OpMask.WRITE)) continue;
    const r = q.repr;
    if (r.reth) start = { rkey: r.reth.rkey, off: Number(r.reth.va - res.mrs.get(r.reth.rkey)!.base), psn: r.psn };
    const off = start!.off + ((r.psn - start!.psn) & 0xffffff) * MTU;
    model.get(start!.rkey)!.set(r.payload, off);
  }
  for (const [rkey, { mr }] of res.mrs) expect(Buffer.from(mr.bytes).equals(Buffer.from(model.get(rkey)!)), `MR for rkey ${rkey}`).toBe(true);
}

/** Each atomic address holds what its last operation left: that op applied to the original value rxe returned for it. */
function expectAtomics(codec: WireCodec, res: ResponderReplay): void {
  const addrs = new Set(res.requests.filter((q) => q.repr.atomicEth).map((q) => `${q.repr.atomicEth!.rkey}:${q.repr.atomicEth!.va}`));
  expect(addrs.size).toBeGreaterThan(0);
  for (const key of addrs) {
    const [rkey, va] = key.split(":");
    const m = res.mrs.get(Number(rkey))!;
    const value = new DataView(m.mr.bytes.buffer, m.mr.bytes.byteOffset + Number(BigInt(va!) - m.base), 8).getBigUint64(0, true);
    const last = [...res.requests].reverse().find((q) => q.repr.atomicEth && `${q.repr.atomicEth.rkey}:${q.repr.atomicEth.va}` === key)!;
    const orig = res.theirs.find((t) => t.orig !== undefined && t.psn === last.repr.psn)!.orig!;
    const e = last.repr.atomicEth!;
    const want = isFetchAdd(codec, last.repr.opcode) ? BigInt.asUintN(64, orig + e.swapAdd) : orig === e.compare ? e.swapAdd : orig;
    expect(value, key).toBe(want);
  }
}

/** The SEND messages of the requests, concatenated. */
function sendMessages(res: ResponderReplay): Uint8Array[] {
  const messages: Uint8Array[] = [];
  let cur: number[] = [];
  for (const q of res.requests.filter((x) => x.mask & OpMask.SEND)) {
    if (q.mask & OpMask.START) cur = [];
    cur.push(...q.repr.payload);
    if (q.mask & OpMask.END) messages.push(Uint8Array.from(cur));
  }
  return messages;
}

describe("replay RC: our responder answers rxe's requests as rxe did", () => {
  for (const c of RC) {
    it(`${c.file}: ${c.what}`, async () => {
      const res = await replayRcResponder(c.file);
      expect(res.requests.length).toBeGreaterThan(0);
      expect(res.theirs.length).toBeGreaterThan(0);
      expect(res.ours).toEqual(res.theirs);
      switch (c.check) {
        case "writes":
          expectWrites(res);
          expect(res.recvs).toEqual([]);
          break;
        case "atomics":
          expectAtomics((await core()).codec, res);
          break;
        case "sends": {
          const messages = sendMessages(res);
          expect(messages.length).toBeGreaterThan(0);
          expect(res.recvs).toEqual(messages.map((m) => ({ byteLen: m.length, opcode: WcOpcode.RECV, status: 0 })));
          messages.forEach((m, i) => expect(Buffer.from(res.recvBuf.bytes.subarray(i * res.recvSlot, i * res.recvSlot + m.length)).equals(Buffer.from(m))).toBe(true));
          break;
        }
        case "rnr":
          // RNR NAK with rxe's timer code 12 (0x2c)
          expect(res.theirs.filter((t) => t.syndrome !== undefined && isRnrNak(t.syndrome) && (t.syndrome & 0x1f) === 12).length).toBeGreaterThan(0);
          expect(res.theirs.filter((t) => t.syndrome === AETH_NAK_SEQ).length).toBeGreaterThan(0);
          expect(res.recvs.every((r) => r.status === 0 && r.byteLen === 64 && r.opcode === WcOpcode.RECV)).toBe(true);
          break;
        case "seqerr":
          expect(res.theirs.filter((t) => t.syndrome === AETH_NAK_SEQ).length).toBe(1);
          expectWrites(res);
          break;
        case "reads":
          // READ responses are in res.ours == res.theirs, payload bytes included
          expect(res.theirs.some((t) => t.payload.length > 0)).toBe(true);
          break;
      }
    });
  }
});

describe("replay RC: our requester sends what rxe's did and completes on rxe's responses", () => {
  for (const c of RC.filter((x) => x.requester)) {
    it(`${c.file}: ${c.what}`, async () => {
      const r = await replayRcRequester(c.file);
      expect(r.compared).toBeGreaterThan(0);
      expect(r.responses).toBeGreaterThan(0);
      expect(r.extra).toBe(0);
      // every WR completes, in order, successfully, with rxe's fields
      expect(r.wcs.map((w) => [w.wrId, w.status])).toEqual(r.wrs.map((_, k) => [BigInt(k), 0]));
      r.wcs.forEach((wc, k) => {
        expect(wc.byteLen).toBe(r.wrs[k]!.len);
        expect(wc.opcode).toBe(WC_OF_WR[r.wrs[k]!.wr.opcode]);
      });
      // READ data and atomic original values are where the WRs pointed
      r.msgs.forEach((m, k) => {
        const h = m.pkts[0]!;
        const w = r.wrs[k]!;
        if (w.wr.opcode === WrOpcode.RDMA_READ) {
          const n = Math.max(1, Math.ceil(w.len / MTU));
          const data = Array.from({ length: n }, (_, j) => Array.from(r.byPsn.get((h.psn + j) & 0xffffff)!.payload)).flat();
          expect(Array.from(r.mr.bytes.slice(w.off, w.off + w.len)), `READ at PSN ${h.psn}`).toEqual(data);
        } else if (h.atomicEth) {
          const orig = r.byPsn.get(h.psn)!.atomicAckEth!.origRemoteData;
          expect(new DataView(r.mr.bytes.buffer, r.mr.bytes.byteOffset).getBigUint64(w.off, true)).toBe(orig);
        }
      });
    });
  }
});

describe("replay RC: both sides of rc_pingpong", () => {
  for (const c of RC.filter((x) => x.duplex)) {
    it(`${c.file}: our SENDs and ACKs are rxe's, in rxe's order; every WR completes`, async () => {
      const res = await replayRcDuplex(c.file);
      expect(res.theirs.filter((t) => "req" in t).length).toBeGreaterThan(0);
      expect(res.ours).toEqual(res.theirs);
      expect(res.sends.map((w) => [w.wrId, w.status, w.opcode])).toEqual(res.wrs.map((_, i) => [BigInt(i), 0, WcOpcode.SEND]));
      expect(res.recvs.length).toBe(res.peerMessages);
      expect(res.recvs.every((w) => w.status === 0 && w.opcode === WcOpcode.RECV && w.byteLen === 10000)).toBe(true);
    });
  }
});

describe("replay UC/UD: both roles against real rxe traffic", () => {
  for (const [file, what] of [
    ["uc-send", "UC SEND FIRST/MIDDLE/LAST (ibv_uc_pingpong -s 3000)"],
    ["uc-write", "UC WRITE FIRST/MIDDLE/LAST (ib_write_bw -c UC)"],
    ["ud-send", "UD SEND ONLY with DETH, IPv4 (ibv_ud_pingpong -s 512)"],
    ["ud-send-v6", "UD SEND ONLY with DETH, IPv6"],
  ] as const) {
    it(`responder: ${what}`, async () => {
      const r = await replayUnreliableResponder(file);
      expect(r.messages).toBeGreaterThan(1);
      if (file !== "uc-write") expect(r.wcs.length).toBe(r.messages);
      expect(r.wcs.length).toBe(r.expected.length);
      r.wcs.forEach((c, i) => {
        expect(c.status).toBe(WcStatus.SUCCESS);
        expect(c.opcode).toBe(WcOpcode.RECV);
        expect(c.wrId).toBe(BigInt(i));
        expect(c.byteLen).toBe(r.expected[i]!.bytes.length);
        if (r.ud) {
          expect(c.srcQp).toBe(r.expected[i]!.srcQp);
          expect(Array.from(c.sgid!)).toEqual(Array.from(parseGid(addressGid(r.from))));
        }
        expect(r.received[i]).toEqual(r.expected[i]!.bytes);
      });
      // every WRITE went to the same place; the last one's bytes are there
      if (r.lastWrite) expect(r.lastWrite.got).toEqual(r.lastWrite.want);
    });
    it(`requester: ${what}`, async () => {
      const r = await replayUnreliableRequester(file);
      expect(r.wcs.map((c) => [c.wrId, c.status])).toEqual(Array.from({ length: r.messages }, (_, i) => [BigInt(i), WcStatus.SUCCESS]));
      expect(r.ours.length).toBeGreaterThan(2);
      expect(r.ours).toEqual(r.theirs);
    });
  }
});
