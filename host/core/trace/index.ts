// host/core/trace: the device's trace ring as events.
export { TraceReader, TRACE_NONE, type TraceCore, type TraceEvent, type TraceKindName } from "./reader.js";
