// The application thread's side of a device worker: requests by message (start-up, link,
// multicast, close) with their answers as promises, the worker's reports, and the device itself —
// a Device over the core proxy, whose CQ waiters and async events are served by waiting on the
// PROGRESS word (Atomics.waitAsync) rather than by a message per completion.
import { AsyncEvent, Device, EventType, type OpenDeviceOptions } from "../verbs/index.js";
import type { VerbsCore } from "../verbs/abi.js";
import { backgroundInterval, Control, LOST_WAKE_CHECK_MS, W, waits } from "./control.js";
import type { WorkerEndpoint } from "./endpoint.js";
import { reviveError, type SerializedError, type WorkerReply, type WorkerReport } from "./messages.js";
import { coreProxy, DeviceWorkerError, type CoreProxyStats } from "./proxy.js";
import { MAX_SPIN_US } from "./serve.js";
import { WorkerPort } from "./port.js";
import { WatchList } from "./watch.js";
import { TraceStage, WorkerTrace } from "./trace.js";
import { AppSpin, MAX_APP_SPIN_US, type AppSpinStats } from "./app-spin.js";
import type { TransportCore } from "../link/index.js";

/** How long close() waits for the worker to close its link before it terminates it (ms). */
const CLOSE_TIMEOUT_MS = 2000;

export class WorkerSession {
  readonly control = Control.create();
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; op: string }>();
  private readonly reportFns = new Set<(r: WorkerReport) => void>();
  private readonly failureFns = new Set<(e: Error) => void>();
  /** why the worker is gone, once it is */
  failure: Error | undefined;
  private closing: Promise<void> | undefined;

  constructor(
    readonly endpoint: WorkerEndpoint,
    /** platform error classes (e.g. UdpBindError) */
    private readonly revive?: (s: SerializedError) => Error | undefined,
  ) {
    endpoint.onMessage((m) => this.onMessage(m as WorkerReply | WorkerReport));
    endpoint.onFailure((e) => this.fail(e));
  }

  request<T>(op: string, payload: Record<string, unknown> = {}): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, op });
      this.endpoint.postMessage({ ...payload, id, op });
    });
  }

  onReport(fn: (r: WorkerReport) => void): void {
    this.reportFns.add(fn);
  }

  /** `fn(e)` once if the worker fails or exits without being asked to (not after close()). */
  onFailure(fn: (e: Error) => void): void {
    this.failureFns.add(fn);
  }

  private onMessage(m: WorkerReply | WorkerReport): void {
    if ("report" in m) {
      for (const fn of this.reportFns) fn(m);
      return;
    }
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    if (m.ok) p.resolve(m.value);
    else p.reject(reviveError(m.error, this.revive));
  }

  private fail(e: Error): void {
    if (this.failure) return;
    this.failure = e instanceof DeviceWorkerError ? e : new DeviceWorkerError(`softroce device worker: ${e.message}`);
    this.control.store(W.CLOSED, 1);
    for (const p of this.pending.values()) p.reject(this.failure);
    this.pending.clear();
    if (!this.closing) for (const fn of this.failureFns) fn(this.failure);
  }

  /** Asks the worker to close its link and stop, then ends it (also when it does not answer). */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (!this.failure) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([
          this.request("close").catch(() => undefined),
          new Promise((r) => (timer = setTimeout(r, CLOSE_TIMEOUT_MS))),
        ]);
        clearTimeout(timer);
      }
      this.control.store(W.CLOSED, 1);
      this.fail(new DeviceWorkerError("softroce device worker: closed"));
      this.endpoint.terminate();
    })();
    return this.closing;
  }
}

/**
 * How long a device worker keeps looking for the application's next doorbell after it ran the
 * device, before it sleeps (µs; openDevice's `workerSpinUs`): a doorbell caught spinning costs no
 * thread wake-up. Measured in bench/worker.mjs (docs/PERFORMANCE.md).
 */
export const DEFAULT_SPIN_US = 0;

/** What the worker answers to "init". */
export interface WorkerReady {
  memory: WebAssembly.Memory;
  names: string[];
}

/**
 * Instantiates the threads build of the core in the worker; resolves once it serves the control
 * block. `traceStamps` > 0: both threads stamp the stages of their work into a trace of that many
 * stamps (trace.ts; workerTraceOf).
 */
export function startWorkerCore(session: WorkerSession, module: WebAssembly.Module, spinUs = DEFAULT_SPIN_US, traceStamps = 0): Promise<WorkerReady> {
  if (!(spinUs >= 0 && spinUs <= MAX_SPIN_US)) return Promise.reject(new RangeError(`workerSpinUs ${spinUs}: 0 .. ${MAX_SPIN_US} µs`));
  try {
    if (traceStamps) session.control.trace = WorkerTrace.create(traceStamps);
  } catch (e) {
    return Promise.reject(e);
  }
  return session.request<WorkerReady>("init", { module, control: session.control.sab, spinUs, trace: session.control.trace?.sab });
}

/** The stage trace of a worker device opened with one (Node: env SOFTROCE_WORKER_TRACE), else undefined. */
export function workerTraceOf(device: Device): WorkerTrace | undefined {
  return sessions.get(device)?.session.control.trace;
}

/** The application thread's side of the PROGRESS wait (watchProgress), for a stall's diagnosis. */
interface AppWaitState {
  /** a waitAsync on PROGRESS is outstanding */
  parked: boolean;
  /** the PROGRESS value the last pump answered */
  last: number;
  /** a turnOver (held ACKs) is queued */
  turnQueued: boolean;
}

interface SessionEntry {
  session: WorkerSession;
  stats: CoreProxyStats;
  wait?: AppWaitState;
  spin?: AppSpin;
}

const sessions = new WeakMap<Device, SessionEntry>();

/** Figures of a worker device (counters since it opened). */
export interface WorkerStats extends CoreProxyStats, AppSpinStats {
  /** control calls and doorbell rounds the worker served; times it ran the device (PROGRESS) */
  workerCalls: number;
  workerDoorbellRounds: number;
  progress: number;
  /** this thread's notifies to a sleeping worker, and the worker's waits a notify ended */
  appNotifies: number;
  workerWakeups: number;
  /** doorbells the worker caught while spinning (no wake-up); spins that gave up; chances its gate held back (spin-gate.ts) */
  spinHits: number;
  spinMisses: number;
  spinGated: number;
  /** the worker's looks at its socket after sending requests (workerAnswerSpinUs): answers caught, looks that gave up, chances held back */
  answerSpinHits: number;
  answerSpinMisses: number;
  answerSpinGated: number;
  /** the worker's notifies to this thread, and this thread's waits a notify ended */
  workerNotifies: number;
  appWakeups: number;
  /** receive turns whose plain ACKs the worker held for this thread's answer, and those the answer joined */
  ackHolds: number;
  ackHoldsJoined: number;
  /**
   * waits of this thread and of the worker whose wake-up came late or never (the other side had
   * notified; LOST_WAKE_CHECK_MS ended them): 0 in a healthy run
   */
  appLostWakeups: number;
  workerLostWakeups: number;
  /**
   * of appLostWakeups and workerLostWakeups, those whose promise settled after all before the other
   * side could have notified again: the engine delivered that settlement 100+ ms late (the rest:
   * never, or not before a later notify)
   */
  appLateWakeups: number;
  workerLateWakeups: number;
}

/** Figures of a worker device: control calls and doorbells from this thread, what the worker served. */
export function workerStatsOf(device: Device): WorkerStats | undefined {
  const s = sessions.get(device);
  if (!s) return undefined;
  const c = s.session.control;
  return {
    ...s.stats, ...(s.spin?.stats ?? { appSpinHits: 0, appSpinMisses: 0, appSpinSkips: 0, appSpinUs: 0 }), workerCalls: c.load(W.CALLS), workerDoorbellRounds: c.load(W.DOORBELLS), progress: c.load(W.PROGRESS),
    appNotifies: c.load(W.APP_NOTIFIES), workerWakeups: c.load(W.WORKER_WAKEUPS),
    spinHits: c.load(W.SPIN_HITS), spinMisses: c.load(W.SPIN_MISSES), spinGated: c.load(W.SPIN_GATED),
    answerSpinHits: c.load(W.ANSWER_HITS), answerSpinMisses: c.load(W.ANSWER_MISSES), answerSpinGated: c.load(W.ANSWER_GATED),
    workerNotifies: c.load(W.WORKER_NOTIFIES), appWakeups: c.load(W.APP_WAKEUPS),
    ackHolds: c.load(W.HOLDS), ackHoldsJoined: c.load(W.HOLDS_JOINED),
    appLostWakeups: c.load(W.APP_LOST_WAKEUPS), workerLostWakeups: c.load(W.WORKER_LOST_WAKEUPS), appLateWakeups: c.load(W.APP_LATE_WAKEUPS),
    workerLateWakeups: c.load(W.WORKER_LATE_WAKEUPS),
  };
}

/** After the current task's callbacks and promise continuations (a platform passes a tighter one: Node's nextTick). */
function defaultEndOfTurn(fn: () => void): void {
  setTimeout(fn, 0);
}

/**
 * Where both sides of a worker device stand (a stall's diagnosis: bench/worker.mjs's watchdog):
 * this thread's PROGRESS wait and control block words now, then the worker's loop, port and link
 * (by message: read before the message wakes anything).
 */
export async function workerDebugOf(device: Device): Promise<Record<string, unknown> | undefined> {
  const s = sessions.get(device);
  if (!s) return undefined;
  const i32 = s.session.control.i32;
  const control: Record<string, number> = {};
  for (const [k, w] of Object.entries(W)) control[k] = Atomics.load(i32, w);
  const app = { ...s.wait, spin: s.spin?.state(), control };
  const worker = await s.session.request<Record<string, unknown>>("debug").catch((e: unknown) => ({ error: String(e) }));
  return { app, worker };
}

/** The session of a worker device (its requests: the link's ops). */
export function workerSessionOf(device: Device): WorkerSession | undefined {
  return sessions.get(device)?.session;
}

/**
 * The device, on this thread, over the worker's instance: the verbs run here unchanged, the core's
 * exports answered by the worker. Closing it closes the worker.
 */
export function deviceOnWorker(
  session: WorkerSession,
  ready: WorkerReady,
  options: OpenDeviceOptions,
  endOfTurn: (fn: () => void) => void = defaultEndOfTurn,
  appSpinUs = DEFAULT_APP_SPIN_US,
): Device {
  const core = coreProxy(session.control, ready.memory, ready.names);
  const device = new Device(core as unknown as VerbsCore, options);
  device.worker = true;
  const entry: SessionEntry = { session, stats: core.stats };
  sessions.set(device, entry);
  const { state, catchUp } = watchProgress(session.control, device, endOfTurn, () => entry.spin);
  entry.wait = state;
  entry.spin = new AppSpin(session.control, device.mem, () => core.stats.doorbells, { parked: () => state.parked, catchUp }, appSpinUs);
  setWorkerAppSpin(device, appSpinUs);
  // the worker died (an uncaught error, terminated): the device is gone, as IBV_EVENT_DEVICE_FATAL says
  session.onFailure(() => {
    if (!device.closed) device.dispatchEvent(new AsyncEvent({ eventType: EventType.DEVICE_FATAL, portNum: 1, element: 1, info: 0 }));
  });
  device.addEventListener("close", () => {
    session.control.store(W.CLOSED, 1); // verbs from now on fail at once (DeviceWorkerError)
    void session.close();
  });
  return device;
}

/**
 * How long (µs, 0 .. MAX_APP_SPIN_US) the application thread may look at a CQ it awaits before it
 * sleeps (app-spin.ts: adaptive, only when a completion is likely that soon); 0: it sleeps at once.
 * Measured in bench/worker.mjs (docs/PERFORMANCE.md, "The device in a worker").
 */
export const DEFAULT_APP_SPIN_US = 0;

/**
 * Sets a worker device's application-thread look (see DEFAULT_APP_SPIN_US) and, given, the share of
 * this thread's wall time its looks may take (0 < share <= 1; APP_SPIN_SHARE); false when `device`
 * is no worker device.
 */
export function setWorkerAppSpin(device: Device, us: number, share?: number): boolean {
  if (!(us >= 0 && us <= MAX_APP_SPIN_US)) throw new RangeError(`workerAppSpinUs ${us}: 0 .. ${MAX_APP_SPIN_US} µs`);
  if (share !== undefined && !(share > 0 && share <= 1)) throw new RangeError(`application look share ${share}: over 0, at most 1`);
  const spin = sessions.get(device)?.spin;
  if (!spin) return false;
  spin.boundUs = us;
  if (share !== undefined) spin.share = share;
  device.awaitSpin = us > 0 ? (cq) => spin.spin(cq) : undefined;
  return true;
}

/**
 * Makes a worker device's application-thread look (setWorkerAppSpin) call `yieldCpu` between its
 * looks (Node: the socket addon's sched_yield; openDevice's workerAppSpinYield), or not (undefined);
 * false when `device` is no worker device.
 */
export function setWorkerAppSpinYield(device: Device, yieldCpu: (() => void) | undefined): boolean {
  if (yieldCpu !== undefined && typeof yieldCpu !== "function") throw new TypeError("setWorkerAppSpinYield: a function or undefined");
  const spin = sessions.get(device)?.spin;
  if (!spin) return false;
  spin.yieldCpu = yieldCpu;
  return true;
}

/**
 * Gives a worker device whose worker attached a link its `device.port` here (a WorkerPort: the
 * clock, the capture tap, the budget and the counters of the worker's port).
 */
export function attachWorkerPort(device: Device, session: WorkerSession): WorkerPort {
  if (device.port) throw new Error("softroce device worker: the device already has a port");
  const port = new WorkerPort(device.core as unknown as TransportCore, device.mem, session, () => device.pump());
  device.port = port;
  return port;
}

/**
 * Runs device.pump() whenever the worker bumped PROGRESS, waiting with Atomics.waitAsync between.
 * While the worker filters its notifies (W.WATCH_USED), it publishes what it waits for before each
 * wait (watch.ts): the worker then notifies only a run that moved one of those rings.
 */
function watchProgress(ctl: Control, device: Device, endOfTurn: (fn: () => void) => void, spin: () => AppSpin | undefined): { state: AppWaitState; catchUp: () => void } {
  const i32 = ctl.i32;
  const trace = ctl.trace;
  const state: AppWaitState = { parked: false, last: 0, turnQueued: false };
  // the worker holds ACKs for this thread's answer (serve.ts flushAfterTurn): once the turn that
  // the wake-up started is over (the completions' continuations ran), say so if none came
  const turnOver = (): void => {
    state.turnQueued = false;
    if (Atomics.load(i32, W.ACK_HOLD) !== 1) return;
    Atomics.add(i32, W.WAKE, 1);
    if (Atomics.compareExchange(i32, W.WORKER_WAITING, 1, 0) === 1) {
      // counted when it woke the worker's wait: the worker can see WAKE move between setting
      // WORKER_WAITING and starting its wait, and then nobody is waiting for this notify
      if (Atomics.notify(i32, W.WAKE) > 0) Atomics.add(i32, W.APP_NOTIFIES, 1);
    }
  };
  const list = new WatchList(ctl, device.mem, () => device.core.dev_events());
  let pumpQueued = false;
  // Device.watchCq and Device.pump, mirrored: while this thread sleeps, a CQ that starts being
  // waited on (a next() from a timer, a reqNotify) or a ring that moved (a resize) is published at once
  // the list is published only while the worker reads it (W.WATCH_USED: held ACKs); unread, it would cost
  // this thread a rewrite before every sleep and after every pump for nothing
  const watched = (): boolean => Atomics.load(i32, W.WATCH_USED) === 1;
  const watchCq = device.watchCq.bind(device);
  device.watchCq = (cq, on) => {
    watchCq(cq, on);
    list.watch(cq, on);
    // entries already past the index published: look now (once; the pump itself publishes again)
    if (state.parked && watched() && list.publish() && !pumpQueued) {
      pumpQueued = true;
      queueMicrotask(() => {
        pumpQueued = false;
        if (!device.closed) device.pump();
      });
    }
  };
  const pump = device.pump.bind(device);
  device.pump = () => {
    pump();
    spin()?.pumped();
    if (state.parked && watched()) list.publish();
  };
  // the application's look (app-spin.ts) cleared APP_WAITING while this thread stayed parked: what
  // the worker did meanwhile came without a notify
  const catchUp = (): void => {
    const p = Atomics.load(i32, W.PROGRESS);
    if (p === state.last || device.closed) return;
    state.last = p;
    device.pump();
  };
  state.last = Atomics.load(i32, W.PROGRESS);
  const loop = (): void => {
    while (!device.closed && !Atomics.load(i32, W.CLOSED)) {
      const p = Atomics.load(i32, W.PROGRESS);
      if (p !== state.last) {
        state.last = p;
        Atomics.store(i32, W.APP_WAITING, 0);
        device.pump();
        continue;
      }
      if (watched()) list.publish();
      Atomics.store(i32, W.APP_WAITING, 1);
      if (!state.turnQueued && Atomics.load(i32, W.ACK_HOLD) === 1) {
        state.turnQueued = true;
        endOfTurn(turnOver);
      }
      const w = waits.change(i32, W.PROGRESS, p);
      if (w) {
        Atomics.add(i32, W.APP_WAITS, 1);
        Atomics.store(i32, W.APP_WAIT_VALUE, p);
        state.parked = true;
        const gen = ++waitGen;
        void w.then(() => woken(gen));
        return;
      }
    }
    clearInterval(lostCheck);
  };
  let waitGen = 0;
  // the wait checkLost gave up on last, and the worker's notifies then
  let givenUp = -1;
  let notifiesAtGiveUp = 0;
  const woken = (gen: number): void => {
    if (gen !== waitGen) {
      // given up on (checkLost): the loop went on without it. Settled before the worker notified
      // again (it counts a notify before sending it), it was the late one's settlement: late, not lost
      if (gen === givenUp && Atomics.load(i32, W.WORKER_NOTIFIES) === notifiesAtGiveUp) Atomics.add(i32, W.APP_LATE_WAKEUPS, 1);
      return;
    }
    state.parked = false;
    Atomics.add(i32, W.APP_WAKEUPS, 1);
    if (trace) trace.mark(TraceStage.APP_WOKEN, Atomics.load(i32, W.PROGRESS));
    loop();
  };
  // a wait whose wake-up never came (control.ts, LOST_WAKE_CHECK_MS): while this thread is parked,
  // APP_WAITING 0 means the worker cleared it right before its notify (nothing else clears it then;
  // with the watch list PROGRESS also moves without a notify, so that alone says nothing); seen at
  // two looks with nothing pumped in between (`last` moves only when this thread pumps), the promise
  // never settled. Counted, and the loop runs now.
  let lateAt: number | undefined;
  const checkLost = (): void => {
    if (device.closed || Atomics.load(i32, W.CLOSED)) {
      clearInterval(lostCheck);
      return;
    }
    if (!state.parked || Atomics.load(i32, W.APP_WAITING) !== 0) {
      lateAt = undefined;
      return;
    }
    if (lateAt !== state.last) {
      lateAt = state.last;
      return;
    }
    lateAt = undefined;
    Atomics.add(i32, W.APP_LOST_WAKEUPS, 1);
    givenUp = waitGen;
    notifiesAtGiveUp = Atomics.load(i32, W.WORKER_NOTIFIES);
    waitGen++;
    state.parked = false;
    loop();
  };
  const lostCheck = backgroundInterval(checkLost, LOST_WAKE_CHECK_MS);
  loop();
  return { state, catchUp };
}
