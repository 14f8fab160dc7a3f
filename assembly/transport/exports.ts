// Exports of the packet path and the progress loop (docs/TRANSPORT.md).
import { engineAckHold, engineDoorbell, engineInit, enginePending, engineReady, engineRx, engineRxAt, engineRxBatch, engineRxBatchTaken, engineRxBatchUpTo, engineTick, engineTxRelease } from "./engine";
import { rxBatchInit, rxBatchSlots, rxBatchSlotSize, rxBuf, rxMeta, setIcrcOffload, txRingAddr, txSetSport, RX_BUF_CAP, RX_RESULT_NAMES } from "./net";
import { timersNext } from "../sched/timers";
import { ackHeldCount } from "./responder_send";
import { budgetAdmits, budgetBlocks, budgetInflight, budgetInflightPackets, budgetLimit, budgetLimitPackets, budgetPeak, budgetSetLimit, budgetWaiting, budgetWakes } from "../sched/budget";
import { qpFind, qpState } from "../verbs/qp";
import { qpModify } from "../verbs/qp_modify";
import { devArgs } from "../verbs/device";
import { nowUs } from "../sched/clock";
import { flushRq, flushSq } from "../verbs/flush";
import { QpState, QP_STATE_NAMES } from "../verbs/enums";
import { TraceKind } from "../trace/trace";
import { COMP_STATE_NAMES } from "./completer";
import { REQ_STATE_NAMES, wrClass } from "./requester";
import { RESP_STATE_NAMES } from "./responder";
import { EBUSY, EINVAL } from "../mem/errno";
import { DOORBELL_RQ, DOORBELL_SQ } from "../abi/config";

/** Sets up the TX ring (`txCap` descriptors, a power of two), timers and arbiter. Call right after dev_open. */
export function transport_open(txCap: u32, localPort: u32): i32 {
  if (engineReady()) return -EBUSY;
  if (txCap < 2 || (txCap & (txCap - 1)) != 0 || localPort > 0xffff) return -EINVAL;
  engineInit(txCap, localPort);
  return 0;
}

export function tx_ring(): usize { return txRingAddr(); }
/** TX descriptor `i` (in flight) leaves from UDP port `port` (0: the device's): its ICRC is recomputed. 0 or -1. */
export function tx_set_sport(i: u32, port: u32): i32 { return txSetSport(i, port); }
/**
 * ICRC offload (1 on, 0 off; returns the state): the host computes the ICRC of every descriptor
 * built from now on as it sends it (TXF_ICRC_HOST marks them). Only for a host port that does
 * (the Node datapath); on receive the host's value comes per record (RXR_ICRC_HOST), no switch.
 */
export function icrc_offload(on: u32): u32 { return setIcrcOffload(on != 0) ? 1 : 0; }
export function rx_buf(): usize { return rxBuf; }
export function rx_buf_cap(): u32 { return RX_BUF_CAP; }
export function rx_meta(): usize { return rxMeta; }
export function rx_result_names(): usize { return changetype<usize>(RX_RESULT_NAMES); }

/** One datagram of `len` bytes is in rx_buf, its facts in rx_meta: 0 accepted, else the drop reason. */
export function rx(len: u32, now: f64): u32 { return <u32>engineRx(len, now); }

/**
 * One datagram of `len` bytes the host wrote in place at `data` (a receive slot it carved with
 * rx_batch_init), its facts in rx_meta: as `rx`, without the copy into rx_buf. A range outside
 * linear memory is refused (SHORT).
 */
export function rx_at(data: usize, len: u32, now: f64): u32 { return <u32>engineRxAt(data, len, now); }

/**
 * Batched receive in place (docs/TRANSPORT.md): rx_batch_init carves `slots` slots of `slotSize`
 * bytes (rx_batch_slots, rx_batch_slot_size) and `records` batch records, and returns the
 * records' address (0: bad sizes); call it at attach, before taking views of the memory.
 */
export function rx_batch_init(records: u32, slots: u32, slotSize: u32): usize { return rxBatchInit(records, slots, slotSize); }
export function rx_batch_slots(): usize { return rxBatchSlots(); }
export function rx_batch_slot_size(): u32 { return rxBatchSlotSize(); }

/**
 * `count` received datagrams described by batch records at `recs` (RXR_SIZE apart): each is
 * validated and dispatched where it lies (no copy into rx_buf), its verdict in the record; then
 * the sender runs once. Returns how many were accepted among those it dealt with: it stops early
 * behind a READ request (rx_batch_taken says where).
 */
export function rx_batch(recs: usize, count: u32, now: f64): u32 { return engineRxBatch(recs, count, now); }

/**
 * How many records the last `rx_batch` dealt with: its count, or fewer when it stopped after
 * a READ request with a request to the same QP behind it (not a READ): the host sends what the
 * TX ring holds (the READ's responses), then hands over the rest (`recs` advanced), as rxe
 * sends a READ's responses before it looks at the next request.
 */
export function rx_batch_taken(): u32 { return engineRxBatchTaken(); }

/**
 * As `rx_batch`, for records whose every IP fact the host wrote (IP flags, TTL, TOS, flow label:
 * the simulated wire knows them, a UDP socket does not), used as written; it stops after an
 * accepted READ request (a request behind it waits for the host to send the READ's responses,
 * which are read from the MR as they leave). Returns how many records it dealt with: the host
 * drains the TX ring, then hands over the rest.
 */
export function rx_batch_upto(recs: usize, count: u32, now: f64): u32 { return engineRxBatchUpTo(recs, count, now); }

/**
 * 1: from now on plain ACKs wait for the host (the Node datapath's deferred flush: call it just
 * before rx_batch); 0: they go, after what was posted meanwhile, and the sender runs. The host
 * ends a hold within the turn of its event loop that started it.
 */
export function tx_ack_hold(on: u32, now: f64): void { engineAckHold(on != 0, now); }

/** QPs whose plain ACK is held now. */
export function tx_ack_held(): u32 { return ackHeldCount(); }

export function tick(now: f64): f64 { return engineTick(now); }

export function tx_release(n: u32, now: f64): void { engineTxRelease(n, now); }

export function next_deadline(): f64 { return timersNext(); }

export function engine_pending(): u32 { return enginePending(); }

/**
 * The device-wide in-flight budget (sched/budget.ts): RC request bytes, counted at the receiver's
 * socket-buffer cost, the device lets out before they are acknowledged; 0 = no limit (the default).
 * The host derives it from the socket buffers; `packets` (0 = none) bounds the same traffic in packets,
 * which bounds the peer's queueing delay. Returns 0, or -EINVAL for a negative or non-finite byte count.
 */
export function tx_budget_set(bytes: f64, packets: u32): i32 {
  if (!(bytes >= 0) || bytes > 9007199254740991) return -EINVAL;
  budgetSetLimit(<u64>bytes, packets);
  return 0;
}

/**
 * The budget's figures: 0 limit (bytes), 1 bytes in flight, 2 QPs waiting, 3 admissions, 4 waits,
 * 5 wake-ups, 6 peak bytes in flight, 7 limit (packets), 8 packets in flight.
 */
export function tx_budget_stat(which: u32): f64 {
  switch (which) {
    case 0: return <f64>budgetLimit();
    case 1: return <f64>budgetInflight();
    case 2: return <f64>budgetWaiting();
    case 3: return <f64>budgetAdmits();
    case 4: return <f64>budgetBlocks();
    case 5: return <f64>budgetWakes();
    case 6: return <f64>budgetPeak();
    case 7: return <f64>budgetLimitPackets();
    case 8: return <f64>budgetInflightPackets();
    default: return -1;
  }
}

/**
 * The class bits of a WR opcode on a QP type (rxe_wr_opcode_info: M_SEND, M_WRITE, M_READ, …, or
 * the local-operation bit), 0 when that QP type does not take the opcode: what ibv_post_send
 * checks first, from the requester's own table.
 */
export function wr_class(op: u32, qpType: u32): u32 { return wrClass(op, qpType); }

/**
 * ibv_modify_qp. Leaving SQD for RTS resumes the send queue at once: WRs queued
 * behind the drain point (or posted in SQD) go out without waiting for another doorbell.
 */
export function qp_modify(h: u32, mask: u32): i32 {
  const q = qpFind(h);
  const was = q ? qpState(q) : 0;
  const r = qpModify(h, mask, devArgs());
  if (r == 0 && was == QpState.SQD && qpState(q) == QpState.RTS && engineReady()) engineDoorbell(q, nowUs);
  return r;
}

/**
 * The post verbs' kick: one call per post batch, with the host's time (µs). A QP
 * in ERR flushes the new WQEs; otherwise the QP is scheduled and the sender runs.
 */
export function doorbell(h: u32, queues: u32, now: f64): i32 {
  const q = qpFind(h);
  if (!q) return -EINVAL;
  if (qpState(q) == QpState.ERR) {
    if (queues & DOORBELL_SQ) flushSq(q);
    if (queues & DOORBELL_RQ) flushRq(q);
    return 0;
  }
  engineDoorbell(q, now);
  return 0;
}

/** The transport half of a doorbell alone (no flush in ERR). */
export function transport_doorbell(h: u32, now: f64): i32 {
  const q = qpFind(h);
  if (!q) return -EINVAL;
  engineDoorbell(q, now);
  return 0;
}

/**
 * A UTF-16 AssemblyScript string: the names, comma separated, of the states a
 * trace record of `kind` carries in its A and B fields — the requester's,
 * completer's or responder's (rxe's names where rxe has them) or ibv_qp_state's;
 * "" for other kinds. trace_state_counts(kind) counts the first three per state.
 */
export function trace_state_names(kind: u32): usize {
  switch (kind) {
    case TraceKind.REQ_STATE: return changetype<usize>(REQ_STATE_NAMES);
    case TraceKind.COMP_STATE: return changetype<usize>(COMP_STATE_NAMES);
    case TraceKind.RESP_STATE: return changetype<usize>(RESP_STATE_NAMES);
    case TraceKind.QP_STATE: return changetype<usize>(QP_STATE_NAMES);
    default: return changetype<usize>("");
  }
}
