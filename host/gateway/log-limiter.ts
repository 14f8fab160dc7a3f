// Rate-limited log records: at most `rate` per second (bursts of one second's worth);
// the rest are counted, and the next record written, or a `flush`, says how many were
// suppressed. A flood of refused packets costs a counter increment, not a log line.
import { TokenBucket } from "./token-bucket.js";

export class LogLimiter<R extends object> {
  private readonly bucket: TokenBucket;
  /** Records suppressed since the last one written. */
  private pending = 0;
  /** Records suppressed in total. */
  suppressed = 0;

  constructor(private readonly write: (r: R & { suppressed?: number }) => void, rate: number, now: number) {
    if (!(rate >= 0) || !Number.isFinite(rate)) throw new RangeError(`log rate ${rate} is not a number of records per second`);
    this.bucket = new TokenBucket(rate, Math.max(1, rate), now);
  }

  /** Writes `r` (with the count suppressed before it, if any) or counts it as suppressed. */
  log(r: R, now: number): void {
    if (!this.bucket.take(1, now)) {
      this.pending++;
      this.suppressed++;
      return;
    }
    if (this.pending) {
      const n = this.pending;
      this.pending = 0;
      this.write({ ...r, suppressed: n });
    } else this.write(r);
  }

  /** The count suppressed since the last record written, reset (the owner reports it on a timer). */
  takePending(): number {
    const n = this.pending;
    this.pending = 0;
    return n;
  }
}
