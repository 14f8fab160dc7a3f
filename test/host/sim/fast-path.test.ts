// The simulated wire's per-packet fast path: the clock's reusable events, the wire's reused
// datagrams and cached routes, and SimLink reading the TX ring itself (Link.sendRing). Each must
// leave what the wire does — fates, trace records, bytes — exactly as the one-datagram path did.
import { describe, expect, it } from "vitest";
import { SimLink } from "../../../host/core/sim/link.js";
import { SimClock } from "../../../host/core/sim/clock.js";
import { SimWire, type SimWireOptions } from "../../../host/core/sim/wire.js";
import { Access, SendFlags, WrOpcode } from "../../../host/core/verbs/enums.js";
import type { Datagram } from "../../../host/core/net/datagram.js";
import { Prng } from "../../../host/core/sim/prng.js";
import { simRcPair } from "../support/sim-pair.js";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

/** Two devices, 30 RC WRITEs of 5000 bytes and 10 READs over a faulty wire; what the wire recorded and what completed. */
async function run(opts: SimWireOptions) {
  const ALL = Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ;
  const { net, a, b } = await simRcPair({
    seed: 21, addresses: ["127.0.0.1", "127.0.0.2"], wire: { trace: true, ...opts }, device: { activeMtu: 3 },
    cqe: 256, cap: { maxSendWr: 64, maxRecvWr: 64, maxSendSge: 1, maxRecvSge: 1 }, mrBytes: 1 << 18, mrAccess: ALL,
    psns: [9, 5], connect: { qpAccessFlags: ALL, timeout: 6, pathMtu: 3 },
  });
  new Uint8Array(a.dev.memory.buffer, Number(a.mr.addr), 1 << 18).forEach((_, i, v) => (v[i] = (i * 7 + (i >> 9)) & 0xff));
  for (let i = 0; i < 40; i++) {
    const read = i % 4 === 3;
    a.qp.postSend({
      wrId: BigInt(i), opcode: read ? WrOpcode.RDMA_READ : WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED,
      sgList: [{ addr: a.mr.addr + BigInt(i * 5000), length: 5000, lkey: a.mr.lkey }],
      rdma: { remoteAddr: b.mr.addr + BigInt(i * 5000), rkey: b.mr.rkey },
    });
  }
  net.run();
  const wcs = a.cq.poll(64).map((w) => [Number(w.wrId), w.status]);
  const trace = net.wire.trace!.map((r) => ({
    sentAt: r.sentAt, deliveredAt: r.deliveredAt, fate: r.fate, corrupted: r.corrupted, reason: r.reason,
    src: r.datagram.src, dst: r.datagram.dst, srcPort: r.datagram.srcPort, dstPort: r.datagram.dstPort, ipId: r.datagram.ipId,
    ttl: r.datagram.ttl, tos: r.datagram.tos, flowLabel: r.datagram.flowLabel, payload: hex(r.datagram.payload),
  }));
  const landed = hex(new Uint8Array(b.dev.memory.buffer, Number(b.mr.addr), 200_000));
  return { wcs, trace, stats: { ...net.wire.stats }, landed };
}

describe("SimLink reads the TX ring itself", () => {
  it("the same seeded faulty run gives the same trace, fates, completions and bytes as the one-datagram path", async () => {
    const faults = { loss: 0.05, dup: 0.05, reorder: 0.05, corrupt: 0.03, delayUs: 5 };
    const ring = await run({ faults });
    const proto = SimLink.prototype as { sendRing?: unknown };
    const saved = proto.sendRing;
    let one: Awaited<ReturnType<typeof run>>;
    try {
      proto.sendRing = undefined; // the port falls back to send(): one OutgoingDatagram per packet
      one = await run({ faults });
    } finally {
      proto.sendRing = saved;
    }
    expect(ring.stats.lost + ring.stats.corrupted + ring.stats.duplicated).toBeGreaterThan(0);
    expect(ring.wcs.length).toBe(40);
    expect(ring.wcs.every(([, s]) => s === 0)).toBe(true);
    expect(ring.stats).toEqual(one.stats);
    expect(ring.trace.length).toBe(one.trace.length);
    expect(ring.trace).toEqual(one.trace);
    expect(ring.wcs).toEqual(one.wcs);
    expect(ring.landed).toBe(one.landed);
  });
});

describe("SimWire reuse", () => {
  const dgram = (n: number, dst = "10.0.0.2"): Datagram => {
    const payload = new Uint8Array(32).fill(n & 0xff);
    return { src: "10.0.0.1", dst, srcPort: 4791, dstPort: 4791, payload };
  };

  it("without a trace, a datagram taken and delivered to a copying receiver comes back for the next one; never with a trace", () => {
    for (const trace of [false, true]) {
      const wire = new SimWire({ trace });
      const got: string[] = [];
      wire.attach("10.0.0.2", 4791, (d) => got.push(hex(d.payload)), { copies: true });
      const first = wire.take(32);
      Object.assign(first, dgram(1));
      first.payload.fill(1);
      wire.sendTaken(first);
      wire.clock.run();
      const second = wire.take(32);
      expect(second === first).toBe(!trace);
      Object.assign(second, { src: "10.0.0.1", dst: "10.0.0.2", srcPort: 4791, dstPort: 4791 });
      second.payload.fill(2);
      wire.sendTaken(second);
      wire.clock.run();
      expect(got).toEqual([hex(new Uint8Array(32).fill(1)), hex(new Uint8Array(32).fill(2))]);
      if (trace) expect(wire.trace!.map((r) => r.datagram.payload[0])).toEqual([1, 2]); // records keep their bytes
    }
  });

  it("a receiver that does not copy never gets a reused datagram", () => {
    const wire = new SimWire();
    const kept: Datagram[] = [];
    wire.attach("10.0.0.2", 4791, (d) => kept.push(d));
    for (let i = 0; i < 3; i++) {
      const d = wire.take(32);
      Object.assign(d, dgram(i));
      d.payload.fill(i);
      wire.sendTaken(d);
      wire.clock.run();
    }
    expect(new Set(kept).size).toBe(3);
    expect(kept.map((d) => d.payload[0])).toEqual([0, 1, 2]);
  });

  it("routes follow attach, detach, join and leave", () => {
    const wire = new SimWire();
    const got: string[] = [];
    wire.send(dgram(1));
    wire.clock.run();
    expect(wire.stats.unroutable).toBe(1);
    const detach = wire.attach("10.0.0.2", 4791, () => got.push("unicast"));
    wire.send(dgram(2));
    wire.clock.run();
    detach();
    wire.send(dgram(3));
    wire.clock.run();
    expect(wire.stats.unroutable).toBe(2);
    const leave = wire.join("10.0.0.2", 4791, () => got.push("member"));
    wire.send(dgram(4));
    wire.clock.run();
    leave();
    const other = wire.attach("10.0.0.2", 4792, () => got.push("other port"));
    wire.send({ ...dgram(5), dstPort: 4792 });
    wire.send(dgram(6));
    wire.clock.run();
    other();
    expect(got).toEqual(["unicast", "member", "other port"]);
    expect(wire.stats.unroutable).toBe(3);
  });
});

describe("SimClock.scheduleWith", () => {
  it("runs fn(arg) events in time order with plain ones, ties in scheduling order, events reused", () => {
    const c = new SimClock();
    const rng = new Prng(3);
    const seen: [number, number][] = [];
    const fn = (x: [number, number]) => seen.push(x);
    let seq = 0;
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 2000; i++) {
        const t = c.now + rng.below(500);
        const tag: [number, number] = [t, seq++];
        if (i & 1) c.scheduleWith(t, fn, tag);
        else c.schedule(t, () => seen.push(tag));
      }
      c.run();
    }
    expect(seen.length).toBe(10_000);
    for (let i = 1; i < seen.length; i++) {
      const [t0, s0] = seen[i - 1]!;
      const [t1, s1] = seen[i]!;
      expect(t1 > t0 || (t1 === t0 && s1 > s0)).toBe(true);
    }
  });
});
