// `softroce perf --local -c UC|UD`: the tests each transport supports run and
// verify every message; over a lossy wire lost and duplicated messages are
// counted and reported (not failures without verify), damaged content is never
// accepted, and a run that verified fewer messages than it sent is never ok.
import { describe, expect, it } from "vitest";
import { coreModule } from "../../../host/node/wasm-source.js";
import { runPerf } from "../../../host/core/perf/run.js";

describe("perf -c UC / UD", () => {
  for (const [test, connection, size] of [
    ["send_bw", "UC", 5000],
    ["write_bw", "UC", 5000],
    ["send_lat", "UC", 3000],
    ["write_lat", "UC", 3000],
    ["send_bw", "UD", 1024],
    ["send_lat", "UD", 200],
  ] as const) {
    it(`${test} -c ${connection}: a clean wire delivers every message, verified`, async () => {
      const r = await runPerf(await coreModule(), { test, connection, size, iterations: 300, verify: true, txDepth: test.endsWith("bw") ? 16 : 1 });
      expect([r.ok, r.lost, r.duplicated, r.corrupted, r.errors, r.retransmissions]).toEqual([true, 0, 0, 0, 0, 0]);
      // one check per message (UC write_bw: as each lands at the receiver); lat: both directions
      const want = test.endsWith("lat") ? 600 : 300;
      expect(r.verified).toBe(want);
      expect(r.connection).toBe(connection);
    });
  }

  for (const [test, connection, size] of [
    ["send_bw", "UC", 3000],
    ["write_bw", "UC", 3000],
    ["send_bw", "UD", 1024],
  ] as const) {
    it(`${test} -c ${connection} over loss, duplication, reordering, corruption: lost/duplicated counted, nothing corrupted`, async () => {
      const faults = { loss: 0.03, dup: 0.03, reorder: 0.03, corrupt: 0.02, delayUs: 5 };
      const r = await runPerf(await coreModule(), { test, connection, size, iterations: 400, verify: true, txDepth: 16, faults, seed: 7 });
      expect(r.corrupted).toBe(0);
      expect(r.errors).toBe(0);
      expect(r.wire.lost + r.wire.corrupted).toBeGreaterThan(0);
      // every message sent is either verified or lost; the lost ones were never checked: not ok
      expect(r.lost).toBeGreaterThan(0);
      expect(r.verified + r.lost).toBe(400);
      expect(r.messages).toBe(400);
      expect(r.ok).toBe(false);
      if (connection === "UD") expect(r.duplicated).toBeGreaterThan(0);
      // without verify the same losses are counted, and are not failures
      const plain = await runPerf(await coreModule(), { test, connection, size, iterations: 400, txDepth: 16, faults, seed: 7 });
      expect([plain.ok, plain.corrupted, plain.errors]).toEqual([true, 0, 0]);
    });
  }

  it("UC write_bw --verify over a lossy wire: each lost message is counted (the old slot check saw 'lost 0')", async () => {
    const r = await runPerf(await coreModule(), { test: "write_bw", connection: "UC", size: 4096, mtu: 1024, iterations: 500, txDepth: 32, verify: true, faults: { loss: 0.01 }, seed: 1 });
    expect(r.wire.lost).toBeGreaterThan(0);
    // a lost packet loses its message (UC drops the rest of it); two losses may hit one message
    expect(r.lost).toBeGreaterThan(0);
    expect(r.lost).toBeLessThanOrEqual(r.wire.lost);
    expect(r.verified + r.lost).toBe(500);
    expect(r.ok).toBe(false);
  });

  it("verify on UC/UD wants messages that can carry their sequence number", async () => {
    await expect(runPerf(await coreModule(), { test: "send_bw", connection: "UD", size: 2, verify: true })).rejects.toThrow(/verify on UD needs messages of at least 4 bytes/);
  });
});
