// Responder storage outside the QP record (rxe's qp->resp.resources and
// qp->resp.srq_wqe): per QP one block, carved for every QP at once, holding a
// copy of the SRQ receive WQE in use, the pending-ACK slot, and the ring of
// responder resources. A resource remembers one READ, atomic, ATOMIC_WRITE or
// FLUSH request so its response can be sent later (the TX ring may be full) and
// sent again for a duplicate without executing the request twice.
import { allocZeroed } from "../mem/alloc";
import { cfg, CFG_MAX_QP, CFG_MAX_RD_ATOM, CFG_MAX_SRQ_SGE } from "../verbs/config";
import { qpIndex, ATTR_MAX_DEST_RD_ATOMIC, QP_ATTR } from "../verbs/qp";
import { RWQE_HDR, SGE_SIZE } from "../verbs/wqe";
import { psn_distance } from "../wire/psn";

// ---- per-QP block header ----
export const XB_ACK_SYN: usize = 0; // u32 pending ACK/NAK: syndrome | ACK_PENDING, 0 = none
export const XB_ACK_PSN: usize = 4; // u32 its PSN
export const XB_ACK_MSN: usize = 8; // u32 the MSN when it was decided
export const XB_ACK_SEQ: usize = 12; // u32 its place in the response order
export const XB_SEQ: usize = 16; // u32 next response sequence number
export const XB_PENDING: usize = 20; // u32 resources with a response to send
export const XB_READ_TX: usize = 24; // u32 TX producer index after the last READ response packet (its payload is the MR)
export const XB_READ_TX_VALID: usize = 28; // u32 1 while XB_READ_TX may not be released yet
export const XB_ACK_HELD: usize = 32; // u32 1 while the QP is on the held-ACK list (responder_send.ts ackHold)
export const XB_WQE: usize = 64; // the SRQ receive WQE copy (an SRQ slot: header + max_srq_sge SGEs)

export const ACK_PENDING: u32 = 0x100;

// ---- one resource, 64 bytes ----
export const RES_TYPE: usize = 0; // u32 0 free, else the request class bit (M_READ, M_ATOMIC, M_ATOMIC_WRITE, M_FLUSH)
export const RES_FLAGS: usize = 4; // u32 RESF_*
export const RES_FIRST_PSN: usize = 8; // u32
export const RES_LAST_PSN: usize = 12; // u32
export const RES_CUR_PSN: usize = 16; // u32 next response PSN
export const RES_RKEY: usize = 20; // u32 READ
export const RES_VA: usize = 24; // u64 READ: next byte to send
export const RES_VA_ORG: usize = 32; // u64 READ: start of the original range (the window retries must stay in)
export const RES_RESID: usize = 40; // u32 READ: bytes left to send
export const RES_LENGTH: usize = 44; // u32 READ: length of the original request
export const RES_ORIG: usize = 48; // u64 atomic: the original remote value
export const RES_SEQ: usize = 56; // u32 place in the response order
export const RES_MSN: usize = 60; // u32 MSN carried by the response
export const RES_SIZE: u32 = 64;

export const RESF_PENDING: u32 = 1; // a response (or the rest of a READ stream) waits to be sent
export const RESF_STARTED: u32 = 2; // READ: the FIRST/ONLY packet is out, next is MIDDLE/LAST
export const RESF_REPLAY: u32 = 4; // answering a duplicate

let blocks: usize = 0;
let blockSize: u32 = 0;
let blockCount: u32 = 0;
/** Offset of the resource ring in a block (after the SRQ WQE copy). */
let resOff: usize = 0;

/** Offset of the resource ring in a block: after the header and the SRQ WQE copy, on a 64-byte line. */
export function respLayout(maxSrqSge: u32): usize {
  return (XB_WQE + <usize>(RWQE_HDR + max<u32>(maxSrqSge, 1) * SGE_SIZE) + 63) & ~63;
}

/**
 * Carves the blocks for every QP (one growth of memory). The engine may call
 * this at open; otherwise the first request that needs the storage does.
 */
export function responderInit(): void {
  if (blocks) return;
  blockCount = cfg(CFG_MAX_QP);
  resOff = respLayout(cfg(CFG_MAX_SRQ_SGE));
  blockSize = <u32>resOff + resCapacity() * RES_SIZE;
  blocks = allocZeroed(<usize>blockCount * blockSize);
}

/** Capacity of a QP's resource ring (max_dest_rd_atomic is never larger). */
export function resCapacity(): u32 { return max<u32>(cfg(CFG_MAX_RD_ATOM), 1); }

/** Resources in use on `qp`: its max_dest_rd_atomic. */
@inline export function resCount(qp: usize): u32 {
  return min<u32>(load<u32>(qp + QP_ATTR + ATTR_MAX_DEST_RD_ATOMIC), resCapacity());
}

/** The responder block of QP record `qp`. */
export function respBlock(qp: usize): usize {
  if (!blocks) responderInit();
  return blocks + <usize>qpIndex(qp) * blockSize;
}

/** Forgets everything of a QP's block (the QP was reset or created). */
export function respBlockReset(b: usize): void {
  memory.fill(b, 0, blockSize);
}

/** Resource `i` of block `b` (i below resCapacity()). */
@inline export function resEntry(b: usize, i: u32): usize { return b + resOff + <usize>i * RES_SIZE; }

/** For specs: lay out a block of the caller's own at resource offset `off`. */
export function respUseLayout(off: usize): void { resOff = off; }

/** rxe find_resource: the resource whose PSN range holds `psn`, or 0. */
export function resFind(b: usize, n: u32, psn: u32): usize {
  for (let i: u32 = 0; i < n; i++) {
    const r = resEntry(b, i);
    if (!load<u32>(r + RES_TYPE)) continue;
    if (psn_distance(psn, load<u32>(r + RES_FIRST_PSN)) >= 0 && psn_distance(psn, load<u32>(r + RES_LAST_PSN)) <= 0) return r;
  }
  return 0;
}

/** Gives `r` the next place in the response order and marks it pending. */
export function resQueue(b: usize, r: usize): void {
  if (!(load<u32>(r + RES_FLAGS) & RESF_PENDING)) store<u32>(b + XB_PENDING, load<u32>(b + XB_PENDING) + 1);
  store<u32>(r + RES_FLAGS, load<u32>(r + RES_FLAGS) | RESF_PENDING);
  const s = load<u32>(b + XB_SEQ);
  store<u32>(r + RES_SEQ, s);
  store<u32>(b + XB_SEQ, s + 1);
}

/** The response of `r` is fully sent (or abandoned). */
export function resDone(b: usize, r: usize): void {
  if (load<u32>(r + RES_FLAGS) & RESF_PENDING) store<u32>(b + XB_PENDING, load<u32>(b + XB_PENDING) - 1);
  store<u32>(r + RES_FLAGS, load<u32>(r + RES_FLAGS) & ~RESF_PENDING);
}

/** The pending resource queued first, or 0. */
export function resOldestPending(b: usize, n: u32): usize {
  if (!load<u32>(b + XB_PENDING)) return 0;
  let best: usize = 0;
  let bestSeq: u32 = 0;
  for (let i: u32 = 0; i < n; i++) {
    const r = resEntry(b, i);
    if (!(load<u32>(r + RES_FLAGS) & RESF_PENDING)) continue;
    const s = load<u32>(r + RES_SEQ);
    if (!best || <i32>(s - bestSeq) < 0) {
      best = r;
      bestSeq = s;
    }
  }
  return best;
}

/** Queues (or replaces: ACKs coalesce) the pending ACK/NAK. */
export function ackQueue(b: usize, syndrome: u32, psn: u32, msn: u32): void {
  store<u32>(b + XB_ACK_SYN, (syndrome & 0xff) | ACK_PENDING);
  store<u32>(b + XB_ACK_PSN, psn);
  store<u32>(b + XB_ACK_MSN, msn);
  const s = load<u32>(b + XB_SEQ);
  store<u32>(b + XB_ACK_SEQ, s);
  store<u32>(b + XB_SEQ, s + 1);
}
