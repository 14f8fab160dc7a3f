// Exports of the packet path and the progress loop (docs/TRANSPORT.md).
import { engineDoorbell, engineInit, enginePending, engineReady, engineRx, engineTick, engineTxRelease } from "./engine";
import { rxBuf, rxMeta, txRingAddr, RX_BUF_CAP, RX_RESULT_NAMES } from "./net";
import { timersNext } from "../sched/timers";
import { qpFind, qpState } from "../verbs/qp";
import { flushRq, flushSq } from "../verbs/flush";
import { QpState, QP_STATE_NAMES } from "../verbs/enums";
import { TraceKind } from "../trace/trace";
import { COMP_STATE_NAMES } from "./completer";
import { REQ_STATE_NAMES } from "./requester";
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
export function rx_buf(): usize { return rxBuf; }
export function rx_buf_cap(): u32 { return RX_BUF_CAP; }
export function rx_meta(): usize { return rxMeta; }
export function rx_result_names(): usize { return changetype<usize>(RX_RESULT_NAMES); }

/** One datagram of `len` bytes is in rx_buf, its facts in rx_meta: 0 accepted, else the drop reason. */
export function rx(len: u32, now: f64): u32 { return <u32>engineRx(len, now); }

export function tick(now: f64): f64 { return engineTick(now); }

export function tx_release(n: u32, now: f64): void { engineTxRelease(n, now); }

export function next_deadline(): f64 { return timersNext(); }

export function engine_pending(): u32 { return enginePending(); }

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
