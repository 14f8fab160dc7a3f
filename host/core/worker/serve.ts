// The device worker's side of the control block: it owns the instance and runs it. It waits on
// the WAKE word (Atomics.waitAsync, so its event loop keeps serving the socket and the timers),
// then rings the doorbells the application queued (in order) and answers a waiting call; after
// any work the port drains the TX ring and re-arms the timer, and PROGRESS is bumped so the
// application thread's CQ waiters and event pump look at the shared rings.
import type { CapturedDatagram, PacketPort } from "../link/index.js";
import { CALL_DONE, CALL_REQUEST, Control, F, RES_BIGINT, RES_ERROR, RES_NUMBER, RES_VOID, W, waitChange } from "./control.js";

/** One captured datagram as it crosses to the application thread (its payload a copy). */
export interface CaptureRecord {
  dir: "tx" | "rx";
  d: CapturedDatagram;
}

type Fn = (...args: unknown[]) => unknown;

export class DeviceServer {
  /** The link's port, once attached: its service() runs after the device did work. */
  port: PacketPort | undefined;
  private readonly fns: (Fn | undefined)[];
  private readonly doorbell: Fn;
  private stopped = false;
  private seen = 0;
  /** Where captured datagrams go (the runner posts them to the application thread as a "capture" report). */
  onCapture: ((records: CaptureRecord[]) => void) | undefined;
  private capturing = false;
  private captured: CaptureRecord[] = [];
  private captureQueued = false;

  constructor(
    private readonly ctl: Control,
    exports: WebAssembly.Exports,
    /** the export names, in the order the application's proxy indexes them */
    readonly names: string[],
    /** the device's time in µs (doorbells are stamped with it) */
    private readonly now: () => number,
  ) {
    this.fns = names.map((n) => (typeof exports[n] === "function" ? (exports[n] as Fn) : undefined));
    this.doorbell = exports["doorbell"] as Fn;
  }

  /** Function export names of an instance (what the proxy is built from). */
  static functionNames(exports: WebAssembly.Exports): string[] {
    return Object.keys(exports).filter((n) => typeof exports[n] === "function");
  }

  /** Starts serving; returns at once (the loop runs on Atomics.waitAsync). */
  start(): void {
    this.loop();
  }

  /** Stops serving: later calls are refused on the application side (CLOSED). */
  stop(): void {
    this.stopped = true;
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
    }
    Atomics.add(c.i32, W.PROGRESS, 1);
    if (Atomics.load(c.i32, W.APP_WAITING)) Atomics.notify(c.i32, W.PROGRESS);
  };

  private readonly loop = (): void => {
    const i32 = this.ctl.i32;
    while (!this.stopped) {
      this.seen = Atomics.load(i32, W.WAKE);
      if (this.work()) {
        if (this.port) this.port.service();
        else this.progress();
      }
      const w = waitChange(i32, W.WAKE, this.seen);
      if (w) {
        void w.then(this.loop);
        return;
      }
    }
  };

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
      for (; tail !== head; tail = (tail + 1) | 0) {
        const e = c.i32[c.dbEntry(tail)]!;
        this.doorbell(e >>> 2, e & 3, now);
      }
      c.store(W.DB_TAIL, tail);
      Atomics.add(c.i32, W.DOORBELLS, 1);
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
          this.captured.push({ dir, d: { ...d, payload: d.payload.slice() } });
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
