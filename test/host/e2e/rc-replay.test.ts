// Capture replay: real Linux rxe ↔ rxe RC traffic (test/fixtures/captures, MTU
// 1024) fed into our device.
//
// Responder side: our device takes the place of the capture's responder
// (its address, its QPN through qpnBase, the request PSNs) and gets the
// requester's packets in capture order. Packets that name rxe's memory
// (RETH, AtomicETH) are re-emitted with WireCodec carrying our R_Key and the
// same offset into our MR (the ICRC is recomputed); every other packet goes in
// byte for byte, its ICRC checked over the capture's IP ID and UDP source
// port. Our responses must equal rxe's, in order: opcode, PSN, AETH syndrome
// and MSN, payload (READ responses; our MR holds the bytes rxe returned),
// AtomicAckETH (our MR starts with what rxe's held). Memory (WRITE, atomics),
// receive completions and the receive buffers must match too. Receives are
// posted as rxe's application had them: one is ready for every SEND that rxe
// accepted, none for one it answered with an RNR NAK. In rc-seqerr the first
// copy of the packet rxe's NAK names was dropped at rxe's receiver (it is in
// the capture): it is not delivered here either.
//
// Requester side: our device takes the requester's place, posts the WRs the
// capture shows, gets rxe's responses, and must send the same requests
// (opcode, PSN, AckReq, RETH length, payload) and complete every WR.
import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { coreModule } from "../../../host/node/wasm-source.js";
import { SimNetwork } from "../../../host/core/sim/network.js";
import { connectQp } from "../../../host/core/verbs/connect.js";
import { readCapture } from "../../../host/core/capture/pcap.js";
import { notRoce } from "../../../host/core/net/ip-extract.js";
import { OpMask, WireCodec, type PacketRepr, type PacketSpec } from "../../../host/core/wire/codec.js";
import type { Datagram } from "../../../host/core/net/datagram.js";
import { Access, Mtu, QpType, SendFlags, WcOpcode, WrOpcode } from "../../../host/core/verbs/enums.js";
import type { MemoryRegion } from "../../../host/core/verbs/mr.js";
import type { SendWr } from "../../../host/core/verbs/post.js";

/** A replay's one QP takes the capture's QPN: one QP, a range of one number (QPNs are random otherwise). */
const AS_CAPTURED = { maxQp: 1, qpnCount: 1 } as const;

const ACCESS = Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ | Access.REMOTE_ATOMIC;
const MTU = 1024;
const SYN_RNR = 0x20;
const SYN_NAK_SEQ = 0x60;

let codec: WireCodec;
let mod: WebAssembly.Module;

beforeAll(async () => {
  mod = await coreModule();
  codec = await WireCodec.create(mod);
});

interface Pkt {
  repr: PacketRepr;
  /** the UDP payload as captured (BTH .. ICRC) */
  udp: Uint8Array;
  mask: number;
}

function load(name: string): Pkt[] {
  const bytes = readFileSync(new URL(`../../fixtures/captures/${name}.pcap`, import.meta.url));
  const out: Pkt[] = [];
  for (const rec of readCapture(bytes)) {
    if (!rec.data || notRoce(rec.data) !== undefined) continue;
    const p = codec.parse(rec.data);
    if (!p.ok) throw new Error(`${name} frame ${rec.index}: ${p.error}`);
    expect(p.repr.icrcOk, `${name} frame ${rec.index} ICRC`).toBe(true);
    const udp = rec.data.subarray(p.info.bthOffset, p.info.packetLength);
    out.push({ repr: p.repr, udp: udp.slice(), mask: codec.opcode(p.repr.opcode)!.mask });
  }
  return out;
}

/** The response fields we compare. */
function respKey(r: PacketRepr, withPayload: boolean): string {
  const parts = [`op ${r.opcode}`, `psn ${r.psn}`];
  if (r.aeth) parts.push(`syn 0x${r.aeth.syndrome.toString(16)}`, `msn ${r.aeth.msn}`);
  if (r.atomicAckEth) parts.push(`orig 0x${r.atomicAckEth.origRemoteData.toString(16)}`);
  parts.push(`len ${r.payload.length}`);
  if (withPayload && r.payload.length) parts.push(`crc ${codec.crc32(r.payload).toString(16)}`);
  return parts.join(" ");
}

/** The request fields we compare on the requester side. */
function reqKey(r: PacketRepr): string {
  const parts = [`op ${r.opcode}`, `psn ${r.psn}`, `a ${r.ackReq}`];
  if (r.reth) parts.push(`dma ${r.reth.dmaLength}`);
  if (r.atomicEth) parts.push(`swap 0x${r.atomicEth.swapAdd.toString(16)} cmp 0x${r.atomicEth.compare.toString(16)}`);
  if (r.immDt !== undefined) parts.push(`imm ${r.immDt}`);
  parts.push(`len ${r.payload.length}`, `crc ${r.payload.length ? codec.crc32(r.payload).toString(16) : 0}`);
  return parts.join(" ");
}

/** rxe's memory, as the packets name it: per R_Key, the lowest page and the extent used. */
function regions(pkts: Pkt[]): Map<number, { base: bigint; size: number }> {
  const m = new Map<number, { lo: bigint; hi: bigint }>();
  for (const p of pkts) {
    const r = p.repr;
    const at = r.reth ? { rkey: r.reth.rkey, va: r.reth.va, len: r.reth.dmaLength } : r.atomicEth ? { rkey: r.atomicEth.rkey, va: r.atomicEth.va, len: 8 } : undefined;
    if (!at) continue;
    const e = m.get(at.rkey) ?? { lo: at.va, hi: at.va };
    if (at.va < e.lo) e.lo = at.va;
    if (at.va + BigInt(at.len) > e.hi) e.hi = at.va + BigInt(at.len);
    m.set(at.rkey, e);
  }
  return new Map([...m].map(([k, e]) => [k, { base: e.lo & ~0xfffn, size: Number(e.hi - (e.lo & ~0xfffn)) }]));
}

/** The GID text of an address (IPv4-mapped for IPv4). */
function gid(address: string): string {
  return address.includes(":") ? address : `::ffff:${address}`;
}

function specOf(r: PacketRepr): PacketSpec {
  const { ipChecksum: _a, udpLength: _b, padCount: _c, icrc: _d, icrcExpected: _e, icrcOk: _f, ...spec } = r;
  return spec as PacketSpec;
}

interface ResponderReplay {
  ours: string[];
  theirs: string[];
  recvs: { byteLen: number; opcode: number; status: number }[];
  mrs: Map<number, { mr: MemoryRegion; base: bigint }>;
  requests: Pkt[];
  recvBuf: MemoryRegion;
  recvSlot: number;
}

async function replayResponder(name: string, recvSlot = 16384): Promise<ResponderReplay> {
  const pkts = load(name);
  const first = pkts.find((p) => p.mask & OpMask.REQ)!;
  const requester = first.repr.src;
  const responder = first.repr.dst;
  const requests = pkts.filter((p) => p.mask & OpMask.REQ && p.repr.src === requester);
  const responses = pkts.filter((p) => p.mask & OpMask.RESP && p.repr.src === responder);
  const net = new SimNetwork();
  const dev = await net.addDevice(mod, responder, { qpnBase: first.repr.destQp, ...AS_CAPTURED, activeMtu: Mtu.MTU_1024, mrArenaBytes: 8 << 20 });
  const got: Datagram[] = [];
  net.wire.attach(requester, 4791, (d) => got.push(d));
  const pd = dev.allocPd();
  const cq = dev.createCq(256);
  const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 16, maxRecvWr: 64, maxSendSge: 1, maxRecvSge: 1 } });
  expect(qp.qpNum).toBe(first.repr.destQp);
  const rnrNaks = responses.filter((p) => p.repr.aeth && (p.repr.aeth.syndrome & 0xe0) === SYN_RNR);
  const minRnrTimer = rnrNaks.length ? rnrNaks[0]!.repr.aeth!.syndrome & 0x1f : 12;
  connectQp(qp, { qpNum: responses[0]!.repr.destQp, psn: first.repr.psn, gid: gid(requester) }, {
    sqPsn: 0,
    pathMtu: Mtu.MTU_1024,
    qpAccessFlags: ACCESS,
    maxDestRdAtomic: 16,
    minRnrTimer,
  });
  // our MRs stand for rxe's, holding what rxe's held where the responses show it
  const mrs = new Map<number, { mr: MemoryRegion; base: bigint }>();
  for (const [rkey, reg] of regions(requests)) mrs.set(rkey, { mr: pd.regMr(reg.size, ACCESS), base: reg.base });
  const recvBuf = pd.regMr(recvSlot * 64, ACCESS);
  const seenAtomic = new Set<string>();
  for (const q of requests) {
    const r = q.repr;
    if (r.reth && q.mask & OpMask.READ) {
      const m = mrs.get(r.reth.rkey)!;
      let off = Number(r.reth.va - m.base);
      const n = Math.max(1, Math.ceil(r.reth.dmaLength / MTU));
      for (let k = 0; k < n; k++) {
        const resp = responses.find((s) => s.mask & OpMask.READ && s.repr.psn === ((r.psn + k) & 0xffffff));
        if (!resp) continue;
        m.mr.bytes.set(resp.repr.payload, off);
        off += resp.repr.payload.length;
      }
    }
    if (r.atomicEth && !seenAtomic.has(r.atomicEth.va.toString())) {
      seenAtomic.add(r.atomicEth.va.toString());
      const ack = responses.find((s) => s.repr.atomicAckEth && s.repr.psn === r.psn)!;
      const m = mrs.get(r.atomicEth.rkey)!;
      new DataView(m.mr.bytes.buffer, m.mr.bytes.byteOffset + Number(r.atomicEth.va - m.base), 8).setBigUint64(0, ack.repr.atomicAckEth!.origRemoteData, true);
    }
  }
  // rxe's receiver: RNR NAKs say when it had no receive; sequence NAKs without an RNR NAK name dropped packets
  const rnrLeft = new Map<number, number>();
  for (const p of rnrNaks) rnrLeft.set(p.repr.psn, (rnrLeft.get(p.repr.psn) ?? 0) + 1);
  const dropped = new Set(
    responses.filter((p) => p.repr.aeth?.syndrome === SYN_NAK_SEQ && !rnrLeft.has(p.repr.psn)).map((p) => p.repr.psn),
  );
  let expected = first.repr.psn;
  let outstanding = 0;
  let posted = 0;
  const recvs: ResponderReplay["recvs"] = [];
  const poll = () => {
    for (const wc of cq.poll(64)) {
      recvs.push({ byteLen: wc.byteLen, opcode: wc.opcode, status: wc.status });
      outstanding--;
    }
  };
  for (const q of requests) {
    const r = q.repr;
    if (r.psn === expected && dropped.has(r.psn)) {
      dropped.delete(r.psn);
      continue;
    }
    const consumesRecv = q.mask & OpMask.SEND && q.mask & OpMask.START;
    if (r.psn === expected && consumesRecv) {
      const rnr = rnrLeft.get(r.psn) ?? 0;
      if (rnr > 0) {
        rnrLeft.set(r.psn, rnr - 1);
        expect(outstanding, `${name}: a receive is posted where rxe had none (PSN ${r.psn})`).toBe(0);
      } else if (outstanding === 0) {
        qp.postRecv({ wrId: BigInt(posted), sgList: [recvBuf.sge((posted % 64) * recvSlot, recvSlot)] });
        posted++;
        outstanding++;
      }
    }
    let udp = q.udp;
    const at = r.reth ?? r.atomicEth;
    if (at) {
      const m = mrs.get(at.rkey)!;
      const va = m.mr.addr + (at.va - m.base);
      const spec = specOf(r);
      if (r.reth) spec.reth = { ...r.reth, va, rkey: m.mr.rkey };
      if (r.atomicEth) spec.atomicEth = { ...r.atomicEth, va, rkey: m.mr.rkey };
      const full = codec.emit(spec);
      udp = full.subarray(r.ipVersion === 4 ? 28 : 48);
    }
    const before = got.length;
    const rx = dev.port!.receive({ src: requester, dst: responder, srcPort: r.udpSrcPort, dstPort: 4791, ipId: r.ipId, payload: udp });
    expect(rx, `${name}: request PSN ${r.psn} refused`).toBe(0);
    net.run();
    poll();
    // what rxe's responder did with it: in sequence -> next PSN (READ: one per response packet); RNR -> stays
    if (r.psn === expected) {
      const rnrNow = got.slice(before).some((d) => (d.payload[12]! & 0xe0) === SYN_RNR && d.payload[0] === 0x11);
      if (!rnrNow) expected = (expected + (q.mask & OpMask.READ ? Math.max(1, Math.ceil(r.reth!.dmaLength / MTU)) : 1)) & 0xffffff;
    }
  }
  net.run();
  poll();
  const ours = got.map((d) => {
    const p = codec.parseUdpPayload(d.payload, { src: d.src, dst: d.dst, ipId: d.ipId, udpSrcPort: d.srcPort, udpDstPort: d.dstPort });
    if (!p.ok) throw new Error(`our response does not parse: ${p.error}`);
    expect(p.repr.icrcOk).toBe(true);
    expect(p.repr.destQp).toBe(responses[0]!.repr.destQp);
    return respKey(p.repr, true);
  });
  return { ours, theirs: responses.map((p) => respKey(p.repr, true)), recvs, mrs, requests, recvBuf, recvSlot };
}

/**
 * Applies the capture's WRITE packets (each PSN once; a packet lands at its
 * message's VA + (PSN - first PSN) × MTU) to a copy of each MR's initial bytes
 * and compares.
 */
function expectWrites(res: ResponderReplay, initial: Map<number, Uint8Array>): void {
  const model = new Map([...initial].map(([k, v]) => [k, v.slice()]));
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

describe("replay: our responder answers rxe's requests as rxe did", () => {
  for (const name of ["rc-write-only", "rc-write", "rc-write-long"]) {
    it(`${name}: ACK PSNs and MSNs; memory holds every WRITE`, async () => {
      const res = await replayResponder(name);
      expect(res.theirs.length).toBeGreaterThan(0);
      expect(res.ours).toEqual(res.theirs);
      // rxe's MRs started with unknown bytes; ours start zeroed, so the model starts zeroed
      expectWrites(res, new Map([...res.mrs].map(([k, { mr }]) => [k, new Uint8Array(mr.length)])));
      expect(res.recvs).toEqual([]);
    });
  }

  for (const name of ["rc-read-only", "rc-read"]) {
    it(`${name}: READ responses (opcodes, PSNs, MSNs, lengths, bytes)`, async () => {
      const res = await replayResponder(name);
      expect(res.theirs.length).toBeGreaterThan(0);
      expect(res.ours).toEqual(res.theirs);
    });
  }

  for (const name of ["rc-atomic-cas", "rc-atomic-faa"]) {
    it(`${name}: atomic ACKs carry the original data rxe returned; memory after as rxe left it`, async () => {
      const res = await replayResponder(name);
      expect(res.theirs.length).toBeGreaterThan(0);
      expect(res.ours).toEqual(res.theirs);
      // each address holds what its last operation left: that op applied to the original value rxe returned for it
      const addrs = new Set(res.requests.filter((q) => q.repr.atomicEth).map((q) => `${q.repr.atomicEth!.rkey}:${q.repr.atomicEth!.va}`));
      expect(addrs.size).toBeGreaterThan(0);
      for (const key of addrs) {
        const [rkey, va] = key.split(":");
        const m = res.mrs.get(Number(rkey))!;
        const value = new DataView(m.mr.bytes.buffer, m.mr.bytes.byteOffset + Number(BigInt(va!) - m.base), 8).getBigUint64(0, true);
        const last = [...res.requests].reverse().find((q) => q.repr.atomicEth && `${q.repr.atomicEth.rkey}:${q.repr.atomicEth.va}` === key)!;
        const orig = BigInt(res.theirs.find((t) => t.startsWith(`op 18 psn ${last.repr.psn} `))!.match(/orig (0x[0-9a-f]+)/)![1]!);
        const e = last.repr.atomicEth!;
        const want = last.repr.opcode === 0x14 ? BigInt.asUintN(64, orig + e.swapAdd) : orig === e.compare ? e.swapAdd : orig;
        expect(value, key).toBe(want);
      }
    });
  }

  for (const name of ["rc-send-multi", "rc-send-v6"]) {
    it(`${name}: ACKs for multi-packet SENDs; receive completions and buffers`, async () => {
      const res = await replayResponder(name);
      expect(res.ours).toEqual(res.theirs);
      const sends = res.requests.filter((q) => q.mask & OpMask.SEND);
      const messages: Uint8Array[] = [];
      let cur: number[] = [];
      for (const q of sends) {
        if (q.mask & OpMask.START) cur = [];
        cur.push(...q.repr.payload);
        if (q.mask & OpMask.END) messages.push(Uint8Array.from(cur));
      }
      expect(messages.length).toBeGreaterThan(0);
      expect(res.recvs).toEqual(messages.map((m) => ({ byteLen: m.length, opcode: WcOpcode.RECV, status: 0 })));
      messages.forEach((m, i) => expect(Buffer.from(res.recvBuf.bytes.subarray(i * res.recvSlot, i * res.recvSlot + m.length)).equals(Buffer.from(m))).toBe(true));
    });
  }

  it("rc-rnr: RNR NAKs (with rxe's timer code) when no receive is posted, one sequence NAK per gap, ACKs after", async () => {
    const res = await replayResponder("rc-rnr");
    expect(res.theirs.filter((t) => t.includes("syn 0x2c")).length).toBeGreaterThan(0);
    expect(res.theirs.filter((t) => t.includes("syn 0x60")).length).toBeGreaterThan(0);
    expect(res.ours).toEqual(res.theirs);
    expect(res.recvs.every((r) => r.status === 0 && r.byteLen === 64 && r.opcode === WcOpcode.RECV)).toBe(true);
  });

  it("rc-seqerr: the PSN-sequence-error NAK for the gap carries the expected PSN; go-back-N fills the WRITE", async () => {
    const res = await replayResponder("rc-seqerr");
    expect(res.theirs.filter((t) => t.includes("syn 0x60")).length).toBe(1);
    expect(res.ours).toEqual(res.theirs);
    expectWrites(res, new Map([...res.mrs].map(([k, { mr }]) => [k, new Uint8Array(mr.length)])));
  });
});

// ---- requester side ----

interface Message {
  wr: SendWr;
  /** first PSN */
  psn: number;
  /** payload bytes of the message (WRITE/SEND), concatenated */
  data: Uint8Array;
}

/** The WRs behind the capture's requests (first transmissions, in PSN order). */
function messagesOf(requests: Pkt[], mr: MemoryRegion, remote: Map<number, bigint>): Message[] {
  const out: Message[] = [];
  const seen = new Set<number>();
  let cur: { wr: SendWr; parts: number[]; psn: number } | undefined;
  let off = 0;
  for (const q of requests) {
    const r = q.repr;
    if (seen.has(r.psn)) continue; // a retransmission
    seen.add(r.psn);
    const m = q.mask;
    if (m & OpMask.START) {
      const rdma = r.reth ? { remoteAddr: remote.get(r.reth.rkey)! + r.reth.va, rkey: r.reth.rkey } : undefined;
      const base = { wrId: BigInt(out.length), sendFlags: SendFlags.SIGNALED };
      let wr: SendWr;
      if (m & OpMask.READ) wr = { ...base, opcode: WrOpcode.RDMA_READ, rdma, sgList: [] };
      else if (m & OpMask.ATOMIC) {
        const a = r.atomicEth!;
        const atomic = { remoteAddr: remote.get(a.rkey)! + a.va, rkey: a.rkey, compareAdd: r.opcode === 0x14 ? a.swapAdd : a.compare, swap: a.swapAdd };
        wr = { ...base, opcode: r.opcode === 0x14 ? WrOpcode.ATOMIC_FETCH_AND_ADD : WrOpcode.ATOMIC_CMP_AND_SWP, atomic, sgList: [] };
      } else if (m & OpMask.WRITE) wr = { ...base, opcode: r.immDt !== undefined ? WrOpcode.RDMA_WRITE_WITH_IMM : WrOpcode.RDMA_WRITE, rdma, sgList: [] };
      else wr = { ...base, opcode: r.immDt !== undefined ? WrOpcode.SEND_WITH_IMM : WrOpcode.SEND, sgList: [] };
      cur = { wr, parts: [], psn: r.psn };
      if (m & OpMask.READ) {
        wr.sgList = [mr.sge(off, r.reth!.dmaLength)];
        off += r.reth!.dmaLength;
      } else if (m & OpMask.ATOMIC) {
        wr.sgList = [mr.sge(off, 8)];
        off += 8;
      }
    }
    if (!cur) continue;
    if (r.immDt !== undefined) cur.wr.immData = r.immDt;
    cur.parts.push(...r.payload);
    if (m & OpMask.END || m & OpMask.READ || m & OpMask.ATOMIC) {
      const data = Uint8Array.from(cur.parts);
      if (!(m & OpMask.READ) && !(m & OpMask.ATOMIC)) {
        mr.bytes.set(data, off);
        cur.wr.sgList = data.length ? [mr.sge(off, data.length)] : [];
        off += data.length;
      }
      out.push({ wr: cur.wr, data, psn: cur.psn });
      cur = undefined;
    }
  }
  return out;
}

async function replayRequester(name: string) {
  const pkts = load(name);
  const first = pkts.find((p) => p.mask & OpMask.REQ)!;
  const requester = first.repr.src;
  const responder = first.repr.dst;
  const requests = pkts.filter((p) => p.mask & OpMask.REQ && p.repr.src === requester);
  const responses = pkts.filter((p) => p.mask & OpMask.RESP && p.repr.src === responder);
  const myQpn = responses[0]!.repr.destQp;
  const net = new SimNetwork();
  const dev = await net.addDevice(mod, requester, { qpnBase: myQpn, ...AS_CAPTURED, activeMtu: Mtu.MTU_1024, mrArenaBytes: 8 << 20 });
  const sent: Datagram[] = [];
  net.wire.attach(responder, 4791, (d) => sent.push(d));
  const pd = dev.allocPd();
  const cq = dev.createCq(256);
  const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 256, maxRecvWr: 16, maxSendSge: 1, maxRecvSge: 1 } });
  expect(qp.qpNum).toBe(myQpn);
  // long timers: the replay, not our timers, decides what comes back
  connectQp(qp, { qpNum: first.repr.destQp, psn: 0, gid: gid(responder) }, {
    sqPsn: first.repr.psn,
    pathMtu: Mtu.MTU_1024,
    qpAccessFlags: ACCESS,
    maxRdAtomic: 16,
    timeout: 20,
    retryCnt: 7,
    rnrRetry: 7,
  });
  const mr = pd.regMr(1 << 20, ACCESS);
  // remote addresses: WRs name rxe's VAs directly (rkey and va pass through unchanged)
  const remote = new Map<number, bigint>();
  for (const q of requests) for (const k of [q.repr.reth?.rkey, q.repr.atomicEth?.rkey]) if (k !== undefined) remote.set(k, 0n);
  const msgs = messagesOf(requests, mr, remote);
  qp.postSend(msgs.map((m) => m.wr));
  // only what happens now: no retransmission timer may fire during the replay
  net.run(net.now);
  // feed rxe's responses in order, each once we have sent the requests that preceded it in the
  // capture (an RNR wait runs the virtual clock; no retransmission timer fires meanwhile)
  for (const s of responses) {
    const r = s.repr;
    const need = pkts.slice(0, pkts.indexOf(s)).filter((p) => requests.includes(p)).length;
    if (sent.length < need) net.runUntil(() => sent.length >= need, net.now + 100_000);
    expect(sent.length, `${name}: requests sent before response PSN ${r.psn}`).toBeGreaterThanOrEqual(need);
    const rx = dev.port!.receive({ src: responder, dst: requester, srcPort: r.udpSrcPort, dstPort: 4791, ipId: r.ipId, payload: s.udp });
    expect(rx, `${name}: response PSN ${r.psn} refused`).toBe(0);
    net.run(net.now);
  }
  const wcs = cq.poll(1024);
  const ours = sent.map((d) => {
    const p = codec.parseUdpPayload(d.payload, { src: d.src, dst: d.dst, ipId: d.ipId, udpSrcPort: d.srcPort, udpDstPort: d.dstPort });
    if (!p.ok) throw new Error(p.error);
    return reqKey(p.repr);
  });
  return { ours, theirs: requests.map((q) => reqKey(q.repr)), wcs, msgs, mr, responses };
}

describe("replay: our requester sends what rxe's did and completes on rxe's responses", () => {
  const names = ["rc-write-only", "rc-write", "rc-write-long", "rc-read-only", "rc-read", "rc-atomic-cas", "rc-atomic-faa", "rc-seqerr", "rc-rnr"];
  for (const name of names) {
    it(`${name}: same requests (opcodes, PSNs, AckReq, lengths, bytes, go-back-N, RNR retry); every WR completes`, async () => {
      const res = await replayRequester(name);
      expect(res.ours).toEqual(res.theirs);
      expect(res.wcs.map((w) => [w.wrId, w.status])).toEqual(res.msgs.map((_, i) => [BigInt(i), 0]));
      // READ and atomic results land in our MR as rxe's responses carried them
      for (const m of res.msgs) {
        const sge = m.wr.sgList?.[0];
        if (!sge) continue;
        const got = res.mr.bytes.subarray(Number(sge.addr - res.mr.addr), Number(sge.addr - res.mr.addr) + sge.length);
        if (m.wr.opcode === WrOpcode.RDMA_READ) {
          const parts: number[] = [];
          for (let k = 0; k < Math.max(1, Math.ceil(sge.length / MTU)); k++) {
            parts.push(...res.responses.find((s) => s.mask & OpMask.READ && s.repr.psn === ((m.psn + k) & 0xffffff))!.repr.payload);
          }
          expect(Buffer.from(got).equals(Buffer.from(parts)), `READ at PSN ${m.psn}`).toBe(true);
        } else if (m.wr.atomic) {
          const ack = res.responses.find((s) => s.repr.atomicAckEth && s.repr.psn === m.psn)!;
          expect(new DataView(got.buffer, got.byteOffset, 8).getBigUint64(0, true)).toBe(ack.repr.atomicAckEth!.origRemoteData);
        }
      }
    });
  }
});

// ---- both sides at once ----

/**
 * rc_pingpong: our device takes the place of one host, which both answers the
 * peer's SENDs and sends its own. The peer's packets go in in capture order;
 * before each, our device has posted the SENDs its host had sent by then.
 */
async function replayDuplex(name: string) {
  const pkts = load(name);
  const first = pkts.find((p) => p.mask & OpMask.REQ)!;
  const peer = first.repr.src;
  const me = first.repr.dst;
  const mine = pkts.filter((p) => p.repr.src === me);
  const theirs = pkts.filter((p) => p.repr.src === peer);
  const myRequests = mine.filter((p) => p.mask & OpMask.REQ);
  const net = new SimNetwork();
  const dev = await net.addDevice(mod, me, { qpnBase: first.repr.destQp, ...AS_CAPTURED, activeMtu: Mtu.MTU_1024 });
  const sent: Datagram[] = [];
  net.wire.attach(peer, 4791, (d) => sent.push(d));
  const pd = dev.allocPd();
  const cq = dev.createCq(64);
  const rcq = dev.createCq(64);
  const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: rcq, cap: { maxSendWr: 16, maxRecvWr: 16, maxSendSge: 1, maxRecvSge: 1 } });
  connectQp(qp, { qpNum: myRequests[0]!.repr.destQp, psn: first.repr.psn, gid: gid(peer) }, {
    sqPsn: myRequests[0]!.repr.psn,
    pathMtu: Mtu.MTU_1024,
    timeout: 20,
  });
  const mr = pd.regMr(1 << 20, ACCESS);
  const recvBuf = pd.regMr(8 * 16384, ACCESS);
  qp.postRecv(Array.from({ length: 8 }, (_, i) => ({ wrId: BigInt(i), sgList: [recvBuf.sge(i * 16384, 16384)] })));
  const msgs = messagesOf(myRequests, mr, new Map());
  let next = 0;
  const sentRequests = () => sent.filter((d) => codec.opcode(d.payload[0]!)!.mask & OpMask.REQ).length;
  for (const p of theirs) {
    const need = pkts.slice(0, pkts.indexOf(p)).filter((q) => myRequests.includes(q)).length;
    while (sentRequests() < need && next < msgs.length) {
      qp.postSend(msgs[next++]!.wr);
      net.run(net.now);
    }
    expect(sentRequests(), `${name}: our requests before peer packet PSN ${p.repr.psn}`).toBe(need);
    const rx = dev.port!.receive({ src: peer, dst: me, srcPort: p.repr.udpSrcPort, dstPort: 4791, ipId: p.repr.ipId, payload: p.udp });
    expect(rx).toBe(0);
    net.run(net.now);
  }
  const parsed = sent.map((d) => {
    const r = codec.parseUdpPayload(d.payload, { src: d.src, dst: d.dst, ipId: d.ipId, udpSrcPort: d.srcPort, udpDstPort: d.dstPort });
    if (!r.ok) throw new Error(r.error);
    return { repr: r.repr, mask: codec.opcode(r.repr.opcode)!.mask };
  });
  return {
    ours: parsed.map((x) => (x.mask & OpMask.REQ ? `req ${reqKey(x.repr)}` : `resp ${respKey(x.repr, true)}`)),
    theirs: mine.map((x) => (x.mask & OpMask.REQ ? `req ${reqKey(x.repr)}` : `resp ${respKey(x.repr, true)}`)),
    sends: cq.poll(64),
    recvs: rcq.poll(64),
    msgs,
    peerMessages: theirs.filter((p) => p.mask & OpMask.SEND && p.mask & OpMask.END).length,
  };
}

describe("replay: both sides of rc_pingpong", () => {
  for (const name of ["rc-send-multi", "rc-send-v6"]) {
    it(`${name}: our SENDs and ACKs are rxe's, in rxe's order; every WR completes`, async () => {
      const res = await replayDuplex(name);
      expect(res.theirs.filter((t) => t.startsWith("req")).length).toBeGreaterThan(0);
      expect(res.ours).toEqual(res.theirs);
      expect(res.sends.map((w) => [w.wrId, w.status, w.opcode])).toEqual(res.msgs.map((_, i) => [BigInt(i), 0, WcOpcode.SEND]));
      expect(res.recvs.length).toBe(res.peerMessages);
      expect(res.recvs.every((w) => w.status === 0 && w.opcode === WcOpcode.RECV && w.byteLen === 10000)).toBe(true);
    });
  }
});
