// The trace ring: what the device did, in order, for readers outside it (the
// host API, `softroce devinfo -v`, the playground's ladder) — every state each
// engine entered, every packet sent, every packet received with its verdict,
// every timer that fired, every QP state change and every completion. A ring of
// fixed-size records in linear memory, carved once at dev_open like the pools:
// writing a record allocates nothing, and when the ring is full the oldest
// record is overwritten and counted. Off by default (config flag bit 1 or
// trace_set_mask turn it on): an event site then costs one load and one
// predictable branch on the kind mask. The per-state counts of the three state
// machines are kept whether or not the ring records.
import { ringBytes, ringCap, ringEntry, ringInit, ringProd, ringSetProd, RING_TRACE } from "../mem/ring";
import { nowUs } from "../sched/clock";

/** What a record is about; bit k of the kind mask lets kind k into the ring. */
export const enum TraceKind {
  NONE = 0,
  REQ_STATE, // the requester entered a state (ReqState, transport/requester.ts)
  COMP_STATE, // the completer entered a state (CompState, transport/completer.ts)
  RESP_STATE, // the responder entered a state (RespState, transport/responder.ts)
  PKT_SENT, // a packet went into the TX ring
  PKT_RECV, // a datagram was received: accepted or dropped (rx's verdict)
  TIMER_RETRANSMIT, // a QP's retransmit timer fired
  TIMER_RNR, // a QP's RNR timer fired
  QP_STATE, // a QP changed ibv_qp_state (qp_modify, or the transport moving it to ERR)
  COMPLETION, // a CQE was posted
  COUNT,
}
/** Kind names in enum order, comma separated. */
export const TRACE_KIND_NAMES =
  "NONE,REQ_STATE,COMP_STATE,RESP_STATE,PKT_SENT,PKT_RECV,TIMER_RETRANSMIT,TIMER_RNR,QP_STATE,COMPLETION";
/** Every kind there is. */
export const TRACE_ALL: u32 = ((<u32>1 << <u32>TraceKind.COUNT) - 1) & ~<u32>1;

// ---- a record, 32 bytes; what A, B and C hold depends on the kind ----
export const TR_SEQ: usize = 0; // u32 sequence number: the producer index it was written at
export const TR_KIND: usize = 4; // u32 TraceKind
export const TR_TIME: usize = 8; // f64 device time (µs) of the call that produced it
export const TR_QPN: usize = 16; // u32 the local QP number it concerns (PKT_RECV: the BTH's), TRACE_NONE when unknown
export const TR_A: usize = 20; // u32 *_STATE: the state entered; PKT_*: opcode; QP_STATE: new state; COMPLETION: status
export const TR_B: usize = 24; // u32 *_STATE: the state before (TRACE_NONE first); PKT_*: PSN; QP_STATE: old state; COMPLETION: WC opcode
export const TR_C: usize = 28; // u32 REQ_STATE: next PSN; COMP/RESP_STATE: the packet's PSN (TRACE_NONE: none);
//                               PKT_SENT: AETH (syndrome << 24 | MSN) or 0; PKT_RECV: 0 accepted, else the drop
//                               reason (rx_result_names); QP_STATE: the WC status that moved it to ERR, else 0;
//                               COMPLETION: byte_len
export const TR_SIZE: u32 = 32;

/** "None" in a record field. */
export const TRACE_NONE: u32 = 0xffffffff;

// The ring uses the common ring header (mem/ring.ts: capacity, slot size, kind
// RING_TRACE, producer index; the consumer index is unused, readers keep their
// own), plus, in the header's first line:
export const TRACE_OVERWRITTEN: usize = 16; // u64 records overwritten before anyone could have read them

/** Records in a ring by default (config offset 84 = 0). */
export const TRACE_DEFAULT_CAP: u32 = 1024;
export const TRACE_MAX_CAP: u32 = 1 << 20;

/** States per state machine that the counters have room for. */
export const TRACE_STATES_MAX: u32 = 32;

let ring: usize = 0;
let kinds: u32 = 0;
const stateCounts: usize = memory.data(3 * 32 * 8, 8);

/** Bytes a ring of `cap` records takes. */
export function traceBytes(cap: u32): u32 { return ringBytes(cap, TR_SIZE); }

/** Lays the ring out at `r` (carved by dev_open), recording `mask`'s kinds. */
export function traceAttach(r: usize, cap: u32, mask: u32): void {
  ringInit(r, cap, TR_SIZE, RING_TRACE, 0);
  store<u64>(r + TRACE_OVERWRITTEN, 0);
  ring = r;
  kinds = mask & TRACE_ALL;
}

export function traceRing(): usize { return ring; }
export function traceKinds(): u32 { return kinds; }
/** Sets the kinds the ring records (0: none); returns the previous mask. */
export function traceSetKinds(mask: u32): u32 {
  const old = kinds;
  kinds = ring ? mask & TRACE_ALL : 0;
  return old;
}

/** Does the ring record `kind` now? The one branch an event site pays. */
@inline export function traceOn(kind: TraceKind): bool { return (kinds & (<u32>1 << <u32>kind)) != 0; }

/** Appends a record (the caller checked traceOn); the oldest goes when the ring is full. */
export function traceRecord(kind: TraceKind, qpn: u32, a: u32, b: u32, c: u32): void {
  const r = ring;
  const i = ringProd(r);
  // full once it has wrapped: nothing consumes
  if (i >= ringCap(r) || load<u64>(r + TRACE_OVERWRITTEN) != 0) store<u64>(r + TRACE_OVERWRITTEN, load<u64>(r + TRACE_OVERWRITTEN) + 1);
  const e = ringEntry(r, i);
  store<u32>(e + TR_SEQ, i);
  store<u32>(e + TR_KIND, kind);
  store<f64>(e + TR_TIME, nowUs);
  store<u32>(e + TR_QPN, qpn);
  store<u32>(e + TR_A, a);
  store<u32>(e + TR_B, b);
  store<u32>(e + TR_C, c);
  ringSetProd(r, i + 1);
}

/** The u64 count per state of a state machine's kind (REQ_STATE, COMP_STATE, RESP_STATE), or 0. */
export function traceStateCounts(kind: u32): usize {
  if (kind < <u32>TraceKind.REQ_STATE || kind > <u32>TraceKind.RESP_STATE) return 0;
  return stateCounts + <usize>(kind - <u32>TraceKind.REQ_STATE) * (TRACE_STATES_MAX << 3);
}

/** Times a state machine entered `state`, since the module started. */
export function traceStateCount(kind: u32, state: u32): u64 {
  const p = traceStateCounts(kind);
  return p && state < TRACE_STATES_MAX ? load<u64>(p + (<usize>state << 3)) : 0;
}

/**
 * A state machine entered `state`: counts it, and says whether the ring wants
 * the record (then the engine writes it with traceRecord and its own fields).
 */
@inline export function traceState(kind: TraceKind, state: u32): bool {
  const p = stateCounts + <usize>(<u32>kind - <u32>TraceKind.REQ_STATE) * (TRACE_STATES_MAX << 3) + (<usize>state << 3);
  store<u64>(p, load<u64>(p) + 1);
  return traceOn(kind);
}
