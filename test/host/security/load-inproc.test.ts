// The load proof in one process (issue 12: "in one process it fails from 250 pairs"): two Node
// UDP devices in this process, 1,000 RC QP pairs, 3 WRITEs each (1000, 4096, 9000 B) at the
// default ACK timeout (14) and retry count (7). Every WR completes SUCCESS exactly once, every
// WRITE's bytes are right at the target. The harness is bench/load-inproc.mjs (built package:
// `npm test` builds first). The issue's < 1 % retransmissions is asserted by the system suite
// (test/system/load.sys.mjs, `node test/system/run.mjs load`), which runs alone: here, among
// the suite's parallel workers on a shared machine, a stall of this one thread past the 67 ms
// ACK timeout resends one in-flight budget (128 packets, 0.9 % of 14,000) — it happened twice in
// one loaded `npm test` — so this test allows 4 such stalls (< 4 %) and no more.
import { describe, expect, it } from "vitest";

interface LoadResult {
  wrs: number; statuses: Record<string, number>; duplicates: number; missing: number; wrongWrites: number;
  retransmitPct: number; requestPackets: number; neededPackets: number;
}

describe("load, one process", () => {
  it("1,000 RC QP pairs over UDP loopback: every WR SUCCESS once, bytes right, retransmissions < 4 %", async () => {
    const url = new URL("../../../bench/load-inproc.mjs", import.meta.url).href;
    const { runLoadInProcess } = (await import(url)) as { runLoadInProcess: (n: number, o?: { deadlineMs?: number; addresses?: string[] }) => Promise<LoadResult> };
    const r = await runLoadInProcess(1000, { deadlineMs: 60_000, addresses: ["127.0.12.7", "127.0.12.8"] });
    expect(r.statuses).toEqual({ SUCCESS: 3000 });
    expect(r.duplicates).toBe(0);
    expect(r.missing).toBe(0);
    expect(r.wrongWrites).toBe(0);
    expect(r.requestPackets).toBeGreaterThanOrEqual(r.neededPackets);
    expect(r.retransmitPct).toBeLessThan(4);
  }, 120_000);
});
