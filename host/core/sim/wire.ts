// The simulated wire: an in-memory link between any number of endpoints with a
// virtual clock and seeded, reproducible faults (loss, duplication, reordering,
// corruption, delay, a rate limit). Like smoltcp's FaultInjector, it is a
// device stacked on the link; every packet and its fate is recorded.

import { Prng } from "./prng.js";
import { SimClock } from "./clock.js";
import { endpointKey, type Datagram, type DatagramFacts } from "../net/datagram.js";
import { copyPieces } from "../net/bytes.js";
import type { SimInbox } from "./inbox.js";

/** Payload buffers kept for reuse, per length (the few sizes a flow uses), at most this many each. */
const POOL_PER_LENGTH = 256;

export interface SimFaults {
  /** Probability that a datagram is lost. */
  loss?: number;
  /** Probability that a datagram is delivered twice. */
  dup?: number;
  /** Probability that a datagram is held back so that later ones overtake it. */
  reorder?: number;
  /** Probability that one bit of the UDP payload is flipped. */
  corrupt?: number;
  /** One-way propagation delay in µs. */
  delayUs?: number;
  /** Extra delay in µs for a reordered datagram (default 4 × delay, at least 20 µs). */
  reorderDelayUs?: number;
  /** Link rate in bits per second; datagrams queue behind each other. 0 = unlimited. */
  rateBps?: number;
}

export type Fate = "delivered" | "lost" | "duplicate" | "corrupted" | "reordered" | "unroutable";

/**
 * A scripted fault: the `nth` datagram (1-based) that `match` accepts, and the
 * `count - 1` matching ones after it, are dropped or corrupted, whatever the
 * random faults would have done. For lessons and tests ("lose the 2nd data
 * packet"); the datagram's trace record says `reason: "scripted"`.
 */
export interface ScriptedFault {
  /** Which datagrams this rule counts (it sees each datagram before any fault). */
  match: (d: Datagram) => boolean;
  /** The first matching datagram hit, 1-based. */
  nth: number;
  /** How many matching datagrams from the nth on are hit (default 1; Infinity: all of them). */
  count?: number;
  /** "drop" (default) or "corrupt" (one bit of the last payload byte flipped: the ICRC no longer matches). */
  action?: "drop" | "corrupt";
  /** A label for the trace (e.g. "2nd data packet"). */
  label?: string;
}

export interface TraceRecord {
  /** Virtual time the datagram was sent (µs). */
  sentAt: number;
  /** Virtual time it arrived, when it did (µs). */
  deliveredAt?: number;
  fate: Fate;
  /** The payload has a flipped bit (also set on a duplicate of a corrupted datagram). */
  corrupted?: boolean;
  datagram: Datagram;
  /** Why the fate is not delivered when a script chose it: "scripted" (random faults leave it unset). */
  reason?: "scripted";
  /** The scripted fault's label, when it has one. */
  label?: string;
}

export interface SimStats {
  sent: number;
  delivered: number;
  lost: number;
  duplicated: number;
  corrupted: number;
  reordered: number;
  unroutable: number;
}

export type Receiver = (datagram: Datagram) => void;

/**
 * Takes several datagrams at once: `datagrams[0 .. count - 1]`, in the order they were sent, each
 * a slot of the receiver's inbox (attach's `batch`); it must not keep the array or the datagrams.
 * Returns how many it took (at least one): the rest come again next, before any other event (the
 * caller reacts to what the first ones did first, as with one event per datagram).
 */
export type BatchReceiver = (datagrams: readonly Datagram[], count: number) => number;

/** Where datagrams to one address:port go, worked out once (routes are forgotten when the endpoints change). */
interface Route {
  port: number;
  receiver: Receiver | undefined;
  members: Set<Receiver> | undefined;
  /** the receiver's slots in its device's memory, when it offers them (attach's `inbox`) */
  inbox: SimInbox | undefined;
  /** the receiver's batch entry, when it offers one (attach's `batch`) */
  batch: BatchReceiver | undefined;
}

/** A datagram on its way: what its delivery event needs (kept for reuse once delivered). */
interface Delivery {
  receiver: Receiver;
  d: Datagram;
  rec: TraceRecord | undefined;
  /** the payload may carry a later datagram once delivered */
  recycle: boolean;
  /** the payload is this inbox's slot: back to it once delivered */
  inbox: SimInbox | undefined;
  /**
   * A batch (count > 0): `d` unused, these slot datagrams of `inbox` go to `batchTo` in one call.
   * The array stays with the record for its next batch.
   */
  batch: Datagram[];
  count: number;
  batchTo: BatchReceiver | undefined;
}

/** Delivery records kept for reuse. */
const SPARE_DELIVERIES = 1024;

export interface SimWireOptions {
  seed?: number;
  faults?: SimFaults;
  clock?: SimClock;
  /** Keep a trace of every datagram and its fate (for pcap and tests). */
  trace?: boolean;
  /**
   * Deliver datagrams in batches to receivers that take them (attach's `batch`; default true):
   * false gives every datagram its own event (for a caller that looks at memory after each).
   */
  batching?: boolean;
}

export class SimWire {
  readonly clock: SimClock;
  readonly stats: SimStats = { sent: 0, delivered: 0, lost: 0, duplicated: 0, corrupted: 0, reordered: 0, unroutable: 0 };
  readonly trace: TraceRecord[] | undefined;
  faults: SimFaults;
  /** Receive batches on (SimWireOptions.batching); may be changed at any time. */
  batching: boolean;
  private rng: Prng;
  private endpoints = new Map<string, Receiver>();
  /** Receive slots offered by receivers (attach's `inbox`). */
  private inboxes = new Map<Receiver, SimInbox>();
  /** Multicast groups: address:port -> the receivers that joined it. */
  private groups = new Map<string, Set<Receiver>>();
  /** Virtual time at which the link is free again (rate limit). */
  private linkFreeAt = 0;
  private scripts: { rule: ScriptedFault; seen: number }[] = [];
  /** Receivers that copy what they are handed before returning (attach's `copies`). */
  private copying = new WeakSet<Receiver>();
  /** Delivered datagrams of sendPieces / take, by payload length, for the next datagram of that length. */
  private pool = new Map<number, Datagram[]>();
  /** Routes by destination address (one port each; another port is looked up each time). */
  private routes = new Map<string, Route>();
  /** The route looked up last and its address: a sender's burst, and each datagram's takeFor then send, ask for it again. */
  private lastRoute: Route | undefined;
  private lastAddress = "";
  private spareDeliveries: Delivery[] = [];
  /** Batch entries offered by receivers (attach's `batch`). */
  private batchers = new Map<Receiver, BatchReceiver>();
  /**
   * The batch delivery scheduled last, while nothing else was scheduled after it and it has not
   * run: a later datagram for the same receiver arriving at the same time joins it (it would
   * have run right after it anyway).
   */
  private open: Delivery | undefined;
  private openAt = 0;
  /** the clock's `scheduled` count right after the open batch was scheduled */
  private openMark = -1;
  private readonly delivery = (x: Delivery): void => {
    if (x.count > 0) {
      this.deliverBatch(x);
      return;
    }
    this.deliver(x.receiver, x.d, x.rec);
    if (x.inbox) x.inbox.release(x.d);
    else if (x.recycle) this.recycle(x.d);
    x.d = undefined as unknown as Datagram;
    x.rec = undefined;
    x.inbox = undefined;
    if (this.spareDeliveries.length < SPARE_DELIVERIES) this.spareDeliveries.push(x);
  };

  constructor(opts: SimWireOptions = {}) {
    this.clock = opts.clock ?? new SimClock();
    this.rng = new Prng(opts.seed ?? 1);
    this.faults = { ...opts.faults };
    this.trace = opts.trace ? [] : undefined;
    this.batching = opts.batching ?? true;
    validateFaults(this.faults);
  }

  /**
   * Adds a scripted fault (see ScriptedFault); returns a function that removes it.
   * Rules are checked in the order they were added; the first whose turn it is wins.
   */
  script(rule: ScriptedFault): () => void {
    const count = rule.count ?? 1;
    if (!Number.isInteger(rule.nth) || rule.nth < 1) throw new RangeError(`simwire: script nth must be an integer >= 1, got ${rule.nth}`);
    if (!(count === Infinity || (Number.isInteger(count) && count >= 1))) throw new RangeError(`simwire: script count must be an integer >= 1 or Infinity, got ${count}`);
    if (rule.action !== undefined && rule.action !== "drop" && rule.action !== "corrupt") throw new RangeError(`simwire: script action must be "drop" or "corrupt", got ${String(rule.action)}`);
    if (typeof rule.match !== "function") throw new TypeError("simwire: script match must be a function");
    const entry = { rule, seen: 0 };
    this.scripts.push(entry);
    return () => {
      this.scripts = this.scripts.filter((e) => e !== entry);
    };
  }

  /** The scripted fault that hits this datagram, if any (every rule counts its matches). */
  private scripted(d: Datagram): ScriptedFault | undefined {
    let hit: ScriptedFault | undefined;
    for (const e of this.scripts) {
      if (!e.rule.match(d)) continue;
      e.seen++;
      const first = e.rule.nth;
      if (!hit && e.seen >= first && e.seen < first + (e.rule.count ?? 1)) hit = e.rule;
    }
    return hit;
  }

  /**
   * Attaches a receiver for datagrams addressed to address:port. `copies`: the receiver copies the
   * payload before it returns and keeps no reference (a device's port does), so without a trace
   * the wire may reuse the buffer for a later datagram. `inbox`: receive slots in the receiver's
   * memory (host/core/sim/inbox.ts) — without a trace, `takeFor` hands out datagrams whose payload
   * is a slot, so the wire's one copy lands where the receiver reads it in place; implies `copies`
   * (the receiver keeps no reference: the slot carries a later datagram). `batch` (with `inbox`):
   * on a wire without faults, scripts or trace, datagrams in slots that arrive at the same time
   * one after the other, with no other event between them, reach the receiver in one `batch`
   * call instead of one `receiver` call each (what a NIC's receive batch does): the same
   * datagrams, fates and counts, at the same virtual times.
   */
  attach(address: string, port: number, receiver: Receiver, opts: { copies?: boolean; inbox?: SimInbox; batch?: BatchReceiver } = {}): () => void {
    const key = endpointKey(address, port);
    if (this.endpoints.has(key)) throw new Error(`simwire: ${key} is already attached`);
    this.endpoints.set(key, receiver);
    this.forgetRoutes();
    if (opts.copies || opts.inbox) this.copying.add(receiver);
    if (opts.inbox) this.inboxes.set(receiver, opts.inbox);
    if (opts.inbox && opts.batch) this.batchers.set(receiver, opts.batch);
    return () => {
      this.forgetRoutes();
      return this.endpoints.delete(key);
    };
  }

  /**
   * Joins `receiver` to the multicast group `address`:`port`: every datagram sent
   * there reaches every member (each its own copy; loss, delay and corruption
   * apply to the datagram once, before it fans out). Returns the leave function.
   */
  join(address: string, port: number, receiver: Receiver): () => void {
    const key = endpointKey(address, port);
    let s = this.groups.get(key);
    if (!s) this.groups.set(key, (s = new Set()));
    s.add(receiver);
    this.forgetRoutes();
    return () => {
      s!.delete(receiver);
      if (s!.size === 0 && this.groups.get(key) === s) this.groups.delete(key);
      this.forgetRoutes();
    };
  }

  /** The endpoints changed: every route is worked out again. */
  private forgetRoutes(): void {
    this.routes.clear();
    this.lastRoute = undefined;
  }

  /** Where datagrams to address:port go. */
  private route(address: string, port: number): Route {
    const last = this.lastRoute;
    if (last !== undefined && address === this.lastAddress && last.port === port) return last;
    const r = this.lookUp(address, port);
    this.lastRoute = r;
    this.lastAddress = address;
    return r;
  }

  /** route() past the last route: the cache by address, else worked out from the endpoints and groups. */
  private lookUp(address: string, port: number): Route {
    const cached = this.routes.get(address);
    if (cached !== undefined && cached.port === port) return cached;
    const key = endpointKey(address, port);
    const receiver = this.endpoints.get(key);
    const r: Route = {
      port, receiver, members: this.groups.get(key), inbox: receiver && this.inboxes.get(receiver), batch: receiver && this.batchers.get(receiver),
    };
    if (cached === undefined) {
      if (this.routes.size > 4096) this.routes.clear();
      this.routes.set(address, r);
    }
    return r;
  }

  /**
   * Sends one datagram. The wire takes its own copy of the payload, so the
   * caller may reuse its buffer as soon as send returns.
   */
  send(d: Datagram): void {
    this.sendOwned({ ...d, payload: d.payload.slice() });
  }

  /**
   * Sends a datagram given as gather pieces (headers, payload, trailer: a TX descriptor's views),
   * making the wire's one copy of them; the pieces may be reused as soon as this returns. Fates,
   * faults and trace records are those of `send`.
   */
  sendPieces(facts: DatagramFacts, pieces: readonly Uint8Array[], length: number): void {
    const d = this.take(length);
    if (copyPieces(d.payload, 0, pieces) !== length) throw new RangeError(`simwire: pieces of ${length} bytes expected`);
    d.src = facts.src;
    d.dst = facts.dst;
    d.srcPort = facts.srcPort;
    d.dstPort = facts.dstPort;
    d.ipId = facts.ipId;
    d.ttl = facts.ttl;
    d.tos = facts.tos;
    d.flowLabel = facts.flowLabel;
    this.sendTaken(d);
  }

  /**
   * A datagram with a payload of `length` bytes for the caller to fill and hand to `sendTaken`
   * (its facts are stale until set). Without a trace it is one the wire delivered before.
   */
  take(length: number): Datagram {
    const list = this.trace ? undefined : this.pool.get(length);
    return (
      list?.pop() ?? {
        src: "", dst: "", srcPort: 0, dstPort: 0, ipId: undefined, ttl: undefined, tos: undefined, flowLabel: undefined, payload: new Uint8Array(length),
      }
    );
  }

  /**
   * As `take`, for a datagram to `dst`:`dstPort`: without a trace, when its receiver offers an
   * inbox with a free slot that fits, a datagram whose payload is that slot (in the receiver's
   * memory); otherwise one of the wire's own. Send it with `sendTaken`, to that same destination.
   */
  takeFor(dst: string, dstPort: number, length: number): Datagram {
    if (!this.trace) {
      const route = this.route(dst, dstPort);
      if (route.inbox && !route.members?.size) {
        const d = route.inbox.take(length);
        if (d) return d;
      }
    }
    return this.take(length);
  }

  /** Sends a datagram from `take`, filled in (as `sendPieces` does: the same fates, faults and records). */
  sendTaken(d: Datagram): void {
    this.sendOwned(d, !this.trace);
  }

  /** A datagram sendPieces / take made, back for reuse (nobody holds it any more). */
  private recycle(d: Datagram, inbox?: SimInbox): void {
    if (inbox) {
      inbox.release(d);
      return;
    }
    let list = this.pool.get(d.payload.length);
    if (!list) this.pool.set(d.payload.length, (list = []));
    if (list.length < POOL_PER_LENGTH) list.push(d);
  }

  /**
   * Sends a datagram whose payload the wire may keep (the caller never touches it again): no copy.
   * `reusable`: once the datagram is dropped, or delivered to a receiver that copies, it and its
   * payload may carry a later datagram (sendPieces / sendTaken without a trace).
   */
  sendOwned(copy: Datagram, reusable = false): void {
    const d = copy;
    const f = this.faults;
    const now = this.clock.now;
    if (reusable && this.batching && !this.trace && this.scripts.length === 0 && !f.loss && !f.dup && !f.reorder && !f.corrupt) {
      const route = this.route(d.dst, d.dstPort);
      if (route.batch && route.inbox && !route.members?.size && route.inbox.owns(copy)) {
        this.sendBatched(copy, route, now);
        return;
      }
    }
    this.stats.sent++;
    const rec = this.record(now, "delivered", copy);
    const script = this.scripts.length ? this.scripted(d) : undefined;

    const route = this.route(d.dst, d.dstPort);
    const members = route.members;
    // a datagram from takeFor whose payload is a slot of the receiver's inbox goes back to it
    const inbox = reusable && route.inbox?.owns(copy) ? route.inbox : undefined;
    const receiver: Receiver | undefined = members?.size
      ? (g: Datagram) => {
          for (const r of [...members]) r({ ...g, payload: g.payload.slice() });
        }
      : route.receiver;
    if (!receiver) {
      this.stats.unroutable++;
      if (rec) rec.fate = "unroutable";
      if (reusable) this.recycle(copy, inbox);
      return;
    }
    if (script && (script.action ?? "drop") === "drop") {
      this.stats.lost++;
      if (rec) this.mark(rec, "lost", script);
      if (reusable) this.recycle(copy, inbox);
      return;
    }
    if (script) {
      // corrupt: the last payload byte (the ICRC's, for RoCE) gets a flipped bit
      if (copy.payload.length > 0) copy.payload[copy.payload.length - 1] ^= 0x01;
      this.stats.corrupted++;
      if (rec) {
        this.mark(rec, "corrupted", script);
        rec.corrupted = true;
      }
    }
    if (this.rng.chance(f.loss ?? 0)) {
      this.stats.lost++;
      if (rec) rec.fate = "lost";
      if (reusable) this.recycle(copy, inbox);
      return;
    }
    let arrives = this.departure(copy.payload.length, now) + (f.delayUs ?? 0);
    if (this.rng.chance(f.corrupt ?? 0) && copy.payload.length > 0 && !script) {
      const bit = this.rng.below(copy.payload.length * 8);
      copy.payload[bit >> 3] ^= 1 << (bit & 7);
      this.stats.corrupted++;
      if (rec) {
        rec.fate = "corrupted";
        rec.corrupted = true;
      }
    }
    if (this.rng.chance(f.reorder ?? 0)) {
      arrives += f.reorderDelayUs ?? Math.max(20, 4 * (f.delayUs ?? 0));
      this.stats.reordered++;
      if (rec && rec.fate === "delivered") rec.fate = "reordered";
    }
    const recycle = reusable && !members?.size && this.copying.has(receiver);
    let x = this.spareDeliveries.pop();
    if (x) {
      x.receiver = receiver;
      x.d = copy;
      x.rec = rec;
      x.recycle = recycle;
      x.inbox = inbox;
    } else x = { receiver, d: copy, rec, recycle, inbox, batch: [], count: 0, batchTo: undefined };
    this.clock.scheduleWith(arrives, this.delivery, x);
    if (this.rng.chance(f.dup ?? 0)) {
      this.stats.duplicated++;
      const dupCopy: Datagram = { ...copy, payload: copy.payload.slice() };
      const dupRec = this.record(now, "duplicate", dupCopy);
      if (dupRec && rec?.corrupted) dupRec.corrupted = true;
      this.clock.schedule(arrives + 1 + this.rng.below(10), () => this.deliver(receiver, dupCopy, dupRec));
    }
  }

  /**
   * When a datagram of `len` bytes (UDP payload) sent at `now` has left: at once, or with a rate
   * limit once the link is free and its bytes (with IPv4 and UDP headers) are serialized.
   */
  private departure(len: number, now: number): number {
    const rate = this.faults.rateBps;
    if (!rate || rate <= 0) return now;
    const departs = Math.max(now, this.linkFreeAt) + ((len + 28) * 8 * 1e6) / rate;
    this.linkFreeAt = departs;
    return departs;
  }

  /**
   * sendOwned on a wire without faults, scripts or trace, for a datagram in a slot of a receiver
   * that takes batches: it joins the open batch when that is for the same receiver at the same
   * arrival time and nothing was scheduled since, else it opens a batch of its own.
   */
  private sendBatched(d: Datagram, route: Route, now: number): void {
    this.stats.sent++;
    const f = this.faults;
    const arrives = this.departure(d.payload.length, now) + (f.delayUs ?? 0);
    const clock = this.clock;
    const open = this.open;
    const receiver = route.receiver!;
    if (open !== undefined && open.receiver === receiver && this.openAt === arrives && this.openMark === clock.scheduled) {
      open.batch[open.count++] = d;
      return;
    }
    let x = this.spareDeliveries.pop();
    if (x) {
      x.receiver = receiver;
      x.rec = undefined;
      x.recycle = false;
      x.inbox = route.inbox;
    } else x = { receiver, d: undefined as unknown as Datagram, rec: undefined, recycle: false, inbox: route.inbox, batch: [], count: 0, batchTo: undefined };
    x.batch[0] = d;
    x.count = 1;
    x.batchTo = route.batch;
    clock.scheduleWith(arrives, this.delivery, x);
    this.open = x;
    this.openAt = arrives;
    this.openMark = clock.scheduled;
  }

  /**
   * A batch's delivery: handed over in one call, counted, its slots back to the inbox; what the
   * receiver did not take yet comes again next (SimClock.resume).
   */
  private deliverBatch(x: Delivery): void {
    if (this.open === x) this.open = undefined;
    const n = x.count;
    const ds = x.batch;
    const took = Math.max(1, Math.min(n, x.batchTo!(ds, n)));
    this.stats.delivered += took;
    const inbox = x.inbox!;
    for (let i = 0; i < took; i++) inbox.release(ds[i]!);
    if (took < n) {
      ds.copyWithin(0, took, n);
      for (let i = n - took; i < n; i++) ds[i] = undefined as unknown as Datagram;
      x.count = n - took;
      this.clock.resume(this.delivery, x);
      return;
    }
    for (let i = 0; i < n; i++) ds[i] = undefined as unknown as Datagram;
    x.count = 0;
    x.batchTo = undefined;
    x.inbox = undefined;
    if (this.spareDeliveries.length < SPARE_DELIVERIES) this.spareDeliveries.push(x);
  }

  private mark(rec: TraceRecord, fate: Fate, script: ScriptedFault): void {
    rec.fate = fate;
    rec.reason = "scripted";
    if (script.label !== undefined) rec.label = script.label;
  }

  private deliver(receiver: Receiver, d: Datagram, rec: TraceRecord | undefined): void {
    this.stats.delivered++;
    if (rec) rec.deliveredAt = this.clock.now;
    receiver(d);
  }

  private record(sentAt: number, fate: Fate, datagram: Datagram): TraceRecord | undefined {
    if (!this.trace) return undefined;
    const rec: TraceRecord = { sentAt, fate, datagram };
    this.trace.push(rec);
    return rec;
  }
}

function validateFaults(f: SimFaults): void {
  for (const k of ["loss", "dup", "reorder", "corrupt"] as const) {
    const v = f[k];
    if (v !== undefined && !(v >= 0 && v <= 1)) throw new RangeError(`simwire: ${k} must be a fraction from 0 to 1, got ${v}`);
  }
  for (const k of ["delayUs", "reorderDelayUs", "rateBps"] as const) {
    const v = f[k];
    if (v !== undefined && !(v >= 0 && Number.isFinite(v))) throw new RangeError(`simwire: ${k} must be a finite number >= 0, got ${v}`);
  }
}
