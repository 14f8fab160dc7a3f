// ibv_qp_attr: the object qp.modify() takes and qp.query() returns, the attribute
// mask derived from which fields are present, and the record encoding.
import { Attr } from "./abi.js";
import { readAv, writeAv, type AhAttr, type AhAttrOut } from "./av.js";
import { QpAttrMask } from "./enums.js";
import type { DeviceMemory } from "./memory.js";

/** ibv_qp_cap */
export interface QpCap {
  maxSendWr?: number;
  maxRecvWr?: number;
  maxSendSge?: number;
  maxRecvSge?: number;
  maxInlineData?: number;
}

/** ibv_qp_attr, every field optional; `attrMask` overrides the derived mask. */
export interface QpAttr {
  qpState?: number;
  curQpState?: number;
  pathMtu?: number;
  pathMigState?: number;
  qkey?: number;
  rqPsn?: number;
  sqPsn?: number;
  destQpNum?: number;
  qpAccessFlags?: number;
  cap?: QpCap;
  ahAttr?: AhAttr;
  altAhAttr?: AhAttr;
  pkeyIndex?: number;
  altPkeyIndex?: number;
  enSqdAsyncNotify?: number | boolean;
  maxRdAtomic?: number;
  maxDestRdAtomic?: number;
  minRnrTimer?: number;
  portNum?: number;
  timeout?: number;
  retryCnt?: number;
  rnrRetry?: number;
  altPortNum?: number;
  altTimeout?: number;
  rateLimit?: number;
  /** explicit ibv_qp_attr_mask (QpAttrMask bits); default: derived from the fields present */
  attrMask?: number;
}

/** What qp.query() reports (every field filled). */
export interface QpAttrOut {
  qpState: number;
  curQpState: number;
  pathMtu: number;
  pathMigState: number;
  qkey: number;
  rqPsn: number;
  sqPsn: number;
  destQpNum: number;
  qpAccessFlags: number;
  cap: Required<QpCap>;
  ahAttr: AhAttrOut;
  altAhAttr: AhAttrOut;
  pkeyIndex: number;
  altPkeyIndex: number;
  enSqdAsyncNotify: number;
  sqDraining: number;
  maxRdAtomic: number;
  maxDestRdAtomic: number;
  minRnrTimer: number;
  portNum: number;
  timeout: number;
  retryCnt: number;
  rnrRetry: number;
  altPortNum: number;
  altTimeout: number;
  rateLimit: number;
}

type NumField = Exclude<keyof QpAttr, "cap" | "ahAttr" | "altAhAttr" | "attrMask" | "enSqdAsyncNotify">;

/** Field -> (mask bit, record offset) for the plain numeric fields. */
const FIELDS: [NumField, number, number][] = [
  ["qpState", QpAttrMask.STATE, Attr.QP_STATE],
  ["curQpState", QpAttrMask.CUR_STATE, Attr.CUR_QP_STATE],
  ["qpAccessFlags", QpAttrMask.ACCESS_FLAGS, Attr.QP_ACCESS_FLAGS],
  ["pkeyIndex", QpAttrMask.PKEY_INDEX, Attr.PKEY_INDEX],
  ["portNum", QpAttrMask.PORT, Attr.PORT_NUM],
  ["qkey", QpAttrMask.QKEY, Attr.QKEY],
  ["pathMtu", QpAttrMask.PATH_MTU, Attr.PATH_MTU],
  ["timeout", QpAttrMask.TIMEOUT, Attr.TIMEOUT],
  ["retryCnt", QpAttrMask.RETRY_CNT, Attr.RETRY_CNT],
  ["rnrRetry", QpAttrMask.RNR_RETRY, Attr.RNR_RETRY],
  ["rqPsn", QpAttrMask.RQ_PSN, Attr.RQ_PSN],
  ["maxRdAtomic", QpAttrMask.MAX_QP_RD_ATOMIC, Attr.MAX_RD_ATOMIC],
  ["altPkeyIndex", QpAttrMask.ALT_PATH, Attr.ALT_PKEY_INDEX],
  ["altPortNum", QpAttrMask.ALT_PATH, Attr.ALT_PORT_NUM],
  ["altTimeout", QpAttrMask.ALT_PATH, Attr.ALT_TIMEOUT],
  ["minRnrTimer", QpAttrMask.MIN_RNR_TIMER, Attr.MIN_RNR_TIMER],
  ["sqPsn", QpAttrMask.SQ_PSN, Attr.SQ_PSN],
  ["maxDestRdAtomic", QpAttrMask.MAX_DEST_RD_ATOMIC, Attr.MAX_DEST_RD_ATOMIC],
  ["pathMigState", QpAttrMask.PATH_MIG_STATE, Attr.PATH_MIG_STATE],
  ["destQpNum", QpAttrMask.DEST_QPN, Attr.DEST_QP_NUM],
  ["rateLimit", QpAttrMask.RATE_LIMIT, Attr.RATE_LIMIT],
];

/** The ibv_qp_attr_mask a QpAttr object stands for (documented in docs/API.md). */
export function deriveMask(a: QpAttr): number {
  if (a.attrMask !== undefined) return a.attrMask >>> 0;
  let mask = 0;
  for (const [k, bit] of FIELDS) if (a[k] !== undefined) mask |= bit;
  if (a.ahAttr !== undefined) mask |= QpAttrMask.AV;
  if (a.altAhAttr !== undefined) mask |= QpAttrMask.ALT_PATH;
  if (a.enSqdAsyncNotify !== undefined) mask |= QpAttrMask.EN_SQD_ASYNC_NOTIFY;
  if (a.cap !== undefined) mask |= QpAttrMask.CAP;
  return mask >>> 0;
}

/** Writes the attribute block; throws RangeError for a malformed value. */
export function writeAttr(m: DeviceMemory, p: number, a: QpAttr): void {
  m.fill(p, Attr.SIZE);
  for (const [k, , off] of FIELDS) {
    const v = a[k];
    if (v === undefined) continue;
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`${k} out of range: ${v}`);
    m.setU32(p + off, v);
  }
  if (a.enSqdAsyncNotify !== undefined) m.setU32(p + Attr.EN_SQD_ASYNC_NOTIFY, a.enSqdAsyncNotify ? 1 : 0);
  if (a.ahAttr) writeAv(m, p + Attr.AH, a.ahAttr);
  if (a.altAhAttr) writeAv(m, p + Attr.ALT_AH, a.altAhAttr);
  if (a.cap) {
    m.setU32(p + Attr.MAX_SEND_WR, a.cap.maxSendWr ?? 0);
    m.setU32(p + Attr.MAX_RECV_WR, a.cap.maxRecvWr ?? 0);
    m.setU32(p + Attr.MAX_SEND_SGE, a.cap.maxSendSge ?? 0);
    m.setU32(p + Attr.MAX_RECV_SGE, a.cap.maxRecvSge ?? 0);
    m.setU32(p + Attr.MAX_INLINE_DATA, a.cap.maxInlineData ?? 0);
  }
}

export function readCap(m: DeviceMemory, p: number): Required<QpCap> {
  return {
    maxSendWr: m.u32(p + Attr.MAX_SEND_WR),
    maxRecvWr: m.u32(p + Attr.MAX_RECV_WR),
    maxSendSge: m.u32(p + Attr.MAX_SEND_SGE),
    maxRecvSge: m.u32(p + Attr.MAX_RECV_SGE),
    maxInlineData: m.u32(p + Attr.MAX_INLINE_DATA),
  };
}

export function readAttr(m: DeviceMemory, p: number): QpAttrOut {
  const r = (off: number): number => m.u32(p + off);
  return {
    qpState: r(Attr.QP_STATE),
    curQpState: r(Attr.CUR_QP_STATE),
    pathMtu: r(Attr.PATH_MTU),
    pathMigState: r(Attr.PATH_MIG_STATE),
    qkey: r(Attr.QKEY),
    rqPsn: r(Attr.RQ_PSN),
    sqPsn: r(Attr.SQ_PSN),
    destQpNum: r(Attr.DEST_QP_NUM),
    qpAccessFlags: r(Attr.QP_ACCESS_FLAGS),
    cap: readCap(m, p),
    ahAttr: readAv(m, p + Attr.AH),
    altAhAttr: readAv(m, p + Attr.ALT_AH),
    pkeyIndex: r(Attr.PKEY_INDEX),
    altPkeyIndex: r(Attr.ALT_PKEY_INDEX),
    enSqdAsyncNotify: r(Attr.EN_SQD_ASYNC_NOTIFY),
    sqDraining: r(Attr.SQ_DRAINING),
    maxRdAtomic: r(Attr.MAX_RD_ATOMIC),
    maxDestRdAtomic: r(Attr.MAX_DEST_RD_ATOMIC),
    minRnrTimer: r(Attr.MIN_RNR_TIMER),
    portNum: r(Attr.PORT_NUM),
    timeout: r(Attr.TIMEOUT),
    retryCnt: r(Attr.RETRY_CNT),
    rnrRetry: r(Attr.RNR_RETRY),
    altPortNum: r(Attr.ALT_PORT_NUM),
    altTimeout: r(Attr.ALT_TIMEOUT),
    rateLimit: r(Attr.RATE_LIMIT),
  };
}
