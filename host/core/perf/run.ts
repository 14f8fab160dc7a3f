// The perf engine: runs one perftest-style test on a PerfBed (bed.ts) — the simulated wire with
// both sides in this process, or a real link with the server in another process — counts what
// arrived (verified, lost, duplicated, corrupted, failed) and measures bandwidth or latency on
// the wall clock and, where the bed has one, its virtual clock. servePerfOn is the server's part
// when it runs in its own process. Platform-neutral (no node:*).
import { nameOf, WcOpcode, WcStatus, type SendWr, type WorkCompletion } from "../verbs/index.js";
import { createPerfBed, type PerfBed } from "./bed.js";
import { ATOMIC_SIZE, faultFree, isBwTest, perfVerb, readsResponses, resolvePerfOptions, slotOffset, type PerfOptions, type ResolvedPerfOptions } from "./options.js";
import { atomicOperand, checkPattern, fillPattern, patternSeq } from "./pattern.js";
import { casValue, perfWr, remoteMrs, slotView, type PerfShape, type PerfSide, type RemoteMr } from "./side.js";
import { bwFigures, latFigures, type BwFigures, type LatFigures } from "./stats.js";

export interface PerfProgress {
  /** messages completed so far (all QPs) */
  done: number;
  total: number;
  wallMs: number;
  virtualUs: number;
}

export interface PerfHooks {
  onProgress?(p: PerfProgress): void;
  /** how often onProgress is called, wall ms (default 250) */
  progressEveryMs?: number;
  /** give the event loop a turn this often (wall ms; the browser's UI); the pause is not timed */
  yieldEveryMs?: number;
}

export interface PerfCounts {
  /** messages whose bytes (or atomic results) were checked and matched (with verify) */
  verified: number;
  /** messages posted that never completed or never arrived */
  lost: number;
  /** completions or messages seen twice */
  duplicated: number;
  /** messages whose bytes, length or atomic result did not match */
  corrupted: number;
  /** completions with an error status (a flushed WR counts too) */
  errors: number;
  error_statuses: Record<string, number>;
}

export interface PerfResult extends PerfCounts {
  test: string;
  connection: string;
  bytes: number;
  /** messages per QP */
  iterations: number;
  qps: number;
  mtu: number;
  tx_depth: number;
  seed: number;
  verify: boolean;
  faults: ResolvedPerfOptions["faults"];
  /** -b: both sides sent at once; the figures are the two directions summed (perftest's row) */
  bidirectional: boolean;
  /** -b: each direction's figures on the headline clock, the client's sending first */
  each_way?: BwFigures[];
  /** messages the run sent: iterations × qps (both directions with -b; both ways of each latency round trip on the simulated wire) */
  messages: number;
  /** which clock the headline figures use: wall when the link is perfect, virtual otherwise */
  clock: "wall" | "virtual";
  bw_peak_mbps?: number;
  bw_avg_mbps?: number;
  msg_rate_mpps?: number;
  t_min?: number;
  t_max?: number;
  t_typical?: number;
  t_avg?: number;
  t_stdev?: number;
  p99?: number;
  p99_9?: number;
  /** figures on the wall clock and on the virtual clock (null when virtual time did not advance) */
  wall: BwFigures | LatFigures;
  sim: BwFigures | LatFigures | null;
  /** go-back-N retries (the devices' completer_retry_err) */
  retransmissions: number;
  rnr_naks: number;
  seq_naks: number;
  packets_sent: number;
  wire: { sent: number; delivered: number; lost: number; duplicated: number; corrupted: number; reordered: number };
  virtual_us: number;
  wall_ms: number;
  /** no loss, duplicate, corruption or error (and, with verify, every message verified) */
  ok: boolean;
  /** two-process mode: the UDP link it ran on (absent: the simulated wire of --local) */
  link?: string;
}

/** Zeroed counts. */
export function perfCounts(): PerfCounts {
  return { verified: 0, lost: 0, duplicated: 0, corrupted: 0, errors: 0, error_statuses: {} };
}

/** Counts a completion's status; true when it succeeded. */
export function countStatus(c: PerfCounts, wc: WorkCompletion): boolean {
  if (wc.status === WcStatus.SUCCESS) return true;
  c.errors++;
  const name = nameOf(WcStatus, wc.status);
  c.error_statuses[name] = (c.error_statuses[name] ?? 0) + 1;
  return false;
}

class Runner {
  readonly counts: PerfCounts = perfCounts();
  private wall0 = 0;
  private paused = 0;
  private lastProgress = 0;
  private lastYield = 0;
  stalled = false;

  constructor(
    readonly o: ResolvedPerfOptions,
    readonly bed: PerfBed,
    private readonly hooks: PerfHooks,
  ) {}

  /** wall-clock µs, without the pauses given to the event loop */
  wallNow(): number {
    return (performance.now() - this.paused) * 1000;
  }

  start(): void {
    this.wall0 = this.wallNow();
    this.lastProgress = this.lastYield = performance.now();
  }

  get virtualNow(): number {
    return this.bed.virtualNow() ?? 0;
  }

  status(wc: WorkCompletion): boolean {
    return countStatus(this.counts, wc);
  }

  /**
   * Lets the bed run until `done()` holds, calling `after()` whenever something may have
   * happened; returns false when it stalled first.
   */
  async drive(done: () => boolean, after: () => void, progress: () => number, total: number): Promise<boolean> {
    const ok = await this.bed.drive(done, after, () => this.tick(progress, total), progress);
    if (!ok) this.stalled = true;
    return ok;
  }

  private async tick(progress: () => number, total: number): Promise<void> {
    const h = this.hooks;
    const now = performance.now();
    if (h.onProgress && now - this.lastProgress >= (h.progressEveryMs ?? 250)) {
      this.lastProgress = now;
      h.onProgress({ done: progress(), total, wallMs: (this.wallNow() - this.wall0) / 1000, virtualUs: this.virtualNow });
    }
    if (h.yieldEveryMs !== undefined && now - this.lastYield >= h.yieldEveryMs) {
      const t = performance.now();
      await new Promise((r) => setTimeout(r, 0));
      this.lastYield = performance.now();
      this.paused += this.lastYield - t;
    }
  }
}

function u64le(b: Uint8Array): bigint {
  return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
}

interface QpState {
  posted: number;
  completed: number;
  /** next sequence number expected at the receiver (send) */
  nextRecv: number;
  failed: boolean;
  /** FETCH_ADD: the counter's value before the next op to complete */
  expect: bigint;
  /** UC write_bw with verify: the oldest message not yet found whole at the receiver, nor given up */
  check: number;
}

/** One direction of a bandwidth test: `from` posts into the regions `shape` names. */
interface BwDirection {
  from: PerfSide;
  /** the receiving side when it runs in this process (the simulated wire) */
  to?: PerfSide;
  /** per QP, the MR of the receiving side that RDMA work requests name */
  remote: RemoteMr[];
  shape: PerfShape;
}

/** When one direction's messages completed (µs), from its first post at wall0/sim0. */
interface BwTimes {
  wallDone: Float64Array;
  simDone: Float64Array;
  wall0: number;
  sim0: number;
}

interface BwStream {
  /** posts the first window */
  start(): void;
  poll(): void;
  finished(): boolean;
  /** messages completed so far */
  progress(): number;
  /** once the wire is idle: counts what never completed or arrived */
  settle(stalled: boolean): void;
  times(): BwTimes;
}

/** The direction of a bidirectional run's server: region 1 of every MR, its own pattern keys. */
function serverDirectionShape(bed: PerfBed, o: ResolvedPerfOptions): PerfShape {
  return { slots: bed.slots, slotBytes: bed.slotBytes, places: bed.places, qkey: bed.qkey, base: bed.places * bed.slotBytes, keyQp: o.qps };
}

function bwStream(r: Runner, o: ResolvedPerfOptions, bed: PerfBed, d: BwDirection): BwStream {
  const { from, to, shape } = d;
  const c = r.counts;
  const n = o.iterations;
  const slots = shape.slots;
  const base = shape.base ?? 0;
  const keyQp = shape.keyQp ?? 0;
  const key = (q: number, seq: number) => ({ seed: o.seed, qp: q + keyQp, seq });
  const view = (side: PerfSide, q: number, slot: number, len = o.size, extra = 0) => slotView(side, q, shape, slot, len, base + extra);
  const st: QpState[] = from.qps.map(() => ({ posted: 0, completed: 0, nextRecv: 0, failed: false, expect: 0n, check: 0 }));
  // completion times, one slot per message (a duplicate completion is not timed)
  const wallTimes = new Float64Array(n * o.qps);
  const simTimes = new Float64Array(n * o.qps);
  let timed = 0;
  let wall0 = 0;
  let sim0 = 0;
  // the receives and the bytes at the receiver are this process's when the receiver is
  const atomic = perfVerb(o.test) === "atomic";
  const recvSide = o.test === "send_bw" && to !== undefined;
  // UC and UD: nothing acknowledges, a send completes once sent; what arrives is counted at the receiver
  const unreliable = o.connection !== "RC";
  const rxLen = o.size + bed.rxOffset;
  const seen = unreliable && recvSide && o.verify && o.size >= 4 ? st.map(() => new Uint8Array(n)) : undefined;
  // UC write_bw with verify: each message is looked for at the receiver as it lands (ucWrites)
  const ucWrites = unreliable && o.test === "write_bw" && o.verify && to !== undefined;
  const postRecv = (qp: number, slot: number) =>
    to!.qps[qp]!.postRecv({ wrId: BigInt(slot), sgList: rxLen > 0 ? [to!.mrs[qp]!.sge(base + slotOffset(shape, slot), rxLen)] : [] });

  const templates: SendWr[][] = [];
  /** QPs still posting or waiting for completions */
  let pending = o.qps;
  const post = (q: number) => {
    const s = st[q]!;
    const seq = s.posted;
    const slot = seq % slots;
    if (o.verify) {
      if (o.test === "read_bw") fillPattern(view(to!, q, slot), key(q, seq));
      else if (!atomic) fillPattern(view(from, q, slot), key(q, seq));
    }
    // one WR object per slot, built once: only the id (and an atomic's operands) change per post
    const row = (templates[q] ??= []);
    let w = row[slot];
    if (!w) w = row[slot] = perfWr(o, from, d.remote[q]!, shape, q, seq);
    else {
      w.wrId = BigInt(seq);
      if (w.atomic) {
        const fresh = perfWr(o, from, d.remote[q]!, shape, q, seq).atomic!;
        w.atomic.compareAdd = fresh.compareAdd;
        w.atomic.swap = fresh.swap;
      }
    }
    from.qps[q]!.postSend(w);
    s.posted++;
    if (s.posted >= n) pending--;
  };

  const onSend = (wc: WorkCompletion) => {
    const q = from.index.get(wc.qpNum);
    if (q === undefined) return;
    const s = st[q]!;
    const seq = Number(wc.wrId);
    if (seq < s.completed) {
      c.duplicated++;
      return;
    }
    if (seq > s.completed) c.lost += seq - s.completed;
    s.completed = seq + 1;
    if (timed < wallTimes.length) {
      wallTimes[timed] = r.wallNow();
      simTimes[timed++] = r.virtualNow;
    }
    if (!r.status(wc)) {
      if (!s.failed && s.posted < n) pending--; // it posts no more
      s.failed = true;
      return;
    }
    if (atomic) {
      const got = u64le(view(from, q, seq % slots, ATOMIC_SIZE));
      let want: bigint;
      if (o.atomicType === "FETCH_AND_ADD") {
        want = s.expect;
        s.expect = BigInt.asUintN(64, s.expect + atomicOperand(o.seed, q + keyQp, seq));
      } else want = casValue(o, q + keyQp, seq);
      if (o.verify) {
        if (got === want) c.verified++;
        else c.corrupted++;
      }
    } else if (o.verify && o.test !== "send_bw" && !unreliable) {
      const side = o.test === "write_bw" ? to! : from;
      if (checkPattern(view(side, q, seq % slots), key(q, seq)) < 0) c.verified++;
      else c.corrupted++;
    }
    if (!s.failed && s.posted < n) post(q);
  };

  const onRecv = (wc: WorkCompletion) => {
    const q = to!.index.get(wc.qpNum);
    if (q === undefined) return;
    const s = st[q]!;
    if (!r.status(wc)) return;
    const slot = Number(wc.wrId);
    const buf = view(to!, q, slot, o.size, bed.rxOffset);
    let seq = o.size >= 4 ? patternSeq(buf) : s.nextRecv;
    if (!o.verify) seq = s.nextRecv;
    if (wc.byteLen !== rxLen) c.corrupted++;
    else if (seen) {
      // UC/UD with verify: a message may come late (reordered) or twice; each counts once
      const got = seen[q]!;
      if (seq >= n) c.corrupted++;
      else if (got[seq]) c.duplicated++;
      else if (checkPattern(buf, key(q, seq)) < 0) {
        got[seq] = 1;
        c.verified++;
      } else c.corrupted++;
    } else if (seq < s.nextRecv) c.duplicated++;
    else {
      if (seq > s.nextRecv) c.lost += seq - s.nextRecv;
      s.nextRecv = seq + 1;
      if (o.verify) {
        if (checkPattern(buf, key(q, seq)) < 0) c.verified++;
        else c.corrupted++;
      }
    }
    if (!s.failed) postRecv(q, slot);
  };

  // UC write_bw with verify. A WRITE's send completion says nothing about its arrival, and
  // message m + slots overwrites m's slot; but UC places messages in PSN order, so once any
  // later message has begun to land, m has all it will ever get. After every event, each QP's
  // oldest open message is checked: whole -> verified; a later one landed -> lost.
  const expected: Uint8Array[] = [];
  const expectedSeq: number[] = [];
  const piece = Math.min(o.size, o.mtu);
  const whole = (q: number, m: number): boolean => {
    const v = view(to!, q, m % slots);
    const e = (expected[q] ??= new Uint8Array(o.size));
    if (expectedSeq[q] !== m) {
      fillPattern(e, key(q, m));
      expectedSeq[q] = m;
    }
    // the last bytes land last: a cheap test before the whole message
    for (let i = o.size - 1; i >= Math.max(0, o.size - 8); i--) if (v[i] !== e[i]) return false;
    return checkPattern(v, key(q, m)) < 0;
  };
  /** whether message k, or a later one of its slot, has begun to land (its first packet is there) */
  const landed = (q: number, k: number): boolean => {
    const v = view(to!, q, k % slots, piece);
    const h = patternSeq(v);
    return h >= k && h < st[q]!.posted && (h - k) % slots === 0 && checkPattern(v, key(q, h)) < 0;
  };
  const resolveUc = (final: boolean) => {
    for (let q = 0; q < o.qps; q++) {
      const s = st[q]!;
      // at the end, a message posted but never completed is already counted lost by its send
      while (s.check < (final ? s.completed : s.posted)) {
        const m = s.check;
        if (whole(q, m)) {
          c.verified++;
          s.check++;
          continue;
        }
        let later = final;
        for (let k = m + 1; !later && k < s.posted && k <= m + slots; k++) later = landed(q, k);
        if (!later) break;
        c.lost++;
        s.check++;
      }
    }
  };

  return {
    start() {
      wall0 = r.wallNow();
      sim0 = r.virtualNow;
      if (recvSide) for (let q = 0; q < o.qps; q++) for (let k = 0; k < slots; k++) postRecv(q, k);
      for (let q = 0; q < o.qps; q++) for (let k = 0; k < Math.min(slots, n); k++) post(q);
    },
    poll() {
      // after every simulated event: nothing allocated (the CQ reuses one completion object)
      from.sendCq.pollEach(Infinity, onSend);
      if (recvSide) to!.recvCq.pollEach(Infinity, onRecv);
      if (ucWrites) resolveUc(false);
    },
    finished: () => pending === 0 && st.every((s) => s.completed >= s.posted),
    progress: () => timed,
    settle(stalled) {
      for (const s of st) {
        if (s.completed < s.posted) c.lost += s.posted - s.completed;
        if (s.failed || stalled) c.lost += n - s.posted; // never posted: the QP failed, or the bed stalled
        if (recvSide && !s.failed && s.nextRecv < s.completed && !seen) c.lost += s.completed - s.nextRecv;
      }
      if (seen) for (const got of seen) c.lost += got.length - got.reduce((a, x) => a + x, 0);
      if (ucWrites) {
        resolveUc(true);
        ucLeftovers(o, bed, to!, st, c, view, key);
      }
      if (atomic && o.verify && to) {
        // the counter after the last op
        for (let q = 0; q < o.qps; q++) {
          const s = st[q]!;
          if (s.failed) continue;
          const got = u64le(view(to, q, 0, ATOMIC_SIZE));
          const want = o.atomicType === "FETCH_AND_ADD" ? s.expect : casValue(o, q + keyQp, s.completed);
          if (got !== want) c.corrupted++;
        }
      }
    },
    times: () => ({ wallDone: wallTimes.subarray(0, timed), simDone: simTimes.subarray(0, timed), wall0, sim0 }),
  };
}

/**
 * The receiving end of a SEND stream whose sender is in the other process (two-process
 * send_bw; with -b both ends are one): keeps a receive posted in every slot of the region at
 * `base` and counts what arrives.
 */
function sendReceiver(side: PerfSide, o: ResolvedPerfOptions, bed: PerfBed, base: number, c: PerfCounts) {
  let received = 0;
  const postRecv = (q: number, slot: number) =>
    side.qps[q]!.postRecv({ wrId: BigInt(slot), sgList: o.size > 0 ? [side.mrs[q]!.sge(base + slotOffset(bed, slot), o.size)] : [] });
  for (let q = 0; q < o.qps; q++) for (let k = 0; k < bed.slots; k++) postRecv(q, k);
  return {
    get received() {
      return received;
    },
    /** handles one receive completion; true when it was a message */
    onRecv(wc: WorkCompletion): boolean {
      if (!countStatus(c, wc)) return false;
      if (wc.byteLen !== o.size) c.corrupted++;
      received++;
      postRecv(side.index.get(wc.qpNum) ?? 0, Number(wc.wrId));
      return true;
    },
  };
}

/**
 * Runs the bandwidth streams this process posts: the client's (and with -b on the simulated
 * wire the server's too); with -b over a real link, also receives the server's SENDs. Returns
 * the completion times of each stream, the client's first.
 */
async function runBw(r: Runner, o: ResolvedPerfOptions, bed: PerfBed): Promise<BwTimes[]> {
  const { client, server } = bed;
  const shape: PerfShape = { slots: bed.slots, slotBytes: bed.slotBytes, places: bed.places, qkey: bed.qkey };
  const streams = [bwStream(r, o, bed, { from: client, to: server, remote: bed.remote, shape })];
  if (o.bidirectional && server) streams.push(bwStream(r, o, bed, { from: server, to: client, remote: remoteMrs(client), shape: serverDirectionShape(bed, o) }));
  // -b over a real link: the server's SENDs land here, in region 1
  const rx = o.bidirectional && !server && o.test === "send_bw" ? sendReceiver(client, o, bed, bed.places * bed.slotBytes, r.counts) : undefined;
  const expectRx = o.iterations * o.qps;
  const onRx = (wc: WorkCompletion) => void rx!.onRecv(wc);
  const poll = () => {
    for (let i = 0; i < streams.length; i++) streams[i]!.poll();
    if (rx) client.recvCq.pollEach(Infinity, onRx);
  };
  r.start();
  for (const s of streams) s.start();
  poll();
  const progress = () => streams.reduce((a, s) => a + s.progress(), 0) + (rx?.received ?? 0);
  const total = o.iterations * o.qps * (streams.length + (rx ? 1 : 0));
  // asked after every simulated event: a plain loop, no closure per call
  const done = () => {
    for (let i = 0; i < streams.length; i++) if (!streams[i]!.finished()) return false;
    return !rx || rx.received >= expectRx;
  };
  await r.drive(done, poll, progress, total);
  // UC/UD: the last messages may still be on the wire when their sends completed
  if (o.connection !== "RC") await r.drive(() => false, poll, progress, total);
  poll();
  if (rx && rx.received < expectRx) r.counts.lost += expectRx - rx.received;
  for (const s of streams) s.settle(r.stalled);
  return streams.map((s) => s.times());
}

/**
 * UC write_bw with verify, once the wire is idle: every MTU-sized piece of a slot must be that
 * piece of one of the messages written there, or zeros if none arrived; a piece from no message
 * at all is corrupted (which messages arrived whole was counted as they landed).
 */
function ucLeftovers(
  o: ResolvedPerfOptions, bed: PerfBed, to: PerfSide, st: QpState[], c: PerfCounts,
  view: (side: PerfSide, q: number, slot: number) => Uint8Array, key: (q: number, seq: number) => { seed: number; qp: number; seq: number },
): void {
  const scratch = new Uint8Array(o.size);
  for (let q = 0; q < o.qps; q++) {
    const posted = st[q]!.posted;
    for (let slot = 0; slot < Math.min(bed.slots, posted); slot++) {
      const v = view(to, q, slot);
      const last = slot + Math.floor((posted - 1 - slot) / bed.slots) * bed.slots;
      for (let off = 0; off < o.size; off += o.mtu) {
        const piece = v.subarray(off, Math.min(o.size, off + o.mtu));
        let found = piece.every((x) => x === 0);
        for (let seq = last, k = 0; seq >= 0 && k < 64 && !found; seq -= bed.slots, k++) {
          fillPattern(scratch, key(q, seq));
          found = piece.every((x, i) => x === scratch[off + i]);
        }
        if (!found) {
          c.corrupted++;
          break;
        }
      }
    }
  }
}

async function runLat(r: Runner, o: ResolvedPerfOptions, bed: PerfBed): Promise<{ wall: number[]; sim: number[] }> {
  const { client } = bed;
  const server = bed.server;
  if (!server) return runLatRemote(r, o, bed);
  const c = r.counts;
  const n = o.iterations;
  const wallS: number[] = [];
  const simS: number[] = [];
  const send = o.test === "send_lat";
  const write = o.test === "write_lat";
  const atomic = o.test === "atomic_lat";
  // read_lat and atomic_lat: the client's own completion ends an iteration (the server only serves)
  const oneSided = readsResponses(o.test);
  /** atomic_lat, FETCH_AND_ADD: the server's counter before the next operation */
  let counter = 0n;
  const size = o.size;
  // send_lat: receives on both sides; slot 0 of each MR carries the message
  const rxLen = size + bed.rxOffset;
  const postRecv = (side: PerfSide) => side.qps[0]!.postRecv({ wrId: 0n, sgList: rxLen > 0 ? [side.mrs[0]!.sge(0, rxLen)] : [] });
  if (send) for (let k = 0; k < 4; k++) (postRecv(client), postRecv(server));
  let failed = false;
  let seq = 0;
  let t0w = 0;
  let t0s = 0;
  /** where the iteration is: 0 waiting for the server, 1 waiting for the client, 2 done */
  let phase = 0;
  let outstanding = 0; // send WRs not yet completed, both sides
  const tail = new Uint8Array(Math.min(8, Math.max(size, 1)));
  const expectTail = new Uint8Array(size);

  const key = (qp: number) => ({ seed: o.seed, qp, seq });
  const fill = (side: PerfSide, qp: number) => o.verify || write ? fillPattern(slotView(side, 0, bed, 0, size), key(qp)) : undefined;
  const check = (side: PerfSide, qp: number, rxOffset = 0) => {
    if (!o.verify) return;
    if (checkPattern(slotView(side, 0, bed, 0, size, rxOffset), key(qp)) < 0) c.verified++;
    else c.corrupted++;
  };
  // what an atomic returns: the counter before it (FETCH_AND_ADD: the operands so far; CMP_AND_SWAP:
  // the value the previous operation swapped in, which this one compares with)
  const checkAtomic = () => {
    let want: bigint;
    if (o.atomicType === "FETCH_AND_ADD") {
      want = counter;
      counter = BigInt.asUintN(64, counter + atomicOperand(o.seed, 0, seq));
    } else want = casValue(o, 0, seq);
    if (!o.verify) return;
    if (u64le(slotView(client, 0, bed, 0, ATOMIC_SIZE)) === want) c.verified++;
    else c.corrupted++;
  };
  const postFrom = (from: PerfSide, to: PerfSide, _qp: number) => {
    from.qps[0]!.postSend(perfWr(o, from, { addr: to.mrs[0]!.addr, rkey: to.mrs[0]!.rkey }, bed, 0, seq));
    outstanding++;
  };
  const begin = () => {
    t0w = r.wallNow();
    t0s = r.virtualNow;
    phase = 0;
    if (o.test === "read_lat") fill(server, 1);
    else if (!atomic) fill(client, 0);
    if (write) {
      fillPattern(expectTail, key(0));
      tail.set(expectTail.subarray(size - tail.length));
    }
    postFrom(client, server, 0);
  };
  const finish = () => {
    wallS.push(r.wallNow() - t0w);
    simS.push(r.virtualNow - t0s);
    seq++;
    if (seq < n) begin();
    else phase = 2;
  };
  const arrived = (side: PerfSide) => {
    const v = slotView(side, 0, bed, 0, size);
    for (let i = 0; i < tail.length; i++) if (v[size - tail.length + i] !== tail[i]) return false;
    return true;
  };
  const onRecv = (side: PerfSide, wc: WorkCompletion) => {
    if (!r.status(wc)) return (failed = true);
    if (wc.byteLen !== rxLen) c.corrupted++;
    else if (side === server && phase === 0) {
      check(server, 0, bed.rxOffset);
      postRecv(server);
      phase = 1;
      fill(server, 1);
      postFrom(server, client, 1);
    } else if (side === client && phase === 1) {
      check(client, 1, bed.rxOffset);
      postRecv(client);
      finish();
    } else c.duplicated++;
    return true;
  };
  const poll = () => {
    for (const side of [client, server]) {
      for (const wc of side.sendCq.poll(16)) {
        outstanding--;
        if (!r.status(wc)) failed = true;
        else if (oneSided && side === client) {
          if (atomic) checkAtomic();
          else check(client, 1);
          finish();
        }
      }
      if (send) for (const wc of side.recvCq.poll(16)) onRecv(side, wc);
    }
    if (write && !failed) {
      if (phase === 0 && arrived(server)) {
        check(server, 0);
        phase = 1;
        fillPattern(expectTail, key(1));
        fill(server, 1);
        tail.set(expectTail.subarray(size - tail.length));
        postFrom(server, client, 1);
      } else if (phase === 1 && arrived(client)) {
        check(client, 1);
        finish();
      }
    }
  };
  r.start();
  begin();
  poll();
  await r.drive(() => failed || (phase === 2 && outstanding === 0), poll, () => seq, n);
  poll();
  if (seq < n) c.lost += n - seq;
  // atomic_lat: the server's counter after the last operation
  if (atomic && o.verify && !failed) {
    const want = o.atomicType === "FETCH_AND_ADD" ? counter : casValue(o, 0, seq);
    if (u64le(slotView(server, 0, bed, 0, ATOMIC_SIZE)) !== want) c.corrupted++;
  }
  return { wall: wallS, sim: simS };
}

/**
 * Latency with the server in another process (servePerfOn answers): send_lat waits for the
 * server's SEND back, read_lat and atomic_lat for their own READ or atomic; write_lat marks the last byte of its WRITE
 * with the iteration (1..255, then again) and waits for the server to write that byte back
 * with its top bit flipped.
 */
async function runLatRemote(r: Runner, o: ResolvedPerfOptions, bed: PerfBed): Promise<{ wall: number[]; sim: number[] }> {
  const c = r.counts;
  const s = bed.client;
  const n = o.iterations;
  const wall: number[] = [];
  const qp = s.qps[0]!;
  const slot0 = () => slotView(s, 0, bed, 0, Math.max(o.size, 1));
  const postRecv = () => qp.postRecv({ wrId: 0n, sgList: o.size > 0 ? [s.mrs[0]!.sge(0, o.size)] : [] });
  if (o.test === "send_lat") for (let k = 0; k < 4; k++) postRecv();
  let seq = 0;
  let answered = false;
  let failed = false;
  let mark = 0;
  const poll = () => {
    for (const wc of s.sendCq.poll(16)) {
      if (!r.status(wc)) failed = true;
      else if (readsResponses(o.test)) answered = true;
    }
    if (o.test === "send_lat") {
      for (const wc of s.recvCq.poll(16)) {
        if (!r.status(wc)) failed = true;
        else {
          if (wc.opcode === WcOpcode.RECV) postRecv();
          if (wc.byteLen !== o.size) c.corrupted++;
          answered = true;
        }
      }
    }
    if (o.test === "write_lat" && slot0()[o.size - 1] === (mark ^ 0x80)) answered = true;
  };
  r.start();
  for (; seq < n; seq++) {
    const t0 = r.wallNow();
    answered = false;
    mark = (seq % 255) + 1;
    if (o.test === "write_lat") slot0()[o.size - 1] = mark;
    qp.postSend(perfWr(o, s, bed.remote[0]!, bed, 0, seq));
    poll();
    if (!(await r.drive(() => answered || failed, poll, () => seq, n)) || failed) break;
    wall.push(r.wallNow() - t0);
  }
  poll();
  if (seq < n) c.lost += n - seq;
  return { wall, sim: [] };
}

/**
 * The server's part when it runs in its own process (bed.client is this process's side): posts
 * the receives of send tests and answers the client — send_lat with a SEND per receive, write_lat
 * by writing back the client's mark (runLatRemote) — until `until()` holds. With -b it also runs
 * its own bandwidth stream into region 1 of the client's MRs, until that is done too, and returns
 * its figures (`bw`). Returns what it saw.
 */
export async function servePerfOn(
  bed: PerfBed, options: ResolvedPerfOptions, until: () => boolean,
): Promise<{ received: number; counts: PerfCounts; bw?: BwFigures }> {
  const o = options;
  const s = bed.client;
  const bidir = o.bidirectional && isBwTest(o.test);
  const runner = bidir ? new Runner(o, bed, {}) : undefined;
  const c = runner?.counts ?? perfCounts();
  let seq = 0;
  const send = o.test === "send_bw" || o.test === "send_lat";
  const rx = send ? sendReceiver(s, o, bed, 0, c) : undefined;
  let writes = 0;
  const answer = () => s.qps[0]!.postSend(perfWr(o, s, bed.remote[0]!, bed, 0, seq++));
  // the client's WRITE lands in slot 0, its last byte counting iterations
  const last = () => slotView(s, 0, bed, 0, Math.max(o.size, 1));
  const stream = runner ? bwStream(runner, o, bed, { from: s, remote: bed.remote, shape: serverDirectionShape(bed, o) }) : undefined;
  const poll = () => {
    if (rx) {
      for (const wc of s.recvCq.poll(64)) if (rx.onRecv(wc) && o.test === "send_lat") answer();
    } else if (o.test === "write_lat") {
      const v = last();
      if (v[o.size - 1] === (seq % 255) + 1) {
        v[o.size - 1]! ^= 0x80;
        writes++;
        answer();
      }
    }
    if (stream) stream.poll();
    else for (const wc of s.sendCq.poll(64)) countStatus(c, wc);
  };
  const received = () => (rx?.received ?? 0) + writes;
  let bw: BwFigures | undefined;
  if (runner && stream) {
    runner.start();
    stream.start();
    poll();
    // the server never stalls on its own: it waits for the client to say it is done
    await runner.drive(() => until() && stream.finished(), poll, () => received() + stream.progress(), 0);
    poll();
    stream.settle(runner.stalled);
    const t = stream.times();
    bw = bwFigures(o.size, t.wall0, t.wallDone, Math.max(o.txDepth * o.qps, Math.ceil(t.wallDone.length / 20)));
  } else {
    await bed.drive(until, poll, async () => {}, () => received() + seq);
    poll();
  }
  return { received: received(), counts: c, ...(bw ? { bw } : {}) };
}

/** perftest's -b row: each figure is the two directions' sum (print_full_bw_report with the remote's report). */
export function sumBw(a: BwFigures, b: BwFigures): BwFigures {
  return {
    bw_peak_mbps: a.bw_peak_mbps + b.bw_peak_mbps,
    bw_avg_mbps: a.bw_avg_mbps + b.bw_avg_mbps,
    msg_rate_mpps: a.msg_rate_mpps + b.msg_rate_mpps,
    duration_us: Math.max(a.duration_us, b.duration_us),
  };
}

/** Runs one test on a fresh pair of devices over the simulated wire. */
export async function runPerf(module: WebAssembly.Module, options: PerfOptions, hooks: PerfHooks = {}): Promise<PerfResult> {
  const o = resolvePerfOptions(options);
  const bed = await createPerfBed(module, o);
  return runPerfOn(bed, o, hooks);
}

/**
 * Runs one test from the client side of a bed. `peer`, when given, is asked once the client
 * has finished for what the server saw in its own process (folded into the counts: a send_bw
 * message it did not receive is lost, one it received damaged corrupted).
 */
export async function runPerfOn(
  bed: PerfBed,
  o: ResolvedPerfOptions,
  hooks: PerfHooks = {},
  peer?: (mine: BwFigures | LatFigures) => Promise<{ received?: number; corrupted?: number; bw?: BwFigures }>,
): Promise<PerfResult> {
  const r = new Runner(o, bed, hooks);
  const wallStart = performance.now();
  let wall: BwFigures | LatFigures;
  let sim: BwFigures | LatFigures | null;
  let messages: number;
  let eachWay: { wall: BwFigures[]; sim: BwFigures[] } | undefined;
  if (isBwTest(o.test)) {
    const times = await runBw(r, o, bed);
    const window = (t: BwTimes) => Math.max(o.txDepth * o.qps, Math.ceil(t.wallDone.length / 20));
    const walls = times.map((t) => bwFigures(o.size, t.wall0, t.wallDone, window(t)));
    const sims = times.map((t) => bwFigures(o.size, t.sim0, t.simDone, window(t)));
    wall = walls.reduce(sumBw);
    const s = sims.reduce(sumBw);
    sim = s.duration_us > 0 ? s : null;
    messages = o.iterations * o.qps * (o.bidirectional ? 2 : 1);
    if (o.bidirectional) eachWay = { wall: walls, sim: sims };
  } else {
    const t = await runLat(r, o, bed);
    // perftest's rtt_factor: a READ's or an atomic's completion is the round trip; SEND and WRITE halve a ping-pong
    const factor = readsResponses(o.test) ? 1 : 2;
    wall = latFigures(t.wall, factor);
    sim = t.sim.some((x) => x > 0) ? latFigures(t.sim, factor) : null;
    messages = o.iterations * (readsResponses(o.test) || !bed.server ? 1 : 2);
  }
  const c = r.counts;
  if (peer) {
    const seen = await peer(wall);
    // what the client sent the server (with -b the server's own messages were counted here)
    const sent = o.iterations * o.qps;
    if (o.test === "send_bw" && typeof seen.received === "number" && seen.received < sent) c.lost = Math.max(c.lost, sent - seen.received);
    if (typeof seen.corrupted === "number") c.corrupted += seen.corrupted;
    if (o.bidirectional && isBwTest(o.test)) {
      // perftest -b: the row is this side's figures plus the peer's
      const theirs = seen.bw ?? { bw_peak_mbps: 0, bw_avg_mbps: 0, msg_rate_mpps: 0, duration_us: 0 };
      if (!seen.bw) c.lost += sent; // the server's stream did not report: nothing says it arrived
      eachWay = { wall: [wall as BwFigures, theirs], sim: [] };
      wall = sumBw(wall as BwFigures, theirs);
    }
  }
  const wallMs = performance.now() - wallStart;
  const counters = bed.devices().map((d) => d.queryCounters());
  const sum = (k: string) => counters.reduce((a, x) => a + (x[k] ?? 0), 0);
  const clock: "wall" | "virtual" = faultFree(o.faults) || sim === null ? "wall" : "virtual";
  const headline = clock === "wall" ? wall : sim!;
  // UC/UD may lose and duplicate messages (counted and reported, not failures), but with verify
  // a run is ok only when every message it sent arrived and was checked: bytes nobody verified
  // are not "ok" (the report says how many were verified of how many sent)
  const ok = o.connection !== "RC"
    ? c.corrupted === 0 && c.errors === 0 && (!o.verify || c.verified === messages)
    : c.lost === 0 && c.duplicated === 0 && c.corrupted === 0 && c.errors === 0 && (!o.verify || c.verified === messages);
  const result: PerfResult = {
    test: o.test,
    connection: o.connection,
    bytes: o.size,
    iterations: o.iterations,
    qps: o.qps,
    mtu: o.mtu,
    tx_depth: o.txDepth,
    seed: o.seed,
    verify: o.verify,
    faults: o.faults,
    clock,
    bidirectional: o.bidirectional,
    messages,
    ...headline,
    ...c,
    wall,
    sim,
    retransmissions: sum("completer_retry_err"),
    rnr_naks: sum("rcvd_rnr_err"),
    seq_naks: sum("rcvd_seq_err"),
    packets_sent: sum("sent_pkts"),
    wire: bed.wireStats(),
    virtual_us: bed.virtualNow() ?? 0,
    wall_ms: wallMs,
    ok,
  };
  if (eachWay) result.each_way = clock === "wall" || eachWay.sim.length === 0 ? eachWay.wall : eachWay.sim;
  if (bed.link) result.link = bed.link();
  return result;
}
