// ibv_modify_qp: the IB core legality table, then rxe's attribute checks
// (rxe_qp_chk_attr), then the attributes are stored and the state entered.
import { EINVAL, EPERM } from "../mem/errno";
import { ACCESS_DEFINED } from "../mem/access";
import { avCheck, AV_SIZE } from "./av";
import { cfg, CFG_FLAGS, CFG_FLAG_PRIVILEGED_QKEY, CFG_MAX_MTU, CFG_MAX_RD_ATOM, MAX_PKEYS } from "./config";
import { raiseEvent, EVENT_QP_LAST_WQE_REACHED, EVENT_SQ_DRAINED } from "./events";
import { dropQueues, flushRq, flushSq } from "./flush";
import {
  ATTR_AH, ATTR_ALT_AH, ATTR_ALT_PKEY_INDEX, ATTR_ALT_PORT_NUM, ATTR_ALT_TIMEOUT, ATTR_CUR_QP_STATE, ATTR_DEST_QP_NUM,
  ATTR_EN_SQD_ASYNC_NOTIFY, ATTR_MAX_DEST_RD_ATOMIC, ATTR_MAX_RD_ATOMIC, ATTR_MIN_RNR_TIMER, ATTR_PATH_MIG_STATE,
  ATTR_PATH_MTU, ATTR_PKEY_INDEX, ATTR_PORT_NUM, ATTR_QKEY, ATTR_QP_ACCESS_FLAGS, ATTR_QP_STATE, ATTR_RATE_LIMIT,
  ATTR_RETRY_CNT, ATTR_RNR_RETRY, ATTR_RQ_PSN, ATTR_SQ_DRAINING, ATTR_SQ_PSN, ATTR_TIMEOUT,
  qpFind, qpIndex, qpState, QP_ATTR, QP_FLAGS, QP_FLAG_SQ_DRAINING, QP_NUM, QP_REQ, QP_SLOT, QP_SQ, QP_SRQ, QP_TYPE,
} from "./qp";
import { modifyIsOk } from "./qp_state";
import {
  MTU_256, QpState, QP_ACCESS_FLAGS, QP_ALT_PATH, QP_AV, QP_CUR_STATE, QP_DEST_QPN, QP_EN_SQD_ASYNC_NOTIFY,
  QP_MAX_DEST_RD_ATOMIC, QP_MAX_QP_RD_ATOMIC, QP_MIN_RNR_TIMER, QP_PATH_MIG_STATE, QP_PATH_MTU, QP_PKEY_INDEX, QP_PORT,
  QP_QKEY, QP_RATE_LIMIT, QP_RETRY_CNT, QP_RNR_RETRY, QP_RQ_PSN, QP_SQ_PSN, QP_STATE, QP_TIMEOUT,
} from "./enums";
import { nextPow2 } from "../mem/pow2";
import { PSN_MASK } from "../wire/psn";
import { ringCount } from "../mem/ring";
import { traceOn, traceRecord, TraceKind } from "../trace/trace";
import { budgetForget } from "../sched/budget";
import { isGsi } from "./gsi";
import { qpSportModify } from "./sport";

/** rxe rounds the read/atomic depths up to a power of two; 0 stays 0 (no credits). */
@inline function depth(v: u32): u32 { return v ? nextPow2(v) : 0; }

/** Attribute checks beyond the table; 0 or -errno. */
function checkAttrs(q: usize, cur: u32, next: u32, mask: u32, a: usize): i32 {
  const flags = load<u32>(q + QP_FLAGS);
  // rxe: while the SQ drains in SQD only a move to ERR is accepted.
  if ((mask & QP_STATE) && cur == QpState.SQD && (flags & QP_FLAG_SQ_DRAINING) && next != QpState.ERR) return -EINVAL;
  if ((mask & QP_PORT) && load<u32>(a + ATTR_PORT_NUM) != 1) return -EINVAL;
  // rxe takes any index below max_pkeys (Linux 6.1's took perftest's --pkey_index 3): each names the
  // port's one P_Key, and every packet carries 0xffff; past max_pkeys is EINVAL here
  if ((mask & QP_PKEY_INDEX) && load<u32>(a + ATTR_PKEY_INDEX) >= MAX_PKEYS) return -EINVAL;
  if ((mask & QP_ACCESS_FLAGS) && (load<u32>(a + ATTR_QP_ACCESS_FLAGS) & ~ACCESS_DEFINED)) return -EINVAL;
  if ((mask & QP_AV) && avCheck(a + ATTR_AH)) return -EINVAL;
  if ((mask & QP_ALT_PATH) && avCheck(a + ATTR_ALT_AH)) return -EINVAL;
  if (mask & QP_PATH_MTU) {
    const mtu = load<u32>(a + ATTR_PATH_MTU);
    if (mtu < MTU_256 || mtu > cfg(CFG_MAX_MTU)) return -EINVAL;
  }
  if ((mask & QP_MAX_QP_RD_ATOMIC) && load<u32>(a + ATTR_MAX_RD_ATOMIC) > cfg(CFG_MAX_RD_ATOM)) return -EINVAL;
  if ((mask & QP_MAX_DEST_RD_ATOMIC) && load<u32>(a + ATTR_MAX_DEST_RD_ATOMIC) > cfg(CFG_MAX_RD_ATOM)) return -EINVAL;
  if ((mask & QP_TIMEOUT) && load<u32>(a + ATTR_TIMEOUT) > 31) return -EINVAL;
  // retry_cnt and rnr_retry are 3-bit fields, min_rnr_timer 5 bits (IBA 9.7.5.2.8, 9.7.6.1.4)
  if ((mask & QP_RETRY_CNT) && load<u32>(a + ATTR_RETRY_CNT) > 7) return -EINVAL;
  if ((mask & QP_RNR_RETRY) && load<u32>(a + ATTR_RNR_RETRY) > 7) return -EINVAL;
  if ((mask & QP_MIN_RNR_TIMER) && load<u32>(a + ATTR_MIN_RNR_TIMER) > 31) return -EINVAL;
  if ((mask & QP_DEST_QPN) && load<u32>(a + ATTR_DEST_QP_NUM) > 0xffffff) return -EINVAL;
  // IB core (6.5+): a qkey with bit 31 set is privileged (CAP_NET_RAW); the GSI's owner sets 0x80010000.
  if ((mask & QP_QKEY) && (load<u32>(a + ATTR_QKEY) & 0x80000000) && !(cfg(CFG_FLAGS) & CFG_FLAG_PRIVILEGED_QKEY) && !isGsi(q)) return -EPERM;
  return 0;
}

function copyAttrs(q: usize, mask: u32, a: usize): void {
  const d = q + QP_ATTR;
  if (mask & QP_ACCESS_FLAGS) store<u32>(d + ATTR_QP_ACCESS_FLAGS, load<u32>(a + ATTR_QP_ACCESS_FLAGS));
  if (mask & QP_PKEY_INDEX) store<u32>(d + ATTR_PKEY_INDEX, load<u32>(a + ATTR_PKEY_INDEX));
  if (mask & QP_PORT) store<u32>(d + ATTR_PORT_NUM, load<u32>(a + ATTR_PORT_NUM));
  if (mask & QP_QKEY) store<u32>(d + ATTR_QKEY, load<u32>(a + ATTR_QKEY));
  if (mask & QP_AV) memory.copy(d + ATTR_AH, a + ATTR_AH, AV_SIZE);
  if (mask & QP_PATH_MTU) store<u32>(d + ATTR_PATH_MTU, load<u32>(a + ATTR_PATH_MTU));
  if (mask & QP_TIMEOUT) store<u32>(d + ATTR_TIMEOUT, load<u32>(a + ATTR_TIMEOUT));
  if (mask & QP_RETRY_CNT) store<u32>(d + ATTR_RETRY_CNT, load<u32>(a + ATTR_RETRY_CNT));
  if (mask & QP_RNR_RETRY) store<u32>(d + ATTR_RNR_RETRY, load<u32>(a + ATTR_RNR_RETRY));
  if (mask & QP_RQ_PSN) store<u32>(d + ATTR_RQ_PSN, load<u32>(a + ATTR_RQ_PSN) & PSN_MASK);
  if (mask & QP_SQ_PSN) store<u32>(d + ATTR_SQ_PSN, load<u32>(a + ATTR_SQ_PSN) & PSN_MASK);
  if (mask & QP_MAX_QP_RD_ATOMIC) store<u32>(d + ATTR_MAX_RD_ATOMIC, depth(load<u32>(a + ATTR_MAX_RD_ATOMIC)));
  if (mask & QP_MAX_DEST_RD_ATOMIC) store<u32>(d + ATTR_MAX_DEST_RD_ATOMIC, depth(load<u32>(a + ATTR_MAX_DEST_RD_ATOMIC)));
  if (mask & QP_ALT_PATH) {
    memory.copy(d + ATTR_ALT_AH, a + ATTR_ALT_AH, AV_SIZE);
    store<u32>(d + ATTR_ALT_PKEY_INDEX, load<u32>(a + ATTR_ALT_PKEY_INDEX));
    store<u32>(d + ATTR_ALT_PORT_NUM, load<u32>(a + ATTR_ALT_PORT_NUM));
    store<u32>(d + ATTR_ALT_TIMEOUT, load<u32>(a + ATTR_ALT_TIMEOUT));
  }
  if (mask & QP_MIN_RNR_TIMER) store<u32>(d + ATTR_MIN_RNR_TIMER, load<u32>(a + ATTR_MIN_RNR_TIMER));
  if (mask & QP_PATH_MIG_STATE) store<u32>(d + ATTR_PATH_MIG_STATE, load<u32>(a + ATTR_PATH_MIG_STATE));
  if (mask & QP_DEST_QPN) store<u32>(d + ATTR_DEST_QP_NUM, load<u32>(a + ATTR_DEST_QP_NUM));
  if (mask & QP_EN_SQD_ASYNC_NOTIFY) store<u32>(d + ATTR_EN_SQD_ASYNC_NOTIFY, load<u32>(a + ATTR_EN_SQD_ASYNC_NOTIFY));
  if (mask & QP_RATE_LIMIT) store<u32>(d + ATTR_RATE_LIMIT, load<u32>(a + ATTR_RATE_LIMIT));
}

/**
 * Enters state `next` from `cur`: RESET drops the queues and the transport lines,
 * ERR flushes (with an SRQ: QP_LAST_WQE_REACHED instead of the RQ flush), SQD
 * starts draining. ibv_modify_qp comes here, and so does the transport when it
 * moves a QP to ERR itself (transport/qp_error.ts), with the completion
 * status that caused it as `cause` (traced).
 */
export function qpEnterState(q: usize, cur: u32, next: u32, cause: u32 = 0): void {
  store<u32>(q + QP_ATTR + ATTR_QP_STATE, next);
  store<u32>(q + QP_ATTR + ATTR_CUR_QP_STATE, next);
  const qpn = load<u32>(q + QP_NUM);
  if (cur != next && traceOn(TraceKind.QP_STATE)) traceRecord(TraceKind.QP_STATE, qpn, next, cur, cause);
  // out of RTS/SQD nothing of the QP is in flight any more: its share of the device's budget is free
  if (next != QpState.RTS && next != QpState.SQD) budgetForget(qpIndex(q));
  if (next == QpState.RESET) {
    dropQueues(q);
    memory.fill(q + QP_REQ, 0, QP_SLOT - <u32>QP_REQ);
    store<u32>(q + QP_FLAGS, 0);
  } else if (next == QpState.ERR) {
    store<u32>(q + QP_FLAGS, load<u32>(q + QP_FLAGS) & ~QP_FLAG_SQ_DRAINING);
    flushSq(q);
    if (load<u32>(q + QP_SRQ)) {
      // with an SRQ the receive side is not flushed; the consumer learns the QP is done
      if (cur != QpState.ERR) raiseEvent(EVENT_QP_LAST_WQE_REACHED, qpn, 0);
    } else {
      flushRq(q);
    }
  } else if (next == QpState.SQD && cur != QpState.SQD) {
    const sq = <usize>load<u32>(q + QP_SQ);
    if (ringCount(sq) == 0) raiseEvent(EVENT_SQ_DRAINED, qpn, 0);
    else store<u32>(q + QP_FLAGS, load<u32>(q + QP_FLAGS) | QP_FLAG_SQ_DRAINING);
  } else if (next == QpState.RTS) {
    store<u32>(q + QP_FLAGS, load<u32>(q + QP_FLAGS) & ~QP_FLAG_SQ_DRAINING);
  }
  store<u32>(q + QP_ATTR + ATTR_SQ_DRAINING, load<u32>(q + QP_FLAGS) & QP_FLAG_SQ_DRAINING);
}

/** ibv_modify_qp with the attribute block at `a`; 0 or -errno. */
export function qpModify(h: u32, mask: u32, a: usize): i32 {
  const q = qpFind(h);
  if (!q) return -EINVAL;
  const cur = (mask & QP_CUR_STATE) ? load<u32>(a + ATTR_CUR_QP_STATE) : qpState(q);
  const next = (mask & QP_STATE) ? load<u32>(a + ATTR_QP_STATE) : cur;
  if (!modifyIsOk(cur, next, load<u32>(q + QP_TYPE), mask)) return -EINVAL;
  const err = checkAttrs(q, cur, next, mask, a);
  if (err) return err;
  copyAttrs(q, mask, a);
  if (mask & QP_AV) qpSportModify(q); // rxe_modify_qp: after the attributes, with this modify's dest_qp_num
  if (mask & QP_STATE) qpEnterState(q, qpState(q), next);
  return 0;
}
