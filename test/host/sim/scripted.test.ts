// Scripted faults on the simulated wire: "drop the nth datagram that matches",
// recorded in the trace with reason "scripted", deterministic, validated.
import { describe, expect, it } from "vitest";
import { SimWire } from "../../../host/core/sim/wire.js";
import { simTracePcapng } from "../../../host/core/sim/trace.js";
import type { Datagram } from "../../../host/core/net/datagram.js";
import { core } from "../support/replay.js";

function dgram(n: number, kind: number): Datagram {
  const payload = new Uint8Array(8);
  payload[0] = kind;
  new DataView(payload.buffer).setUint32(4, n);
  return { src: "127.0.14.1", dst: "127.0.14.2", srcPort: 4791, dstPort: 4791, payload };
}
const seqOf = (d: Datagram) => new DataView(d.payload.buffer, d.payload.byteOffset).getUint32(4);

function run(wire: SimWire, kinds: number[]) {
  const got: number[] = [];
  wire.attach("127.0.14.2", 4791, (d) => got.push(seqOf(d)));
  kinds.forEach((k, i) => wire.clock.after(i * 10, () => wire.send(dgram(i, k))));
  wire.clock.run();
  return got;
}

describe("SimWire.script", () => {
  it("drops exactly the nth matching datagram and records why", () => {
    const wire = new SimWire({ trace: true });
    wire.script({ match: (d) => d.payload[0] === 1, nth: 2, label: "2nd data packet" });
    // kinds: 1 = data, 2 = other; the 2nd data datagram is index 2
    const got = run(wire, [1, 2, 1, 1, 2, 1]);
    expect(got).toEqual([0, 1, 3, 4, 5]);
    const fates = wire.trace!.map((r) => [r.fate, r.reason ?? "", r.label ?? ""]);
    expect(fates[2]).toEqual(["lost", "scripted", "2nd data packet"]);
    expect(fates.filter((f) => f[0] !== "delivered")).toHaveLength(1);
    expect(wire.stats.lost).toBe(1);
  });

  it("hits count matches from the nth on, Infinity all of them, and a removed rule nothing", () => {
    const wire = new SimWire({ trace: true });
    wire.script({ match: (d) => d.payload[0] === 1, nth: 2, count: 2 });
    const remove = wire.script({ match: (d) => d.payload[0] === 2, nth: 1, count: Infinity });
    remove();
    expect(run(wire, [1, 1, 1, 1, 2, 2])).toEqual([0, 3, 4, 5]);

    const all = new SimWire({ trace: true });
    all.script({ match: (d) => d.payload[0] === 2, nth: 1, count: Infinity });
    expect(run(all, [2, 1, 2, 2, 1])).toEqual([1, 4]);
  });

  it("corrupts: the datagram arrives with its last byte changed and fate corrupted", () => {
    const wire = new SimWire({ trace: true });
    wire.script({ match: () => true, nth: 1, action: "corrupt" });
    const bytes: number[] = [];
    wire.attach("127.0.14.2", 4791, (d) => bytes.push(d.payload[7]));
    wire.send(dgram(0x10, 1));
    wire.send(dgram(0x10, 1));
    wire.clock.run();
    expect(bytes).toEqual([0x11, 0x10]);
    expect(wire.trace!.map((r) => r.fate)).toEqual(["corrupted", "delivered"]);
    expect(wire.trace![0]).toMatchObject({ reason: "scripted", corrupted: true });
  });

  it("writes the reason into the pcapng comment", async () => {
    const { codec } = await core();
    const wire = new SimWire({ trace: true });
    wire.script({ match: () => true, nth: 1, label: "first" });
    run(wire, [1, 1]);
    const text = new TextDecoder("latin1").decode(simTracePcapng(wire.trace!, { codec }));
    expect(text).toContain("fate=lost reason=scripted (first)");
    expect(text.split("reason=").length - 1).toBe(1);
  });

  it("is deterministic beside random faults", () => {
    const once = () => {
      const wire = new SimWire({ seed: 5, faults: { loss: 0.2, dup: 0.1 }, trace: true });
      wire.script({ match: (d) => d.payload[0] === 1, nth: 3 });
      run(wire, Array.from({ length: 200 }, (_, i) => 1 + (i % 2)));
      return wire.trace!.map((r) => `${r.fate}:${r.reason ?? ""}`);
    };
    const a = once();
    expect(once()).toEqual(a);
    expect(a.filter((f) => f.endsWith("scripted"))).toHaveLength(1);
  });

  it("refuses bad rules with a clear error", () => {
    const wire = new SimWire();
    expect(() => wire.script({ match: () => true, nth: 0 })).toThrow(/nth must be an integer >= 1/);
    expect(() => wire.script({ match: () => true, nth: 1.5 })).toThrow(RangeError);
    expect(() => wire.script({ match: () => true, nth: 1, count: 0 })).toThrow(/count/);
    expect(() => wire.script({ match: () => true, nth: 1, action: "explode" as "drop" })).toThrow(/action/);
    expect(() => wire.script({ match: 3 as unknown as () => boolean, nth: 1 })).toThrow(TypeError);
  });
});
