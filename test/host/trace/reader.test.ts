// The trace reader over a real device core: two devices on the simulated wire,
// an RC WRITE and an RNR-less SEND, then the events the ring recorded, named
// from the core's own tables.
import { describe, expect, it } from "vitest";
import { Access, SendFlags, WrOpcode } from "../../../host/core/verbs/enums.js";
import { TraceReader, type TraceCore } from "../../../host/core/trace/index.js";
import type { Device } from "../../../host/core/verbs/device.js";
import { simRcPair } from "../support/sim-pair.js";

const ALL = Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ;

function pair(faults = {}) {
  const o = { qpAccessFlags: ALL, timeout: 8, retryCnt: 7, rnrRetry: 7, minRnrTimer: 1 };
  return simRcPair({
    seed: 7, addresses: ["127.0.0.1", "127.0.0.2"], wire: { faults },
    cqe: 256, cap: { maxSendWr: 128, maxRecvWr: 128, maxSendSge: 1, maxRecvSge: 1 }, mrBytes: 1 << 16, mrAccess: ALL, psns: [500, 100], connect: o,
  });
}

const core = (d: Device) => d.core as unknown as TraceCore;

describe("TraceReader", () => {
  it("names kinds and states from the core's tables", async () => {
    const { a } = await pair();
    const r = new TraceReader(a.dev); // a Device or its core
    expect(r.kinds.slice(1)).toEqual(["REQ_STATE", "COMP_STATE", "RESP_STATE", "PKT_SENT", "PKT_RECV", "TIMER_RETRANSMIT", "TIMER_RNR", "QP_STATE", "COMPLETION"]);
    expect(r.states("QP_STATE")).toEqual(["RESET", "INIT", "RTR", "RTS", "SQD", "SQE", "ERR"]);
    expect(r.states("COMP_STATE")).toContain("CHECK PSN"); // rxe's completer spells its states with spaces
    expect(r.states("RESP_STATE")).toContain("DUPLICATE_REQUEST");
    expect(r.states("PKT_SENT")).toEqual([]);
    expect(() => r.kindCode("NOPE")).toThrow(/unknown kind "NOPE"/);
    expect(() => r.enable(["PKT_SENT", "bogus"])).toThrow(RangeError);
    expect(r.enabled).toEqual([]);
  });

  it("records nothing while off, then a WRITE's packets, states and completion when on", async () => {
    const { net, a, b } = await pair();
    const ra = new TraceReader(core(a.dev));
    const rb = new TraceReader(core(b.dev));
    const write = (id: bigint) =>
      a.qp.postSend({ wrId: id, opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED, sgList: [a.mr.sge(0, 2500)], rdma: { remoteAddr: b.mr.addr, rkey: b.mr.rkey } });
    write(1n);
    net.run();
    expect(ra.read()).toEqual([]);
    expect(ra.enable()).toEqual([]);
    rb.enable(["PKT_RECV", "RESP_STATE"]);
    expect(rb.enabled).toEqual(["RESP_STATE", "PKT_RECV"]);
    write(2n);
    net.run();
    const ev = ra.read();
    const sent = ev.filter((e) => e.kind === "PKT_SENT");
    // 2500 bytes at MTU 1024: WRITE FIRST (6), MIDDLE (7), LAST (8) with PSNs 503..505 (the first WRITE took 500..502)
    expect(sent.map((e) => [e.opcode, e.psn])).toEqual([[6, 503], [7, 504], [8, 505]]);
    expect(sent.every((e) => e.qpn === a.qp.qpNum)).toBe(true);
    const ack = ev.find((e) => e.kind === "PKT_RECV");
    expect(ack).toMatchObject({ opcode: 0x11, psn: 505, verdict: "ok" });
    expect(ev.filter((e) => e.kind === "REQ_STATE").map((e) => e.state)).toContain("NEXT_WQE");
    expect(ev.filter((e) => e.kind === "COMP_STATE").map((e) => e.state)).toContain("CHECK PSN");
    const wc = ev.find((e) => e.kind === "COMPLETION");
    expect(wc).toMatchObject({ status: 0, wcOpcode: 1, byteLen: 2500, qpn: a.qp.qpNum });
    // sequence numbers are consecutive and times never go backwards
    for (let i = 1; i < ev.length; i++) {
      expect(ev[i].seq).toBe(ev[i - 1].seq + 1);
      expect(ev[i].timeUs).toBeGreaterThanOrEqual(ev[i - 1].timeUs);
    }
    expect(ra.read()).toEqual([]); // the cursor moved on
    const evb = rb.read();
    expect(new Set(evb.map((e) => e.kind))).toEqual(new Set(["PKT_RECV", "RESP_STATE"]));
    // the responder's ACK for the last packet: sent with an AETH (ACK, MSN 2) — b records no PKT_SENT, a's ring has its receipt
    expect(evb.filter((e) => e.kind === "RESP_STATE").map((e) => e.state)).toContain("ACKNOWLEDGE");
    const counts = ra.stateCounts("REQ_STATE");
    expect(counts.NEXT_WQE).toBeGreaterThan(0);
    expect(() => ra.stateCounts("PKT_SENT")).toThrow(/no state counters/);
  });

  it("decodes an AETH on a sent ACK, a drop verdict, and QP state changes", async () => {
    const { net, a, b } = await pair();
    const rb = new TraceReader(core(b.dev));
    rb.enable();
    a.qp.postSend({ wrId: 1n, opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED, sgList: [a.mr.sge(0, 64)], rdma: { remoteAddr: b.mr.addr, rkey: b.mr.rkey ^ 0x100 } });
    net.run();
    const ev = rb.read();
    const nak = ev.find((e) => e.kind === "PKT_SENT");
    // NAK remote access error: syndrome 0x62
    expect(nak).toMatchObject({ opcode: 0x11, psn: 500, syndrome: 0x62 });
    expect(ev.some((e) => e.kind === "RESP_STATE" && e.state === "ERR_RKEY_VIOLATION")).toBe(true);
    const ra = new TraceReader(core(a.dev));
    ra.enable();
    a.qp.postSend({ wrId: 2n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [a.mr.sge(0, 8)] });
    net.run();
    const qpState = ra.read().filter((e) => e.kind === "COMPLETION");
    expect(qpState.length).toBeGreaterThan(0); // flushed in ERR
    expect(qpState[0].status).not.toBe(0);
  });

  it("counts the records the ring overwrote before they were read", async () => {
    const { net, a, b } = await pair();
    const r = new TraceReader(core(a.dev));
    r.enable();
    const cap = core(a.dev).trace_capacity();
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 64; i++) a.qp.postSend({ wrId: BigInt(i), opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED, sgList: [a.mr.sge(0, 16)], rdma: { remoteAddr: b.mr.addr, rkey: b.mr.rkey } });
      net.run();
      a.cq.poll(64);
    }
    const ev = r.read();
    expect(ev.length).toBe(cap);
    expect(r.missed).toBeGreaterThan(0);
    expect(ev[ev.length - 1].seq + 1).toBe(core(a.dev).trace_producer());
  });
});
