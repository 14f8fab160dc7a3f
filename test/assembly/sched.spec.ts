import {
  timersInit, timerArm, timerCancel, timersNext, timerPopDue, timerArmed, timerDeadline, timersArmedCount,
} from "../../assembly/sched/timers";
import { arbiterInit, arbiterSchedule, arbiterNext, arbiterLength, arbiterIsQueued } from "../../assembly/sched/arbiter";

describe("timers", () => {
  it("fires the earliest deadline first and only when due", () => {
    timersInit(8);
    timerArm(3, 300.0);
    timerArm(1, 100.0);
    timerArm(2, 200.0);
    expect(timersNext()).toBe(100.0);
    expect(timerPopDue(99.0)).toBe(-1);
    expect(timerPopDue(250.0)).toBe(1);
    expect(timerPopDue(250.0)).toBe(2);
    expect(timerPopDue(250.0)).toBe(-1);
    expect(timersNext()).toBe(300.0);
    expect(timerArmed(1)).toBe(false);
    expect(timerArmed(3)).toBe(true);
  });

  it("re-arms earlier and later and cancels", () => {
    timersInit(8);
    timerArm(0, 50.0);
    timerArm(1, 60.0);
    timerArm(2, 70.0);
    timerArm(2, 10.0);
    expect(timersNext()).toBe(10.0);
    timerArm(2, 100.0);
    expect(timersNext()).toBe(50.0);
    timerCancel(0);
    timerCancel(0);
    expect(timersArmedCount()).toBe(2);
    expect(timersNext()).toBe(60.0);
    expect(timerDeadline(0)).toBe(Infinity);
    timerCancel(1);
    timerCancel(2);
    expect(timersNext()).toBe(Infinity);
    expect(timerPopDue(1e12)).toBe(-1);
  });

  it("keeps heap order under a long pseudo-random arm/cancel sequence", () => {
    const n = 64;
    timersInit(n);
    const expected = new StaticArray<f64>(n);
    for (let i = 0; i < n; i++) expected[i] = Infinity;
    let x: u32 = 12345;
    for (let step = 0; step < 5000; step++) {
      x = x * 1103515245 + 12345;
      const id = <i32>((x >> 8) % <u32>n);
      if ((x >> 28) < 3) {
        timerCancel(id);
        expected[id] = Infinity;
      } else {
        const at = <f64>((x >> 4) % 100000);
        timerArm(id, at);
        expected[id] = at;
      }
      let min = Infinity;
      for (let i = 0; i < n; i++) if (expected[i] < min) min = expected[i];
      expect(timersNext()).toBe(min);
    }
    let last = -1.0;
    let popped = 0;
    for (;;) {
      const id = timerPopDue(Infinity);
      if (id < 0) break;
      expect(expected[id]).toBeGreaterThanOrEqual(last);
      last = expected[id];
      expected[id] = Infinity;
      popped++;
    }
    for (let i = 0; i < n; i++) expect(expected[i]).toBe(Infinity);
    expect(popped).toBeGreaterThan(0);
  });
});

describe("arbiter", () => {
  it("queues each QP once, in FIFO order, and wraps", () => {
    arbiterInit(4);
    arbiterSchedule(2);
    arbiterSchedule(0);
    arbiterSchedule(2);
    expect(arbiterLength()).toBe(2);
    expect(arbiterIsQueued(2)).toBe(true);
    expect(arbiterNext()).toBe(2);
    expect(arbiterIsQueued(2)).toBe(false);
    for (let round = 0; round < 10; round++) {
      arbiterSchedule(3);
      arbiterSchedule(1);
      expect(arbiterNext()).toBe(round == 0 ? 0 : 3);
      if (round == 0) expect(arbiterNext()).toBe(3);
      expect(arbiterNext()).toBe(1);
    }
    expect(arbiterNext()).toBe(-1);
  });
});
