// The QP state machine's legality table: which transitions exist and which
// attributes each requires or allows per QP type. Same contents as the IB core
// qp_state_table (drivers/infiniband/core/verbs.c, ib_modify_qp_is_ok), written
// as small functions over the mask bits.

export const enum QpState { RESET = 0, INIT = 1, RTR = 2, RTS = 3, SQD = 4, SQE = 5, ERR = 6 }
export const QP_STATE_NAMES = "RESET,INIT,RTR,RTS,SQD,SQE,ERR";

export const QPT_RC: u32 = 2;
export const QPT_UC: u32 = 3;
export const QPT_UD: u32 = 4;

// ibv_qp_attr_mask
export const QP_STATE: u32 = 1 << 0;
export const QP_CUR_STATE: u32 = 1 << 1;
export const QP_EN_SQD_ASYNC_NOTIFY: u32 = 1 << 2;
export const QP_ACCESS_FLAGS: u32 = 1 << 3;
export const QP_PKEY_INDEX: u32 = 1 << 4;
export const QP_PORT: u32 = 1 << 5;
export const QP_QKEY: u32 = 1 << 6;
export const QP_AV: u32 = 1 << 7;
export const QP_PATH_MTU: u32 = 1 << 8;
export const QP_TIMEOUT: u32 = 1 << 9;
export const QP_RETRY_CNT: u32 = 1 << 10;
export const QP_RNR_RETRY: u32 = 1 << 11;
export const QP_RQ_PSN: u32 = 1 << 12;
export const QP_MAX_QP_RD_ATOMIC: u32 = 1 << 13;
export const QP_ALT_PATH: u32 = 1 << 14;
export const QP_MIN_RNR_TIMER: u32 = 1 << 15;
export const QP_SQ_PSN: u32 = 1 << 16;
export const QP_MAX_DEST_RD_ATOMIC: u32 = 1 << 17;
export const QP_PATH_MIG_STATE: u32 = 1 << 18;
export const QP_CAP: u32 = 1 << 19;
export const QP_DEST_QPN: u32 = 1 << 20;
export const QP_RATE_LIMIT: u32 = 1 << 25;

const S_RESET: u32 = 0, S_INIT: u32 = 1, S_RTR: u32 = 2, S_RTS: u32 = 3, S_SQD: u32 = 4, S_SQE: u32 = 5, S_ERR: u32 = 6;

/** Is cur -> next a transition at all (for any QP type)? */
export function transitionValid(cur: u32, next: u32): bool {
  if (cur > S_ERR || next > S_ERR) return false;
  if (next == S_RESET || next == S_ERR) return true; // every state may go to RESET or ERR
  switch (cur) {
    case S_RESET: return next == S_INIT;
    case S_INIT: return next == S_INIT || next == S_RTR;
    case S_RTR: return next == S_RTS;
    case S_RTS: return next == S_RTS || next == S_SQD;
    case S_SQD: return next == S_RTS || next == S_SQD;
    case S_SQE: return next == S_RTS;
    default: return false;
  }
}

/** Attributes the transition requires for a QP type. */
export function requiredAttrs(cur: u32, next: u32, t: u32): u32 {
  if (cur == S_RESET && next == S_INIT) {
    return t == QPT_UD ? QP_PKEY_INDEX | QP_PORT | QP_QKEY : QP_PKEY_INDEX | QP_PORT | QP_ACCESS_FLAGS;
  }
  if (cur == S_INIT && next == S_RTR) {
    if (t == QPT_UC) return QP_AV | QP_PATH_MTU | QP_DEST_QPN | QP_RQ_PSN;
    if (t == QPT_RC) return QP_AV | QP_PATH_MTU | QP_DEST_QPN | QP_RQ_PSN | QP_MAX_DEST_RD_ATOMIC | QP_MIN_RNR_TIMER;
    return 0;
  }
  if (cur == S_RTR && next == S_RTS) {
    if (t == QPT_RC) return QP_TIMEOUT | QP_RETRY_CNT | QP_RNR_RETRY | QP_SQ_PSN | QP_MAX_QP_RD_ATOMIC;
    return QP_SQ_PSN;
  }
  return 0;
}

/** Attributes the transition allows besides the required ones and STATE. */
export function optionalAttrs(cur: u32, next: u32, t: u32): u32 {
  const ud = t == QPT_UD, uc = t == QPT_UC;
  if (cur == S_INIT && next == S_INIT) {
    return ud ? QP_PKEY_INDEX | QP_PORT | QP_QKEY : QP_PKEY_INDEX | QP_PORT | QP_ACCESS_FLAGS;
  }
  if (cur == S_INIT && next == S_RTR) {
    return ud ? QP_PKEY_INDEX | QP_QKEY : QP_ALT_PATH | QP_ACCESS_FLAGS | QP_PKEY_INDEX;
  }
  if ((cur == S_RTR || cur == S_RTS || cur == S_SQD) && next == S_RTS) {
    if (ud) return QP_CUR_STATE | QP_QKEY;
    if (uc) return QP_CUR_STATE | QP_ALT_PATH | QP_ACCESS_FLAGS | QP_PATH_MIG_STATE;
    return QP_CUR_STATE | QP_ALT_PATH | QP_ACCESS_FLAGS | QP_MIN_RNR_TIMER | QP_PATH_MIG_STATE;
  }
  if (cur == S_RTS && next == S_SQD) return QP_EN_SQD_ASYNC_NOTIFY;
  if (cur == S_SQD && next == S_SQD) {
    if (ud) return QP_PKEY_INDEX | QP_QKEY;
    if (uc) return QP_AV | QP_ALT_PATH | QP_ACCESS_FLAGS | QP_PKEY_INDEX | QP_PATH_MIG_STATE;
    return QP_PORT | QP_AV | QP_TIMEOUT | QP_RETRY_CNT | QP_RNR_RETRY | QP_MAX_QP_RD_ATOMIC |
      QP_MAX_DEST_RD_ATOMIC | QP_ALT_PATH | QP_ACCESS_FLAGS | QP_PKEY_INDEX | QP_MIN_RNR_TIMER | QP_PATH_MIG_STATE;
  }
  if (cur == S_SQE && next == S_RTS) {
    if (ud) return QP_CUR_STATE | QP_QKEY;
    if (uc) return QP_CUR_STATE | QP_ACCESS_FLAGS;
    return 0; // RC has no SQE -> RTS attributes (an RC QP never reaches SQE)
  }
  return 0;
}

/** ib_modify_qp_is_ok. */
export function modifyIsOk(cur: u32, next: u32, t: u32, mask: u32): bool {
  if (cur > S_ERR || next > S_ERR) return false;
  if ((mask & QP_CUR_STATE) && cur != S_RTR && cur != S_RTS && cur != S_SQD && cur != S_SQE) return false;
  if (!transitionValid(cur, next)) return false;
  const req = requiredAttrs(cur, next, t);
  const opt = optionalAttrs(cur, next, t);
  if ((mask & req) != req) return false;
  if (mask & ~(req | opt | QP_STATE)) return false;
  return true;
}
