// The load proof in ONE process: two Node UDP devices (127.0.12.5 and 127.0.12.6, port 4791)
// in the same event loop, N RC QP pairs between them, 3 WRITEs per pair (1000, 4096 and 9000
// bytes) with the default ACK timeout (14, 67 ms) and retry count (7), as bench/load.mjs does
// across two processes. Here both devices share one thread, so every datagram the writer sends
// competes with the target's receive work (the issue saw this fail from 250 pairs).
// Prints time, WRs by status, duplicates, bytes checked, retransmissions and memory.
// Usage: node bench/load-inproc.mjs [pairs ...]  (default 1000). runLoadInProcess() is what
// test/system/load.sys.mjs asserts on.
import { fileURLToPath } from "node:url";
import { openDevice, connectQp, randomPsn, QpType, Access, SendFlags, WcStatus, WrOpcode } from "../dist/internal/node.js";

const SIZES = [1000, 4096, 9000];
const OFFS = [0, 1024, 5120];
const SLOT = 14336;
const MTU = 1024;
const LOAD_SLICE = Number(process.env.LOAD_SLICE ?? 16);
const byte = (q, w, i) => (q * 11 + w * 17 + i * 29 + 3) & 0xff;

async function side(address, n) {
  const dev = await openDevice({
    address, port: 4791, maxQp: n + 16, maxCq: 4, maxCqe: 32767, maxMr: 16,
    mrArenaBytes: Math.max(16 << 20, n * SLOT + (1 << 20)), ringArenaBytes: Math.max(16 << 20, n * 4096),
  });
  const pd = dev.allocPd();
  const cq = dev.createCq(Math.min(32767, 3 * n + 16));
  const mr = pd.regMr(n * SLOT, Access.LOCAL_WRITE | Access.REMOTE_WRITE);
  const qps = Array.from({ length: n }, () => pd.createQp({
    qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 4, maxRecvWr: 1, maxSendSge: 1, maxRecvSge: 1 },
  }));
  return { dev, cq, mr, qps, psns: qps.map(() => randomPsn()), gid: dev.queryGid(0) };
}

/** One round with `pairs` QP pairs in this process (writer and target at `addresses`); resolves with the figures. */
export async function runLoadInProcess(pairs, { deadlineMs = 180_000, addresses = ["127.0.12.5", "127.0.12.6"] } = {}) {
  const w = await side(addresses[0], pairs);
  let t;
  try {
    t = await side(addresses[1], pairs);
    const opts = { qpAccessFlags: Access.REMOTE_WRITE, timeout: 14, retryCnt: 7, rnrRetry: 7 };
    for (let i = 0; i < pairs; i++) {
      connectQp(t.qps[i], { qpNum: w.qps[i].qpNum, psn: w.psns[i], gid: w.gid, port: 4791 }, { sqPsn: t.psns[i], ...opts });
      connectQp(w.qps[i], { qpNum: t.qps[i].qpNum, psn: t.psns[i], gid: t.gid, port: 4791 }, { sqPsn: w.psns[i], ...opts });
    }
    for (let q = 0; q < pairs; q++) for (let k = 0; k < 3; k++) {
      const o = q * SLOT + OFFS[k];
      for (let i = 0; i < SIZES[k]; i++) w.mr.bytes[o + i] = byte(q, k, i);
    }
    const t0 = performance.now();
    const remote = t.mr.addr;
    // Posted in slices of 16 QPs with a turn of the event loop between them: both devices share
    // this thread, and one synchronous loop over 3,000 postSends (about 250 ms here) kept the target
    // from answering while the writer's 67 ms ACK timers ran (10 QPs, 127 packets resent).
    for (let q0 = 0; q0 < pairs; q0 += LOAD_SLICE) {
      for (let q = q0; q < Math.min(pairs, q0 + LOAD_SLICE); q++) {
        for (let k = 0; k < 3; k++) {
          w.qps[q].postSend({
            wrId: BigInt(q * 3 + k), opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED,
            sgList: [w.mr.sge(q * SLOT + OFFS[k], SIZES[k])], rdma: { remoteAddr: remote + BigInt(q * SLOT + OFFS[k]), rkey: t.mr.rkey },
          });
        }
      }
      await new Promise((r) => setImmediate(r));
    }
    const seen = new Uint8Array(3 * pairs);
    const statuses = {};
    let completions = 0;
    let duplicates = 0;
    const end = Date.now() + deadlineMs;
    while (completions < 3 * pairs && Date.now() < end) {
      const wcs = w.cq.poll(256);
      if (!wcs.length) { await new Promise((r) => setTimeout(r, 1)); continue; }
      for (const wc of wcs) {
        completions++;
        const id = Number(wc.wrId);
        if (seen[id]) duplicates++;
        seen[id]++;
        const s = Object.keys(WcStatus).find((k) => WcStatus[k] === wc.status) ?? String(wc.status);
        statuses[s] = (statuses[s] ?? 0) + 1;
      }
    }
    const seconds = (performance.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 100)); // late ACKs settle before the counters are read
    let wrongWrites = 0;
    for (let q = 0; q < pairs; q++) for (let k = 0; k < 3; k++) {
      const o = q * SLOT + OFFS[k];
      for (let i = 0; i < SIZES[k]; i++) if (t.mr.bytes[o + i] !== byte(q, k, i)) { wrongWrites++; break; }
    }
    const wc = w.dev.queryCounters();
    const needed = pairs * SIZES.reduce((n, s) => n + Math.ceil(s / MTU), 0);
    const sent = Number(wc.sent_pkts);
    return {
      pairs, wrs: 3 * pairs, seconds, statuses, completions, duplicates, missing: seen.filter((x) => x === 0).length, wrongWrites,
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
