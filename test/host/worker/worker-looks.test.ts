// The device worker's looks (host/core/worker/serve.ts) and their gate (spin-gate.ts), on a
// DeviceServer over a stand-in instance (no thread, no network): after a run that rang a send queue
// the look for the answer (answerSpinUs) polls the link and yields between polls, goes on after each
// datagram, ends at a doorbell, gives up at its bound, and its gate closes after a few empty looks and
// probes one chance in GATE_PROBE; the doorbell spin (spinUs) yields between its looks; the
// application thread's look yields between its looks when given a yield (workerAppSpinYield).
import { afterEach, describe, expect, it, vi } from "vitest";
import { DOORBELL_SQ } from "../../../host/core/abi/index.js";
import { DeviceMemory } from "../../../host/core/verbs/memory.js";
import { ANSWER_LOOK_MAX_IN_FLIGHT, AppSpin, Control, DeviceServer, GATE_MIN, GATE_PROBE, MAX_APP_SPIN_US, MAX_SPIN_US, SpinGate, W } from "../../../host/core/worker/index.js";

afterEach(() => {
  vi.restoreAllMocks();
});

/**
 * performance.now() from here on: a clock that only moves by `stepUs` at each look (the rig's poll),
 * so that what a look does within its bound does not depend on how this machine schedules the test.
 */
function fakeClock(stepUs: number): { tick: (us?: number) => void } {
  let us = 0;
  vi.spyOn(performance, "now").mockImplementation(() => 1000 + us / 1000);
  return { tick: (step = stepUs) => void (us += step) };
}

/** A DeviceServer on a stand-in instance whose doorbell export counts; the queue filled by ring(). Each poll of the link moves the fake clock 10 µs. */
function rig(opts: { spinUs?: number; answerUs?: number; poll?: () => number } = {}) {
  const clock = fakeClock(10);
  const ctl = Control.create();
  const rung: number[] = [];
  const exports = { doorbell: (h: number, q: number) => (rung.push(q), 0) } as unknown as WebAssembly.Exports;
  const queued: (() => void)[] = [];
  const server = new DeviceServer(ctl, exports, ["doorbell"], () => 0, opts.spinUs ?? 0, (fn) => queued.push(fn), (fn) => queued.push(fn));
  let polls = 0;
  let yields = 0;
  server.pollLink = () => (polls++, clock.tick(), opts.poll ? opts.poll() : 0);
  server.yieldCpu = () => void yields++;
  if (opts.answerUs !== undefined) server.answerSpinUs = opts.answerUs;
  /** The application's doorbell (serve.ts's proxy side): a queue entry, WAKE bumped; the worker runs it now. */
  const ring = (queues: number): void => {
    const head = ctl.load(W.DB_HEAD);
    ctl.i32[ctl.dbEntry(head)] = (1 << 2) | queues;
    ctl.store(W.DB_HEAD, head + 1);
    Atomics.add(ctl.i32, W.WAKE, 1);
    (server as unknown as { run(spin: boolean): void }).run(false);
  };
  return { ctl, server, rung, ring, queued, polls: () => polls, yields: () => yields, word: (w: number) => ctl.load(w) };
}

describe("SpinGate", () => {
  it("closes after a run of misses, then opens one chance in GATE_PROBE, and a hit reopens it", () => {
    const ctl = Control.create();
    const gate = new SpinGate(ctl.i32, { hits: W.ANSWER_HITS, misses: W.ANSWER_MISSES, gated: W.ANSWER_GATED });
    // (1 - 1/8)^8 = 0.34 < GATE_MIN = 0.375 < (7/8)^7: eight empty looks close it
    for (let i = 0; i < 8; i++) {
      expect(gate.open()).toBe(true);
      gate.note(false);
    }
    expect(gate.score).toBeLessThan(GATE_MIN);
    // closed: GATE_PROBE - 1 chances held back, then a probe
    let chances = 1;
    while (!gate.open()) chances++;
    expect(chances).toBe(GATE_PROBE);
    expect(ctl.load(W.ANSWER_GATED)).toBe(GATE_PROBE - 1);
    // the probe caught its answer, and the next ones too: open again
    gate.note(true);
    gate.note(true);
    expect(gate.open()).toBe(true);
    expect(ctl.load(W.ANSWER_HITS)).toBe(2);
    expect(ctl.load(W.ANSWER_MISSES)).toBe(8);
  });
});

describe("the worker's look for the answer (answerSpinUs)", () => {
  it("after a send queue's doorbell polls the link, yielding between polls, and gives up at its bound", () => {
    const r = rig({ answerUs: 300 });
    r.ring(DOORBELL_SQ);
    expect(r.rung).toEqual([DOORBELL_SQ]);
    // 10 µs a poll: about 30 polls fill the bound (give or take where the look reads the clock), a yield between each two
    expect(r.polls()).toBeGreaterThanOrEqual(29);
    expect(r.polls()).toBeLessThanOrEqual(32);
    expect(r.yields()).toBe(r.polls() - 1);
    expect([r.word(W.ANSWER_HITS), r.word(W.ANSWER_MISSES), r.word(W.ANSWER_GATED)]).toEqual([0, 1, 0]);
  });

  it("does not look after a doorbell that rang only receive queues, nor with the look off", () => {
    const r = rig({ answerUs: 300 });
    r.ring(0b10); // the receive queue's bit
    expect(r.rung).toEqual([0b10]);
    expect(r.polls()).toBe(0);
    const off = rig({ answerUs: 0 });
    off.ring(DOORBELL_SQ);
    expect(off.polls()).toBe(0);
    expect(off.word(W.ANSWER_MISSES)).toBe(0);
  });

  it("goes on after each datagram (its bound counted from the last) and counts a hit", () => {
    // datagrams on the 3rd and the 20th poll (a look that stopped at the first would have ended at
    // about the 23rd), then nothing: about 20 polls after the 20th
    let n = 0;
    const r = rig({ answerUs: 200, poll: () => (++n === 3 || n === 20 ? 1 : 0) });
    r.ring(DOORBELL_SQ);
    expect(n).toBeGreaterThanOrEqual(20 + 19);
    expect(n).toBeLessThanOrEqual(20 + 22);
    expect([r.word(W.ANSWER_HITS), r.word(W.ANSWER_MISSES)]).toEqual([1, 0]);
  });

  it("ends at a datagram that left the port a deferred flush (its held ACKs leave once the turn is over)", () => {
    let n = 0;
    const port = { flushDue: false, service: () => {} };
    const r = rig({ answerUs: 200, poll: () => (++n === 3 ? ((port.flushDue = true), 1) : 0) });
    (r.server as unknown as { port: unknown }).port = port;
    r.ring(DOORBELL_SQ);
    expect(n).toBe(3);
    expect([r.word(W.ANSWER_HITS), r.word(W.ANSWER_MISSES)]).toEqual([1, 0]);
  });

  it("ends at the application's next doorbell, which the same turn serves without a wake-up", () => {
    let r: ReturnType<typeof rig> | undefined;
    let n = 0;
    // the 5th poll: the application rang again (a receive queue's doorbell: no new look after it)
    const rr = rig({
      answerUs: MAX_SPIN_US,
      poll: () => {
        if (++n === 5) {
          const c = r!.ctl;
          const head = c.load(W.DB_HEAD);
          c.i32[c.dbEntry(head)] = (1 << 2) | 0b10;
          c.store(W.DB_HEAD, head + 1);
          Atomics.add(c.i32, W.WAKE, 1);
        }
        return 0;
      },
    });
    r = rr;
    rr.ring(DOORBELL_SQ);
    expect(rr.rung).toEqual([DOORBELL_SQ, 0b10]);
    expect(n).toBe(5);
    expect([rr.word(W.ANSWER_HITS), rr.word(W.ANSWER_MISSES), rr.word(W.WORKER_WAKEUPS)]).toEqual([1, 0, 0]);
  });

  it("closes its gate when no answer comes: after eight empty looks, one chance in GATE_PROBE looks", () => {
    const r = rig({ answerUs: 20 });
    for (let i = 0; i < 8 + 2 * GATE_PROBE; i++) r.ring(DOORBELL_SQ);
    // 8 looks close it; then every GATE_PROBE-th doorbell probes (and misses)
    expect(r.word(W.ANSWER_MISSES)).toBe(8 + 2);
    expect(r.word(W.ANSWER_GATED)).toBe(2 * GATE_PROBE - 2);
    expect(r.word(W.ANSWER_HITS)).toBe(0);
  });

  it("does not look while more than ANSWER_LOOK_MAX_IN_FLIGHT packets are in flight (a stream), nor count a chance", () => {
    const r = rig({ answerUs: 300 });
    let inFlight = ANSWER_LOOK_MAX_IN_FLIGHT + 1;
    r.server.inFlightPackets = () => inFlight;
    r.ring(DOORBELL_SQ);
    expect(r.polls()).toBe(0);
    expect([r.word(W.ANSWER_HITS), r.word(W.ANSWER_MISSES), r.word(W.ANSWER_GATED)]).toEqual([0, 0, 0]);
    inFlight = ANSWER_LOOK_MAX_IN_FLIGHT;
    r.ring(DOORBELL_SQ);
    expect(r.polls()).toBeGreaterThan(1);
    expect(r.word(W.ANSWER_MISSES)).toBe(1);
  });

  it("refuses a bound out of range", () => {
    const r = rig();
    expect(() => (r.server.answerSpinUs = MAX_SPIN_US + 1)).toThrow(RangeError);
    expect(() => (r.server.answerSpinUs = -1)).toThrow(/0 \.\. 1000/);
    expect(() => (r.server.answerSpinUs = NaN)).toThrow(RangeError);
    expect(r.server.answerSpinUs).toBe(0);
  });
});

describe("the worker's doorbell spin (spinUs)", () => {
  it("after a run that woke the application, looks for its next doorbell yielding between looks; a miss is counted", () => {
    const r = rig({ spinUs: 200 });
    // the application sleeps on PROGRESS: the run's progress() notifies it and queues the spin
    Atomics.store(r.ctl.i32, W.APP_WAITING, 1);
    r.server.progress();
    expect(r.queued.length).toBe(1);
    r.queued.shift()!();
    expect(r.polls()).toBeGreaterThanOrEqual(19);
    expect(r.polls()).toBeLessThanOrEqual(22);
    expect(r.yields()).toBe(r.polls());
    expect([r.word(W.SPIN_HITS), r.word(W.SPIN_MISSES), r.word(W.SPIN_GATED)]).toEqual([0, 1, 0]);
  });

  it("is gated on its hits: after eight empty spins, one chance in GATE_PROBE spins", () => {
    const r = rig({ spinUs: 10 });
    for (let i = 0; i < 8 + GATE_PROBE; i++) {
      Atomics.store(r.ctl.i32, W.APP_WAITING, 1);
      r.server.progress();
      while (r.queued.length) r.queued.shift()!();
    }
    expect([r.word(W.SPIN_HITS), r.word(W.SPIN_MISSES), r.word(W.SPIN_GATED)]).toEqual([0, 9, GATE_PROBE - 1]);
  });
});

describe("the application thread's look, yielding (workerAppSpinYield)", () => {
  it("calls its yield between looks, and not without one", () => {
    // the clock moves 10 µs at every read: a look of MAX_APP_SPIN_US reads it about 20 times
    let reads = 0;
    vi.spyOn(performance, "now").mockImplementation(() => 1000 + (reads++ * 10) / 1000);
    const ctl = Control.create();
    const mem = new DeviceMemory(new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true }));
    const look = (yieldCpu: (() => void) | undefined) => {
      const spin = new AppSpin(ctl, mem, () => 1, { parked: () => true, catchUp: () => {} }, MAX_APP_SPIN_US);
      spin.yieldCpu = yieldCpu;
      Atomics.store(ctl.i32, W.APP_WAITING, 1);
      expect(spin.spin({ ring: 4096 })).toBe(false);
      expect(spin.stats.appSpinMisses).toBe(1);
      return spin;
    };
    let yields = 0;
    reads = 0;
    const spin = look(() => void yields++);
    expect(spin.state().yields).toBe(true);
    expect(yields).toBeGreaterThanOrEqual(MAX_APP_SPIN_US / 10 - 5);
    expect(yields).toBeLessThanOrEqual(reads);
    yields = 0;
    expect(look(undefined).state().yields).toBe(false);
    expect(yields).toBe(0);
  });
});
