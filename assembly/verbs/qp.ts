// Queue pairs: a 512-byte pool record (public part the host reads, ibv_qp_attr
// block, device-owned transport state) plus SQ and RQ rings from the ring arena.
import { arenaAlloc, arenaFree } from "../mem/arena";
import { EINVAL, ENOMEM, EOPNOTSUPP, EPERM } from "../mem/errno";
import { pdFind } from "../mem/pd";
import { Pool, poolFind, poolGive, poolInit, poolMint, poolSlot, poolTake, slotIndex, useDec, useInc, SLOT_HANDLE } from "../mem/pool";
import { cfg, CFG_MAX_INLINE, CFG_MAX_QP_WR, CFG_MAX_SGE, CFG_QPN_BASE } from "./config";
import { cqFind } from "./cq";
import { mtuBytes, MTU_256, QPT_RAW_PACKET, QPT_RC, QPT_UC, QPT_UD } from "./enums";
import { nextPow2 } from "../mem/pow2";
import { ringArena, ringBytes, ringInit, RING_RQ, RING_SQ } from "../mem/ring";
import { gsiSlot, GSI_QPN } from "./gsi";
import { srqFind } from "./srq";
import { rqSlotSize, sqSlotSize } from "./wqe";

// Public part
export const QP_NUM: usize = 16; // u32 QP number
export const QP_TYPE: usize = 20; // u32 ibv_qp_type
export const QP_PD: usize = 24; // u32 PD handle
export const QP_SEND_CQ: usize = 28; // u32 CQ handle
export const QP_RECV_CQ: usize = 32; // u32 CQ handle
export const QP_SRQ: usize = 36; // u32 SRQ handle, 0 = none
export const QP_SQ: usize = 40; // u32 SQ ring address
export const QP_RQ: usize = 44; // u32 RQ ring address, 0 with an SRQ
export const QP_SQ_SIG_ALL: usize = 48; // u32
export const QP_FLAGS: usize = 52; // u32 QP_FLAG_*
export const QP_SQ_BYTES: usize = 56; // u32
export const QP_RQ_BYTES: usize = 60; // u32
export const QP_ATTR: usize = 64; // ibv_qp_attr block (ATTR_* offsets), 256 bytes
// Device-owned transport state (the RC/UC/UD engines own these lines)
export const QP_REQ: usize = 320; // requester: psn, opcode, wqe index, wait_psn, noack_pkts, rd_atomic credits
export const QP_RESP: usize = 384; // responder: psn, ack_psn, opcode, msn, sent_psn_nak, resources
export const QP_COMP: usize = 448; // completer: psn, opcode, retry_cnt, rnr_retry, timer deadline, tx/timer links
export const QP_SLOT: u32 = 512;

// The three transport lines, declared here once for every file that touches
// them: the engines own their meaning; the verbs layer zeroes them at RESET and
// keeps REQ_WQE_INDEX at the SQ consumer index when it flushes.

// Requester line (offsets from QP_REQ; transport/requester.ts)
export const REQ_FLAGS: usize = 0; // u32 RF_*
export const REQ_PSN: usize = 4; // u32 next PSN to send
export const REQ_WQE_INDEX: usize = 8; // u32 SQ index of the next WQE to start
export const REQ_OPCODE: usize = 12; // i32 opcode of the last packet sent, -1 between messages
export const REQ_NOACK: usize = 16; // u32 packets sent since the last AckReq
export const REQ_RD_ATOMIC: usize = 20; // u32 READ/atomic WQEs holding a max_rd_atomic credit

export const RF_INIT: u32 = 1; // the requester and completer lines are set up from the QP attributes
export const RF_NEED_RETRY: u32 = 2; // go back N at the next run
export const RF_WAIT_RNR: u32 = 4; // an RNR NAK came in: no retry until the RNR timer fires
export const RF_WAIT_PSN: u32 = 8; // stopped by the PSN window
export const RF_WAIT_FENCE: u32 = 16; // stopped by a fence
export const RF_NEED_RD_ATOMIC: u32 = 32; // stopped by max_rd_atomic

// Responder line (offsets from QP_RESP; transport/responder.ts)
export const RS_FLAGS: usize = 0; // u32 RSF_*
export const RS_PSN: usize = 4; // u32 next expected request PSN
export const RS_ACK_PSN: usize = 8; // u32 PSN after the last SEND/WRITE/atomic executed
export const RS_OPCODE: usize = 12; // u32 opcode of the last packet executed | RS_OPCODE_VALID, 0 = none
export const RS_MSN: usize = 16; // u32 message sequence number (24 bits on the wire)
export const RS_WQE: usize = 20; // u32 receive WQE being filled (RQ slot or the SRQ copy), 0 = none
export const RS_VA: usize = 24; // u64 RDMA WRITE: where the next byte goes
export const RS_RKEY: usize = 32; // u32 RDMA WRITE: its R_Key (0 for a zero-length request)
export const RS_RESID: usize = 36; // u32 bytes the request still carries
export const RS_LENGTH: usize = 40; // u32 the RETH DMA length of the request
export const RS_RECV_LEN: usize = 44; // u32 bytes placed into the receive WQE
export const RS_WQE_LEN: usize = 48; // u32 bytes the receive WQE holds (sum of its SGEs)
export const RS_RES_HEAD: usize = 52; // u32 next resource to (re)use
export const RS_LINE: u32 = 64;

export const RSF_INIT: u32 = 1; // the line is set up from the QP attributes
export const RSF_SENT_PSN_NAK: u32 = 2; // one PSN-sequence NAK per gap
export const RSF_DROP_MSG: u32 = 4; // UC: the rest of this message is dropped (a packet was lost or refused)
export const RS_OPCODE_VALID: u32 = 0x100;

// Completer line (offsets from QP_COMP; transport/completer.ts, set up with the requester's)
export const COMP_PSN: usize = 0; // u32 oldest PSN not yet acknowledged
export const COMP_OPCODE: usize = 4; // i32 last response opcode in a multi-packet READ, -1 otherwise
export const COMP_RETRY_CNT: usize = 8; // u32 retries left
export const COMP_RNR_RETRY: usize = 12; // u32 RNR retries left (7 = infinite)
export const COMP_FLAGS: usize = 16; // u32 CF_*

export const CF_STARTED_RETRY: u32 = 1;

export const QP_FLAG_SQ_DRAINING: u32 = 1;

// ibv_qp_attr block: the same layout is the argument of qp_modify and the
// attribute part of the QP record (state lives at QP_ATTR + ATTR_QP_STATE).
export const ATTR_QP_STATE: usize = 0;
export const ATTR_CUR_QP_STATE: usize = 4;
export const ATTR_PATH_MTU: usize = 8;
export const ATTR_PATH_MIG_STATE: usize = 12;
export const ATTR_QKEY: usize = 16;
export const ATTR_RQ_PSN: usize = 20;
export const ATTR_SQ_PSN: usize = 24;
export const ATTR_DEST_QP_NUM: usize = 28;
export const ATTR_QP_ACCESS_FLAGS: usize = 32;
export const ATTR_PKEY_INDEX: usize = 36;
export const ATTR_ALT_PKEY_INDEX: usize = 40;
export const ATTR_EN_SQD_ASYNC_NOTIFY: usize = 44;
export const ATTR_SQ_DRAINING: usize = 48;
export const ATTR_MAX_RD_ATOMIC: usize = 52;
export const ATTR_MAX_DEST_RD_ATOMIC: usize = 56;
export const ATTR_MIN_RNR_TIMER: usize = 60;
export const ATTR_PORT_NUM: usize = 64;
export const ATTR_TIMEOUT: usize = 68;
export const ATTR_RETRY_CNT: usize = 72;
export const ATTR_RNR_RETRY: usize = 76;
export const ATTR_ALT_PORT_NUM: usize = 80;
export const ATTR_ALT_TIMEOUT: usize = 84;
export const ATTR_RATE_LIMIT: usize = 88;
export const ATTR_AH: usize = 96; // AV, 64 bytes
export const ATTR_ALT_AH: usize = 160; // AV, 64 bytes
export const ATTR_MAX_SEND_WR: usize = 224; // ibv_qp_cap as granted
export const ATTR_MAX_RECV_WR: usize = 228;
export const ATTR_MAX_SEND_SGE: usize = 232;
export const ATTR_MAX_RECV_SGE: usize = 236;
export const ATTR_MAX_INLINE_DATA: usize = 240;
export const ATTR_SIZE: u32 = 256;

// qp_create argument (ibv_qp_init_attr)
export const INIT_QP_TYPE: usize = 0;
export const INIT_SEND_CQ: usize = 4;
export const INIT_RECV_CQ: usize = 8;
export const INIT_SRQ: usize = 12;
export const INIT_MAX_SEND_WR: usize = 16;
export const INIT_MAX_RECV_WR: usize = 20;
export const INIT_MAX_SEND_SGE: usize = 24;
export const INIT_MAX_RECV_SGE: usize = 28;
export const INIT_MAX_INLINE_DATA: usize = 32;
export const INIT_SQ_SIG_ALL: usize = 36;

export const DEFAULT_PATH_MTU: u32 = MTU_256; // as rxe_qp_init_misc

export const qpPool = changetype<Pool>(memory.data(offsetof<Pool>()));

export function qpPoolInit(base: usize, cap: u32): void { poolInit(qpPool, base, QP_SLOT, cap); }

export function qpFind(h: u32): usize { return poolFind(qpPool, h); }

/** The QP's slot index (0 .. max_qp - 1): it names the QP's arbiter slot, timers and engine storage. */
@inline export function qpIndex(slot: usize): u32 { return slotIndex(qpPool, slot); }
/** The QP record in slot `idx`, in use or not (SLOT_HANDLE says which). */
@inline export function qpAt(idx: u32): usize { return poolSlot(qpPool, idx); }

/** The QP with number `qpn` (for the receive path), or 0. QP1 is the GSI (gsi.ts), whatever slot it has. */
export function qpByNum(qpn: u32): usize {
  if (qpn == GSI_QPN) return gsiSlot;
  const idx = qpn - cfg(CFG_QPN_BASE);
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
  store<u32>(q + QP_NUM, cfg(CFG_QPN_BASE) + <u32>idx);
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
  useInc(pd);
  useInc(scq);
  useInc(rcq);
  if (srq) useInc(srq);
  return <i32>h;
}

/** ibv_destroy_qp: outstanding WQEs vanish without completions. */
export function qpDestroy(h: u32): i32 {
  const q = qpFind(h);
  if (!q) return -EINVAL;
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
  poolGive(qpPool, slotIndex(qpPool, q));
  return 0;
}
