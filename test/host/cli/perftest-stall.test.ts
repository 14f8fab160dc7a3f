// The exchanges' rule for a peer that is gone (host/cli/perftest-stall.ts), on fake timers.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { unstalled, type ReadStall } from "../../../host/cli/perftest-stall.js";

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

/** A stall of 1000 ms over a counter the test moves, and a wait the test resolves or rejects. */
function setup() {
  let counter = 0;
  const stall: ReadStall = { ms: 1000, progress: () => counter };
  let settle!: { resolve(v: string): void; reject(e: Error): void };
  const p = new Promise<string>((resolve, reject) => (settle = { resolve, reject }));
  let outcome: { v?: string; e?: Error } | undefined;
  const wait = (progress?: () => number) =>
    unstalled(p, stall, () => new Error("gone"), progress).then(
      (v) => (outcome = { v }),
      (e: Error) => (outcome = { e }),
    );
  return { stall, settle, wait, move: () => counter++, outcome: () => outcome };
}

describe("unstalled", () => {
  it("gives up once a whole span passes with the progress figure unmoved, not before", async () => {
    const s = setup();
    void s.wait();
    await vi.advanceTimersByTimeAsync(999);
    expect(s.outcome()).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(s.outcome()?.e?.message).toBe("gone");
    expect(vi.getTimerCount()).toBe(0);
  });

  it("waits out spans that saw progress, each its own span, and gives the value when it comes", async () => {
    const s = setup();
    void s.wait();
    for (let i = 0; i < 5; i++) {
      await vi.advanceTimersByTimeAsync(500);
      s.move();
      await vi.advanceTimersByTimeAsync(500);
    }
    expect(s.outcome()).toBeUndefined();
    s.settle.resolve("came");
    await vi.advanceTimersByTimeAsync(0);
    expect(s.outcome()).toEqual({ v: "came" });
    expect(vi.getTimerCount()).toBe(0); // the span's timer cleared
  });

  it("a span that saw progress does not carry over: the next span unmoved gives up", async () => {
    const s = setup();
    void s.wait();
    await vi.advanceTimersByTimeAsync(500);
    s.move();
    await vi.advanceTimersByTimeAsync(1499); // the first span saw the move; the second not yet over
    expect(s.outcome()).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(s.outcome()?.e?.message).toBe("gone");
  });

  it("asks the given progress figure over the stall's own", async () => {
    const s = setup();
    let own = 0;
    void s.wait(() => own);
    await vi.advanceTimersByTimeAsync(500);
    s.move(); // the stall's counter: not asked
    own++;
    await vi.advanceTimersByTimeAsync(500);
    expect(s.outcome()).toBeUndefined();
    s.move();
    await vi.advanceTimersByTimeAsync(1000);
    expect(s.outcome()?.e?.message).toBe("gone");
  });

  it("passes the wait's failure on, and one after it gave up is heard by no one", async () => {
    const s = setup();
    void s.wait();
    s.settle.reject(new Error("bad wc"));
    await vi.advanceTimersByTimeAsync(0);
    expect(s.outcome()?.e?.message).toBe("bad wc");
    expect(vi.getTimerCount()).toBe(0);

    const t = setup();
    void t.wait();
    await vi.advanceTimersByTimeAsync(1000);
    expect(t.outcome()?.e?.message).toBe("gone");
    t.settle.reject(new Error("late")); // vitest fails the file on an unhandled rejection
    await vi.advanceTimersByTimeAsync(0);
  });

  it("without a stall is the wait itself: no timer", async () => {
    let resolve!: (v: number) => void;
    const p = new Promise<number>((r) => (resolve = r));
    const got = unstalled(p, undefined, () => new Error("never"));
    expect(vi.getTimerCount()).toBe(0);
    resolve(7);
    await expect(got).resolves.toBe(7);
  });
});
