// The responder's transmit half (rxe_resp.c read_reply, send_ack,
// send_atomic_ack): what the receive state machine (responder.ts) decided —
// the pending ACK/NAK and the responder resources (resources.ts) — goes out
// when the sender loop reaches the QP, in the order it was decided. A full TX
// ring delays a response, never loses it. READ response payloads point into
// the MR (zero copy), which is why a write must wait until they are sent.
import { SLOT_HANDLE } from "../mem/pool";
import { rkeyIova, rkeyMr, rkeyResolve } from "../mem/rkey";
import { mrCopy, mrSpan } from "../mem/mr";
import { txBounce } from "./requester";
import { ACCESS_REMOTE_READ } from "../mem/access";
import { ringCons, ringProd } from "../mem/ring";
import { QpState, QPT_RC, WC_REM_ACCESS_ERR } from "../verbs/enums";
import { qpAt, qpIndex, qpMtuBytes, qpState, ATTR_AH, ATTR_DEST_QP_NUM, QP_ATTR, QP_PD, QP_RESP, QP_TYPE, RS_FLAGS, RS_MSN, RSF_INIT } from "../verbs/qp";
import { aeth_build, AETH_ACK_UNLIMITED, AETH_NAK_REM_ACC_ERR } from "../wire/aeth";
import { atmack_build } from "../wire/atmack";
import { bth_build } from "../wire/bth";
import {
  opcode_offset, HDR_AETH, HDR_ATMACK, M_ATOMIC, M_READ, OP_ACK, OP_ATOMIC_ACK, OP_READ_RESP_FIRST, OP_READ_RESP_LAST,
  OP_READ_RESP_MIDDLE, OP_READ_RESP_ONLY, TR_RC,
} from "../wire/opcode";
import { psn_next } from "../wire/psn";
import { txReserve, txRingAddr, txSend, TXD_HDR } from "./net";
import { qpToError } from "./qp_error";
import { scheduleQp } from "./qp_sched";
import {
  ackQueue, resCount, resDone, resEntry, resOldestPending, respBlock, ACK_PENDING, RESF_PENDING, RESF_STARTED, RES_CUR_PSN,
  RES_FLAGS, RES_LENGTH, RES_MSN, RES_ORIG, RES_RESID, RES_RKEY, RES_SEQ, RES_TYPE, RES_VA, XB_ACK_MSN, XB_ACK_PSN,
  XB_ACK_HELD, XB_ACK_SEQ, XB_ACK_SYN, XB_PENDING, XB_READ_TX, XB_READ_TX_VALID,
} from "./resources";

const PKEY_DEFAULT: u32 = 0xffff;

/**
 * Some READ response data of this QP is not on its way yet: not in the TX ring,
 * or in a descriptor the host has not released (the payload is read from the
 * MR only when the host sends it: zero copy).
 */
export function readPending(qp: usize, b: usize): bool {
  if (load<u32>(b + XB_READ_TX_VALID)) {
    if (<i32>(ringCons(txRingAddr()) - load<u32>(b + XB_READ_TX)) < 0) return true;
    store<u32>(b + XB_READ_TX_VALID, 0);
  }
  if (!load<u32>(b + XB_PENDING)) return false;
  const n = resCount(qp);
  for (let i: u32 = 0; i < n; i++) {
    const r = resEntry(b, i);
    if (load<u32>(r + RES_TYPE) == M_READ && (load<u32>(r + RES_FLAGS) & RESF_PENDING)) return true;
  }
  return false;
}

@inline function destQpn(qp: usize): u32 { return load<u32>(qp + QP_ATTR + ATTR_DEST_QP_NUM); }

/** Writes BTH (+AETH) of a response into a reserved descriptor; returns the header pointer. */
function respHeaders(desc: usize, qp: usize, op: u32, psn: u32, syndrome: u32, msn: u32): usize {
  const h = desc + TXD_HDR;
  bth_build(h, op, 0, 0, 0, PKEY_DEFAULT, 0, 0, destQpn(qp), 0, psn);
  const ao = opcode_offset(op, HDR_AETH);
  if (ao >= 0) aeth_build(h + <usize>ao, syndrome, msn & 0xffffff);
  return h;
}

/** Sends the pending ACK/NAK; false when the TX ring is full. */
function sendAck(qp: usize, b: usize): bool {
  const desc = txReserve();
  if (!desc) return false;
  const op = TR_RC | OP_ACK;
  respHeaders(desc, qp, op, load<u32>(b + XB_ACK_PSN), load<u32>(b + XB_ACK_SYN) & 0xff, load<u32>(b + XB_ACK_MSN));
  store<u32>(b + XB_ACK_SYN, 0);
  txSend(desc, qp, qp + QP_ATTR + ATTR_AH, op, 0, 0);
  return true;
}

/** Sends the next packet of resource `r`; -1 when the TX ring is full, 0 when the response is abandoned, 1 sent. */
function sendRes(qp: usize, b: usize, r: usize): i32 {
  const t = load<u32>(r + RES_TYPE);
  const psn = load<u32>(r + RES_CUR_PSN);
  const msn = load<u32>(r + RES_MSN);
  if (t != M_READ) {
    const desc = txReserve();
    if (!desc) return -1;
    // atomics get an ATOMIC ACK; FLUSH and ATOMIC_WRITE a zero-length READ RESPONSE ONLY (as rxe)
    const op = TR_RC | (t == M_ATOMIC ? OP_ATOMIC_ACK : OP_READ_RESP_ONLY);
    const h = respHeaders(desc, qp, op, psn, AETH_ACK_UNLIMITED, msn);
    if (t == M_ATOMIC) atmack_build(h + <usize>opcode_offset(op, HDR_ATMACK), load<u64>(r + RES_ORIG));
    resDone(b, r);
    txSend(desc, qp, qp + QP_ATTR + ATTR_AH, op, 0, 0);
    return 1;
  }
  const mtu = qpMtuBytes(qp);
  const resid = load<u32>(r + RES_RESID);
  const started = (load<u32>(r + RES_FLAGS) & RESF_STARTED) != 0;
  const op = TR_RC | (!started ? (resid <= mtu ? OP_READ_RESP_ONLY : OP_READ_RESP_FIRST)
    : (resid > mtu ? OP_READ_RESP_MIDDLE : OP_READ_RESP_LAST));
  const n = min<u32>(resid, mtu);
  const va = load<u64>(r + RES_VA);
  let src: usize = 0;
  let mr: usize = 0;
  let iova: u64 = 0;
  if (load<u32>(r + RES_LENGTH) != 0) {
    src = rkeyResolve(load<u32>(r + RES_RKEY), load<u32>(qp + SLOT_HANDLE), load<u32>(qp + QP_PD), va, <u64>n, ACCESS_REMOTE_READ);
    mr = rkeyMr();
    iova = rkeyIova();
  }
  if (load<u32>(r + RES_LENGTH) != 0 && !src) {
    // the MR went away since the request was accepted (rxe_recheck_mr): class C
    resDone(b, r);
    ackQueue(b, AETH_NAK_REM_ACC_ERR, psn, load<u32>(qp + QP_RESP + RS_MSN));
    if (qpState(qp) != QpState.ERR) qpToError(qp, WC_REM_ACCESS_ERR);
    return 0;
  }
  const desc = txReserve();
  if (!desc) return -1;
  if (src && !mrSpan(mr, iova, n)) {
    // the bytes cross pages of a scattered fast-registration MR: gathered into the descriptor's bounce slot
    src = txBounce(desc);
    mrCopy(mr, iova, src, n, false);
  }
  respHeaders(desc, qp, op, psn, AETH_ACK_UNLIMITED, msn);
  store<u64>(r + RES_VA, va + <u64>n);
  store<u32>(r + RES_RESID, resid - n);
  store<u32>(r + RES_CUR_PSN, psn_next(psn, 1));
  store<u32>(r + RES_FLAGS, load<u32>(r + RES_FLAGS) | RESF_STARTED);
  if (resid - n == 0) resDone(b, r);
  txSend(desc, qp, qp + QP_ATTR + ATTR_AH, op, src, n);
  if (n) {
    store<u32>(b + XB_READ_TX, ringProd(txRingAddr()));
    store<u32>(b + XB_READ_TX_VALID, 1);
  }
  return 1;
}

/** Sends pending ACKs / READ responses of `qp`, up to `budget` packets; returns how many. */
export function responderSend(qp: usize, budget: i32): i32 {
  if (!(load<u32>(qp + QP_RESP + RS_FLAGS) & RSF_INIT) || load<u32>(qp + QP_TYPE) != QPT_RC) return 0;
  const b = respBlock(qp);
  const inErr = qpState(qp) == QpState.ERR;
  const n = resCount(qp);
  let sent = 0;
  while (sent < budget) {
    let r = resOldestPending(b, n);
    if (r && inErr) {
      // a QP in ERR answers nothing more but the NAK that put it there
      for (let i: u32 = 0; i < n; i++) resDone(b, resEntry(b, i));
      r = 0;
    }
    const ackPending = (load<u32>(b + XB_ACK_SYN) & ACK_PENDING) != 0;
    if (!r && !ackPending) break;
    if (!r && holding && (load<u32>(b + XB_ACK_SYN) & 0xff) == AETH_ACK_UNLIMITED && ackHoldAdd(qp, b)) return sent;
    if (ackPending && (!r || <i32>(load<u32>(b + XB_ACK_SEQ) - load<u32>(r + RES_SEQ)) < 0)) {
      if (!sendAck(qp, b)) break;
      sent++;
      continue;
    }
    const k = sendRes(qp, b, r);
    if (k < 0) break;
    sent += k;
  }
  if ((load<u32>(b + XB_ACK_SYN) & ACK_PENDING) || load<u32>(b + XB_PENDING)) scheduleQp(qp);
  return sent;
}


// ---- Held ACKs: a plain ACK waits for the host's flush, behind what the turn sends
//
// rxe answers every request that asks for an ACK at once (rxe_resp.c send_ack from the
// responder task). On the Node datapath the host can say, for the length of one turn of its
// event loop, "hold plain ACKs": a received batch's ACKs then stay pending (coalesced per QP
// as always: one ACK for the last PSN) until the host's deferred flush at the end of that turn,
// and leave AFTER the requests the application posted in reaction to the batch's completions
// (a SEND answering a SEND): the two datagrams to the peer then share one batched send (one UDP
// GSO send on loopback: one wake-up at the peer, the request first). The delay is bounded by
// the turn (tens of µs); the peer's ACK timeout is 4.096 µs x 2^timeout (the exponent the
// pingpongs, perftest and softroce use, 14, is 67 ms). NAKs, RNR NAKs, READ and atomic responses
// are never held, nor an ACK ordered before a response (the response order stays rxe's).

let holding = false;
let heldList: usize = 0;
let heldCap: u32 = 0;
let heldCount: u32 = 0;

/** Carves the held-ACK list (one slot per QP) at open. */
export function ackHoldInit(maxQp: u32): void {
  if (heldList) return;
  heldCap = maxQp;
  heldList = heap.alloc(<usize>max<u32>(maxQp, 1) << 2);
  heldCount = 0;
}

/** Puts `qp` on the held list; false (send now) when holding is off or the list is full. */
function ackHoldAdd(qp: usize, b: usize): bool {
  if (load<u32>(b + XB_ACK_HELD)) return true;
  if (heldCount >= heldCap) return false;
  store<u32>(b + XB_ACK_HELD, 1);
  store<u32>(heldList + (<usize>heldCount << 2), qpIndex(qp));
  heldCount++;
  return true;
}

/** Starts (on) or ends holding plain ACKs; ending queues every held QP for the sender. */
export function ackHold(on: bool): void {
  holding = on && heldList != 0;
  if (on) return;
  for (let i: u32 = 0; i < heldCount; i++) {
    const qp = qpAt(load<u32>(heldList + (<usize>i << 2)));
    if (!load<u32>(qp + SLOT_HANDLE)) continue; // destroyed meanwhile
    const b = respBlock(qp);
    store<u32>(b + XB_ACK_HELD, 0);
    scheduleQp(qp);
  }
  heldCount = 0;
}

/** Plain ACKs held now (QPs on the list). */
export function ackHeldCount(): u32 { return heldCount; }
