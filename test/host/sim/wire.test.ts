import { describe, expect, it } from "vitest";
import { SimWire, type SimFaults } from "../../../host/core/sim/wire.js";
import { SimClock } from "../../../host/core/sim/clock.js";
import { Prng } from "../../../host/core/sim/prng.js";
import { SimInbox } from "../../../host/core/sim/inbox.js";
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

  it("resume: the rest of a running event runs next, before what was due after it or scheduled by it", () => {
    const c = new SimClock();
    const order: string[] = [];
    let part = 0;
    const batch = (name: string) => {
      order.push(`${name}${part++}`);
      c.schedule(c.now, () => order.push("scheduled-by-it"));
      if (part < 3) c.resume(batch, name);
    };
    c.scheduleWith(10, batch, "x");
    c.schedule(10, () => order.push("due-after-it"));
    c.schedule(5, () => order.push("before"));
    c.run();
    expect(order).toEqual(["before", "x0", "x1", "x2", "due-after-it", "scheduled-by-it", "scheduled-by-it", "scheduled-by-it"]);
    expect(() => c.resume(() => {}, 0)).toThrow(/outside a running event/);
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

  it("the route it used last is worked out again when the endpoints change (detach, attach, join, leave)", () => {
    const wire = new SimWire();
    const got: string[] = [];
    const send = (n: number) => {
      wire.send(dgram(n));
      wire.clock.run();
    };
    const detachA = wire.attach("127.0.0.2", 4791, (d) => got.push(`a${seqOf(d)}`));
    send(1);
    send(2); // the same route again
    detachA();
    send(3); // nobody there now
    expect(wire.stats.unroutable).toBe(1);
    wire.attach("127.0.0.2", 4791, (d) => got.push(`b${seqOf(d)}`));
    send(4);
    const leave = wire.join("127.0.0.2", 4791, (d) => got.push(`m${seqOf(d)}`));
    send(5); // a group there now: its member gets it
    leave();
    send(6);
    expect(got).toEqual(["a1", "a2", "b4", "m5", "b6"]);
  });
});

function popcount(x: number): number {
  let n = 0;
  for (; x; x &= x - 1) n++;
  return n;
}

describe("SimWire receive batches", () => {
  /** A wire with a receiver at 127.0.0.2 that takes batches of inbox datagrams, at most `take` a call. */
  function batchWire(opts: ConstructorParameters<typeof SimWire>[0], take = Infinity) {
    const wire = new SimWire(opts);
    const memory = new WebAssembly.Memory({ initial: 1 });
    const inbox = new SimInbox(memory, 0, 32, 64);
    const log: string[] = [];
    const one = (d: Datagram) => log.push(`one ${seqOf(d)}`);
    const batch = (ds: readonly Datagram[], n: number) => {
      const k = Math.min(n, take);
      log.push(`batch ${ds.slice(0, k).map(seqOf).join(",")}`);
      return k;
    };
    wire.attach("127.0.0.2", 4791, one, { inbox, batch });
    /** sends datagram n through the inbox (as SimLink.sendRing does) */
    const send = (n: number) => {
      const d = wire.takeFor("127.0.0.2", 4791, 16);
      new DataView(d.payload.buffer, d.payload.byteOffset).setUint32(0, n);
      Object.assign(d, { src: "127.0.0.1", dst: "127.0.0.2", srcPort: 4791, dstPort: 4791 });
      wire.sendTaken(d);
    };
    return { wire, inbox, log, send };
  }

  it("datagrams to one receiver at one time, nothing scheduled between them, arrive in one call, in order", () => {
    const { wire, inbox, log, send } = batchWire({ faults: { delayUs: 3 } });
    for (let i = 0; i < 5; i++) send(i);
    wire.clock.schedule(3, () => log.push("other event")); // closes the batch
    send(5);
    send(6);
    wire.clock.run();
    expect(log).toEqual(["batch 0,1,2,3,4", "other event", "batch 5,6"]);
    expect(wire.stats).toMatchObject({ sent: 7, delivered: 7 });
    expect(inbox.available).toBe(32);
  });

  it("a receiver that takes part of a batch gets the rest next, before any other event", () => {
    const { wire, log, send } = batchWire({}, 2);
    for (let i = 0; i < 5; i++) send(i);
    wire.clock.schedule(0, () => log.push("other event"));
    wire.clock.run();
    expect(log).toEqual(["batch 0,1", "batch 2,3", "batch 4", "other event"]);
    expect(wire.stats).toMatchObject({ sent: 5, delivered: 5 });
  });

  it("faults, a script, a trace or batching: false: one call per datagram", () => {
    for (const opts of [{ faults: { loss: 0.0001 } }, { trace: true }, { batching: false }]) {
      const { wire, log, send } = batchWire({ seed: 3, ...opts });
      for (let i = 0; i < 3; i++) send(i);
      wire.clock.run();
      expect(log).toEqual(["one 0", "one 1", "one 2"]);
    }
    const { wire, log, send } = batchWire({});
    wire.script({ match: () => false, nth: 1 });
    for (let i = 0; i < 3; i++) send(i);
    wire.clock.run();
    expect(log).toEqual(["one 0", "one 1", "one 2"]);
  });

  it("different arrival times (a rate limit) are separate calls", () => {
    const { wire, log, send } = batchWire({ faults: { rateBps: 8_000_000 } });
    for (let i = 0; i < 3; i++) send(i);
    wire.clock.run();
    expect(log).toEqual(["batch 0", "batch 1", "batch 2"]);
  });
});
