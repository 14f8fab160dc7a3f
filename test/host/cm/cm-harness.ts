// Two (or more) communication managers on an in-memory MAD fabric and a
// virtual clock: what the ib_cm tests drive. Every event each CM hands up is
// recorded with its time.
import { expect } from "vitest";
import { SimClock } from "../../../host/core/sim/clock.js";
import { simClock } from "../../../host/core/sim/link.js";
import { SimMadFabric, type SimMadFaults, type SimMadRecord } from "../../../host/core/cm/sim-mad.js";
import { CommunicationManager, type CmId } from "../../../host/core/cm/cm.js";
import type { CmHandler, IbCmEvent, PathRecord } from "../../../host/core/cm/cm-params.js";
import { cmMsgName } from "../../../host/core/cm/cm-msgs.js";
import { parseGid } from "../../../host/core/net/gid.js";
import { Prng } from "../../../host/core/sim/prng.js";

export interface Seen {
  at: number;
  id: CmId;
  ev: IbCmEvent;
}

export interface Node {
  cm: CommunicationManager;
  gid: Uint8Array;
  seen: Seen[];
  /** a handler that records, then runs `react` */
  handler: CmHandler;
  react: (id: CmId, ev: IbCmEvent) => number | void;
}

export function world(o: { seed?: number; faults?: SimMadFaults; nodes?: string[] } = {}) {
  const clock = new SimClock();
  const c = simClock(clock);
  const fabric = new SimMadFabric(c, { seed: o.seed ?? 7, faults: o.faults });
  const prng = new Prng(o.seed ?? 7);
  const nodes = (o.nodes ?? ["::ffff:10.0.0.1", "::ffff:10.0.0.2"]).map((g, i): Node => {
    const gid = parseGid(g);
    const n: Node = {
      cm: undefined as unknown as CommunicationManager,
      gid,
      seen: [],
      react: () => 0,
      handler: (id, ev) => {
        n.seen.push({ at: clock.now, id, ev });
        return n.react(id, ev);
      },
    };
    n.cm = new CommunicationManager({
      transport: fabric.attach(gid),
      clock: c,
      nodeGuid: 0x0002c90300000000n + BigInt(i + 1),
      random: () => prng.u32(),
      gids: () => [gid],
    });
    return n;
  });
  return { clock, fabric, nodes, run: (untilUs = Infinity) => clock.run(untilUs) };
}

/** The path rdma_cm resolves for RoCEv2 from `a` to `b` (hop limit 64, life time 16). */
export function path(a: Node, b: Node, over: Partial<PathRecord> = {}): PathRecord {
  return {
    sgid: a.gid, dgid: b.gid, sgidIndex: 0, flowLabel: 0x12345, hopLimit: 64, trafficClass: 0, sl: 0,
    pkey: 0xffff, mtu: 3, rate: 0, packetLifeTime: 16, ...over,
  };
}

export const SID = 0x0000000001061c06n; // RDMA_PS_TCP, port 7174 (rping's)

export function reqParam(a: Node, b: Node, over: Record<string, unknown> = {}) {
  return {
    primaryPath: path(a, b), serviceId: SID, qpNum: 0x11, qpType: 2, startingPsn: 0xabcdef,
    responderResources: 1, initiatorDepth: 1, remoteCmResponseTimeout: 20, flowControl: 0,
    localCmResponseTimeout: 20, retryCount: 7, rnrRetryCount: 7, maxCmRetries: 15, srq: 0, ...over,
  };
}

/** The names of the MADs on the fabric, with their fates, for reading failures. */
export function wire(trace: SimMadRecord[]): string[] {
  return trace.map((r) => `${cmMsgName(r.attrId) ?? r.attrId.toString(16)}:${r.fate}`);
}

export function names(n: Node): string[] {
  return n.seen.map((s) => s.ev.name);
}

/** Runs fn: "ok", or the code of the error it threw, which must be a `cls`. */
export function errorCode(fn: () => unknown, cls: abstract new (...args: never[]) => Error & { code: string }): string {
  try {
    fn();
    return "ok";
  } catch (e) {
    expect(e).toBeInstanceOf(cls);
    return (e as { code: string }).code;
  }
}
