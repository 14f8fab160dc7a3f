// A virtual clock with an event queue: simulated time advances only when the
// next event runs, so a simulation is deterministic and as fast as the CPU.

interface Event {
  at: number;
  seq: number;
  fn: (arg: unknown) => void;
  arg: unknown;
}

/** Events kept for reuse once run (a busy simulation schedules one or more per datagram). */
const SPARE_EVENTS = 1024;

export class SimClock {
  /** Current virtual time in microseconds. */
  now = 0;
  private heap: Event[] = [];
  private seq = 0;
  private spare: Event[] = [];
  /** The running event's place in the order (its seq), for `resume`. */
  private current = -1;

  /** Runs fn at virtual time `at` (µs); ties run in scheduling order. */
  schedule(at: number, fn: () => void): void {
    this.scheduleWith(at, fn, undefined);
  }

  /** Runs `fn(arg)` at virtual time `at` (µs), as `schedule`: with a long-lived `fn`, nothing is allocated per event. */
  scheduleWith<T>(at: number, fn: (arg: T) => void, arg: T): void {
    this.push(Math.max(at, this.now), this.seq++, fn as (arg: unknown) => void, arg);
  }

  private push(at: number, seq: number, fn: (arg: unknown) => void, arg: unknown): void {
    let ev = this.spare.pop();
    if (ev) {
      ev.at = at;
      ev.seq = seq;
      ev.fn = fn;
      ev.arg = arg;
    } else ev = { at, seq, fn, arg };
    const h = this.heap;
    h.push(ev);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(ev, h[p])) break;
      h[i] = h[p];
      i = p;
    }
    h[i] = ev;
  }

  /**
   * From inside a running event: runs `fn(arg)` next — now, before every other event, in the
   * place of the one running (its order among the events due now). For an event that did part
   * of its work and lets the caller react before it does the rest, as if the rest had been
   * separate events scheduled right after it.
   */
  resume<T>(fn: (arg: T) => void, arg: T): void {
    if (this.current < 0) throw new Error("SimClock.resume outside a running event");
    // the running event's seq: before everything else due now (all scheduled after it)
    this.push(this.now, this.current, fn as (arg: unknown) => void, arg);
  }

  after(delayUs: number, fn: () => void): void {
    this.schedule(this.now + delayUs, fn);
  }

  /** Time of the next event, or undefined when idle. */
  get nextAt(): number | undefined {
    return this.heap[0]?.at;
  }

  /** Events scheduled so far (it changes with every schedule: "nothing was scheduled since"). */
  get scheduled(): number {
    return this.seq;
  }

  get pending(): number {
    return this.heap.length;
  }

  /** Runs the earliest event; false when there is none. */
  step(): boolean {
    const ev = this.pop();
    if (!ev) return false;
    this.now = ev.at;
    const fn = ev.fn;
    const arg = ev.arg;
    ev.fn = noop;
    ev.arg = undefined;
    if (this.spare.length < SPARE_EVENTS) this.spare.push(ev);
    const outer = this.current;
    this.current = ev.seq;
    fn(arg);
    this.current = outer;
    return true;
  }

  /**
   * Runs events until none is left, virtual time would pass `untilUs`, or
   * `maxEvents` ran. Returns the number of events run.
   */
  run(untilUs = Infinity, maxEvents = 10_000_000): number {
    let n = 0;
    while (n < maxEvents && this.heap.length > 0 && this.heap[0].at <= untilUs) {
      this.step();
      n++;
    }
    if (untilUs !== Infinity && this.heap.length === 0 && untilUs > this.now) this.now = untilUs;
    return n;
  }

  private pop(): Event | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        let best = last;
        if (l < h.length && before(h[l], best)) {
          m = l;
          best = h[l];
        }
        if (r < h.length && before(h[r], best)) {
          m = r;
          best = h[r];
        }
        if (m === i) break;
        h[i] = h[m];
        i = m;
      }
      h[i] = last;
    }
    return top;
  }
}

function noop(): void {}

function before(a: Event, b: Event): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}
