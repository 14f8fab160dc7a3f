// The trace ring as the configuration record asks for it at dev_open: its size
// (rounded up to a power of two, bounded) and config flag bit 1, which turns
// every kind on from the start.
import { testDeviceConfig } from "./verbs-device.include";
import { EINVAL } from "../../assembly/mem/errno";
import { config, CFG_FLAGS, CFG_FLAG_TRACE, CFG_TRACE_CAP } from "../../assembly/verbs/config";
import { devOpen, devOpened } from "../../assembly/verbs/device";
import { pdAlloc } from "../../assembly/mem/pd";
import { trace_capacity, trace_mask, trace_overwritten, trace_producer, trace_ring, trace_set_mask } from "../../assembly/trace/exports";
import { traceRecord, TraceKind, TRACE_ALL, TRACE_MAX_CAP, TR_A, TR_SEQ } from "../../assembly/trace/trace";
import { ringEntry } from "../../assembly/mem/ring";

describe("trace ring: configured at dev_open", () => {
  it("refuses a ring larger than TRACE_MAX_CAP records", () => {
    testDeviceConfig();
    store<u32>(config + CFG_TRACE_CAP, TRACE_MAX_CAP + 1);
    expect(devOpen()).toBe(-EINVAL);
    expect(devOpened()).toBe(false);
    expect(trace_ring()).toBe(0);
    expect(trace_set_mask(TRACE_ALL)).toBe(0); // nothing to record into yet
    expect(trace_mask()).toBe(0);
  });

  it("rounds the size up to a power of two and records from the start with flag bit 1", () => {
    store<u32>(config + CFG_TRACE_CAP, 20);
    store<u32>(config + CFG_FLAGS, CFG_FLAG_TRACE);
    expect(devOpen()).toBe(0);
    expect(trace_capacity()).toBe(32);
    expect(trace_mask()).toBe(TRACE_ALL);
    expect(trace_producer()).toBe(0);
    pdAlloc(); // an object the trace does not concern: nothing recorded
    expect(trace_producer()).toBe(0);
  });

  it("overwrites the oldest of its 32 records and counts them", () => {
    const pages = memory.size();
    for (let i: u32 = 0; i < 40; i++) traceRecord(TraceKind.TIMER_RETRANSMIT, 1, i, 0, 0);
    expect(trace_producer()).toBe(40);
    expect(trace_overwritten()).toBe(8);
    // records 32..39 took the slots of 0..7; 8..31 are still there
    expect(load<u32>(ringEntry(trace_ring(), 0) + TR_SEQ)).toBe(32);
    expect(load<u32>(ringEntry(trace_ring(), 0) + TR_A)).toBe(32);
    expect(load<u32>(ringEntry(trace_ring(), 8) + TR_SEQ)).toBe(8);
    expect(load<u32>(ringEntry(trace_ring(), 39) + TR_SEQ)).toBe(39);
    expect(memory.size()).toBe(pages);
    expect(trace_set_mask(0)).toBe(TRACE_ALL);
    traceRecord(TraceKind.TIMER_RETRANSMIT, 1, 99, 0, 0); // the caller checks traceOn; the ring still takes a direct write
    expect(trace_producer()).toBe(41);
  });
});
