// RC responder (rxe_resp.c): checks and executes request packets, consumes
// receive WQEs, writes receive completions and decides every ACK, NAK, READ
// response and atomic ACK. A request is handled at once, on arrival, by the
// state machine below (an enum, a name table and one step function per state;
// every transition is counted). What has to be sent is only recorded — the
// pending-ACK slot and the responder resources (resources.ts) — and
// responderSend emits it when the sender loop reaches this QP, so a full TX
// ring delays a response but never loses it.
import { mrCheck, mrFind, MR_ACCESS, MR_OK, MR_PD } from "../mem/mr";
import {
  ACCESS_FLUSH_GLOBAL, ACCESS_FLUSH_PERSISTENT, ACCESS_LOCAL_WRITE, ACCESS_REMOTE_ATOMIC, ACCESS_REMOTE_READ,
  ACCESS_REMOTE_WRITE,
} from "../mem/access";
import { count, Counter } from "../verbs/counters";
import {
  cqCommit, cqFind, cqReserve, CQE_SGID, CQE_BYTE_LEN, CQE_IMM_DATA, CQE_OPCODE, CQE_QP_NUM, CQE_SOLICITED, CQE_SRC_QP, CQE_STATUS,
  CQE_WC_FLAGS, CQE_WR_ID,
} from "../verbs/cq";
import {
  qpMtuBytes, qpState, ATTR_AH, ATTR_DEST_QP_NUM, ATTR_MAX_DEST_RD_ATOMIC, ATTR_MAX_RECV_SGE, ATTR_MIN_RNR_TIMER,
  ATTR_QP_ACCESS_FLAGS, ATTR_RQ_PSN, QP_ATTR, QP_NUM, QP_PD, QP_RECV_CQ, QP_RESP, QP_RQ, QP_SRQ, QP_TYPE,
  RS_ACK_PSN, RS_FLAGS, RS_LENGTH, RS_LINE, RS_MSN, RS_OPCODE, RS_OPCODE_VALID, RS_PSN, RS_RECV_LEN, RS_RES_HEAD, RS_RESID,
  RS_RKEY, RS_VA, RS_WQE, RS_WQE_LEN, RSF_DROP_MSG, RSF_INIT, RSF_SENT_PSN_NAK,
} from "../verbs/qp";
import {
  QpState, QPT_RC, QPT_UC, QPT_UD, WC_FLAG_GRH, WC_FLAG_WITH_IMM, WC_LOC_LEN_ERR, WC_LOC_QP_OP_ERR, WC_RECV,
  WC_RECV_RDMA_WITH_IMM, WC_REM_ACCESS_ERR, WC_REM_INV_REQ_ERR, WC_SUCCESS,
} from "../verbs/enums";
import { activeMtuBytes } from "../verbs/config";
import { deth_srcqp } from "../wire/deth";
import { ip4_build, ip6_build, IP4_FLAG_DF } from "../wire/ip";
import { RXM_DST, RXM_FLOW_LABEL, RXM_IP_FLAGS, RXM_IP_ID, RXM_SRC, RXM_TOS, RXM_TTL } from "./net";
import { ringCons, ringCount, ringEntry, ringProd, ringSetCons, RING_SLOT } from "../mem/ring";
import { srqFind, srqTake, SRQ_MAX_SGE } from "../verbs/srq";
import { RWQE_CUR_SGE, RWQE_HDR, RWQE_NUM_SGE, RWQE_SGE, RWQE_SGE_OFFSET, RWQE_WR_ID, SGE_ADDR, SGE_LENGTH, SGE_LKEY, SGE_SIZE } from "../verbs/wqe";
import {
  aeth_build, aeth_rnr_syndrome, AETH_ACK_UNLIMITED, AETH_NAK_INVALID_REQ, AETH_NAK_PSN_SEQ_ERROR, AETH_NAK_REM_ACC_ERR,
  AETH_NAK_REM_OP_ERR,
} from "../wire/aeth";
import { atmack_build } from "../wire/atmack";
import { atmeth_compare, atmeth_rkey, atmeth_swap_add, atmeth_va } from "../wire/atmeth";
import { bth_build, bth_padcnt } from "../wire/bth";
import { feth_placement, feth_selectivity, feth_word, FETH_PLT_GLOBAL, FETH_PLT_PERSISTENT, FETH_SEL_MR } from "../wire/feth";
import { immdt_data } from "../wire/immdt";
import {
  opcode_mask, opcode_offset, HDR_AETH, HDR_ATMACK, HDR_ATMETH, HDR_DETH, HDR_FETH, HDR_IMMDT, HDR_RETH, M_ATOMIC, M_ATOMIC_WRITE, M_COMP, M_END, M_FLUSH,
  M_DETH, M_IETH, M_IMMDT, M_MIDDLE, M_PAYLOAD, M_READ, M_RETH, M_RWR, M_SEND, M_START, M_WRITE, OP_ACK, OP_ATOMIC_ACK,
  OPCODE_RC_CMP_SWAP, OP_READ_RESP_FIRST, OP_READ_RESP_LAST, OP_READ_RESP_MIDDLE, OP_READ_RESP_ONLY, TR_RC,
} from "../wire/opcode";
import { psn_distance, psn_next, PSN_MASK } from "../wire/psn";
import { reth_len, reth_rkey, reth_va } from "../wire/reth";
import { txReserve, txRingAddr, txSend, TXD_HDR } from "./net";
import { copyData, dmaReset, Copy, TO_SGL } from "./dma";
import { qpToError } from "./qp_error";
import { scheduleQp } from "./qp_sched";
import { pktHdr, PKT_ACKREQ, PKT_BTH, PKT_IPV6, PKT_LEN, PKT_MASK, PKT_META, PKT_OPCODE, PKT_PAYLOAD, PKT_PAYLOAD_LEN, PKT_PSN, PKT_SE, PKT_SRC } from "./pkt";
import {
  ackQueue, resCapacity, resDone, resEntry, resFind, resOldestPending, respBlock, respBlockReset, resQueue, ACK_PENDING, RESF_PENDING,
  RESF_REPLAY, RESF_STARTED, RES_CUR_PSN, RES_FIRST_PSN, RES_FLAGS, RES_LAST_PSN, RES_LENGTH, RES_MSN, RES_ORIG, RES_RESID,
  RES_RKEY, RES_SEQ, RES_SIZE, RES_TYPE, RES_VA, RES_VA_ORG, XB_ACK_MSN, XB_ACK_PSN, XB_ACK_SEQ, XB_ACK_SYN, XB_PENDING,
  XB_READ_TX, XB_READ_TX_VALID, XB_WQE,
} from "./resources";


const PKEY_DEFAULT: u32 = 0xffff;

/** Responder states (rxe enum resp_states); the names double as trace vocabulary. */
export const enum RespState {
  NONE = 0,
  CHK_PSN,
  CHK_OP_SEQ,
  CHK_OP_VALID,
  CHK_RESOURCE,
  CHK_LENGTH,
  CHK_RKEY,
  EXECUTE,
  READ_REPLY,
  ATOMIC_REPLY,
  ATOMIC_WRITE_REPLY,
  PROCESS_FLUSH,
  COMPLETE,
  ACKNOWLEDGE,
  CLEANUP,
  DUPLICATE_REQUEST,
  ERR_MALFORMED_WQE,
  ERR_UNSUPPORTED_OPCODE,
  ERR_MISALIGNED_ATOMIC,
  ERR_PSN_OUT_OF_SEQ,
  ERR_MISSING_OPCODE_FIRST,
  ERR_MISSING_OPCODE_LAST_C,
  ERR_TOO_MANY_RDMA_ATM_REQ,
  ERR_RNR,
  ERR_RKEY_VIOLATION,
  ERR_INVALIDATE_RKEY,
  ERR_LENGTH,
  ERR_RECV_OVERFLOW,
  ERR_CQ_OVERFLOW,
  ERROR,
  DONE,
  COUNT,
}

/** State names in enum order, comma separated. */
export const RESP_STATE_NAMES =
  "NONE,CHK_PSN,CHK_OP_SEQ,CHK_OP_VALID,CHK_RESOURCE,CHK_LENGTH,CHK_RKEY,EXECUTE,READ_REPLY,ATOMIC_REPLY," +
  "ATOMIC_WRITE_REPLY,PROCESS_FLUSH,COMPLETE,ACKNOWLEDGE,CLEANUP,DUPLICATE_REQUEST,ERR_MALFORMED_WQE," +
  "ERR_UNSUPPORTED_OPCODE,ERR_MISALIGNED_ATOMIC,ERR_PSN_OUT_OF_SEQ,ERR_MISSING_OPCODE_FIRST," +
  "ERR_MISSING_OPCODE_LAST_C,ERR_TOO_MANY_RDMA_ATM_REQ,ERR_RNR,ERR_RKEY_VIOLATION,ERR_INVALIDATE_RKEY,ERR_LENGTH," +
  "ERR_RECV_OVERFLOW,ERR_CQ_OVERFLOW,ERROR,DONE";

/** Times each state was entered (u64 per state), since the module started. */
export const respStateCounts: usize = memory.data(8 * 32, 8);

@inline function trace(s: RespState): void {
  const p = respStateCounts + (<usize>s << 3);
  store<u64>(p, load<u64>(p) + 1);
}

export function respStateCount(s: u32): u64 { return load<u64>(respStateCounts + (<usize>s << 3)); }

// ---- the request being handled (the device is single-threaded) ----
let cQp: usize = 0;
let cPkt: usize = 0;
let cBlk: usize = 0;
let cRes: usize = 0; // resource of this READ/atomic/ATOMIC_WRITE/FLUSH
let cStatus: u32 = 0; // completion status of the receive WQE
let cSyndrome: u32 = 0; // AETH_ACK_UNLIMITED, or the NAK to send
let cGotoError = false;

@inline function rs(qp: usize, off: usize): u32 { return load<u32>(qp + QP_RESP + off); }
@inline function rsSet(qp: usize, off: usize, v: u32): void { store<u32>(qp + QP_RESP + off, v); }
@inline function attr(qp: usize, off: usize): u32 { return load<u32>(qp + QP_ATTR + off); }
@inline function pk(off: usize): u32 { return load<u32>(cPkt + off); }

/** Number of READ response packets for `len` bytes: at least one. */
@inline export function readPackets(len: u32, mtu: u32): u32 { return len == 0 ? 1 : (len + mtu - 1) / mtu; }

/** Resources in use on this QP: max_dest_rd_atomic. */
@inline function resCount(qp: usize): u32 { return min<u32>(attr(qp, ATTR_MAX_DEST_RD_ATOMIC), resCapacity()); }

/** Sets up the responder line the first time a request arrives after RESET. */
function respStart(qp: usize): usize {
  const b = respBlock(qp);
  if (!(rs(qp, RS_FLAGS) & RSF_INIT)) {
    memory.fill(qp + QP_RESP, 0, RS_LINE);
    respBlockReset(b);
    rsSet(qp, RS_FLAGS, RSF_INIT);
    rsSet(qp, RS_PSN, attr(qp, ATTR_RQ_PSN));
    rsSet(qp, RS_ACK_PSN, attr(qp, ATTR_RQ_PSN));
  }
  return b;
}

/** A validated request packet for `qp` (pkt: the packet-info record). */
export function responderRecv(qp: usize, pkt: usize): void {
  const type = load<u32>(qp + QP_TYPE);
  if (type == QPT_UC || type == QPT_UD) {
    ucudRecv(qp, pkt, type == QPT_UD);
    return;
  }
  if (type != QPT_RC) return;
  cQp = qp;
  cPkt = pkt;
  cBlk = respStart(qp);
  cRes = 0;
  cStatus = WC_SUCCESS;
  cSyndrome = AETH_ACK_UNLIMITED;
  cGotoError = false;
  let s = RespState.CHK_PSN;
  for (;;) {
    trace(s);
    switch (s) {
      case RespState.CHK_PSN: s = checkPsn(); break;
      case RespState.CHK_OP_SEQ: s = checkOpSeq(); break;
      case RespState.CHK_OP_VALID: s = checkOpValid(); break;
      case RespState.CHK_RESOURCE: s = checkResource(); break;
      case RespState.CHK_LENGTH: s = checkLength(); break;
      case RespState.CHK_RKEY: s = checkRkey(); break;
      case RespState.EXECUTE: s = execute(); break;
      case RespState.READ_REPLY: s = readReply(); break;
      case RespState.ATOMIC_REPLY: s = atomicReply(); break;
      case RespState.ATOMIC_WRITE_REPLY: s = atomicWriteReply(); break;
      case RespState.PROCESS_FLUSH: s = processFlush(); break;
      case RespState.COMPLETE: s = complete(); break;
      case RespState.ACKNOWLEDGE: s = acknowledge(); break;
      case RespState.CLEANUP: s = RespState.DONE; break;
      case RespState.DUPLICATE_REQUEST: s = duplicateRequest(); break;
      case RespState.ERR_PSN_OUT_OF_SEQ:
        // Class B: NAK with the PSN we expect, once per gap; drop the packet.
        queueAck(AETH_NAK_PSN_SEQ_ERROR, rs(qp, RS_PSN));
        s = RespState.CLEANUP;
        break;
      case RespState.ERR_TOO_MANY_RDMA_ATM_REQ:
      case RespState.ERR_MISSING_OPCODE_FIRST:
      case RespState.ERR_MISSING_OPCODE_LAST_C:
      case RespState.ERR_UNSUPPORTED_OPCODE:
      case RespState.ERR_MISALIGNED_ATOMIC:
      case RespState.ERR_LENGTH:
        s = classAC(AETH_NAK_INVALID_REQ, WC_REM_INV_REQ_ERR);
        break;
      case RespState.ERR_RECV_OVERFLOW:
        // The message does not fit the receive WQE: the requester gets an
        // Invalid Request NAK, the receiver a local length error (IBA 9.9.3;
        // rxe's copy_data reports it as a malformed WQE instead).
        s = classAC(AETH_NAK_INVALID_REQ, WC_LOC_LEN_ERR);
        break;
      case RespState.ERR_RKEY_VIOLATION:
        s = classAC(AETH_NAK_REM_ACC_ERR, WC_REM_ACCESS_ERR);
        break;
      case RespState.ERR_MALFORMED_WQE:
        s = classAC(AETH_NAK_REM_OP_ERR, WC_LOC_QP_OP_ERR);
        break;
      case RespState.ERR_INVALIDATE_RKEY:
        // Class J: complete in error and stop, the ACK itself is normal.
        cGotoError = true;
        cStatus = WC_REM_INV_REQ_ERR;
        s = RespState.COMPLETE;
        break;
      case RespState.ERR_RNR:
        // Class B: no receive WQE; the requester retries after min_rnr_timer.
        count(Counter.SEND_RNR_ERR);
        queueAck(aeth_rnr_syndrome(attr(qp, ATTR_MIN_RNR_TIMER)), pk(PKT_PSN));
        s = RespState.CLEANUP;
        break;
      case RespState.ERR_CQ_OVERFLOW:
        s = RespState.ERROR; // class G
        break;
      case RespState.ERROR:
        cGotoError = false;
        qpToError(qp, cStatus);
        finish(qp);
        return;
      case RespState.DONE:
        if (cGotoError) {
          s = RespState.ERROR;
          break;
        }
        finish(qp);
        return;
      default:
        finish(qp);
        return;
    }
  }
}

function finish(qp: usize): void {
  const b = cBlk;
  if ((load<u32>(b + XB_ACK_SYN) & ACK_PENDING) || load<u32>(b + XB_PENDING)) scheduleQp(qp);
  cQp = 0;
  cPkt = 0;
}

/** Class A/C error (rxe do_class_ac_error): NAK with `syndrome`, complete the WQE with `status`, then ERR. */
function classAC(syndrome: u32, status: u32): RespState {
  cSyndrome = syndrome;
  cStatus = status;
  cGotoError = true;
  return RespState.COMPLETE;
}

function queueAck(syndrome: u32, psn: u32): void {
  ackQueue(cBlk, syndrome, psn, rs(cQp, RS_MSN));
}

// ---- checks ----

function checkPsn(): RespState {
  const qp = cQp;
  const diff = psn_distance(pk(PKT_PSN), rs(qp, RS_PSN));
  if (diff > 0) {
    if (rs(qp, RS_FLAGS) & RSF_SENT_PSN_NAK) return RespState.CLEANUP;
    rsSet(qp, RS_FLAGS, rs(qp, RS_FLAGS) | RSF_SENT_PSN_NAK);
    count(Counter.OUT_OF_SEQ_REQUEST);
    return RespState.ERR_PSN_OUT_OF_SEQ;
  }
  if (diff < 0) {
    count(Counter.DUPLICATE_REQUEST);
    return RespState.DUPLICATE_REQUEST;
  }
  rsSet(qp, RS_FLAGS, rs(qp, RS_FLAGS) & ~RSF_SENT_PSN_NAK);
  return RespState.CHK_OP_SEQ;
}

/**
 * rxe check_op_seq for RC: inside a SEND (WRITE) message only SEND (WRITE)
 * MIDDLE/LAST may follow; outside one a MIDDLE or LAST has no FIRST.
 */
export function opSeqNext(lastMask: u32, lastValid: bool, mask: u32): RespState {
  const inMsg = lastValid && (lastMask & (M_START | M_MIDDLE)) != 0 && (lastMask & M_END) == 0;
  const cont = (mask & (M_MIDDLE | M_END)) != 0 && (mask & M_START) == 0;
  if (inMsg) {
    const kind = lastMask & (M_SEND | M_WRITE);
    if (cont && (mask & kind) != 0) return RespState.CHK_OP_VALID;
    return RespState.ERR_MISSING_OPCODE_LAST_C;
  }
  if (cont && (mask & (M_SEND | M_WRITE)) != 0) return RespState.ERR_MISSING_OPCODE_FIRST;
  return RespState.CHK_OP_VALID;
}

function checkOpSeq(): RespState {
  const last = rs(cQp, RS_OPCODE);
  const lastMask = (last & RS_OPCODE_VALID) ? opcode_mask(last & 0xff) : 0;
  return opSeqNext(lastMask, (last & RS_OPCODE_VALID) != 0, pk(PKT_MASK));
}

/** rxe check_qp_attr_access: the QP's access flags allow this operation. */
export function qpAccessAllows(flags: u32, mask: u32, fethWord: u32): bool {
  if ((mask & M_READ) && !(flags & ACCESS_REMOTE_READ)) return false;
  if ((mask & (M_WRITE | M_ATOMIC_WRITE)) && !(flags & ACCESS_REMOTE_WRITE)) return false;
  if ((mask & M_ATOMIC) && !(flags & ACCESS_REMOTE_ATOMIC)) return false;
  if (mask & M_FLUSH) {
    const t = feth_placement(fethWord);
    if ((t & FETH_PLT_GLOBAL) && !(flags & ACCESS_FLUSH_GLOBAL)) return false;
    if ((t & FETH_PLT_PERSISTENT) && !(flags & ACCESS_FLUSH_PERSISTENT)) return false;
  }
  return true;
}

function checkOpValid(): RespState {
  const mask = pk(PKT_MASK);
  const feth = (mask & M_FLUSH) ? feth_word(pktHdr(cPkt, HDR_FETH)) : 0;
  if (!qpAccessAllows(attr(cQp, ATTR_QP_ACCESS_FLAGS), mask, feth)) return RespState.ERR_UNSUPPORTED_OPCODE;
  return RespState.CHK_RESOURCE;
}

/**
 * Some READ response data of this QP is not on its way yet: not in the TX ring,
 * or in a descriptor the host has not released (the payload is read from the
 * MR only when the host sends it: zero copy).
 */
function readPending(qp: usize, b: usize): bool {
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

/**
 * A request that writes memory must not overtake an earlier READ whose data is
 * still to be sent (READ responses are read from the MR when they are built).
 * rxe cannot get here: it sends all of a READ's responses before it looks at
 * the next request. Here the rest of the READ goes out first if the TX ring
 * has room; if it has not, the request is refused with an RNR NAK (what rxe
 * answers when it cannot build a response) and comes back after the timer.
 */
function mustWaitForRead(qp: usize): bool {
  const b = cBlk;
  if (!readPending(qp, b)) return false;
  responderSend(qp, 0x7fffffff);
  return readPending(qp, b);
}

function checkResource(): RespState {
  const qp = cQp;
  const mask = pk(PKT_MASK);
  if ((mask & (M_SEND | M_WRITE | M_ATOMIC | M_ATOMIC_WRITE)) && mustWaitForRead(qp)) return RespState.ERR_RNR;
  if (qpState(qp) == QpState.ERR) return RespState.CLEANUP; // sending the READ found its MR gone
  if (mask & (M_READ | M_ATOMIC | M_ATOMIC_WRITE | M_FLUSH)) {
    // The requester keeps within max_dest_rd_atomic; the ring is simply
    // recycled. None at all is an invalid request. (rxe lets FLUSH through
    // here too, then uses a resource it does not have.)
    return resCount(qp) > 0 ? RespState.CHK_LENGTH : RespState.ERR_TOO_MANY_RDMA_ATM_REQ;
  }
  if (mask & M_RWR) return takeRecvWqe(qp);
  return RespState.CHK_LENGTH;
}

/** Takes the receive WQE for a new message: the RQ head (consumed on completion) or a copy from the SRQ. */
function takeRecvWqe(qp: usize): RespState {
  let w: usize = 0;
  let maxSge: u32 = 0;
  const srqh = load<u32>(qp + QP_SRQ);
  if (srqh) {
    const srq = srqFind(srqh);
    if (!srq) return RespState.ERR_RNR;
    w = cBlk + XB_WQE;
    if (!srqTake(srq, w)) return RespState.ERR_RNR; // raises SRQ_LIMIT_REACHED when it applies
    maxSge = load<u32>(srq + SRQ_MAX_SGE);
  } else {
    const rq = <usize>load<u32>(qp + QP_RQ);
    if (!rq || ringCount(rq) == 0) return RespState.ERR_RNR;
    w = ringEntry(rq, ringCons(rq));
    maxSge = min<u32>(attr(qp, ATTR_MAX_RECV_SGE), (load<u32>(rq + RING_SLOT) - RWQE_HDR) / SGE_SIZE);
  }
  rsSet(qp, RS_WQE, <u32>w);
  rsSet(qp, RS_RECV_LEN, 0);
  dmaReset(w + RWQE_CUR_SGE);
  // don't trust what the host wrote: bound the SGE count, sum the lengths
  const n = load<u32>(w + RWQE_NUM_SGE);
  if (n > maxSge) {
    rsSet(qp, RS_WQE_LEN, 0);
    return RespState.ERR_MALFORMED_WQE;
  }
  let total: u64 = 0;
  for (let i: u32 = 0; i < n; i++) total += <u64>load<u32>(w + RWQE_SGE + <usize>i * SGE_SIZE + SGE_LENGTH);
  rsSet(qp, RS_WQE_LEN, total > 0xffffffff ? 0xffffffff : <u32>total);
  return RespState.CHK_LENGTH;
}

function checkLength(): RespState {
  const mask = pk(PKT_MASK);
  if (mask & M_PAYLOAD) {
    const mtu = qpMtuBytes(cQp);
    const len = pk(PKT_PAYLOAD_LEN);
    if ((mask & M_START) && (mask & M_END)) {
      if (len > mtu) return RespState.ERR_LENGTH;
    } else if (mask & (M_START | M_MIDDLE)) {
      if (len != mtu) return RespState.ERR_LENGTH;
    } else if (mask & M_END) {
      if (len == 0 || len > mtu) return RespState.ERR_LENGTH;
    }
  }
  if ((mask & M_RETH) && reth_len(pktHdr(cPkt, HDR_RETH)) > 0x80000000) return RespState.ERR_LENGTH; // C9-94
  if (mask & (M_READ | M_WRITE | M_ATOMIC | M_ATOMIC_WRITE | M_FLUSH)) return RespState.CHK_RKEY;
  return RespState.EXECUTE;
}

/** Takes va, rkey and length from the RETH of a first/only packet (rxe qp_resp_from_reth). */
function fromReth(): void {
  const qp = cQp;
  const reth = pktHdr(cPkt, HDR_RETH);
  const len = reth_len(reth);
  store<u64>(qp + QP_RESP + RS_VA, reth_va(reth));
  rsSet(qp, RS_RESID, len);
  rsSet(qp, RS_LENGTH, len);
  // a zero-length READ/WRITE says nothing about its rkey (C9-88)
  rsSet(qp, RS_RKEY, (pk(PKT_MASK) & (M_READ | M_WRITE)) && len == 0 ? 0 : reth_rkey(reth));
}

function checkRkey(): RespState {
  const qp = cQp;
  const mask = pk(PKT_MASK);
  let access: u32 = 0;
  let wholeMr = false;
  if (mask & (M_READ | M_WRITE | M_ATOMIC_WRITE)) {
    if (mask & M_RETH) fromReth();
    access = (mask & M_READ) ? ACCESS_REMOTE_READ : ACCESS_REMOTE_WRITE;
  } else if (mask & M_FLUSH) {
    const w = feth_word(pktHdr(cPkt, HDR_FETH));
    fromReth();
    const t = feth_placement(w);
    if (t & FETH_PLT_GLOBAL) access |= ACCESS_FLUSH_GLOBAL;
    if (t & FETH_PLT_PERSISTENT) access |= ACCESS_FLUSH_PERSISTENT;
    wholeMr = feth_selectivity(w) == FETH_SEL_MR; // flushes the whole MR: no range to check
  } else {
    const a = pktHdr(cPkt, HDR_ATMETH);
    store<u64>(qp + QP_RESP + RS_VA, atmeth_va(a));
    rsSet(qp, RS_RKEY, atmeth_rkey(a));
    rsSet(qp, RS_RESID, 8);
    rsSet(qp, RS_LENGTH, 8);
    access = ACCESS_REMOTE_ATOMIC;
  }
  // A zero-byte READ or WRITE is not required to carry an address or key (C9-88).
  if ((mask & (M_READ | M_WRITE)) && (mask & M_RETH) && rs(qp, RS_LENGTH) == 0) return RespState.EXECUTE;

  const rkey = rs(qp, RS_RKEY);
  const va = load<u64>(qp + QP_RESP + RS_VA);
  const resid = rs(qp, RS_RESID);
  const pd = load<u32>(qp + QP_PD);
  if (wholeMr) {
    const mr = mrFind(rkey);
    if (!mr || load<u32>(mr + MR_PD) != pd || (load<u32>(mr + MR_ACCESS) & access) != access) return RespState.ERR_RKEY_VIOLATION;
  } else if (mrCheck(rkey, pd, va, <u64>resid, access) != MR_OK) {
    return RespState.ERR_RKEY_VIOLATION;
  }
  if (mask & (M_WRITE | M_ATOMIC_WRITE)) {
    const mtu = qpMtuBytes(qp);
    const len = pk(PKT_PAYLOAD_LEN);
    const pad = bth_padcnt(<usize>pk(PKT_BTH));
    if (resid > mtu) {
      if (len != mtu || pad != 0) return RespState.ERR_LENGTH;
    } else {
      if (len != resid) return RespState.ERR_LENGTH;
      if (pad != ((0 - resid) & 3)) return RespState.ERR_LENGTH;
    }
  }
  return RespState.EXECUTE;
}

// ---- execution ----

/** Scatters `len` bytes at `src` into the receive WQE's SGEs, from where the last packet stopped. */
function sendDataIn(src: usize, len: u32): RespState {
  const qp = cQp;
  if (len == 0) return RespState.NONE;
  const w = <usize>rs(qp, RS_WQE);
  if (!w) return RespState.ERR_MALFORMED_WQE;
  const got = rs(qp, RS_RECV_LEN);
  if (<u64>got + <u64>len > <u64>rs(qp, RS_WQE_LEN)) return RespState.ERR_RECV_OVERFLOW;
  const r = copyData(TO_SGL, load<u32>(qp + QP_PD), ACCESS_LOCAL_WRITE, w + RWQE_SGE, load<u32>(w + RWQE_NUM_SGE),
    w + RWQE_CUR_SGE, src, len);
  if (r == Copy.SHORT) return RespState.ERR_RECV_OVERFLOW;
  if (r == Copy.FAULT) return RespState.ERR_MALFORMED_WQE;
  rsSet(qp, RS_RECV_LEN, got + len);
  return RespState.NONE;
}

/** Places an RDMA WRITE payload at the request's running address (already checked against the MR). */
function writeDataIn(): RespState {
  const qp = cQp;
  const len = pk(PKT_PAYLOAD_LEN);
  if (len == 0) return RespState.NONE;
  const va = load<u64>(qp + QP_RESP + RS_VA);
  // the range was checked for the whole remaining request; check this piece again
  if (mrCheck(rs(qp, RS_RKEY), load<u32>(qp + QP_PD), va, <u64>len, ACCESS_REMOTE_WRITE) != MR_OK) return RespState.ERR_RKEY_VIOLATION;
  memory.copy(<usize>va, <usize>pk(PKT_PAYLOAD), len);
  store<u64>(qp + QP_RESP + RS_VA, va + <u64>len);
  rsSet(qp, RS_RESID, rs(qp, RS_RESID) - len);
  return RespState.NONE;
}

/** The request was executed: advance the expected PSN and remember it. */
function advance(): void {
  const qp = cQp;
  const next = psn_next(pk(PKT_PSN), 1);
  rsSet(qp, RS_PSN, next);
  rsSet(qp, RS_ACK_PSN, next);
  rsSet(qp, RS_OPCODE, pk(PKT_OPCODE) | RS_OPCODE_VALID);
  cStatus = WC_SUCCESS;
}

function execute(): RespState {
  const qp = cQp;
  const mask = pk(PKT_MASK);
  if (mask & M_SEND) {
    const r = sendDataIn(<usize>pk(PKT_PAYLOAD), pk(PKT_PAYLOAD_LEN));
    if (r != RespState.NONE) return r;
  } else if (mask & M_WRITE) {
    const r = writeDataIn();
    if (r != RespState.NONE) return r;
  } else if (mask & M_READ) {
    rsSet(qp, RS_MSN, rs(qp, RS_MSN) + 1); // C9-148: a READ counts when it is accepted
    return RespState.READ_REPLY;
  } else if (mask & M_ATOMIC) {
    return RespState.ATOMIC_REPLY;
  } else if (mask & M_ATOMIC_WRITE) {
    return RespState.ATOMIC_WRITE_REPLY;
  } else if (mask & M_FLUSH) {
    return RespState.PROCESS_FLUSH;
  }
  // SEND with invalidate: no MR here can be invalidated remotely (user MRs,
  // no memory windows yet), which rxe reports as class J.
  if (mask & M_IETH) return RespState.ERR_INVALIDATE_RKEY;
  if (mask & M_END) rsSet(qp, RS_MSN, rs(qp, RS_MSN) + 1);
  advance();
  if (mask & M_COMP) return RespState.COMPLETE;
  return RespState.ACKNOWLEDGE;
}

/** Takes the next resource of the ring for a new READ/atomic/ATOMIC_WRITE/FLUSH (rxe_prepare_res). */
function prepareRes(type: u32): usize {
  const qp = cQp;
  const b = cBlk;
  const n = resCount(qp);
  let head = rs(qp, RS_RES_HEAD);
  if (head >= n) head = 0;
  const r = resEntry(b, head);
  rsSet(qp, RS_RES_HEAD, head + 1 >= n ? 0 : head + 1);
  resDone(b, r); // recycling abandons whatever this resource still had to send
  memory.fill(r, 0, RES_SIZE);
  store<u32>(r + RES_TYPE, type);
  const psn = pk(PKT_PSN);
  store<u32>(r + RES_FIRST_PSN, psn);
  store<u32>(r + RES_CUR_PSN, psn);
  store<u32>(r + RES_LAST_PSN, psn);
  if (type == M_READ) {
    const len = rs(qp, RS_RESID);
    const va = load<u64>(qp + QP_RESP + RS_VA);
    store<u64>(r + RES_VA, va);
    store<u64>(r + RES_VA_ORG, va);
    store<u32>(r + RES_RESID, len);
    store<u32>(r + RES_LENGTH, len);
    store<u32>(r + RES_RKEY, rs(qp, RS_RKEY));
    store<u32>(r + RES_LAST_PSN, psn_next(psn, readPackets(len, qpMtuBytes(qp)) - 1));
  }
  return r;
}

/** Queues the response of resource `r` with the current MSN. */
function queueRes(r: usize): void {
  store<u32>(r + RES_MSN, rs(cQp, RS_MSN));
  resQueue(cBlk, r);
}

function readReply(): RespState {
  const qp = cQp;
  let r = cRes;
  if (!r) {
    r = prepareRes(M_READ);
    cRes = r;
    // Requests behind this READ start after its last response PSN. (rxe gets
    // there when the last response is sent; requests are handled on arrival here.)
    rsSet(qp, RS_PSN, psn_next(load<u32>(r + RES_LAST_PSN), 1));
    rsSet(qp, RS_OPCODE, 0);
    cStatus = WC_SUCCESS;
  }
  queueRes(r);
  return RespState.CLEANUP;
}

function atomicReply(): RespState {
  const qp = cQp;
  let r = cRes;
  if (!r) {
    const va = load<u64>(qp + QP_RESP + RS_VA);
    if (va & 7) return RespState.ERR_MISALIGNED_ATOMIC;
    r = prepareRes(M_ATOMIC);
    cRes = r;
    const a = pktHdr(cPkt, HDR_ATMETH);
    const p = <usize>va;
    const orig = load<u64>(p); // the value as the host sees it (little-endian memory)
    if (pk(PKT_OPCODE) == OPCODE_RC_CMP_SWAP) {
      if (orig == atmeth_compare(a)) store<u64>(p, atmeth_swap_add(a));
    } else {
      store<u64>(p, orig + atmeth_swap_add(a));
    }
    store<u64>(r + RES_ORIG, orig);
    rsSet(qp, RS_MSN, rs(qp, RS_MSN) + 1);
    advance();
  }
  return RespState.ACKNOWLEDGE;
}

function atomicWriteReply(): RespState {
  const qp = cQp;
  let r = cRes;
  if (!r) {
    const va = load<u64>(qp + QP_RESP + RS_VA);
    if (va & 7) return RespState.ERR_MISALIGNED_ATOMIC; // IBA A19.4.2
    r = prepareRes(M_ATOMIC_WRITE);
    cRes = r;
    // the 8 payload bytes land as they are (rxe stores the raw u64)
    store<u64>(<usize>va, load<u64>(<usize>pk(PKT_PAYLOAD)));
    rsSet(qp, RS_RESID, 0);
    rsSet(qp, RS_MSN, rs(qp, RS_MSN) + 1);
    advance();
  }
  return RespState.ACKNOWLEDGE;
}

function processFlush(): RespState {
  const qp = cQp;
  if (!cRes) {
    // Memory here is always globally visible and as persistent as it gets: nothing to do.
    cRes = prepareRes(M_FLUSH);
    rsSet(qp, RS_MSN, rs(qp, RS_MSN) + 1);
    advance();
  }
  return RespState.ACKNOWLEDGE;
}

/** Writes the receive completion of the WQE in use (rxe do_complete). */
function complete(): RespState {
  const qp = cQp;
  const w = <usize>rs(qp, RS_WQE);
  if (w) {
    const cq = cqFind(load<u32>(qp + QP_RECV_CQ));
    const mask = pk(PKT_MASK);
    const wrId = load<u64>(w + RWQE_WR_ID);
    // the WQE is used up either way: the RQ slot is released, the SRQ copy dropped
    if (!load<u32>(qp + QP_SRQ)) {
      const rq = <usize>load<u32>(qp + QP_RQ);
      ringSetCons(rq, ringCons(rq) + 1);
    }
    rsSet(qp, RS_WQE, 0);
    const e = cq ? cqReserve(cq) : 0;
    if (!e) return RespState.ERR_CQ_OVERFLOW;
    store<u64>(e + CQE_WR_ID, wrId);
    store<u32>(e + CQE_STATUS, cStatus);
    store<u32>(e + CQE_QP_NUM, load<u32>(qp + QP_NUM));
    if (cStatus == WC_SUCCESS) {
      count(Counter.RDMA_RECVS);
      const rdmaImm = (mask & M_IMMDT) != 0 && (mask & M_WRITE) != 0;
      store<u32>(e + CQE_OPCODE, rdmaImm ? WC_RECV_RDMA_WITH_IMM : WC_RECV);
      store<u32>(e + CQE_BYTE_LEN, rdmaImm ? rs(qp, RS_LENGTH) : rs(qp, RS_RECV_LEN));
      let flags = WC_FLAG_GRH; // rxe marks every receive completion GRH
      if (mask & M_IMMDT) {
        flags |= WC_FLAG_WITH_IMM;
        store<u32>(e + CQE_IMM_DATA, immdt_data(pktHdr(cPkt, HDR_IMMDT)));
      }
      store<u32>(e + CQE_WC_FLAGS, flags);
      if (mask & M_DETH) {
        // UD: the sender's QP from the DETH, its address as a GID (ibv_wc src_qp; the GRH has it too)
        store<u32>(e + CQE_SRC_QP, deth_srcqp(pktHdr(cPkt, HDR_DETH)));
        memory.copy(e + CQE_SGID, <usize>pk(PKT_SRC), 16);
      } else {
        store<u32>(e + CQE_SRC_QP, attr(qp, ATTR_DEST_QP_NUM));
      }
    }
    // rxe_cq_post(cq, cqe, bth_se(pkt)): the SE bit of the packet that completes the message
    store<u8>(e + CQE_SOLICITED, <u8>pk(PKT_SE));
    cqCommit(cq);
  }
  return RespState.ACKNOWLEDGE;
}

/** Decides this request's answer (rxe acknowledge). */
function acknowledge(): RespState {
  const mask = pk(PKT_MASK);
  if (cSyndrome != AETH_ACK_UNLIMITED) queueAck(cSyndrome, pk(PKT_PSN));
  else if ((mask & (M_ATOMIC | M_ATOMIC_WRITE | M_FLUSH)) && cRes) queueRes(cRes);
  else if (pk(PKT_ACKREQ)) queueAck(AETH_ACK_UNLIMITED, pk(PKT_PSN));
  return RespState.CLEANUP;
}

function duplicateRequest(): RespState {
  const qp = cQp;
  const b = cBlk;
  const mask = pk(PKT_MASK);
  const psn = pk(PKT_PSN);
  if (mask & (M_SEND | M_WRITE)) {
    // C9-105: ACK again, up to the last request executed, and drop it.
    queueAck(AETH_ACK_UNLIMITED, psn_next(rs(qp, RS_ACK_PSN), PSN_MASK)); // ack_psn - 1
    return RespState.CLEANUP;
  }
  const r = resFind(b, resCount(qp), psn);
  if (!r) return RespState.CLEANUP; // class D: nothing to answer with
  if (mask & M_READ) {
    // The retried READ must ask for (part of) the same range with the same key.
    const reth = pktHdr(cPkt, HDR_RETH);
    const va = reth_va(reth);
    const len = reth_len(reth);
    const org = load<u64>(r + RES_VA_ORG);
    const olen = <u64>load<u32>(r + RES_LENGTH);
    if (load<u32>(r + RES_TYPE) != M_READ) return RespState.CLEANUP;
    // A zero-length READ's address and key mean nothing (C9-88), so any retry of
    // it matches. (rxe saved key 0 for it and then dropped every retry that
    // carried the WQE's real key, until the requester ran out of retries.)
    if (olen != 0 || len != 0) {
      if (va < org || <u64>len > olen || va - org > olen - <u64>len) return RespState.CLEANUP;
      if (reth_rkey(reth) != load<u32>(r + RES_RKEY)) return RespState.CLEANUP;
    }
    let f = load<u32>(r + RES_FLAGS) | RESF_REPLAY;
    if (psn == load<u32>(r + RES_FIRST_PSN)) f &= ~RESF_STARTED;
    else f |= RESF_STARTED;
    store<u32>(r + RES_FLAGS, f);
    store<u32>(r + RES_CUR_PSN, psn);
    // The original range stays the window for later retries (rxe moves va_org
    // to the retried address but keeps the length, which shifts the window).
    store<u64>(r + RES_VA, va);
    store<u32>(r + RES_RESID, len);
    cRes = r;
    queueRes(r);
    return RespState.CLEANUP;
  }
  const t = load<u32>(r + RES_TYPE);
  if (!(mask & t)) return RespState.CLEANUP;
  store<u32>(r + RES_FLAGS, load<u32>(r + RES_FLAGS) | RESF_REPLAY);
  store<u32>(r + RES_CUR_PSN, psn);
  cRes = r;
  // atomics, ATOMIC_WRITE and FLUSH are answered from the saved result, never executed again
  queueRes(r);
  return RespState.CLEANUP;
}

// ---- sending ----

@inline function destQpn(qp: usize): u32 { return attr(qp, ATTR_DEST_QP_NUM); }

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
  if (load<u32>(r + RES_LENGTH) != 0 &&
      mrCheck(load<u32>(r + RES_RKEY), load<u32>(qp + QP_PD), va, <u64>n, ACCESS_REMOTE_READ) != MR_OK) {
    // the MR went away since the request was accepted (rxe_recheck_mr): class C
    resDone(b, r);
    ackQueue(b, AETH_NAK_REM_ACC_ERR, psn, load<u32>(qp + QP_RESP + RS_MSN));
    if (qpState(qp) != QpState.ERR) qpToError(qp, WC_REM_ACCESS_ERR);
    return 0;
  }
  const desc = txReserve();
  if (!desc) return -1;
  respHeaders(desc, qp, op, psn, AETH_ACK_UNLIMITED, msn);
  store<u64>(r + RES_VA, va + <u64>n);
  store<u32>(r + RES_RESID, resid - n);
  store<u32>(r + RES_CUR_PSN, psn_next(psn, 1));
  store<u32>(r + RES_FLAGS, load<u32>(r + RES_FLAGS) | RESF_STARTED);
  if (resid - n == 0) resDone(b, r);
  txSend(desc, qp, qp + QP_ATTR + ATTR_AH, op, <usize>va, n);
  if (n) {
    store<u32>(b + XB_READ_TX, ringProd(txRingAddr()));
    store<u32>(b + XB_READ_TX_VALID, 1);
  }
  return 1;
}

/** Sends pending ACKs / READ responses of `qp`, up to `budget` packets; returns how many. */
export function responderSend(qp: usize, budget: i32): i32 {
  if (!(rs(qp, RS_FLAGS) & RSF_INIT) || load<u32>(qp + QP_TYPE) != QPT_RC) return 0;
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

// ---- UC and UD (no ACKs, no duplicates, no READ/atomics) ----

/** The 40-byte GRH area a UD receive buffer starts with (rxe: union rdma_network_hdr). */
const grhBuf: usize = memory.data(40, 8);
export const GRH_SIZE: u32 = 40;

/**
 * Fills grhBuf as rxe does for RoCEv2: IPv6, the IPv6 header as received; IPv4,
 * 20 zero bytes then the IPv4 header (checksum included). Rebuilt from the IP
 * facts of rx_meta: the ID the ICRC check settled on, DF, TTL/TOS/flow label
 * when the host saw them (0 otherwise).
 */
function fillGrh(pkt: usize): void {
  const meta = <usize>load<u32>(pkt + PKT_META);
  const udpLen = 8 + load<u32>(pkt + PKT_LEN);
  memory.fill(grhBuf, 0, 40);
  if (load<u32>(pkt + PKT_IPV6)) {
    ip6_build(grhBuf, load<u32>(meta + RXM_TOS) & 0xff, load<u32>(meta + RXM_FLOW_LABEL) & 0xfffff, udpLen,
      load<u32>(meta + RXM_TTL) & 0xff, meta + RXM_SRC, meta + RXM_DST);
  } else {
    const df = (load<u32>(meta + RXM_IP_FLAGS) & IP4_FLAG_DF) != 0 ? IP4_FLAG_DF : 0;
    ip4_build(grhBuf + 20, load<u32>(meta + RXM_TOS) & 0xff, 20 + udpLen, load<u32>(meta + RXM_IP_ID) & 0xffff, df, 0,
      load<u32>(meta + RXM_TTL) & 0xff, meta + RXM_SRC + 12, meta + RXM_DST + 12);
  }
}

/** UC: the rest of this message is dropped silently; the next FIRST/ONLY starts clean. */
function ucDrop(qp: usize, why: RespState): void {
  trace(why);
  rsSet(qp, RS_FLAGS, rs(qp, RS_FLAGS) | RSF_DROP_MSG);
  rsSet(qp, RS_OPCODE, 0);
}

/** A receive WQE for a new UC/UD message; UC reuses the one a dropped message had started. */
function ucudTakeWqe(qp: usize): RespState {
  const w = <usize>rs(qp, RS_WQE);
  if (w && load<u32>(qp + QP_SRQ)) {
    // an SRQ WQE was already taken for a message that got dropped: start it over
    dmaReset(w + RWQE_CUR_SGE);
    rsSet(qp, RS_RECV_LEN, 0);
    return RespState.CHK_LENGTH;
  }
  return takeRecvWqe(qp);
}

/** Ends a UC/UD request: CQ overflow and local errors move the QP to ERR (class G, as RC). */
function ucudFinish(qp: usize, s: RespState): void {
  if (s == RespState.ERR_CQ_OVERFLOW || cGotoError) {
    trace(RespState.ERROR);
    qpToError(qp, cStatus);
  }
  cQp = 0;
  cPkt = 0;
  cGotoError = false;
}

/** A validated UC or UD request (rxe_resp.c with its UC/UD branches). */
function ucudRecv(qp: usize, pkt: usize, ud: bool): void {
  cQp = qp;
  cPkt = pkt;
  cBlk = respStart(qp);
  cRes = 0;
  cStatus = WC_SUCCESS;
  cSyndrome = AETH_ACK_UNLIMITED;
  cGotoError = false;
  const mask = pk(PKT_MASK);
  if (!ud) {
    // PSN: a gap (or a message already being dropped) loses the rest of the
    // message; a FIRST/ONLY always starts a new one, whatever its PSN.
    trace(RespState.CHK_PSN);
    const gap = pk(PKT_PSN) != rs(qp, RS_PSN);
    if ((gap || (rs(qp, RS_FLAGS) & RSF_DROP_MSG)) && !(mask & M_START)) {
      if (gap) count(Counter.OUT_OF_SEQ_REQUEST);
      ucDrop(qp, RespState.ERR_PSN_OUT_OF_SEQ);
      ucudFinish(qp, RespState.DONE);
      return;
    }
    trace(RespState.CHK_OP_SEQ);
    if (mask & M_START) {
      rsSet(qp, RS_FLAGS, rs(qp, RS_FLAGS) & ~RSF_DROP_MSG);
      rsSet(qp, RS_OPCODE, 0); // a partial message before it is abandoned (class D1/E)
    } else {
      const last = rs(qp, RS_OPCODE);
      const lastMask = (last & RS_OPCODE_VALID) ? opcode_mask(last & 0xff) : 0;
      if (opSeqNext(lastMask, (last & RS_OPCODE_VALID) != 0, mask) != RespState.CHK_OP_VALID) {
        ucDrop(qp, RespState.ERR_MISSING_OPCODE_FIRST);
        ucudFinish(qp, RespState.DONE);
        return;
      }
    }
    trace(RespState.CHK_OP_VALID);
    if (!qpAccessAllows(attr(qp, ATTR_QP_ACCESS_FLAGS), mask, 0)) {
      ucDrop(qp, RespState.ERR_UNSUPPORTED_OPCODE);
      ucudFinish(qp, RespState.DONE);
      return;
    }
  }
  trace(RespState.CHK_RESOURCE);
  let s = RespState.CHK_LENGTH;
  if (mask & M_RWR) s = ucudTakeWqe(qp);
  if (s == RespState.ERR_RNR) {
    // no receive WQE: UC/UD drop (no RNR NAK without ACKs)
    count(Counter.SEND_RNR_ERR);
    if (!ud) ucDrop(qp, s);
    else trace(s);
    ucudFinish(qp, RespState.DONE);
    return;
  }
  if (s == RespState.ERR_MALFORMED_WQE) {
    trace(s);
    cStatus = WC_LOC_QP_OP_ERR;
    cGotoError = true;
    complete();
    ucudFinish(qp, RespState.ERROR);
    return;
  }
  trace(RespState.CHK_LENGTH);
  const plen = pk(PKT_PAYLOAD_LEN);
  if (ud) {
    // the datagram must fit the port MTU, and the WQE must hold it after the GRH
    if (plen > activeMtuBytes()) s = RespState.ERR_LENGTH;
    else if (<u64>plen + GRH_SIZE > <u64>rs(qp, RS_WQE_LEN)) s = RespState.ERR_RECV_OVERFLOW;
    if (s != RespState.CHK_LENGTH) {
      trace(s);
      if (load<u32>(qp + QP_SRQ)) {
        // the SRQ WQE is already taken: it completes in error (rxe: REM_INV_REQ), the QP stays up
        cStatus = WC_REM_INV_REQ_ERR;
        ucudFinish(qp, complete() == RespState.ERR_CQ_OVERFLOW ? RespState.ERR_CQ_OVERFLOW : RespState.DONE);
      } else {
        rsSet(qp, RS_WQE, 0); // an RQ WQE is only consumed on completion: it waits for the next datagram
        ucudFinish(qp, RespState.DONE);
      }
      return;
    }
    trace(RespState.EXECUTE);
    fillGrh(pkt);
    let d = sendDataIn(grhBuf, GRH_SIZE);
    if (d == RespState.NONE) d = sendDataIn(<usize>pk(PKT_PAYLOAD), plen);
    if (d != RespState.NONE) {
      // an SGE whose MR is gone or lacks LOCAL_WRITE: the WQE completes in error, the QP goes to ERR
      trace(d);
      cStatus = WC_LOC_QP_OP_ERR;
      cGotoError = true;
      complete();
      ucudFinish(qp, RespState.ERROR);
      return;
    }
    trace(RespState.COMPLETE);
    ucudFinish(qp, complete());
    return;
  }
  s = checkLength();
  if (s == RespState.CHK_RKEY) s = checkRkey();
  if (s != RespState.EXECUTE) {
    ucDrop(qp, s); // a bad length or R_Key loses the message, silently (UC class D)
    ucudFinish(qp, RespState.DONE);
    return;
  }
  trace(RespState.EXECUTE);
  const r = (mask & M_SEND) ? sendDataIn(<usize>pk(PKT_PAYLOAD), plen) : writeDataIn();
  if (r == RespState.ERR_RECV_OVERFLOW || r == RespState.ERR_MALFORMED_WQE) {
    // the message does not fit the receive WQE: it completes with a local length error, the QP goes to ERR
    trace(r);
    cStatus = r == RespState.ERR_RECV_OVERFLOW ? WC_LOC_LEN_ERR : WC_LOC_QP_OP_ERR;
    cGotoError = true;
    complete();
    ucudFinish(qp, RespState.ERROR);
    return;
  }
  if (r != RespState.NONE) {
    ucDrop(qp, r);
    ucudFinish(qp, RespState.DONE);
    return;
  }
  advance();
  if (mask & M_COMP) {
    trace(RespState.COMPLETE);
    ucudFinish(qp, complete());
    return;
  }
  ucudFinish(qp, RespState.DONE);
}
