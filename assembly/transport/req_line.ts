// The requester's line of a QP (rxe's qp->req and the parts of qp->comp set up with it): its
// flags, its set-up on the first send in RTS, the local ACK timeout, the SQ-drained check. A leaf
// both engines use — the requester, and the completer after each response — so neither imports
// the other for it (no import circle in assembly/transport).
import { raiseEvent, EVENT_SQ_DRAINED } from "../verbs/events";
import {
  qpState, ATTR_RETRY_CNT, ATTR_RNR_RETRY, ATTR_SQ_DRAINING, ATTR_SQ_PSN, ATTR_TIMEOUT, QP_ATTR, QP_COMP, QP_FLAGS,
  QP_FLAG_SQ_DRAINING, QP_NUM, QP_REQ, QP_SQ, COMP_FLAGS, COMP_OPCODE, COMP_PSN, COMP_RETRY_CNT, COMP_RNR_RETRY,
  REQ_FLAGS, REQ_NOACK, REQ_OPCODE, REQ_PSN, REQ_RD_ATOMIC, REQ_WQE_INDEX, RF_INIT,
} from "../verbs/qp";
import { QpState } from "../verbs/enums";
import { ringCons, ringEntry, ringProd } from "../mem/ring";
import { SWQE_STATE, WQE_STATE_POSTED } from "../verbs/wqe";
import { M_ATOMIC, M_ATOMIC_WRITE, M_FLUSH, M_READ, M_SEND, M_WRITE } from "../wire/opcode";

// ---- WQE mask bits (SWQE_MASK): the M_* class bits of the WR, plus ----
export const WQE_INIT: u32 = 1 << 31; // progress fields set up
export const WQE_RD_ATOMIC: u32 = 1 << 30; // holds a max_rd_atomic credit
export const WQE_LOCAL: u32 = 1 << 29; // local operation (LOCAL_INV, BIND_MW)
export const WQE_CLASS: u32 = M_SEND | M_WRITE | M_READ | M_ATOMIC | M_FLUSH | M_ATOMIC_WRITE;

/** rxe RXE_MAX_UNACKED_PSNS and RXE_MAX_PKT_PER_ACK. */
export const MAX_UNACKED_PSNS: u32 = 128;
export const MAX_PKT_PER_ACK: u32 = 64;

@inline function rd(qp: usize, off: usize): u32 { return load<u32>(qp + QP_REQ + off); }
@inline function wr(qp: usize, off: usize, v: u32): void { store<u32>(qp + QP_REQ + off, v); }
@inline export function reqHasFlag(qp: usize, f: u32): bool { return (rd(qp, REQ_FLAGS) & f) != 0; }
@inline export function reqSetFlag(qp: usize, f: u32): void { wr(qp, REQ_FLAGS, rd(qp, REQ_FLAGS) | f); }
@inline export function reqClearFlag(qp: usize, f: u32): void { wr(qp, REQ_FLAGS, rd(qp, REQ_FLAGS) & ~f); }
@inline export function reqFlags(qp: usize): u32 { return rd(qp, REQ_FLAGS); }

/** Local ACK timeout in µs: 4.096 µs × 2^timeout, 0 = none. */
export function ackTimeoutUs(qp: usize): f64 {
  const t = load<u32>(qp + QP_ATTR + ATTR_TIMEOUT);
  return t ? 4.096 * <f64>(<u64>1 << <u64>t) : 0;
}

/**
 * Sets up the requester and completer lines the first time the QP sends or
 * receives in RTS (the SQ PSN is final then; RESET zeroes both lines again).
 */
export function reqEnsureInit(qp: usize): void {
  if (reqHasFlag(qp, RF_INIT)) return;
  const psn = load<u32>(qp + QP_ATTR + ATTR_SQ_PSN);
  const sq = <usize>load<u32>(qp + QP_SQ);
  wr(qp, REQ_FLAGS, RF_INIT);
  wr(qp, REQ_PSN, psn);
  store<u32>(qp + QP_REQ + REQ_WQE_INDEX, ringCons(sq));
  store<i32>(qp + QP_REQ + REQ_OPCODE, -1);
  wr(qp, REQ_NOACK, 0);
  wr(qp, REQ_RD_ATOMIC, 0);
  const c = qp + QP_COMP;
  store<u32>(c + COMP_PSN, psn);
  store<i32>(c + COMP_OPCODE, -1);
  store<u32>(c + COMP_RETRY_CNT, load<u32>(qp + QP_ATTR + ATTR_RETRY_CNT));
  store<u32>(c + COMP_RNR_RETRY, load<u32>(qp + QP_ATTR + ATTR_RNR_RETRY));
  store<u32>(c + COMP_FLAGS, 0);
}

/**
 * SQD: raise SQ_DRAINED once every WQE the requester started is complete and
 * no message is half sent (rxe req_check_sq_drain_done); the completer calls
 * it after each response too.
 */
export function checkSqDrained(qp: usize): void {
  if (qpState(qp) != QpState.SQD || !(load<u32>(qp + QP_FLAGS) & QP_FLAG_SQ_DRAINING)) return;
  const sq = <usize>load<u32>(qp + QP_SQ);
  const cons = ringCons(sq);
  if (cons != ringProd(sq)) {
    const head = ringEntry(sq, cons);
    if (load<u32>(qp + QP_REQ + REQ_WQE_INDEX) != cons || load<u32>(head + SWQE_STATE) != WQE_STATE_POSTED) return;
  }
  store<u32>(qp + QP_FLAGS, load<u32>(qp + QP_FLAGS) & ~QP_FLAG_SQ_DRAINING);
  store<u32>(qp + QP_ATTR + ATTR_SQ_DRAINING, 0);
  raiseEvent(EVENT_SQ_DRAINED, load<u32>(qp + QP_NUM), 0);
}
