// `device.port` of a worker device, on the application thread: the worker's PacketPort runs the
// link; this one gives the application what a port gives it on one thread — the clock (the real
// one: rdma_cm, QP1 and the CM time their retries with it), the capture tap (a PcapRecorder
// attaches here; the worker taps its port and streams the datagrams back), the in-flight budget
// (budget(), setBudget(): core calls the worker answers) and the port's counters (copied by the
// worker into the control block after every turn). Datagrams never pass through it.
import { PacketPort, realClock, type CaptureHook, type Clock, type Link, type TransportCore } from "../link/index.js";
import type { DeviceMemory } from "../verbs/memory.js";
import { F, W, type Control } from "./control.js";
import type { WorkerCaptureRecord } from "./serve.js";
import type { WorkerSession } from "./session.js";

/** The link a worker port stands on: it never sends (the worker's port does). */
const WORKER_LINK: Link = {
  send: () => {
    throw new Error("softroce: a worker device's datagrams leave from its worker");
  },
};

/** The worker thread's CPU (Linux, /proc/thread-self/schedstat): its task id, ns on a CPU, ns runnable but waiting for one. */
export interface WorkerThreadCpu {
  tid: number;
  runNs: number;
  waitNs: number;
}

/** What WorkerPort.fetchStats() brings from the worker. */
export interface WorkerPortStats {
  port?: PacketPort["stats"];
  link?: unknown;
  datapath?: Record<string, number>;
  thread?: WorkerThreadCpu;
}

export class WorkerPort extends PacketPort {
  private hook: CaptureHook | undefined;
  private stopped = false;
  private readonly counters: PacketPort["stats"];

  constructor(
    core: TransportCore,
    mem: DeviceMemory,
    private readonly session: WorkerSession,
    private readonly pump: () => void,
    clock: Clock = realClock,
  ) {
    super(core, mem, clock, WORKER_LINK, pump);
    const ctl: Control = session.control;
    const f = ctl.f64;
    this.counters = {
      get txDatagrams() {
        return f[F.TX_DATAGRAMS]!;
      },
      get rxDatagrams() {
        return f[F.RX_DATAGRAMS]!;
      },
      get rxDropped() {
        return f[F.RX_DROPPED]!;
      },
      get sportFallbacks() {
        return f[F.SPORT_FALLBACKS]!;
      },
      drops: {},
    };
    // PacketPort's `capture` and `stats` are fields: here they are the worker's, so accessors replace them
    Object.defineProperty(this, "capture", {
      get: () => this.hook,
      set: (fn: CaptureHook | undefined) => this.setCapture(fn),
      configurable: true,
      enumerable: true,
    });
    Object.defineProperty(this, "stats", { get: () => this.counters, configurable: true, enumerable: true });
    session.onReport((r) => {
      if (r.report !== "capture" || !this.hook) return;
      for (const { dir, d } of r.records as WorkerCaptureRecord[]) this.hook(dir, d);
    });
  }

  /**
   * Starts (a hook) or stops (undefined) the worker's tap. Synchronous as far as this thread's
   * verbs go: the worker installs the tap before it rings any doorbell posted after this.
   */
  private setCapture(fn: CaptureHook | undefined): void {
    this.hook = this.stopped ? undefined : fn;
    const ctl = this.session.control;
    const on = this.hook ? 1 : 0;
    if (ctl.load(W.CAPTURE) === on) return;
    ctl.store(W.CAPTURE, on);
    ctl.bump(W.WAKE);
  }

  /**
   * Resolves once every datagram the worker captured so far has reached the capture hook (records
   * travel as messages and arrive after the completions that the same datagrams caused).
   */
  captureFlush(): Promise<void> {
    return this.session.request<void>("captureFlush");
  }

  /**
   * The worker's port counters in full (`stats.drops` by reason included), its link's and, on Node's
   * native datapath, the datapath's (system calls, GSO sends, GRO splits), by message; on Linux the
   * worker thread's CPU (WorkerThreadCpu).
   */
  async fetchStats(): Promise<WorkerPortStats> {
    const s = await this.session.request<WorkerPortStats>("stats");
    if (s.port?.drops) this.counters.drops = { ...s.port.drops };
    return s;
  }

  /** Nothing to drain here: the worker's port moves the datagrams; completions and events are looked at. */
  override service(): void {
    if (!this.stopped) this.pump();
  }

  override resume(): void {}

  override receive(): number {
    throw new Error("softroce: a worker device receives in its worker (its link delivers there)");
  }

  override receiveBatch(): void {
    throw new Error("softroce: a worker device receives in its worker (its link delivers there)");
  }

  override rxBatchArea(): undefined {
    throw new Error("softroce: a worker device's receive slots are its worker's");
  }

  override close(): void {
    if (this.stopped) return;
    if (this.hook && !this.session.control.load(W.CLOSED)) this.setCapture(undefined);
    this.stopped = true;
    this.hook = undefined;
  }
}
