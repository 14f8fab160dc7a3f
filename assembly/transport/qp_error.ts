// Moving a QP to ERR from inside the transport (rxe_qp_error): the requester,
// completer or responder hit an error it cannot recover from. The WQE that
// failed carries its own status (WQE_STATE_ERROR + SWQE_STATUS) and completes
// with it; every other outstanding send WQE, and the receive queue, completes
// with WR_FLUSH_ERR, oldest first. rxe raises no asynchronous event here (the
// error completion is the report), so neither do we.
import { timerCancel } from "../sched/timers";
import { count, Counter } from "../verbs/counters";
import { cqCommit, cqFind, cqReserve, CQE_QP_NUM, CQE_STATUS, CQE_WR_ID, WC_WR_FLUSH_ERR } from "../verbs/cq";
import { raiseEvent, EVENT_QP_LAST_WQE_REACHED } from "../verbs/events";
import { flushRq, REQ_WQE_INDEX } from "../verbs/flush";
import {
  qpState, ATTR_CUR_QP_STATE, ATTR_QP_STATE, ATTR_SQ_DRAINING, QP_ATTR, QP_FLAGS, QP_FLAG_SQ_DRAINING, QP_NUM, QP_REQ,
  QP_SEND_CQ, QP_SQ, QP_SRQ,
} from "../verbs/qp";
import { QpState } from "../verbs/qp_state";
import { ringCons, ringEntry, ringProd, ringSetCons } from "../verbs/ring";
import { SWQE_STATE, SWQE_STATUS, SWQE_WR_ID, WQE_STATE_ERROR } from "../verbs/wqe";
import { retransTimerId, rnrTimerId } from "./engine";

/**
 * Completes every send WQE from the consumer index on: a WQE in the ERROR
 * state with its own status, the others with WR_FLUSH_ERR (wr_id, status and
 * qp_num only, as rxe's make_send_cqe for errors). When the CQ is full the rest
 * retire without completions (rxe flush_send_queue).
 */
export function flushSendQueue(qp: usize): void {
  const sq = <usize>load<u32>(qp + QP_SQ);
  const cq = cqFind(load<u32>(qp + QP_SEND_CQ));
  const qpn = load<u32>(qp + QP_NUM);
  let notify = cq != 0;
  let c = ringCons(sq);
  const p = ringProd(sq);
  while (c != p) {
    const w = ringEntry(sq, c);
    if (notify) {
      const e = cqReserve(cq);
      if (e) {
        const failed = load<u32>(w + SWQE_STATE) == WQE_STATE_ERROR && load<u32>(w + SWQE_STATUS) != 0;
        store<u64>(e + CQE_WR_ID, load<u64>(w + SWQE_WR_ID));
        store<u32>(e + CQE_STATUS, failed ? load<u32>(w + SWQE_STATUS) : WC_WR_FLUSH_ERR);
        store<u32>(e + CQE_QP_NUM, qpn);
        cqCommit(cq);
      } else {
        notify = false;
      }
    }
    count(Counter.FLUSHED_WQES);
    c++;
  }
  ringSetCons(sq, c);
  store<u32>(qp + QP_REQ + REQ_WQE_INDEX, c);
}

/**
 * Moves `qp` to ERR (as ibv_modify_qp to ERR would) and flushes both queues.
 * `status` is the completion status that caused it (kept for traces; the WQE
 * that failed already carries it).
 */
export function qpToError(qp: usize, status: u32): void {
  const cur = qpState(qp);
  store<u32>(qp + QP_ATTR + ATTR_QP_STATE, QpState.ERR);
  store<u32>(qp + QP_ATTR + ATTR_CUR_QP_STATE, QpState.ERR);
  store<u32>(qp + QP_FLAGS, load<u32>(qp + QP_FLAGS) & ~QP_FLAG_SQ_DRAINING);
  store<u32>(qp + QP_ATTR + ATTR_SQ_DRAINING, 0);
  timerCancel(retransTimerId(qp));
  timerCancel(rnrTimerId(qp));
  flushSendQueue(qp);
  if (load<u32>(qp + QP_SRQ)) {
    if (cur != QpState.ERR) raiseEvent(EVENT_QP_LAST_WQE_REACHED, load<u32>(qp + QP_NUM), 0);
  } else {
    flushRq(qp);
  }
}
