// One playground run: two devices (A and B) on the simulated wire with a virtual
// clock and seeded faults, the work requests a plan asks for, and everything a
// learner can look at afterwards — every datagram with its fate, the timers that
// fired, each QP's rxe states (from the trace ring), the CQ entries, and both
// memory regions before and after. Platform-neutral: it runs in the page and in
// Node (the tests), on the host/core API alone.
import {
  Access, QpType, QpState, SendFlags, WrOpcode, WcStatus, WcOpcode, SimNetwork, TraceReader, WireCodec, connectQp,
  decodePacket, formatGid, ipPacket, simTracePcapng, IP_ID_UNKNOWN,
  type AddressHandle, type CompletionQueue, type DecodedPacket, type Device, type MemoryRegion, type PacketRecord,
  type QueuePair, type ScriptedFault, type SendWr, type TraceEvent, type TraceRecord, type WorkCompletion,
} from "./api.js";
import { AethType, aethType } from "../../../host/core/wire/index.js";
import type { Op, Settings } from "./settings.js";
import { ReceiverNotes } from "./notes.js";

export type Side = "A" | "B";
/** Which packets a scripted fault counts. */
export type PacketClass = "any" | "request" | "data" | "ack" | "read-response" | "nak";

export interface ScriptStep {
  /** direction: A>B (requests) or B>A (responses); default both */
  dir?: "A>B" | "B>A";
  what: PacketClass;
  nth: number;
  count?: number;
  action?: "drop" | "corrupt";
  label: string;
}

/** What a run does: the settings plus a preset's twists. */
export interface Plan {
  settings: Settings;
  /** first PSNs (default A 0x100, B 0x800) */
  psnA?: number;
  psnB?: number;
  /** RC: ACK timeout exponent (4.096 µs × 2^timeout), retry counts, RNR timer code */
  timeout?: number;
  retryCnt?: number;
  rnrRetry?: number;
  minRnrTimer?: number;
  /** B posts its receives at this virtual time instead of at once (RNR) */
  postRecvAtUs?: number;
  /** A names B's memory region with a wrong rkey */
  wrongRkey?: boolean;
  /** UD: A sends with a Q_Key B does not have */
  wrongQkey?: boolean;
  script?: ScriptStep[];
}

export const ADDRESS: Record<Side, string> = { A: "192.0.2.1", B: "192.0.2.2" };
/**
 * Each device draws its QPNs at random (seeded by the wire) from its own half of the 24-bit space,
 * so A's and B's QPNs always differ and a completion's qpNum says whose it is.
 */
const QPN_RANGE: Record<Side, { qpnBase: number; qpnCount: number }> = {
  A: { qpnBase: 0x11, qpnCount: 0x800000 - 0x11 },
  B: { qpnBase: 0x800000, qpnCount: 0x7fffff },
};
const QKEY = 0x11111111;
const WRONG_QKEY = 0x22222222;
/** UD receive buffers start with 40 bytes for the GRH. */
const GRH = 40;
/** Virtual time after which a run stops even if events remain (µs). */
export const RUN_LIMIT_US = 60_000_000;

export interface SideState {
  qpn: number;
  qpState: string;
  req?: string;
  comp?: string;
  resp?: string;
  /** the requester's next PSN, as its last state record said */
  nextPsn?: number;
  /** the PSN of the last request the responder handled */
  respPsn?: number;
  sqPsn?: number;
  rqPsn?: number;
  sent: number;
  received: number;
  dropped: number;
  retransmitTimers: number;
  rnrTimers: number;
  completions: number;
}

export interface Completion {
  side: Side;
  tUs: number;
  wc: WorkCompletion;
}

export interface TimerEvent {
  side: Side;
  tUs: number;
  kind: "retransmit" | "rnr";
  qpn?: number;
}

/** One row of trace(): the decoded packet as `softroce decode --json` prints it, plus its fate and time. */
export type TraceRow = PacketRecord & { fate: string; t_us: number };

interface Peer {
  side: Side;
  dev: Device;
  cq: CompletionQueue;
  qp: QueuePair;
  mr: MemoryRegion;
  reader: TraceReader;
  state: SideState;
  ah?: AddressHandle;
}

export function transportOf(op: Op): number {
  return op === "uc-send" ? QpType.UC : op === "ud-send" ? QpType.UD : QpType.RC;
}
const ATOMIC_OPS: readonly Op[] = ["cmp-swap", "fetch-add", "atomic-write"];
const RECV_OPS: readonly Op[] = ["send", "send-imm", "write-imm", "uc-send", "ud-send"];

/** Bytes one work request moves (atomics: 8; UD: at most the MTU). */
export function messageSize(s: Settings): number {
  if (ATOMIC_OPS.includes(s.op)) return 8;
  if (s.op === "ud-send") return Math.min(s.size, s.mtu);
  return s.size;
}

const MTU_ENUM: Record<number, number> = { 256: 1, 512: 2, 1024: 3, 2048: 4, 4096: 5 };

export class Session {
  readonly net: SimNetwork;
  readonly codec: WireCodec;
  readonly plan: Plan;
  readonly a: Peer;
  readonly b: Peer;
  readonly completions: Completion[] = [];
  readonly timers: TimerEvent[] = [];
  /** every trace-ring event of both devices, in order, with its side */
  readonly events: (TraceEvent & { side: Side })[] = [];
  /** memory regions as they were before the run */
  readonly before: Record<Side, Uint8Array>;
  /** what the run posted */
  readonly posted: { sends: number; recvs: number };
  private decoded: (DecodedPacket | undefined)[] = [];
  private readonly notes = new ReceiverNotes();
  private stopped = false;
  private qpStateNames: readonly string[];

  private constructor(net: SimNetwork, codec: WireCodec, plan: Plan, a: Peer, b: Peer) {
    this.net = net;
    this.codec = codec;
    this.plan = plan;
    this.a = a;
    this.b = b;
    this.qpStateNames = a.reader.states("QP_STATE");
    this.before = { A: a.mr.bytes.slice(), B: b.mr.bytes.slice() };
    this.posted = { sends: 0, recvs: 0 };
  }

  static async create(mod: WebAssembly.Module, plan: Plan): Promise<Session> {
    const s = plan.settings;
    const size = messageSize(s);
    const type = transportOf(s.op);
    const net = new SimNetwork({
      seed: s.seed,
      trace: true,
      faults: { loss: s.loss, dup: s.dup, reorder: s.reorder, corrupt: s.corrupt, delayUs: s.delay },
    });
    const codec = await WireCodec.create(mod);
    const stride = type === QpType.UD ? size + GRH : size;
    const mrBytes = Math.max(64, stride * s.depth);
    const mk = async (side: Side): Promise<Peer> => {
      const dev = await net.addDevice(mod, ADDRESS[side], {
        ...QPN_RANGE[side],
        mrArenaBytes: Math.max(1 << 20, mrBytes * 2 + (1 << 16)),
        ringArenaBytes: 4 << 20,
        maxQp: 8,
        nodeGuid: side === "A" ? 0x02000000000000a1n : 0x02000000000000b2n,
        activeMtu: 5,
      });
      const reader = new TraceReader(dev);
      reader.enable();
      const pd = dev.allocPd();
      const cq = dev.createCq(Math.max(64, s.depth * 2 + 8));
      const depth = Math.max(16, s.depth);
      const qp = pd.createQp({ qpType: type, sendCq: cq, recvCq: cq, cap: { maxSendWr: depth, maxRecvWr: depth, maxSendSge: 1, maxRecvSge: 1 } });
      const all = Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ | Access.REMOTE_ATOMIC | Access.FLUSH_GLOBAL;
      const mr = pd.regMr(mrBytes, all);
      const seed = side === "A" ? 1 : 2;
      for (let i = 0; i < mr.length; i++) mr.bytes[i] = side === "A" ? (i * 7 + seed) & 0xff : ((i * 13 + 5) & 0xff) ^ 0x5a;
      const state: SideState = { qpn: qp.qpNum, qpState: "RESET", sent: 0, received: 0, dropped: 0, retransmitTimers: 0, rnrTimers: 0, completions: 0 };
      return { side, dev, cq, qp, mr, reader, state };
    };
    const a = await mk("A");
    const b = await mk("B");
    const session = new Session(net, codec, plan, a, b);
    session.connect(type);
    session.post(type, size, stride);
    session.collect();
    return session;
  }

  private connect(type: number): void {
    const p = this.plan;
    const s = p.settings;
    const psnA = p.psnA ?? 0x100;
    const psnB = p.psnB ?? 0x800;
    const { a, b } = this;
    const all = Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ | Access.REMOTE_ATOMIC | Access.FLUSH_GLOBAL;
    const common = {
      pathMtu: MTU_ENUM[s.mtu] ?? 3,
      qpAccessFlags: all,
      timeout: p.timeout ?? 8,
      retryCnt: p.retryCnt ?? 7,
      rnrRetry: p.rnrRetry ?? 7,
      minRnrTimer: p.minRnrTimer ?? 1,
      maxRdAtomic: 4,
      maxDestRdAtomic: 4,
      qkey: QKEY,
    };
    const gid = (side: Side) => `::ffff:${ADDRESS[side]}`;
    connectQp(a.qp, { qpNum: b.qp.qpNum, psn: psnB, gid: gid("B") }, { sqPsn: psnA, ...common });
    connectQp(b.qp, { qpNum: a.qp.qpNum, psn: psnA, gid: gid("A") }, { sqPsn: psnB, ...common });
    if (type === QpType.UD) a.ah = a.qp.pd.createAh({ grh: { dgid: gid("B"), sgidIndex: 0, hopLimit: 64 }, portNum: 1 });
    for (const f of p.script ?? []) this.net.wire.script(this.scriptRule(f));
  }

  private scriptRule(f: ScriptStep): ScriptedFault {
    const from = f.dir === "A>B" ? ADDRESS.A : f.dir === "B>A" ? ADDRESS.B : undefined;
    const codec = this.codec;
    const match = (d: { src: string; payload: Uint8Array }): boolean => {
      if (from !== undefined && d.src !== from) return false;
      const op = codec.opcode(d.payload[0] ?? -1);
      if (!op) return f.what === "any";
      const isAck = op.name.endsWith(" Acknowledge") && !op.flags.atomic;
      const at = op.offsets.AETH; // from the BTH's start, which is the UDP payload's
      const syndrome = isAck && at !== undefined && d.payload.length > at ? d.payload[at] : 0;
      switch (f.what) {
        case "any":
          return true;
        case "request":
          return op.flags.req;
        case "data":
          return op.flags.req && op.flags.payload;
        case "ack":
          return isAck && aethType(syndrome) === AethType.ACK;
        case "nak":
          return isAck && aethType(syndrome) !== AethType.ACK;
        case "read-response":
          return op.flags.resp && op.flags.read;
      }
    };
    return { match, nth: f.nth, count: f.count, action: f.action, label: f.label };
  }

  private post(type: number, size: number, stride: number): void {
    const p = this.plan;
    const s = p.settings;
    const { a, b } = this;
    const recvs = RECV_OPS.includes(s.op) ? s.depth : 0;
    const postRecvs = () => {
      if (!recvs) return;
      b.qp.postRecv(Array.from({ length: recvs }, (_, i) => ({ wrId: BigInt(1000 + i), sgList: [b.mr.sge(i * stride, stride)] })));
      this.posted.recvs += recvs;
    };
    if (p.postRecvAtUs === undefined) postRecvs();
    else this.net.wire.clock.schedule(p.postRecvAtUs, postRecvs);
    const rkey = p.wrongRkey ? b.mr.rkey ^ 0x5500 : b.mr.rkey;
    const wrs: SendWr[] = [];
    for (let i = 0; i < s.depth; i++) {
      const off = i * stride;
      const remoteAddr = b.mr.addr + BigInt(off);
      const local = [a.mr.sge(off, size)];
      const wr: SendWr = { wrId: BigInt(i + 1), opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: local };
      switch (s.op) {
        case "send":
        case "uc-send":
          break;
        case "ud-send":
          wr.ud = { ah: a.ah!, remoteQpn: b.qp.qpNum, remoteQkey: p.wrongQkey ? WRONG_QKEY : QKEY };
          break;
        case "send-imm":
          wr.opcode = WrOpcode.SEND_WITH_IMM;
          wr.immData = 0x1000 + i;
          break;
        case "write":
          wr.opcode = WrOpcode.RDMA_WRITE;
          wr.rdma = { remoteAddr, rkey };
          break;
        case "write-imm":
          wr.opcode = WrOpcode.RDMA_WRITE_WITH_IMM;
          wr.rdma = { remoteAddr, rkey };
          wr.immData = 0x2000 + i;
          break;
        case "read":
          wr.opcode = WrOpcode.RDMA_READ;
          wr.rdma = { remoteAddr, rkey };
          break;
        case "cmp-swap": {
          const cur = new DataView(b.mr.bytes.buffer, b.mr.bytes.byteOffset + off, 8).getBigUint64(0, true);
          wr.opcode = WrOpcode.ATOMIC_CMP_AND_SWP;
          wr.atomic = { remoteAddr, rkey, compareAdd: cur, swap: 0x1122334455667788n + BigInt(i) };
          break;
        }
        case "fetch-add":
          wr.opcode = WrOpcode.ATOMIC_FETCH_AND_ADD;
          wr.atomic = { remoteAddr, rkey, compareAdd: 0x0101010101010101n };
          break;
        case "atomic-write":
          wr.opcode = WrOpcode.ATOMIC_WRITE;
          wr.atomic = { remoteAddr, rkey, compareAdd: 0xa5a5a5a5a5a5a5a5n + BigInt(i) };
          break;
        case "flush":
          wr.opcode = WrOpcode.FLUSH;
          wr.rdma = { remoteAddr, rkey };
          wr.immData = 0x11; // selectivity: memory region, placement: global visibility
          wr.sgList = [{ addr: 0n, length: size, lkey: 0 }];
          break;
      }
      wrs.push(wr);
    }
    a.qp.postSend(wrs);
    this.posted.sends = wrs.length;
  }

  /** Virtual time now (µs). */
  get now(): number {
    return this.net.now;
  }

  /** Nothing left to run (or the run hit its time limit). */
  get done(): boolean {
    const c = this.net.wire.clock;
    return this.stopped || c.pending === 0 || (c.nextAt ?? 0) > RUN_LIMIT_US;
  }

  /** Runs the next event on the virtual clock; false when the run is over. */
  step(): boolean {
    if (this.done) return false;
    this.net.wire.clock.step();
    this.collect();
    return true;
  }

  /** Runs up to `maxEvents` events (or until virtual time `untilUs`); returns how many ran. */
  run(maxEvents = Infinity, untilUs = Infinity): number {
    let n = 0;
    while (n < maxEvents && !this.done && (this.net.wire.clock.nextAt ?? Infinity) <= untilUs) {
      this.net.wire.clock.step();
      n++;
      if ((n & 63) === 0) this.collect();
    }
    this.collect();
    return n;
  }

  /** Runs to the end. */
  runToEnd(): void {
    while (!this.done) this.run(100_000);
  }

  stop(): void {
    this.stopped = true;
  }

  private collect(): void {
    for (const peer of [this.a, this.b]) {
      for (const ev of peer.reader.read()) {
        this.events.push({ ...ev, side: peer.side });
        this.apply(peer, ev);
      }
      for (;;) {
        const got = peer.cq.poll(64);
        if (!got.length) break;
        for (const wc of got) this.completions.push({ side: peer.side, tUs: this.now, wc });
        peer.state.completions += got.length;
      }
    }
    this.notes.update(this);
  }

  private apply(peer: Peer, ev: TraceEvent): void {
    const st = peer.state;
    if (ev.qpn !== undefined && ev.qpn !== peer.qp.qpNum && ev.kind !== "PKT_RECV") return;
    switch (ev.kind) {
      case "REQ_STATE":
        st.req = ev.state;
        if (ev.psn !== undefined) st.nextPsn = ev.psn;
        break;
      case "COMP_STATE":
        st.comp = ev.state;
        break;
      case "RESP_STATE":
        st.resp = ev.state;
        if (ev.psn !== undefined) st.respPsn = ev.psn;
        break;
      case "PKT_SENT":
        st.sent++;
        break;
      case "PKT_RECV":
        if (ev.verdict === "ok") st.received++;
        else st.dropped++;
        break;
      case "TIMER_RETRANSMIT":
        st.retransmitTimers++;
        this.timers.push({ side: peer.side, tUs: ev.timeUs, kind: "retransmit", qpn: ev.qpn });
        break;
      case "TIMER_RNR":
        st.rnrTimers++;
        this.timers.push({ side: peer.side, tUs: ev.timeUs, kind: "rnr", qpn: ev.qpn });
        break;
      case "QP_STATE":
        st.qpState = ev.state ?? st.qpState;
        break;
    }
  }

  /** Each side's QP as the trace ring and ibv_query_qp show it. */
  sideState(side: Side): SideState {
    const peer = side === "A" ? this.a : this.b;
    const q = peer.qp.query().attr;
    return { ...peer.state, qpState: this.qpStateNames[q.qpState] ?? peer.state.qpState, sqPsn: q.sqPsn, rqPsn: q.rqPsn };
  }

  /** The datagrams the wire carried, in the order they were sent. */
  get packets(): readonly TraceRecord[] {
    return this.net.wire.trace ?? [];
  }

  readonly live = false;

  /** Was the i-th datagram sent by A? */
  fromA(i: number): boolean {
    return this.packets[i].datagram.src === ADDRESS.A;
  }

  address(side: Side): string {
    return ADDRESS[side];
  }

  /** One line for the status bar. */
  statusText(): string {
    const st = this.net.wire.stats;
    return `t = ${this.now.toFixed(3)} µs · ${this.packets.length} packets (${st.lost} lost, ${st.duplicated} duplicated, ${st.corrupted} corrupted, ${st.reordered} reordered) · ${this.completions.length} completions`;
  }

  /** The i-th datagram decoded (cached), with byte ranges; its bytes are packetBytes(i). */
  decode(i: number): DecodedPacket {
    let d = this.decoded[i];
    if (!d) {
      const r = this.packets[i];
      const bytes = this.packetBytes(i);
      d = decodePacket(this.codec, bytes, { frame: i + 1, tsNanos: BigInt(Math.round(r.sentAt)) * 1000n, frameLen: bytes.length });
      this.decoded[i] = d;
    }
    return d;
  }

  note(i: number): string | undefined {
    return this.notes.note(i);
  }

  /** The i-th datagram inside the IP and UDP headers its ICRC was computed over (as in the pcapng). */
  packetBytes(i: number): Uint8Array {
    const d = this.packets[i].datagram;
    return ipPacket({ src: d.src, dst: d.dst, srcPort: d.srcPort, dstPort: d.dstPort, ipId: d.ipId ?? IP_ID_UNKNOWN, payload: d.payload });
  }

  /** Every packet as `softroce decode --json` prints it, plus fate and virtual send time. */
  trace(): TraceRow[] {
    return this.packets.map((r, i) => ({ ...this.decode(i).record, fate: r.fate, t_us: r.sentAt }));
  }

  /** The CQ entries of both sides, in the order they were polled, as WC objects with bigints as decimal strings. */
  completionObjects(): Record<string, unknown>[] {
    return this.completions.map((c) => wcObject(c.wc));
  }

  /** The whole run as a pcapng file (fate and scripted reason as packet comments). */
  pcapng(): Uint8Array {
    return simTracePcapng(this.packets);
  }

  /** Memory region bytes now. */
  after(side: Side): Uint8Array | undefined {
    return (side === "A" ? this.a : this.b).mr.bytes;
  }
}

/** A WC as plain JSON: bigint fields as decimal strings, the GID as text. */
export function wcObject(wc: WorkCompletion): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(wc)) {
    if (typeof v === "bigint") out[k] = v.toString();
    else if (v instanceof Uint8Array) out[k] = formatGid(v);
    else out[k] = v;
  }
  return out;
}

const STATUS_NAMES = Object.fromEntries(Object.entries(WcStatus).map(([k, v]) => [v, k]));
const WC_OPCODE_NAMES = Object.fromEntries(Object.entries(WcOpcode).map(([k, v]) => [v, k]));
export const wcStatusName = (s: number): string => STATUS_NAMES[s] ?? `status ${s}`;
export const wcOpcodeName = (o: number): string => WC_OPCODE_NAMES[o] ?? `opcode ${o}`;
export { QpState };
