// The application thread's brief look before it sleeps on a worker device's CQ. A completion the
// worker writes while this thread sleeps costs the worker a notify and this thread a wake-up
// (Atomics.waitAsync: a task posted to its event loop, then the pump): on a two-vCPU machine
// 10–40 µs on the round trip's critical path. When CompletionQueue.next() finds the CQ empty and
// a completion is likely within `boundUs`, this thread watches the CQ's producer index for up to
// `boundUs` instead, with APP_WAITING cleared meanwhile (the worker then neither notifies nor
// wakes it for what the spin sees); if nothing came, it sleeps as before.
//
// When to look, adaptively: a wait is "fresh" when this thread rang a doorbell since the last
// completion it saw (a new request: its completion is a network round trip away) and "flowing"
// otherwise (the next completion of a burst that started). For each kind the spin keeps how long
// recent waits took until the worker wrote their completion (an exponential average; for a wait
// that slept, up to the worker's run that bumped PROGRESS, F.PROGRESS_AT, so that the wake-up's own
// cost does not count) and looks only when that is within the bound: a ping-pong's first completion (the ACK) is usually too far and its
// second (the answer, right behind it) near. It never looks when nothing happened on the device
// for IDLE_MS (nothing outstanding), nor (but to probe) while fewer than HIT_SHARE_MIN of its
// recent looks since the last such idle gap caught their completion (a machine so busy that the look only takes the CPU the
// worker needs), and a budget caps the time spent looking at APP_SPIN_SHARE of the thread's wall time,
// so a stream of completions just too far apart cannot make it spin all the time. With `yieldCpu`
// (Node: workerAppSpinYield) each look gives the CPU to another runnable thread before the next, so
// that on two busy vCPUs the worker the look waits for is not kept off this one.
import { Ring } from "../abi/index.js";
import type { DeviceMemory } from "../verbs/memory.js";
import { F, W, type Control } from "./control.js";
import { TraceStage } from "./trace.js";

/** The longest look an application thread may be given (µs). */
export const MAX_APP_SPIN_US = 200;
/** Nothing rung or completed for this long (ms): nothing is outstanding, never look. */
const IDLE_MS = 2;
/**
 * At most this share of wall time spent looking (a token bucket of at most 4 looks). A 64 B
 * ping-pong's looks take 60–85 % of its wall time (the thread looks for both completions of every
 * round trip); at 0.5 the bucket ran dry in a third of them, each then a wake-up of 20–60 µs:
 * 0.75 took the worker device's round trip to 0.88–0.96 of 0.5's, side by side (docs/PERFORMANCE.md,
 * "The application's look budget").
 */
export const APP_SPIN_SHARE = 0.75;
/** One wait in this many that its average says not to look at looks anyway: the average follows a change. */
const PROBE_EVERY = 128;
/** Weight of the newest wait in a kind's average, and of the newest look in the share of looks that caught their completion. */
const ALPHA = 0.25;
/** Below this share of looks that caught their completion, it looks only to probe (a machine too busy: the look takes the CPU the worker needs). */
const HIT_SHARE_MIN = 0.5;

const FRESH = 0;
const FLOWING = 1;

/** What the spin needs from the application thread's PROGRESS wait (session.ts watchProgress). */
export interface AppSpinSide {
  /** its waitAsync on PROGRESS is outstanding */
  parked(): boolean;
  /** pumps if PROGRESS moved past what it pumped last (the worker did not notify while APP_WAITING was cleared) */
  catchUp(): void;
}

/** Figures of the spin (workerStatsOf). */
export interface AppSpinStats {
  /** looks that saw the completion come, looks that gave up, waits its averages or budget skipped */
  appSpinHits: number;
  appSpinMisses: number;
  appSpinSkips: number;
  /** µs spent looking */
  appSpinUs: number;
}

export class AppSpin {
  readonly stats: AppSpinStats = { appSpinHits: 0, appSpinMisses: 0, appSpinSkips: 0, appSpinUs: 0 };
  /** µs a wait of each kind took lately (optimistic at first: look) */
  private readonly est = [0, 0];
  /** the share of recent looks that caught their completion */
  private hitShare = 1;
  private skipped = 0;
  /** doorbells rung (the proxy's count) when this thread last saw a completion */
  private doorbellsSeen = -1;
  /** when something last happened (a doorbell rung, a completion seen; ms, performance.now) */
  private activeAt = -Infinity;
  private lastDoorbells = 0;
  /** the wait being timed: its kind (-1 none), start (ms), ring and producer index then */
  private waitKind = -1;
  private waitStart = 0;
  private waitRing = 0;
  private waitProd = 0;
  /** called between looks (the socket addon's sched_yield), or undefined: the looks follow each other */
  yieldCpu: (() => void) | undefined;
  /** the share of wall time the looks may take (0 < share <= 1; setWorkerAppSpin) */
  share = APP_SPIN_SHARE;
  /** the look budget (µs) and when it was last topped up (ms) */
  private tokens = 0;
  private tokensAt = 0;

  constructor(
    private readonly ctl: Control,
    private readonly mem: DeviceMemory,
    /** the application's doorbells so far (the core proxy's count) */
    private readonly doorbells: () => number,
    private readonly side: AppSpinSide,
    /** the longest look (µs), 0: never */
    public boundUs: number,
  ) {
    if (!(boundUs >= 0 && boundUs <= MAX_APP_SPIN_US)) throw new RangeError(`application thread spin ${boundUs} µs: 0 .. ${MAX_APP_SPIN_US}`);
    this.tokens = 4 * boundUs;
    this.tokensAt = performance.now();
  }

  /** Where the look stands (a diagnosis: workerDebugOf): its averages (µs, fresh and flowing waits), its share of hits, its budget. */
  state(): { boundUs: number; share: number; estUs: number[]; hitShare: number; tokensUs: number; yields: boolean } {
    return { boundUs: this.boundUs, share: this.share, estUs: [...this.est], hitShare: this.hitShare, tokensUs: this.tokens, yields: this.yieldCpu !== undefined };
  }

  /** CompletionQueue.next() found `cq` empty: looks for up to the bound when worth it; true when a completion came. */
  spin(cq: { readonly ring: number }): boolean {
    const bound = this.boundUs;
    if (bound <= 0) return false;
    const now = performance.now();
    const db = this.doorbells();
    if (db !== this.lastDoorbells) {
      this.lastDoorbells = db;
      // activity again after an idle gap: a new phase, whose looks are judged afresh (from the
      // threshold: its first look decides, one empty look turns them off again)
      if (now - this.activeAt > IDLE_MS) this.hitShare = Math.max(this.hitShare, HIT_SHARE_MIN);
      this.activeAt = now;
    }
    const kind = db !== this.doorbellsSeen ? FRESH : FLOWING;
    const m = this.mem;
    const ring = cq.ring;
    const prod = m.loadIndex(ring + Ring.PROD);
    this.waitKind = kind;
    this.waitStart = now;
    this.waitRing = ring;
    this.waitProd = prod;
    this.tokens = Math.min(4 * bound, this.tokens + (now - this.tokensAt) * 1000 * this.share);
    this.tokensAt = now;
    if (now - this.activeAt > IDLE_MS || this.tokens < bound || ((this.est[kind]! > bound || this.hitShare < HIT_SHARE_MIN) && ++this.skipped % PROBE_EVERY !== 0)) {
      this.stats.appSpinSkips++;
      return false;
    }
    if (prod !== m.loadIndex(ring + Ring.CONS)) return true;
    const i32 = this.ctl.i32;
    // cleared while looking: the worker neither notifies nor wakes this thread for what the look sees
    const cleared = this.side.parked() && Atomics.compareExchange(i32, W.APP_WAITING, 1, 0) === 1;
    const end = now + bound / 1000;
    let t = now;
    let hit = false;
    for (;;) {
      if (m.loadIndex(ring + Ring.PROD) !== prod) {
        hit = true;
        break;
      }
      t = performance.now();
      if (t >= end) break;
      this.yieldCpu?.();
    }
    if (hit) t = performance.now();
    if (cleared) {
      Atomics.compareExchange(i32, W.APP_WAITING, 0, 1);
      // what the worker did meanwhile without a notify (the look's completion among it): pumped now
      this.side.catchUp();
      // a completion written after the look gave up but before the PROGRESS that catchUp took: no
      // notify will come for it (that PROGRESS is pumped) and the pump found no waiter yet, so it
      // counts as caught. One written later moves PROGRESS with APP_WAITING set: the worker notifies.
      if (!hit && m.loadIndex(ring + Ring.PROD) !== prod) {
        hit = true;
        t = performance.now();
      }
    }
    const us = (t - now) * 1000;
    this.tokens -= us;
    this.stats.appSpinUs += us;
    const trace = this.ctl.trace;
    this.hitShare += ALPHA * ((hit ? 1 : 0) - this.hitShare);
    if (hit) {
      this.stats.appSpinHits++;
      this.seen(t);
      if (trace) trace.mark(TraceStage.APP_SPIN_HIT, us);
    } else {
      this.stats.appSpinMisses++;
      if (trace) trace.mark(TraceStage.APP_SPIN_MISS, us);
    }
    return hit;
  }

  /**
   * After a pump: the timed wait's completion came (its ring moved): how long it took the worker to
   * write it (its last run's time, F.PROGRESS_AT, both threads' performance.timeOrigin + now()) goes into its kind's average.
   */
  pumped(): void {
    if (this.waitKind < 0 || this.mem.loadIndex(this.waitRing + Ring.PROD) === this.waitProd) return;
    const now = performance.now();
    const at = this.ctl.f64[F.PROGRESS_AT]! / 1000 - performance.timeOrigin;
    this.seen(now, at > this.waitStart && at < now ? at : now);
  }

  private seen(t: number, came = t): void {
    const k = this.waitKind;
    if (k >= 0) {
      const us = Math.min((came - this.waitStart) * 1000, 4 * MAX_APP_SPIN_US);
      this.est[k] = this.est[k]! + ALPHA * (us - this.est[k]!);
      this.waitKind = -1;
    }
    this.doorbellsSeen = this.doorbells();
    this.activeAt = t;
  }
}
