// Every playground preset, run in Node on the same engine the page uses: its packet
// sequence, completions, end states and timers are what examples/playground/src/expected.ts says,
// trace() rows are what `softroce decode` prints for the pcapng, and the data moved is right.
import { describe, expect, it } from "vitest";
import { coreModule } from "../../../host/node/wasm-source.js";
import { ADDRESS, Session, wcStatusName } from "../../../examples/playground/src/session.js";
import { SCENARIOS, planFor, scenarioBase, findScenario } from "../../../examples/playground/src/scenarios.js";
import { EXPECTED, firstPsn, packetLines } from "../../../examples/playground/src/expected.js";
import { DEFAULT_SETTINGS, OPS, parseSettings, settingsQuery } from "../../../examples/playground/src/settings.js";
import { readCaptureAll } from "../../../host/core/capture/pcap.js";
import { decodePacket } from "../../../host/core/wire/decode.js";
import { WireCodec } from "../../../host/core/wire/codec.js";

async function runPreset(name: string, extra = "") {
  const base = scenarioBase(name);
  const { settings, problems } = parseSettings(extra, base);
  expect(problems).toEqual([]);
  const s = await Session.create(await coreModule(), planFor(settings));
  s.runToEnd();
  return s;
}

describe("playground presets", () => {
  it("has the nine presets the issue lists, kebab-case, each with an expectation and an explanation", () => {
    expect(SCENARIOS.map((s) => s.name)).toEqual([
      "lost-middle-packet", "lost-ack", "rnr", "lost-read-response", "retry-exhausted", "wrong-rkey", "psn-wrap", "uc-gap", "ud-wrong-qkey",
    ]);
    for (const s of SCENARIOS) {
      expect(s.name).toMatch(/^[a-z]+(-[a-z]+)*$/);
      expect(EXPECTED[s.name], s.name).toBeDefined();
      expect(s.explain.length).toBeGreaterThan(150);
    }
  });

  for (const sc of SCENARIOS) {
    it(`${sc.name}: packets, completions, QP states and timers`, async () => {
      const s = await runPreset(sc.name);
      const exp = EXPECTED[sc.name];
      const rows = s.trace();
      expect(packetLines(rows, ADDRESS.A)).toEqual(exp.packets);
      if (exp.firstPsn !== undefined) expect(firstPsn(rows)).toBe(exp.firstPsn);
      expect(s.completions.map((c) => `${c.side} wr=${c.wc.wrId} ${wcStatusName(c.wc.status)}`)).toEqual(exp.completions);
      expect([s.sideState("A").qpState, s.sideState("B").qpState]).toEqual(exp.qpStates);
      expect(s.timers.map((t) => `${t.side} ${t.kind}`)).toEqual(exp.timers);
      // what the receiver did with each packet, as the ladder says it
      const notes = Object.fromEntries(rows.flatMap((_, i) => (s.note(i) ? [[i + 1, s.note(i)]] : [])));
      expect(notes).toEqual(exp.notes);
      // the rxe states the lesson is about, as the trace ring names them
      const seen = new Set(s.events.map((e) => `${e.side} ${e.kind} ${e.kind === "PKT_RECV" ? e.verdict : e.state}`));
      for (const want of exp.rxe) expect(seen, want).toContain(want);
      if (sc.name === "psn-wrap") expect([...seen].filter((x) => /RETRY|ERR|DUPLICATE/.test(x))).toEqual([]);
      // every row: decoded with a good ICRC (nothing here corrupts), a fate, a time
      for (const r of rows) {
        expect(r.icrc_ok).toBe(true);
        expect(typeof r.t_us).toBe("number");
      }
      // same seed, same run
      const again = await runPreset(sc.name);
      expect(again.trace()).toEqual(rows);
    });
  }

  it("the stories hold whatever QPNs, keys and first PSN a run draws (another seed, another first PSN)", async () => {
    for (const sc of SCENARIOS) {
      const exp = EXPECTED[sc.name];
      const plan = planFor({ ...scenarioBase(sc.name), seed: 977 });
      if (exp.firstPsn === undefined) plan.psnA = 0x5a5a5a;
      const s = await Session.create(await coreModule(), plan);
      s.runToEnd();
      const first = await runPreset(sc.name);
      expect(s.a.qp.qpNum, sc.name).not.toBe(first.a.qp.qpNum);
      expect(packetLines(s.trace(), ADDRESS.A), sc.name).toEqual(exp.packets);
      expect(s.completions.map((c) => `${c.side} wr=${c.wc.wrId} ${wcStatusName(c.wc.status)}`), sc.name).toEqual(exp.completions);
      expect(s.timers.map((t) => `${t.side} ${t.kind}`), sc.name).toEqual(exp.timers);
      expect([s.sideState("A").qpState, s.sideState("B").qpState], sc.name).toEqual(exp.qpStates);
      expect(Object.fromEntries(s.packets.flatMap((_, i) => (s.note(i) ? [[i + 1, s.note(i)]] : []))), sc.name).toEqual(exp.notes);
    }
  });

  it("trace() rows are the records softroce decode prints for the run's pcapng, plus fate and t_us", async () => {
    const s = await runPreset("lost-middle-packet");
    const recs = readCaptureAll(s.pcapng());
    const rows = s.trace();
    expect(recs.length).toBe(rows.length);
    const codec = await WireCodec.create(await coreModule());
    recs.forEach((rec, i) => {
      const d = decodePacket(codec, rec.data!, { frame: rec.index, tsNanos: rec.tsNanos, frameLen: rec.origLen });
      const { fate, t_us, ...record } = rows[i];
      expect(record).toEqual(d.record);
      expect(fate).toBe(s.packets[i].fate);
      expect(t_us).toBe(s.packets[i].sentAt);
    });
  });

  it("moves the right bytes: WRITE changes B exactly where it wrote, READ fills A", async () => {
    const w = await runPreset("lost-middle-packet");
    expect(Array.from(w.after("B")!.subarray(0, 4096))).toEqual(Array.from(w.before.A.subarray(0, 4096)));
    expect(Array.from(w.after("B")!.subarray(4096))).toEqual(Array.from(w.before.B.subarray(4096)));
    const r = await runPreset("lost-read-response");
    expect(Array.from(r.after("A")!.subarray(0, 2048))).toEqual(Array.from(r.before.B.subarray(0, 2048)));
  });

  it("completions() gives WC objects with bigints as decimal strings", async () => {
    const s = await runPreset("rnr");
    const wcs = s.completionObjects();
    expect(wcs).toHaveLength(2);
    expect(wcs[0]).toMatchObject({ wrId: "1", status: 0, opcode: 0, byteLen: 1024, qpNum: s.a.qp.qpNum });
    expect(wcs[1]).toMatchObject({ wrId: "1000", status: 0, opcode: 128, byteLen: 1024, qpNum: s.b.qp.qpNum, srcQp: s.a.qp.qpNum });
    expect(JSON.parse(JSON.stringify(wcs))).toEqual(wcs);
  });

  it("every operation runs to success in free play", async () => {
    for (const op of OPS) {
      const s = await Session.create(await coreModule(), planFor({ ...DEFAULT_SETTINGS, op, size: 3000, depth: 2 }));
      s.runToEnd();
      const statuses = s.completions.map((c) => `${c.side}:${wcStatusName(c.wc.status)}`);
      expect(statuses.filter((x) => x.startsWith("A:")), op).toEqual(["A:SUCCESS", "A:SUCCESS"]);
      expect(statuses.every((x) => x.endsWith("SUCCESS")), `${op}: ${statuses}`).toBe(true);
    }
  });

  it("random faults are seeded: the same seed gives the same run, another seed another", async () => {
    const run = async (seed: number) => {
      const s = await Session.create(await coreModule(), planFor({ ...DEFAULT_SETTINGS, op: "write", size: 16384, depth: 4, loss: 0.1, dup: 0.05, reorder: 0.05, seed }));
      s.runToEnd();
      return packetLines(s.trace(), ADDRESS.A);
    };
    const a = await run(3);
    expect(await run(3)).toEqual(a);
    expect(await run(4)).not.toEqual(a);
  });
});

describe("playground settings in the URL", () => {
  it("round-trips and rejects bad values with a reason", () => {
    const s = { ...DEFAULT_SETTINGS, op: "read" as const, size: 777, loss: 0.25, seed: 9 };
    expect(parseSettings(settingsQuery(s)).settings).toEqual(s);
    const bad = parseSettings("op=nope&size=-1&mtu=1000&loss=2&depth=1.5&seed=x");
    expect(bad.settings).toEqual(DEFAULT_SETTINGS);
    expect(bad.problems).toHaveLength(6);
    expect(parseSettings("size=1048576&depth=256").problems[0]).toMatch(/at most/);
  });

  it("a preset's URL holds only what differs from the preset", () => {
    const base = scenarioBase("rnr");
    expect(settingsQuery({ ...base, seed: 5 }, base)).toBe("?scenario=rnr&seed=5");
    expect(findScenario("nope")).toBeUndefined();
  });
});
