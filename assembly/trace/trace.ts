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
import {
  TraceKind, TR_SEQ, TR_KIND, TR_TIME, TR_QPN, TR_A, TR_B, TR_C, TR_SIZE, TRACE_OVERWRITTEN, TRACE_STATES_MAX,
} from "../abi/trace";

// ABI constants: generated from abi/schema.json into assembly/abi/trace.ts; re-exported for this file's importers.
export {
  TraceKind, TRACE_KIND_NAMES, TR_SEQ, TR_KIND, TR_TIME, TR_QPN, TR_A, TR_B, TR_C, TR_SIZE, TRACE_NONE,
  TRACE_OVERWRITTEN, TRACE_DEFAULT_CAP, TRACE_MAX_CAP, TRACE_STATES_MAX,
} from "../abi/trace";

/** Every kind there is. */
export const TRACE_ALL: u32 = ((<u32>1 << <u32>TraceKind.COUNT) - 1) & ~<u32>1;

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
