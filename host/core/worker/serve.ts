// The device worker's side of the control block: it owns the instance and runs it. It waits on
// the WAKE word (Atomics.waitAsync, so its event loop keeps serving the socket and the timers),
// then rings the doorbells the application queued (in order) and answers a waiting call; after
// any work the port drains the TX ring and re-arms the timer, and PROGRESS is bumped so the
// application thread's CQ waiters and event pump look at the shared rings.
import type { CapturedDatagram, PacketPort } from "../link/index.js";
import { backgroundInterval, CALL_DONE, CALL_REQUEST, Control, F, LOST_WAKE_CHECK_MS, RES_BIGINT, RES_ERROR, RES_NUMBER, RES_VOID, W, waits } from "./control.js";
import { DeviceMemory } from "../verbs/memory.js";
import { watchMoved } from "./watch.js";
import { DOORBELL_SQ, Ring } from "../abi/index.js";
import { TraceStage, type WorkerTrace } from "./trace.js";
import { SpinGate } from "./spin-gate.js";

/**
 * One captured datagram as it crosses to the application thread (its payload a copy), with the
 * worker's time of capture: µs since the epoch (performance.timeOrigin + now(), the same origin on
 * every thread), which a PcapRecorder on the application thread records instead of the arrival.
 */
export interface WorkerCaptureRecord {
  dir: "tx" | "rx";
  d: CapturedDatagram & { tsMicros: number };
}

/** µs since the epoch at sub-µs resolution, comparable across threads. */
export function epochMicrosNow(): number {
  return (performance.timeOrigin + performance.now()) * 1000;
}

type Fn = (...args: unknown[]) => unknown;

/** The longest spin a worker may be given (µs): its doorbell spin and its look for an answer. */
export const MAX_SPIN_US = 1000;
/**
 * The look for an answer opens only while the device has at most this many packets in flight (a
 * request and its answer, a few small messages): a stream (a window of WRITEs) needs no look — its
 * ACKs keep the worker busy anyway, and a thread spinning beside it only takes the CPU the peer
 * needs (busy/idle goodput 0.47 with the look against 0.83 without, bench/worker.mjs BENCH_AB=1 at
 * load 10, before this bound).
 */
export const ANSWER_LOOK_MAX_IN_FLIGHT = 8;
/** A worker turn that keeps finding doorbells gives the event loop back after this long (ms). */
const TURN_MAX_MS = 2;
/**
 * Whether the worker wakes a sleeping application thread only for a run that moved a ring it waits on
 * (watch.ts) rather than after every run. Off: on this two-vCPU machine the filter halved the
 * application's wake-ups per 64 B round trip (2.1 -> 1.0) but made the round trip 1.40-1.44x the
 * single-thread device's instead of 1.23-1.25x (bench/worker.mjs, the two settings interleaved in one
 * quiet run): a thread woken once more per round trip is back on its CPU sooner for the answer.
 * Held ACKs (workerAckHold) turn it on: a hold waits for the application's answer, and only a wake-up
 * that brought completions should start one. The application thread publishes its watch list only
 * while the worker uses it (W.WATCH_USED, set by useWatchList()).
 */
const WAKE_ONLY_WATCHED = false;
/** The longest the worker holds a batch's plain ACKs for the application's answer (ms; a timer's). */
export const ACK_HOLD_MAX_MS = 1;

export class DeviceServer {
  /** The link's port, once attached: its service() runs after the device did work. */
  port: PacketPort | undefined;
  /**
   * Receives what the link's socket holds now, without waiting (the native datapath's pollReceive(0)):
   * a spinning worker keeps receiving. Undefined: the spin does not look at the socket.
   */
  pollLink: (() => number) | undefined;
  /**
   * Gives this thread's CPU to another runnable thread (Node: the socket addon's sched_yield), called
   * between the looks of a spin: on a busy machine the thread a look waits for (the application, the
   * peer) may be waiting for this CPU. Undefined: the looks follow each other without yielding.
   */
  yieldCpu: (() => void) | undefined;
  /**
   * After a run that rang a send queue (requests left: their answer is a round trip away), how long
   * the worker looks at its socket (pollLink) and at WAKE for what comes next before it sleeps (µs, 0
   * off; openDevice's workerAnswerSpinUs): a datagram caught runs the device inside the look and the
   * look goes on (its bound counted from the last datagram: the answer's echo after its ACK, the
   * application's next doorbell after the answer); a doorbell ends it (the loop serves it, and when
   * that rang a send queue, looks again). Gated on its hits (answerGate).
   */
  get answerSpinUs(): number {
    return this.answerUs;
  }
  set answerSpinUs(us: number) {
    if (!(Number.isFinite(us) && us >= 0 && us <= MAX_SPIN_US)) throw new RangeError(`device worker answer spin ${us} µs: 0 .. ${MAX_SPIN_US}`);
    this.answerUs = us;
  }
  private answerUs = 0;
  /** The device's packets in flight (the core's tx_budget_stat "inflightPackets"); undefined: not known, the look always may open. */
  inFlightPackets: (() => number) | undefined;
  private readonly fns: (Fn | undefined)[];
  private readonly doorbell: Fn;
  /** the instance's memory (the application's watched rings are read in it) */
  private readonly mem: DeviceMemory | undefined;
  private stopped = false;
  private seen = 0;
  /** Where captured datagrams go (the runner posts them to the application thread as a "capture" report). */
  onCapture: ((records: WorkerCaptureRecord[]) => void) | undefined;
  private capturing = false;
  private captured: WorkerCaptureRecord[] = [];
  private captureQueued = false;
  /** the stage trace (trace.ts), when the application asked for one */
  readonly trace: WorkerTrace | undefined;

  constructor(
    private readonly ctl: Control,
    exports: WebAssembly.Exports,
    /** the export names, in the order the application's proxy indexes them */
    readonly names: string[],
    /** the device's time in µs (doorbells are stamped with it) */
    private readonly now: () => number,
    /** how long the worker keeps looking for the application's next doorbell before it sleeps (µs) */
    readonly spinUs = 0,
    /** runs `fn` once the current turn is over (its deferred flushes done): Node's setImmediate */
    private readonly endOfTurn: (fn: () => void) => void = queueMicrotask,
    /** runs `fn` after the event loop served its other sources (Node: setImmediate; default setTimeout 0) */
    private readonly yieldTurn: (fn: () => void) => void = (fn) => void setTimeout(fn, 0),
  ) {
    if (!(spinUs >= 0 && spinUs <= MAX_SPIN_US)) throw new RangeError(`device worker spin ${spinUs} µs: 0 .. ${MAX_SPIN_US}`);
    this.fns = names.map((n) => (typeof exports[n] === "function" ? (exports[n] as Fn) : undefined));
    this.mem = exports["memory"] instanceof WebAssembly.Memory ? new DeviceMemory(exports["memory"]) : undefined;
    this.doorbell = exports["doorbell"] as Fn;
    this.trace = ctl.trace;
    this.spinGate = new SpinGate(ctl.i32, { hits: W.SPIN_HITS, misses: W.SPIN_MISSES, gated: W.SPIN_GATED });
    this.answerGate = new SpinGate(ctl.i32, { hits: W.ANSWER_HITS, misses: W.ANSWER_MISSES, gated: W.ANSWER_GATED });
    if (WAKE_ONLY_WATCHED) this.useWatchList();
  }

  /** Function export names of an instance (what the proxy is built from). */
  static functionNames(exports: WebAssembly.Exports): string[] {
    return Object.keys(exports).filter((n) => typeof exports[n] === "function");
  }

  /** Starts serving; returns at once (the loop runs on Atomics.waitAsync). */
  start(): void {
    this.lostCheck ??= backgroundInterval(this.checkLost, LOST_WAKE_CHECK_MS);
    this.run(false);
  }

  private lostCheck: ReturnType<typeof setInterval> | undefined;
  /** the WAKE value this loop had served when the last look found its pending wait late (-1: none) */
  private lateAt = -1;
  /** bumped per wait: a wait given up on (checkLost) is ignored if it settles after all */
  private waitGen = 0;
  /** the wait checkLost gave up on last, and WAKE then */
  private givenUp = -1;
  private wakeAtGiveUp = 0;

  /**
   * A wait whose wake-up never came (control.ts, LOST_WAKE_CHECK_MS): WAKE moved past the value the
   * pending wait started on, at two looks in a row, and nothing else is running this loop. The
   * application rang after this thread published WORKER_WAITING (its notify went out, or this thread
   * re-checked WAKE after publishing): the settlement was lost. Counted, and the loop runs now.
   */
  private readonly checkLost = (): void => {
    // WAKE moves with a notify whenever this loop is neither running nor about to (a doorbell that
    // finds WORKER_WAITING 1 notifies; a call or the capture switch always does)
    if (this.stopped || !this.waitPending || this.running || this.spinQueued || this.resumeQueued || Atomics.load(this.ctl.i32, W.WAKE) === this.seen) {
      this.lateAt = -1;
      return;
    }
    // late at two looks with nothing served in between (`seen` moves only when the loop runs)
    if (this.lateAt !== this.seen) {
      this.lateAt = this.seen;
      return;
    }
    this.lateAt = -1;
    Atomics.add(this.ctl.i32, W.WORKER_LOST_WAKEUPS, 1);
    this.givenUp = this.waitGen;
    this.wakeAtGiveUp = Atomics.load(this.ctl.i32, W.WAKE);
    this.waitGen++;
    this.waitPending = false;
    this.run(false);
  };

  /**
   * Held ACKs across the threads. The link's deferred flush (Link.deferFlush, "defer") hands the
   * end of a receive turn here (`fn` releases the device's held plain ACKs and drains the TX ring):
   * when that turn woke the application (a completion it waited for) and the device holds plain
   * ACKs, they wait for the application's answer — the doorbell it rings next, whose requests then
   * leave first with the ACKs behind them in one batched send (one wake-up at the peer, not two) —
   * or, when it answers nothing, for the end of its turn (it bumps WAKE while ACK_HOLD is 1), at
   * most ACK_HOLD_MAX_MS. progress() set ACK_HOLD when it woke the application with ACKs held.
   */
  flushAfterTurn(fn: () => void): void {
    const i32 = this.ctl.i32;
    if (this.stopped || this.heldFlush || Atomics.load(i32, W.ACK_HOLD) !== 1 || !(this.acksHeld?.() ?? 0)) {
      if (!this.heldFlush) Atomics.store(i32, W.ACK_HOLD, 0);
      fn();
      return;
    }
    this.heldFlush = fn;
    Atomics.add(i32, W.HOLDS, 1);
    this.holdTimer = setTimeout(this.releaseFlush, ACK_HOLD_MAX_MS);
  }

  /** Ends a hold (flushAfterTurn): the ACKs leave now. */
  readonly releaseFlush = (): void => {
    const fn = this.heldFlush;
    if (!fn) return;
    this.heldFlush = undefined;
    Atomics.store(this.ctl.i32, W.ACK_HOLD, 0);
    clearTimeout(this.holdTimer);
    fn();
  };

  private heldFlush: (() => void) | undefined;
  private holdTimer: ReturnType<typeof setTimeout> | undefined;
  private ackHeldFn: (() => number) | undefined;
  /** plain ACKs the device holds now (TransportCore.tx_ack_held), once a link that holds them is attached */
  get acksHeld(): (() => number) | undefined {
    return this.ackHeldFn;
  }
  /** Held ACKs on (workerAckHold): the worker's notifies go by the application's watch list from now on. */
  set acksHeld(fn: (() => number) | undefined) {
    this.ackHeldFn = fn;
    if (fn) this.useWatchList();
  }

  /** whether progress() notifies by the application's watch list (watch.ts) rather than after every run */
  private watching = false;

  /**
   * Filters this worker's notifies by the application's watch list from now on. The list starts as
   * "every run" (count -1) until the application, seeing WATCH_USED, publishes its own: a list it
   * never wrote is not read as "nothing watched".
   */
  useWatchList(): void {
    if (this.watching) return;
    const i32 = this.ctl.i32;
    const b = this.ctl.watchBase;
    Atomics.add(i32, b, 2); // a completed rewrite (even), so that watchMoved reads the count
    Atomics.store(i32, b + 1, -1);
    Atomics.store(i32, W.WATCH_USED, 1);
    this.watching = true;
  }

  /** Stops serving: later calls are refused on the application side (CLOSED). */
  stop(): void {
    this.releaseFlush();
    this.stopped = true;
    clearInterval(this.lostCheck);
    this.ctl.store(W.CLOSED, 1);
    this.ctl.bump(W.WAKE);
  }

  /** Called after the port ran the device: tells the application thread to look. */
  readonly progress = (): void => {
    const c = this.ctl;
    const p = this.port;
    if (p) {
      const f = c.f64;
      f[F.TX_DATAGRAMS] = p.stats.txDatagrams;
      f[F.RX_DATAGRAMS] = p.stats.rxDatagrams;
      f[F.RX_DROPPED] = p.stats.rxDropped;
      f[F.SPORT_FALLBACKS] = p.stats.sportFallbacks;
    }
    c.f64[F.PROGRESS_AT] = epochMicrosNow();
    Atomics.add(c.i32, W.PROGRESS, 1);
    const trace = this.trace;
    if (trace) {
      const ring = trace.followedRing;
      trace.mark(TraceStage.W_PROGRESS, ring && this.mem ? this.mem.loadIndex(ring + Ring.PROD) : 0);
    }
    // one notify per sleep of the application thread (it sets APP_WAITING, then waits on PROGRESS's
    // old value), with WAKE_ONLY_WATCHED only for a run that moved a ring it waits on (watch.ts)
    let notified = false;
    if (Atomics.load(c.i32, W.APP_WAITING) === 1 && (!this.watching || !this.mem || watchMoved(c, this.mem)) && Atomics.compareExchange(c.i32, W.APP_WAITING, 1, 0) === 1) {
      // a receive's completions wake it while the device holds their ACKs: they wait for its answer (flushAfterTurn)
      if (!this.heldFlush && this.acksHeld?.()) Atomics.store(c.i32, W.ACK_HOLD, 1);
      // counted before it is sent: a wait the application gave up on that settles with the count
      // unchanged was settled by an earlier notify (session.ts, APP_LATE_WAKEUPS)
      Atomics.add(c.i32, W.WORKER_NOTIFIES, 1);
      const woke = Atomics.notify(c.i32, W.PROGRESS);
      notified = true;
      if (trace) trace.mark(TraceStage.W_NOTIFY, woke);
      Atomics.store(c.i32, W.WORKER_LAST_NOTIFY, woke);
      if (woke === 0) Atomics.add(c.i32, W.WORKER_NOTIFY_MISSES, 1);
    }
    // a receive ran the device (not this loop) and woke the application: spin for its answer once the turn is over
    if (notified && !this.running && this.spinUs > 0 && !this.spinQueued && this.spinGate.open()) {
      this.spinQueued = true;
      this.endOfTurn(this.runQueued);
    }
  };

  /** the doorbell spin's gate (hits: a doorbell came while it looked) and the answer look's (a datagram came) */
  private readonly spinGate: SpinGate;
  private readonly answerGate: SpinGate;
  /** set by work() when it rang a send queue (requests left: an answer is coming) */
  private sqRung = false;
  private running = false;
  private waitPending = false;
  private spinQueued = false;
  private readonly runQueued = (): void => {
    this.spinQueued = false;
    if (!this.running) this.run(true);
  };
  /** a turn cut at TURN_MAX_MS goes on (WORKER_WAITING is 0 meanwhile: no notify is needed) */
  private readonly resumeTurn = (): void => {
    this.resumeQueued = false;
    if (!this.running) this.run(false);
  };
  private resumeQueued = false;
  private woken(gen: number): void {
    if (gen !== this.waitGen) {
      // given up on (checkLost): the loop went on without it. Settled with WAKE where it was then (every
      // notify of WAKE follows a bump of it), it was the late one's settlement: late, not lost
      if (gen === this.givenUp && Atomics.load(this.ctl.i32, W.WAKE) === this.wakeAtGiveUp) Atomics.add(this.ctl.i32, W.WORKER_LATE_WAKEUPS, 1);
      return;
    }
    this.waitPending = false;
    Atomics.add(this.ctl.i32, W.WORKER_WAKEUPS, 1);
    if (this.trace) this.trace.mark(TraceStage.W_WOKEN);
    if (!this.running) this.run(false);
  }

  /**
   * One worker turn: rings what the application queued and answers its call, over and over while
   * WAKE moves; with `spin` (after a receive ran the device: the application is likely to answer
   * the completions it got) first looks for the next doorbell for up to `spinUs` (a doorbell caught
   * spinning costs no wake-up on either side); then sleeps in Atomics.waitAsync (one wait
   * outstanding at a time) with WORKER_WAITING set. No spin after a doorbell: what comes next is a
   * datagram: with answerSpinUs the loop looks at the socket and for doorbells (lookForAnswer), so
   * that through a ping-pong neither the answer nor the application's next doorbell wakes it. Every
   * look yields the CPU (yieldCpu) before the next. A turn gives the event loop back after TURN_MAX_MS.
   */
  private run(spin: boolean): void {
    const i32 = this.ctl.i32;
    this.running = true;
    Atomics.store(i32, W.WORKER_WAITING, 0);
    const start = performance.now();
    let until = spin && this.spinUs > 0 ? start + this.spinUs / 1000 : 0;
    let spun = false;
    try {
      while (!this.stopped) {
        const v = Atomics.load(i32, W.WAKE);
        if (v !== this.seen) {
          this.seen = v;
          if (spun) this.spinGate.note(true);
          this.sqRung = false;
          if (this.work()) {
            if (this.port) this.port.service();
            else this.progress();
          }
          // requests left: look at the socket for their answer, and for the doorbell that follows it
          if (this.sqRung && this.answerUs > 0 && this.pollLink) this.lookForAnswer(this.pollLink, start);
          if (performance.now() - start > TURN_MAX_MS) {
            this.resumeQueued = true;
            this.yieldTurn(this.resumeTurn);
            return;
          }
          until = 0;
          spun = false;
          continue;
        }
        if (until) {
          if (performance.now() < until) {
            spun = true;
            // the socket too (the event loop does not run while this spins): a datagram runs the device here
            if (this.pollLink) this.pollLink();
            this.yieldCpu?.();
            continue;
          }
          // no doorbell came: a miss
          this.spinGate.note(false);
          until = 0;
        }
        Atomics.store(i32, W.WORKER_WAITING, 1);
        if (Atomics.load(i32, W.WAKE) !== this.seen) {
          Atomics.store(i32, W.WORKER_WAITING, 0);
          continue;
        }
        if (this.waitPending) return;
        const w = waits.change(i32, W.WAKE, this.seen);
        if (w) {
          this.waitPending = true;
          const gen = ++this.waitGen;
          void w.then(() => this.woken(gen));
          return;
        }
        Atomics.store(i32, W.WORKER_WAITING, 0);
      }
    } finally {
      this.running = false;
    }
  }

  /**
   * After a run that rang a send queue, if its gate is open: looks at the socket (`poll` runs the
   * device on what came) and at WAKE, yielding the CPU between looks, until a doorbell comes (the loop
   * serves it), nothing came for answerSpinUs since the look began or its last datagram, or the turn
   * is TURN_MAX_MS old (`start`), or a datagram it caught left the port a deferred flush (held
   * ACKs, Link.deferFlush: they leave once this turn is over, so the look must not hold the turn).
   * A hit for the gate when a datagram or a doorbell came. Not at all (no chance counted) while more
   * than ANSWER_LOOK_MAX_IN_FLIGHT packets are in flight.
   */
  private lookForAnswer(poll: () => number, start: number): void {
    if (this.inFlightPackets && this.inFlightPackets() > ANSWER_LOOK_MAX_IN_FLIGHT) return;
    if (!this.answerGate.open()) return;
    const i32 = this.ctl.i32;
    const bound = this.answerUs / 1000;
    let t = performance.now();
    let end = t + bound;
    let caught = false;
    for (;;) {
      if (poll() > 0) {
        caught = true;
        if (this.port?.flushDue) break;
        t = performance.now();
        end = t + bound;
      }
      if (Atomics.load(i32, W.WAKE) !== this.seen) {
        caught = true;
        break;
      }
      if (t >= end || t - start > TURN_MAX_MS) break;
      this.yieldCpu?.();
      t = performance.now();
    }
    this.answerGate.note(caught);
  }

  /**
   * Where this side stands (a stall's diagnosis: bench/worker.mjs's watchdog): the loop's flags and
   * the control block's words, read without touching them.
   */
  debugState(): Record<string, unknown> {
    const i32 = this.ctl.i32;
    const words: Record<string, number> = {};
    for (const [k, w] of Object.entries(W)) words[k] = Atomics.load(i32, w);
    return {
      running: this.running, waitPending: this.waitPending, seen: this.seen, spinUs: this.spinUs, spinQueued: this.spinQueued, stopped: this.stopped,
      answerSpinUs: this.answerUs, spinScore: this.spinGate.score, answerScore: this.answerGate.score, yields: this.yieldCpu !== undefined,
      heldFlush: this.heldFlush !== undefined, acksHeld: this.acksHeld?.(), control: words,
    };
  }

  /** Rings queued doorbells, answers a waiting call; true when it did anything. */
  work(): boolean {
    const c = this.ctl;
    let did = false;
    // the tap first: the datagrams of doorbells rung after the application attached a recorder are in it
    if ((c.load(W.CAPTURE) === 1) !== this.capturing) this.setCapture(!this.capturing);
    let tail = c.load(W.DB_TAIL);
    const head = c.load(W.DB_HEAD);
    if (tail !== head) {
      const now = this.now();
      let sq = 0;
      for (; tail !== head; tail = (tail + 1) | 0) {
        const e = c.i32[c.dbEntry(tail)]!;
        sq |= e & DOORBELL_SQ;
        this.doorbell(e >>> 2, e & 3, now);
      }
      if (this.trace) this.trace.mark(TraceStage.W_DOORBELLS, (head - c.load(W.DB_TAIL)) | 0);
      c.store(W.DB_TAIL, tail);
      Atomics.add(c.i32, W.DOORBELLS, 1);
      did = true;
      if (sq) this.sqRung = true;
      // the application's answer (a send queue's doorbell; receives re-posted alone are not one):
      // the held ACKs leave behind its requests
      if (this.heldFlush && sq) {
        Atomics.add(c.i32, W.HOLDS_JOINED, 1);
        this.releaseFlush();
      }
    } else if (this.heldFlush && c.load(W.APP_WAITING) === 1) {
      // it went back to sleep without answering
      this.releaseFlush();
      did = true;
    }
    if (c.load(W.CALL) === CALL_REQUEST) {
      this.answer();
      did = true;
    }
    return did;
  }

  /** Taps the port (or stops): each datagram copied, the turn's records posted once, in order. */
  private setCapture(on: boolean): void {
    this.capturing = on;
    const port = this.port;
    if (!port) return;
    port.capture = on
      ? (dir, d) => {
          this.captured.push({ dir, d: { ...d, payload: d.payload.slice(), tsMicros: epochMicrosNow() } });
          if (!this.captureQueued) {
            this.captureQueued = true;
            queueMicrotask(this.flushCapture);
          }
        }
      : undefined;
  }

  /** Posts the records captured so far (also before answering a request that asks for them). */
  readonly flushCapture = (): void => {
    this.captureQueued = false;
    if (!this.captured.length) return;
    const out = this.captured;
    this.captured = [];
    this.onCapture?.(out);
  };

  private answer(): void {
    const c = this.ctl;
    const index = c.load(W.FN);
    const fn = this.fns[index];
    const argc = c.load(W.ARGC);
    const big = c.load(W.ARG_BIGINT);
    const args: unknown[] = [];
    for (let i = 0; i < argc; i++) args.push(big & (1 << i) ? c.i64[c.argSlot(i)] : c.f64[c.argSlot(i)]);
    try {
      if (!fn) throw new Error(`no export #${index}`);
      const v = fn(...args);
      if (typeof v === "bigint") {
        c.i64[c.resultSlot] = v;
        c.store(W.RESULT_KIND, RES_BIGINT);
      } else if (typeof v === "number") {
        c.f64[c.resultSlot] = v;
        c.store(W.RESULT_KIND, RES_NUMBER);
      } else c.store(W.RESULT_KIND, RES_VOID);
    } catch (e) {
      c.writeError(e instanceof Error ? e.message : String(e));
      c.store(W.RESULT_KIND, RES_ERROR);
    }
    Atomics.add(c.i32, W.CALLS, 1);
    c.store(W.CALL, CALL_DONE);
    Atomics.notify(c.i32, W.CALL);
  }
}
