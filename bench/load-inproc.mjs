// The load proof in ONE process: two Node UDP devices (127.0.12.5 and 127.0.12.6, port 4791)
// in the same event loop, N RC QP pairs between them, 3 WRITEs per pair (1000, 4096 and 9000
// bytes) with the default ACK timeout (14, 67 ms) and retry count (7), as bench/load.mjs does
// across two processes. Here both devices share one thread, so every datagram the writer sends
// competes with the target's receive work (the issue saw this fail from 250 pairs).
// Prints time, WRs by status, duplicates, bytes checked, retransmissions and memory.
// Usage: node bench/load-inproc.mjs [pairs ...]  (default 1000). runLoadInProcess() is what
// test/system/load.sys.mjs asserts on.
import { fileURLToPath } from "node:url";
import { connectQp } from "../dist/internal/node.js";
import { CONNECT, collectCompletions, fillPattern, neededPackets, openLoadSide, postWrites, wrongWrites } from "./load-common.mjs";

const LOAD_SLICE = Number(process.env.LOAD_SLICE ?? 16);

/** One round with `pairs` QP pairs in this process (writer and target at `addresses`); resolves with the figures. */
export async function runLoadInProcess(pairs, { deadlineMs = 180_000, addresses = ["127.0.12.5", "127.0.12.6"] } = {}) {
  const w = await openLoadSide(addresses[0], pairs);
  let t;
  try {
    t = await openLoadSide(addresses[1], pairs);
        for (let i = 0; i < pairs; i++) {
      connectQp(t.qps[i], { qpNum: w.qps[i].qpNum, psn: w.psns[i], gid: w.gid, port: 4791 }, { sqPsn: t.psns[i], ...CONNECT });
      connectQp(w.qps[i], { qpNum: t.qps[i].qpNum, psn: t.psns[i], gid: t.gid, port: 4791 }, { sqPsn: w.psns[i], ...CONNECT });
    }
    fillPattern(w.mr, pairs);
    const t0 = performance.now();
    const remote = t.mr.addr;
    // Posted in slices of 16 QPs with a turn of the event loop between them: both devices share
    // this thread, and one synchronous loop over 3,000 postSends (about 250 ms here) kept the target
    // from answering while the writer's 67 ms ACK timers ran (10 QPs, 127 packets resent).
    for (let q0 = 0; q0 < pairs; q0 += LOAD_SLICE) {
      for (let q = q0; q < Math.min(pairs, q0 + LOAD_SLICE); q++) {
        postWrites(w.qps[q], q, w.mr, remote, t.mr.rkey);
      }
      await new Promise((r) => setImmediate(r));
    }
    const { statuses, completions, duplicates, missing } = await collectCompletions(w.cq, 3 * pairs, deadlineMs);
    const seconds = (performance.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 100)); // late ACKs settle before the counters are read
    const wrong = wrongWrites(t.mr, pairs);
    const wc = w.dev.queryCounters();
    const needed = neededPackets(pairs);
    const sent = Number(wc.sent_pkts);
    return {
      pairs, wrs: 3 * pairs, seconds, statuses, completions, duplicates, missing, wrongWrites: wrong,
      requestPackets: sent, neededPackets: needed, retransmitted: Math.max(0, sent - needed),
      retransmitPct: (100 * Math.max(0, sent - needed)) / needed,
      rssMiB: Math.round(process.memoryUsage().rss / 2 ** 20),
      writer: { counters: wc }, target: { counters: t.dev.queryCounters() },
    };
  } finally {
    w.dev.close();
    t?.dev.close();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const sizes = process.argv.slice(2).map(Number);
  console.log("load, one process: two UDP devices on loopback, RC QP pairs, 3 WRITEs each (1000, 4096, 9000 B), timeout 14, retry 7");
  for (const n of sizes.length ? sizes : [1000]) {
    const r = await runLoadInProcess(n);
    const st = Object.entries(r.statuses).map(([k, v]) => `${k} ${v}`).join(", ");
    console.log(`${String(n).padStart(5)} pairs: ${r.seconds.toFixed(2)} s; ${r.completions}/${r.wrs} WRs completed (${st}); ` +
      `duplicates ${r.duplicates}, never completed ${r.missing}; ${r.wrs - r.wrongWrites}/${r.wrs} WRITEs' bytes right`);
    console.log(`        request datagrams ${r.requestPackets} for ${r.neededPackets} needed: ${r.retransmitted} retransmitted (${r.retransmitPct.toFixed(2)} %); ` +
      `writer retry_exceeded ${r.writer.counters.retry_exceeded_err}, target duplicate_request ${r.target.counters.duplicate_request}; rss ${r.rssMiB} MiB`);
  }
}
