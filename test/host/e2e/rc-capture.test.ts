// Real rxe traffic replayed into the requester: a device takes the place of the
// capture's requester (its address, QPN and first PSN), is given the same work
// requests when the capture shows them starting, and is fed the capture's
// responses (ACKs, NAKs, RNR NAKs, READ responses, atomic ACKs) with their real
// IP facts. Every request packet it sends must equal the next one rxe sent —
// opcode, PSN, AckReq, SE, headers, payload bytes — including rxe's
// retransmissions (RNR timer, PSN-sequence-error go-back-N), and nothing more.
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { coreModule } from "../../../host/node/wasm-source.js";
import { WireCodec, type PacketRepr } from "../../../host/core/wire/codec.js";
import { readCaptureAll } from "../../../host/core/capture/pcap.js";
import { SimNetwork } from "../../../host/core/sim/network.js";
import { connectQp } from "../../../host/core/verbs/connect.js";
import { Access, Mtu, QpType, SendFlags, WcOpcode, WrOpcode } from "../../../host/core/verbs/enums.js";
import type { SendWr } from "../../../host/core/verbs/post.js";

/** A replay's one QP takes the capture's QPN: one QP, a range of one number (QPNs are random otherwise). */
const AS_CAPTURED = { maxQp: 1, qpnCount: 1 } as const;

const CAPTURES = new URL("../../fixtures/captures/", import.meta.url);

interface Pkt {
  t: number; // µs since the first RoCE packet
  r: PacketRepr;
  udp: Uint8Array; // the UDP payload as captured (BTH .. ICRC)
}

const psnDiff = (a: number, b: number): number => (((a - b) << 8) >> 8);

function describeReq(p: PacketRepr) {
  return {
    opcode: p.opcode, psn: p.psn, ackReq: p.ackReq, se: p.se, destQp: p.destQp, pkey: p.pkey, padCount: p.padCount,
    reth: p.reth, atomicEth: p.atomicEth, immDt: p.immDt, ieth: p.ieth, feth: p.feth, payload: Array.from(p.payload),
  };
}

async function replay(file: string) {
  const mod = await coreModule();
  const codec = await WireCodec.create(mod);
  const pkts: Pkt[] = [];
  let t0 = -1;
  for (const rec of readCaptureAll(new Uint8Array(readFileSync(new URL(file, CAPTURES))))) {
    if (!rec.data) continue;
    const res = codec.parse(rec.data);
    if (!res.ok || res.repr.udpDstPort !== 4791) continue;
    if (t0 < 0) t0 = rec.tsMicros;
    pkts.push({ t: rec.tsMicros - t0, r: res.repr, udp: rec.data.slice(res.info.bthOffset, res.info.packetLength) });
  }
  const isReq = (p: PacketRepr) => codec.opcode(p.opcode)!.flags.req;
  const first = pkts.find((p) => isReq(p.r))!.r;
  const R = first.src;
  const P = first.dst;
  const reqQpn = pkts.find((p) => p.r.src === P)!.r.destQp;
  const respQpn = first.destQp;
  if (pkts.some((p) => (p.r.src === R) !== isReq(p.r))) throw new Error(`${file}: not a one-way requester capture`);

  // messages in first-transmission order, each with its packets
  const msgs: { start: number; pkts: PacketRepr[] }[] = [];
  let next = first.psn;
  for (let i = 0; i < pkts.length; i++) {
    const p = pkts[i]!.r;
    if (p.src !== R || psnDiff(p.psn, next) < 0) continue; // responses, retransmissions
    const info = codec.opcode(p.opcode)!;
    if (!info.flags.start) throw new Error(`${file}: new PSN ${p.psn} is not a message start`);
    const m = { start: i, pkts: [p] };
    let q = p;
    for (let j = i + 1; !codec.opcode(q.opcode)!.flags.end; j++) {
      if (pkts[j]!.r.src !== R) continue; // an ACK of an earlier message
      q = pkts[j]!.r;
      m.pkts.push(q);
    }
    msgs.push(m);
    next = q.opcode === 0x0c ? (q.psn + Math.max(1, Math.ceil(q.reth!.dmaLength / 1024))) & 0xffffff : (q.psn + 1) & 0xffffff;
  }

  const net = new SimNetwork({ trace: true });
  const dev = await net.addDevice(mod, R, { qpnBase: reqQpn, ...AS_CAPTURED });
  const pd = dev.allocPd();
  const cq = dev.createCq(4096);
  const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 4096, maxRecvWr: 1, maxSendSge: 1, maxRecvSge: 1 } });
  expect(qp.qpNum).toBe(reqQpn);
  connectQp(qp, { qpNum: respQpn, psn: 0, gid: `::ffff:${P}` }, {
    sqPsn: first.psn, pathMtu: Mtu.MTU_1024, timeout: 14, retryCnt: 7, rnrRetry: 7, maxRdAtomic: 16, maxDestRdAtomic: 16,
  });
  const mr = pd.regMr(8 << 20, Access.LOCAL_WRITE);

  // one WR per message; SEND/WRITE data placed in the MR, READ/atomic results land there
  let off = 0;
  const wrs = msgs.map((m, k): { wr: SendWr; off: number; len: number } => {
    const h = m.pkts[0]!;
    const last = m.pkts[m.pkts.length - 1]!;
    const data = m.pkts.flatMap((p) => Array.from(p.payload));
    const base = { wrId: BigInt(k), sendFlags: SendFlags.SIGNALED | (last.se ? SendFlags.SOLICITED : 0) };
    const o = off;
    let wr: SendWr;
    let len = data.length;
    const op = h.opcode & 0x1f;
    if (op <= 0x05) {
      mr.bytes.set(data, o);
      wr = { ...base, opcode: last.immDt !== undefined ? WrOpcode.SEND_WITH_IMM : WrOpcode.SEND, immData: last.immDt, sgList: len ? [mr.sge(o, len)] : [] };
    } else if (op <= 0x0b) {
      mr.bytes.set(data, o);
      wr = { ...base, opcode: last.immDt !== undefined ? WrOpcode.RDMA_WRITE_WITH_IMM : WrOpcode.RDMA_WRITE, immData: last.immDt, rdma: { remoteAddr: h.reth!.va, rkey: h.reth!.rkey }, sgList: len ? [mr.sge(o, len)] : [] };
    } else if (op === 0x0c) {
      len = h.reth!.dmaLength;
      wr = { ...base, opcode: WrOpcode.RDMA_READ, rdma: { remoteAddr: h.reth!.va, rkey: h.reth!.rkey }, sgList: [mr.sge(o, len)] };
    } else {
      len = 8;
      const a = h.atomicEth!;
      wr = op === 0x13
        ? { ...base, opcode: WrOpcode.ATOMIC_CMP_AND_SWP, atomic: { remoteAddr: a.va, rkey: a.rkey, compareAdd: a.compare, swap: a.swapAdd }, sgList: [mr.sge(o, 8)] }
        : { ...base, opcode: WrOpcode.ATOMIC_FETCH_AND_ADD, atomic: { remoteAddr: a.va, rkey: a.rkey, compareAdd: a.swapAdd }, sgList: [mr.sge(o, 8)] };
    }
    off += (len + 63) & ~63;
    return { wr, off: o, len };
  });

  const trace = net.wire.trace!;
  let seen = 0;
  const emitted: PacketRepr[] = [];
  const collect = () => {
    for (; seen < trace.length; seen++) {
      const d = trace[seen]!.datagram;
      const r = codec.parseUdpPayload(d.payload, { src: d.src, dst: d.dst, ipId: d.ipId ?? 0, udpSrcPort: d.srcPort, udpDstPort: d.dstPort });
      if (!r.ok || !r.repr.icrcOk) throw new Error("device sent a bad packet");
      emitted.push(r.repr);
    }
  };
  const startOf = new Map(msgs.map((m, k) => [m.start, k]));
  let compared = 0;
  let responses = 0;
  const clock = net.wire.clock;
  for (let i = 0; i < pkts.length; i++) {
    const { t, r, udp } = pkts[i]!;
    if (t > clock.now) net.run(t);
    if (clock.now < t) clock.now = t;
    if (r.src === P) {
      const rx = dev.port!.receive({ src: P, dst: R, srcPort: r.udpSrcPort, dstPort: 4791, ipId: r.ipId, payload: udp });
      expect(rx).toBe(0);
      responses++;
      continue;
    }
    const k = startOf.get(i);
    if (k !== undefined) qp.postSend(wrs[k]!.wr);
    collect();
    // a retransmission may wait for a timer (RNR): run the device's timers until it sends
    for (let n = 0; n < 8 && emitted.length <= compared; n++) {
      const at = dev.core.next_deadline();
      if (at === Infinity) break;
      net.run(at);
      if (clock.now < at) clock.now = at;
      collect();
    }
    expect(emitted.length, `${file}: rxe sent packet ${i} (PSN ${r.psn}) but the device sent nothing`).toBeGreaterThan(compared);
    expect(describeReq(emitted[compared]!), `${file}: request ${compared}`).toEqual(describeReq(r));
    compared++;
  }
  collect();
  // READ data and atomic original values are where the WRs pointed
  const byPsn = new Map<number, PacketRepr>();
  for (const { r } of pkts) if (r.src === P && !byPsn.has(r.psn)) byPsn.set(r.psn, r);
  msgs.forEach((m, k) => {
    const h = m.pkts[0]!;
    const w = wrs[k]!;
    if (h.opcode === 0x0c) {
      const n = Math.max(1, Math.ceil(w.len / 1024));
      const data = Array.from({ length: n }, (_, j) => Array.from(byPsn.get((h.psn + j) & 0xffffff)!.payload)).flat();
      expect(Array.from(mr.bytes.slice(w.off, w.off + w.len))).toEqual(data);
    } else if (h.atomicEth) {
      const orig = byPsn.get(h.psn)!.atomicAckEth!.origRemoteData;
      expect(new DataView(mr.bytes.buffer, mr.bytes.byteOffset).getBigUint64(w.off, true)).toBe(orig);
    }
  });
  return { compared, responses, extra: emitted.length - compared, wcs: cq.poll(4096), wrs, mr, msgs };
}

describe("rxe captures replayed into the requester/completer", () => {
  for (const [file, what] of [
    ["rc-write-only.pcap", "WRITE ONLY + ACK"],
    ["rc-write.pcap", "WRITE FIRST/MIDDLE/LAST, one ACK per message"],
    ["rc-write-long.pcap", "68-packet WRITEs, AckReq on the 66th packet"],
    ["rc-read.pcap", "READ requests, one PSN per response packet; responses placed"],
    ["rc-read-only.pcap", "READ RESPONSE ONLY"],
    ["rc-atomic-cas.pcap", "CMP_SWAP -> ATOMIC ACK"],
    ["rc-atomic-faa.pcap", "FETCH_ADD -> ATOMIC ACK"],
    ["rc-rnr.pcap", "RNR NAK + PSN-sequence NAK: resend after the RNR timer"],
    ["rc-seqerr.pcap", "PSN-sequence-error NAK: go back N from the NAKed PSN"],
  ] as const) {
    it(`${file}: ${what}`, async () => {
      const r = await replay(file);
      if (process.env.CAPTURE_STATS) console.log(file, "requests", r.compared, "responses", r.responses, "completions", r.wcs.length, "of", r.wrs.length);
      expect(r.compared).toBeGreaterThan(0);
      expect(r.responses).toBeGreaterThan(0);
      expect(r.extra).toBe(0);
      // completions: in order, all successful, with rxe's fields
      expect(r.wcs.length).toBeGreaterThan(0);
      r.wcs.forEach((wc, k) => {
        const w = r.wrs[k]!;
        expect(wc.wrId).toBe(BigInt(k));
        expect(wc.status).toBe(0);
        expect(wc.byteLen).toBe(w.len);
        const want = { [WrOpcode.SEND]: WcOpcode.SEND, [WrOpcode.SEND_WITH_IMM]: WcOpcode.SEND, [WrOpcode.RDMA_WRITE]: WcOpcode.RDMA_WRITE,
          [WrOpcode.RDMA_WRITE_WITH_IMM]: WcOpcode.RDMA_WRITE, [WrOpcode.RDMA_READ]: WcOpcode.RDMA_READ,
          [WrOpcode.ATOMIC_CMP_AND_SWP]: WcOpcode.COMP_SWAP, [WrOpcode.ATOMIC_FETCH_AND_ADD]: WcOpcode.FETCH_ADD }[w.wr.opcode];
        expect(wc.opcode).toBe(want);
      });
    });
  }
});
