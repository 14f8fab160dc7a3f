// system-suite-timeout: 900
// The load proof (issue 12): 1,000 and 4,096 RC QP pairs between two Node processes over UDP
// loopback (127.0.12.1 <-> 127.0.12.2), and in one process (127.0.12.5 <-> .6), 3 WRITEs per pair (1000, 4096, 9000 B), the default ACK
// timeout (14) and retry count (7). Every WR must complete SUCCESS exactly once, every WRITE's
// bytes must be right at the target, and retransmitted request datagrams must stay under 1 % of
// those needed. The harness is bench/load.mjs (which also prints time and memory).
import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { ROOT, run, test } from "./lib/harness.mjs";

const { runLoad } = await import(pathToFileURL(join(ROOT, "bench/load.mjs")).href);
const { runLoadInProcess } = await import(pathToFileURL(join(ROOT, "bench/load-inproc.mjs")).href);

for (const pairs of [1000, 4096]) {
  test(`${pairs} RC QP pairs, 3 WRITEs each: every WR SUCCESS once, bytes right, retransmissions < 1 %`, async () => {
    const r = await runLoad(pairs);
    console.log(`    ${pairs} pairs: ${r.seconds.toFixed(2)} s, ${JSON.stringify(r.statuses)}, retransmitted ${r.retransmitPct.toFixed(2)} %, ` +
      `rss writer ${r.writer.rssMiB} MiB target ${r.target.rssMiB} MiB`);
    assert.equal(r.duplicates, 0, "a WR completed twice");
    assert.equal(r.missing, 0, "a WR never completed");
    assert.deepEqual(r.statuses, { SUCCESS: 3 * pairs });
    assert.equal(r.wrongWrites, 0, "a WRITE's bytes are wrong at the target");
    assert.ok(r.retransmitPct < 1, `retransmitted ${r.retransmitPct.toFixed(2)} % of the request datagrams`);
  });
}

// The same in ONE process (bench/load-inproc.mjs): both devices share the event loop.
for (const pairs of [1000, 4096]) {
  test(`one process, ${pairs} RC QP pairs: every WR SUCCESS once, bytes right, retransmissions < 1 %`, async () => {
    const r = await runLoadInProcess(pairs);
    console.log(`    ${pairs} pairs in one process: ${r.seconds.toFixed(2)} s, ${JSON.stringify(r.statuses)}, ` +
      `retransmitted ${r.retransmitPct.toFixed(2)} %, rss ${r.rssMiB} MiB`);
    assert.equal(r.duplicates, 0, "a WR completed twice");
    assert.equal(r.missing, 0, "a WR never completed");
    assert.deepEqual(r.statuses, { SUCCESS: 3 * pairs });
    assert.equal(r.wrongWrites, 0, "a WRITE's bytes are wrong at the target");
    assert.ok(r.retransmitPct < 1, `retransmitted ${r.retransmitPct.toFixed(2)} % of the request datagrams`);
  });
}

await run({ name: "load", testTimeoutMs: 400_000 });
