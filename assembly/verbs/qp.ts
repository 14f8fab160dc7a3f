// Queue pairs: a 512-byte pool record (public part the host reads, ibv_qp_attr
// block, device-owned transport state) plus SQ and RQ rings from the ring arena.
import { arenaAlloc, arenaFree } from "../mem/arena";
import { EBUSY, EINVAL, ENOMEM, EOPNOTSUPP, EPERM } from "../mem/errno";
import { pdFind } from "../mem/pd";
import { Pool, poolFind, poolGive, poolInit, poolMint, poolSlot, poolTake, slotIndex, useCount, useDec, useInc, SLOT_HANDLE } from "../mem/pool";
import { cfg, CFG_MAX_INLINE, CFG_MAX_QP_WR, CFG_MAX_SGE } from "./config";
import { qpnIndex, qpnMapInit, qpnOf } from "./qpn";
import { cqFind } from "./cq";
import { mtuBytes, MTU_256, QPT_RAW_PACKET, QPT_RC, QPT_UC, QPT_UD } from "./enums";
import { nextPow2 } from "../mem/pow2";
import { ringArena, ringBytes, ringInit, RING_RQ, RING_SQ } from "../mem/ring";
import { gsiSlot, GSI_QPN } from "./gsi_slot";
import { srqFind } from "./srq";
import { budgetForget } from "../sched/budget";
import { rqSlotSize, sqSlotSize } from "./wqe";
import { qpSportInit } from "./sport";
import {
  QP_NUM, QP_TYPE, QP_PD, QP_SEND_CQ, QP_RECV_CQ, QP_SRQ, QP_SQ, QP_RQ, QP_SQ_SIG_ALL, QP_SQ_BYTES, QP_RQ_BYTES,
  QP_ATTR, QP_REQ, QP_RESP, QP_COMP, QP_SLOT, REQ_WQE_INDEX, ATTR_QP_STATE, ATTR_PATH_MTU, ATTR_PORT_NUM,
  ATTR_MAX_SEND_WR, ATTR_MAX_RECV_WR, ATTR_MAX_SEND_SGE, ATTR_MAX_RECV_SGE, ATTR_MAX_INLINE_DATA, INIT_QP_TYPE,
  INIT_SEND_CQ, INIT_RECV_CQ, INIT_SRQ, INIT_MAX_SEND_WR, INIT_MAX_RECV_WR, INIT_MAX_SEND_SGE, INIT_MAX_RECV_SGE,
  INIT_MAX_INLINE_DATA, INIT_SQ_SIG_ALL,
} from "../abi/qp";

// ABI constants: generated from abi/schema.json into assembly/abi/qp.ts; re-exported for this file's importers.
export {
  QP_NUM, QP_TYPE, QP_PD, QP_SEND_CQ, QP_RECV_CQ, QP_SRQ, QP_SQ, QP_RQ, QP_SQ_SIG_ALL, QP_FLAGS, QP_SQ_BYTES,
  QP_RQ_BYTES, QP_ATTR, QP_REQ, QP_RESP, QP_COMP, QP_SLOT, REQ_FLAGS, REQ_PSN, REQ_WQE_INDEX, REQ_OPCODE, REQ_NOACK,
  REQ_RD_ATOMIC, RF_INIT, RF_NEED_RETRY, RF_WAIT_RNR, RF_WAIT_PSN, RF_WAIT_FENCE, RF_NEED_RD_ATOMIC, RS_FLAGS,
  RS_PSN, RS_ACK_PSN, RS_OPCODE, RS_MSN, RS_WQE, RS_VA, RS_RKEY, RS_RESID, RS_LENGTH, RS_RECV_LEN, RS_WQE_LEN,
  RS_RES_HEAD, RS_LINE, RSF_INIT, RSF_SENT_PSN_NAK, RSF_DROP_MSG, RS_OPCODE_VALID, COMP_PSN, COMP_OPCODE,
  COMP_RETRY_CNT, COMP_RNR_RETRY, COMP_FLAGS, CF_STARTED_RETRY, QP_FLAG_SQ_DRAINING, ATTR_QP_STATE,
  ATTR_CUR_QP_STATE, ATTR_PATH_MTU, ATTR_PATH_MIG_STATE, ATTR_QKEY, ATTR_RQ_PSN, ATTR_SQ_PSN, ATTR_DEST_QP_NUM,
  ATTR_QP_ACCESS_FLAGS, ATTR_PKEY_INDEX, ATTR_ALT_PKEY_INDEX, ATTR_EN_SQD_ASYNC_NOTIFY, ATTR_SQ_DRAINING,
  ATTR_MAX_RD_ATOMIC, ATTR_MAX_DEST_RD_ATOMIC, ATTR_MIN_RNR_TIMER, ATTR_PORT_NUM, ATTR_TIMEOUT, ATTR_RETRY_CNT,
  ATTR_RNR_RETRY, ATTR_ALT_PORT_NUM, ATTR_ALT_TIMEOUT, ATTR_RATE_LIMIT, ATTR_AH, ATTR_ALT_AH, ATTR_MAX_SEND_WR,
  ATTR_MAX_RECV_WR, ATTR_MAX_SEND_SGE, ATTR_MAX_RECV_SGE, ATTR_MAX_INLINE_DATA, ATTR_SIZE, INIT_QP_TYPE,
  INIT_SEND_CQ, INIT_RECV_CQ, INIT_SRQ, INIT_MAX_SEND_WR, INIT_MAX_RECV_WR, INIT_MAX_SEND_SGE, INIT_MAX_RECV_SGE,
  INIT_MAX_INLINE_DATA, INIT_SQ_SIG_ALL,
} from "../abi/qp";
// Device-owned transport state (the RC/UC/UD engines own these lines)

export const DEFAULT_PATH_MTU: u32 = MTU_256; // as rxe_qp_init_misc

export const qpPool = changetype<Pool>(memory.data(offsetof<Pool>()));

export function qpPoolInit(base: usize, cap: u32): void {
  poolInit(qpPool, base, QP_SLOT, cap);
  qpnMapInit(cap);
}

export function qpFind(h: u32): usize { return poolFind(qpPool, h); }

/** The QP's slot index (0 .. max_qp - 1): it names the QP's arbiter slot, timers and engine storage. */
@inline export function qpIndex(slot: usize): u32 { return slotIndex(qpPool, slot); }
/** The QP record in slot `idx`, in use or not (SLOT_HANDLE says which). */
@inline export function qpAt(idx: u32): usize { return poolSlot(qpPool, idx); }

/** The QP with number `qpn` (for the receive path), or 0. QP1 is the GSI (gsi.ts), whatever slot it has. */
export function qpByNum(qpn: u32): usize {
  if (qpn == GSI_QPN) return gsiSlot();
  const idx = qpnIndex(qpn);
  if (idx >= qpPool.cap) return 0;
  const slot = poolSlot(qpPool, idx);
  return load<u32>(slot + SLOT_HANDLE) && load<u32>(slot + QP_NUM) == qpn ? slot : 0;
}

@inline export function qpState(slot: usize): u32 { return load<u32>(slot + QP_ATTR + ATTR_QP_STATE); }

/** The QP's path MTU in bytes. */
@inline export function qpMtuBytes(slot: usize): u32 { return mtuBytes(load<u32>(slot + QP_ATTR + ATTR_PATH_MTU)); }

/** rxe_qp_chk_cap: every capability within the device limits (EINVAL otherwise). */
function capsOk(init: usize, hasSrq: bool): bool {
  if (load<u32>(init + INIT_MAX_SEND_WR) > cfg(CFG_MAX_QP_WR)) return false;
  if (load<u32>(init + INIT_MAX_SEND_SGE) > cfg(CFG_MAX_SGE)) return false;
  if (!hasSrq) {
    if (load<u32>(init + INIT_MAX_RECV_WR) > cfg(CFG_MAX_QP_WR)) return false;
    if (load<u32>(init + INIT_MAX_RECV_SGE) > cfg(CFG_MAX_SGE)) return false;
  }
  if (load<u32>(init + INIT_MAX_INLINE_DATA) > cfg(CFG_MAX_INLINE)) return false;
  return true;
}

/** ibv_create_qp: returns the QP handle or -errno. */
export function qpCreate(pdh: u32, init: usize): i32 {
  const pd = pdFind(pdh);
  if (!pd) return -EINVAL;
  const type = load<u32>(init + INIT_QP_TYPE);
  if (type == QPT_RAW_PACKET) return -EPERM; // uverbs: raw QPs need CAP_NET_RAW
  if (type != QPT_RC && type != QPT_UC && type != QPT_UD) return -EOPNOTSUPP; // rxe_qp_chk_init
  const scq = cqFind(load<u32>(init + INIT_SEND_CQ));
  const rcq = cqFind(load<u32>(init + INIT_RECV_CQ));
  if (!scq || !rcq) return -EINVAL;
  const srqh = load<u32>(init + INIT_SRQ);
  let srq: usize = 0;
  if (srqh) {
    srq = srqFind(srqh);
    if (!srq) return -EINVAL;
  }
  if (!capsOk(init, srq != 0)) return -EINVAL;

  const maxSge = load<u32>(init + INIT_MAX_SEND_SGE);
  // rxe reports max_inline_data as max(inline asked, send SGE bytes); keep both in the slot
  const maxInline = max(load<u32>(init + INIT_MAX_INLINE_DATA), maxSge * 16);
  const sqCap = nextPow2(max<u32>(load<u32>(init + INIT_MAX_SEND_WR), 1));
  const sqSlot = sqSlotSize(maxSge, maxInline);
  const sqBytes = ringBytes(sqCap, sqSlot);
  const rqSge = load<u32>(init + INIT_MAX_RECV_SGE);
  const rqCap = nextPow2(max<u32>(load<u32>(init + INIT_MAX_RECV_WR), 1));
  const rqSlot = rqSlotSize(rqSge);
  const rqBytes = srq ? 0 : ringBytes(rqCap, rqSlot);

  const idx = poolTake(qpPool);
  if (idx < 0) return -EINVAL; // rxe_pool.c: too many objects is EINVAL
  const sq = arenaAlloc(ringArena, sqBytes);
  const rq: usize = srq ? 0 : arenaAlloc(ringArena, rqBytes);
  if (!sq || (!srq && !rq)) {
    if (sq) arenaFree(ringArena, sq, sqBytes);
    if (rq) arenaFree(ringArena, rq, rqBytes);
    poolGive(qpPool, <u32>idx);
    return -ENOMEM;
  }
  const h = poolMint(qpPool, <u32>idx);
  const q = poolSlot(qpPool, <u32>idx);
  ringInit(sq, sqCap, sqSlot, RING_SQ, h);
  if (rq) ringInit(rq, rqCap, rqSlot, RING_RQ, h);
  store<u32>(q + QP_NUM, qpnOf(<u32>idx));
  store<u32>(q + QP_TYPE, type);
  store<u32>(q + QP_PD, pdh);
  store<u32>(q + QP_SEND_CQ, load<u32>(init + INIT_SEND_CQ));
  store<u32>(q + QP_RECV_CQ, load<u32>(init + INIT_RECV_CQ));
  store<u32>(q + QP_SRQ, srqh);
  store<u32>(q + QP_SQ, <u32>sq);
  store<u32>(q + QP_RQ, <u32>rq);
  store<u32>(q + QP_SQ_SIG_ALL, load<u32>(init + INIT_SQ_SIG_ALL) ? 1 : 0);
  store<u32>(q + QP_SQ_BYTES, sqBytes);
  store<u32>(q + QP_RQ_BYTES, rqBytes);
  const a = q + QP_ATTR;
  store<u32>(a + ATTR_PATH_MTU, DEFAULT_PATH_MTU);
  store<u32>(a + ATTR_PORT_NUM, 1);
  store<u32>(a + ATTR_MAX_SEND_WR, sqCap);
  store<u32>(a + ATTR_MAX_RECV_WR, srq ? 0 : rqCap);
  store<u32>(a + ATTR_MAX_SEND_SGE, maxSge);
  store<u32>(a + ATTR_MAX_RECV_SGE, srq ? 0 : rqSge);
  store<u32>(a + ATTR_MAX_INLINE_DATA, maxInline);
  qpSportInit(q);
  useInc(pd);
  useInc(scq);
  useInc(rcq);
  if (srq) useInc(srq);
  return <i32>h;
}

/** ibv_destroy_qp: outstanding WQEs vanish without completions; EBUSY while attached to a multicast group. */
export function qpDestroy(h: u32): i32 {
  const q = qpFind(h);
  if (!q) return -EINVAL;
  if (useCount(q)) return -EBUSY; // ib_destroy_qp: qp->usecnt (multicast attachments)
  arenaFree(ringArena, <usize>load<u32>(q + QP_SQ), load<u32>(q + QP_SQ_BYTES));
  if (load<u32>(q + QP_RQ)) arenaFree(ringArena, <usize>load<u32>(q + QP_RQ), load<u32>(q + QP_RQ_BYTES));
  const pd = pdFind(load<u32>(q + QP_PD));
  if (pd) useDec(pd);
  const scq = cqFind(load<u32>(q + QP_SEND_CQ));
  if (scq) useDec(scq);
  const rcq = cqFind(load<u32>(q + QP_RECV_CQ));
  if (rcq) useDec(rcq);
  const srq = srqFind(load<u32>(q + QP_SRQ));
  if (srq) useDec(srq);
  budgetForget(slotIndex(qpPool, q)); // its share of the in-flight budget (sched/budget.ts)
  poolGive(qpPool, slotIndex(qpPool, q));
  return 0;
}
