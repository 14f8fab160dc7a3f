// One replay harness for the real Linux rxe captures in test/fixtures/captures: RC, UC and UD,
// with our device in either role. A capture is loaded once (every RoCE packet parsed by the
// core, its ICRC checked); the drivers put a device in the place of one endpoint, feed it the
// other endpoint's packets (re-emitted where they name rxe's memory: our R_Key, the same offset
// into our MR, the ICRC redone) and return what the device sent, parsed, beside what rxe sent.
// What the capture cannot say comes from rxe's own answers: the bytes a READ or an atomic found,
// whether a receive was posted (rxe answered RNR or not), and a request lost on its way to rxe.
// Opcode knowledge comes from the opcode table (OpMask), syndromes from host/core/wire/aeth.ts,
// PSN arithmetic from the core (WireCodec.psnAdd/psnDiff).
import { readFileSync } from "node:fs";
import { expect } from "vitest";
import { coreModule } from "../../../host/node/wasm-source.js";
import { readCaptureAll } from "../../../host/core/capture/index.js";
import { addressGid, notRoce, type Datagram } from "../../../host/core/net/index.js";
import { AETH_NAK_SEQ, isRnrNak, OpMask, WireCodec, type PacketRepr, type PacketSpec } from "../../../host/core/wire/index.js";
import { SimNetwork } from "../../../host/core/sim/index.js";
import {
  Access, connectQp, Mtu, QpType, SendFlags, WcOpcode, WrOpcode, type Device, type MemoryRegion, type OpenDeviceOptions, type SendWr,
  type WorkCompletion,
} from "../../../host/core/verbs/index.js";

const DIR = new URL("../../fixtures/captures/", import.meta.url);
/** The captures' path MTU. */
export const MTU = 1024;
export const ALL_ACCESS = Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ | Access.REMOTE_ATOMIC;

export interface Pkt {
  /** µs since the first RoCE packet */
  t: number;
  repr: PacketRepr;
  /** the IP header as captured */
  ip: Uint8Array;
  /** the UDP payload as captured (BTH .. ICRC) */
  udp: Uint8Array;
  /** the opcode's mask bits (OpMask) */
  mask: number;
}

let shared: { mod: WebAssembly.Module; codec: WireCodec } | undefined;
/** The core module and a codec over it, made once per test file. */
export async function core(): Promise<{ mod: WebAssembly.Module; codec: WireCodec }> {
  if (!shared) {
    const mod = await coreModule();
    shared = { mod, codec: await WireCodec.create(mod) };
  }
  return shared;
}

/**
 * The device that plays one endpoint: its address, and its one QP numbered as the capture's
 * (`qpn`). Every driver opens its device here, so what a replay device is stays in one place.
 */
export async function addReplayDevice(net: SimNetwork, address: string, qpn: number, options: OpenDeviceOptions = {}): Promise<Device> {
  const { mod } = await core();
  return net.addDevice(mod, address, { ...options, qpnBase: qpn });
}

/** Every RoCE packet of a capture (name without .pcap), parsed, each ICRC checked. */
export async function loadCapture(name: string): Promise<Pkt[]> {
  const { codec } = await core();
  const out: Pkt[] = [];
  let t0 = -1;
  for (const rec of readCaptureAll(new Uint8Array(readFileSync(new URL(`${name}.pcap`, DIR))))) {
    if (!rec.data || notRoce(rec.data) !== undefined) continue;
    const p = codec.parse(rec.data);
    if (!p.ok) throw new Error(`${name} frame ${rec.index}: ${p.error}`);
    expect(p.repr.icrcOk, `${name} frame ${rec.index} ICRC`).toBe(true);
    if (t0 < 0) t0 = rec.tsMicros;
    const ipLen = p.info.bthOffset - 8;
    out.push({
      t: rec.tsMicros - t0, repr: p.repr, ip: rec.data.slice(0, ipLen), udp: rec.data.slice(p.info.bthOffset, p.info.packetLength),
      mask: codec.opcode(p.repr.opcode)!.mask,
    });
  }
  return out;
}

/** What the device sent, parsed (every packet must parse and carry a good ICRC). */
export function parseSent(codec: WireCodec, sent: readonly Datagram[]): PacketRepr[] {
  return sent.map((d) => {
    const p = codec.parseDatagram(d);
    if (!p.ok) throw new Error(`the device sent a packet that does not parse: ${p.error}`);
    expect(p.repr.icrcOk, "the device's ICRC").toBe(true);
    return p.repr;
  });
}

/** A packet's header fields as emit takes them. */
export function specOf(r: PacketRepr): PacketSpec {
  const { ipChecksum: _a, udpLength: _b, padCount: _c, icrc: _d, icrcExpected: _e, icrcOk: _f, ...spec } = r;
  return spec as PacketSpec;
}

/** The UDP payload of `r` with its RETH/AtomicETH naming `va`/`rkey` instead (the ICRC redone). */
export function remapped(codec: WireCodec, r: PacketRepr, va: bigint, rkey: number): Uint8Array {
  const spec = specOf(r);
  if (r.reth) spec.reth = { ...r.reth, va, rkey };
  if (r.atomicEth) spec.atomicEth = { ...r.atomicEth, va, rkey };
  const full = codec.emit(spec);
  return full.subarray(r.ipVersion === 4 ? 28 : 48);
}

/** Hands a captured packet (or its re-emitted UDP payload) to a device's port with the capture's IP facts. */
export function deliver(dev: { port?: { receive(d: Datagram): number } }, r: PacketRepr, payload: Uint8Array): number {
  return dev.port!.receive({
    src: r.src, dst: r.dst, srcPort: r.udpSrcPort, dstPort: r.udpDstPort, ipId: r.ipId, ttl: r.ttl, tos: r.tos, flowLabel: r.flowLabel, payload,
  });
}

/** A response as both sides are compared: every field a responder decides, payload bytes included. */
export function answerKey(r: PacketRepr) {
  return {
    opcode: r.opcode, psn: r.psn, destQp: r.destQp, ackReq: r.ackReq, syndrome: r.aeth?.syndrome, msn: r.aeth?.msn,
    orig: r.atomicAckEth?.origRemoteData, payload: Array.from(r.payload),
  };
}

/** A request as both sides are compared: every header field a requester decides, payload bytes included. */
export function requestKey(r: PacketRepr) {
  return {
    opcode: r.opcode, psn: r.psn, ackReq: r.ackReq, se: r.se, destQp: r.destQp, pkey: r.pkey, migReq: r.migReq, padCount: r.padCount,
    reth: r.reth, atomicEth: r.atomicEth, deth: r.deth, immDt: r.immDt, ieth: r.ieth, feth: r.feth, payload: Array.from(r.payload),
  };
}

/** One message: its first transmission's packets in order. */
export interface Message {
  pkts: PacketRepr[];
  /** index in the capture of its first packet */
  start: number;
  /** payload bytes of the message (SEND/WRITE), concatenated */
  data: Uint8Array;
}

/** PSNs a request takes: a READ one per response packet, anything else one. */
function psnSpan(r: PacketRepr, mask: number): number {
  return mask & OpMask.READ ? Math.max(1, Math.ceil(r.reth!.dmaLength / MTU)) : 1;
}

/**
 * The messages `from` sent, in first-transmission order (retransmissions skipped by PSN; a
 * packet of another flow between two of a message's packets is passed over).
 */
export function messagesFrom(pkts: Pkt[], from: string, codec: WireCodec): Message[] {
  const out: Message[] = [];
  let next: number | undefined;
  let cur: Message | undefined;
  let curData: number[] = [];
  pkts.forEach((p, i) => {
    const r = p.repr;
    if (r.src !== from || !(p.mask & OpMask.REQ)) return;
    if (next !== undefined && codec.psnDiff(r.psn, next) < 0) return; // a retransmission
    if (p.mask & OpMask.START) {
      expect(cur, `a message starts at PSN ${r.psn} before the last one ended`).toBeUndefined();
      cur = { pkts: [], start: i, data: new Uint8Array(0) };
      curData = [];
    }
    if (!cur) throw new Error(`PSN ${r.psn} continues no message`);
    cur.pkts.push(r);
    curData.push(...r.payload);
    next = codec.psnAdd(r.psn, psnSpan(r, p.mask));
    if (p.mask & OpMask.END) {
      cur.data = Uint8Array.from(curData);
      out.push(cur);
      cur = undefined;
    }
  });
  expect(cur, "the capture ends inside a message").toBeUndefined();
  return out;
}

/**
 * The work request behind a message, its local bytes at `off` in `mr` (SEND/WRITE data copied
 * there; READ and atomic results land there). RDMA targets rxe's addresses as captured.
 */
export function wrOf(codec: WireCodec, m: Message, mr: MemoryRegion, off: number, wrId: number): { wr: SendWr; len: number } {
  const h = m.pkts[0]!;
  const last = m.pkts[m.pkts.length - 1]!;
  const mask = codec.opcode(h.opcode)!.mask;
  const base = { wrId: BigInt(wrId), sendFlags: SendFlags.SIGNALED | (last.se ? SendFlags.SOLICITED : 0) };
  const imm = last.immDt;
  if (mask & OpMask.READ) {
    const len = h.reth!.dmaLength;
    return { wr: { ...base, opcode: WrOpcode.RDMA_READ, rdma: { remoteAddr: h.reth!.va, rkey: h.reth!.rkey }, sgList: [mr.sge(off, len)] }, len };
  }
  if (mask & OpMask.ATOMIC) {
    const a = h.atomicEth!;
    const faa = isFetchAdd(codec, h.opcode);
    const atomic = faa ? { remoteAddr: a.va, rkey: a.rkey, compareAdd: a.swapAdd } : { remoteAddr: a.va, rkey: a.rkey, compareAdd: a.compare, swap: a.swapAdd };
    return { wr: { ...base, opcode: faa ? WrOpcode.ATOMIC_FETCH_AND_ADD : WrOpcode.ATOMIC_CMP_AND_SWP, atomic, sgList: [mr.sge(off, 8)] }, len: 8 };
  }
  mr.bytes.set(m.data, off);
  const sgList = m.data.length ? [mr.sge(off, m.data.length)] : [];
  const wr: SendWr = mask & OpMask.WRITE
    ? { ...base, opcode: imm !== undefined ? WrOpcode.RDMA_WRITE_WITH_IMM : WrOpcode.RDMA_WRITE, rdma: { remoteAddr: h.reth!.va, rkey: h.reth!.rkey }, sgList }
    : { ...base, opcode: imm !== undefined ? WrOpcode.SEND_WITH_IMM : WrOpcode.SEND, sgList };
  if (imm !== undefined) wr.immData = imm;
  return { wr, len: m.data.length };
}

/** FETCH_ADD rather than CMP_SWAP: the opcode table's name tells the two atomics apart (both carry the ATOMIC bit). */
export function isFetchAdd(codec: WireCodec, opcode: number): boolean {
  return codec.opcode(opcode)?.name.endsWith("Fetch Add") === true;
}

/** The send completion opcode of a work request's opcode. */
export const WC_OF_WR: Record<number, number> = {
  [WrOpcode.SEND]: WcOpcode.SEND, [WrOpcode.SEND_WITH_IMM]: WcOpcode.SEND, [WrOpcode.RDMA_WRITE]: WcOpcode.RDMA_WRITE,
  [WrOpcode.RDMA_WRITE_WITH_IMM]: WcOpcode.RDMA_WRITE, [WrOpcode.RDMA_READ]: WcOpcode.RDMA_READ,
  [WrOpcode.ATOMIC_CMP_AND_SWP]: WcOpcode.COMP_SWAP, [WrOpcode.ATOMIC_FETCH_AND_ADD]: WcOpcode.FETCH_ADD,
};

/** rxe's memory as the requests name it: per R_Key, the lowest page and the extent used. */
function regions(requests: PacketRepr[]): Map<number, { base: bigint; size: number }> {
  const m = new Map<number, { lo: bigint; hi: bigint }>();
  for (const r of requests) {
    const at = r.reth ? { rkey: r.reth.rkey, va: r.reth.va, len: r.reth.dmaLength } : r.atomicEth ? { rkey: r.atomicEth.rkey, va: r.atomicEth.va, len: 8 } : undefined;
    if (!at) continue;
    const e = m.get(at.rkey) ?? { lo: at.va, hi: at.va };
    if (at.va < e.lo) e.lo = at.va;
    if (at.va + BigInt(at.len) > e.hi) e.hi = at.va + BigInt(at.len);
    m.set(at.rkey, e);
  }
  return new Map([...m].map(([k, e]) => [k, { base: e.lo & ~0xfffn, size: Math.max(1, Number(e.hi - (e.lo & ~0xfffn))) }]));
}

// ---- RC: our responder answers rxe's requests ------------------------------------------------

export interface ResponderReplay {
  ours: ReturnType<typeof answerKey>[];
  theirs: ReturnType<typeof answerKey>[];
  recvs: { byteLen: number; opcode: number; status: number }[];
  /** our MR standing for each of rxe's R_Keys, and the rxe address its byte 0 stands for */
  mrs: Map<number, { mr: MemoryRegion; base: bigint }>;
  requests: Pkt[];
  recvBuf: MemoryRegion;
  recvSlot: number;
}

export async function replayRcResponder(name: string, recvSlot = 16384): Promise<ResponderReplay> {
  const { codec } = await core();
  const pkts = await loadCapture(name);
  const first = pkts.find((p) => p.mask & OpMask.REQ)!;
  const requester = first.repr.src;
  const responder = first.repr.dst;
  const requests = pkts.filter((p) => p.mask & OpMask.REQ && p.repr.src === requester);
  const responses = pkts.filter((p) => p.mask & OpMask.RESP && p.repr.src === responder);
  const net = new SimNetwork();
  const dev = await addReplayDevice(net, responder, first.repr.destQp, { activeMtu: Mtu.MTU_1024, mrArenaBytes: 8 << 20 });
  const got: Datagram[] = [];
  net.wire.attach(requester, 4791, (d) => got.push(d));
  const pd = dev.allocPd();
  const cq = dev.createCq(256);
  const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 16, maxRecvWr: 64, maxSendSge: 1, maxRecvSge: 1 } });
  expect(qp.qpNum).toBe(first.repr.destQp);
  const rnrNaks = responses.filter((p) => p.repr.aeth && isRnrNak(p.repr.aeth.syndrome));
  const minRnrTimer = rnrNaks.length ? rnrNaks[0]!.repr.aeth!.syndrome & 0x1f : 12;
  connectQp(qp, { qpNum: responses[0]!.repr.destQp, psn: first.repr.psn, gid: addressGid(requester) }, {
    sqPsn: 0, pathMtu: Mtu.MTU_1024, qpAccessFlags: ALL_ACCESS, maxDestRdAtomic: 16, minRnrTimer,
  });
  // our MRs stand for rxe's, holding what rxe's held where the responses show it
  const mrs = new Map<number, { mr: MemoryRegion; base: bigint }>();
  for (const [rkey, reg] of regions(requests.map((q) => q.repr))) mrs.set(rkey, { mr: pd.regMr(reg.size, ALL_ACCESS), base: reg.base });
  const recvBuf = pd.regMr(recvSlot * 64, ALL_ACCESS);
  const seenAtomic = new Set<string>();
  for (const q of requests) {
    const r = q.repr;
    if (r.reth && q.mask & OpMask.READ) {
      const m = mrs.get(r.reth.rkey)!;
      let off = Number(r.reth.va - m.base);
      for (let k = 0; k < psnSpan(r, q.mask); k++) {
        const resp = responses.find((s) => s.mask & OpMask.READ && s.repr.psn === codec.psnAdd(r.psn, k));
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
  const dropped = new Set(responses.filter((p) => p.repr.aeth?.syndrome === AETH_NAK_SEQ && !rnrLeft.has(p.repr.psn)).map((p) => p.repr.psn));
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
    const at = r.reth ?? r.atomicEth;
    let udp = q.udp;
    if (at) {
      const m = mrs.get(at.rkey)!;
      udp = remapped(codec, r, m.mr.addr + (at.va - m.base), m.mr.rkey);
    }
    const before = got.length;
    expect(deliver(dev, r, udp), `${name}: request PSN ${r.psn} refused`).toBe(0);
    net.run();
    poll();
    // what rxe's responder did with it: in sequence -> next PSN (READ: one per response packet); RNR -> stays
    if (r.psn === expected) {
      const rnrNow = parseSent(codec, got.slice(before)).some((x) => x.aeth && isRnrNak(x.aeth.syndrome));
      if (!rnrNow) expected = codec.psnAdd(expected, psnSpan(r, q.mask));
    }
  }
  net.run();
  poll();
  return { ours: parseSent(codec, got).map(answerKey), theirs: responses.map((p) => answerKey(p.repr)), recvs, mrs, requests, recvBuf, recvSlot };
}

// ---- RC: our requester sends rxe's requests --------------------------------------------------

export interface RequesterReplay {
  /** requests compared with rxe's, packet by packet */
  compared: number;
  /** rxe's responses delivered */
  responses: number;
  /** packets the device sent beyond rxe's */
  extra: number;
  wcs: WorkCompletion[];
  wrs: { wr: SendWr; off: number; len: number }[];
  mr: MemoryRegion;
  msgs: Message[];
  /** rxe's responses by PSN (first of each) */
  byPsn: Map<number, PacketRepr>;
}

/**
 * Our device takes the requester's place (its address, QPN and first PSN), is given the same
 * work requests when the capture shows them starting, and gets rxe's responses at their capture
 * times. Every request it sends must equal the next one rxe sent — retransmissions included.
 */
export async function replayRcRequester(name: string): Promise<RequesterReplay> {
  const { codec } = await core();
  const pkts = await loadCapture(name);
  const first = pkts.find((p) => p.mask & OpMask.REQ)!.repr;
  const R = first.src;
  const P = first.dst;
  const reqQpn = pkts.find((p) => p.repr.src === P)!.repr.destQp;
  if (pkts.some((p) => (p.repr.src === R) !== ((p.mask & OpMask.REQ) !== 0))) throw new Error(`${name}: not a one-way requester capture`);
  const msgs = messagesFrom(pkts, R, codec);
  const net = new SimNetwork({ trace: true });
  const dev = await addReplayDevice(net, R, reqQpn);
  const pd = dev.allocPd();
  const cq = dev.createCq(4096);
  const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 4096, maxRecvWr: 1, maxSendSge: 1, maxRecvSge: 1 } });
  expect(qp.qpNum).toBe(reqQpn);
  connectQp(qp, { qpNum: first.destQp, psn: 0, gid: addressGid(P) }, {
    sqPsn: first.psn, pathMtu: Mtu.MTU_1024, timeout: 14, retryCnt: 7, rnrRetry: 7, maxRdAtomic: 16, maxDestRdAtomic: 16,
  });
  const mr = pd.regMr(8 << 20, Access.LOCAL_WRITE);
  let off = 0;
  const wrs = msgs.map((m, k) => {
    const { wr, len } = wrOf(codec, m, mr, off, k);
    const at = off;
    off += (len + 63) & ~63;
    return { wr, off: at, len };
  });
  const trace = net.wire.trace!;
  let seen = 0;
  const emitted: PacketRepr[] = [];
  const collect = () => {
    emitted.push(...parseSent(codec, trace.slice(seen).map((t) => t.datagram)));
    seen = trace.length;
  };
  const startOf = new Map(msgs.map((m, k) => [m.start, k]));
  let compared = 0;
  let responses = 0;
  const clock = net.wire.clock;
  for (let i = 0; i < pkts.length; i++) {
    const { t, repr: r, udp } = pkts[i]!;
    if (t > clock.now) net.run(t);
    if (clock.now < t) clock.now = t;
    if (r.src === P) {
      expect(deliver(dev, r, udp), `${name}: response PSN ${r.psn} refused`).toBe(0);
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
    expect(emitted.length, `${name}: rxe sent packet ${i} (PSN ${r.psn}) but the device sent nothing`).toBeGreaterThan(compared);
    expect(requestKey(emitted[compared]!), `${name}: request ${compared}`).toEqual(requestKey(r));
    compared++;
  }
  collect();
  const byPsn = new Map<number, PacketRepr>();
  for (const { repr } of pkts) if (repr.src === P && !byPsn.has(repr.psn)) byPsn.set(repr.psn, repr);
  return { compared, responses, extra: emitted.length - compared, wcs: cq.poll(4096), wrs, mr, msgs, byPsn };
}

// ---- RC: both sides of rc_pingpong -----------------------------------------------------------

/**
 * Our device takes the place of one rc_pingpong host, which both answers the peer's SENDs and
 * sends its own. The peer's packets go in in capture order; before each, our device has posted
 * the SENDs its host had sent by then.
 */
export async function replayRcDuplex(name: string) {
  const { codec } = await core();
  const pkts = await loadCapture(name);
  const first = pkts.find((p) => p.mask & OpMask.REQ)!;
  const peer = first.repr.src;
  const me = first.repr.dst;
  const mine = pkts.filter((p) => p.repr.src === me);
  const theirs = pkts.filter((p) => p.repr.src === peer);
  const myMsgs = messagesFrom(pkts, me, codec);
  const myRequests = mine.filter((p) => p.mask & OpMask.REQ);
  const net = new SimNetwork();
  const dev = await addReplayDevice(net, me, first.repr.destQp, { activeMtu: Mtu.MTU_1024 });
  const sent: Datagram[] = [];
  net.wire.attach(peer, 4791, (d) => sent.push(d));
  const pd = dev.allocPd();
  const cq = dev.createCq(64);
  const rcq = dev.createCq(64);
  const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: rcq, cap: { maxSendWr: 16, maxRecvWr: 16, maxSendSge: 1, maxRecvSge: 1 } });
  connectQp(qp, { qpNum: myRequests[0]!.repr.destQp, psn: first.repr.psn, gid: addressGid(peer) }, {
    sqPsn: myRequests[0]!.repr.psn, pathMtu: Mtu.MTU_1024, timeout: 20,
  });
  const mr = pd.regMr(1 << 20, ALL_ACCESS);
  const recvBuf = pd.regMr(8 * 16384, ALL_ACCESS);
  qp.postRecv(Array.from({ length: 8 }, (_, i) => ({ wrId: BigInt(i), sgList: [recvBuf.sge(i * 16384, 16384)] })));
  let off = 0;
  const wrs = myMsgs.map((m, k) => {
    const { wr, len } = wrOf(codec, m, mr, off, k);
    off += (len + 63) & ~63;
    return wr;
  });
  let next = 0;
  const sentRequests = () => parseSent(codec, sent).filter((r) => codec.opcode(r.opcode)!.mask & OpMask.REQ).length;
  for (const p of theirs) {
    const need = pkts.slice(0, pkts.indexOf(p)).filter((q) => myRequests.includes(q)).length;
    while (sentRequests() < need && next < wrs.length) {
      qp.postSend(wrs[next++]!);
      net.run(net.now);
    }
    expect(sentRequests(), `${name}: our requests before peer packet PSN ${p.repr.psn}`).toBe(need);
    expect(deliver(dev, p.repr, p.udp)).toBe(0);
    net.run(net.now);
  }
  const key = (r: PacketRepr) => (codec.opcode(r.opcode)!.mask & OpMask.REQ ? { req: requestKey(r) } : { resp: answerKey(r) });
  return {
    ours: parseSent(codec, sent).map(key),
    theirs: mine.map((p) => key(p.repr)),
    sends: cq.poll(64),
    recvs: rcq.poll(64),
    wrs,
    peerMessages: theirs.filter((p) => p.mask & OpMask.SEND && p.mask & OpMask.END).length,
  };
}

// ---- UC and UD, both roles -------------------------------------------------------------------

/** The requests the first packet's sender sent to its receiver, grouped into messages. */
async function unreliable(name: string) {
  const { codec } = await core();
  const pkts = await loadCapture(name);
  const from = pkts[0]!.repr.src;
  const to = pkts[0]!.repr.dst;
  const msgs = messagesFrom(pkts.filter((p) => p.repr.dst === to), from, codec);
  const raw = new Map(pkts.map((p) => [p.repr, p]));
  const ud = (pkts[0]!.mask & OpMask.DETH) !== 0;
  return { codec, pkts, from, to, msgs, raw, ud };
}

/**
 * A device plays the receiver: every request is delivered (WRITEs re-emitted into our MR) and
 * must be accepted; returns the receive completions and buffers beside what rxe's peer got
 * (UD: the 40-byte GRH made of the packet's own IP header, then the payload).
 */
export async function replayUnreliableResponder(name: string) {
  const { codec, from, to, msgs, raw, ud } = await unreliable(name);
  const first = msgs[0]!.pkts[0]!;
  const net = new SimNetwork({});
  const dev = await addReplayDevice(net, to, first.destQp);
  const pd = dev.allocPd();
  const cq = dev.createCq(256);
  const qp = pd.createQp({ qpType: ud ? QpType.UD : QpType.UC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 1, maxRecvWr: 64, maxSendSge: 1, maxRecvSge: 1 } });
  expect(qp.qpNum).toBe(first.destQp);
  if (ud) connectQp(qp, undefined, { sqPsn: 1, qkey: first.deth!.qkey });
  else connectQp(qp, { qpNum: 0x99, psn: first.psn, gid: addressGid(from) }, { sqPsn: 1, pathMtu: Mtu.MTU_1024, qpAccessFlags: Access.REMOTE_WRITE });
  const STRIDE = 8192;
  const buf = pd.regMr(64 * STRIDE, Access.LOCAL_WRITE | Access.REMOTE_WRITE);
  const wbuf = pd.regMr(1 << 16, Access.LOCAL_WRITE | Access.REMOTE_WRITE);
  for (let i = 0; i < msgs.length; i++) qp.postRecv({ wrId: BigInt(i), sgList: [buf.sge(i * STRIDE, STRIDE)] });
  for (const m of msgs) {
    for (const r of m.pkts) {
      // a WRITE: its R_Key and address are mapped into this device's MR (the ICRC is redone)
      const payload = r.reth ? remapped(codec, r, wbuf.addr, wbuf.rkey) : raw.get(r)!.udp;
      expect(deliver(dev, r, payload)).toBe(0);
    }
  }
  const sends = msgs.filter((m) => codec.opcode(m.pkts[0]!.opcode)!.mask & OpMask.SEND || m.pkts.some((p) => p.immDt !== undefined));
  const expected = sends.map((m) => {
    const ip = Array.from(raw.get(m.pkts[0]!)!.ip);
    const grh = !ud ? [] : m.pkts[0]!.ipVersion === 4 ? [...new Array(20).fill(0), ...ip] : ip;
    return { bytes: [...grh, ...m.data], srcQp: m.pkts[0]!.deth?.srcQp };
  });
  const wcs = cq.poll(256);
  const writes = msgs.filter((m) => m.pkts[0]!.reth);
  return {
    ud, from, messages: msgs.length, wcs, expected,
    received: wcs.map((c, i) => Array.from(buf.bytes.subarray(i * STRIDE, i * STRIDE + c.byteLen))),
    lastWrite: writes.length ? { got: Array.from(wbuf.bytes.subarray(0, writes.at(-1)!.pkts[0]!.reth!.dmaLength)), want: Array.from(writes.at(-1)!.data) } : undefined,
  };
}

/**
 * A device plays the sender: it posts the same work requests and must emit the same packets
 * (no ACKs exist to wait for); returns ours and rxe's, keyed with the IP fields a UD GRH carries.
 */
export async function replayUnreliableRequester(name: string) {
  const { codec, from, to, msgs, ud } = await unreliable(name);
  const first = msgs[0]!.pkts[0]!;
  const net = new SimNetwork({ trace: true });
  const dev = await addReplayDevice(net, from, ud ? first.deth!.srcQp : 0x40);
  const pd = dev.allocPd();
  const cq = dev.createCq(256);
  const qp = pd.createQp({ qpType: ud ? QpType.UD : QpType.UC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 64, maxRecvWr: 1, maxSendSge: 1, maxRecvSge: 1 } });
  if (ud) connectQp(qp, undefined, { sqPsn: first.psn, qkey: first.deth!.qkey });
  else connectQp(qp, { qpNum: first.destQp, psn: 1, gid: addressGid(to) }, { sqPsn: first.psn, pathMtu: Mtu.MTU_1024 });
  const ah = ud ? pd.createAh({ grh: { dgid: addressGid(to), sgidIndex: 0, hopLimit: 64 }, portNum: 1 }) : undefined;
  const STRIDE = 8192;
  const mr = pd.regMr(64 * STRIDE, Access.LOCAL_WRITE);
  msgs.forEach((m, i) => {
    const { wr } = wrOf(codec, m, mr, i * STRIDE, i);
    if (ud) wr.ud = { ah: ah!, remoteQpn: m.pkts[0]!.destQp, remoteQkey: m.pkts[0]!.deth!.qkey };
    qp.postSend(wr);
  });
  net.run();
  const key = (r: PacketRepr, ttl: number, tos: number) => ({ ...requestKey(r), dst: r.dst, ttl, tos, icrcOk: r.icrcOk });
  const trace = net.wire.trace!;
  return {
    wcs: cq.poll(256),
    messages: msgs.length,
    ours: parseSent(codec, trace.map((t) => t.datagram)).map((r, i) => key(r, trace[i]!.datagram.ttl ?? 0, trace[i]!.datagram.tos ?? 0)),
    theirs: msgs.flatMap((m) => m.pkts).map((r) => key(r, r.ttl, r.tos)),
  };
}
