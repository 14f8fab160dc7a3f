// An optional stage trace of a worker device (off unless the application asks at open: Node's
// env SOFTROCE_WORKER_TRACE): both threads stamp what they do into one SharedArrayBuffer — the
// application's doorbells, its notifies, its wake-ups, the worker's wake-ups, sends, receives,
// runs of the device and notifies — with a clock both threads read the same way. bench/worker.mjs
// (BENCH_VERBOSE=1) lays a round trip's stamps out stage by stage. Off, every site costs one
// field test; on, a stamp is two typed-array stores and an atomic add, nothing allocated.

/** What a stamp records (its `arg` in brackets). */
export const TraceStage = {
  /** the application's marks (bench/worker.mjs): a round trip starts (before its receive is posted), its SEND is posted, it has both completions */
  PING: 1,
  POST: 2,
  RESOLVED: 3,
  /** application: a doorbell queued [queue bits], a notify that woke the sleeping worker */
  APP_DOORBELL: 4,
  APP_NOTIFY: 5,
  /** application: its PROGRESS wait ended (a notify) [PROGRESS]; a pump resolved CQ waiters */
  APP_WOKEN: 6,
  /** application: a spin on the awaited CQ caught its completion [µs spun], or gave up [µs spun] */
  APP_SPIN_HIT: 7,
  APP_SPIN_MISS: 8,
  /** worker: its WAKE wait ended; it rang the queued doorbells [entries] */
  W_WOKEN: 10,
  W_DOORBELLS: 11,
  /** worker: datagrams handed to the link [count]; a receive from the link [count] */
  W_SEND: 12,
  W_RECV: 13,
  /** worker: a run of the device ended (PROGRESS bumped) [the followed ring's producer index]; it notified the application */
  W_PROGRESS: 14,
  W_NOTIFY: 15,
} as const;

/** Stage names, by code (the bench's table). */
export const TRACE_STAGE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(TraceStage).map(([k, v]) => [v, k]));

/** Header Int32 words: stamps taken (free-running, past the capacity they are dropped), capacity, the followed ring. */
const H_COUNT = 0;
const H_CAP = 1;
const H_RING = 2;
const HEADER_BYTES = 16;
/** f64 slots per stamp: time (µs), stage, argument */
const SLOTS = 3;

/** The longest trace (stamps). */
export const TRACE_MAX = 1 << 22;

/** One stamp, as read back. */
export interface TraceStamp {
  t: number;
  stage: number;
  arg: number;
}

/**
 * µs on the clock the trace stamps with. Default: performance.timeOrigin + performance.now(), which
 * every thread of a page or process reads against the same epoch (each thread's origin is taken
 * from the wall clock when it starts: equal to a few µs). Node sets a monotonic one on both threads
 * (host/node/worker: performance.now() corrected to process.hrtime, exact across threads and processes).
 */
let clockOffsetUs = performance.timeOrigin * 1000;

/** Sets what traceNow() adds to performance.now() (µs): a platform's correction to a shared clock. */
export function setTraceClockOffset(us: number): void {
  clockOffsetUs = us;
}

/** The trace's clock (µs). */
export function traceNow(): number {
  return performance.now() * 1000 + clockOffsetUs;
}

export class WorkerTrace {
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  readonly capacity: number;

  constructor(readonly sab: SharedArrayBuffer) {
    if (!(sab instanceof SharedArrayBuffer) || sab.byteLength < HEADER_BYTES) throw new TypeError("worker trace: a SharedArrayBuffer from WorkerTrace.create");
    this.i32 = new Int32Array(sab, 0, HEADER_BYTES >> 2);
    this.f64 = new Float64Array(sab, HEADER_BYTES);
    this.capacity = Math.floor(this.f64.length / SLOTS);
    if (Atomics.load(this.i32, H_CAP) !== this.capacity) throw new TypeError("worker trace: its header does not match its size");
  }

  /** A trace of `stamps` stamps (1 .. TRACE_MAX). */
  static create(stamps: number): WorkerTrace {
    if (!Number.isInteger(stamps) || stamps < 1 || stamps > TRACE_MAX) throw new RangeError(`worker trace of ${stamps} stamps: 1 .. ${TRACE_MAX}`);
    const sab = new SharedArrayBuffer(HEADER_BYTES + stamps * SLOTS * 8);
    Atomics.store(new Int32Array(sab, 0, HEADER_BYTES >> 2), H_CAP, stamps);
    return new WorkerTrace(sab);
  }

  /** Stamps `stage` now (dropped once the trace is full: `taken` keeps counting). */
  mark(stage: number, arg = 0): void {
    const i = Atomics.add(this.i32, H_COUNT, 1);
    if (i >= this.capacity) return;
    const f = this.f64;
    const o = i * SLOTS;
    f[o] = traceNow();
    f[o + 1] = stage;
    f[o + 2] = arg;
  }

  /** Stamps taken since the last reset (those past the capacity were dropped). */
  get taken(): number {
    return Atomics.load(this.i32, H_COUNT);
  }

  /** Forgets the stamps (call while neither thread stamps, e.g. between round trips). */
  reset(): void {
    const n = Math.min(this.taken, this.capacity);
    for (let i = 0; i < n; i++) this.f64[i * SLOTS + 1] = 0;
    Atomics.store(this.i32, H_COUNT, 0);
  }

  /** The ring whose producer index W_PROGRESS records (a CQ's `ring`; 0: none). */
  get followedRing(): number {
    return Atomics.load(this.i32, H_RING) >>> 0;
  }
  set followedRing(ring: number) {
    Atomics.store(this.i32, H_RING, ring | 0);
  }

  /**
   * The stamps so far in time order (threads stamp concurrently, so index order is only nearly
   * time order). A stamp being written as this reads it may show as stage 0: left out.
   */
  stamps(): TraceStamp[] {
    const n = Math.min(this.taken, this.capacity);
    const out: TraceStamp[] = [];
    const f = this.f64;
    for (let i = 0; i < n; i++) {
      const o = i * SLOTS;
      if (f[o + 1]! > 0) out.push({ t: f[o]!, stage: f[o + 1]!, arg: f[o + 2]! });
    }
    return out.sort((a, b) => a.t - b.t);
  }
}
