// The control block a device worker and its application thread share (a SharedArrayBuffer beside
// the device's shared linear memory): one home for its layout. Words the threads wait on and
// wake each other with, one synchronous call slot (the control verbs: the application thread
// waits for the worker's answer), and the doorbell queue (the application thread is its only
// producer, the worker its only consumer): posting a WR costs a ring write, one queue entry and a
// notify, never a message.

import type { WorkerTrace } from "./trace.js";

export const MAX_ARGS = 8;
/** byte offsets (words 14..15 sit before ARGS; words 34..39, 40..47, 56, 57, 60..63 and the F slots at bytes 192..223 and 232..239 between RESULT and DB: the block is full there) */
const ARGS = 64;
const RESULT = ARGS + 8 * MAX_ARGS;
const DB = 256;
/** doorbell queue entries (a power of two); each is (handle << 2) | queues */
export const DB_CAP = 1024;
const ERROR_TEXT = DB + 4 * DB_CAP;
export const ERROR_MAX = 1024;
/**
 * The application thread's watch list: the rings its event pump would act on (the async event
 * ring, the CQs with a pending next() or an armed notification), each with the index it last saw
 * (the CQ's consumer index, the event ring's). The worker notifies a waiting application only when
 * one of them moved past it; a list longer than WATCH_MAX means "notify after every run". Words:
 * a sequence (odd while the application rewrites the list), the count (-1: every run), then
 * (ring, index) pairs.
 */
export const WATCH_MAX = 8;
const WATCH = ERROR_TEXT + 2 * ERROR_MAX;
/** words past the watch list (the block before DB is full) */
const TAIL = WATCH + 4 * (2 + 2 * WATCH_MAX);
export const CONTROL_BYTES = TAIL + 8;

/** Int32 word indices. */
export const W = {
  /** bumped by the application thread (doorbell entries or a call waiting); the worker waits here */
  WAKE: 0,
  /** the call slot: CALL_IDLE, CALL_REQUEST (application wrote it), CALL_DONE (worker answered) */
  CALL: 1,
  /** export index of the call (into the export names the worker sent at start) */
  FN: 2,
  ARGC: 3,
  /** what the answer is: RES_VOID, RES_NUMBER, RES_BIGINT, RES_ERROR */
  RESULT_KIND: 4,
  /** bumped by the worker after it ran the device (completions, events may be new); the application waits here */
  PROGRESS: 5,
  /** doorbell queue: next entry the application writes (free-running) */
  DB_HEAD: 6,
  /** doorbell queue: next entry the worker reads (free-running) */
  DB_TAIL: 7,
  /** bit i: argument i is a bigint */
  ARG_BIGINT: 8,
  /** set once the device is closed: no more calls */
  CLOSED: 9,
  /** length in UTF-16 units of the error text of a RES_ERROR answer */
  ERROR_LEN: 10,
  /** doorbells the worker rang, calls it answered (statistics) */
  DOORBELLS: 11,
  CALLS: 12,
  /** application thread waiting on PROGRESS: the worker notifies only then */
  APP_WAITING: 13,
  /**
   * 1 once the worker filters its notifies by the application's watch list (watch.ts): only then
   * does the application publish it (the worker sets it with the list at "every run" first)
   */
  WATCH_USED: 14,
  /** 1 while the application thread's port has a capture hook: the worker taps its port and streams records back */
  CAPTURE: 40,
  /** 1 while the worker sleeps (waitAsync on WAKE): a doorbell notifies only then (spinning, it looks itself) */
  WORKER_WAITING: 41,
  /** statistics: the worker's waits that ended in a wake-up; the turns its spin caught without one */
  WORKER_WAKEUPS: 42,
  SPIN_HITS: 43,
  /** statistics: notifies the application sent that woke the worker; the application's waits that ended in a wake-up */
  APP_NOTIFIES: 44,
  APP_WAKEUPS: 45,
  /** statistics: notifies the worker sent the application */
  WORKER_NOTIFIES: 46,
  /**
   * 1 while the worker holds a received batch's plain ACKs for the application's answer (the
   * application, once its turn after a wake-up is over, bumps WAKE if it is still 1: serve.ts)
   */
  ACK_HOLD: 47,
  /** statistics: holds that ended with a doorbell (the answer joined the ACKs), and all holds */
  HOLDS_JOINED: 34,
  HOLDS: 35,
  /**
   * statistics: waits whose wake-up never came although their word moved (a notify sent, the waiter's
   * promise never settled), ended by the other check (LOST_WAKE_CHECK_MS): the application's, the worker's
   */
  APP_LOST_WAKEUPS: 15,
  WORKER_LOST_WAKEUPS: 56,
  /**
   * diagnostics: of the lost wake-ups, those whose promise settled after all before the other side
   * could have notified again (late, not lost: the engine delivered that settlement 100+ ms after the
   * notify): the application's, the worker's
   */
  APP_LATE_WAKEUPS: TAIL >> 2,
  WORKER_LATE_WAKEUPS: (TAIL >> 2) + 1,
  /** diagnostics: the worker's notifies of a waiting application that woke no waiter; what its last notify woke */
  WORKER_NOTIFY_MISSES: 36,
  WORKER_LAST_NOTIFY: 37,
  /** diagnostics: the application's waits on PROGRESS that parked, and the PROGRESS value the last one waited on */
  APP_WAITS: 38,
  APP_WAIT_VALUE: 39,
  /** statistics: the worker's doorbell spins that gave up, and the chances its gate held back (spin-gate.ts; the hits: SPIN_HITS) */
  SPIN_MISSES: 57,
  SPIN_GATED: 60,
  /**
   * statistics: the worker's looks at its socket for the answer to requests it sent (workerAnswerSpinUs):
   * those that caught a datagram, those that gave up, the chances their gate held back
   */
  ANSWER_HITS: 61,
  ANSWER_MISSES: 62,
  ANSWER_GATED: 63,
} as const;

/** Float64 indices: the worker's port counters, copied after every turn that ran the device. */
export const F = {
  TX_DATAGRAMS: 24,
  RX_DATAGRAMS: 25,
  RX_DROPPED: 26,
  SPORT_FALLBACKS: 27,
  /** when the worker last bumped PROGRESS: µs on performance.timeOrigin + now() (the application's look times its waits by it) */
  PROGRESS_AT: 29,
} as const;

export const CALL_IDLE = 0;
export const CALL_REQUEST = 1;
export const CALL_DONE = 2;

export const RES_VOID = 0;
export const RES_NUMBER = 1;
export const RES_BIGINT = 2;
export const RES_ERROR = 3;

/** Typed views over one control block. */
export class Control {
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  readonly i64: BigInt64Array;
  readonly u16: Uint16Array;

  /** the stage trace both threads stamp into (trace.ts), when the application asked for one at open */
  trace: WorkerTrace | undefined;

  constructor(readonly sab: SharedArrayBuffer) {
    if (!(sab instanceof SharedArrayBuffer) || sab.byteLength < CONTROL_BYTES) throw new TypeError("device worker control block: a SharedArrayBuffer of CONTROL_BYTES");
    this.i32 = new Int32Array(sab);
    this.f64 = new Float64Array(sab);
    this.i64 = new BigInt64Array(sab);
    this.u16 = new Uint16Array(sab);
  }

  static create(): Control {
    return new Control(new SharedArrayBuffer(CONTROL_BYTES));
  }

  load(w: number): number {
    return Atomics.load(this.i32, w);
  }
  store(w: number, v: number): void {
    Atomics.store(this.i32, w, v);
  }
  /** Bumps a sequence word and wakes whoever waits on it. */
  bump(w: number): void {
    Atomics.add(this.i32, w, 1);
    Atomics.notify(this.i32, w);
  }

  argSlot(i: number): number {
    return (ARGS >> 3) + i;
  }
  get resultSlot(): number {
    return RESULT >> 3;
  }
  dbEntry(i: number): number {
    return (DB >> 2) + (i & (DB_CAP - 1));
  }
  /** Int32 index of the watch list's sequence word; the count follows, then the (ring, index) pairs. */
  get watchBase(): number {
    return WATCH >> 2;
  }

  writeError(text: string): void {
    const n = Math.min(text.length, ERROR_MAX);
    for (let i = 0; i < n; i++) this.u16[(ERROR_TEXT >> 1) + i] = text.charCodeAt(i);
    this.store(W.ERROR_LEN, n);
  }
  readError(): string {
    const n = this.load(W.ERROR_LEN);
    return String.fromCharCode(...this.u16.subarray(ERROR_TEXT >> 1, (ERROR_TEXT >> 1) + n));
  }
}

type WaitAsyncResult = { async: false; value: "not-equal" | "timed-out" } | { async: true; value: Promise<"ok" | "timed-out"> };
const nativeWaitAsync = (Atomics as unknown as { waitAsync?: (a: Int32Array, i: number, v: number, t?: number) => WaitAsyncResult }).waitAsync;

/**
 * How often each side of a device worker looks for a wait of its own that should have ended (ms):
 * the other side notified it, yet the waitAsync promise has not settled at two looks in a row with
 * nothing served in between (so between one and two periods late). It then stops counting on that promise,
 * counts a lost wake-up (W.APP_LOST_WAKEUPS, W.WORKER_LOST_WAKEUPS) and runs as if woken. The
 * handshake itself cannot lose one (each side publishes its waiting flag, then re-checks the word
 * inside waitAsync, which compares and enqueues atomically; the other side moves the word, then
 * reads the flag: seq-cst, so one of the two sees the other); what this covers is a settlement the
 * engine never delivers, seen once in ~50 bench runs on a loaded machine (docs/PERFORMANCE.md).
 */
export const LOST_WAKE_CHECK_MS = 100;

/**
 * The wait both sides use; tests replace `change` to lose a wake-up on purpose (a promise that
 * never settles) and check that LOST_WAKE_CHECK_MS recovers it.
 */
export const waits = {
  change: (i32: Int32Array, index: number, value: number): Promise<unknown> | undefined => waitChange(i32, index, value),
};

/** setInterval that does not keep the thread alive (Node's unref; browsers have none to call). */
export function backgroundInterval(fn: () => void, ms: number): ReturnType<typeof setInterval> {
  const t = setInterval(fn, ms);
  (t as { unref?: () => void }).unref?.();
  return t;
}

/**
 * Atomics.waitAsync(i32, index, value): a promise when `i32[index]` still holds `value`, else
 * undefined (it changed already). Where the engine has no waitAsync, a 1 ms poll stands in.
 */
export function waitChange(i32: Int32Array, index: number, value: number): Promise<unknown> | undefined {
  if (nativeWaitAsync) {
    const w = nativeWaitAsync(i32, index, value);
    return w.async ? w.value : undefined;
  }
  if (Atomics.load(i32, index) !== value) return undefined;
  return new Promise<void>((resolve) => {
    const poll = (): void => {
      if (Atomics.load(i32, index) !== value) resolve();
      else setTimeout(poll, 1);
    };
    setTimeout(poll, 1);
  });
}
