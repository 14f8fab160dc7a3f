// Moving a QP to ERR from inside the transport (rxe_qp_error): the requester,
// completer or responder hit an error it cannot recover from. The WQE that
// failed carries its own status (WQE_STATE_ERROR + SWQE_STATUS) and completes
// with it; every other outstanding send WQE, and the receive queue, completes
// with WR_FLUSH_ERR, oldest first. rxe raises no asynchronous event here (the
// error completion is the report), so neither do we.
import { timerCancel } from "../sched/timers";
import { raiseEvent, EVENT_QP_LAST_WQE_REACHED } from "../verbs/events";
import { flushRq, flushSq } from "../verbs/flush";
import {
  qpState, ATTR_CUR_QP_STATE, ATTR_QP_STATE, ATTR_SQ_DRAINING, QP_ATTR, QP_FLAGS, QP_FLAG_SQ_DRAINING, QP_NUM, QP_SRQ,
} from "../verbs/qp";
import { QpState } from "../verbs/enums";
import { retransTimerId, rnrTimerId } from "./engine";

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
  flushSq(qp); // the failed WQE completes with its own status (verbs/flush.ts)
  if (load<u32>(qp + QP_SRQ)) {
    if (cur != QpState.ERR) raiseEvent(EVENT_QP_LAST_WQE_REACHED, load<u32>(qp + QP_NUM), 0);
  } else {
    flushRq(qp);
  }
}
