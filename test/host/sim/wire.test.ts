import { describe, expect, it } from "vitest";
import { SimWire, type SimFaults } from "../../../host/core/sim/wire.js";
import { SimClock } from "../../../host/core/sim/clock.js";
import { Prng } from "../../../host/core/sim/prng.js";
import type { Datagram } from "../../../host/core/net/datagram.js";

function dgram(n: number, dst = "127.0.0.2"): Datagram {
  const payload = new Uint8Array(16);
  new DataView(payload.buffer).setUint32(0, n);
  return { src: "127.0.0.1", dst, srcPort: 4791, dstPort: 4791, payload };
}

function seqOf(d: Datagram): number {
  return new DataView(d.payload.buffer, d.payload.byteOffset).getUint32(0);
}

function runOnce(seed: number, faults: SimFaults, count = 1000) {
  const wire = new SimWire({ seed, faults, trace: true });
  const got: number[] = [];
  wire.attach("127.0.0.2", 4791, (d) => got.push(seqOf(d)));
  for (let i = 0; i < count; i++) wire.clock.after(i * 10, () => wire.send(dgram(i)));
  wire.clock.run();
  return { wire, got };
}

describe("SimClock", () => {
  it("runs events in time order, ties in scheduling order", () => {
    const c = new SimClock();
    const order: string[] = [];
    c.schedule(30, () => order.push("c"));
    c.schedule(10, () => order.push("a1"));
    c.schedule(10, () => order.push("a2"));
    c.schedule(20, () => {
      order.push("b");
      c.after(5, () => order.push("b+5"));
    });
    expect(c.run()).toBe(5);
    expect(order).toEqual(["a1", "a2", "b", "b+5", "c"]);
    expect(c.now).toBe(30);
  });

  it("stops at a time bound and keeps later events", () => {
    const c = new SimClock();
    let ran = 0;
    for (let t = 0; t < 100; t += 10) c.schedule(t, () => ran++);
    c.run(45);
    expect(ran).toBe(5);
    expect(c.now).toBe(40);
    expect(c.nextAt).toBe(50);
  });

  it("orders a large random schedule correctly", () => {
    const c = new SimClock();
    const rng = new Prng(7);
    const seen: number[] = [];
    for (let i = 0; i < 5000; i++) {
      const t = rng.below(100000);
      c.schedule(t, () => seen.push(t));
    }
    c.run();
    expect(seen.length).toBe(5000);
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThanOrEqual(seen[i - 1]);
  });
});

describe("SimWire", () => {
  it("delivers in order with delay and no faults", () => {
    const { wire, got } = runOnce(1, { delayUs: 50 }, 100);
    expect(got).toEqual([...Array(100).keys()]);
    expect(wire.stats).toMatchObject({ sent: 100, delivered: 100, lost: 0 });
    expect(wire.trace![0].deliveredAt! - wire.trace![0].sentAt).toBe(50);
  });

  it("copies the payload at send time", () => {
    const wire = new SimWire();
    const got: Datagram[] = [];
    wire.attach("127.0.0.2", 4791, (d) => got.push(d));
    const d = dgram(5);
    wire.send(d);
    d.payload.fill(0xee);
    wire.clock.run();
    expect(seqOf(got[0])).toBe(5);
  });

  it("loses about the configured fraction, reproducibly per seed", () => {
    const a = runOnce(42, { loss: 0.2 });
    const b = runOnce(42, { loss: 0.2 });
    const c = runOnce(43, { loss: 0.2 });
    expect(a.got).toEqual(b.got);
    expect(a.got).not.toEqual(c.got);
    expect(a.wire.stats.lost).toBeGreaterThan(150);
    expect(a.wire.stats.lost).toBeLessThan(250);
    expect(a.got.length + a.wire.stats.lost).toBe(1000);
    expect(a.wire.trace!.filter((r) => r.fate === "lost").length).toBe(a.wire.stats.lost);
  });

  it("duplicates, reorders and corrupts as told", () => {
    const dup = runOnce(3, { dup: 0.1 });
    expect(dup.got.length).toBe(1000 + dup.wire.stats.duplicated);
    expect(dup.wire.stats.duplicated).toBeGreaterThan(50);

    const re = runOnce(3, { reorder: 0.1, delayUs: 5 });
    expect([...re.got].sort((x, y) => x - y)).toEqual([...Array(1000).keys()]);
    expect(re.got).not.toEqual([...Array(1000).keys()]);

    const wire = new SimWire({ seed: 9, faults: { corrupt: 1 } });
    const got: Datagram[] = [];
    wire.attach("127.0.0.2", 4791, (d) => got.push(d));
    const d = dgram(0);
    wire.send(d);
    wire.clock.run();
    let flipped = 0;
    for (let i = 0; i < 16; i++) flipped += popcount(got[0].payload[i] ^ d.payload[i]);
    expect(flipped).toBe(1);
  });

  it("serializes at the configured rate", () => {
    const wire = new SimWire({ faults: { rateBps: 8_000_000 } }); // 1 byte per µs
    const at: number[] = [];
    wire.attach("127.0.0.2", 4791, () => at.push(wire.clock.now));
    for (let i = 0; i < 3; i++) wire.send(dgram(i)); // 16 B payload + 28 B IP/UDP = 44 µs each
    wire.clock.run();
    expect(at).toEqual([44, 88, 132]);
  });

  it("counts datagrams to nobody as unroutable", () => {
    const wire = new SimWire({ trace: true });
    wire.send(dgram(1, "127.0.0.9"));
    expect(wire.stats.unroutable).toBe(1);
    expect(wire.trace![0].fate).toBe("unroutable");
  });

  it("refuses bad fault settings and double attach", () => {
    expect(() => new SimWire({ faults: { loss: 1.5 } })).toThrow(/loss must be a fraction/);
    expect(() => new SimWire({ faults: { delayUs: -1 } })).toThrow(/delayUs/);
    const wire = new SimWire();
    wire.attach("::1", 4791, () => {});
    expect(() => wire.attach("::1", 4791, () => {})).toThrow(/\[::1\]:4791 is already attached/);
  });
});

function popcount(x: number): number {
  let n = 0;
  for (; x; x &= x - 1) n++;
  return n;
}
