// softroce devinfo -v: the device's trace ring (host/core/trace TraceReader) — how much it holds,
// what it records, and its newest events with the core's names (rxe's state names, opcode names,
// receive verdicts, work completion status).
import type { Device } from "../core/verbs/index.js";
import { nameOf, WcOpcode, WcStatus } from "../core/verbs/index.js";
import { TraceReader, type TraceEvent } from "../core/trace/index.js";
import { WireCodec } from "../core/wire/index.js";
import type { CoreExports } from "../core/wasm/index.js";

/** How many of the newest events `devinfo -v` prints. */
export const DEVINFO_TRACE_EVENTS = 32;

const hex = (v: number, w: number) => `0x${v.toString(16).padStart(w, "0")}`;

/** One event as a line: time, QP, kind and its decoded fields. */
export function formatTraceEvent(e: TraceEvent, opcodeName: (op: number) => string): string {
  const at = `${e.timeUs.toFixed(1).padStart(12)}us`;
  const qp = e.qpn !== undefined ? `qp ${hex(e.qpn, 6)}` : "qp -       ";
  const parts: string[] = [e.kind];
  if (e.state !== undefined) parts.push(e.from !== undefined ? `${e.from} -> ${e.state}` : e.state);
  if (e.opcode !== undefined) parts.push(opcodeName(e.opcode));
  if (e.psn !== undefined && e.kind !== "QP_STATE") parts.push(`psn ${hex(e.psn, 6)}`);
  if (e.syndrome !== undefined) parts.push(`aeth ${hex(e.syndrome, 2)} msn ${e.msn}`);
  if (e.verdict !== undefined) parts.push(e.verdict);
  if (e.kind === "COMPLETION") parts.push(nameOf(WcOpcode, e.wcOpcode!), nameOf(WcStatus, e.status!), `byte_len ${e.byteLen}`);
  else if (e.status !== undefined) parts.push(nameOf(WcStatus, e.status));
  return `#${e.seq} ${at} ${qp} ${parts.join(" ")}`;
}

/** The lines `devinfo -v` adds: the ring's summary, then its newest `n` events oldest first. */
export function devinfoTraceLines(dev: Device, n = DEVINFO_TRACE_EVENTS): string[] {
  const reader = new TraceReader(dev);
  const codec = new WireCodec(dev.core as unknown as CoreExports);
  const opName = (op: number) => codec.opcode(op)?.name ?? `opcode ${hex(op, 2)}`;
  const events = reader.recent(n);
  const kinds = reader.enabled;
  const L = [
    `\ttrace_ring:\t\t\t${reader.held} records held, ${reader.written} written, recording ${kinds.length ? kinds.join(",") : "nothing"}`,
  ];
  if (events.length) {
    L.push(`\t\t\tlast ${events.length} events:`);
    for (const e of events) L.push(`\t\t\t\t${formatTraceEvent(e, opName)}`);
  }
  return L;
}
