// The QP state machine's legality table: which transitions exist and which
// attributes each requires or allows per QP type. Same contents as the IB core
// qp_state_table (drivers/infiniband/core/verbs.c, ib_modify_qp_is_ok), written
// as small functions over the mask bits.
import {
  QpState, QPT_RC, QPT_UC, QPT_UD, QP_ACCESS_FLAGS, QP_ALT_PATH, QP_AV, QP_CUR_STATE, QP_DEST_QPN, QP_EN_SQD_ASYNC_NOTIFY,
  QP_MAX_DEST_RD_ATOMIC, QP_MAX_QP_RD_ATOMIC, QP_MIN_RNR_TIMER, QP_PATH_MIG_STATE, QP_PATH_MTU, QP_PKEY_INDEX, QP_PORT,
  QP_QKEY, QP_RETRY_CNT, QP_RNR_RETRY, QP_RQ_PSN, QP_SQ_PSN, QP_STATE, QP_TIMEOUT,
} from "./enums";

/** Is cur -> next a transition at all (for any QP type)? */
export function transitionValid(cur: u32, next: u32): bool {
  if (cur > <u32>QpState.ERR || next > <u32>QpState.ERR) return false;
  if (next == QpState.RESET || next == QpState.ERR) return true; // every state may go to RESET or ERR
  switch (cur) {
    case QpState.RESET: return next == QpState.INIT;
    case QpState.INIT: return next == QpState.INIT || next == QpState.RTR;
    case QpState.RTR: return next == QpState.RTS;
    case QpState.RTS: return next == QpState.RTS || next == QpState.SQD;
    case QpState.SQD: return next == QpState.RTS || next == QpState.SQD;
    case QpState.SQE: return next == QpState.RTS;
    default: return false;
  }
}

/** Attributes the transition requires for a QP type. */
export function requiredAttrs(cur: u32, next: u32, t: u32): u32 {
  if (cur == QpState.RESET && next == QpState.INIT) {
    return t == QPT_UD ? QP_PKEY_INDEX | QP_PORT | QP_QKEY : QP_PKEY_INDEX | QP_PORT | QP_ACCESS_FLAGS;
  }
  if (cur == QpState.INIT && next == QpState.RTR) {
    if (t == QPT_UC) return QP_AV | QP_PATH_MTU | QP_DEST_QPN | QP_RQ_PSN;
    if (t == QPT_RC) return QP_AV | QP_PATH_MTU | QP_DEST_QPN | QP_RQ_PSN | QP_MAX_DEST_RD_ATOMIC | QP_MIN_RNR_TIMER;
    return 0;
  }
  if (cur == QpState.RTR && next == QpState.RTS) {
    if (t == QPT_RC) return QP_TIMEOUT | QP_RETRY_CNT | QP_RNR_RETRY | QP_SQ_PSN | QP_MAX_QP_RD_ATOMIC;
    return QP_SQ_PSN;
  }
  return 0;
}

/** Attributes the transition allows besides the required ones and STATE. */
export function optionalAttrs(cur: u32, next: u32, t: u32): u32 {
  const ud = t == QPT_UD, uc = t == QPT_UC;
  if (cur == QpState.INIT && next == QpState.INIT) {
    return ud ? QP_PKEY_INDEX | QP_PORT | QP_QKEY : QP_PKEY_INDEX | QP_PORT | QP_ACCESS_FLAGS;
  }
  if (cur == QpState.INIT && next == QpState.RTR) {
    return ud ? QP_PKEY_INDEX | QP_QKEY : QP_ALT_PATH | QP_ACCESS_FLAGS | QP_PKEY_INDEX;
  }
  if ((cur == QpState.RTR || cur == QpState.RTS || cur == QpState.SQD) && next == QpState.RTS) {
    if (ud) return QP_CUR_STATE | QP_QKEY;
    if (uc) return QP_CUR_STATE | QP_ALT_PATH | QP_ACCESS_FLAGS | QP_PATH_MIG_STATE;
    return QP_CUR_STATE | QP_ALT_PATH | QP_ACCESS_FLAGS | QP_MIN_RNR_TIMER | QP_PATH_MIG_STATE;
  }
  if (cur == QpState.RTS && next == QpState.SQD) return QP_EN_SQD_ASYNC_NOTIFY;
  if (cur == QpState.SQD && next == QpState.SQD) {
    if (ud) return QP_PKEY_INDEX | QP_QKEY;
    if (uc) return QP_AV | QP_ALT_PATH | QP_ACCESS_FLAGS | QP_PKEY_INDEX | QP_PATH_MIG_STATE;
    return QP_PORT | QP_AV | QP_TIMEOUT | QP_RETRY_CNT | QP_RNR_RETRY | QP_MAX_QP_RD_ATOMIC |
      QP_MAX_DEST_RD_ATOMIC | QP_ALT_PATH | QP_ACCESS_FLAGS | QP_PKEY_INDEX | QP_MIN_RNR_TIMER | QP_PATH_MIG_STATE;
  }
  if (cur == QpState.SQE && next == QpState.RTS) {
    if (ud) return QP_CUR_STATE | QP_QKEY;
    if (uc) return QP_CUR_STATE | QP_ACCESS_FLAGS;
    return 0; // RC has no SQE -> RTS attributes (an RC QP never reaches SQE)
  }
  return 0;
}

/** ib_modify_qp_is_ok. */
export function modifyIsOk(cur: u32, next: u32, t: u32, mask: u32): bool {
  if (cur > <u32>QpState.ERR || next > <u32>QpState.ERR) return false;
  if ((mask & QP_CUR_STATE) && cur != QpState.RTR && cur != QpState.RTS && cur != QpState.SQD && cur != QpState.SQE) return false;
  if (!transitionValid(cur, next)) return false;
  const req = requiredAttrs(cur, next, t);
  const opt = optionalAttrs(cur, next, t);
  if ((mask & req) != req) return false;
  if (mask & ~(req | opt | QP_STATE)) return false;
  return true;
}
