// RC completer (rxe_comp.c): matches ACKs, NAKs, READ responses and atomic ACKs
// against the oldest send WQEs; places READ data and atomic results into the
// local SGEs; posts send completions; runs the retransmission timer, retry_cnt,
// the RNR timer and rnr_retry; hands go-back-N to the requester; on errors
// completes the WQE with its status and moves the QP to ERR.
// A state machine as rxe's: an enum, a name table, a run record passed to one
// step function per state.
import { ACCESS_LOCAL_WRITE } from "../mem/access";
import { nowUs } from "../sched/clock";
import { timerArm, timerCancel } from "../sched/timers";
import { count, Counter } from "../verbs/counters";
import {
  cqCommit, cqFind, cqReserve, CQE_BYTE_LEN, CQE_OPCODE, CQE_QP_NUM, CQE_STATUS, CQE_WC_FLAGS, CQE_WR_ID,
} from "../verbs/cq";
import {
  QpState, QPT_RC, SEND_SIGNALED, WC_ATOMIC_WRITE, WC_BAD_RESP_ERR, WC_BIND_MW, WC_COMP_SWAP, WC_FATAL_ERR, WC_FETCH_ADD,
  WC_FLAG_WITH_IMM, WC_FLUSH, WC_LOC_PROT_ERR, WC_LOCAL_INV, WC_RDMA_READ, WC_REG_MR, WC_RDMA_WRITE, WC_REM_ACCESS_ERR,
  WC_REM_INV_REQ_ERR, WC_REM_OP_ERR, WC_RETRY_EXC_ERR, WC_RNR_RETRY_EXC_ERR, WC_SEND, WC_SUCCESS, WR_ATOMIC_CMP_AND_SWP,
  WR_ATOMIC_FETCH_AND_ADD, WR_ATOMIC_WRITE, WR_BIND_MW, WR_FLUSH, WR_LOCAL_INV, WR_RDMA_READ, WR_RDMA_WRITE, WR_REG_MR,
  WR_RDMA_WRITE_WITH_IMM, WR_SEND, WR_SEND_WITH_IMM, WR_SEND_WITH_INV,
} from "../verbs/enums";
import {
  qpState, ATTR_RETRY_CNT, ATTR_RNR_RETRY, QP_ATTR, QP_COMP, QP_NUM,
  QP_PD, QP_REQ, QP_SEND_CQ, QP_SQ, QP_SQ_SIG_ALL, QP_TYPE, CF_STARTED_RETRY, COMP_FLAGS, COMP_OPCODE, COMP_PSN,
  COMP_RETRY_CNT, COMP_RNR_RETRY, REQ_PSN, REQ_RD_ATOMIC, RF_INIT, RF_NEED_RD_ATOMIC, RF_NEED_RETRY, RF_WAIT_FENCE,
  RF_WAIT_PSN, RF_WAIT_RNR,
} from "../verbs/qp";
import { ringCons, ringEntry, ringProd, ringSetCons } from "../mem/ring";
import {
  SWQE_CUR_SGE, SWQE_FIRST_PSN, SWQE_LAST_PSN, SWQE_LENGTH, SWQE_MASK, SWQE_NUM_SGE, SWQE_OPCODE, SWQE_RESID,
  SWQE_RESULT, SWQE_SEND_FLAGS, SWQE_SGE, SWQE_STATE, SWQE_STATUS, WQE_STATE_DONE, WQE_STATE_ERROR,
  WQE_STATE_PENDING, WQE_STATE_POSTED,
} from "../verbs/wqe";
import {
  aeth_code, aeth_syndrome, aeth_type, AETH_TYPE_ACK, AETH_TYPE_NAK, AETH_TYPE_RNR_NAK, NAK_INVALID_REQ, NAK_PSN_SEQ,
  NAK_REM_ACCESS,
} from "../wire/aeth";
import { atmack_orig } from "../wire/atmack";
import { opcode_mask, HDR_AETH, HDR_ATMACK, M_AETH, M_ATOMIC, M_END, M_READ, M_SEND, M_START } from "../wire/opcode";
import { psn_distance, psn_next } from "../wire/psn";
import { rnrTimerId, retransTimerId, scheduleQp } from "./qp_sched";
import { pktHdr, PKT_MASK, PKT_OPCODE, PKT_PAYLOAD, PKT_PAYLOAD_LEN, PKT_PSN } from "./pkt";
import { copyData, Copy, TO_SGL } from "./dma";
import { qpToError } from "./qp_error";
import { traceRecord, traceState, TraceKind, TRACE_NONE } from "../trace/trace";
import {
  ackTimeoutUs, checkSqDrained, reqClearFlag, reqEnsureInit, reqFlags, reqSetFlag, WQE_RD_ATOMIC,
} from "./req_line";

/** rxe rnrnak_usec: the RNR NAK timer field (IBA 9.7.5.2.8) in µs; code 25 is rxe's 61410, not 61440. */
const RNR_USEC = memory.data<u32>([
  655360, 10, 20, 30, 40, 60, 80, 120, 160, 240, 320, 480, 640, 960, 1280, 1920,
  2560, 3840, 5120, 7680, 10240, 15360, 20480, 30720, 40960, 61410, 81920, 122880, 163840, 245760, 327680, 491520,
]);

export function rnrDelayUs(code: u32): u32 { return load<u32>(RNR_USEC + (<usize>(code & 31) << 2)); }

export const enum CompState {
  GET_WQE = 0, COMP_WQE, COMP_ACK, CHECK_PSN, CHECK_ACK, READ, ATOMIC, WRITE_SEND, UPDATE_COMP, ERROR_RETRY,
  RNR_RETRY, ERROR, EXIT, DONE,
}
export const COMP_STATE_NAMES =
  "GET WQE,COMP WQE,COMP ACK,CHECK PSN,CHECK ACK,READ,ATOMIC,WRITE/SEND,UPDATE COMP,ERROR RETRY,RNR RETRY,ERROR,EXIT,DONE";


/** NAK syndrome → the requester's completion status (rxe check_ack); 0 for a PSN sequence error (retried). */
export function nakStatus(syndrome: u32): u32 {
  switch (aeth_code(syndrome)) {
    case NAK_PSN_SEQ: return WC_SUCCESS;
    case NAK_INVALID_REQ: return WC_REM_INV_REQ_ERR;
    case NAK_REM_ACCESS: return WC_REM_ACCESS_ERR;
    default: return WC_REM_OP_ERR; // remote operational error and unknown codes
  }
}

/** ibv_wr_opcode → ibv_wc_opcode (rxe wr_to_wc_opcode). */
export function wcOpcode(wrOp: u32): u32 {
  switch (wrOp) {
    case WR_RDMA_WRITE:
    case WR_RDMA_WRITE_WITH_IMM: return WC_RDMA_WRITE;
    case WR_SEND:
    case WR_SEND_WITH_IMM:
    case WR_SEND_WITH_INV: return WC_SEND;
    case WR_RDMA_READ: return WC_RDMA_READ;
    case WR_ATOMIC_CMP_AND_SWP: return WC_COMP_SWAP;
    case WR_ATOMIC_FETCH_AND_ADD: return WC_FETCH_ADD;
    case WR_LOCAL_INV: return WC_LOCAL_INV;
    case WR_BIND_MW: return WC_BIND_MW;
    case WR_REG_MR: return WC_REG_MR;
    case WR_ATOMIC_WRITE: return WC_ATOMIC_WRITE;
    case WR_FLUSH: return WC_FLUSH;
    default: return 0xff;
  }
}

/** One run of the completer (the device is single-threaded: one record serves every run). */
@unmanaged
export class CompRun {
  qp: usize = 0;
  pkt: usize = 0; // the response (packet-info record), 0 for a run without one
  wqe: usize = 0; // the oldest send WQE
  timeout: bool = false; // the retransmit timer fired
  again: bool = false; // the requester can make progress again
}
const compRun = changetype<CompRun>(memory.data(offsetof<CompRun>(), 8));

/** Counts the state entered and, when the trace ring wants it, records it with the response's PSN. */
@inline function trace(c: CompRun, s: CompState, from: u32): void {
  if (traceState(TraceKind.COMP_STATE, s)) {
    traceRecord(TraceKind.COMP_STATE, load<u32>(c.qp + QP_NUM), s, from, c.pkt ? load<u32>(c.pkt + PKT_PSN) : TRACE_NONE);
  }
}

@inline function cget(qp: usize, off: usize): u32 { return load<u32>(qp + QP_COMP + off); }
@inline function cset(qp: usize, off: usize, v: u32): void { store<u32>(qp + QP_COMP + off, v); }

function resetRetryCounters(qp: usize): void {
  cset(qp, COMP_RETRY_CNT, load<u32>(qp + QP_ATTR + ATTR_RETRY_CNT));
  cset(qp, COMP_RNR_RETRY, load<u32>(qp + QP_ATTR + ATTR_RNR_RETRY));
  cset(qp, COMP_FLAGS, cget(qp, COMP_FLAGS) & ~CF_STARTED_RETRY);
}

@inline function wakeRequester(c: CompRun, f: u32): void {
  if (reqFlags(c.qp) & f) {
    reqClearFlag(c.qp, f);
    c.again = true;
  }
}

@inline function sqHead(qp: usize): usize {
  const sq = <usize>load<u32>(qp + QP_SQ);
  return ringCons(sq) != ringProd(sq) ? ringEntry(sq, ringCons(sq)) : 0;
}

// What a response is, from its opcode-table bits (rxe's check_ack switches on
// opcodes; here only the table knows them).
/** An ACK or NAK: AETH, neither READ response nor atomic ACK. */
@inline function plainAck(mask: u32): bool { return (mask & (M_AETH | M_READ | M_ATOMIC)) == M_AETH; }
/** A READ response MIDDLE or LAST: it continues the response in progress. */
@inline function readContinues(mask: u32): bool { return (mask & (M_READ | M_START)) == M_READ; }
/** `cop` (COMP_OPCODE) says a multi-packet READ response is half in: its FIRST or a MIDDLE came last. */
@inline function inReadResponse(cop: i32): bool { return cop >= 0 && (opcode_mask(<u32>cop) & (M_READ | M_END)) == M_READ; }

function getWqe(c: CompRun): CompState {
  const pkt = c.pkt;
  const wqe = c.wqe;
  if (!wqe || load<u32>(wqe + SWQE_STATE) == WQE_STATE_POSTED) return pkt ? CompState.DONE : CompState.EXIT;
  const st = load<u32>(wqe + SWQE_STATE);
  if (st == WQE_STATE_DONE) return CompState.COMP_WQE;
  if (st == WQE_STATE_ERROR) return CompState.ERROR;
  return pkt ? CompState.CHECK_PSN : CompState.EXIT;
}

function checkPsn(c: CompRun): CompState {
  const qp = c.qp;
  const pkt = c.pkt;
  const wqe = c.wqe;
  const psn = load<u32>(pkt + PKT_PSN);
  const m = load<u32>(wqe + SWQE_MASK);
  // a response past the oldest WQE completes a SEND/WRITE but means a lost
  // READ/atomic response: those must be retried
  if (psn_distance(psn, load<u32>(wqe + SWQE_LAST_PSN)) > 0) {
    if (load<u32>(wqe + SWQE_STATE) == WQE_STATE_PENDING) {
      if (m & (M_READ | M_ATOMIC)) return CompState.ERROR_RETRY;
      resetRetryCounters(qp);
      return CompState.COMP_WQE;
    }
    return CompState.DONE;
  }
  const d = psn_distance(psn, cget(qp, COMP_PSN));
  if (d < 0) {
    // most likely a retried response: it completes the WQE if it is its last —
    // not a READ or atomic, whose data or result such a packet does not carry in
    // full (rxe completes those too; their retry brings the response instead)
    if (psn == load<u32>(wqe + SWQE_LAST_PSN)) return (m & (M_READ | M_ATOMIC)) ? CompState.DONE : CompState.COMP_ACK;
    // rxe lets an older ACK through while a READ response is half in, for the
    // NAK a responder sends when the READ fails midway. We take only NAKs that
    // way: a stale positive ACK (duplicated or reordered on the wire) would end
    // the response sequence and make the next READ MIDDLE look out of order.
    if (plainAck(load<u32>(pkt + PKT_MASK)) && inReadResponse(load<i32>(qp + QP_COMP + COMP_OPCODE)) &&
        aeth_type(aeth_syndrome(pktHdr(pkt, HDR_AETH))) != AETH_TYPE_ACK) return CompState.CHECK_ACK;
    return CompState.DONE;
  }
  if (d > 0 && (m & (M_READ | M_ATOMIC))) return CompState.DONE;
  return CompState.CHECK_ACK;
}

function checkAck(c: CompRun): CompState {
  const qp = c.qp;
  const pkt = c.pkt;
  const wqe = c.wqe;
  const mask = load<u32>(pkt + PKT_MASK);
  const cop = load<i32>(qp + QP_COMP + COMP_OPCODE);
  const wrOp = load<u32>(wqe + SWQE_OPCODE);
  // the response sequence
  if (cop < 0) {
    if (!(mask & M_START)) return CompState.ERROR; // catches every *_ONLY
  } else if (inReadResponse(cop) && !readContinues(mask) && !plainAck(mask)) {
    // a retried READ may restart with FIRST (or ONLY for a one-packet READ)
    const first = load<u32>(wqe + SWQE_FIRST_PSN);
    const restart = (mask & (M_READ | M_START)) == (M_READ | M_START) &&
      ((mask & M_END) ? first == load<u32>(wqe + SWQE_LAST_PSN) : load<u32>(pkt + PKT_PSN) == first);
    if (!restart) return CompState.ERROR;
  }
  // the operation
  if (mask & M_READ) {
    if (mask & M_AETH) { // FIRST, LAST and ONLY carry one; MIDDLE does not
      const syn = aeth_syndrome(pktHdr(pkt, HDR_AETH));
      if (aeth_type(syn) != AETH_TYPE_ACK) return CompState.ERROR;
      // FLUSH and ATOMIC_WRITE are acknowledged with a zero-length READ RESPONSE ONLY
      if (wrOp == WR_ATOMIC_WRITE) return CompState.WRITE_SEND;
    }
    if (wrOp != WR_RDMA_READ && wrOp != WR_FLUSH) {
      store<u32>(wqe + SWQE_STATUS, WC_FATAL_ERR);
      return CompState.ERROR;
    }
    resetRetryCounters(qp);
    return CompState.READ;
  }
  if (mask & M_ATOMIC) {
    const syn = aeth_syndrome(pktHdr(pkt, HDR_AETH));
    if (aeth_type(syn) != AETH_TYPE_ACK) return CompState.ERROR;
    if (wrOp != WR_ATOMIC_CMP_AND_SWP && wrOp != WR_ATOMIC_FETCH_AND_ADD) return CompState.ERROR;
    resetRetryCounters(qp);
    return CompState.ATOMIC;
  }
  if (!plainAck(mask)) return CompState.ERROR;
  const syn = aeth_syndrome(pktHdr(pkt, HDR_AETH));
  const t = aeth_type(syn);
  if (t == AETH_TYPE_ACK) {
    // A plain ACK at a READ's or atomic's PSN (a responder re-ACKing a
    // duplicate with its last PSN) cannot carry the data or the original
    // value: the response was lost and the request must go again. rxe would
    // complete the WQE here without its result.
    if (load<u32>(wqe + SWQE_MASK) & (M_READ | M_ATOMIC)) return CompState.ERROR_RETRY;
    resetRetryCounters(qp);
    return CompState.WRITE_SEND;
  }
  if (t == AETH_TYPE_RNR_NAK) {
    count(Counter.RCVD_RNR_ERR);
    return CompState.RNR_RETRY;
  }
  if (t == AETH_TYPE_NAK) {
    if (aeth_code(syn) == NAK_PSN_SEQ) {
      // a NAK acknowledges every PSN before it
      const psn = load<u32>(pkt + PKT_PSN);
      if (psn_distance(psn, cget(qp, COMP_PSN)) > 0) {
        count(Counter.RCVD_SEQ_ERR);
        cset(qp, COMP_PSN, psn);
        wakeRequester(c, RF_WAIT_PSN);
        // forward progress reloads retry_cnt as an ACK does (rxe does not, and
        // with retry_cnt < 7 a lossy link then fails a connection that is moving)
        resetRetryCounters(qp);
      }
      return CompState.ERROR_RETRY;
    }
    store<u32>(wqe + SWQE_STATUS, nakStatus(syn));
    return CompState.ERROR;
  }
  return CompState.ERROR;
}

/**
 * Places `len` bytes from `src` into the WQE's local SGEs at its DMA cursor,
 * each piece needing LOCAL_WRITE (rxe copy_data RXE_TO_MR_OBJ). False on any
 * violation or when the WQE has less room left.
 */
function placeData(qp: usize, wqe: usize, src: usize, len: u32): bool {
  if (len == 0) return true;
  if (len > load<u32>(wqe + SWQE_RESID)) return false;
  const r = copyData(TO_SGL, load<u32>(qp + QP_PD), ACCESS_LOCAL_WRITE, wqe + SWQE_SGE, load<u32>(wqe + SWQE_NUM_SGE),
    wqe + SWQE_CUR_SGE, src, len);
  if (r != Copy.OK) return false;
  store<u32>(wqe + SWQE_RESID, load<u32>(wqe + SWQE_RESID) - len);
  return true;
}

const atomicScratch: usize = memory.data(8, 8);

function doRead(c: CompRun): CompState {
  const qp = c.qp;
  const pkt = c.pkt;
  const wqe = c.wqe;
  if (!placeData(qp, wqe, <usize>load<u32>(pkt + PKT_PAYLOAD), load<u32>(pkt + PKT_PAYLOAD_LEN))) {
    store<u32>(wqe + SWQE_STATUS, WC_LOC_PROT_ERR);
    return CompState.ERROR;
  }
  if (load<u32>(wqe + SWQE_RESID) == 0 && (load<u32>(pkt + PKT_MASK) & M_END)) return CompState.COMP_ACK;
  return CompState.UPDATE_COMP;
}

function doAtomic(c: CompRun): CompState {
  const qp = c.qp;
  const pkt = c.pkt;
  const wqe = c.wqe;
  const orig = atmack_orig(pktHdr(pkt, HDR_ATMACK));
  store<u64>(wqe + SWQE_RESULT, orig);
  store<u64>(atomicScratch, orig); // the original value in host byte order, as rxe copies it
  if (!placeData(qp, wqe, atomicScratch, 8)) {
    store<u32>(wqe + SWQE_STATUS, WC_LOC_PROT_ERR);
    return CompState.ERROR;
  }
  return CompState.COMP_ACK;
}

/**
 * Retires the head WQE: posts its completion when signalled, when the QP
 * signals all, or on error (IBA 10.7.3.1), with rxe's send-CQE fields.
 */
function doComplete(c: CompRun): void {
  const qp = c.qp;
  const wqe = c.wqe;
  // its max_rd_atomic credit comes back however the WQE completes (rxe returns it in
  // complete_ack only, so an ATOMIC_WRITE acknowledged implicitly would keep it forever)
  const m = load<u32>(wqe + SWQE_MASK);
  if (m & WQE_RD_ATOMIC) {
    store<u32>(wqe + SWQE_MASK, m & ~WQE_RD_ATOMIC);
    store<u32>(qp + QP_REQ + REQ_RD_ATOMIC, load<u32>(qp + QP_REQ + REQ_RD_ATOMIC) - 1);
    wakeRequester(c, RF_NEED_RD_ATOMIC);
  }
  const status = load<u32>(wqe + SWQE_STATUS);
  const wrOp = load<u32>(wqe + SWQE_OPCODE);
  const post = load<u32>(qp + QP_SQ_SIG_ALL) != 0 || (load<u32>(wqe + SWQE_SEND_FLAGS) & SEND_SIGNALED) != 0 ||
    status != WC_SUCCESS;
  if (post) {
    const cq = cqFind(load<u32>(qp + QP_SEND_CQ));
    const e = cq ? cqReserve(cq) : 0;
    if (e) {
      store<u64>(e + CQE_WR_ID, load<u64>(wqe));
      store<u32>(e + CQE_STATUS, status);
      store<u32>(e + CQE_QP_NUM, load<u32>(qp + QP_NUM));
      if (status == WC_SUCCESS) {
        store<u32>(e + CQE_OPCODE, wcOpcode(wrOp));
        if (wrOp == WR_RDMA_WRITE_WITH_IMM || wrOp == WR_SEND_WITH_IMM) store<u32>(e + CQE_WC_FLAGS, WC_FLAG_WITH_IMM);
        store<u32>(e + CQE_BYTE_LEN, wrOp == WR_ATOMIC_WRITE ? 8 : load<u32>(wqe + SWQE_LENGTH));
      }
      cqCommit(cq);
    }
  }
  const sq = <usize>load<u32>(qp + QP_SQ);
  ringSetCons(sq, ringCons(sq) + 1);
  if (load<u32>(wqe + SWQE_MASK) & M_SEND) count(Counter.RDMA_SENDS);
  wakeRequester(c, RF_WAIT_FENCE); // something completed: a fenced WQE may go
}

function completeAck(c: CompRun): CompState {
  doComplete(c);
  return psn_distance(load<u32>(c.pkt + PKT_PSN), cget(c.qp, COMP_PSN)) >= 0 ? CompState.UPDATE_COMP : CompState.DONE;
}

function completeWqe(c: CompRun): CompState {
  const qp = c.qp;
  const pkt = c.pkt;
  const wqe = c.wqe;
  if (pkt && load<u32>(wqe + SWQE_STATE) == WQE_STATE_PENDING) {
    const last = load<u32>(wqe + SWQE_LAST_PSN);
    if (psn_distance(last, cget(qp, COMP_PSN)) >= 0) {
      cset(qp, COMP_PSN, psn_next(last, 1));
      store<i32>(qp + QP_COMP + COMP_OPCODE, -1);
    }
    wakeRequester(c, RF_WAIT_PSN);
  }
  doComplete(c);
  return CompState.GET_WQE;
}

function updateComp(c: CompRun): CompState {
  const qp = c.qp;
  const pkt = c.pkt;
  const mask = load<u32>(pkt + PKT_MASK);
  store<i32>(qp + QP_COMP + COMP_OPCODE, (mask & M_END) ? -1 : <i32>load<u32>(pkt + PKT_OPCODE));
  const psn = load<u32>(pkt + PKT_PSN);
  if (psn_distance(psn, cget(qp, COMP_PSN)) >= 0) cset(qp, COMP_PSN, psn_next(psn, 1));
  wakeRequester(c, RF_WAIT_PSN);
  return CompState.DONE;
}

/**
 * Timeout or PSN-sequence NAK: go back N unless a retry is already under way;
 * retry_cnt counts retries (7 is seven, as the IBA says; rxe makes it infinite).
 */
function errorRetry(c: CompRun): CompState {
  const qp = c.qp;
  const wqe = c.wqe;
  if (!wqe || load<u32>(wqe + SWQE_STATE) == WQE_STATE_POSTED) return CompState.DONE;
  if ((cget(qp, COMP_FLAGS) & CF_STARTED_RETRY) && !c.timeout) return CompState.DONE;
  const left = cget(qp, COMP_RETRY_CNT);
  if (left > 0) {
    cset(qp, COMP_RETRY_CNT, left - 1);
    // nothing to resend when every packet sent is acknowledged already
    if (psn_distance(load<u32>(qp + QP_REQ + REQ_PSN), cget(qp, COMP_PSN)) > 0) {
      count(Counter.COMPLETER_RETRY_ERR);
      reqSetFlag(qp, RF_NEED_RETRY);
      cset(qp, COMP_FLAGS, cget(qp, COMP_FLAGS) | CF_STARTED_RETRY);
      c.again = true;
    }
    return CompState.DONE;
  }
  count(Counter.RETRY_EXCEEDED_ERR);
  store<u32>(wqe + SWQE_STATUS, WC_RETRY_EXC_ERR);
  return CompState.ERROR;
}

function rnrRetry(c: CompRun): CompState {
  const qp = c.qp;
  const pkt = c.pkt;
  const wqe = c.wqe;
  const left = cget(qp, COMP_RNR_RETRY);
  if (left > 0) {
    if (left != 7) cset(qp, COMP_RNR_RETRY, left - 1);
    reqSetFlag(qp, RF_WAIT_RNR);
    // while waiting out the RNR timer the retransmit timer must not burn retry_cnt;
    // the retried packet re-arms it
    timerCancel(retransTimerId(qp));
    const code = aeth_code(aeth_syndrome(pktHdr(pkt, HDR_AETH)));
    timerArm(rnrTimerId(qp), nowUs + <f64>rnrDelayUs(code));
    return CompState.DONE;
  }
  count(Counter.RETRY_RNR_EXCEEDED_ERR);
  store<u32>(wqe + SWQE_STATUS, WC_RNR_RETRY_EXC_ERR);
  return CompState.ERROR;
}

/** rxe reset_retry_timer: keep the timer running while packets are unacknowledged. */
function resetRetryTimer(qp: usize): void {
  const t = ackTimeoutUs(qp);
  const st = qpState(qp);
  if (reqFlags(qp) & RF_WAIT_RNR) return; // the RNR timer runs instead; the retried packet re-arms this one
  if (t > 0 && (st == QpState.RTS || st == QpState.SQD) &&
      psn_distance(load<u32>(qp + QP_REQ + REQ_PSN), cget(qp, COMP_PSN)) > 0) {
    timerArm(retransTimerId(qp), nowUs + t);
  } else {
    timerCancel(retransTimerId(qp));
  }
}

/** rxe COMPST_WRITE_SEND: a SEND/WRITE acknowledged; its last PSN completes it. */
function writeSend(c: CompRun): CompState {
  const wqe = c.wqe;
  return load<u32>(wqe + SWQE_STATE) == WQE_STATE_PENDING && load<u32>(wqe + SWQE_LAST_PSN) == load<u32>(c.pkt + PKT_PSN)
    ? CompState.COMP_ACK : CompState.UPDATE_COMP;
}

/**
 * One completer run for `qp`: with a response packet (`pkt` != 0), or without
 * one to retire WQEs that need no ACK and keep the timer right, or after the
 * retransmit timer fired (`timeout`). `c.again` is left to the caller.
 */
function completerRun(c: CompRun, qp: usize, pkt: usize, timeout: bool): void {
  c.qp = qp;
  c.pkt = pkt;
  c.timeout = timeout;
  c.wqe = 0;
  let state = CompState.GET_WQE;
  let from = TRACE_NONE;
  for (;;) {
    trace(c, state, from);
    from = state;
    switch (state) {
      case CompState.GET_WQE:
        c.wqe = sqHead(qp);
        state = getWqe(c);
        break;
      case CompState.CHECK_PSN: state = checkPsn(c); break;
      case CompState.CHECK_ACK: state = checkAck(c); break;
      case CompState.READ: state = doRead(c); break;
      case CompState.ATOMIC: state = doAtomic(c); break;
      case CompState.WRITE_SEND: state = writeSend(c); break;
      case CompState.COMP_ACK: state = completeAck(c); break;
      case CompState.COMP_WQE: state = completeWqe(c); break;
      case CompState.UPDATE_COMP: state = updateComp(c); break;
      case CompState.ERROR_RETRY: state = errorRetry(c); break;
      case CompState.RNR_RETRY: state = rnrRetry(c); break;
      case CompState.ERROR: {
        const wqe = c.wqe;
        if (load<u32>(wqe + SWQE_STATUS) == WC_SUCCESS) store<u32>(wqe + SWQE_STATUS, WC_BAD_RESP_ERR);
        store<u32>(wqe + SWQE_STATE, WQE_STATE_ERROR);
        qpToError(qp, load<u32>(wqe + SWQE_STATUS)); // completes this WQE with its status, flushes the rest
        return;
      }
      case CompState.EXIT:
        if (timeout && c.wqe) {
          state = CompState.ERROR_RETRY;
          break;
        }
        resetRetryTimer(qp);
        return;
      default: // DONE
        return;
    }
  }
}

@inline function sending(qp: usize): bool {
  const st = qpState(qp);
  return load<u32>(qp + QP_TYPE) == QPT_RC && (st == QpState.RTS || st == QpState.SQD);
}

/** A validated response packet for `qp` (pkt: the packet-info record). */
export function completerRecv(qp: usize, pkt: usize): void {
  if (!sending(qp)) return;
  reqEnsureInit(qp);
  // While an RNR NAK's wait runs, responses are dropped (the retried packet brings the answer).
  // Deviation from rxe: a timeout's retry that the requester has not started yet (its TX ring
  // full behind a blocked link) does not stop the completer. rxe leaves responses queued until
  // the requester has rewound, and by then the WQEs they acknowledge are "posted" again, so they
  // are dropped; dropping them at once (as we did) made a loaded sender deaf: every ACK arrived
  // and yet each timeout used up retry_cnt until RETRY_EXC_ERR. The WQEs are still as they were
  // sent, so the response is taken as if it had come before the timer, and the retry that
  // follows starts from the PSN it acknowledged.
  if (reqFlags(qp) & RF_WAIT_RNR) return;
  const c = compRun;
  c.again = false;
  completerRun(c, qp, pkt, false);
  if (sending(qp)) completerRun(c, qp, 0, false); // retire what needs no ACK, keep the timer right
  checkSqDrained(qp);
  if (c.again) scheduleQp(qp);
}

/** A local operation (LOCAL_INV, BIND_MW, REG_MR) finished in the requester: retire what is done, in order. */
export function completeLocal(qp: usize): void {
  const c = compRun;
  c.again = false;
  completerRun(c, qp, 0, false);
  if (c.again) scheduleQp(qp);
}

/** The retransmission timer of `qp` fired. */
export function retransmitTimeout(qp: usize): void {
  // a timer left from before a RESET (or from the slot's previous QP) finds nothing sent
  if (!sending(qp) || !(reqFlags(qp) & RF_INIT)) return;
  if (reqFlags(qp) & RF_NEED_RETRY) return;
  const c = compRun;
  c.again = false;
  completerRun(c, qp, 0, true);
  if (c.again) scheduleQp(qp);
}

/**
 * UC/UD: the host released the descriptor of the last packet of the WQE at SQ
 * index `index`: nothing acknowledges these, so the WQE is complete now.
 */
export function completeSent(qp: usize, index: u32): void {
  const t = load<u32>(qp + QP_TYPE);
  if (t == QPT_RC) return;
  const st = qpState(qp);
  if (st != QpState.RTS && st != QpState.SQD && st != QpState.SQE) return;
  const sq = <usize>load<u32>(qp + QP_SQ);
  if (ringCons(sq) == ringProd(sq)) return;
  // WQEs finish in order; a mark from before a flush finds another index at the head
  const wqe = ringEntry(sq, index);
  if (<i32>(index - ringCons(sq)) < 0 || <i32>(index - ringProd(sq)) >= 0) return;
  if (load<u32>(wqe + SWQE_STATE) != WQE_STATE_PENDING) return;
  store<u32>(wqe + SWQE_STATE, WQE_STATE_DONE);
  completerRun(compRun, qp, 0, false);
  checkSqDrained(qp);
}
