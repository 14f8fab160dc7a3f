// UC and UD receive (rxe_resp.c's UC/UD branches): the same states and the
// same loop as RC (responder.ts runs both), with the steps that differ. Neither
// transport acknowledges anything, so there are no NAKs to send, no duplicates
// to replay and no READ/atomics: an error a UC responder meets loses the rest of
// the message silently (IBA class D) and the next FIRST/ONLY starts clean; a UD
// datagram that does not fit is dropped. Local errors (an SGE that refuses the
// bytes, a message larger than the WQE) still complete the WQE in error and move
// the QP to ERR, as on RC. A UD receive buffer starts with the 40-byte GRH.
import { count, Counter } from "../verbs/counters";
import { activeMtuBytes } from "../verbs/config";
import { QPT_UC, QPT_UD, WC_LOC_LEN_ERR, WC_LOC_QP_OP_ERR, WC_REM_INV_REQ_ERR } from "../verbs/enums";
import { QP_SRQ, QP_TYPE, RS_FLAGS, RS_OPCODE, RS_PSN, RS_RECV_LEN, RS_WQE, RS_WQE_LEN, RSF_DROP_MSG } from "../verbs/qp";
import { RWQE_CUR_SGE } from "../verbs/wqe";
import { ip4_build, ip6_build, IP4_FLAG_DF } from "../wire/ip";
import { M_COMP, M_RWR, M_SEND, M_START } from "../wire/opcode";
import { dmaReset } from "./dma";
import { RXM_DST, RXM_FLOW_LABEL, RXM_IP_FLAGS, RXM_IP_ID, RXM_SRC, RXM_TOS, RXM_TTL } from "./net";
import { PKT_IPV6, PKT_LEN, PKT_MASK, PKT_META, PKT_PAYLOAD, PKT_PAYLOAD_LEN, PKT_PSN } from "./pkt";
import {
  advance, checkLength, checkOpSeq, checkOpValid, checkRkey, pk, responderRun, rs, rsSet, sendDataIn, takeRecvWqe,
  writeDataIn, RespRun, RespState,
} from "./responder";

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
function ucDrop(c: RespRun): RespState {
  rsSet(c.qp, RS_FLAGS, rs(c.qp, RS_FLAGS) | RSF_DROP_MSG);
  rsSet(c.qp, RS_OPCODE, 0);
  return RespState.CLEANUP;
}

/** UC PSN: a gap (or a message already being dropped) loses the rest of the message; a FIRST/ONLY always starts a new one, whatever its PSN. */
function ucCheckPsn(c: RespRun): RespState {
  const gap = pk(c, PKT_PSN) != rs(c.qp, RS_PSN);
  if ((gap || (rs(c.qp, RS_FLAGS) & RSF_DROP_MSG)) && !(pk(c, PKT_MASK) & M_START)) {
    if (gap) count(Counter.OUT_OF_SEQ_REQUEST);
    return RespState.ERR_PSN_OUT_OF_SEQ;
  }
  return RespState.CHK_OP_SEQ;
}

/** UC: a FIRST/ONLY abandons a partial message before it (class D1/E); a MIDDLE/LAST must continue one. */
function ucCheckOpSeq(c: RespRun): RespState {
  if (!(pk(c, PKT_MASK) & M_START)) return checkOpSeq(c);
  rsSet(c.qp, RS_FLAGS, rs(c.qp, RS_FLAGS) & ~RSF_DROP_MSG);
  rsSet(c.qp, RS_OPCODE, 0);
  return RespState.CHK_OP_VALID;
}

/** A receive WQE for a new UC/UD message; UC reuses the one a dropped message had started. */
function ucudTakeWqe(c: RespRun): RespState {
  const w = <usize>rs(c.qp, RS_WQE);
  if (w && load<u32>(c.qp + QP_SRQ)) {
    // an SRQ WQE was already taken for a message that got dropped: start it over
    dmaReset(w + RWQE_CUR_SGE);
    rsSet(c.qp, RS_RECV_LEN, 0);
    return RespState.CHK_LENGTH;
  }
  return takeRecvWqe(c);
}

function ucExecute(c: RespRun): RespState {
  const mask = pk(c, PKT_MASK);
  const r = (mask & M_SEND) ? sendDataIn(c, <usize>pk(c, PKT_PAYLOAD), pk(c, PKT_PAYLOAD_LEN)) : writeDataIn(c);
  if (r != RespState.NONE) return r;
  advance(c);
  return (mask & M_COMP) ? RespState.COMPLETE : RespState.ACKNOWLEDGE;
}

/** UD: the datagram must fit the port MTU, and the WQE must hold it after the GRH. */
function udCheckLength(c: RespRun): RespState {
  const plen = pk(c, PKT_PAYLOAD_LEN);
  if (plen > activeMtuBytes()) return RespState.ERR_LENGTH;
  if (<u64>plen + GRH_SIZE > <u64>rs(c.qp, RS_WQE_LEN)) return RespState.ERR_RECV_OVERFLOW;
  return RespState.EXECUTE;
}

function udExecute(c: RespRun): RespState {
  fillGrh(c.pkt);
  let d = sendDataIn(c, grhBuf, GRH_SIZE);
  if (d == RespState.NONE) d = sendDataIn(c, <usize>pk(c, PKT_PAYLOAD), pk(c, PKT_PAYLOAD_LEN));
  // the length was checked: what fails here is an SGE whose MR is gone or lacks LOCAL_WRITE
  return d == RespState.NONE ? RespState.COMPLETE : RespState.ERR_MALFORMED_WQE;
}

/**
 * UD: a datagram too long for the MTU or the WQE. An SRQ WQE is already taken:
 * it completes in error (rxe: REM_INV_REQ) and the QP stays up; an RQ WQE is
 * only consumed on completion: it waits for the next datagram.
 */
function udTooLong(c: RespRun): RespState {
  if (load<u32>(c.qp + QP_SRQ)) {
    c.status = WC_REM_INV_REQ_ERR;
    return RespState.COMPLETE;
  }
  rsSet(c.qp, RS_WQE, 0);
  return RespState.CLEANUP;
}

/** The receive WQE completes with `status` and the QP goes to ERR. */
function localError(c: RespRun, status: u32): RespState {
  c.status = status;
  c.gotoError = true;
  return RespState.COMPLETE;
}

function ucudSteps(c: RespRun, s: RespState): RespState {
  const ud = c.type == QPT_UD;
  switch (s) {
    // UD has no PSN sequence, no messages of several packets, no access flags to check
    case RespState.CHK_PSN: return ud ? RespState.CHK_OP_SEQ : ucCheckPsn(c);
    case RespState.CHK_OP_SEQ: return ud ? RespState.CHK_OP_VALID : ucCheckOpSeq(c);
    case RespState.CHK_OP_VALID: return ud ? RespState.CHK_RESOURCE : checkOpValid(c);
    case RespState.CHK_RESOURCE: return (pk(c, PKT_MASK) & M_RWR) ? ucudTakeWqe(c) : RespState.CHK_LENGTH;
    case RespState.CHK_LENGTH: return ud ? udCheckLength(c) : checkLength(c);
    case RespState.CHK_RKEY: return checkRkey(c);
    case RespState.EXECUTE: return ud ? udExecute(c) : ucExecute(c);
    case RespState.ERR_RNR:
      // no receive WQE: without ACKs there is no RNR NAK, the message is dropped
      count(Counter.SEND_RNR_ERR);
      return ud ? RespState.CLEANUP : ucDrop(c);
    case RespState.ERR_MALFORMED_WQE: return localError(c, WC_LOC_QP_OP_ERR);
    case RespState.ERR_RECV_OVERFLOW: return ud ? udTooLong(c) : localError(c, WC_LOC_LEN_ERR);
    case RespState.ERR_LENGTH: return ud ? udTooLong(c) : ucDrop(c);
    // UC: out of sequence, an opcode the QP does not allow, a bad R_Key or range
    default: return ucDrop(c);
  }
}

/** A validated UC or UD request packet for `qp` (pkt: the packet-info record). */
export function ucudRecv(qp: usize, pkt: usize): void {
  const type = load<u32>(qp + QP_TYPE);
  if (type != QPT_UC && type != QPT_UD) return;
  responderRun(qp, pkt, ucudSteps);
}
