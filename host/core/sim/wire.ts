// The simulated wire: an in-memory link between any number of endpoints with a
// virtual clock and seeded, reproducible faults (loss, duplication, reordering,
// corruption, delay, a rate limit). Like smoltcp's FaultInjector, it is a
// device stacked on the link; every packet and its fate is recorded.

import { Prng } from "./prng.js";
import { SimClock } from "./clock.js";
import { endpointKey, type Datagram } from "../net/datagram.js";

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

export interface TraceRecord {
  /** Virtual time the datagram was sent (µs). */
  sentAt: number;
  /** Virtual time it arrived, when it did (µs). */
  deliveredAt?: number;
  fate: Fate;
  /** The payload has a flipped bit (also set on a duplicate of a corrupted datagram). */
  corrupted?: boolean;
  datagram: Datagram;
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

export interface SimWireOptions {
  seed?: number;
  faults?: SimFaults;
  clock?: SimClock;
  /** Keep a trace of every datagram and its fate (for pcap and tests). */
  trace?: boolean;
}

export class SimWire {
  readonly clock: SimClock;
  readonly stats: SimStats = { sent: 0, delivered: 0, lost: 0, duplicated: 0, corrupted: 0, reordered: 0, unroutable: 0 };
  readonly trace: TraceRecord[] | undefined;
  faults: SimFaults;
  private rng: Prng;
  private endpoints = new Map<string, Receiver>();
  /** Multicast groups: address:port -> the receivers that joined it. */
  private groups = new Map<string, Set<Receiver>>();
  /** Virtual time at which the link is free again (rate limit). */
  private linkFreeAt = 0;

  constructor(opts: SimWireOptions = {}) {
    this.clock = opts.clock ?? new SimClock();
    this.rng = new Prng(opts.seed ?? 1);
    this.faults = { ...opts.faults };
    this.trace = opts.trace ? [] : undefined;
    validateFaults(this.faults);
  }

  /** Attaches a receiver for datagrams addressed to address:port. */
  attach(address: string, port: number, receiver: Receiver): () => void {
    const key = endpointKey(address, port);
    if (this.endpoints.has(key)) throw new Error(`simwire: ${key} is already attached`);
    this.endpoints.set(key, receiver);
    return () => this.endpoints.delete(key);
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
    return () => {
      s!.delete(receiver);
      if (s!.size === 0 && this.groups.get(key) === s) this.groups.delete(key);
    };
  }

  /**
   * Sends one datagram. The wire takes its own copy of the payload, so the
   * caller may reuse its buffer as soon as send returns.
   */
  send(d: Datagram): void {
    this.sendOwned({ ...d, payload: d.payload.slice() });
  }

  /** Sends a datagram whose payload the wire may keep (the caller never touches it again): no copy. */
  sendOwned(copy: Datagram): void {
    const d = copy;
    const f = this.faults;
    const now = this.clock.now;
    this.stats.sent++;
    const rec = this.record(now, "delivered", copy);

    const members = this.groups.get(endpointKey(d.dst, d.dstPort));
    const receiver: Receiver | undefined = members?.size
      ? (g: Datagram) => {
          for (const r of [...members]) r({ ...g, payload: g.payload.slice() });
        }
      : this.endpoints.get(endpointKey(d.dst, d.dstPort));
    if (!receiver) {
      this.stats.unroutable++;
      if (rec) rec.fate = "unroutable";
      return;
    }
    if (this.rng.chance(f.loss ?? 0)) {
      this.stats.lost++;
      if (rec) rec.fate = "lost";
      return;
    }
    let departs = now;
    if (f.rateBps && f.rateBps > 0) {
      const serialization = ((copy.payload.length + 28) * 8 * 1e6) / f.rateBps;
      departs = Math.max(now, this.linkFreeAt) + serialization;
      this.linkFreeAt = departs;
    }
    let arrives = departs + (f.delayUs ?? 0);
    if (this.rng.chance(f.corrupt ?? 0) && copy.payload.length > 0) {
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
    this.clock.schedule(arrives, () => this.deliver(receiver, copy, rec));
    if (this.rng.chance(f.dup ?? 0)) {
      this.stats.duplicated++;
      const dupCopy: Datagram = { ...copy, payload: copy.payload.slice() };
      const dupRec = this.record(now, "duplicate", dupCopy);
      if (dupRec && rec?.corrupted) dupRec.corrupted = true;
      this.clock.schedule(arrives + 1 + this.rng.below(10), () => this.deliver(receiver, dupCopy, dupRec));
    }
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
