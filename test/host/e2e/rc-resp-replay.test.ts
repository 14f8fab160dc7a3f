// Real rxe traffic replayed into the responder: every request one Linux rxe
// sent in test/fixtures/captures is delivered to a device that plays the other
// rxe's part, and the device must answer with exactly the ACKs, NAKs, READ
// responses and atomic ACKs that rxe answered with (opcode, PSN, AckReq,
// destination QP, AETH syndrome and MSN, atomic original value, payload).
//
// What the capture cannot tell is supplied from rxe's own answers ("oracle"):
// the remote memory a READ or atomic read (taken from rxe's response), whether
// a receive WQE was posted (rxe answered RNR or not), and a request lost on the
// way to rxe (rxe NAKed its PSN as missing). R_Keys and addresses are mapped to
// MRs of this device; everything else goes in as captured (the ICRC is redone
// for the new RETH/AtomicETH fields).
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { coreModule } from "../../../host/node/wasm-source.js";
import { readCaptureAll } from "../../../host/core/capture/pcap.js";
import { notRoce } from "../../../host/core/net/ip-extract.js";
import { WireCodec, type PacketRepr, type PacketSpec } from "../../../host/core/wire/codec.js";
import { SimNetwork } from "../../../host/core/sim/network.js";
import { connectQp } from "../../../host/core/verbs/connect.js";
import { Access, Mtu, QpType } from "../../../host/core/verbs/enums.js";
import type { MemoryRegion } from "../../../host/core/verbs/mr.js";

/** A replay's one QP takes the capture's QPN: one QP, a range of one number (QPNs are random otherwise). */
const AS_CAPTURED = { maxQp: 1, qpnCount: 1 } as const;

const DIR = new URL("../../fixtures/captures/", import.meta.url);
const REQUEST_OPS = new Set([0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x13, 0x14, 0x1c, 0x1d]);
const RWR_OPS = new Set([0x00, 0x04, 0x05, 0x09, 0x0b]);
const RNR = 0x20;
const NAK_SEQ = 0x60;

interface Answer {
  opcode: number;
  psn: number;
  destQp: number;
  ackReq: number;
  syndrome?: number;
  msn?: number;
  orig?: bigint;
  payload: number[];
}

function answer(r: PacketRepr): Answer {
  const a: Answer = { opcode: r.opcode, psn: r.psn, destQp: r.destQp, ackReq: r.ackReq, payload: Array.from(r.payload) };
  if (r.aeth) {
    a.syndrome = r.aeth.syndrome;
    a.msn = r.aeth.msn;
  }
  if (r.atomicAckEth) a.orig = r.atomicAckEth.origRemoteData;
  return a;
}

const psnAdd = (p: number, n: number) => (p + n) & 0xffffff;

async function replay(file: string): Promise<{ ours: Answer[]; theirs: Answer[]; requests: number }> {
  const mod = await coreModule();
  const codec = await WireCodec.create(mod);
  const packets: PacketRepr[] = [];
  for (const rec of readCaptureAll(new Uint8Array(readFileSync(new URL(file, DIR))))) {
    if (!rec.data || notRoce(rec.data) !== undefined) continue;
    const p = codec.parse(rec.data);
    if (!p.ok) throw new Error(`${file}: frame ${rec.index}: ${p.error}`);
    packets.push(p.repr);
  }
  const first = packets.find((p) => REQUEST_OPS.has(p.opcode))!;
  const me = first.dst;
  const peer = first.src;
  const requests = packets.filter((p) => p.dst === me && p.src === peer && REQUEST_OPS.has(p.opcode));
  const theirs = packets.filter((p) => p.src === me && p.dst === peer && p.opcode >= 0x0d && p.opcode <= 0x12).map(answer);
  const peerQpn = theirs[0]!.destQp;

  // remote memory: one MR per R_Key, spanning every address the requests use
  const spans = new Map<number, { lo: bigint; hi: bigint }>();
  for (const r of requests) {
    const x = r.reth ? { va: r.reth.va, rkey: r.reth.rkey, len: BigInt(r.reth.dmaLength) } : r.atomicEth ? { va: r.atomicEth.va, rkey: r.atomicEth.rkey, len: 8n } : undefined;
    if (!x || x.len === 0n) continue;
    const s = spans.get(x.rkey) ?? { lo: x.va, hi: x.va + x.len };
    s.lo = x.va < s.lo ? x.va : s.lo;
    s.hi = x.va + x.len > s.hi ? x.va + x.len : s.hi;
    spans.set(x.rkey, s);
  }

  const net = new SimNetwork({ trace: true });
  const gid = (a: string) => (a.includes(":") ? a : `::ffff:${a}`);
  const dev = await net.addDevice(mod, me, { gids: [gid(me)], qpnBase: first.destQp, ...AS_CAPTURED });
  const pd = dev.allocPd();
  const cq = dev.createCq(4096);
  const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 1, maxRecvWr: 1024, maxSendSge: 1, maxRecvSge: 1 } });
  expect(qp.qpNum).toBe(first.destQp);
  connectQp(qp, { qpNum: peerQpn, psn: first.psn, gid: gid(peer) }, {
    sqPsn: 1, pathMtu: Mtu.MTU_1024, maxDestRdAtomic: 16, minRnrTimer: 12,
    qpAccessFlags: Access.REMOTE_WRITE | Access.REMOTE_READ | Access.REMOTE_ATOMIC,
  });
  const all = Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ | Access.REMOTE_ATOMIC;
  const mrs = new Map<number, { mr: MemoryRegion; lo: bigint }>();
  for (const [rkey, s] of spans) mrs.set(rkey, { mr: pd.regMr(Number(s.hi - s.lo), all), lo: s.lo });
  const recvBuf = pd.regMr(1 << 16, Access.LOCAL_WRITE);
  const local = (rkey: number, va: bigint) => {
    const m = mrs.get(rkey);
    return m ? { addr: m.mr.addr + (va - m.lo), rkey: m.mr.rkey, off: Number(va - m.lo), mr: m.mr } : undefined;
  };

  let posted = 0;
  let cursor = 0; // rxe answers matched so far
  const ours: Answer[] = [];
  let seen = 0;
  const collect = () => {
    const trace = net.wire.trace!;
    for (; seen < trace.length; seen++) {
      const d = trace[seen]!.datagram;
      const p = codec.parseUdpPayload(d.payload, { src: d.src, dst: d.dst, udpSrcPort: d.srcPort, udpDstPort: d.dstPort, ipId: d.ipId });
      if (!p.ok || !p.repr.icrcOk) throw new Error("the device sent a bad packet");
      ours.push(answer(p.repr));
    }
    cursor = ours.length;
  };

  for (const r of requests) {
    const next = theirs[cursor];
    // lost on its way to rxe: rxe reports this very PSN missing
    if (next && next.syndrome === NAK_SEQ && next.psn === r.psn && ours.length === cursor &&
        !theirs.slice(0, cursor).some((a) => a.syndrome === NAK_SEQ && a.psn === r.psn)) {
      const firstTime = requests.indexOf(r) === requests.findIndex((q) => q.psn === r.psn);
      if (firstTime) continue;
    }
    if (RWR_OPS.has(r.opcode) && posted === 0 && !(next && (next.syndrome! & 0xe0) === RNR && next.psn === r.psn)) {
      qp.postRecv({ wrId: BigInt(r.psn), sgList: [recvBuf.sge()] });
      posted++;
    }
    const spec: PacketSpec = {
      ipVersion: r.ipVersion, src: r.src, dst: r.dst, ipId: r.ipId, ipFlags: r.ipFlags, ttl: r.ttl, tos: r.tos,
      flowLabel: r.flowLabel, udpSrcPort: r.udpSrcPort, udpDstPort: r.udpDstPort, opcode: r.opcode, se: r.se,
      migReq: r.migReq, pkey: r.pkey, destQp: r.destQp, ackReq: r.ackReq, psn: r.psn, payload: r.payload,
    };
    if (r.immDt !== undefined) spec.immDt = r.immDt;
    if (r.reth) {
      const l = r.reth.dmaLength ? local(r.reth.rkey, r.reth.va) : undefined;
      spec.reth = l ? { va: l.addr, rkey: l.rkey, dmaLength: r.reth.dmaLength } : r.reth;
      if (l && r.opcode === 0x0c) {
        // what rxe read: its response stream for this request's PSNs
        const n = Math.max(1, Math.ceil(r.reth.dmaLength / 1024));
        const bytes: number[] = [];
        for (let i = cursor; i < theirs.length && bytes.length < r.reth.dmaLength; i++) {
          const a = theirs[i]!;
          const k = (a.psn - r.psn) & 0xffffff;
          if (a.opcode >= 0x0d && a.opcode <= 0x10 && k < n && k === Math.floor(bytes.length / 1024)) bytes.push(...a.payload);
        }
        l.mr.bytes.set(bytes, l.off);
      }
    }
    if (r.atomicEth) {
      const l = local(r.atomicEth.rkey, r.atomicEth.va)!;
      spec.atomicEth = { ...r.atomicEth, va: l.addr, rkey: l.rkey };
      const a = theirs.slice(cursor).find((x) => x.opcode === 0x12 && x.psn === r.psn);
      if (a) new DataView(l.mr.bytes.buffer, l.mr.bytes.byteOffset + l.off, 8).setBigUint64(0, a.orig!, true);
    }
    const full = codec.emit(spec);
    const hdr = r.ipVersion === 4 ? 28 : 48;
    const res = dev.port!.receive({ src: r.src, dst: r.dst, srcPort: r.udpSrcPort, dstPort: r.udpDstPort, ipId: r.ipId, payload: full.subarray(hdr) });
    expect(res).toBe(0);
    posted -= cq.poll(64).length;
    collect();
  }
  return { ours, theirs, requests: requests.length };
}

describe("RC responder against real rxe traffic", () => {
  for (const [file, what] of [
    ["rc-send-multi.pcap", "multi-packet SENDs (rc_pingpong, IPv4)"],
    ["rc-send-v6.pcap", "multi-packet SENDs over IPv6"],
    ["rc-write.pcap", "WRITE FIRST/MIDDLE/LAST"],
    ["rc-write-only.pcap", "WRITE ONLY"],
    ["rc-write-long.pcap", "68-packet WRITEs with an intermediate AckReq"],
    ["rc-read.pcap", "READ responses FIRST/MIDDLE/LAST"],
    ["rc-read-only.pcap", "READ RESPONSE ONLY"],
    ["rc-atomic-cas.pcap", "CMP_SWAP"],
    ["rc-atomic-faa.pcap", "FETCH_ADD"],
    ["rc-rnr.pcap", "RNR NAKs followed by a PSN sequence NAK"],
    ["rc-seqerr.pcap", "a lost WRITE MIDDLE: PSN sequence NAK, go-back-N"],
  ] as const) {
    it(`${what} (${file})`, async () => {
      const { ours, theirs, requests } = await replay(file);
      expect(requests).toBeGreaterThan(0);
      expect(theirs.length).toBeGreaterThan(0);
      expect(ours).toEqual(theirs);
    });
  }
});
