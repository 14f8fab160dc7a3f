// What a waiting application thread is waiting for, in the control block (control.ts, WATCH_MAX):
// the application publishes the rings its event pump acts on — the async event ring and the CQs
// with a pending next() or an armed notification — each with the consumer index it has reached;
// after a run of the device the worker notifies the sleeping application only when one of those
// rings' producer moved past it. A run that only sent (a doorbell's WRITEs, a receive of bare
// ACKs that completed nothing the application waits on) then costs the application no wake-up.
//
// Why no completion is missed: the application writes the list (sequence odd, entries, count,
// sequence even) before it sleeps, and after writing it looks at the rings itself; the worker
// writes a completion, bumps PROGRESS, then reads the list. A completion written before the
// application's own look is seen by that look; one written after it is past the published index
// when the worker reads the list. A list being rewritten (odd or changed sequence) or longer than
// WATCH_MAX, or an index the worker cannot read, counts as "moved": the worker notifies.
import { Ring } from "../abi/index.js";
import type { DeviceMemory } from "../verbs/memory.js";
import { WATCH_MAX, type Control } from "./control.js";

/** A ring the application watches (a CompletionQueue: its `ring` address is read at each publish, a resize moves it). */
export interface WatchedRing {
  readonly ring: number;
}

/** The application thread's side: the watched CQs and the publishing of the list. */
export class WatchList {
  private readonly cqs = new Set<WatchedRing>();

  constructor(
    private readonly ctl: Control,
    private readonly mem: DeviceMemory,
    /** the async event ring's address (0 before the device is open) */
    private readonly eventRing: () => number,
  ) {}

  /** Adds or removes a CQ (Device.watchCq's calls, mirrored). */
  watch(cq: WatchedRing, on: boolean): void {
    if (on) this.cqs.add(cq);
    else this.cqs.delete(cq);
  }

  /** Writes the list; true when a watched ring already holds entries past the index published (look now). */
  publish(): boolean {
    const i32 = this.ctl.i32;
    const b = this.ctl.watchBase;
    const m = this.mem;
    Atomics.add(i32, b, 1); // odd: being rewritten
    let pending = false;
    if (this.cqs.size + 1 > WATCH_MAX) Atomics.store(i32, b + 1, -1);
    else {
      let k = 0;
      const put = (ring: number): void => {
        const cons = m.loadIndex(ring + Ring.CONS);
        Atomics.store(i32, b + 2 + 2 * k, ring | 0);
        Atomics.store(i32, b + 3 + 2 * k, cons | 0);
        k++;
        if (m.loadIndex(ring + Ring.PROD) !== cons) pending = true;
      };
      const ev = this.eventRing();
      if (ev) put(ev);
      for (const cq of this.cqs) put(cq.ring);
      Atomics.store(i32, b + 1, k);
    }
    Atomics.add(i32, b, 1); // even: complete
    return pending;
  }
}

/**
 * The worker's side: whether the application's list says it has something to look at (a watched
 * ring's producer moved past the index published, or the list is being rewritten, or too long).
 */
export function watchMoved(ctl: Control, mem: DeviceMemory): boolean {
  const i32 = ctl.i32;
  const b = ctl.watchBase;
  const seq = Atomics.load(i32, b);
  if (seq & 1) return true;
  const n = Atomics.load(i32, b + 1);
  if (n < 0 || n > WATCH_MAX) return true;
  try {
    for (let k = 0; k < n; k++) {
      const ring = Atomics.load(i32, b + 2 + 2 * k) >>> 0;
      if (mem.loadIndex(ring + Ring.PROD) !== Atomics.load(i32, b + 3 + 2 * k) >>> 0) return true;
    }
  } catch {
    return true; // an address outside the memory: notify, the application looks itself
  }
  return Atomics.load(i32, b) !== seq;
}
