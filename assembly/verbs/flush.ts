// Flushing: when a QP is in ERR every outstanding WQE completes with
// WR_FLUSH_ERR (wr_id, status, qp_num only), oldest first — except a send WQE
// the transport marked failed (WQE_STATE_ERROR with its status), which
// completes with its own status. If the CQ fills up the rest are retired
// without completions, as rxe's flush_send_queue does.
import { count, Counter } from "./counters";
import { cqCommit, cqFind, cqReserve, CQE_QP_NUM, CQE_STATUS, CQE_WR_ID } from "./cq";
import { WC_WR_FLUSH_ERR } from "./enums";
import { QP_NUM, QP_RECV_CQ, QP_REQ, QP_RQ, QP_SEND_CQ, QP_SQ, REQ_WQE_INDEX } from "./qp";
import { ringCons, ringEntry, ringProd, ringSetCons } from "../mem/ring";
import { RWQE_WR_ID, SWQE_STATE, SWQE_STATUS, SWQE_WR_ID, WQE_STATE_ERROR } from "./wqe";

function flushRing(ring: usize, cqh: u32, qpn: u32, wrIdOff: usize, sendQueue: bool): void {
  const cq = cqFind(cqh);
  let notify = cq != 0;
  let c = ringCons(ring);
  const p = ringProd(ring);
  while (c != p) {
    if (notify) {
      const e = cqReserve(cq);
      if (e) {
        const w = ringEntry(ring, c);
        const failed = sendQueue && load<u32>(w + SWQE_STATE) == WQE_STATE_ERROR && load<u32>(w + SWQE_STATUS) != 0;
        store<u64>(e + CQE_WR_ID, load<u64>(w + wrIdOff));
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
  ringSetCons(ring, c);
}

export function flushSq(q: usize): void {
  const sq = <usize>load<u32>(q + QP_SQ);
  flushRing(sq, load<u32>(q + QP_SEND_CQ), load<u32>(q + QP_NUM), SWQE_WR_ID, true);
  store<u32>(q + QP_REQ + REQ_WQE_INDEX, ringCons(sq));
}

export function flushRq(q: usize): void {
  const rq = <usize>load<u32>(q + QP_RQ);
  if (rq) flushRing(rq, load<u32>(q + QP_RECV_CQ), load<u32>(q + QP_NUM), RWQE_WR_ID, false);
}

/** Drops every WQE without a completion (transition to RESET). */
export function dropQueues(q: usize): void {
  const sq = <usize>load<u32>(q + QP_SQ);
  ringSetCons(sq, ringProd(sq));
  const rq = <usize>load<u32>(q + QP_RQ);
  if (rq) ringSetCons(rq, ringProd(rq));
}
