// One side of a perf test, whatever bed it runs on: a device's PD, one send and one receive CQ,
// N QPs and per QP a region of message places (perfPlaces) — a part of the side's one MR, as perftest
// registers by default, or with --mr_per_qp an MR of its own; the device sizes that hold them; the
// attributes both sides connect with; the work request each test posts.
import type {
  AddressHandle, CompletionChannel, CompletionQueue, Device, MemoryRegion, ProtectionDomain, QueuePair, SendWr, Sge,
} from "../verbs/index.js";
import { Access, DEFAULT_MAX_CQE, QpType, SendFlags, WrOpcode } from "../verbs/index.js";
import { atomicOperand } from "./pattern.js";
import { ATOMIC_SIZE, perfMrBytes, perfVerb, readsResponses, slotOffset, type PerfLayout, type ResolvedPerfOptions } from "./options.js";

export const PERF_ACCESS = Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ | Access.REMOTE_ATOMIC;

export interface PerfSide {
  device: Device;
  pd: ProtectionDomain;
  sendCq: CompletionQueue;
  recvCq: CompletionQueue;
  qps: QueuePair[];
  /** per QP: its places × slotBytes per region (perfMrBytes) */
  mrs: PerfRegion[];
  /** the MRs registered: one, or one per QP (mrPerQp) */
  registered: MemoryRegion[];
  /** QP number -> QP index */
  index: Map<number, number>;
  /** UD: per QP, the address handle of the peer and the peer QP's number */
  ahs: AddressHandle[];
  peers: number[];
}

/** One QP's buffer: where it starts, its length, the keys that name it, its bytes, a scatter/gather entry into it. */
export interface PerfRegion {
  readonly addr: bigint;
  readonly length: number;
  readonly lkey: number;
  readonly rkey: number;
  /** a view of the region's bytes (taken afresh: a view detaches if the device's memory grows) */
  readonly bytes: Uint8Array;
  sge(offset: number, length: number): Sge;
}

/** QP `index`'s part of one MR holding every QP's buffer (perftest's buf[i] inside its first MR). */
class MrPart implements PerfRegion {
  readonly addr: bigint;
  readonly lkey: number;
  readonly rkey: number;
  constructor(
    private readonly mr: MemoryRegion,
    private readonly offset: number,
    readonly length: number,
  ) {
    this.addr = mr.addr + BigInt(offset);
    this.lkey = mr.lkey;
    this.rkey = mr.rkey;
  }
  get bytes(): Uint8Array {
    return this.mr.bytes.subarray(this.offset, this.offset + this.length);
  }
  sge(offset: number, length: number): Sge {
    return this.mr.sge(this.offset + offset, length);
  }
}

/**
 * `count` QPs' buffers of `bytes` each, as perftest registers them: parts of one MR (its default), or
 * with `perQp` (--mr_per_qp) an MR each. Returns the buffers in QP order and the MRs registered.
 */
export function qpRegions(pd: ProtectionDomain, count: number, bytes: number, perQp: boolean, access: number): { regions: PerfRegion[]; registered: MemoryRegion[] } {
  if (perQp) {
    const registered = Array.from({ length: count }, () => pd.regMr(bytes, access));
    return { regions: registered, registered };
  }
  const mr = pd.regMr(bytes * count, access);
  return { regions: Array.from({ length: count }, (_, i) => new MrPart(mr, i * bytes, bytes)), registered: [mr] };
}

/** The peer's MR of one QP, as RDMA work requests name it. */
export interface RemoteMr {
  addr: bigint;
  rkey: number;
}

/** The enum value of an MTU in bytes (256 -> 1 … 4096 -> 5). */
export function mtuEnum(bytes: number): number {
  return Math.log2(bytes) - 7;
}

/** Where one direction's messages live and how the verify pattern tells them apart. */
export interface PerfShape extends PerfLayout {
  /** work requests (and receives) in flight per QP, each with its slot: the tx depth */
  slots: number;
  qkey: number;
  /** byte offset of this direction's region in every MR (0: the client's; -b's server: places × slotBytes) */
  base?: number;
  /** added to the QP index in pattern and atomic-operand keys (-b's server: qps) */
  keyQp?: number;
}

/** Each QP's send and receive queue depth: the tx depth, at least 16. */
const perfQpWr = (o: ResolvedPerfOptions): number => Math.max(o.txDepth, 16);
/** Each CQ's depth: every QP's queue and some spare, at most the device's max_cqe. */
const perfCqe = (o: ResolvedPerfOptions): number => Math.min(DEFAULT_MAX_CQE, o.qps * perfQpWr(o) + 64);

/** Device options that hold a side's MRs, rings and QPs. */
export function perfDeviceOptions(o: ResolvedPerfOptions): { mrArenaBytes: number; ringArenaBytes: number; maxQp: number } {
  const mrBytes = o.qps * perfMrBytes(o);
  const wr = perfQpWr(o);
  const cqe = perfCqe(o);
  return {
    mrArenaBytes: Math.max(1 << 20, Math.ceil((mrBytes + o.qps * 4096 + (64 << 10)) / (1 << 20)) * (1 << 20)),
    // rings (SQ/RQ/CQ) beyond the default arena, which also holds the engines' per-QP state
    ringArenaBytes: (16 << 20) + o.qps * wr * 2 * 256 + cqe * 2 * 128,
    // + 1: QP1 (the GSI), which every Node device opens, counts against max_qp as in rxe's QP pool
    maxQp: Math.max(16, o.qps) + 1,
  };
}

/** PD, CQs (on `channel` when given), QPs (in RESET) and MRs on a device opened with perfDeviceOptions. */
export function openPerfSide(device: Device, o: ResolvedPerfOptions, channel?: CompletionChannel): PerfSide {
  const qpType = o.connection === "UD" ? QpType.UD : o.connection === "UC" ? QpType.UC : QpType.RC;
  const wr = perfQpWr(o);
  const cqe = perfCqe(o);
  const pd = device.allocPd();
  const sendCq = device.createCq(cqe, { channel });
  const recvCq = device.createCq(cqe, { channel });
  const qps: QueuePair[] = [];
  const index = new Map<number, number>();
  for (let i = 0; i < o.qps; i++) {
    const qp = pd.createQp({ qpType, sendCq, recvCq, cap: { maxSendWr: wr, maxRecvWr: wr, maxSendSge: 1, maxRecvSge: 1, maxInlineData: o.inlineSize } });
    index.set(qp.qpNum, i);
    qps.push(qp);
  }
  const { regions: mrs, registered } = qpRegions(pd, o.qps, perfMrBytes(o), o.mrPerQp, PERF_ACCESS);
  return { device, pd, sendCq, recvCq, qps, mrs, registered, index, ahs: [], peers: [] };
}

/** The connected-QP attributes both sides use (connectQp's options without sqPsn). */
export function perfConnectAttrs(o: ResolvedPerfOptions) {
  return {
    pathMtu: mtuEnum(o.mtu),
    qpAccessFlags: PERF_ACCESS,
    timeout: o.timeout,
    retryCnt: o.retryCnt,
    rnrRetry: 7,
    minRnrTimer: 1,
    maxRdAtomic: 16,
    maxDestRdAtomic: 16,
  };
}

/** The remote MRs of a side (what the other side's RDMA work requests name). */
export function remoteMrs(side: PerfSide): RemoteMr[] {
  return side.mrs.map((mr) => ({ addr: mr.addr, rkey: mr.rkey }));
}

/** The bytes of slot `slot`'s place (`size` long, from `offset`) in a side's MR of QP `qp`. */
export function slotView(side: PerfSide, qp: number, layout: PerfLayout, slot: number, size: number, offset = 0): Uint8Array {
  const mr = side.mrs[qp]!;
  // re-derive: the MR's view detaches if memory ever grows
  return new Uint8Array(side.device.memory.buffer, Number(mr.addr) + slotOffset(layout, slot) + offset, size);
}

/** CMP_SWAP chain: the counter holds value(seq) before op seq, which swaps in value(seq + 1). */
export function casValue(o: ResolvedPerfOptions, qp: number, seq: number): bigint {
  return seq === 0 ? 0n : atomicOperand(o.seed, qp, seq - 1);
}


/**
 * The work request of message `seq` on QP `qp`, sent from `local` into slot seq % slots: the
 * remote MR (RDMA) or the peer's address handle (UD SEND); atomics work on one 8-byte counter
 * per QP at the start of the remote MR, with operands from the seed.
 */
export function perfWr(o: ResolvedPerfOptions, local: PerfSide, remote: RemoteMr, shape: PerfShape, qp: number, seq: number): SendWr {
  const base = shape.base ?? 0;
  const key = qp + (shape.keyQp ?? 0);
  const off = base + slotOffset(shape, seq % shape.slots);
  const mr = local.mrs[qp]!;
  const sgList = o.size > 0 ? [mr.sge(off, o.size)] : [];
  // -I: a SEND or WRITE that fits is copied into the WQE at post time
  const inline = o.inlineSize > 0 && o.size <= o.inlineSize && !readsResponses(o.test) ? SendFlags.INLINE : 0;
  const wrId = BigInt(seq);
  const sendFlags = SendFlags.SIGNALED | inline;
  // plain literals, each of one shape (a spread of a shared base made every WR a map of its own, and
  // every read of a field in the post path a lookup that missed)
  switch (perfVerb(o.test)) {
    case "send": {
      const ah = local.ahs[qp];
      return ah
        ? { wrId, opcode: WrOpcode.SEND, sendFlags, sgList, ud: { ah, remoteQpn: local.peers[qp]!, remoteQkey: shape.qkey } }
        : { wrId, opcode: WrOpcode.SEND, sendFlags, sgList };
    }
    case "write":
      return { wrId, opcode: WrOpcode.RDMA_WRITE, sendFlags, sgList, rdma: { remoteAddr: remote.addr + BigInt(off), rkey: remote.rkey } };
    case "read":
      return { wrId, opcode: WrOpcode.RDMA_READ, sendFlags, sgList, rdma: { remoteAddr: remote.addr + BigInt(off), rkey: remote.rkey } };
    case "atomic": {
      const remoteAddr = remote.addr + BigInt(base);
      const sgl = [mr.sge(off, ATOMIC_SIZE)];
      if (o.atomicType === "FETCH_AND_ADD") {
        return { wrId, opcode: WrOpcode.ATOMIC_FETCH_AND_ADD, sendFlags, sgList: sgl, atomic: { remoteAddr, rkey: remote.rkey, compareAdd: atomicOperand(o.seed, key, seq) } };
      }
      return {
        wrId, opcode: WrOpcode.ATOMIC_CMP_AND_SWP, sendFlags, sgList: sgl,
        atomic: { remoteAddr, rkey: remote.rkey, compareAdd: casValue(o, key, seq), swap: casValue(o, key, seq + 1) },
      };
    }
  }
}
