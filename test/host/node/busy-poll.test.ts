// The native datapath's busy poll (host/node/native/datapath.c rx_drain_once, its gate
// host/node/native/poll_gate.h) and how the Node host sets it (NativeUdpLink busyPollUs, env
// SOFTROCE_BUSY_POLL_US, datapathOf). Addresses: 127.0.51.100-127.0.51.119.
import { afterEach, describe, expect, it } from "vitest";
import dgram from "node:dgram";
import { once } from "node:events";
import { Worker } from "node:worker_threads";
import { datapathAddon, openDatapath, type NativeDatapath } from "../../../host/node/datapath.js";
import { ADAPTIVE_BUSY_POLL_US, NativeUdpLink } from "../../../host/node/native-link.js";
import { datapathOf, openDevice, udpLinkOf } from "../../../host/node/index.js";
import { Access, WcStatus, WrOpcode, SendFlags } from "../../../host/core/verbs/enums.js";
import { connectRcEnds, openRcEnd } from "../support/rc-end.js";
import { until } from "../support/until.js";
import { holdTimingLock } from "../support/timing-lock.js";
import { firstGoodRun } from "../support/timing-tries.js";
import type { Device } from "../../../host/core/verbs/device.js";

const A = "127.0.51.100", B = "127.0.51.101";
const RXAREA = 0, RXMETA = 1 << 19;
// poll_gate.h: from open, 8 misses in a row close the gate; then every 16th window opens (a probe)
const CLOSE_MISSES = 8, PROBE = 16;

// the windows' hits are timing: no other busy-poll suite runs beside this file (support/timing-lock.ts)
holdTimingLock();

const open: { close(): void }[] = [];
const devices: Device[] = [];
afterEach(async () => {
  while (open.length) open.pop()!.close();
  for (const d of devices.splice(0)) await d.close();
  delete process.env.SOFTROCE_BUSY_POLL_US;
});

function datapath(): NativeDatapath {
  const r = openDatapath({ memory: new SharedArrayBuffer(1 << 20), address: B, port: 0 }, datapathAddon());
  if (!r.datapath) throw new Error(r.reason);
  open.push(r.datapath);
  return r.datapath;
}

async function client(): Promise<dgram.Socket> {
  const s = dgram.createSocket("udp4");
  s.bind(0, A);
  await once(s, "listening");
  open.push({ close: () => s.close() });
  return s;
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * `n` datagrams to `d`, each `gapMs` after the previous one was received (nothing comes inside the
 * window that follows a batch: every open window misses).
 */
async function sparse(d: NativeDatapath, s: dgram.Socket, got: { n: number }, n: number, gapMs: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const want = got.n + 1;
    s.send(Buffer.alloc(64, i), d.port, B);
    await until(() => got.n >= want, 3000, `datagram ${i}`);
    await pause(gapMs);
  }
}

/**
 * `n` datagrams to `d`, each sent from inside the batch callback that received the one before (so
 * it arrives while the window after that batch polls: an answer in time). Resolves when all came.
 */
async function answered(d: NativeDatapath, s: dgram.Socket, got: { n: number; answer?: () => void }, n: number): Promise<void> {
  const end = got.n + n;
  got.answer = () => {
    if (got.n < end) s.send(Buffer.alloc(64, 1), d.port, B);
  };
  s.send(Buffer.alloc(64, 0), d.port, B);
  await until(() => got.n >= end, 5000, `${n} answered datagrams`);
  got.answer = undefined;
}

function receiving(d: NativeDatapath): { n: number; answer?: () => void } {
  const got: { n: number; answer?: () => void } = { n: 0 };
  d.receive({ area: RXAREA, slotSize: 2048, slots: 16, meta: RXMETA, metaCap: 16 }, (count) => {
    got.n += count;
    got.answer?.();
  });
  return got;
}

/** `n` datagrams through `echoPort` (a delayedEcho), each sent from inside the batch callback that received the one before. */
async function echoed(s: dgram.Socket, got: { n: number; answer?: () => void }, echoPort: number, n: number): Promise<void> {
  const end = got.n + n;
  got.answer = () => {
    if (got.n < end) s.send(Buffer.alloc(64, 1), echoPort, A);
  };
  s.send(Buffer.alloc(64, 0), echoPort, A);
  await until(() => got.n >= end, 10_000, `${n} answers through the echo`);
  got.answer = undefined;
}

/** A datapath with 1 ms adaptive windows whose gate 24 unanswered datagrams closed; its client, its receive count and its counters then. */
async function closedGate() {
  const d = datapath();
  d.setBusyPoll(1000, true);
  const s = await client();
  const got = receiving(d);
  await sparse(d, s, got, 24, 3);
  return { d, s, got, closed: d.stats() };
}

/**
 * A UDP echo on its own thread at A: each datagram goes on to `to` (B) after a busy wait of `delayUs`
 * (another thread, so that it can come while this thread polls).
 */
async function delayedEcho(delayUs: number, to: number): Promise<{ port: number; close(): Promise<void> }> {
  const code = `
    const { parentPort, workerData } = require("node:worker_threads");
    const dgram = require("node:dgram");
    const s = dgram.createSocket("udp4");
    s.on("message", (m) => {
      const end = process.hrtime.bigint() + BigInt(workerData.delayUs) * 1000n;
      while (process.hrtime.bigint() < end);
      s.send(m, workerData.to, workerData.b);
    });
    s.bind(0, workerData.a, () => parentPort.postMessage(s.address().port));
    parentPort.on("message", () => s.close(() => parentPort.close()));
  `;
  const w = new Worker(code, { eval: true, workerData: { delayUs, to, a: A, b: B } });
  const [port] = (await once(w, "message")) as [number];
  return { port, close: async () => void (await w.terminate()) };
}

describe("the datapath's adaptive busy poll (poll_gate.h)", () => {
  it("a peer that never answers in time: after a few windows the gate holds them back", async () => {
    const d = datapath();
    expect(d.setBusyPoll(ADAPTIVE_BUSY_POLL_US, true)).toBe(true);
    const s = await client();
    const got = receiving(d);
    const n = 40;
    await sparse(d, s, got, n, 4);
    const st = d.stats();
    expect(st.rxBatches).toBe(n);
    expect(st.rxBusyHits).toBe(0);
    // 8 misses close it; of the 32 batches after them every 16th opens a probe window (2), the rest are held back
    const probes = Math.floor((n - CLOSE_MISSES) / PROBE);
    expect(st.rxBusyPolls).toBe(CLOSE_MISSES + probes);
    expect(st.rxBusyGated).toBe(n - CLOSE_MISSES - probes);
  });

  it("a fixed window (not adaptive) opens after every batch, answered or not", async () => {
    const d = datapath();
    d.setBusyPoll(100);
    const s = await client();
    const got = receiving(d);
    await sparse(d, s, got, 20, 2);
    expect(d.stats()).toMatchObject({ rxBatches: 20, rxBusyPolls: 20, rxBusyHits: 0, rxBusyGated: 0 });
  });

  it("when answers come back in time, the probes' hits open the gate again", async () => {
    const { d, s, got, closed } = await closedGate();
    expect(closed.rxBusyGated).toBeGreaterThan(0);
    // answered from here on, ECHO_DELAY_US after each batch (another thread: the answer comes while
    // the window after the batch waits): the gate passes batches by (gated) until its probes have hit
    // often enough (from 24 misses, 4 probes), then every window opens and catches the next datagram
    const echo = await delayedEcho(300, d.port);
    try {
      // (up to 3 runs of 120: beside a CPU hog the probes' yields can come back late, as misses)
      await firstGoodRun(
        "120 answered batches from a closed gate",
        3,
        async () => {
          const before = d.stats();
          await echoed(s, got, echo.port, 120);
          return { hits: d.stats().rxBusyHits - before.rxBusyHits };
        },
        (r) => r.hits >= 4,
      );
      // then 30 more: no batch held back, and the batches open windows that catch the next datagram.
      // One wake-up spends at most 1 ms in windows (BUSY_POLL_ADAPTIVE_CAP_US), so with 300 µs answers
      // about one window in three is cut and the chain goes back through epoll (a CI run once opened 19
      // windows of 30, another 14 with 4 hits on a noisier VM), and runs beside a CPU hog caught 9-11. A
      // gate still closed would open 2 probes in 30 batches and catch at most those 2: a good run has 10
      // windows and 4 hits, no batch gated.
      // A run whose windows came back late enough to close the gate again (seen on a noisy VM: every try
      // after it gated 21-29 of 30) is followed by 120 answered batches that reopen it before the next try.
      let reopen = false;
      await firstGoodRun(
        "30 answered batches after the gate reopened",
        4,
        async () => {
          if (reopen) await echoed(s, got, echo.port, 120);
          const before = d.stats();
          await echoed(s, got, echo.port, 30);
          const after = d.stats();
          const r = { gated: after.rxBusyGated! - before.rxBusyGated!, polls: after.rxBusyPolls - before.rxBusyPolls, hits: after.rxBusyHits - before.rxBusyHits };
          reopen = r.gated > 0;
          return r;
        },
        (r) => r.gated === 0 && r.polls >= 10 && r.hits >= 4,
      );
    } finally {
      await echo.close();
    }
  });

  it("a datagram already there at a window's first look (sent while the batch before was in JS) is no hit: the gate is not told", async () => {
    const { d, s, got, closed } = await closedGate();
    // each answer sent from inside the batch callback: there before the window that follows looks
    await answered(d, s, got, 120);
    const st = d.stats();
    // the probes' windows found their datagram at once: counted as ready, not as hits, and the gate stays closed
    expect(st.rxBusyReady! - (closed.rxBusyReady ?? 0)).toBeGreaterThanOrEqual(4);
    expect(st.rxBusyHits - closed.rxBusyHits).toBe(0);
    expect(st.rxBusyGated! - closed.rxBusyGated!).toBeGreaterThanOrEqual(100);
  });

  it("a yield that comes back after a whole window (the CPU wanted elsewhere) ends it as a miss: late answers do not hold the gate open", async () => {
    const WINDOW = 1000, ECHO_DELAY_US = 300;
    const d = datapath();
    d.setBusyPoll(WINDOW, true);
    expect(() => d.slowYield(1000001)).toThrow(RangeError);
    expect(() => d.slowYield(0.5)).toThrow(TypeError);
    const s = await client();
    const got = receiving(d);
    // the answer comes from another thread, ECHO_DELAY_US after each batch: while a window polls, after
    // its first yields (an answer sent from the batch handler itself is there before the first poll)
    const echo = await delayedEcho(ECHO_DELAY_US, d.port);
    const viaEcho = (n: number) => echoed(s, got, echo.port, n);
    const pick = (st: ReturnType<NativeDatapath["stats"]>) => ({ polls: st.rxBusyPolls, hits: st.rxBusyHits, late: st.rxBusyLate!, gated: st.rxBusyGated! });
    const delta = (a: ReturnType<typeof pick>, b: ReturnType<typeof pick>) => ({ polls: a.polls - b.polls, hits: a.hits - b.hits, late: a.late - b.late, gated: a.gated - b.gated });
    /**
     * `n` answers with quick yields, until a run's windows catch QUICK_HITS (up to 5 runs: a busy
     * machine, other tests or a build, makes yields late, and this test compares with quick ones; the
     * whole suite beside a CPU hog left 6-8 of 20 caught, this file alone beside a hog and a half-time
     * hog 4-5; the slow phase's rule allows 2 of 40)
     */
    const QUICK_HITS = 4;
    const quickPhase = (n: number, what: string) =>
      firstGoodRun(what, 5, async () => {
        const before = pick(d.stats());
        await viaEcho(n);
        return delta(pick(d.stats()), before);
      }, (q) => q.hits >= QUICK_HITS);
    try {
      // quick yields: the windows catch the answers
      await quickPhase(20, "the quick phase");
      // each yield now lasts twice the window (beside CPU hogs a yield can last a scheduler tick): every
      // answer comes meanwhile, and must not count as caught in time (it did, and the gate stayed open
      // while every hop waited for the scheduler)
      d.slowYield(2 * WINDOW);
      // (without the rule: a hit for nearly every one of the 40, and the gate never closes; with it, a
      // stray hit at most where an answer beat a window's first poll, in every run, and from a few late
      // windows on — fewer than CLOSE_MISSES when the quick phase's last windows missed — the gate holds
      // them back. How many it holds back depends on the load: 9 of 40 in a run beside a CPU hog and a
      // half-time one, where the echo's answers also come late and more windows open before the gate
      // closes; up to 3 runs, each held to the hit rule. Where the quick phase's last windows missed, the
      // gate closes after 2-3 late windows (a noisier VM: late 2-3, gated 33-36 in every run): 2 late
      // windows and 12 held back show the rule; without it the hits would be near 40)
      await firstGoodRun(
        "40 answers with slow yields",
        3,
        async () => {
          const before = pick(d.stats());
          await viaEcho(40);
          const slow = delta(pick(d.stats()), before);
          expect(slow.hits, JSON.stringify(slow)).toBeLessThanOrEqual(2);
          return slow;
        },
        (slow) => slow.late >= 2 && slow.gated >= 12,
      );
      // quick yields again: the probes catch the answers, and the gate opens
      d.slowYield(0);
      await quickPhase(150, "the gate opening again");
    } finally {
      await echo.close();
    }
  });

  it("0 turns it off: no window opens, nothing is gated", async () => {
    const d = datapath();
    d.setBusyPoll(200, true);
    d.setBusyPoll(0);
    const s = await client();
    const got = receiving(d);
    await answered(d, s, got, 20);
    expect(d.stats()).toMatchObject({ rxBusyPolls: 0, rxBusyHits: 0, rxBusyGated: 0, rxBusySpins: 0 });
  });

  it("setBusyPoll refuses what it cannot take", () => {
    const d = datapath();
    expect(() => d.setBusyPoll(1001, true)).toThrow(RangeError);
    expect(() => d.setBusyPoll(100, false, 2001)).toThrow(RangeError);
    expect(() => d.setBusyPoll(-1, true)).toThrow(TypeError);
    expect(() => d.setBusyPoll(1.5)).toThrow(TypeError);
  });
});

describe("the Node host's busy poll setting", () => {
  it("the default is adaptive: NativeUdpLink, datapathOf and its counters", async () => {
    const r = NativeUdpLink.open({ address: A, port: 0 });
    if (!r.link) throw new Error(r.reason);
    open.push({ close: () => void r.link.close() });
    expect(r.link.busyPoll).toBe("adaptive");
    expect(r.link.busyPollState).toBe(`adaptive (${ADAPTIVE_BUSY_POLL_US} µs windows after a received batch, gated on their hit rate)`);
    const d = await openDevice({ address: A, port: 0 });
    devices.push(d);
    expect(datapathOf(d)).toMatchObject({ path: "native", busyPoll: expect.stringMatching(/^adaptive \(/), busyPollStats: { windows: 0, hits: 0, gated: 0 } });
  });

  it("a sparse one-way stream between two default devices: the gate closes on both ends", async () => {
    const access = Access.LOCAL_WRITE;
    const a = await openRcEnd(A, {}, access, { opened: devices });
    const b = await openRcEnd(B, {}, access, { opened: devices });
    connectRcEnds(a, b, access);
    const n = 40;
    for (let i = 0; i < 16; i++) b.qp.postRecv({ wrId: BigInt(i), sgList: [b.mr.sge(0, 64)] });
    let received = 0;
    void (async () => {
      for (let i = 0; i < n; i++) {
        const wc = await b.cq.next();
        if (wc.status !== WcStatus.SUCCESS) return;
        received++;
        b.qp.postRecv({ wrId: wc.wrId, sgList: [b.mr.sge(0, 64)] });
      }
    })();
    for (let i = 0; i < n; i++) {
      a.qp.postSend({ wrId: BigInt(i), opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [a.mr.sge(0, 64)] });
      expect((await a.cq.next()).status).toBe(WcStatus.SUCCESS);
      await pause(4);
    }
    await until(() => received === n, 3000, "the SENDs at B");
    for (const [end, d] of [["sender", a.d], ["receiver", b.d]] as const) {
      const w = datapathOf(d)!.busyPollStats!;
      // each end took a batch per SEND (the SEND, or its ACK); a gate that stayed open would open 40 windows
      expect(w.gated, end).toBeGreaterThanOrEqual(n - CLOSE_MISSES - 10);
      expect(w.windows, end).toBeLessThanOrEqual(CLOSE_MISSES + 10);
    }
  });

  it("in a worker thread the default is off (its event loop also hears the other threads); asked for, it polls", async () => {
    // the built host (npm run build): a worker runs JavaScript, not this TypeScript
    const index = new URL("../../../dist/node/index.js", import.meta.url).href;
    const code = `
      const { parentPort, workerData } = require("node:worker_threads");
      import(workerData.index).then(async ({ openDevice, udpLinkOf }) => {
        const out = [];
        for (const o of [{}, { busyPollUs: "adaptive" }]) {
          const d = await openDevice({ address: workerData.address, port: 0, ...o });
          out.push(udpLinkOf(d).busyPoll);
          await d.close();
        }
        parentPort.postMessage(out);
      }).catch((e) => parentPort.postMessage(String(e)));`;
    const w = new Worker(code, { eval: true, workerData: { index, address: A } });
    try {
      const [got] = await once(w, "message");
      expect(got).toEqual([0, "adaptive"]);
    } finally {
      await w.terminate();
    }
  });

  it("busyPollUs: a number is a fixed window, 0 off; SOFTROCE_BUSY_POLL_US the same, \"adaptive\" too", async () => {
    const link = (o: { busyPollUs?: number | "adaptive" } = {}) => {
      const r = NativeUdpLink.open({ address: A, port: 0, ...o });
      if (!r.link) throw new Error(r.reason);
      open.push({ close: () => void r.link.close() });
      return r.link;
    };
    expect(link({ busyPollUs: 150 }).busyPollState).toBe("fixed 150 µs (every window opens)");
    expect(link({ busyPollUs: 0 }).busyPollState).toBe("off");
    process.env.SOFTROCE_BUSY_POLL_US = "0";
    expect(link().busyPoll).toBe(0);
    expect(link({ busyPollUs: "adaptive" }).busyPoll).toBe("adaptive"); // the option wins over env
    process.env.SOFTROCE_BUSY_POLL_US = "300";
    expect(link().busyPoll).toBe(300);
    process.env.SOFTROCE_BUSY_POLL_US = "adaptive";
    expect(link().busyPoll).toBe("adaptive");
    for (const bad of ["1001", "-1", "adapt", "Adaptive", " 5", "1e2", "0x10"]) {
      process.env.SOFTROCE_BUSY_POLL_US = bad;
      expect(() => link(), bad).toThrow(`SOFTROCE_BUSY_POLL_US=${JSON.stringify(bad)}: adaptive or an integer 0 .. 1000 µs`);
    }
    delete process.env.SOFTROCE_BUSY_POLL_US;
    for (const bad of [1001, -1, 2.5, "fixed", NaN]) {
      expect(() => link({ busyPollUs: bad as number }), String(bad)).toThrow(RangeError);
    }
    const d = await openDevice({ address: B, port: 0, busyPollUs: 0 });
    devices.push(d);
    expect(datapathOf(d)?.busyPoll).toBe("off");
    expect((udpLinkOf(d) as NativeUdpLink).busyPoll).toBe(0);
  });
});
