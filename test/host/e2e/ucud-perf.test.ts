// `softroce perf --local -c UC|UD`: the tests each transport supports run and
// verify; over a lossy wire lost and duplicated messages are counted and
// reported (not failures), damaged content is never accepted.
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
      // bw: one check per message (UC write_bw: per slot, once the wire is idle); lat: both directions
      const want = test === "write_bw" ? 16 : test.endsWith("lat") ? 600 : 300;
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
      expect(r.ok).toBe(true);
      expect(r.corrupted).toBe(0);
      expect(r.errors).toBe(0);
      expect(r.wire.lost + r.wire.corrupted).toBeGreaterThan(0);
      if (test === "send_bw") {
        expect(r.lost).toBeGreaterThan(0);
        expect(r.verified + r.lost).toBe(400);
      }
      if (connection === "UD") expect(r.duplicated).toBeGreaterThan(0);
    });
  }
});
