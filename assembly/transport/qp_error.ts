// Moving a QP to ERR from inside the transport (rxe_qp_error): the requester,
// completer or responder hit an error it cannot recover from. The WQE that
// failed carries its own status (WQE_STATE_ERROR + SWQE_STATUS) and completes
// with it; every other outstanding send WQE, and the receive queue, completes
// with WR_FLUSH_ERR, oldest first — the same entry into ERR as ibv_modify_qp
// (verbs/qp_modify.ts), with the QP's timers stopped first. rxe raises no
// asynchronous event here (the error completion is the report), so neither do we.
import { QpState } from "../verbs/enums";
import { qpState } from "../verbs/qp";
import { qpEnterState } from "../verbs/qp_modify";
import { qpStopTimers } from "./qp_sched";

/**
 * Moves `qp` to ERR (as ibv_modify_qp to ERR would) and flushes both queues.
 * `status` is the completion status that caused it (for the trace; the WQE
 * that failed already carries it).
 */
export function qpToError(qp: usize, status: u32): void {
  qpStopTimers(qp);
  qpEnterState(qp, qpState(qp), QpState.ERR, status);
}
