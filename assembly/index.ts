// The device's exported ABI, and nothing else: every export is a number-in,
// number-out function or a pointer into linear memory (see docs/ABI.md).
// Each layer owns one exports file; this file only gathers them.
export * from "./wire/exports";
export * from "./crc/exports";
export * from "./verbs/exports";
export * from "./transport/exports";
export * from "./trace/exports";
