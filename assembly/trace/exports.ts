// Exports of assembly/trace: the trace ring (docs/ABI.md, "Trace ring"). The
// state names of the three state machines are exported with the transport
// (transport/exports.ts), where they are defined.
import {
  traceKinds, traceRing, traceSetKinds, traceStateCounts, TRACE_KIND_NAMES, TRACE_OVERWRITTEN, TR_SIZE,
} from "./trace";
import { ringCap, ringProd } from "../mem/ring";

/** The trace ring (common ring header; records from +192), or 0 before dev_open. */
export function trace_ring(): usize { return traceRing(); }
/** Bytes per record (32). */
export function trace_record_size(): u32 { return TR_SIZE; }
/** Records the ring holds. */
export function trace_capacity(): u32 { return traceRing() ? ringCap(traceRing()) : 0; }
/** Records written since dev_open (free-running u32): the next record's sequence number. */
export function trace_producer(): u32 { return traceRing() ? ringProd(traceRing()) : 0; }
/** Records overwritten because the ring was full. */
export function trace_overwritten(): u64 { return traceRing() ? load<u64>(traceRing() + TRACE_OVERWRITTEN) : 0; }
/** The kinds recorded now (bit k = TraceKind k; 0: off). */
export function trace_mask(): u32 { return traceKinds(); }
/** Sets the kinds to record (0 turns the ring off; ignored before dev_open); returns the previous mask. */
export function trace_set_mask(mask: u32): u32 { return traceSetKinds(mask); }
/** A UTF-16 AssemblyScript string (byte length at ptr - 4): the kind names, comma separated, in kind order. */
export function trace_kind_names(): usize { return changetype<usize>(TRACE_KIND_NAMES); }
/** The u64 per-state counts of a state machine (kind REQ_STATE, COMP_STATE or RESP_STATE), in state order; 0 for other kinds. */
export function trace_state_counts(kind: u32): usize { return traceStateCounts(kind); }
