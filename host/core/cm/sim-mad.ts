// An in-memory fabric for MADs: every attached port is a MadTransport, MADs
// travel with a latency on the given clock, and seeded faults (loss,
// duplication, jitter) plus a targeted drop rule test the CM's timers and
// duplicate handling. Every MAD's fate is recorded, as the simulated wire does
// for packets. Deterministic for a seed.
import type { Clock } from "../link/port.js";
import { Prng } from "../sim/prng.js";
import { formatGid, parseGid } from "../net/gid.js";
import { GSI_QKEY, GSI_QPN, MAD_SIZE } from "./mad.js";
import type { MadAddress, MadTransport } from "./mad-transport.js";

export interface SimMadFaults {
  /** probability a MAD is lost */
  loss?: number;
  /** probability a MAD is delivered twice */
  duplicate?: number;
  /** one-way latency in µs (default 10) */
  latencyUs?: number;
  /** extra random delay in µs, 0..jitterUs (reorders MADs) */
  jitterUs?: number;
}

export type SimMadFate = "delivered" | "lost" | "dropped" | "duplicated" | "no_route";

export interface SimMadRecord {
  /** send time, µs */
  at: number;
  from: string;
  to: string;
  /** attribute ID and method, for reading traces */
  attrId: number;
  method: number;
  fate: SimMadFate;
  /** the MAD as sent */
  mad: Uint8Array;
}

/** Decides to drop one MAD on purpose ("lose the first REP"); called before the random faults. */
export type SimMadDropRule = (mad: Uint8Array, from: MadAddress, to: MadAddress) => boolean;

interface Endpoint {
  address: MadAddress;
  handler?: (mad: Uint8Array, from: MadAddress) => void;
}

export const SIM_MAD_DEFAULT_PORT = 4791;

export class SimMadFabric {
  readonly trace: SimMadRecord[] = [];
  /** targeted losses; return true to drop */
  drop: SimMadDropRule | undefined;
  private readonly endpoints = new Map<string, Endpoint>();
  private readonly prng: Prng;

  constructor(private readonly clock: Clock, private readonly opts: { seed?: number; faults?: SimMadFaults } = {}) {
    this.prng = new Prng(opts.seed ?? 1);
  }

  get faults(): SimMadFaults {
    return this.opts.faults ?? {};
  }

  set faults(f: SimMadFaults) {
    this.opts.faults = f;
  }

  /**
   * A port at `gid` (text or bytes) and UDP `port`, whose QP1 receives what is sent to it; `also`:
   * the device's other GIDs, which reach the same QP1 (as a RoCE port's QP1 takes MADs at any of its
   * addresses). What it sends comes from `gid`.
   */
  attach(gid: string | Uint8Array, port = SIM_MAD_DEFAULT_PORT, also: readonly (string | Uint8Array)[] = []): MadTransport {
    const address: MadAddress = { gid: parseGid(gid), port, qpn: GSI_QPN, pkeyIndex: 0, qkey: GSI_QKEY };
    const keys = [address.gid, ...also.map((g) => parseGid(g))].map((g) => keyOf(g, port));
    for (const key of keys) if (this.endpoints.has(key)) throw new Error(`${key} is already attached`);
    const ep: Endpoint = { address };
    for (const key of keys) this.endpoints.set(key, ep);
    return {
      send: (mad, to) => this.send(ep, mad, to),
      onReceive: (h) => {
        ep.handler = h;
      },
    };
  }

  private send(from: Endpoint, mad: Uint8Array, to: MadAddress): void {
    const copy = mad.slice();
    const target = this.endpoints.get(keyOf(to.gid, to.port ?? SIM_MAD_DEFAULT_PORT));
    const rec: SimMadRecord = {
      at: this.clock.now(),
      from: keyOf(from.address.gid, from.address.port!),
      to: keyOf(to.gid, to.port ?? SIM_MAD_DEFAULT_PORT),
      attrId: copy.length === MAD_SIZE ? (copy[16]! << 8) | copy[17]! : -1,
      method: copy[3] ?? -1,
      fate: "delivered",
      mad: copy,
    };
    this.trace.push(rec);
    if (!target) {
      rec.fate = "no_route";
      return;
    }
    if (this.drop?.(copy, from.address, to)) {
      rec.fate = "dropped";
      return;
    }
    const f = this.faults;
    if (this.prng.chance(f.loss ?? 0)) {
      rec.fate = "lost";
      return;
    }
    const copies = this.prng.chance(f.duplicate ?? 0) ? 2 : 1;
    if (copies === 2) rec.fate = "duplicated";
    const src: MadAddress = { ...from.address, hopLimit: 64, trafficClass: to.trafficClass ?? 0, flowLabel: to.flowLabel ?? 0 };
    for (let i = 0; i < copies; i++) {
      const delay = (f.latencyUs ?? 10) + (f.jitterUs ? this.prng.below(f.jitterUs + 1) : 0);
      this.clock.setTimer(this.clock.now() + delay, () => target.handler?.(copy.slice(), { ...src }));
    }
  }
}

function keyOf(gid: Uint8Array, port: number): string {
  return `[${formatGid(gid)}]:${port}`;
}
