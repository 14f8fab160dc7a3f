// perftest's -D clock and the test's completions taken one at a time under it (perftest-exchange.ts
// runs the tests; this is their sense of time).

import { kernelText } from "../node/kernel-text.js";
import type { WorkCompletion } from "../core/verbs/index.js";

/** The CPU times perftest's --cpu_util reads: the first line of /proc/stat's user time and idle time (in ticks). */
export interface CpuStat {
  user: number;
  idle: number;
}

/**
 * get_cpu_stats: the machine's user and idle time so far (/proc/stat's "cpu" line, its first and fourth
 * figures); undefined where it cannot be read (perftest then counts 0 for both).
 */
export function cpuStat(text?: string): CpuStat | undefined {
  const line = (text ?? kernelText("/proc/stat"))?.split("\n", 1)[0];
  if (line === undefined) return undefined;
  const words = line.trim().split(/\s+/);
  const [user, idle] = [Number(words[1]), Number(words[4])];
  return Number.isFinite(user) && Number.isFinite(idle) ? { user, idle } : undefined;
}

/**
 * perftest's get_cpu_mhz as -C counts by it: the first "cpu MHz" of /proc/cpuinfo (the TSC's rate
 * on x86, which perftest's cycles count); undefined where there is none.
 */
export function cpuMhz(text?: string): number | undefined {
  const info = text ?? kernelText("/proc/cpuinfo");
  const m = info === undefined ? null : /^cpu MHz\s*:\s*([0-9.]+)/m.exec(info);
  const mhz = m ? Number(m[1]) : NaN;
  return mhz > 0 ? mhz : undefined;
}

/** calc_cpu_util: the user time over the user and idle time between two samples, % (its formula: system time counts as neither). */
export function cpuUtil(a: CpuStat | undefined, b: CpuStat | undefined): number {
  const user = (b?.user ?? 0) - (a?.user ?? 0);
  const idle = (b?.idle ?? 0) - (a?.idle ?? 0);
  return user + idle !== 0 ? (user / (user + idle)) * 100 : 0;
}

/**
 * perftest's -D (its catch_alarm states): a margin of warm-up, the sample, a margin, the end. The margin
 * is -f's, or a quarter of the duration in whole seconds (perftest's default), so the sample is the middle
 * half; a test counts what completes within the sample, over the sample's time, and runs on to the end.
 *
 * With `everyPeriod` it is --run_infinitely's clock (perftest's print thread): no margins and no end;
 * each period of the duration is a sample, handed to `everyPeriod` as it closes, and the next begins.
 */
export class DurationClock {
  private state: "start" | "sample" | "stop" | "end" = "start";
  private started = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private periods: ReturnType<typeof setInterval> | undefined;
  private wake: () => void = () => {};
  /** when the sample began and ended (ms) */
  private t0 = 0;
  private t1 = 0;
  /** operations completed within the sample */
  count = 0;
  /** --cpu_util: takes the CPU times as the sample begins and as it ends (perftest's catch_alarm) */
  sampleCpu = false;
  private cpuAtStart: CpuStat | undefined;
  private cpuAtEnd: CpuStat | undefined;
  /** resolves at the end */
  readonly ended: Promise<void>;

  constructor(
    private readonly durationS: number,
    private readonly marginS = Math.floor(durationS / 4),
    private readonly everyPeriod?: (count: number, seconds: number) => void,
  ) {
    this.ended = new Promise((r) => (this.wake = r));
  }

  /** Starts the clock (once: a SEND test's receiver at its first message, as perftest's). */
  start(): void {
    if (this.started) return;
    this.started = true;
    if (this.everyPeriod) {
      const every = this.everyPeriod;
      this.state = "sample";
      this.t0 = performance.now();
      this.periods = setInterval(() => {
        this.t1 = performance.now();
        every(this.count, this.seconds);
        this.count = 0;
        this.t0 = this.t1;
      }, this.durationS * 1000);
      return;
    }
    const margin = this.marginS * 1000;
    const after = (ms: number, then: () => void) => (this.timer = setTimeout(then, ms));
    after(margin, () => {
      this.state = "sample";
      this.t0 = performance.now();
      if (this.sampleCpu) this.cpuAtStart = cpuStat();
      after(this.durationS * 1000 - 2 * margin, () => {
        this.state = "stop";
        this.t1 = performance.now();
        if (this.sampleCpu) this.cpuAtEnd = cpuStat();
        after(margin, () => {
          this.state = "end";
          this.wake();
        });
      });
    });
  }

  get done(): boolean {
    return this.state === "end";
  }

  /** Operations completed (one, or a moderated completion's n): counted when within the sample. */
  tick(n = 1): void {
    if (this.state === "sample") this.count += n;
  }

  /** --cpu_util's figure for the sample, % (0 until it has ended, or without sampleCpu) */
  get cpuUtil(): number {
    return cpuUtil(this.cpuAtStart, this.cpuAtEnd);
  }

  /** The sample's length, seconds. */
  get seconds(): number {
    return Math.max((this.t1 - this.t0) / 1000, 1e-9);
  }

  stop(): void {
    clearTimeout(this.timer);
    clearInterval(this.periods);
  }
}

/**
 * Until performance.now() reaches `t` (ms): a timer for all but the last millisecond of a wait of 2 ms
 * or more, then a spin (perftest spins the whole wait; a timer alone may come a millisecond late or
 * more). A shorter wait first gives the event loop one turn (what was just posted goes out, what
 * came in is taken) and spins the rest.
 */
export async function sleepUntil(t: number): Promise<void> {
  const ahead = t - performance.now();
  await new Promise((r) => (ahead >= 2 ? setTimeout(r, ahead - 1) : setImmediate(r)));
  while (performance.now() < t);
}

/**
 * sleepUntil for a wait while messages are in flight (the rate limiter's gap between bursts): its last
 * millisecond, or a wait under 2 ms, goes in turns of the event loop instead of a spin, so the device
 * takes the packets that come meanwhile and the run's completions race the wake-up as they arrive. A
 * spin would hold them for up to 2 ms, every gap (--latency_gap's wait has nothing in flight, and
 * spins for its precision).
 */
export async function yieldUntil(t: number): Promise<void> {
  const ahead = t - performance.now();
  if (ahead >= 2) await new Promise((r) => setTimeout(r, ahead - 1));
  do await new Promise((r) => setImmediate(r));
  while (performance.now() < t);
}

/**
 * The test's completions one at a time. With -D, `next(true)` gives null once the clock has ended,
 * keeping the wait for the completion still to come for the next call (so none is lost); so does a
 * `wake` that comes first (the rate limiter's next burst).
 */
export class Completions {
  private pending: Promise<WorkCompletion> | undefined;
  /** the clock's end as a stop (null), made once: a wait per completion races it */
  private readonly ended: Promise<null> | undefined;
  /** the last wake given and its stop (the rate limiter gives one wake a gap, raced by many waits) */
  private wake: Promise<void> | undefined;
  private woken: Promise<null> | undefined;

  /** wait: the CQ's next completion (through the test's stall guard) */
  constructor(
    private readonly wait: () => Promise<WorkCompletion>,
    private readonly clock?: DurationClock,
  ) {
    this.ended = clock?.ended.then(() => null);
  }

  async next(untilEnd = false, wake?: Promise<void>): Promise<WorkCompletion | null> {
    if (!this.pending) {
      this.pending = this.wait();
      this.pending.catch(() => {}); // a wait left behind at the end fails unheard; an awaited one throws
    }
    const end = untilEnd ? this.ended : undefined;
    if (end && this.clock!.done) return null;
    if (wake && wake !== this.wake) {
      this.wake = wake;
      this.woken = wake.then(() => null);
    }
    const racers: Promise<WorkCompletion | null>[] = [this.pending];
    if (end) racers.push(end);
    if (wake) racers.push(this.woken!);
    if (racers.length > 1 && (await Promise.race(racers)) === null) return null;
    const wc = await this.pending;
    this.pending = undefined;
    return wc;
  }
}
