// The responder (rxe_resp.c): checks and executes request packets, consumes
// receive WQEs, writes receive completions and decides every ACK, NAK, READ
// response and atomic ACK. A request is handled at once, on arrival, by the
// state machine below — an enum, a name table, a run record passed to small
// step functions, one loop that counts every state entered. Every QP type goes
// through that loop, as in rxe: this file holds the states all types share and
// the RC steps; responder_ucud.ts holds the UC/UD steps (no ACKs, no
// duplicates, no READ/atomics). What has to be sent is only recorded — the
// pending-ACK slot and the responder resources (resources.ts) — and
// responder_send.ts emits it when the sender loop reaches this QP.
import { keyIsMw, mrCopy, mrInvalidate } from "../mem/mr";
import { mwInvalidate } from "../mem/mw";
import { SLOT_HANDLE } from "../mem/pool";
import { rkeyIova, rkeyMr, rkeyResolve, rkeyWholeMr } from "../mem/rkey";
import {
  ACCESS_FLUSH_GLOBAL, ACCESS_FLUSH_PERSISTENT, ACCESS_LOCAL_WRITE, ACCESS_REMOTE_ATOMIC, ACCESS_REMOTE_READ,
  ACCESS_REMOTE_WRITE,
} from "../mem/access";
import { ringCons, ringCount, ringEntry, ringSetCons, RING_SLOT } from "../mem/ring";
import { count, Counter } from "../verbs/counters";
import {
  cqCommit, cqFind, cqReserve, CQE_SGID, CQE_BYTE_LEN, CQE_IMM_DATA, CQE_OPCODE, CQE_QP_NUM, CQE_SOLICITED, CQE_SRC_QP, CQE_STATUS,
  CQE_WC_FLAGS, CQE_WR_ID,
} from "../verbs/cq";
import {
  QpState, QPT_RC, WC_FLAG_GRH, WC_FLAG_WITH_IMM, WC_FLAG_WITH_INV, WC_LOC_LEN_ERR, WC_LOC_QP_OP_ERR, WC_RECV, WC_RECV_RDMA_WITH_IMM,
  WC_REM_ACCESS_ERR, WC_REM_INV_REQ_ERR, WC_SUCCESS,
} from "../verbs/enums";
import {
  qpMtuBytes, qpState, ATTR_DEST_QP_NUM, ATTR_MAX_RECV_SGE, ATTR_MIN_RNR_TIMER, ATTR_QP_ACCESS_FLAGS, ATTR_RQ_PSN, QP_ATTR,
  QP_NUM, QP_PD, QP_RECV_CQ, QP_RESP, QP_RQ, QP_SRQ, QP_TYPE, RS_ACK_PSN, RS_FLAGS, RS_LENGTH, RS_LINE, RS_MSN, RS_OPCODE,
  RS_OPCODE_VALID, RS_PSN, RS_RECV_LEN, RS_RES_HEAD, RS_RESID, RS_RKEY, RS_VA, RS_WQE, RS_WQE_LEN, RSF_INIT,
  RSF_SENT_PSN_NAK,
} from "../verbs/qp";
import { srqFind, srqTake, SRQ_MAX_SGE } from "../verbs/srq";
import { RWQE_CUR_SGE, RWQE_HDR, RWQE_NUM_SGE, RWQE_SGE, RWQE_WR_ID, SGE_SIZE } from "../verbs/wqe";
import {
  aeth_rnr_syndrome, AETH_ACK_UNLIMITED, AETH_NAK_INVALID_REQ, AETH_NAK_PSN_SEQ_ERROR, AETH_NAK_REM_ACC_ERR,
  AETH_NAK_REM_OP_ERR,
} from "../wire/aeth";
import { atmeth_compare, atmeth_rkey, atmeth_swap_add, atmeth_va } from "../wire/atmeth";
import { bth_padcnt } from "../wire/bth";
import { deth_srcqp } from "../wire/deth";
import { feth_placement, feth_selectivity, feth_word, FETH_PLT_GLOBAL, FETH_PLT_PERSISTENT, FETH_SEL_MR } from "../wire/feth";
import { ieth_rkey } from "../wire/ieth";
import { immdt_data } from "../wire/immdt";
import {
  opcode_mask, HDR_ATMETH, HDR_DETH, HDR_FETH, HDR_IETH, HDR_IMMDT, HDR_RETH, M_ATOMIC, M_ATOMIC_WRITE, M_COMP, M_DETH, M_END,
  M_FLUSH, M_IETH, M_IMMDT, M_MIDDLE, M_PAYLOAD, M_READ, M_RETH, M_RWR, M_SEND, M_START, M_WRITE, OPCODE_RC_CMP_SWAP,
} from "../wire/opcode";
import { psn_distance, psn_next, PSN_MASK } from "../wire/psn";
import { reth_len, reth_rkey, reth_va } from "../wire/reth";
import { copyData, dmaReset, sgeTotal, Copy, TO_SGL } from "./dma";
import { pktHdr, PKT_ACKREQ, PKT_BTH, PKT_MASK, PKT_OPCODE, PKT_PAYLOAD, PKT_PAYLOAD_LEN, PKT_PSN, PKT_SE, PKT_SRC } from "./pkt";
import { qpToError } from "./qp_error";
import { scheduleQp } from "./qp_sched";
import {
  ackQueue, resCount, resDone, resEntry, resFind, respBlock, respBlockReset, resQueue, ACK_PENDING, RESF_REPLAY,
  RESF_STARTED, RES_CUR_PSN, RES_FIRST_PSN, RES_FLAGS, RES_LAST_PSN, RES_LENGTH, RES_MSN, RES_ORIG, RES_RESID, RES_RKEY,
  RES_SIZE, RES_TYPE, RES_VA, RES_VA_ORG, XB_ACK_SYN, XB_PENDING, XB_WQE,
} from "./resources";
import { readPending, responderSend } from "./responder_send";
import { traceRecord, traceState, TraceKind, TRACE_NONE } from "../trace/trace";

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

/** One request through the state machine (the device is single-threaded: one record serves every run). */
@unmanaged
export class RespRun {
  qp: usize = 0;
  pkt: usize = 0; // the request (packet-info record)
  blk: usize = 0; // the QP's responder block (resources.ts)
  type: u32 = 0; // the QP type
  res: usize = 0; // resource of this READ/atomic/ATOMIC_WRITE/FLUSH
  addr: usize = 0; // CHK_RKEY: where this packet's bytes are in linear memory (through an MR or a window)
  status: u32 = 0; // completion status of the receive WQE
  syndrome: u32 = 0; // AETH_ACK_UNLIMITED, or the NAK to send
  gotoError: bool = false; // the QP goes to ERR once the request is done
}
const respRun = changetype<RespRun>(memory.data(offsetof<RespRun>(), 8));

/** Counts the state entered and, when the trace ring wants it, records it with the request's PSN. */
@inline function trace(c: RespRun, s: RespState, from: u32): void {
  if (traceState(TraceKind.RESP_STATE, s)) traceRecord(TraceKind.RESP_STATE, load<u32>(c.qp + QP_NUM), s, from, pk(c, PKT_PSN));
}

/** The states a QP type decides for itself; responderRun does the rest. */
export type RespSteps = (c: RespRun, s: RespState) => RespState;

@inline export function rs(qp: usize, off: usize): u32 { return load<u32>(qp + QP_RESP + off); }
@inline export function rsSet(qp: usize, off: usize, v: u32): void { store<u32>(qp + QP_RESP + off, v); }
@inline export function attr(qp: usize, off: usize): u32 { return load<u32>(qp + QP_ATTR + off); }
@inline export function pk(c: RespRun, off: usize): u32 { return load<u32>(c.pkt + off); }

/** Number of READ response packets for `len` bytes: at least one. */
@inline export function readPackets(len: u32, mtu: u32): u32 { return len == 0 ? 1 : (len + mtu - 1) / mtu; }

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

/**
 * One validated request packet for `qp` (pkt: the packet-info record) through
 * the state machine, from CHK_PSN to DONE. `steps` decides the states that
 * depend on the QP type; the ones every type shares are decided here.
 */
export function responderRun(qp: usize, pkt: usize, steps: RespSteps): void {
  const c = respRun;
  c.qp = qp;
  c.pkt = pkt;
  c.blk = respStart(qp);
  c.type = load<u32>(qp + QP_TYPE);
  c.res = 0;
  c.addr = 0;
  c.status = WC_SUCCESS;
  c.syndrome = AETH_ACK_UNLIMITED;
  c.gotoError = false;
  let s = RespState.CHK_PSN;
  let from = TRACE_NONE;
  for (;;) {
    trace(c, s, from);
    from = s;
    if (s == RespState.ERROR) {
      c.gotoError = false;
      qpToError(qp, c.status);
      break;
    }
    if (s == RespState.DONE) {
      if (c.gotoError) {
        s = RespState.ERROR;
        continue;
      }
      break;
    }
    switch (s) {
      case RespState.COMPLETE: s = complete(c); break;
      case RespState.ACKNOWLEDGE: s = acknowledge(c); break;
      case RespState.CLEANUP: s = RespState.DONE; break;
      case RespState.ERR_CQ_OVERFLOW: s = RespState.ERROR; break; // class G
      default: s = steps(c, s);
    }
  }
  // responder_send.ts sends what the request left to answer
  if ((load<u32>(c.blk + XB_ACK_SYN) & ACK_PENDING) || load<u32>(c.blk + XB_PENDING)) scheduleQp(qp);
}

/** The RC steps: every check, the READ/atomic/FLUSH replies, duplicates, and each error's class (NAK and completion). */
function rcSteps(c: RespRun, s: RespState): RespState {
  switch (s) {
    case RespState.CHK_PSN: return checkPsn(c);
    case RespState.CHK_OP_SEQ: return checkOpSeq(c);
    case RespState.CHK_OP_VALID: return checkOpValid(c);
    case RespState.CHK_RESOURCE: return checkResource(c);
    case RespState.CHK_LENGTH: return checkLength(c);
    case RespState.CHK_RKEY: return checkRkey(c);
    case RespState.EXECUTE: return execute(c);
    case RespState.READ_REPLY: return readReply(c);
    case RespState.ATOMIC_REPLY: return atomicReply(c);
    case RespState.ATOMIC_WRITE_REPLY: return atomicWriteReply(c);
    case RespState.PROCESS_FLUSH: return processFlush(c);
    case RespState.DUPLICATE_REQUEST: return duplicateRequest(c);
    case RespState.ERR_PSN_OUT_OF_SEQ:
      // Class B: NAK with the PSN we expect, once per gap; drop the packet.
      queueAck(c, AETH_NAK_PSN_SEQ_ERROR, rs(c.qp, RS_PSN));
      return RespState.CLEANUP;
    case RespState.ERR_TOO_MANY_RDMA_ATM_REQ:
    case RespState.ERR_MISSING_OPCODE_FIRST:
    case RespState.ERR_MISSING_OPCODE_LAST_C:
    case RespState.ERR_UNSUPPORTED_OPCODE:
    case RespState.ERR_MISALIGNED_ATOMIC:
    case RespState.ERR_LENGTH:
      return classAC(c, AETH_NAK_INVALID_REQ, WC_REM_INV_REQ_ERR);
    case RespState.ERR_RECV_OVERFLOW:
      // The message does not fit the receive WQE: the requester gets an
      // Invalid Request NAK, the receiver a local length error (IBA 9.9.3;
      // rxe's copy_data reports it as a malformed WQE instead).
      return classAC(c, AETH_NAK_INVALID_REQ, WC_LOC_LEN_ERR);
    case RespState.ERR_RKEY_VIOLATION:
      return classAC(c, AETH_NAK_REM_ACC_ERR, WC_REM_ACCESS_ERR);
    case RespState.ERR_MALFORMED_WQE:
      return classAC(c, AETH_NAK_REM_OP_ERR, WC_LOC_QP_OP_ERR);
    case RespState.ERR_INVALIDATE_RKEY:
      // Class J: complete in error and stop, the ACK itself is normal.
      c.gotoError = true;
      c.status = WC_REM_INV_REQ_ERR;
      return RespState.COMPLETE;
    case RespState.ERR_RNR:
      // Class B: no receive WQE; the requester retries after min_rnr_timer.
      count(Counter.SEND_RNR_ERR);
      queueAck(c, aeth_rnr_syndrome(attr(c.qp, ATTR_MIN_RNR_TIMER)), pk(c, PKT_PSN));
      return RespState.CLEANUP;
    default:
      return RespState.DONE;
  }
}

/** A validated request packet for the RC QP `qp` (pkt: the packet-info record). */
export function responderRecv(qp: usize, pkt: usize): void {
  if (load<u32>(qp + QP_TYPE) != QPT_RC) return;
  responderRun(qp, pkt, rcSteps);
}

/** Class A/C error (rxe do_class_ac_error): NAK with `syndrome`, complete the WQE with `status`, then ERR. */
function classAC(c: RespRun, syndrome: u32, status: u32): RespState {
  c.syndrome = syndrome;
  c.status = status;
  c.gotoError = true;
  return RespState.COMPLETE;
}

function queueAck(c: RespRun, syndrome: u32, psn: u32): void {
  ackQueue(c.blk, syndrome, psn, rs(c.qp, RS_MSN));
}

// ---- checks ----

function checkPsn(c: RespRun): RespState {
  const qp = c.qp;
  const diff = psn_distance(pk(c, PKT_PSN), rs(qp, RS_PSN));
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

export function checkOpSeq(c: RespRun): RespState {
  const last = rs(c.qp, RS_OPCODE);
  const lastMask = (last & RS_OPCODE_VALID) ? opcode_mask(last & 0xff) : 0;
  return opSeqNext(lastMask, (last & RS_OPCODE_VALID) != 0, pk(c, PKT_MASK));
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

export function checkOpValid(c: RespRun): RespState {
  const mask = pk(c, PKT_MASK);
  const feth = (mask & M_FLUSH) ? feth_word(pktHdr(c.pkt, HDR_FETH)) : 0;
  if (!qpAccessAllows(attr(c.qp, ATTR_QP_ACCESS_FLAGS), mask, feth)) return RespState.ERR_UNSUPPORTED_OPCODE;
  return RespState.CHK_RESOURCE;
}

/**
 * A request that writes memory must not overtake an earlier READ whose data is
 * still to be sent (READ responses are read from the MR when they are built).
 * rxe cannot get here: it sends all of a READ's responses before it looks at
 * the next request. Here the rest of the READ goes out first if the TX ring
 * has room; if it has not, the request is refused with an RNR NAK (what rxe
 * answers when it cannot build a response) and comes back after the timer.
 */
function mustWaitForRead(c: RespRun): bool {
  const qp = c.qp;
  const b = c.blk;
  if (!readPending(qp, b)) return false;
  responderSend(qp, 0x7fffffff);
  return readPending(qp, b);
}

function checkResource(c: RespRun): RespState {
  const qp = c.qp;
  const mask = pk(c, PKT_MASK);
  if ((mask & (M_SEND | M_WRITE | M_ATOMIC | M_ATOMIC_WRITE)) && mustWaitForRead(c)) return RespState.ERR_RNR;
  if (qpState(qp) == QpState.ERR) return RespState.CLEANUP; // sending the READ found its MR gone
  if (mask & (M_READ | M_ATOMIC | M_ATOMIC_WRITE | M_FLUSH)) {
    // The requester keeps within max_dest_rd_atomic; the ring is simply
    // recycled. None at all is an invalid request. (rxe lets FLUSH through
    // here too, then uses a resource it does not have.)
    return resCount(qp) > 0 ? RespState.CHK_LENGTH : RespState.ERR_TOO_MANY_RDMA_ATM_REQ;
  }
  if (mask & M_RWR) return takeRecvWqe(c);
  return RespState.CHK_LENGTH;
}

/** Takes the receive WQE for a new message: the RQ head (consumed on completion) or a copy from the SRQ. */
export function takeRecvWqe(c: RespRun): RespState {
  const qp = c.qp;
  let w: usize = 0;
  let maxSge: u32 = 0;
  const srqh = load<u32>(qp + QP_SRQ);
  if (srqh) {
    const srq = srqFind(srqh);
    if (!srq) return RespState.ERR_RNR;
    w = c.blk + XB_WQE;
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
  rsSet(qp, RS_WQE_LEN, sgeTotal(w + RWQE_SGE, n));
  return RespState.CHK_LENGTH;
}

export function checkLength(c: RespRun): RespState {
  const mask = pk(c, PKT_MASK);
  if (mask & M_PAYLOAD) {
    const mtu = qpMtuBytes(c.qp);
    const len = pk(c, PKT_PAYLOAD_LEN);
    if ((mask & M_START) && (mask & M_END)) {
      if (len > mtu) return RespState.ERR_LENGTH;
    } else if (mask & (M_START | M_MIDDLE)) {
      if (len != mtu) return RespState.ERR_LENGTH;
    } else if (mask & M_END) {
      if (len == 0 || len > mtu) return RespState.ERR_LENGTH;
    }
  }
  if ((mask & M_RETH) && reth_len(pktHdr(c.pkt, HDR_RETH)) > 0x80000000) return RespState.ERR_LENGTH; // C9-94
  if (mask & (M_READ | M_WRITE | M_ATOMIC | M_ATOMIC_WRITE | M_FLUSH)) return RespState.CHK_RKEY;
  return RespState.EXECUTE;
}

/** Takes va, rkey and length from the RETH of a first/only packet (rxe qp_resp_from_reth). */
function fromReth(c: RespRun): void {
  const qp = c.qp;
  const reth = pktHdr(c.pkt, HDR_RETH);
  const len = reth_len(reth);
  store<u64>(qp + QP_RESP + RS_VA, reth_va(reth));
  rsSet(qp, RS_RESID, len);
  rsSet(qp, RS_LENGTH, len);
  // a zero-length READ/WRITE says nothing about its rkey (C9-88)
  rsSet(qp, RS_RKEY, (pk(c, PKT_MASK) & (M_READ | M_WRITE)) && len == 0 ? 0 : reth_rkey(reth));
}

export function checkRkey(c: RespRun): RespState {
  const qp = c.qp;
  const mask = pk(c, PKT_MASK);
  let access: u32 = 0;
  let wholeMr = false;
  if (mask & (M_READ | M_WRITE | M_ATOMIC_WRITE)) {
    if (mask & M_RETH) fromReth(c);
    access = (mask & M_READ) ? ACCESS_REMOTE_READ : ACCESS_REMOTE_WRITE;
  } else if (mask & M_FLUSH) {
    const w = feth_word(pktHdr(c.pkt, HDR_FETH));
    fromReth(c);
    const t = feth_placement(w);
    if (t & FETH_PLT_GLOBAL) access |= ACCESS_FLUSH_GLOBAL;
    if (t & FETH_PLT_PERSISTENT) access |= ACCESS_FLUSH_PERSISTENT;
    wholeMr = feth_selectivity(w) == FETH_SEL_MR; // flushes the whole MR: no range to check
  } else {
    const a = pktHdr(c.pkt, HDR_ATMETH);
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
    // the whole region, whatever va says (an MR's key, or a window's: its MR, as rxe)
    if (!rkeyWholeMr(rkey, load<u32>(qp + SLOT_HANDLE), pd, access)) return RespState.ERR_RKEY_VIOLATION;
  } else {
    c.addr = rkeyResolve(rkey, load<u32>(qp + SLOT_HANDLE), pd, va, <u64>resid, access);
    if (!c.addr) return RespState.ERR_RKEY_VIOLATION;
  }
  if (mask & (M_WRITE | M_ATOMIC_WRITE)) {
    const mtu = qpMtuBytes(qp);
    const len = pk(c, PKT_PAYLOAD_LEN);
    const pad = bth_padcnt(<usize>pk(c, PKT_BTH));
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
export function sendDataIn(c: RespRun, src: usize, len: u32): RespState {
  const qp = c.qp;
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
export function writeDataIn(c: RespRun): RespState {
  const qp = c.qp;
  const len = pk(c, PKT_PAYLOAD_LEN);
  if (len == 0) return RespState.NONE;
  const va = load<u64>(qp + QP_RESP + RS_VA);
  // the range was checked for the whole remaining request; check this piece again
  if (!rkeyResolve(rs(qp, RS_RKEY), load<u32>(qp + SLOT_HANDLE), load<u32>(qp + QP_PD), va, <u64>len, ACCESS_REMOTE_WRITE)) {
    return RespState.ERR_RKEY_VIOLATION;
  }
  mrCopy(rkeyMr(), rkeyIova(), <usize>pk(c, PKT_PAYLOAD), len, true); // across scattered pages too
  store<u64>(qp + QP_RESP + RS_VA, va + <u64>len);
  rsSet(qp, RS_RESID, rs(qp, RS_RESID) - len);
  return RespState.NONE;
}

/** The request was executed: advance the expected PSN and remember it. */
export function advance(c: RespRun): void {
  const qp = c.qp;
  const next = psn_next(pk(c, PKT_PSN), 1);
  rsSet(qp, RS_PSN, next);
  rsSet(qp, RS_ACK_PSN, next);
  rsSet(qp, RS_OPCODE, pk(c, PKT_OPCODE) | RS_OPCODE_VALID);
  c.status = WC_SUCCESS;
}

function execute(c: RespRun): RespState {
  const qp = c.qp;
  const mask = pk(c, PKT_MASK);
  if (mask & M_SEND) {
    const r = sendDataIn(c, <usize>pk(c, PKT_PAYLOAD), pk(c, PKT_PAYLOAD_LEN));
    if (r != RespState.NONE) return r;
  } else if (mask & M_WRITE) {
    const r = writeDataIn(c);
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
  // SEND with invalidate: the last packet invalidates the rkey its IETH names
  // (rxe invalidate_rkey) — a type 2 window bound through this QP, or a fast-
  // registration MR of its PD. Anything else is class J.
  if ((mask & M_IETH) && invalidateRkey(qp, ieth_rkey(pktHdr(c.pkt, HDR_IETH))) != 0) return RespState.ERR_INVALIDATE_RKEY;
  if (mask & M_END) rsSet(qp, RS_MSN, rs(qp, RS_MSN) + 1);
  advance(c);
  if (mask & M_COMP) return RespState.COMPLETE;
  return RespState.ACKNOWLEDGE;
}

/** A peer's SEND_WITH_INV: invalidates `rkey` for QP `qp`; 0 or -errno. */
export function invalidateRkey(qp: usize, rkey: u32): i32 {
  const pd = load<u32>(qp + QP_PD);
  return keyIsMw(rkey) ? mwInvalidate(load<u32>(qp + SLOT_HANDLE), pd, rkey) : mrInvalidate(pd, rkey);
}

/** Takes the next resource of the ring for a new READ/atomic/ATOMIC_WRITE/FLUSH (rxe_prepare_res). */
function prepareRes(c: RespRun, type: u32): usize {
  const qp = c.qp;
  const b = c.blk;
  const n = resCount(qp);
  let head = rs(qp, RS_RES_HEAD);
  if (head >= n) head = 0;
  const r = resEntry(b, head);
  rsSet(qp, RS_RES_HEAD, head + 1 >= n ? 0 : head + 1);
  resDone(b, r); // recycling abandons whatever this resource still had to send
  memory.fill(r, 0, RES_SIZE);
  store<u32>(r + RES_TYPE, type);
  const psn = pk(c, PKT_PSN);
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
function queueRes(c: RespRun, r: usize): void {
  store<u32>(r + RES_MSN, rs(c.qp, RS_MSN));
  resQueue(c.blk, r);
}

function readReply(c: RespRun): RespState {
  const qp = c.qp;
  let r = c.res;
  if (!r) {
    r = prepareRes(c, M_READ);
    c.res = r;
    // Requests behind this READ start after its last response PSN. (rxe gets
    // there when the last response is sent; requests are handled on arrival here.)
    rsSet(qp, RS_PSN, psn_next(load<u32>(r + RES_LAST_PSN), 1));
    rsSet(qp, RS_OPCODE, 0);
    c.status = WC_SUCCESS;
  }
  queueRes(c, r);
  return RespState.CLEANUP;
}

function atomicReply(c: RespRun): RespState {
  const qp = c.qp;
  let r = c.res;
  if (!r) {
    const va = load<u64>(qp + QP_RESP + RS_VA);
    if (va & 7) return RespState.ERR_MISALIGNED_ATOMIC;
    r = prepareRes(c, M_ATOMIC);
    c.res = r;
    const a = pktHdr(c.pkt, HDR_ATMETH);
    const p = c.addr; // CHK_RKEY resolved va (a zero-based window moves it)
    const orig = load<u64>(p); // the value as the host sees it (little-endian memory)
    if (pk(c, PKT_OPCODE) == OPCODE_RC_CMP_SWAP) {
      if (orig == atmeth_compare(a)) store<u64>(p, atmeth_swap_add(a));
    } else {
      store<u64>(p, orig + atmeth_swap_add(a));
    }
    store<u64>(r + RES_ORIG, orig);
    rsSet(qp, RS_MSN, rs(qp, RS_MSN) + 1);
    advance(c);
  }
  return RespState.ACKNOWLEDGE;
}

function atomicWriteReply(c: RespRun): RespState {
  const qp = c.qp;
  let r = c.res;
  if (!r) {
    const va = load<u64>(qp + QP_RESP + RS_VA);
    if (va & 7) return RespState.ERR_MISALIGNED_ATOMIC; // IBA A19.4.2
    r = prepareRes(c, M_ATOMIC_WRITE);
    c.res = r;
    // the 8 payload bytes land as they are (rxe stores the raw u64)
    store<u64>(c.addr, load<u64>(<usize>pk(c, PKT_PAYLOAD)));
    rsSet(qp, RS_RESID, 0);
    rsSet(qp, RS_MSN, rs(qp, RS_MSN) + 1);
    advance(c);
  }
  return RespState.ACKNOWLEDGE;
}

function processFlush(c: RespRun): RespState {
  const qp = c.qp;
  if (!c.res) {
    // Memory here is always globally visible and as persistent as it gets: nothing to do.
    c.res = prepareRes(c, M_FLUSH);
    rsSet(qp, RS_MSN, rs(qp, RS_MSN) + 1);
    advance(c);
  }
  return RespState.ACKNOWLEDGE;
}

/** Writes the receive completion of the WQE in use (rxe do_complete). */
export function complete(c: RespRun): RespState {
  const qp = c.qp;
  const w = <usize>rs(qp, RS_WQE);
  if (w) {
    const cq = cqFind(load<u32>(qp + QP_RECV_CQ));
    const mask = pk(c, PKT_MASK);
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
    store<u32>(e + CQE_STATUS, c.status);
    store<u32>(e + CQE_QP_NUM, load<u32>(qp + QP_NUM));
    if (c.status == WC_SUCCESS) {
      count(Counter.RDMA_RECVS);
      const rdmaImm = (mask & M_IMMDT) != 0 && (mask & M_WRITE) != 0;
      store<u32>(e + CQE_OPCODE, rdmaImm ? WC_RECV_RDMA_WITH_IMM : WC_RECV);
      store<u32>(e + CQE_BYTE_LEN, rdmaImm ? rs(qp, RS_LENGTH) : rs(qp, RS_RECV_LEN));
      let flags = WC_FLAG_GRH; // rxe marks every receive completion GRH
      if (mask & M_IMMDT) {
        flags |= WC_FLAG_WITH_IMM;
        store<u32>(e + CQE_IMM_DATA, immdt_data(pktHdr(c.pkt, HDR_IMMDT)));
      }
      if (mask & M_IETH) {
        // ibv_wc invalidated_rkey shares imm_data's place; IBV_WC_WITH_INV (rxe
        // reports the kernel's bit 2 instead, which ibverbs reads as IP_CSUM_OK)
        flags |= WC_FLAG_WITH_INV;
        store<u32>(e + CQE_IMM_DATA, ieth_rkey(pktHdr(c.pkt, HDR_IETH)));
      }
      store<u32>(e + CQE_WC_FLAGS, flags);
      if (mask & M_DETH) {
        // UD: the sender's QP from the DETH, its address as a GID (ibv_wc src_qp; the GRH has it too)
        store<u32>(e + CQE_SRC_QP, deth_srcqp(pktHdr(c.pkt, HDR_DETH)));
        memory.copy(e + CQE_SGID, <usize>pk(c, PKT_SRC), 16);
      } else {
        store<u32>(e + CQE_SRC_QP, attr(qp, ATTR_DEST_QP_NUM));
      }
    }
    // rxe_cq_post(cq, cqe, bth_se(pkt)): the SE bit of the packet that completes the message
    store<u8>(e + CQE_SOLICITED, <u8>pk(c, PKT_SE));
    cqCommit(cq);
  }
  return RespState.ACKNOWLEDGE;
}

/** Decides this request's answer (rxe acknowledge); UC and UD answer nothing. */
function acknowledge(c: RespRun): RespState {
  if (c.type != QPT_RC) return RespState.CLEANUP;
  const mask = pk(c, PKT_MASK);
  if (c.syndrome != AETH_ACK_UNLIMITED) queueAck(c, c.syndrome, pk(c, PKT_PSN));
  else if ((mask & (M_ATOMIC | M_ATOMIC_WRITE | M_FLUSH)) && c.res) queueRes(c, c.res);
  else if (pk(c, PKT_ACKREQ)) queueAck(c, AETH_ACK_UNLIMITED, pk(c, PKT_PSN));
  return RespState.CLEANUP;
}

function duplicateRequest(c: RespRun): RespState {
  const qp = c.qp;
  const b = c.blk;
  const mask = pk(c, PKT_MASK);
  const psn = pk(c, PKT_PSN);
  if (mask & (M_SEND | M_WRITE)) {
    // C9-105: ACK again, up to the last request executed, and drop it.
    queueAck(c, AETH_ACK_UNLIMITED, psn_next(rs(qp, RS_ACK_PSN), PSN_MASK)); // ack_psn - 1
    return RespState.CLEANUP;
  }
  const r = resFind(b, resCount(qp), psn);
  if (!r) return RespState.CLEANUP; // class D: nothing to answer with
  if (mask & M_READ) {
    // The retried READ must ask for (part of) the same range with the same key.
    const reth = pktHdr(c.pkt, HDR_RETH);
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
    c.res = r;
    queueRes(c, r);
    return RespState.CLEANUP;
  }
  const t = load<u32>(r + RES_TYPE);
  if (!(mask & t)) return RespState.CLEANUP;
  store<u32>(r + RES_FLAGS, load<u32>(r + RES_FLAGS) | RESF_REPLAY);
  store<u32>(r + RES_CUR_PSN, psn);
  c.res = r;
  // atomics, ATOMIC_WRITE and FLUSH are answered from the saved result, never executed again
  queueRes(c, r);
  return RespState.CLEANUP;
}

