// Work requests (ibv_send_wr, ibv_recv_wr) and their encoding into ring slots,
// with the synchronous checks rxe makes when a WR is posted
// (rdma-core providers/rxe validate_send_wr, kernel rxe_verbs.c validate_send_wr
// and post_one_recv). Each check returns an errno name or undefined.
import { Rwqe, Sge as SgeOff, Swqe, SwqeBind, SwqeReg } from "./abi.js";
import type { AddressHandle } from "./ah.js";
import { Access, FlushLevel, FlushType, QpType, SendFlags, WrOpcode } from "./enums.js";
import type { ErrnoName } from "./errors.js";
import type { DeviceMemory } from "./memory.js";
import type { MemoryRegion } from "./mr.js";
import type { MemoryWindow } from "./mw.js";

/** ibv_sge */
export interface Sge {
  addr: bigint;
  length: number;
  lkey: number;
}

/** ibv_mw_bind_info */
export interface MwBindInfo {
  /** the MR the window opens (omit, with length 0, to unbind a type 1 window) */
  mr?: MemoryRegion;
  addr: bigint;
  length: number | bigint;
  mwAccessFlags: number;
}

/** ibv_send_wr (without next: pass an array for a list) */
export interface SendWr {
  wrId?: bigint;
  sgList?: Sge[];
  opcode: number;
  sendFlags?: number;
  immData?: number;
  /** LOCAL_INV, SEND_WITH_INV: the rkey (or fast-registration MR key) to invalidate */
  invalidateRkey?: number;
  rdma?: { remoteAddr: bigint; rkey: number };
  atomic?: { remoteAddr: bigint; compareAdd: bigint; swap?: bigint; rkey: number };
  ud?: { ah: AddressHandle; remoteQpn: number; remoteQkey: number };
  /** BIND_MW (type 2 windows): the window, the rkey it gets (ibv_inc_rkey of its current one), what it opens */
  bindMw?: { mw: MemoryWindow; rkey: number; bindInfo: MwBindInfo };
  /**
   * REG_MR (ib_reg_wr): register a fast-registration MR under `key` with `access`. Without addr and
   * length it maps what mr.mapSg (ib_map_mr_sg) set: its page list, iova mr.addr, mr.length. With
   * them (and no mapSg since the last REG_MR), [addr, addr + length) of registered memory as it is.
   */
  reg?: { mr: MemoryRegion; key: number; access: number; addr?: bigint; length?: number };
  /** FLUSH as ibv_wr_flush takes it: type FlushType bits, level FlushLevel (the immData word form is still read without it) */
  flush?: { remoteAddr: bigint; rkey: number; length: number; type: number; level: number };
  /** ATOMIC_WRITE as ibv_wr_atomic_write takes it: 8 bytes, a bigint (stored little-endian) or the bytes themselves */
  atomicWrite?: { remoteAddr: bigint; rkey: number; value: bigint | Uint8Array };
}

/** FETH word of a typed FLUSH: bits 3:0 placement type, 5:4 selectivity level (IBA 9.3.1.1.x). */
export function flushWord(type: number, level: number): number {
  return ((level & 3) << 4) | (type & 15);
}

/** ibv_recv_wr */
export interface RecvWr {
  wrId?: bigint;
  sgList?: Sge[];
}

/** Largest message (RXE_PORT_MAX_MSG_SZ). */
export const MAX_MSG_SZ = 2 ** 31;

/** Opcodes that may carry inline data (rxe WR_INLINE_MASK). */
const INLINE_OPS: readonly number[] = [
  WrOpcode.SEND, WrOpcode.SEND_WITH_IMM, WrOpcode.SEND_WITH_INV, WrOpcode.RDMA_WRITE, WrOpcode.RDMA_WRITE_WITH_IMM,
];

function isU32(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
}

/** 2^64, the end of the u64 range: a constant, not a BigInt shift evaluated (and allocated) at each check. */
const U64_END = 1n << 64n;

function sgeTotal(list: Sge[] | undefined): number | undefined {
  let t = 0;
  for (const s of list ?? []) {
    if (!s || typeof s.addr !== "bigint" || s.addr < 0n || s.addr >= U64_END || !isU32(s.length) || !isU32(s.lkey)) return undefined;
    t += s.length;
  }
  return t;
}

export interface SqLimits {
  qpType: number;
  /** the core's table of WR opcodes per QP type (rxe_wr_opcode_info): 0 = not taken */
  wrClass: (op: number, qpType: number) => number;
  maxSge: number;
  maxInline: number;
  device: object;
}

/** Synchronous checks for one send WR; returns [errno, detail] or undefined. */
export function checkSendWr(wr: SendWr, q: SqLimits, memBytes: number): [ErrnoName, string] | undefined {
  if (!wr || typeof wr !== "object") return ["EINVAL", "not a work request"];
  // each field read once: an application's WRs may come in many shapes, and every read of one is a lookup
  const op = wr.opcode;
  const sgList = wr.sgList;
  if (!isU32(op) || q.wrClass(op, q.qpType) === 0) return ["EINVAL", `opcode ${op} not valid for this QP type`];
  if (wr.wrId !== undefined && typeof wr.wrId !== "bigint") return ["EINVAL", "wrId must be a bigint"];
  const n = sgList?.length ?? 0;
  if (n > q.maxSge) return ["EINVAL", `num_sge ${n} > max_send_sge ${q.maxSge}`];
  const len = sgeTotal(sgList);
  if (len === undefined) return ["EINVAL", "malformed sge"];
  if (len > MAX_MSG_SZ) return ["EINVAL", "message too long"];
  const flags = wr.sendFlags ?? 0;
  if (!isU32(flags)) return ["EINVAL", "sendFlags"];
  if (op === WrOpcode.ATOMIC_CMP_AND_SWP || op === WrOpcode.ATOMIC_FETCH_AND_ADD) {
    if (!wr.atomic) return ["EINVAL", "atomic fields missing"];
    if (len < 8 || (wr.atomic.remoteAddr & 7n) !== 0n) return ["EINVAL", "atomic needs 8 bytes at an 8-byte aligned address"];
  }
  if (flags & SendFlags.INLINE) {
    // rxe validate_send_wr: only opcodes with WR_INLINE_MASK carry inline data
    if (!INLINE_OPS.includes(op)) return ["EINVAL", `opcode ${op} cannot carry inline data`];
    if (len > q.maxInline) return ["EINVAL", `inline length ${len} > max_inline_data ${q.maxInline}`];
    for (const s of sgList ?? []) if (s.addr + BigInt(s.length) > BigInt(memBytes)) return ["EFAULT", "inline data outside memory"];
  }
  if (q.qpType === QpType.UD) {
    const ah = wr.ud?.ah;
    if (!ah || ah.isDestroyed || ah.pd.device !== q.device) return ["EINVAL", "UD send needs a live address handle"];
    if (!isU32(wr.ud!.remoteQpn) || wr.ud!.remoteQpn > 0xffffff || !isU32(wr.ud!.remoteQkey)) return ["EINVAL", "remoteQpn/remoteQkey"];
  }
  const imm = wr.immData;
  if (imm !== undefined && !isU32(imm)) return ["EINVAL", "immData"];
  const inv = wr.invalidateRkey;
  if (inv !== undefined && !isU32(inv)) return ["EINVAL", "invalidateRkey"];
  if ((op === WrOpcode.LOCAL_INV || op === WrOpcode.SEND_WITH_INV) && !isU32(inv)) {
    return ["EINVAL", "invalidateRkey missing"];
  }
  if (op === WrOpcode.BIND_MW) {
    // rdma-core rxe provider: a bind names a live window of this device; ibv_bind_mw's checks are in qp.bindMw
    const b = wr.bindMw;
    if (!b || !b.mw || b.mw.isDestroyed || b.mw.pd.device !== q.device || !isU32(b.rkey) || !b.bindInfo) return ["EINVAL", "bindMw"];
    const i = b.bindInfo;
    if (typeof i.addr !== "bigint" || i.addr < 0n || !isU64Len(i.length) || !isU32(i.mwAccessFlags)) return ["EINVAL", "bindInfo"];
    if (!i.mr && (i.addr !== 0n || BigInt(i.length) !== 0n)) return ["EINVAL", "bindInfo without an MR"];
    if (i.mr && (i.mr.isDestroyed || i.mr.pd.device !== q.device)) return ["EINVAL", "bindInfo.mr"];
  }
  if (op === WrOpcode.REG_MR) {
    const r = wr.reg;
    if (!r || !r.mr || r.mr.isDestroyed || r.mr.pd.device !== q.device || !isU32(r.key) || !isU32(r.access)) return ["EINVAL", "reg"];
    if ((r.addr === undefined) !== (r.length === undefined)) return ["EINVAL", "reg: addr and length go together"];
    if (r.addr !== undefined && (typeof r.addr !== "bigint" || r.addr < 0n || r.addr >= U64_END || !isU32(r.length))) return ["EINVAL", "reg range"];
  }
  if (op === WrOpcode.FLUSH && wr.flush) {
    const f = wr.flush;
    if (typeof f.remoteAddr !== "bigint" || !isU32(f.rkey) || !isU32(f.length)) return ["EINVAL", "flush"];
    // ibv_wr_flush: at least one placement type, a known level
    if (!isU32(f.type) || f.type === 0 || f.type & ~(FlushType.GLOBAL | FlushType.PERSISTENT)) return ["EINVAL", "flush type"];
    if (f.level !== FlushLevel.RANGE && f.level !== FlushLevel.MR) return ["EINVAL", "flush level"];
  }
  if (op === WrOpcode.ATOMIC_WRITE && wr.atomicWrite) {
    const a = wr.atomicWrite;
    if (typeof a.remoteAddr !== "bigint" || !isU32(a.rkey)) return ["EINVAL", "atomicWrite"];
    if (typeof a.value === "bigint" ? a.value < -(1n << 63n) || a.value >= U64_END : !(a.value instanceof Uint8Array) || a.value.length !== 8) {
      return ["EINVAL", "atomicWrite value: a 64-bit bigint or 8 bytes"];
    }
  }
  return undefined;
}

function isU64Len(v: unknown): boolean {
  return (typeof v === "bigint" && v >= 0n && v < U64_END) || (typeof v === "number" && Number.isSafeInteger(v) && v >= 0);
}

/** Access bits a window may grant (rxe RXE_ACCESS_SUPPORTED_MW); ZERO_BASED only for type 2. */
export const MW_ACCESS_SUPPORTED =
  Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ | Access.REMOTE_ATOMIC | Access.MW_BIND | Access.ZERO_BASED |
  Access.FLUSH_GLOBAL | Access.FLUSH_PERSISTENT;

/** Writes a checked send WR into the slot at `p` (header zeroed, device part included). */
export function writeSendWr(m: DeviceMemory, p: number, wr: SendWr): void {
  m.fill(p, Swqe.HDR);
  const dv = m.dv;
  const op = wr.opcode; // read once (see checkSendWr)
  const flags = wr.sendFlags ?? 0;
  const list = wr.sgList ?? [];
  let len = 0;
  for (const s of list) len += s.length;
  dv.setBigUint64(p + Swqe.WR_ID, BigInt.asUintN(64, wr.wrId ?? 0n), true);
  dv.setUint32(p + Swqe.OPCODE, op, true);
  dv.setUint32(p + Swqe.SEND_FLAGS, flags, true);
  dv.setUint32(p + Swqe.NUM_SGE, list.length, true);
  const inv = op === WrOpcode.SEND_WITH_INV || op === WrOpcode.LOCAL_INV;
  let imm = inv ? (wr.invalidateRkey ?? 0) : (wr.immData ?? 0);
  if (op === WrOpcode.FLUSH && wr.flush) {
    imm = flushWord(wr.flush.type, wr.flush.level);
    len = wr.flush.length;
  }
  dv.setUint32(p + Swqe.IMM_DATA, imm, true);
  dv.setUint32(p + Swqe.LENGTH, len, true);
  if (op === WrOpcode.BIND_MW && wr.bindMw) {
    const b = wr.bindMw;
    dv.setUint32(p + SwqeBind.MW, b.mw.rkey, true);
    dv.setUint32(p + SwqeBind.RKEY, b.rkey, true);
    dv.setBigUint64(p + SwqeBind.ADDR, b.bindInfo.addr, true);
    dv.setBigUint64(p + SwqeBind.LENGTH, BigInt(b.bindInfo.length), true);
    dv.setUint32(p + SwqeBind.MR, b.bindInfo.mr ? b.bindInfo.mr.lkey : 0, true);
    dv.setUint32(p + SwqeBind.ACCESS, b.bindInfo.mwAccessFlags, true);
    return;
  }
  if (op === WrOpcode.REG_MR && wr.reg) {
    const r = wr.reg;
    dv.setUint32(p + SwqeReg.MR, r.mr.lkey, true);
    dv.setUint32(p + SwqeReg.KEY, r.key, true);
    dv.setBigUint64(p + SwqeReg.ADDR, r.addr ?? r.mr.addr, true);
    dv.setBigUint64(p + SwqeReg.LENGTH, BigInt(r.length ?? r.mr.length), true);
    dv.setUint32(p + SwqeReg.ACCESS, r.access, true);
    return;
  }
  if (op === WrOpcode.ATOMIC_WRITE && wr.atomicWrite) {
    const a = wr.atomicWrite;
    dv.setBigUint64(p + Swqe.REMOTE_ADDR, BigInt.asUintN(64, a.remoteAddr), true);
    dv.setUint32(p + Swqe.RKEY, a.rkey >>> 0, true);
    if (typeof a.value === "bigint") dv.setBigUint64(p + Swqe.COMPARE_ADD, BigInt.asUintN(64, a.value), true);
    else m.u8.set(a.value, p + Swqe.COMPARE_ADD);
    return;
  }
  if (op === WrOpcode.FLUSH && wr.flush) {
    dv.setBigUint64(p + Swqe.REMOTE_ADDR, BigInt.asUintN(64, wr.flush.remoteAddr), true);
    dv.setUint32(p + Swqe.RKEY, wr.flush.rkey >>> 0, true);
    return;
  }
  const atomic = wr.atomic;
  const remote = atomic ?? wr.rdma;
  if (remote) {
    dv.setBigUint64(p + Swqe.REMOTE_ADDR, BigInt.asUintN(64, remote.remoteAddr), true);
    dv.setUint32(p + Swqe.RKEY, remote.rkey >>> 0, true);
  }
  if (atomic) {
    dv.setBigUint64(p + Swqe.COMPARE_ADD, BigInt.asUintN(64, atomic.compareAdd), true);
    dv.setBigUint64(p + Swqe.SWAP, BigInt.asUintN(64, atomic.swap ?? 0n), true);
  }
  const ud = wr.ud;
  if (ud) {
    dv.setUint32(p + Swqe.AH, ud.ah.handle, true);
    dv.setUint32(p + Swqe.REMOTE_QPN, ud.remoteQpn, true);
    dv.setUint32(p + Swqe.REMOTE_QKEY, ud.remoteQkey, true);
  }
  let q = p + Swqe.HDR;
  if (flags & SendFlags.INLINE) {
    // inline: the bytes themselves, copied now (the buffers may be reused at once)
    const u8 = m.u8;
    for (const s of list) {
      u8.copyWithin(q, Number(s.addr), Number(s.addr) + s.length);
      q += s.length;
    }
  } else {
    writeSges(dv, q, list);
  }
}

/** Synchronous checks for one receive WR (QP RQ or SRQ). */
export function checkRecvWr(wr: RecvWr, maxSge: number, maxName: string): [ErrnoName, string] | undefined {
  if (!wr || typeof wr !== "object") return ["EINVAL", "not a work request"];
  if (wr.wrId !== undefined && typeof wr.wrId !== "bigint") return ["EINVAL", "wrId must be a bigint"];
  const n = wr.sgList?.length ?? 0;
  if (n > maxSge) return ["EINVAL", `num_sge ${n} > ${maxName} ${maxSge}`];
  const len = sgeTotal(wr.sgList);
  if (len === undefined) return ["EINVAL", "malformed sge"];
  if (len > MAX_MSG_SZ) return ["EINVAL", "message too long"];
  return undefined;
}

export function writeRecvWr(m: DeviceMemory, p: number, wr: RecvWr): void {
  m.fill(p, Rwqe.HDR);
  const dv = m.dv;
  const list = wr.sgList ?? [];
  let len = 0;
  for (const s of list) len += s.length;
  dv.setBigUint64(p + Rwqe.WR_ID, BigInt.asUintN(64, wr.wrId ?? 0n), true);
  dv.setUint32(p + Rwqe.NUM_SGE, list.length, true);
  dv.setUint32(p + Rwqe.LENGTH, len, true);
  writeSges(dv, p + Rwqe.HDR, list);
}

/** A WQE's scatter/gather list (address, length, lkey each) from `q` on: send and receive WQEs lay it out alike. */
function writeSges(dv: DataView, q: number, list: readonly Sge[]): void {
  for (const s of list) {
    dv.setBigUint64(q + SgeOff.ADDR, s.addr, true);
    dv.setUint32(q + SgeOff.LENGTH, s.length, true);
    dv.setUint32(q + SgeOff.LKEY, s.lkey, true);
    q += SgeOff.SIZE;
  }
}
