// perftest's rate limiter (host/cli/perftest-rate.ts): its figures, its checks, the software limiter.
import { describe, expect, it } from "vitest";
import { sleepUntil, yieldUntil } from "../../../host/cli/perftest-clock.js";
import { firstGoodRun } from "../support/timing-tries.js";
import { burstGapMs, HW_RATES, Pace, rateLimitFrom, ratePps, type RateFlags, type RateRun } from "../../../host/cli/perftest-rate.js";

describe("ratePps and burstGapMs: perftest's rate_limit_pps and gap_time", () => {
  it("M is MiB/s, g Gb/s, p messages a second; each truncated to whole messages as perftest's int", () => {
    expect(ratePps({ rate: 1, units: "M", burst: 16 }, 1024)).toBe(1024);
    expect(ratePps({ rate: 10, units: "g", burst: 128 }, 64)).toBe(19531250);
    expect(ratePps({ rate: 1000.9, units: "p", burst: 10 }, 64)).toBe(1000);
    expect(ratePps({ rate: 1, units: "g", burst: 1 }, 3)).toBe(41666666);
  });

  it("the gap is a second over the whole bursts a second: Linux's perftest at 1 MiB/s, 1 KiB, -t 16 (64 bursts), at 1000 pps in bursts of 128 (7)", () => {
    // measured in the interop guest: 1.03 MB/sec and 0.000930 Mpps, which these gaps give
    expect(burstGapMs({ rate: 1, units: "M", burst: 16 }, 1024)).toBe(1000 / 64);
    expect(burstGapMs({ rate: 1000, units: "p", burst: 128 }, 64)).toBe(1000 / 7);
    expect(burstGapMs({ rate: 1, units: "p", burst: 128 }, 64)).toBe(Infinity);
  });
});

/** A one-way write_bw's run as the checks see it. */
const RUN: RateRun = { test: "write_bw", bw: true, atomic: false, biSend: false, infinite: false, cmExchange: false, txDepth: 128, size: 64, timeoutMs: 60_000 };
const refuse = (msg: string): never => {
  throw new Error(msg);
};
const from = (f: RateFlags, r: Partial<RateRun> = {}) => rateLimitFrom(f, { ...RUN, ...r }, refuse);

describe("rateLimitFrom: perftest's checks, in its order, and ours", () => {
  it("none without --rate_limit or --rate_limit_type; --rate_units alone is ignored, as perftest's", () => {
    expect(from({})).toBeUndefined();
    expect(from({ rateUnits: "p" })).toBeUndefined();
  });

  it("--rate_limit alone asks for HW: one of ibv_rate's figures, spelt as perftest's table, which a RoCE QP then does not take (fallback)", () => {
    expect(from({ rateLimitStr: "10" })).toEqual({ rate: 10, units: "g", burst: 128, hw: "fallback" });
    expect(from({ rateLimitStr: "2.5", burstSize: 4 })).toEqual({ rate: 2.5, units: "g", burst: 4, hw: "fallback" });
    expect(() => from({ rateLimitStr: "3" })).toThrow(/--rate_limit 3: Failed: Unknown rate limit value \(a HW limit.* takes 2\.5, 5, 10, .*300 Gbps; --rate_limit_type SW takes any rate\)/);
    expect(() => from({ rateLimitStr: "10.0" })).toThrow(/Unknown rate limit value/); // perftest compares the text
    expect(HW_RATES).toContain("MAX"); // in perftest's table, yet atof gives it 0: refused as no rate
    expect(() => from({ rateLimitStr: "MAX" })).toThrow(/--rate_limit MAX: Rate limit must be non-negative/);
  });

  it("--rate_limit_type HW fails at connect (hw: fail), where perftest's does against rxe", () => {
    expect(from({ rateLimitStr: "10", rateLimitType: "HW" })).toEqual({ rate: 10, units: "g", burst: 128, hw: "fail" });
  });

  it("SW: any rate above 0; the burst the tx depth unless --burst_size (said, as perftest's)", () => {
    expect(from({ rateLimitStr: "1000", rateUnits: "p", rateLimitType: "SW" })).toEqual({ rate: 1000, units: "p", burst: 128, burstDefaulted: true });
    expect(from({ rateLimitStr: "1000", rateUnits: "p", rateLimitType: "SW", burstSize: 10 })).toEqual({ rate: 1000, units: "p", burst: 10 });
    expect(from({ rateLimitStr: "1000", rateUnits: "p", rateLimitType: "SW", burstSize: 0 })).toEqual({ rate: 1000, units: "p", burst: 128, burstDefaulted: true });
  });

  it("refuses as perftest refuses", () => {
    const cases: [RateFlags, Partial<RateRun>, RegExp][] = [
      [{ rateLimitStr: "0" }, {}, /--rate_limit 0: Rate limit must be non-negative/],
      [{ rateLimitStr: "abc" }, {}, /--rate_limit abc: Rate limit must be non-negative/],
      [{ burstSize: 5 }, {}, /--burst_size 5: Can't enable burst mode when rate limiter is off/],
      [{ rateLimitStr: "1", rateLimitType: "SW" }, { infinite: true }, /run_infinitely does not support rate limit feature yet/],
      [{ rateLimitStr: "1", rateLimitType: "SW" }, { test: "write_lat", bw: false }, /SW Rate limiter cann't be executed on non-BW, ATOMIC or bidirectional SEND tests \(write_lat,/],
      [{ rateLimitStr: "1", rateLimitType: "SW" }, { test: "atomic_bw", atomic: true }, /cann't be executed .*\(atomic_bw,/],
      [{ rateLimitStr: "1", rateLimitType: "SW" }, { test: "send_bw", biSend: true }, /cann't be executed .*\(send_bw -b,/],
      [{ rateLimitStr: "10" }, { cmExchange: true }, /HW rate limit isn't supported yet with rdma_cm scenarios/],
      [{ rateLimitStr: "10", rateUnits: "p" }, {}, /--rate_units p: Failed: pps rate limit units is not supported when setting HW rate limit/],
      [{ rateLimitStr: "10", rateLimitType: "PP" }, {}, /--rate_limit_type PP: Packet Pacing is only supported for Raw Ethernet\./],
    ];
    for (const [f, r, msg] of cases) expect(() => from(f, r), JSON.stringify(f)).toThrow(msg);
  });

  it("ours: a SW limit with no rate, or under one burst a second (perftest's would not limit), or a gap the stall guard would take for a peer gone", () => {
    expect(() => from({ rateLimitType: "SW" })).toThrow(/--rate_limit_type SW: no --rate_limit to limit to/);
    expect(() => from({ rateLimitStr: "100", rateUnits: "p", rateLimitType: "SW" })).toThrow(/100 messages of 64 B a second is less than one burst of 128 \(--burst_size, the tx depth\) a second/);
    // M and g: the largest size sets the fewest messages a second
    expect(() => from({ rateLimitStr: "1", rateUnits: "M", rateLimitType: "SW" }, { size: 1 << 20 })).toThrow(/1 messages of 1048576 B a second is less than one burst/);
    expect(from({ rateLimitStr: "1", rateUnits: "p", rateLimitType: "SW", burstSize: 1 }, { timeoutMs: 2001 })?.rate).toBe(1);
    expect(() => from({ rateLimitStr: "1", rateUnits: "p", rateLimitType: "SW", burstSize: 1 }, { timeoutMs: 1999 })).toThrow(/a burst of 1 every 1\.000 s; .*--wait \(1\.999 s\)/);
    // a latency test keeps the HW fallback's notice but runs no limiter: no figures to check
    expect(from({ rateLimitStr: "2.5" }, { test: "write_lat", bw: false, txDepth: 1, size: 1 << 23 })?.hw).toBe("fallback");
  });
});

describe("sleepUntil (the bursts' and --latency_gap's wait)", () => {
  it("ends no earlier than its time, and a wait under 2 ms still lets the event loop take a turn first (the burst just posted goes out)", async () => {
    for (const ms of [0.3, 5]) {
      let turned = false;
      setImmediate(() => (turned = true));
      const t = performance.now() + ms;
      await sleepUntil(t);
      expect(performance.now()).toBeGreaterThanOrEqual(t);
      expect(turned, `${ms} ms`).toBe(true);
    }
  });
});

describe("yieldUntil (the bursts' wait, messages in flight)", () => {
  it("ends no earlier than its time, and the event loop takes turns all through its last millisecond (the device takes what comes), where sleepUntil spins", async () => {
    for (const ms of [1, 1.5, 5]) {
      /** the turns the event loop took in the wait's last millisecond */
      const lastMsTurns = async (wait: (t: number) => Promise<void>) => {
        const at: number[] = [];
        let on = true;
        const tick = () => {
          at.push(performance.now());
          if (on) setImmediate(tick);
        };
        setImmediate(tick);
        const t = performance.now() + ms;
        await wait(t);
        on = false;
        expect(performance.now()).toBeGreaterThanOrEqual(t);
        return at.filter((x) => x >= t - 1 && x < t).length;
      };
      // a turn of the loop takes microseconds: a millisecond of them is many (a busy machine may
      // take the CPU away for the whole of one, so the run is tried again)
      await firstGoodRun(`yieldUntil ${ms} ms`, 3, () => lastMsTurns(yieldUntil), (turns) => turns >= 5);
      expect(await lastMsTurns(sleepUntil), `${ms} ms`).toBeLessThan(3);
    }
  });
});

describe("Pace: perftest's bursts", () => {
  it("a burst lets `burst` messages go (in whole lists), then holds every post until the gap from its start has passed", async () => {
    const pace = new Pace(10, 30);
    expect(pace.next()).toBeUndefined(); // nothing held
    const t0 = performance.now();
    expect(pace.take(128, 1)).toBe(10);
    const wake = pace.next();
    expect(wake).toBeDefined(); // the other 118 wait
    expect(pace.take(5, 1)).toBe(0);
    expect(pace.next()).toBe(wake); // one wake a gap
    await wake;
    expect(performance.now() - t0).toBeGreaterThanOrEqual(30);
    expect(pace.next()).toBeUndefined(); // woken: nothing held until a post is refused again
    expect(pace.take(4, 1)).toBe(4); // the next burst
    expect(pace.take(8, 1)).toBe(6);
    expect(pace.take(1, 1)).toBe(0);
  });

  it("with a post list, a burst is whole lists: what is left rounded up, as perftest's burst counting", () => {
    const pace = new Pace(12, 1000);
    expect(pace.take(10, 5)).toBe(10);
    expect(pace.take(10, 5)).toBe(5); // 2 left: one whole list
    expect(pace.take(5, 5)).toBe(0);
  });
});
