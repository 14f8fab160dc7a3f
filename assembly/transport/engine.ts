// The device's progress loop: the only places work happens. Every entry point
// takes the host's time, does its event (doorbell, datagram, timers, TX slots
// freed), then runs the sender: QPs leave the TX arbiter in turn and their
// responder and requester emit packets until the budget or the TX ring runs
// out. Work that does not fit stays queued; nothing is dropped by the sender.
import { arbiterInit, arbiterLength, arbiterNext } from "../sched/arbiter";
import { budgetAcked, budgetInit } from "../sched/budget";
import { setNow } from "../sched/clock";
import { timerPopDue, timersInit, timersNext } from "../sched/timers";
import { SLOT_HANDLE } from "../mem/pool";
import { cfg, CFG_MAX_QP } from "../verbs/config";
import { completerRecv, completeSent, retransmitTimeout } from "./completer";
import { mcastCount, mcastQp } from "../verbs/mcast";
import { cqCommits } from "../verbs/cq";
import { qpFind } from "../verbs/qp";
import {
  netInit, rxAcceptQp, rxBuf, rxGroup, rxMeta, rxValidate, traceReceived, txAvailable, txMarkIndex, txMarkQpn, txRelease,
  txRingAddr, txTakeMark, RxResult, RXM_FLOW_LABEL, RXM_IP_FLAGS, RXM_TOS, RXM_TTL, RXR_DATA, RXR_FLAGS, RXR_ID_HINT, RXR_ICRC_HOST,
  RXR_LENGTH, RXR_RESULT, RXR_SIZE, RXR_TRUNCATED,
} from "./net";
import { IP4_FLAG_DF } from "../wire/ip";
import { ringCons } from "../mem/ring";
import { qpAt, qpIndex, COMP_PSN, QP_COMP, QP_NUM, QP_TYPE } from "../verbs/qp";
import { QPT_RC } from "../verbs/enums";
import { pktInfo, PKT_BTH, PKT_MASK } from "./pkt";
import { requesterInit, requesterSend, rnrTimeout } from "./requester";
import { responderRecv } from "./responder";
import { ackHold, ackHoldInit, responderSend } from "./responder_send";
import { ucudRecv } from "./responder_ucud";
import { M_READ, M_REQ, OP_READ_REQUEST } from "../wire/opcode";
import { bth_opcode, bth_qpn, BTH_SIZE } from "../wire/bth";
import { responderInit } from "./resources";
import { traceOn, traceRecord, TraceKind } from "../trace/trace";
import { isRnrTimer, scheduleQp, timerQp, TIMERS_PER_QP } from "./qp_sched";

/** Packets the sender may emit per entry-point call before yielding to the host. */
export const SEND_BUDGET: i32 = 256;

let ready = false;

export function engineInit(txCap: u32, localPort: u32): void {
  const maxQp = cfg(CFG_MAX_QP);
  netInit(txCap, localPort);
  timersInit(<i32>(TIMERS_PER_QP * maxQp));
  arbiterInit(maxQp);
  budgetInit(maxQp);
  // Everything the engines keep per QP or per TX slot is carved now, at open:
  // memory never grows later, so the host's views (MR bytes) stay valid.
  requesterInit();
  responderInit();
  ackHoldInit(maxQp);
  ready = true;
}

export function engineReady(): bool { return ready; }

/** Runs the sender until the budget, the TX ring or the queued work runs out. */
export function runSender(): void {
  let budget = SEND_BUDGET;
  while (budget > 0 && txAvailable() > 0) {
    const idx = arbiterNext();
    if (idx < 0) break;
    const qp = qpAt(<u32>idx);
    if (!load<u32>(qp + SLOT_HANDLE)) continue; // destroyed since it was queued
    budget -= responderSend(qp, budget);
    if (budget > 0 && txAvailable() > 0) budget -= requesterSend(qp, budget);
  }
}

export function engineDoorbell(qp: usize, now: f64): void {
  setNow(now);
  if (!ready) return;
  scheduleQp(qp);
  runSender();
}

export function engineRx(len: u32, now: f64): RxResult {
  setNow(now);
  if (!ready) return RxResult.SHORT;
  const r = rxOne(rxBuf, rxMeta, len, 0);
  runSender();
  return r;
}

/**
 * One datagram of `len` bytes that the host wrote in place at `data` (a receive slot in linear
 * memory: no copy into rx_buf), its facts in rx_meta: validated and dispatched where it lies,
 * then the sender runs. A range outside the memory is refused (SHORT).
 */
export function engineRxAt(data: usize, len: u32, now: f64): RxResult {
  setNow(now);
  if (!ready) return RxResult.SHORT;
  if (<u64>data + <u64>len > (<u64>memory.size() << 16)) return RxResult.SHORT;
  const r = rxOne(data, rxMeta, len, 0);
  runSender();
  return r;
}

/** Validates one datagram at `b` (facts at `meta`) and hands it to its engine; the sender does not run. */
function rxOne(b: usize, meta: usize, len: u32, idHint: u32, hostIcrc: bool = false): RxResult {
  const r = rxValidate(b, meta, len, idHint, hostIcrc);
  if (traceOn(TraceKind.PKT_RECV)) traceReceived(b, len, r);
  if (r == RxResult.OK) {
    const qp = <usize>load<u32>(pktInfo);
    if (!qp) {
      // a multicast datagram: every QP attached to the group that accepts it gets a copy
      const g = rxGroup;
      for (let i: u32 = 0, n = mcastCount(g); i < n; i++) {
        const m = qpFind(mcastQp(g, i));
        if (m && rxAcceptQp(m) == RxResult.OK) ucudRecv(m, pktInfo);
      }
    } else if (!(load<u32>(pktInfo + PKT_MASK) & M_REQ)) {
      completerRecv(qp, pktInfo);
      // acknowledged PSNs give their share of the in-flight budget back (sched/budget.ts)
      budgetAcked(qpIndex(qp), load<u32>(qp + QP_COMP + COMP_PSN));
    }
    else if (load<u32>(qp + QP_TYPE) == QPT_RC) responderRecv(qp, pktInfo);
    else ucudRecv(qp, pktInfo);
  }
  return r;
}

/**
 * `count` datagrams the host received in place (batch records at `recs`,
 * RXR_SIZE apart, each the RX meta record plus where its bytes lie): each is
 * validated and dispatched where it lies, its verdict written to RXR_RESULT;
 * then the sender runs once, so the batch's ACKs and responses are in the TX
 * ring when this returns. Returns how many were accepted.
 */
export function engineRxBatch(recs: usize, count: u32, now: f64): u32 {
  return rxRecords(recs, count, now, false);
}

/** Records the last engineRxBatch dealt with: its count, or fewer when it stopped behind a READ (rxRecords). */
let batchTaken: u32 = 0;
export function engineRxBatchTaken(): u32 {
  return batchTaken;
}

/**
 * After the accepted datagram of record `rec` (a batch, not the simulated wire's): does
 * the batch stop here for the host to send a READ's responses? Only when the datagram
 * was a READ request and the next record is a request to the same QP that is not a READ
 * request: a WRITE, SEND or atomic behind a READ whose responses still sit in the TX ring
 * (zero copy: read from the MR as they leave) would be refused with an RNR NAK, where
 * rxe sends all of a READ's responses before it looks at the next request. READs behind
 * READs (read_bw) and requests to other QPs keep the batch whole.
 */
function stopBehindRead(next: usize): bool {
  const mask = load<u32>(pktInfo + PKT_MASK);
  if (!(mask & M_REQ) || !(mask & M_READ)) return false;
  if (load<u32>(next + RXR_FLAGS) & RXR_TRUNCATED) return false;
  const data = <u64>load<u32>(next + RXR_DATA);
  // the next datagram is not validated yet: only its BTH is looked at, within linear memory
  if (load<u32>(next + RXR_LENGTH) < BTH_SIZE || data + BTH_SIZE > (<u64>memory.size() << 16)) return false;
  const nb = <usize>data;
  return bth_opcode(nb) != OP_READ_REQUEST && bth_qpn(nb) == bth_qpn(<usize>load<u32>(pktInfo + PKT_BTH));
}

/**
 * As engineRxBatch, for records whose every IP fact the host wrote (IP flags, TTL,
 * TOS, flow label: the simulated wire knows them), handing back to the host early
 * so that a batch behaves as the same datagrams one call each would:
 * - after a datagram that made a completion (the application may react to it
 *   before the next datagram: post receives a UC/UD SEND behind it needs, post
 *   the next request);
 * - after an accepted READ request: its responses are read from the MR when the
 *   host sends them, so a request behind it that writes memory would be refused
 *   (RNR) until the host has drained the TX ring; rxe sends a READ's responses
 *   before it looks at the next request.
 * Returns how many records were dealt with (their verdicts written); the host
 * drains the TX ring, runs the application, and hands over the rest.
 */
export function engineRxBatchUpTo(recs: usize, count: u32, now: f64): u32 {
  return rxRecords(recs, count, now, true);
}

/** The records of engineRxBatch (`sim`: engineRxBatchUpTo): accepted, or (sim) dealt with. */
function rxRecords(recs: usize, count: u32, now: f64, sim: bool): u32 {
  setNow(now);
  batchTaken = count;
  if (!ready) return 0;
  let ok: u32 = 0;
  const cqes = cqCommits;
  for (let i: u32 = 0; i < count; i++) {
    const rec = recs + <usize>i * RXR_SIZE;
    if (!sim) {
      // what a UDP socket cannot show: DF (softroce and rxe set it), no TTL/TOS/flow label
      store<u32>(rec + RXM_IP_FLAGS, IP4_FLAG_DF);
      store<u32>(rec + RXM_TTL, 0);
      store<u32>(rec + RXM_TOS, 0);
      store<u32>(rec + RXM_FLOW_LABEL, 0);
    }
    if (load<u32>(rec + RXR_FLAGS) & RXR_TRUNCATED) {
      store<i32>(rec + RXR_RESULT, -1);
      continue;
    }
    const data = load<u32>(rec + RXR_DATA);
    const len = load<u32>(rec + RXR_LENGTH);
    // the host's word for where the bytes are, checked against the memory
    // the ICRC the host computed (the Node datapath's offload); the simulated wire's records carry none
    const hostIcrc = !sim && (load<u32>(rec + RXR_FLAGS) & RXR_ICRC_HOST) != 0;
    const r = <u64>data + <u64>len > (<u64>memory.size() << 16) ? RxResult.SHORT : rxOne(<usize>data, rec, len, load<u32>(rec + RXR_ID_HINT), hostIcrc);
    store<i32>(rec + RXR_RESULT, <i32>r);
    if (r == RxResult.OK) ok++;
    if (!sim && r == RxResult.OK && i + 1 < count && stopBehindRead(rec + RXR_SIZE)) {
      batchTaken = i + 1;
      runSender();
      return ok;
    }
    if (sim && i + 1 < count) {
      const mask = r == RxResult.OK ? load<u32>(pktInfo + PKT_MASK) : 0;
      if (cqCommits != cqes || ((mask & M_REQ) && (mask & M_READ))) {
        runSender();
        return i + 1;
      }
    }
  }
  runSender();
  return sim ? count : ok;
}

/** Fires every due timer, runs the sender, returns the next deadline (µs, Infinity if none). */
export function engineTick(now: f64): f64 {
  setNow(now);
  if (!ready) return Infinity;
  for (let n = 0; n < 100000; n++) {
    const id = timerPopDue(now);
    if (id < 0) break;
    const qp = timerQp(id);
    if (!load<u32>(qp + SLOT_HANDLE)) continue;
    const rnr = isRnrTimer(id);
    const kind = rnr ? TraceKind.TIMER_RNR : TraceKind.TIMER_RETRANSMIT;
    if (traceOn(kind)) traceRecord(kind, load<u32>(qp + QP_NUM), 0, 0, 0);
    if (rnr) rnrTimeout(qp);
    else retransmitTimeout(qp);
  }
  ackHold(false); // a hold never outlives the host's turn: a timer ends one left open
  runSender();
  return timersNext();
}

export function engineTxRelease(n: u32, now: f64): void {
  setNow(now);
  if (!ready) return;
  const from = ringCons(txRingAddr());
  txRelease(n);
  const to = ringCons(txRingAddr());
  for (let i = from; i != to; i++) {
    const qp = txTakeMark(i);
    // the QP may be gone or reused since the packet was queued
    if (qp && load<u32>(qp + SLOT_HANDLE) && load<u32>(qp + QP_NUM) == txMarkQpn) completeSent(qp, txMarkIndex);
  }
  runSender();
}

/**
 * Holds plain ACKs (on) until the host's flush, or ends the hold (off): every held ACK is
 * queued and the sender runs, so they follow what the turn posted (responder_send.ts ackHold).
 */
export function engineAckHold(on: bool, now: f64): void {
  setNow(now);
  if (!ready) return;
  ackHold(on);
  if (!on) runSender();
}

export function enginePending(): u32 { return arbiterLength(); }
