// RC/UC/UD requester (rxe_req.c): walks the send queue from its next WQE and
// turns each WQE into request packets — opcode choice (first/middle/last/only,
// with immediate or invalidate), PSN assignment (a READ takes one PSN per
// response packet), AckReq policy, the 128-PSN window, max_rd_atomic credits and
// fences. A state machine as the completer's (an enum, a name table, a run record
// passed to one step function per state), its states named after rxe_requester's
// steps. Payloads are not copied: a packet points into the MR (or the WQE's
// inline bytes), except a packet whose bytes span two SGEs, which copyData
// (dma.ts) gathers into the bounce slot of its TX descriptor. Local errors (bad
// lkey, range, access) complete the WQE with LOC_PROT_ERR and move the QP to ERR.
import { nowUs } from "../sched/clock";
import { timerArm, timerArmed } from "../sched/timers";
import { budgetAdmit, truesizeOf } from "../sched/budget";
import { activeMtuBytes, maxMtuBytes } from "../verbs/config";
import {
  qpMtuBytes, qpState, ATTR_AH, ATTR_DEST_QP_NUM, ATTR_QKEY, ATTR_MAX_RD_ATOMIC, qpIndex, QP_ATTR, QP_COMP, QP_NUM, QP_PD,
  QP_REQ, QP_SQ, QP_TYPE, COMP_PSN, REQ_NOACK, REQ_OPCODE, REQ_PSN, REQ_RD_ATOMIC, REQ_WQE_INDEX, RF_NEED_RD_ATOMIC,
  RF_NEED_RETRY, RF_WAIT_FENCE, RF_WAIT_PSN, RF_WAIT_RNR,
} from "../verbs/qp";
import {
  QpState, QPT_RC, QPT_UC, QPT_UD, SEND_FENCE, SEND_INLINE, SEND_SOLICITED, WC_LOC_LEN_ERR, WC_LOC_PROT_ERR, WC_LOC_QP_OP_ERR,
  WC_MW_BIND_ERR, WC_SUCCESS, WR_REG_MR, WR_ATOMIC_CMP_AND_SWP, WR_ATOMIC_FETCH_AND_ADD, WR_ATOMIC_WRITE, WR_BIND_MW, WR_FLUSH,
  WR_LOCAL_INV, WR_RDMA_READ, WR_RDMA_WRITE, WR_RDMA_WRITE_WITH_IMM, WR_SEND, WR_SEND_WITH_IMM, WR_SEND_WITH_INV,
} from "../verbs/enums";
import { ahFind, AH_AV } from "../verbs/ah";
import { deth_build } from "../wire/deth";
import { ringArena, ringCap, ringCons, ringEntry, ringProd, RING_DATA } from "../mem/ring";
import { arenaAlloc } from "../mem/arena";
import {
  SWQE_COMPARE_ADD, SWQE_CUR_SGE, SWQE_FIRST_PSN, SWQE_IMM_DATA, SWQE_LAST_PSN, SWQE_LENGTH, SWQE_MASK, SWQE_NUM_SGE,
  SWQE_OPCODE, SWQE_REMOTE_ADDR, SWQE_RESID, SWQE_RKEY, SWQE_SEND_FLAGS, SWQE_SGE, SWQE_SGE_OFFSET, SWQE_STATE, SWQE_STATUS,
  SWQE_SWAP, WQE_STATE_DONE, WQE_STATE_ERROR, SWQE_AH, SWQE_REMOTE_QPN, SWQE_REMOTE_QKEY, WQE_STATE_PENDING, WQE_STATE_POSTED,
  WQE_STATE_PROCESSING, SWQE_BIND_ACCESS, SWQE_BIND_ADDR, SWQE_BIND_LENGTH, SWQE_BIND_MR, SWQE_BIND_MW, SWQE_BIND_RKEY,
  SWQE_REG_ACCESS, SWQE_REG_ADDR, SWQE_REG_KEY, SWQE_REG_LENGTH,
} from "../verbs/wqe";
import { keyIsMw, mrFastReg, mrInvalidate } from "../mem/mr";
import { mwBind, mwInvalidate } from "../mem/mw";
import { SLOT_HANDLE } from "../mem/pool";
import { completeLocal } from "./completer";
import {
  ackTimeoutUs, checkSqDrained, reqClearFlag, reqEnsureInit, reqHasFlag as hasFlag, reqSetFlag, MAX_PKT_PER_ACK,
  MAX_UNACKED_PSNS, WQE_CLASS, WQE_INIT, WQE_LOCAL, WQE_RD_ATOMIC,
} from "./req_line";
import { atmeth_build } from "../wire/atmeth";
import { bth_build } from "../wire/bth";
import { feth_set_word } from "../wire/feth";
import { ieth_build } from "../wire/ieth";
import { immdt_build } from "../wire/immdt";
import {
  opcode_mask, opcode_offset, ATOMIC_WRITE_PAYLOAD, HDR_ATMETH, HDR_DETH, HDR_FETH, HDR_IETH, HDR_IMMDT, HDR_RETH, M_ATMETH,
  M_ATOMIC, M_ATOMIC_WRITE, M_DETH, M_END, M_FETH, M_FLUSH, M_IETH, M_IMMDT, M_MIDDLE, M_READ, M_RETH, M_SEND, M_START,
  M_WRITE, OP_ATOMIC_WRITE, OP_CMP_SWAP, OP_FETCH_ADD, OP_FLUSH, OP_READ_REQUEST, OP_SEND_FIRST, OP_SEND_LAST,
  OP_SEND_LAST_IMM, OP_SEND_LAST_INV, OP_SEND_MIDDLE, OP_SEND_ONLY, OP_SEND_ONLY_IMM, OP_SEND_ONLY_INV, OP_WRITE_FIRST,
  OP_WRITE_LAST, OP_WRITE_LAST_IMM, OP_WRITE_MIDDLE, OP_WRITE_ONLY, OP_WRITE_ONLY_IMM, TR_RC, TR_UC, TR_UD,
} from "../wire/opcode";
import { psn_distance, psn_next, PSN_MASK } from "../wire/psn";
import { reth_build } from "../wire/reth";
import { retransTimerId, scheduleQp } from "./qp_sched";
import { txMarkLast, txRingAddr, txReserve, txSend, TXD_HDR, TXD_SLOT } from "./net";
import { copyData, dmaAdvance, dmaReset, dmaSpan, Copy, FROM_SGL } from "./dma";
import { qpToError } from "./qp_error";
import { traceRecord, traceState, TraceKind, TRACE_NONE } from "../trace/trace";

@inline function rd(qp: usize, off: usize): u32 { return load<u32>(qp + QP_REQ + off); }
@inline function wr(qp: usize, off: usize, v: u32): void { store<u32>(qp + QP_REQ + off, v); }

/** The class bits of a WR opcode on a QP type (rxe_wr_opcode_info); 0 = not allowed. */
export function wrClass(op: u32, type: u32): u32 {
  const rc = type == QPT_RC;
  if (type == QPT_UD) return op == WR_SEND || op == WR_SEND_WITH_IMM ? M_SEND : 0; // RXE_SUP_UD_QP_SEND_OPS
  switch (op) {
    case WR_RDMA_WRITE:
    case WR_RDMA_WRITE_WITH_IMM: return M_WRITE;
    case WR_SEND:
    case WR_SEND_WITH_IMM:
    case WR_SEND_WITH_INV: return M_SEND;
    case WR_RDMA_READ: return rc ? M_READ : 0;
    case WR_ATOMIC_CMP_AND_SWP:
    case WR_ATOMIC_FETCH_AND_ADD: return rc ? M_ATOMIC : 0;
    case WR_FLUSH: return rc ? M_FLUSH : 0;
    case WR_ATOMIC_WRITE: return rc ? M_ATOMIC_WRITE : 0;
    case WR_LOCAL_INV: return rc ? WQE_LOCAL : 0;
    case WR_BIND_MW: return WQE_LOCAL;
    case WR_REG_MR: return rc ? WQE_LOCAL : 0;
    default: return 0;
  }
}

/**
 * The opcode of the next packet of a WR (rxe next_opcode_rc/uc): `prev` is the
 * opcode of the previous packet sent (-1 between messages), `fits` whether the
 * rest of the message fits one packet. -1 when the WR has no packet form here.
 */
export function nextOpcode(type: u32, wrOp: u32, prev: i32, fits: bool): i32 {
  if (type == QPT_UD) {
    // UD: one packet per message (the MTU check comes first, in reqStep)
    if (!fits) return -1;
    return wrOp == WR_SEND ? <i32>(TR_UD | OP_SEND_ONLY) : wrOp == WR_SEND_WITH_IMM ? <i32>(TR_UD | OP_SEND_ONLY_IMM) : -1;
  }
  const base = type == QPT_RC ? TR_RC : TR_UC;
  // inside a message: the previous packet was a FIRST or MIDDLE (of a SEND or a WRITE)
  const pm = prev < 0 ? 0 : opcode_mask(<u32>prev);
  const open = (pm & (M_START | M_MIDDLE)) != 0 && (pm & M_END) == 0;
  let op: u32;
  switch (wrOp) {
    case WR_RDMA_WRITE:
    case WR_RDMA_WRITE_WITH_IMM: {
      const imm = wrOp == WR_RDMA_WRITE_WITH_IMM;
      if (open && (pm & M_WRITE)) op = fits ? (imm ? OP_WRITE_LAST_IMM : OP_WRITE_LAST) : OP_WRITE_MIDDLE;
      else op = fits ? (imm ? OP_WRITE_ONLY_IMM : OP_WRITE_ONLY) : OP_WRITE_FIRST;
      break;
    }
    case WR_SEND:
    case WR_SEND_WITH_IMM:
    case WR_SEND_WITH_INV: {
      if (wrOp == WR_SEND_WITH_INV && type != QPT_RC) return -1; // rxe next_opcode_uc has no invalidate
      const last = wrOp == WR_SEND ? OP_SEND_LAST : wrOp == WR_SEND_WITH_IMM ? OP_SEND_LAST_IMM : OP_SEND_LAST_INV;
      const only = wrOp == WR_SEND ? OP_SEND_ONLY : wrOp == WR_SEND_WITH_IMM ? OP_SEND_ONLY_IMM : OP_SEND_ONLY_INV;
      if (open && (pm & M_SEND)) op = fits ? last : OP_SEND_MIDDLE;
      else op = fits ? only : OP_SEND_FIRST;
      break;
    }
    default: {
      if (type != QPT_RC) return -1;
      if (wrOp == WR_RDMA_READ) op = OP_READ_REQUEST;
      else if (wrOp == WR_ATOMIC_CMP_AND_SWP) op = OP_CMP_SWAP;
      else if (wrOp == WR_ATOMIC_FETCH_AND_ADD) op = OP_FETCH_ADD;
      else if (wrOp == WR_FLUSH) op = OP_FLUSH;
      else if (wrOp == WR_ATOMIC_WRITE) op = OP_ATOMIC_WRITE;
      else return -1;
    }
  }
  return <i32>(base | op);
}

/**
 * AckReq policy (rxe init_req_packet): the last packet of a message, and a
 * packet after more than MAX_PKT_PER_ACK unacknowledged-request packets (so the
 * 66th packet of a long message, as the rc-write-long capture shows). Returns
 * the AckReq bit and updates the counter at `noackPtr`.
 */
export function ackReqPolicy(noackPtr: usize, end: bool): u32 {
  const n = load<u32>(noackPtr);
  let ack = end;
  if (!ack) {
    store<u32>(noackPtr, n + 1);
    ack = n > MAX_PKT_PER_ACK;
  }
  if (ack) store<u32>(noackPtr, 0);
  return ack ? 1 : 0;
}

/** Is the window full: the next PSN more than MAX_UNACKED_PSNS past the oldest unacknowledged one? */
@inline export function windowFull(reqPsn: u32, compPsn: u32): bool {
  return psn_distance(reqPsn, psn_next(compPsn, MAX_UNACKED_PSNS)) > 0;
}

/** Packets a message of `len` bytes takes at path MTU `mtu` (at least one). */
@inline export function packetCount(len: u32, mtu: u32): u32 {
  const n = (len + mtu - 1) / mtu;
  return n ? n : 1;
}

// ---- bounce slots: one per TX descriptor, for packets that span SGEs ----
let bounceBase: usize = 0;
let bounceCap: u32 = 0;
/** Bytes per slot: the device's largest path MTU (a QP's path MTU cannot exceed it). */
let bounceSlot: u32 = 4096;

/**
 * Carves one bounce slot per TX descriptor, so a slot is free exactly when its
 * descriptor is. The engine calls this at open, while memory may still grow.
 */
export function requesterInit(): void {
  const ring = txRingAddr();
  if (!ring || bounceBase) return;
  bounceCap = ringCap(ring);
  bounceSlot = maxMtuBytes();
  bounceBase = heap.alloc(<usize>bounceCap * bounceSlot);
}

/**
 * Without requesterInit at open (an engine that does not call it): take the
 * slots from the ring arena, carved at open, so memory does not grow under
 * traffic; only when it has no room, from the heap.
 */
function bounceLate(): void {
  const ring = txRingAddr();
  if (!ring || bounceBase) return;
  bounceCap = ringCap(ring);
  bounceSlot = maxMtuBytes();
  const bytes = bounceCap * bounceSlot;
  bounceBase = arenaAlloc(ringArena, bytes);
  if (!bounceBase) bounceBase = heap.alloc(<usize>bytes);
}

@inline function bounceFor(desc: usize): usize {
  const ring = txRingAddr();
  const idx = <u32>((desc - ring - RING_DATA) / TXD_SLOT);
  return bounceBase + <usize>idx * bounceSlot;
}

/** The bounce slot of TX descriptor `desc`, for a READ response whose bytes cross scattered MR pages (responder_send.ts). */
export function txBounce(desc: usize): usize {
  if (!bounceBase) bounceLate();
  return bounceFor(desc);
}

// ---- the DMA cursor of a WQE (SWQE_RESID, SWQE_CUR_SGE, SWQE_SGE_OFFSET; transport/dma.ts) ----

/**
 * Takes the next `len` payload bytes of `wqe` for a packet that goes out in
 * descriptor `desc` (rxe finish_packet): their address — straight into the MR
 * when one SGE holds them, else gathered into the descriptor's bounce slot —
 * with the DMA cursor moved past them. Inline data is one run in the WQE.
 * 0 when an SGE's MR refuses them (lkey, PD, bounds; a local read needs no access bit).
 */
function takePayload(qp: usize, wqe: usize, len: u32, desc: usize): usize {
  let data: usize;
  if (load<u32>(wqe + SWQE_SEND_FLAGS) & SEND_INLINE) {
    const off = load<u32>(wqe + SWQE_SGE_OFFSET);
    data = wqe + SWQE_SGE + <usize>off;
    store<u32>(wqe + SWQE_SGE_OFFSET, off + len);
  } else {
    const pd = load<u32>(qp + QP_PD);
    const nsge = load<u32>(wqe + SWQE_NUM_SGE);
    data = dmaSpan(pd, 0, wqe + SWQE_SGE, nsge, wqe + SWQE_CUR_SGE, len);
    if (!data) {
      if (!bounceBase) bounceLate();
      data = bounceFor(desc);
      if (copyData(FROM_SGL, pd, 0, wqe + SWQE_SGE, nsge, wqe + SWQE_CUR_SGE, data, len) != Copy.OK) return 0;
    }
  }
  store<u32>(wqe + SWQE_RESID, load<u32>(wqe + SWQE_RESID) - len);
  return data;
}

/** Moves the DMA cursor of `wqe` on by `len` bytes without reading them (a retry skipping acknowledged packets). */
function advanceDma(wqe: usize, len: u32): void {
  store<u32>(wqe + SWQE_RESID, load<u32>(wqe + SWQE_RESID) - len);
  if (load<u32>(wqe + SWQE_SEND_FLAGS) & SEND_INLINE) {
    store<u32>(wqe + SWQE_SGE_OFFSET, load<u32>(wqe + SWQE_SGE_OFFSET) + len);
    return;
  }
  dmaAdvance(wqe + SWQE_SGE, load<u32>(wqe + SWQE_NUM_SGE), wqe + SWQE_CUR_SGE, len);
}

/** Rewinds the DMA cursor to the start of the message. */
@inline function resetDma(wqe: usize): void {
  store<u32>(wqe + SWQE_RESID, load<u32>(wqe + SWQE_LENGTH));
  dmaReset(wqe + SWQE_CUR_SGE);
}

/** First touch of a WQE: its class and a fresh DMA cursor (the host zeroes the progress part). */
function initWqe(qp: usize, wqe: usize): void {
  const cls = wrClass(load<u32>(wqe + SWQE_OPCODE), load<u32>(qp + QP_TYPE));
  store<u32>(wqe + SWQE_MASK, cls | WQE_INIT);
  resetDma(wqe);
  // An ATOMIC_WRITE carries 8 bytes from the WR itself; a FLUSH's length is the
  // WQE length (no SGEs are read for either).
  if (cls & M_ATOMIC_WRITE) store<u32>(wqe + SWQE_RESID, ATOMIC_WRITE_PAYLOAD);
}

/** Remote address of the next packet (rxe wqe->iova): where the unsent part of the message starts. */
@inline function remoteIova(wqe: usize): u64 {
  const m = load<u32>(wqe + SWQE_MASK);
  const base = load<u64>(wqe + SWQE_REMOTE_ADDR);
  if (m & (M_WRITE | M_READ)) return base + <u64>(load<u32>(wqe + SWQE_LENGTH) - load<u32>(wqe + SWQE_RESID));
  return base;
}

/**
 * Go-back-N (rxe req_retry): restart at the oldest uncompleted WQE from the
 * oldest unacknowledged PSN. A partially acknowledged SEND/WRITE skips its
 * acknowledged packets; a READ keeps the data it has and asks for the rest.
 */
export function reqRetry(qp: usize): void {
  const sq = <usize>load<u32>(qp + QP_SQ);
  const cons = ringCons(sq);
  const prod = ringProd(sq);
  const compPsn = load<u32>(qp + QP_COMP + COMP_PSN);
  const type = load<u32>(qp + QP_TYPE);
  const mtu = qpMtuBytes(qp);
  store<u32>(qp + QP_REQ + REQ_WQE_INDEX, cons);
  wr(qp, REQ_PSN, compPsn);
  store<i32>(qp + QP_REQ + REQ_OPCODE, -1);
  let first = true;
  for (let i = cons; i != prod; i++) {
    const wqe = ringEntry(sq, i);
    const st = load<u32>(wqe + SWQE_STATE);
    if (st == WQE_STATE_POSTED) break;
    if (st == WQE_STATE_DONE) continue;
    const m = load<u32>(wqe + SWQE_MASK);
    if (!first || !(m & M_READ)) {
      resetDma(wqe);
      if (m & M_ATOMIC_WRITE) store<u32>(wqe + SWQE_RESID, ATOMIC_WRITE_PAYLOAD);
    }
    if (first) {
      first = false;
      if (m & (M_WRITE | M_SEND)) {
        // replay the opcode sequence of the packets already acknowledged
        const npsn = (compPsn - load<u32>(wqe + SWQE_FIRST_PSN)) & PSN_MASK;
        const wrOp = load<u32>(wqe + SWQE_OPCODE);
        for (let k: u32 = 0; k < npsn; k++) {
          const resid = load<u32>(wqe + SWQE_RESID);
          const n = min(resid, mtu);
          store<i32>(qp + QP_REQ + REQ_OPCODE, nextOpcode(type, wrOp, load<i32>(qp + QP_REQ + REQ_OPCODE), resid <= mtu));
          advanceDma(wqe, n);
        }
      }
    }
    store<u32>(wqe + SWQE_STATE, WQE_STATE_POSTED);
  }
}

/** The RNR timer of `qp` fired: resume sending from the NAKed PSN. */
export function rnrTimeout(qp: usize): void {
  const st = qpState(qp);
  if (st != QpState.RTS && st != QpState.SQD) return;
  if (!hasFlag(qp, RF_WAIT_RNR)) return; // left from before a RESET, or from the slot's previous QP
  reqSetFlag(qp, RF_NEED_RETRY);
  reqClearFlag(qp, RF_WAIT_RNR);
  scheduleQp(qp);
}

// ---- the state machine ----

/**
 * Requester states. rxe_req.c has no state enum — rxe_requester() is one
 * function with the labels next_wqe, err and exit — so the states are named
 * after its steps: req_next_wqe, req_retry, the fence, rxe_do_local_ops, the
 * PSN window (wait_psn), the MTU and UD checks, next_opcode, check_init_depth,
 * init_req_packet + finish_packet, update_state. A run sends packets until the
 * SQ blocks (EXIT) or its budget is used (DONE); the names double as trace vocabulary.
 */
export const enum ReqState {
  NEXT_WQE = 0,
  RETRY,
  CHECK_FENCE,
  LOCAL_OPS,
  CHECK_WINDOW,
  CHECK_LENGTH,
  NEXT_OPCODE,
  CHECK_INIT_DEPTH,
  FINISH_PACKET,
  UPDATE_STATE,
  ERROR,
  EXIT,
  DONE,
  COUNT,
}
export const REQ_STATE_NAMES =
  "NEXT_WQE,RETRY,CHECK_FENCE,LOCAL_OPS,CHECK_WINDOW,CHECK_LENGTH,NEXT_OPCODE,CHECK_INIT_DEPTH,FINISH_PACKET," +
  "UPDATE_STATE,ERROR,EXIT,DONE";

/** One run of the requester (the device is single-threaded: one record serves every run). */
@unmanaged
export class ReqRun {
  qp: usize = 0;
  wqe: usize = 0; // the WQE being sent
  index: u32 = 0; // its SQ index
  mask: u32 = 0; // its SWQE_MASK
  mtu: u32 = 0; // path MTU (RC/UC) or port MTU (UD)
  av: usize = 0; // where the packet goes: the QP's AV, or the UD WR's address handle
  opcode: i32 = 0; // of the next packet
  om: u32 = 0; // that opcode's table bits
  payload: u32 = 0; // bytes it carries
  desc: usize = 0; // its TX descriptor
  psn: u32 = 0; // its PSN
  status: u32 = 0; // ERROR: the WQE's completion status
  sent: i32 = 0; // packets sent in this run
  budget: i32 = 0; // packets it may send
  requeue: bool = false; // stopped by the budget or a full TX ring: stay queued
}
const reqRun = changetype<ReqRun>(memory.data(offsetof<ReqRun>(), 8));

/** Counts the state entered and, when the trace ring wants it, records it with the PSN the requester is at. */
@inline function trace(c: ReqRun, s: ReqState, from: u32): void {
  if (traceState(TraceKind.REQ_STATE, s)) traceRecord(TraceKind.REQ_STATE, load<u32>(c.qp + QP_NUM), s, from, rd(c.qp, REQ_PSN));
}

/** A WQE failed in the requester: complete it with `status`, move the QP to ERR. */
function reqError(qp: usize, wqe: usize, status: u32): void {
  store<u32>(wqe + SWQE_STATUS, status);
  store<u32>(wqe + SWQE_STATE, WQE_STATE_ERROR);
  store<u32>(qp + QP_REQ + REQ_WQE_INDEX, load<u32>(qp + QP_REQ + REQ_WQE_INDEX) + 1);
  qpToError(qp, status);
}

@inline function fail(c: ReqRun, status: u32): ReqState {
  c.status = status;
  return ReqState.ERROR;
}

/** req_next_wqe: the WQE at the requester's index, if it may start or go on. */
function nextWqe(c: ReqRun): ReqState {
  const qp = c.qp;
  if (hasFlag(qp, RF_NEED_RETRY) && !hasFlag(qp, RF_WAIT_RNR)) return ReqState.RETRY;
  const sq = <usize>load<u32>(qp + QP_SQ);
  const index = load<u32>(qp + QP_REQ + REQ_WQE_INDEX);
  const sqd = qpState(qp) == QpState.SQD;
  if (sqd) checkSqDrained(qp);
  if (index == ringProd(sq)) return ReqState.EXIT;
  const wqe = ringEntry(sq, index);
  // SQD: finish the message in progress and resend what was sent before (a retry
  // rewinds those to POSTED; rxe would block them and never drain), start nothing new
  if (sqd && load<u32>(wqe + SWQE_STATE) != WQE_STATE_PROCESSING && !(load<u32>(wqe + SWQE_MASK) & WQE_INIT)) {
    return ReqState.EXIT;
  }
  if (!(load<u32>(wqe + SWQE_MASK) & WQE_INIT)) initWqe(qp, wqe);
  c.wqe = wqe;
  c.index = index;
  c.mask = load<u32>(wqe + SWQE_MASK);
  return ReqState.CHECK_FENCE;
}

/** Fence (IBA 10.8.3.3): wait until every earlier READ/atomic is complete. */
function checkFence(c: ReqRun): ReqState {
  if ((load<u32>(c.wqe + SWQE_SEND_FLAGS) & SEND_FENCE) && rd(c.qp, REQ_RD_ATOMIC) != 0) {
    reqSetFlag(c.qp, RF_WAIT_FENCE);
    return ReqState.EXIT;
  }
  return (c.mask & WQE_LOCAL) ? ReqState.LOCAL_OPS : ReqState.CHECK_WINDOW;
}

/**
 * rxe_do_local_ops: LOCAL_INV, BIND_MW and REG_MR act at once, in order with the
 * rest of the SQ, send nothing, and complete when every WQE before them has.
 * A refusal completes the WQE in error (LOC_QP_OP_ERR; MW_BIND_ERR for a bind)
 * and the QP goes to ERR, as in rxe.
 */
function localOps(c: ReqRun): ReqState {
  const qp = c.qp;
  const wqe = c.wqe;
  const pd = load<u32>(qp + QP_PD);
  const op = load<u32>(wqe + SWQE_OPCODE);
  if (op == WR_LOCAL_INV) {
    const key = load<u32>(wqe + SWQE_IMM_DATA);
    if ((keyIsMw(key) ? mwInvalidate(0, pd, key) : mrInvalidate(pd, key)) != 0) return fail(c, WC_LOC_QP_OP_ERR);
  } else if (op == WR_BIND_MW) {
    const r = mwBind(load<u32>(qp + SLOT_HANDLE), pd, load<u32>(wqe + SWQE_BIND_MW), load<u32>(wqe + SWQE_BIND_RKEY),
      load<u32>(wqe + SWQE_BIND_MR), load<u64>(wqe + SWQE_BIND_ADDR), load<u64>(wqe + SWQE_BIND_LENGTH), load<u32>(wqe + SWQE_BIND_ACCESS));
    if (r != 0) return fail(c, WC_MW_BIND_ERR);
  } else if (op == WR_REG_MR) {
    if (mrFastReg(pd, load<u32>(wqe + SWQE_REG_KEY), load<u32>(wqe + SWQE_REG_ACCESS), load<u64>(wqe + SWQE_REG_ADDR),
      load<u64>(wqe + SWQE_REG_LENGTH)) != 0) return fail(c, WC_LOC_QP_OP_ERR);
  } else {
    return fail(c, WC_LOC_QP_OP_ERR);
  }
  store<u32>(wqe + SWQE_STATUS, WC_SUCCESS);
  store<u32>(wqe + SWQE_STATE, WQE_STATE_DONE);
  store<u32>(qp + QP_REQ + REQ_WQE_INDEX, c.index + 1);
  completeLocal(qp);
  return ReqState.NEXT_WQE;
}

/** RC: no more than MAX_UNACKED_PSNS past the oldest unacknowledged PSN (rxe wait_psn). */
function checkWindow(c: ReqRun): ReqState {
  const qp = c.qp;
  if (load<u32>(qp + QP_TYPE) == QPT_RC && windowFull(rd(qp, REQ_PSN), load<u32>(qp + QP_COMP + COMP_PSN))) {
    reqSetFlag(qp, RF_WAIT_PSN);
    return ReqState.EXIT;
  }
  if (load<u32>(qp + QP_TYPE) == QPT_RC && !budgetAdmit(qpIndex(qp), rd(qp, REQ_PSN), load<u32>(qp + QP_COMP + COMP_PSN),
    admitPackets(qp, c.wqe, c.mask), truesizeOf(qpMtuBytes(qp) + ADMIT_HDR_BYTES))) {
    return ReqState.EXIT; // the budget wakes the QP when its turn comes (sched/budget.ts)
  }
  return ReqState.CHECK_LENGTH;
}

/** Header bytes a full-size request packet adds to its payload (BTH, RETH, ICRC: the largest usual case). */
const ADMIT_HDR_BYTES: u32 = 12 + 16 + 4;

/**
 * The new PSNs an RC WQE asks the device-wide budget for, from where the
 * requester is: the rest of the message, or only up to its next AckReq packet
 * (so every admitted run ends in a packet the responder acknowledges), never
 * more than the PSN window. A READ's PSNs are its response packets.
 */
function admitPackets(qp: usize, wqe: usize, mask: u32): u32 {
  if (!(mask & (M_WRITE | M_SEND | M_READ))) return 1;
  let n = packetCount(load<u32>(wqe + SWQE_RESID), qpMtuBytes(qp));
  if (!(mask & M_READ)) {
    // ackReqPolicy: the packet that sees more than MAX_PKT_PER_ACK unacknowledged ones asks for an ACK
    const noack = rd(qp, REQ_NOACK);
    const toAck: u32 = noack > MAX_PKT_PER_ACK ? 1 : MAX_PKT_PER_ACK + 2 - noack;
    if (n > toAck) n = toAck;
  }
  return n < MAX_UNACKED_PSNS ? n : MAX_UNACKED_PSNS;
}

/** The MTU the packets are cut to; a UD datagram must fit the port's and name a live AH. */
function checkLength(c: ReqRun): ReqState {
  const qp = c.qp;
  c.av = qp + QP_ATTR + ATTR_AH;
  if (load<u32>(qp + QP_TYPE) != QPT_UD) {
    c.mtu = qpMtuBytes(qp);
    return ReqState.NEXT_OPCODE;
  }
  // UD has no path: the port's MTU (rxe get_mtu). A datagram larger than it fails
  // (rxe instead fakes a successful send without a packet, C10-93.1.1; an error
  // tells the application).
  c.mtu = activeMtuBytes();
  if (load<u32>(c.wqe + SWQE_RESID) > c.mtu) return fail(c, WC_LOC_LEN_ERR);
  const ah = ahFind(load<u32>(c.wqe + SWQE_AH));
  if (!ah) return fail(c, WC_LOC_QP_OP_ERR); // the AH was destroyed after the post
  c.av = ah + AH_AV;
  return ReqState.NEXT_OPCODE;
}

function nextOpcodeStep(c: ReqRun): ReqState {
  const qp = c.qp;
  const fits = load<u32>(c.wqe + SWQE_RESID) <= c.mtu;
  const opcode = nextOpcode(load<u32>(qp + QP_TYPE), load<u32>(c.wqe + SWQE_OPCODE), load<i32>(qp + QP_REQ + REQ_OPCODE), fits);
  if (opcode < 0 || !(c.mask & WQE_CLASS)) return fail(c, WC_LOC_QP_OP_ERR);
  c.opcode = opcode;
  c.om = opcode_mask(<u32>opcode);
  const needsCredit = (c.om & (M_READ | M_ATOMIC | M_ATOMIC_WRITE | M_FLUSH)) != 0 && !(c.mask & WQE_RD_ATOMIC);
  return needsCredit ? ReqState.CHECK_INIT_DEPTH : ReqState.FINISH_PACKET;
}

/**
 * rxe check_init_depth: one credit per outstanding READ/atomic/ATOMIC_WRITE. FLUSH
 * takes one too: the responder keeps a READ/atomic resource for it (rxe process_flush),
 * and without the credit a FLUSH could push an unacknowledged atomic's saved result
 * out of the responder's max_dest_rd_atomic ring, so that the atomic's retry is never answered.
 */
function checkInitDepth(c: ReqRun): ReqState {
  const qp = c.qp;
  const maxRd = load<u32>(qp + QP_ATTR + ATTR_MAX_RD_ATOMIC);
  // no credits at all: rxe would wait forever; the QP cannot do this operation
  if (maxRd == 0) return fail(c, WC_LOC_QP_OP_ERR);
  if (rd(qp, REQ_RD_ATOMIC) >= maxRd) {
    reqSetFlag(qp, RF_NEED_RD_ATOMIC);
    return ReqState.EXIT;
  }
  reqClearFlag(qp, RF_NEED_RD_ATOMIC);
  wr(qp, REQ_RD_ATOMIC, rd(qp, REQ_RD_ATOMIC) + 1);
  c.mask |= WQE_RD_ATOMIC;
  store<u32>(c.wqe + SWQE_MASK, c.mask);
  return ReqState.FINISH_PACKET;
}

/** init_req_packet + finish_packet: headers and payload into a TX descriptor, sent. */
function finishPacket(c: ReqRun): ReqState {
  const qp = c.qp;
  const wqe = c.wqe;
  const om = c.om;
  const resid = load<u32>(wqe + SWQE_RESID);
  let payload: u32 = (om & (M_WRITE | M_SEND | M_ATOMIC_WRITE)) ? resid : 0;
  if (payload > c.mtu) payload = c.mtu;

  const desc = txReserve();
  if (!desc) {
    c.requeue = true; // the sender stops on a full ring and resumes on tx_release
    return ReqState.EXIT;
  }
  const iova = remoteIova(wqe); // before takePayload moves the cursor past this packet
  let data: usize = 0;
  if (om & M_ATOMIC_WRITE) {
    data = wqe + SWQE_COMPARE_ADD; // the 8 bytes as the WR holds them (rxe memcpy of atomic_wr)
  } else if (payload) {
    data = takePayload(qp, wqe, payload, desc);
    if (!data) return fail(c, WC_LOC_PROT_ERR);
  }

  // headers
  const type = load<u32>(qp + QP_TYPE);
  const psn = rd(qp, REQ_PSN);
  const hdr = desc + TXD_HDR;
  const op = <u32>c.opcode;
  const wrOp = load<u32>(wqe + SWQE_OPCODE);
  const flags = load<u32>(wqe + SWQE_SEND_FLAGS);
  const end = (om & M_END) != 0;
  const se: u32 = (flags & SEND_SOLICITED) && end &&
    ((om & M_SEND) || (om & (M_WRITE | M_IMMDT)) == (M_WRITE | M_IMMDT)) ? 1 : 0;
  const ackreq = type == QPT_RC ? ackReqPolicy(qp + QP_REQ + REQ_NOACK, end) : 0;
  const destQpn = type == QPT_UD ? load<u32>(wqe + SWQE_REMOTE_QPN) & 0xffffff : load<u32>(qp + QP_ATTR + ATTR_DEST_QP_NUM);
  bth_build(hdr, op, se, 0, 0, 0xffff, 0, 0, destQpn, ackreq, psn);
  if (om & M_DETH) {
    // a Q_Key with bit 31 set means "the QP's own Q_Key" (ibverbs, rxe init_req_packet)
    const wk = load<u32>(wqe + SWQE_REMOTE_QKEY);
    deth_build(hdr + <usize>opcode_offset(op, HDR_DETH), (wk & 0x80000000) ? load<u32>(qp + QP_ATTR + ATTR_QKEY) : wk, load<u32>(qp + QP_NUM));
  }
  if (om & M_RETH) {
    const len = (om & M_FLUSH) ? load<u32>(wqe + SWQE_LENGTH) : resid;
    reth_build(hdr + <usize>opcode_offset(op, HDR_RETH), iova, load<u32>(wqe + SWQE_RKEY), len);
  }
  if (om & M_FETH) feth_set_word(hdr + <usize>opcode_offset(op, HDR_FETH), load<u32>(wqe + SWQE_IMM_DATA));
  if (om & M_IMMDT) immdt_build(hdr + <usize>opcode_offset(op, HDR_IMMDT), load<u32>(wqe + SWQE_IMM_DATA));
  if (om & M_IETH) ieth_build(hdr + <usize>opcode_offset(op, HDR_IETH), load<u32>(wqe + SWQE_IMM_DATA));
  if (om & M_ATMETH) {
    const cas = wrOp == WR_ATOMIC_CMP_AND_SWP;
    const swapAdd = cas ? load<u64>(wqe + SWQE_SWAP) : load<u64>(wqe + SWQE_COMPARE_ADD);
    const cmp: u64 = cas ? load<u64>(wqe + SWQE_COMPARE_ADD) : 0;
    atmeth_build(hdr + <usize>opcode_offset(op, HDR_ATMETH), load<u64>(wqe + SWQE_REMOTE_ADDR), load<u32>(wqe + SWQE_RKEY), swapAdd, cmp);
  }
  txSend(desc, qp, c.av, op, data, (om & M_ATOMIC_WRITE) ? ATOMIC_WRITE_PAYLOAD : payload);
  c.payload = payload;
  c.desc = desc;
  c.psn = psn;
  return ReqState.UPDATE_STATE;
}

/** rxe update_wqe_state, update_wqe_psn, update_state: the packet is out. */
function updateState(c: ReqRun): ReqState {
  const qp = c.qp;
  const wqe = c.wqe;
  const om = c.om;
  const psn = c.psn;
  if (om & (M_FLUSH | M_ATOMIC_WRITE)) store<u32>(wqe + SWQE_RESID, 0); // WRITE/SEND: takePayload moved it
  const resid = load<u32>(wqe + SWQE_RESID);
  const end = (om & M_END) != 0;
  const rc = load<u32>(qp + QP_TYPE) == QPT_RC;
  // UC/UD: the WQE completes when the host releases the descriptor of its last
  // packet (the payload is read from the MR until then; rxe completes when the skb is freed)
  store<u32>(wqe + SWQE_STATE, end ? WQE_STATE_PENDING : WQE_STATE_PROCESSING);
  if (end && !rc) txMarkLast(c.desc, qp, c.index);
  const npkt = packetCount(resid + c.payload, c.mtu);
  if (om & M_START) {
    store<u32>(wqe + SWQE_FIRST_PSN, psn);
    store<u32>(wqe + SWQE_LAST_PSN, psn_next(psn, npkt - 1));
  }
  wr(qp, REQ_PSN, (om & M_READ) ? psn_next(load<u32>(wqe + SWQE_FIRST_PSN), npkt) : psn_next(psn, 1));
  store<i32>(qp + QP_REQ + REQ_OPCODE, c.opcode);
  if (end) store<u32>(qp + QP_REQ + REQ_WQE_INDEX, c.index + 1);
  if (rc) {
    const t = ackTimeoutUs(qp);
    if (t > 0 && !timerArmed(retransTimerId(qp))) timerArm(retransTimerId(qp), nowUs + t);
  }
  c.sent++;
  if (c.sent < c.budget) return ReqState.NEXT_WQE;
  c.requeue = true; // budget used up: let other QPs go first
  return ReqState.DONE;
}

/** Emits up to `budget` packets for QP `qp`; returns how many it emitted. */
export function requesterSend(qp: usize, budget: i32): i32 {
  const type = load<u32>(qp + QP_TYPE);
  if (type != QPT_RC && type != QPT_UC && type != QPT_UD) return 0;
  const st = qpState(qp);
  if (st != QpState.RTS && st != QpState.SQD) return 0;
  reqEnsureInit(qp);
  if (budget <= 0) {
    scheduleQp(qp);
    return 0;
  }
  const c = reqRun;
  c.qp = qp;
  c.sent = 0;
  c.budget = budget;
  c.requeue = false;
  let s = ReqState.NEXT_WQE;
  let from = TRACE_NONE;
  for (;;) {
    trace(c, s, from);
    from = s;
    if (s == ReqState.EXIT || s == ReqState.DONE) break;
    switch (s) {
      case ReqState.NEXT_WQE: s = nextWqe(c); break;
      case ReqState.RETRY:
        reqRetry(qp);
        reqClearFlag(qp, RF_NEED_RETRY);
        s = ReqState.NEXT_WQE;
        break;
      case ReqState.CHECK_FENCE: s = checkFence(c); break;
      case ReqState.LOCAL_OPS: s = localOps(c); break;
      case ReqState.CHECK_WINDOW: s = checkWindow(c); break;
      case ReqState.CHECK_LENGTH: s = checkLength(c); break;
      case ReqState.NEXT_OPCODE: s = nextOpcodeStep(c); break;
      case ReqState.CHECK_INIT_DEPTH: s = checkInitDepth(c); break;
      case ReqState.FINISH_PACKET: s = finishPacket(c); break;
      case ReqState.UPDATE_STATE: s = updateState(c); break;
      default: // ERROR
        reqError(qp, c.wqe, c.status);
        s = ReqState.EXIT; // the QP is in ERR now
    }
  }
  if (c.requeue) scheduleQp(qp);
  return c.sent;
}
