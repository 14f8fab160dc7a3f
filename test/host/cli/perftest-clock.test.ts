// perftest's -D clock and the completions taken under it (host/cli/perftest-clock.ts), on fake timers.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Completions, cpuMhz, cpuStat, cpuUtil, DurationClock } from "../../../host/cli/perftest-clock.js";
import type { WorkCompletion } from "../../../host/core/verbs/index.js";

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("DurationClock", () => {
  it("counts only the middle half of -D 8: two seconds of warm-up, four of sample, two to the end", async () => {
    const clock = new DurationClock(8);
    clock.tick(); // before start: not counted
    clock.start();
    clock.start(); // once only: a second start does not restart it
    await vi.advanceTimersByTimeAsync(1999);
    clock.tick();
    expect(clock.count).toBe(0);
    await vi.advanceTimersByTimeAsync(2);
    clock.tick();
    clock.tick();
    await vi.advanceTimersByTimeAsync(3998);
    clock.tick();
    expect(clock.count).toBe(3);
    await vi.advanceTimersByTimeAsync(2);
    clock.tick(); // past the sample
    expect(clock.count).toBe(3);
    expect(clock.seconds).toBeCloseTo(4, 1);
    expect(clock.done).toBe(false);
    await vi.advanceTimersByTimeAsync(2000);
    expect(clock.done).toBe(true);
    await expect(clock.ended).resolves.toBeUndefined();
  });

  it("-f's margin instead of the quarter: -D 5 -f 2 samples one second, from 2 s to 3 s; -f 0 samples it all", async () => {
    let clock = new DurationClock(5, 2);
    clock.start();
    await vi.advanceTimersByTimeAsync(1999);
    clock.tick();
    await vi.advanceTimersByTimeAsync(2);
    clock.tick();
    await vi.advanceTimersByTimeAsync(998);
    clock.tick();
    await vi.advanceTimersByTimeAsync(2);
    clock.tick();
    expect(clock.count).toBe(2);
    expect(clock.seconds).toBeCloseTo(1, 1);
    await vi.advanceTimersByTimeAsync(1997);
    expect(clock.done).toBe(false);
    await vi.advanceTimersByTimeAsync(2);
    expect(clock.done).toBe(true);
    clock = new DurationClock(4, 0);
    clock.start();
    await vi.advanceTimersByTimeAsync(0);
    clock.tick();
    await vi.advanceTimersByTimeAsync(3999);
    clock.tick();
    expect(clock.count).toBe(2);
    await vi.advanceTimersByTimeAsync(2);
    expect(clock.done).toBe(true);
  });

  it("has no warm-up below -D 4 (the margin is a quarter in whole seconds), and stops when told", async () => {
    const clock = new DurationClock(3);
    clock.start();
    await vi.advanceTimersByTimeAsync(0);
    clock.tick();
    expect(clock.count).toBe(1);
    clock.stop();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(clock.done).toBe(false);
  });

  it("--run_infinitely's clock: no margins, no end; each -D 2 period's count and length handed over as it closes, then counted afresh", async () => {
    const periods: [number, number][] = [];
    const clock = new DurationClock(2, 0, (count, seconds) => periods.push([count, seconds]));
    clock.tick(); // before start: not counted
    clock.start();
    clock.tick(3);
    await vi.advanceTimersByTimeAsync(1999);
    clock.tick();
    expect(periods).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    clock.tick(5);
    await vi.advanceTimersByTimeAsync(2000);
    await vi.advanceTimersByTimeAsync(2000);
    expect(periods.map(([n]) => n)).toEqual([4, 5, 0]);
    for (const [, secs] of periods) expect(secs).toBeCloseTo(2, 3);
    expect(clock.done).toBe(false);
    clock.stop();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(periods.length).toBe(3);
  });
});

describe("--cpu_util's figures (perftest's get_cpu_stats and calc_cpu_util)", () => {
  it("reads /proc/stat's first line: the user time and the idle time; the use is user over user and idle, %", () => {
    expect(cpuStat("cpu  100 5 30 1000 7 0 2 0 0 0\ncpu0 50 2 15 500 3 0 1 0 0 0\n")).toEqual({ user: 100, idle: 1000 });
    expect(cpuStat("intr 1 2 3")).toBeUndefined();
    expect(cpuStat("cpu 1")).toBeUndefined();
    // 50 ticks of user time and 50 idle between the two: 50 %; the system time (30 -> 80) counts as neither, as perftest's
    expect(cpuUtil({ user: 100, idle: 1000 }, { user: 150, idle: 1050 })).toBe(50);
    expect(cpuUtil({ user: 100, idle: 1000 }, { user: 100, idle: 1000 })).toBe(0);
    expect(cpuUtil(undefined, undefined)).toBe(0);
    // the machine's own, between two reads: a figure from 0 to 100
    const a = cpuStat()!;
    expect(a.user).toBeGreaterThan(0);
    const u = cpuUtil(a, cpuStat());
    expect(u).toBeGreaterThanOrEqual(0);
    expect(u).toBeLessThanOrEqual(100);
  });
});

describe("-C's rate (perftest's get_cpu_mhz from /proc/cpuinfo)", () => {
  it("the first cpu MHz line; none where there is none", () => {
    expect(cpuMhz("processor\t: 0\ncpu MHz\t\t: 2445.426\nprocessor\t: 1\ncpu MHz\t\t: 1200.000\n")).toBe(2445.426);
    expect(cpuMhz("processor\t: 0\nBogoMIPS\t: 50.00\n")).toBeUndefined();
    expect(cpuMhz("cpu MHz\t\t: 0.000\n")).toBeUndefined();
  });
});

describe("Completions", () => {
  const wc = (n: number) => ({ wrId: BigInt(n) }) as WorkCompletion;

  it("gives the completions in order, and after the clock's end null, keeping the one still awaited for the next call", async () => {
    const waiting: ((w: WorkCompletion) => void)[] = [];
    const clock = new DurationClock(1);
    const waits = new Completions(() => new Promise<WorkCompletion>((r) => waiting.push(r)), clock);
    clock.start();
    const first = waits.next(true);
    waiting[0]!(wc(1));
    expect((await first)?.wrId).toBe(1n);
    const second = waits.next(true);
    await vi.advanceTimersByTimeAsync(1001);
    expect(clock.done).toBe(true);
    await expect(second).resolves.toBeNull();
    expect(waiting).toHaveLength(2); // the wait for the second was made once, and is kept
    await expect(waits.next(true)).resolves.toBeNull();
    const drained = waits.next(); // without untilEnd: the kept wait
    waiting[1]!(wc(2));
    expect((await drained)?.wrId).toBe(2n);
    expect(waiting).toHaveLength(2);
  });

  it("without a clock next(true) waits as next() does", async () => {
    let n = 0;
    const waits = new Completions(async () => wc(++n));
    expect((await waits.next(true))?.wrId).toBe(1n);
    expect((await waits.next())?.wrId).toBe(2n);
  });
});
