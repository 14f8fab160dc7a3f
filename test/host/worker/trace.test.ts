// The worker device's stage trace (host/core/worker/trace.ts): off unless asked for
// (SOFTROCE_WORKER_TRACE), a bounded SharedArrayBuffer both threads stamp into; on, a ping-pong's
// stamps come from both threads in the order the round trip runs. Loopback UDP on 127.0.10.x.
import { afterEach, describe, expect, it } from "vitest";
import { Access, SendFlags, WcOpcode, WcStatus, WrOpcode } from "../../../host/core/verbs/enums.js";
import type { Device } from "../../../host/core/verbs/device.js";
import { Ring } from "../../../host/core/abi/index.js";
import { TRACE_MAX, TraceStage, traceNow, WorkerTrace, workerTraceOf, type TraceStamp } from "../../../host/core/worker/index.js";
import { connectRcEnds, openRcEnd } from "../support/rc-end.js";
import { monotonicOffsetUs, traceStampsFromEnv } from "../../../host/node/worker/clock.js";

const ACCESS = Access.LOCAL_WRITE | Access.REMOTE_WRITE;
const opened: Device[] = [];
const envBefore = process.env.SOFTROCE_WORKER_TRACE;
afterEach(() => {
  while (opened.length) opened.pop()!.close();
  if (envBefore === undefined) delete process.env.SOFTROCE_WORKER_TRACE;
  else process.env.SOFTROCE_WORKER_TRACE = envBefore;
});

const end = (address: string, worker: boolean) => openRcEnd(address, { worker }, ACCESS, { opened });

describe("WorkerTrace", () => {
  it("keeps stamps up to its capacity, counts the rest, forgets them on reset", () => {
    const t = WorkerTrace.create(3);
    expect(t.capacity).toBe(3);
    for (let i = 0; i < 5; i++) t.mark(TraceStage.W_SEND, i);
    expect(t.taken).toBe(5);
    const s = t.stamps();
    expect(s.map((x) => x.arg)).toEqual([0, 1, 2]);
    expect(s.every((x) => x.stage === TraceStage.W_SEND)).toBe(true);
    for (let i = 1; i < s.length; i++) expect(s[i]!.t).toBeGreaterThanOrEqual(s[i - 1]!.t);
    t.reset();
    expect(t.taken).toBe(0);
    expect(t.stamps()).toEqual([]);
    // a second thread's view of the same buffer sees the same header
    const u = new WorkerTrace(t.sab);
    u.mark(TraceStage.APP_WOKEN, 7);
    expect(t.stamps()).toMatchObject([{ stage: TraceStage.APP_WOKEN, arg: 7 }]);
    u.followedRing = 4096;
    expect(t.followedRing).toBe(4096);
  });

  it("refuses bad sizes and buffers", () => {
    expect(() => WorkerTrace.create(0)).toThrow(RangeError);
    expect(() => WorkerTrace.create(1.5)).toThrow(RangeError);
    expect(() => WorkerTrace.create(1 << 30)).toThrow(RangeError);
    expect(() => new WorkerTrace(new SharedArrayBuffer(64))).toThrow(TypeError);
    expect(() => new WorkerTrace(new ArrayBuffer(64) as unknown as SharedArrayBuffer)).toThrow(TypeError);
  });

  it("SOFTROCE_WORKER_TRACE: off, on, a size; anything else refused", () => {
    delete process.env.SOFTROCE_WORKER_TRACE;
    expect(traceStampsFromEnv()).toBe(0);
    process.env.SOFTROCE_WORKER_TRACE = "0";
    expect(traceStampsFromEnv()).toBe(0);
    process.env.SOFTROCE_WORKER_TRACE = "1";
    expect(traceStampsFromEnv()).toBe(1 << 18);
    process.env.SOFTROCE_WORKER_TRACE = "5000";
    expect(traceStampsFromEnv()).toBe(5000);
    process.env.SOFTROCE_WORKER_TRACE = String(TRACE_MAX);
    expect(traceStampsFromEnv()).toBe(TRACE_MAX);
    for (const bad of ["yes", "1e3", "-1", "2.5", String(TRACE_MAX + 1)]) {
      process.env.SOFTROCE_WORKER_TRACE = bad;
      expect(() => traceStampsFromEnv()).toThrow(new RangeError(`SOFTROCE_WORKER_TRACE="${bad}": an integer 0 .. ${TRACE_MAX} stamps (1: on)`));
    }
  });

  it("the Node clock: performance.now() corrected to process.hrtime", () => {
    const off = monotonicOffsetUs();
    const hr = Number(process.hrtime.bigint()) / 1000;
    expect(Math.abs(performance.now() * 1000 + off - hr)).toBeLessThan(1000);
    // the default clock is the epoch's (performance.timeOrigin)
    expect(Math.abs(traceNow() - Date.now() * 1000)).toBeLessThan(60e6);
  });
});

describe("the stage trace of a worker device", () => {
  it("is off by default", async () => {
    delete process.env.SOFTROCE_WORKER_TRACE;
    const A = await end("127.0.10.131", true);
    expect(workerTraceOf(A.d)).toBeUndefined();
  });

  it("on: a ping-pong's stamps from both threads, in the round trip's order", async () => {
    process.env.SOFTROCE_WORKER_TRACE = "20000";
    const A = await end("127.0.10.133", true);
    delete process.env.SOFTROCE_WORKER_TRACE;
    const B = await end("127.0.10.134", false);
    connectRcEnds(A, B, ACCESS);
    const trace = workerTraceOf(A.d)!;
    expect(trace).toBeInstanceOf(WorkerTrace);
    expect(trace.capacity).toBe(20000);
    expect(workerTraceOf(B.d)).toBeUndefined();
    for (let i = 0; i < 8; i++) B.qp.postRecv({ wrId: BigInt(i), sgList: [B.mr.sge(i * 64, 64)] });
    const pings = 20;
    void (async () => {
      for (let n = 0; n < pings; n++) {
        let wc = await B.cq.next();
        while (wc.opcode !== WcOpcode.RECV) wc = await B.cq.next();
        B.qp.postRecv({ wrId: wc.wrId, sgList: [B.mr.sge(Number(wc.wrId) * 64, 64)] });
        B.qp.postSend({ wrId: 99n, opcode: WrOpcode.SEND, sendFlags: 0, sgList: [B.mr.sge(Number(wc.wrId) * 64, 64)] });
      }
    })();
    trace.reset();
    trace.followedRing = A.cq.ring;
    const prod: number[] = [];
    for (let i = 0; i < pings; i++) {
      trace.mark(TraceStage.PING);
      A.qp.postRecv({ wrId: 7n, sgList: [A.mr.sge(4096, 64)] });
      trace.mark(TraceStage.POST);
      A.qp.postSend({ wrId: BigInt(i), opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [A.mr.sge(0, 64)] });
      for (const wc of [await A.cq.next(), await A.cq.next()]) expect(wc.status).toBe(WcStatus.SUCCESS);
      trace.mark(TraceStage.RESOLVED);
      prod.push(A.d.mem.loadIndex(A.cq.ring + Ring.PROD));
    }
    // the worker's last run may still be stamping (the look sees the CQEs as they are written)
    await new Promise((r) => setTimeout(r, 50));
    const stamps = trace.stamps();
    const count = (s: number) => stamps.filter((x) => x.stage === s).length;
    expect(count(TraceStage.PING)).toBe(pings);
    expect(count(TraceStage.RESOLVED)).toBe(pings);
    // two doorbells a ping (its receive, its SEND), each rung by the worker; at least one datagram out and in a ping
    expect(count(TraceStage.APP_DOORBELL)).toBe(2 * pings);
    expect(count(TraceStage.W_SEND)).toBeGreaterThanOrEqual(pings);
    expect(count(TraceStage.W_RECV)).toBeGreaterThanOrEqual(pings);
    expect(count(TraceStage.W_DOORBELLS)).toBeGreaterThanOrEqual(1);
    expect(count(TraceStage.W_PROGRESS)).toBeGreaterThanOrEqual(pings);
    // every ping: POST, then a send, then a receive, then a run whose followed ring (the CQ) holds both completions; RESOLVED after POST
    const at = (from: number, stage: number, ok: (x: TraceStamp) => boolean = () => true) => {
      for (let i = from; i < stamps.length; i++) if (stamps[i]!.stage === stage && ok(stamps[i]!)) return i;
      return -1;
    };
    // per ping, after its PING (the threads' clocks agree to a few µs: each stage is looked for after
    // the ping's start, not after the stage before): a send, a receive, a run whose followed ring (the
    // CQ) holds both completions, and RESOLVED
    let base = -1;
    const pingsAt: number[] = [];
    stamps.forEach((x, k) => x.stage === TraceStage.PING && pingsAt.push(k));
    for (let n = 0; n < pings; n++) {
      const from = pingsAt[n]!;
      const found = [at(from, TraceStage.W_SEND), at(from, TraceStage.W_RECV), at(from, TraceStage.W_PROGRESS, (x) => x.arg >= prod[n]!), at(from, TraceStage.RESOLVED)];
      expect(found.every((x) => x >= 0), `ping ${n}: ${found}`).toBe(true);
      expect(prod[n]! - base).toBeGreaterThanOrEqual(base < 0 ? 0 : 2);
      base = prod[n]!;
    }
  });
});
