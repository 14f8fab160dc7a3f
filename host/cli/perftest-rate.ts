// perftest's rate limiter (--rate_limit, --rate_units, --rate_limit_type, --burst_size): what its
// options mean and the software limiter its bandwidth tests post under (perftest 4.5's run_iter_bw).
//
// perftest has three kinds. HW sets the QP's static rate; a RoCE port has none (perftest reads the
// QP back, finds the link layer Ethernet, and falls back to SW saying so, or fails when the type was
// given). PP is packet pacing, Raw Ethernet only. SW is what runs here: the sender posts bursts of
// --burst_size messages (default the tx depth), one burst per gap, the gap a second over the bursts
// the rate holds.

import { yieldUntil } from "./perftest-clock.js";

/** --rate_units: MiB/s (M), Gb/s (g, the default) or messages a second (p) */
export const RATE_UNITS = ["M", "g", "p"] as const;
export type RateUnits = (typeof RATE_UNITS)[number];

/** --rate_limit_type */
export const RATE_LIMIT_TYPES = ["SW", "HW", "PP"] as const;
export type RateLimitType = (typeof RATE_LIMIT_TYPES)[number];

/** perftest's RATE_VALUES: the --rate_limit values a HW limit takes (ibv_rate's, Gb/s), as its option must spell them */
export const HW_RATES = ["2.5", "5", "10", "14", "20", "25", "30", "40", "56", "60", "80", "100", "112", "120", "168", "200", "300", "MAX"] as const;

/** The software limiter of a run: the rate in its units and the messages a burst. */
export interface RateLimit {
  rate: number;
  units: RateUnits;
  burst: number;
}

/** perftest's rate_limit_pps: the messages a second the rate is for messages of `size` bytes (an int, truncated as perftest's). */
export function ratePps(l: RateLimit, size: number): number {
  const pps = l.units === "M" ? (l.rate / size) * 1048576 : l.units === "g" ? (l.rate / (size * 8)) * 1e9 : l.rate;
  return Math.trunc(pps);
}

/** The time from one burst's start to the next's, ms: a second over the whole bursts a second (perftest's gap_time); Infinity when not one fits. */
export function burstGapMs(l: RateLimit, size: number): number {
  return 1000 / Math.trunc(ratePps(l, size) / l.burst);
}

/**
 * The limiter over one run's posts, shared by its QPs as perftest's: a burst starts when a post is
 * wanted and the gap since the last burst's start has passed; it lets `burst` messages go (in whole
 * post lists), then posts wait for the next.
 */
export class Pace {
  /** messages the burst still lets go */
  private left = 0;
  /** when the next burst may start (performance.now(), ms) */
  private deadline = -Infinity;
  /** a post was held back since the last burst started */
  private held = false;
  private wakeFor = NaN;
  private wake: Promise<void> | undefined;

  constructor(
    private readonly burst: number,
    private readonly gapMs: number,
  ) {}

  /** Of `k` messages wanted now (whole lists of `list`), those the burst lets go: 0 between bursts. */
  take(k: number, list: number): number {
    if (this.left <= 0) {
      const now = performance.now();
      if (now < this.deadline) {
        this.held = true;
        return 0;
      }
      this.deadline = now + this.gapMs;
      this.left = this.burst;
      this.held = false;
    }
    const n = Math.min(k, Math.ceil(this.left / list) * list);
    this.left -= n;
    if (n < k) this.held = true; // the rest waits for the next burst
    return n;
  }

  /**
   * When a post was held back: the next burst's start (one promise per gap, resolved at its
   * deadline), for the run's wait to race with its completions; else undefined (nothing to wake for).
   */
  next(): Promise<void> | undefined {
    if (!this.held) return undefined;
    const d = this.deadline;
    if (this.wakeFor !== d) {
      this.wakeFor = d;
      this.wake = yieldUntil(d).then(() => {
        // a burst that started meanwhile (a completion's post past the deadline) owns what is held now
        if (this.deadline === d) this.held = false;
      });
    }
    return this.wake;
  }
}

/** The rate limiter's flags as the command line gives them (--rate_limit as written: a HW limit must spell one of HW_RATES). */
export interface RateFlags {
  rateLimitStr?: string;
  rateUnits?: RateUnits;
  rateLimitType?: RateLimitType;
  burstSize?: number;
}

/** A run's rate limiter: the software one the sender posts under, and what perftest says of it. */
export interface PerftestRateLimit extends RateLimit {
  /** --rate_limit_type SW without --burst_size: perftest says the burst is the tx depth (at parsing, on stderr) */
  burstDefaulted?: boolean;
  /**
   * The limit asked was HW's (--rate_limit's default type): a RoCE port takes no static rate, so at
   * connect perftest falls back to SW saying so, or fails when --rate_limit_type HW was given.
   */
  hw?: "fallback" | "fail";
}

/** What of the run the limiter's checks look at. */
export interface RateRun {
  test: string;
  bw: boolean;
  atomic: boolean;
  /** send_bw -b */
  biSend: boolean;
  infinite: boolean;
  /** perftest's use_rdma_cm: its exchange over rdma_cm (-R or -z) */
  cmExchange: boolean;
  txDepth: number;
  /** the run's largest message size (the fewest messages a second under a rate in M or g) */
  size: number;
  /** --wait, ms: the test's waits give up after that long with no packet */
  timeoutMs: number;
}

/**
 * The limiter of a run from its flags, with perftest's refusals (its parser's and force_dependecies',
 * in its order) and ours where perftest's limiter would not limit: undefined without one.
 */
export function rateLimitFrom(f: RateFlags, r: RateRun, refuse: (msg: string) => never): PerftestRateLimit | undefined {
  let rate = 0;
  if (f.rateLimitStr !== undefined) {
    rate = Number.parseFloat(f.rateLimitStr); // atof's: the number the text starts with, 0 for none
    if (!(rate > 0)) refuse(`--rate_limit ${f.rateLimitStr}: Rate limit must be non-negative (perftest's refusal: a rate above 0)`);
  }
  // perftest: --rate_limit without --rate_limit_type asks for a HW limit
  const type = f.rateLimitType ?? (f.rateLimitStr !== undefined ? "HW" : undefined);
  if (type === undefined) {
    if (f.burstSize) refuse(`--burst_size ${f.burstSize}: Can't enable burst mode when rate limiter is off (no --rate_limit; perftest's refusal)`);
    return undefined;
  }
  if (r.infinite) refuse("--run_infinitely: run_infinitely does not support rate limit feature yet (perftest's refusal)");
  const units = f.rateUnits ?? "g";
  if (type === "SW" && (!r.bw || r.atomic || r.biSend)) {
    refuse(`--rate_limit_type SW: SW Rate limiter cann't be executed on non-BW, ATOMIC or bidirectional SEND tests (${r.test}${r.biSend ? " -b" : ""}, perftest's refusal)`);
  }
  if (type === "HW") {
    if (r.cmExchange) refuse("--rate_limit: HW rate limit isn't supported yet with rdma_cm scenarios (HW is --rate_limit's default type; --rate_limit_type SW limits here; perftest's refusal)");
    if (units === "p") refuse("--rate_units p: Failed: pps rate limit units is not supported when setting HW rate limit (HW is --rate_limit's default type; perftest's refusal)");
    if (rate > 0 && !(HW_RATES as readonly string[]).includes(f.rateLimitStr!)) {
      refuse(`--rate_limit ${f.rateLimitStr}: Failed: Unknown rate limit value (a HW limit, --rate_limit's default type, takes ${HW_RATES.slice(0, -1).join(", ")} Gbps; --rate_limit_type SW takes any rate)`);
    }
  }
  if (type === "SW" && rate === 0) refuse("--rate_limit_type SW: no --rate_limit to limit to (perftest's limiter would not limit)");
  if (type === "PP") refuse("--rate_limit_type PP: Packet Pacing is only supported for Raw Ethernet. (perftest's refusal)");
  const limit: PerftestRateLimit = { rate, units, burst: f.burstSize || r.txDepth };
  if (type === "SW" && !f.burstSize) limit.burstDefaulted = true;
  if (type === "HW") limit.hw = f.rateLimitType === "HW" ? "fail" : "fallback";
  // ours: perftest's limiter with no whole burst a second waits for ever after the first (a gap of
  // 1/0 s), and a gap past half of --wait would leave the test's stall guard seeing no packet
  if (limit.hw !== "fail" && r.bw) {
    const pps = ratePps(limit, r.size);
    const what = `--rate_limit ${f.rateLimitStr ?? 0} (${RATE_UNIT_NAMES[units]}): ${pps} messages of ${r.size} B a second`;
    if (pps < limit.burst) refuse(`${what} is less than one burst of ${limit.burst} (--burst_size${f.burstSize ? "" : ", the tx depth"}) a second: perftest's limiter would not limit`);
    const gap = burstGapMs(limit, r.size);
    if (2 * gap > r.timeoutMs) refuse(`${what} is a burst of ${limit.burst} every ${(gap / 1000).toFixed(3)} s; the test's waits give up after --wait (${r.timeoutMs / 1000} s) with no packet: give a --wait above twice the gap`);
  }
  return limit;
}

const RATE_UNIT_NAMES: Record<RateUnits, string> = { M: "MiB/s", g: "Gb/s", p: "messages/s" };
