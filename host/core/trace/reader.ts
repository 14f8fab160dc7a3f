// Reads the device's trace ring (docs/ABI.md, "Trace ring") into plain event
// objects: every state the requester, completer and responder entered (with
// rxe's names), every packet sent and received (with the receive verdict), the
// timers that fired, QP state changes and completions. Names come from the
// core's own exported tables (trace_kind_names, trace_state_names,
// rx_result_names): the layout and the vocabulary have one home, the core.
// A reader keeps its own cursor; records the ring overwrote before they were
// read are counted, not invented. The record layout is the generated ABI's (host/core/abi).
import { Ring, TraceRec as TR, TRACE_KIND_NAMES, TRACE_NONE } from "../abi/index.js";

export { TRACE_NONE };

/** The trace exports of build/softroce.wasm this reader uses. */
export interface TraceCore {
  memory: WebAssembly.Memory;
  trace_ring(): number;
  trace_record_size(): number;
  trace_capacity(): number;
  trace_producer(): number;
  trace_overwritten(): bigint;
  trace_mask(): number;
  trace_set_mask(mask: number): number;
  trace_kind_names(): number;
  trace_state_names(kind: number): number;
  trace_state_counts(kind: number): number;
  rx_result_names(): number;
}


/** Kind names as the core names them (TraceKind in abi/schema.json; NONE is no record's kind). */
export type TraceKindName = Exclude<(typeof TRACE_KIND_NAMES)[number], "NONE">;

export interface TraceEvent {
  /** Sequence number: the producer index the record was written at. */
  seq: number;
  kind: TraceKindName | string;
  /** Device time (µs) of the call that produced it. */
  timeUs: number;
  /** Local QP number (PKT_RECV: the BTH's destination QP); undefined when unknown. */
  qpn?: number;
  /** *_STATE, QP_STATE: the state entered, by its name in the core. */
  state?: string;
  /** *_STATE, QP_STATE: the state before (undefined for the first of a run). */
  from?: string;
  /** PKT_*: BTH opcode (undefined for a datagram shorter than a BTH). */
  opcode?: number;
  /** PKT_*: BTH PSN; REQ_STATE: the next PSN to send; COMP/RESP_STATE: the packet's PSN. */
  psn?: number;
  /** PKT_SENT with an AETH: its syndrome and MSN. */
  syndrome?: number;
  msn?: number;
  /** PKT_RECV: the receive verdict, "ok" or a drop reason (rx_result_names). */
  verdict?: string;
  /** COMPLETION and QP_STATE (moved to ERR by the transport): the ibv_wc_status. */
  status?: number;
  /** COMPLETION: the ibv_wc_opcode and byte_len. */
  wcOpcode?: number;
  byteLen?: number;
  /** The raw record fields, for kinds this reader does not know. */
  a: number;
  b: number;
  c: number;
}

function readString(memory: WebAssembly.Memory, ptr: number): string {
  if (!ptr) return "";
  const len = new DataView(memory.buffer).getUint32(ptr - 4, true) >>> 1;
  let s = "";
  const u16 = new Uint16Array(memory.buffer, ptr, len);
  for (let i = 0; i < len; i += 4096) s += String.fromCharCode(...u16.subarray(i, i + 4096));
  return s;
}

function names(memory: WebAssembly.Memory, ptr: number): string[] {
  const s = readString(memory, ptr);
  return s === "" ? [] : s.split(",");
}

export class TraceReader {
  /** Kind names in kind order (index = kind code). */
  readonly kinds: readonly string[];
  private readonly stateNames = new Map<number, readonly string[]>();
  private readonly rxNames: readonly string[];
  private cursor: number;
  /** Records this reader missed because the ring overwrote them first. */
  missed = 0;

  private readonly core: TraceCore;

  /** A reader over a device's ring (a Device, or its `core`); it starts at the records written from now on. */
  constructor(source: TraceCore | { readonly core: object }) {
    const core = ("trace_ring" in source ? source : source.core) as TraceCore;
    if (typeof core.trace_ring !== "function") throw new TypeError("trace: not a device or a device core");
    this.core = core;
    if (!core.trace_ring()) throw new Error("trace: the device is not open (trace_ring() is 0)");
    this.kinds = names(core.memory, core.trace_kind_names());
    for (let k = 0; k < this.kinds.length; k++) {
      const n = names(core.memory, core.trace_state_names(k));
      if (n.length) this.stateNames.set(k, n);
    }
    this.rxNames = names(core.memory, core.rx_result_names());
    this.cursor = core.trace_producer();
  }

  /** The kind code of a kind name; throws RangeError for a name the core does not have. */
  kindCode(name: string): number {
    const k = this.kinds.indexOf(name);
    if (k <= 0) throw new RangeError(`trace: unknown kind ${JSON.stringify(name)} (kinds: ${this.kinds.slice(1).join(", ")})`);
    return k;
  }

  /** Records `kinds` (default: every kind) from now on; returns the previous kind names. */
  enable(kinds: readonly string[] = this.kinds.slice(1)): string[] {
    let mask = 0;
    for (const k of kinds) mask |= 1 << this.kindCode(k);
    return this.maskNames(this.core.trace_set_mask(mask));
  }

  /** Stops recording; returns the previous kind names. */
  disable(): string[] {
    return this.maskNames(this.core.trace_set_mask(0));
  }

  /** The kind names recorded now. */
  get enabled(): string[] {
    return this.maskNames(this.core.trace_mask());
  }

  private maskNames(mask: number): string[] {
    return this.kinds.filter((_, k) => k > 0 && mask & (1 << k));
  }

  /** The state names of a state-machine kind (REQ_STATE, COMP_STATE, RESP_STATE, QP_STATE), in state order. */
  states(kind: string): readonly string[] {
    return this.stateNames.get(this.kindCode(kind)) ?? [];
  }

  /** Times each state of REQ_STATE, COMP_STATE or RESP_STATE was entered since the module started. */
  stateCounts(kind: string): Record<string, number> {
    const k = this.kindCode(kind);
    const p = this.core.trace_state_counts(k);
    if (!p) throw new RangeError(`trace: ${kind} has no state counters`);
    const dv = new DataView(this.core.memory.buffer);
    const out: Record<string, number> = {};
    (this.stateNames.get(k) ?? []).forEach((n, i) => (out[n] = Number(dv.getBigUint64(p + 8 * i, true))));
    return out;
  }

  /** Records written since the last read (or since the reader was made), oldest first. */
  read(): TraceEvent[] {
    const prod = this.core.trace_producer();
    const out = this.span(this.cursor, prod);
    this.cursor = prod;
    return out;
  }

  /**
   * The newest `n` records the ring still holds (at most its capacity), oldest first, whoever read
   * them before: what `softroce devinfo -v` prints. The reader's cursor does not move.
   */
  recent(n: number): TraceEvent[] {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`trace: recent(${n}) wants a count >= 0`);
    const prod = this.core.trace_producer();
    const missed = this.missed;
    const out = this.span((prod - Math.min(n, this.held)) >>> 0, prod);
    this.missed = missed;
    return out;
  }

  /** Records the ring holds now (at most trace_capacity). */
  get held(): number {
    const cap = this.core.trace_capacity();
    return this.core.trace_overwritten() > 0n ? cap : Math.min(this.core.trace_producer(), cap);
  }

  /** Records written since the device opened: those held and those the ring overwrote. */
  get written(): number {
    return Number(this.core.trace_overwritten()) + this.held;
  }

  /** Decodes records from .. prod - 1 (free-running u32 indices), skipping those overwritten. */
  private span(from: number, prod: number): TraceEvent[] {
    const core = this.core;
    const ring = core.trace_ring();
    const cap = core.trace_capacity();
    const size = core.trace_record_size();
    const out: TraceEvent[] = [];
    // free-running u32 indices: distance modulo 2^32
    const behind = (prod - from) >>> 0;
    if (behind > cap) {
      this.missed += behind - cap;
      from = (prod - cap) >>> 0;
    }
    const dv = new DataView(core.memory.buffer);
    for (let i = from; i !== prod; i = (i + 1) >>> 0) {
      const e = ring + Ring.DATA + (i & (cap - 1)) * size;
      if (dv.getUint32(e + TR.SEQ, true) !== i) {
        this.missed++; // overwritten while we read
        continue;
      }
      out.push(this.decode(dv, e));
    }
    return out;
  }

  private decode(dv: DataView, e: number): TraceEvent {
    const kindCode = dv.getUint32(e + TR.KIND, true);
    const qpn = dv.getUint32(e + TR.QPN, true);
    const a = dv.getUint32(e + TR.A, true);
    const b = dv.getUint32(e + TR.B, true);
    const c = dv.getUint32(e + TR.C, true);
    const kind = this.kinds[kindCode] ?? `KIND_${kindCode}`;
    const ev: TraceEvent = { seq: dv.getUint32(e + TR.SEQ, true), kind, timeUs: dv.getFloat64(e + TR.TIME, true), a, b, c };
    if (qpn !== TRACE_NONE) ev.qpn = qpn;
    const states = this.stateNames.get(kindCode);
    switch (kind) {
      case "REQ_STATE":
      case "COMP_STATE":
      case "RESP_STATE":
        ev.state = states?.[a] ?? `state ${a}`;
        if (b !== TRACE_NONE) ev.from = states?.[b] ?? `state ${b}`;
        if (c !== TRACE_NONE) ev.psn = c;
        break;
      case "PKT_SENT":
        ev.opcode = a;
        ev.psn = b;
        if (c !== 0) {
          ev.syndrome = c >>> 24;
          ev.msn = c & 0xffffff;
        }
        break;
      case "PKT_RECV":
        if (a !== TRACE_NONE) ev.opcode = a;
        ev.psn = b;
        ev.verdict = this.rxNames[c] ?? `reason ${c}`;
        break;
      case "QP_STATE":
        ev.state = states?.[a] ?? `state ${a}`;
        ev.from = states?.[b] ?? `state ${b}`;
        if (c !== 0) ev.status = c;
        break;
      case "COMPLETION":
        ev.status = a;
        ev.wcOpcode = b;
        ev.byteLen = c;
        break;
    }
    return ev;
  }
}
