// A wake-up that never arrives (an Atomics.waitAsync promise that does not settle although the
// other side moved the word and notified) must cost a device worker at most two lost-wake-up looks
// (LOST_WAKE_CHECK_MS), not the device: once in ~50 runs of bench/worker.mjs on a loaded machine
// both processes went idle with the application parked, PROGRESS past the value it waited on and
// the worker's notify sent. These tests lose one wait on purpose (control.ts `waits.change` hands
// back a promise that never settles) on each side and check that the device goes on, counted; and
// delay one on the application's side, which is counted late (appLateWakeups) when it settles.
import { afterEach, describe, expect, it } from "vitest";
import { Access, SendFlags, WcStatus, WrOpcode } from "../../../host/core/verbs/enums.js";
import type { Device } from "../../../host/core/verbs/device.js";
import { connectRcEnds, openRcEnd } from "../support/rc-end.js";
import { Control, DeviceServer, LOST_WAKE_CHECK_MS, W, waits, workerStatsOf } from "../../../host/core/worker/index.js";

const realChange = waits.change;
const opened: Device[] = [];
afterEach(() => {
  waits.change = realChange;
  while (opened.length) opened.pop()!.close();
});

/** Makes the `nth` wait from now on the promise `swap` makes of the real one; the others are real. `done()`: that wait began. */
function swapWait(nth: number, swap: (real: Promise<unknown>) => Promise<unknown>): { done: () => boolean } {
  let n = 0;
  let done = false;
  waits.change = (i32, index, value) => {
    const w = realChange(i32, index, value);
    if (w && ++n === nth) {
      done = true;
      return swap(w);
    }
    return w;
  };
  return { done: () => done };
}

/** Makes the `nth` wait from now on hang (its promise never settles). */
const loseWait = (nth: number) => swapWait(nth, () => new Promise<unknown>(() => {}));

/** Makes the `nth` wait from now on settle `delayMs` after the real one does (a late wake-up). */
const delayWait = (nth: number, delayMs: number) => swapWait(nth, (w) => w.then((v) => new Promise((r) => setTimeout(() => r(v), delayMs))));

const until = async (cond: () => boolean, ms: number): Promise<boolean> => {
  const end = performance.now() + ms;
  while (!cond() && performance.now() < end) await new Promise((r) => setTimeout(r, 5));
  return cond();
};

/** A DeviceServer over a stand-in core that records the doorbells rung; `ring` rings one as the proxy does. */
function standIn() {
  const ctl = Control.create();
  const rung: number[] = [];
  const core = { doorbell: (h: number) => void rung.push(h) } as unknown as WebAssembly.Exports;
  const server = new DeviceServer(ctl, core, ["doorbell"], () => 0);
  const ring = (h: number): void => {
    const head = ctl.load(W.DB_HEAD);
    ctl.i32[ctl.dbEntry(head)] = (h << 2) | 1;
    ctl.store(W.DB_HEAD, head + 1);
    Atomics.add(ctl.i32, W.WAKE, 1);
    if (Atomics.compareExchange(ctl.i32, W.WORKER_WAITING, 1, 0) === 1) Atomics.notify(ctl.i32, W.WAKE);
  };
  return { ctl, rung, server, ring };
}

const ACCESS = Access.LOCAL_WRITE | Access.REMOTE_WRITE;

/** A worker device at `a` SENDing to one on a single thread at `b` (8 receives posted there); `write(i)` sends and awaits its completion. */
async function sender(a: string, b: string) {
  const end = (address: string, worker: boolean) => openRcEnd(address, { worker }, ACCESS, { opened });
  const A = await end(a, true);
  const B = await end(b, false);
  connectRcEnds(A, B, ACCESS);
  for (let i = 0; i < 8; i++) B.qp.postRecv({ wrId: BigInt(i), sgList: [B.mr.sge(i * 64, 64)] });
  const write = async (i: number): Promise<void> => {
    A.qp.postSend({ wrId: BigInt(i), opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [A.mr.sge(0, 64)] });
    const wc = await A.cq.next();
    expect(wc.status).toBe(WcStatus.SUCCESS);
    expect(wc.wrId).toBe(BigInt(i));
  };
  return { A, write };
}

describe("a lost wake-up", () => {
  it("in the worker: a doorbell rung while its wait hangs is served after the lost-wake-up looks, counted", async () => {
    const { ctl, rung, server, ring } = standIn();
    const hang = loseWait(1);
    server.start();
    expect(hang.done()).toBe(true);
    expect(ctl.load(W.WORKER_WAITING)).toBe(1);
    const t0 = performance.now();
    ring(5);
    expect(await until(() => rung.length === 1, 20 * LOST_WAKE_CHECK_MS)).toBe(true);
    const late = performance.now() - t0;
    expect(rung).toEqual([5]);
    expect(ctl.load(W.WORKER_LOST_WAKEUPS)).toBe(1);
    expect(late).toBeGreaterThanOrEqual(LOST_WAKE_CHECK_MS * 0.9);
    // the waits after it are real: the next doorbells are served by their wake-ups, nothing more is lost
    for (let h = 6; h < 9; h++) {
      ring(h);
      expect(await until(() => rung.length === h - 4, 20 * LOST_WAKE_CHECK_MS)).toBe(true);
    }
    expect(rung).toEqual([5, 6, 7, 8]);
    expect(ctl.load(W.WORKER_LOST_WAKEUPS)).toBe(1);
    await new Promise((r) => setTimeout(r, 3 * LOST_WAKE_CHECK_MS));
    expect(ctl.load(W.WORKER_LATE_WAKEUPS)).toBe(0); // it never settled
    server.stop();
  });

  it("in the worker: a wake-up that comes 800 ms late is given up on (lost), then counted late when it settles with WAKE unmoved", async () => {
    const { ctl, rung, server, ring } = standIn();
    const DELAY = 8 * LOST_WAKE_CHECK_MS;
    const late = delayWait(1, DELAY);
    server.start();
    expect(late.done()).toBe(true);
    ring(5);
    // served by the lost-wake-up looks before the settlement comes; then it comes, nothing rung since
    expect(await until(() => rung.length === 1, DELAY - 50)).toBe(true);
    expect(ctl.load(W.WORKER_LOST_WAKEUPS)).toBe(1);
    expect(ctl.load(W.WORKER_LATE_WAKEUPS)).toBe(0);
    expect(await until(() => ctl.load(W.WORKER_LATE_WAKEUPS) === 1, 2 * DELAY)).toBe(true);
    expect(rung).toEqual([5]);
    server.stop();
  });

  it("on the application thread: the completions of a round trip whose wake-up hangs arrive, counted", async () => {
    const { A, write } = await sender("127.0.10.121", "127.0.10.122");
    await write(0);
    // this thread's next wait hangs: the SEND's completion comes by the lost-wake-up look
    const hang = loseWait(1);
    await write(1);
    expect(hang.done()).toBe(true);
    // the hung wait is counted when it is found out: in write(1) if the SEND's completion was its
    // wake-up, in write(2) if the completion came by the pump before the thread parked (then only
    // write(2)'s wake-up is lost, and that round trip completes by the look or not at all)
    for (let i = 2; i < 6; i++) await write(i);
    expect(workerStatsOf(A.d)!.appLostWakeups).toBe(1);
    expect(workerStatsOf(A.d)!.workerLostWakeups).toBe(0);
    // it never settled: not counted late
    await new Promise((r) => setTimeout(r, 3 * LOST_WAKE_CHECK_MS));
    expect(workerStatsOf(A.d)!.appLateWakeups).toBe(0);
  });

  it("on the application thread: a wake-up that comes 800 ms late is given up on (lost), then counted late when it settles before another notify", async () => {
    const { A, write } = await sender("127.0.10.123", "127.0.10.124");
    await write(0);
    const DELAY = 8 * LOST_WAKE_CHECK_MS;
    const late = delayWait(1, DELAY);
    // one round trip at a time, each followed by a quiet spell longer than the delay (no notify in it):
    // the delayed wait is the one its SEND's completion ends (or, come by the pump first, the next one's)
    let i = 1;
    for (; i < 4 && workerStatsOf(A.d)!.appLostWakeups === 0; i++) {
      await write(i);
      await new Promise((r) => setTimeout(r, DELAY + 2 * LOST_WAKE_CHECK_MS));
    }
    expect(late.done()).toBe(true);
    const st = workerStatsOf(A.d)!;
    expect({ lost: st.appLostWakeups, late: st.appLateWakeups }).toEqual({ lost: 1, late: 1 });
    for (; i < 8; i++) await write(i);
    expect(workerStatsOf(A.d)!.appLostWakeups).toBe(1);
    expect(workerStatsOf(A.d)!.appLateWakeups).toBe(1);
  });
});
