// The hit-rate gate of a device worker's looks (its spin for the application's next doorbell, its
// look at the socket for a request's answer): a look that seldom catches what it looks for only
// takes the CPU that the thread it waits for needs. Shaped as the relay's answer poll
// (host/node/native/relay.c, gate_note / gate_open): an exponential average of the looks' outcomes
// (a hit 1, a miss 0); under GATE_MIN only every GATE_PROBE-th chance looks, to notice when the
// answers come back in time again.

/** Weight of the newest look in the average (the relay's 1/8). */
export const GATE_ALPHA = 1 / 8;
/** Under this share of recent looks that caught theirs, only probes look (the relay's 96/256). */
export const GATE_MIN = 0.375;
/** One chance in this many looks while the gate is closed (the relay's 16). */
export const GATE_PROBE = 16;

/** Where a gate counts (Int32 words of the control block, control.ts W): looks that caught theirs, looks that gave up, chances it held back. */
export interface SpinGateWords {
  hits: number;
  misses: number;
  gated: number;
}

export class SpinGate {
  /** the share of recent looks that caught theirs (optimistic at first: look) */
  score = 1;
  private skips = 0;

  constructor(
    private readonly i32: Int32Array,
    private readonly words: SpinGateWords,
  ) {}

  /** Whether to look now: the gate is open, or this chance is a probe. A chance held back is counted. */
  open(): boolean {
    if (this.score >= GATE_MIN) return true;
    if (++this.skips >= GATE_PROBE) {
      this.skips = 0;
      return true;
    }
    Atomics.add(this.i32, this.words.gated, 1);
    return false;
  }

  /** A look ended: it caught what it looked for (true) or gave up at its bound (false). */
  note(hit: boolean): void {
    this.score += GATE_ALPHA * ((hit ? 1 : 0) - this.score);
    Atomics.add(this.i32, hit ? this.words.hits : this.words.misses, 1);
  }
}
