// The device in a worker thread under a long run: two worker devices over loopback UDP, the
// application thread posting 10^6 operations (SEND_WITH_IMM and RDMA_WRITE_WITH_IMM of 64 B,
// alternating) while the workers complete them. The sender sees every completion once, in order,
// successful; the receiver sees every receive completion once, in order, with its immediate, and
// checks every byte of every message (SENDs in the receive buffer, WRITEs in their slot of the
// MR — slots outnumber what can be in flight, so none is overwritten before it is checked). The
// receiver runs with both spins on (its application's look at the CQ, its worker's spin); the sender
// as openDevice opens it by default, the round trip's levers on (its worker's look for the answer
// and its application's look yielding; WORKER_STRESS_SENDER=plain: both off).
//   node test/system/run.mjs worker-stress   (after npm run build)   env WORKER_STRESS_OPS, WORKER_STRESS_SENDER
// system-suite-timeout: 1500
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { ROOT, run, test } from "./lib/harness.mjs";

const OPS = Number(process.env.WORKER_STRESS_OPS ?? 1_000_000);
const SIZE = 64;
const RQ = 512;
const WINDOW = 128;
const SLOTS = 4096; // > RQ + WINDOW: a WRITE's slot is checked before the sender can reuse it
const A = "127.0.10.20";
const B = "127.0.10.21";
const SENDER = process.env.WORKER_STRESS_SENDER ?? "default";
if (!["default", "plain"].includes(SENDER)) throw new RangeError(`WORKER_STRESS_SENDER=${SENDER}: default or plain`);

for (const f of ["dist/internal/node.js", "dist/node/device-thread.js", "build/softroce-shared.wasm"]) {
  if (!existsSync(join(ROOT, f))) throw new Error(`${f} is missing: npm run build`);
}

const pattern = (i, k) => (i * 131 + k * 7 + (i >>> 11)) & 0xff;

test(`10^${Math.log10(OPS).toFixed(1)} operations through worker devices: no completion lost or duplicated, every byte checked`, async () => {
  const sr = await import(pathToFileURL(join(ROOT, "dist/internal/node.js")).href);
  const ACCESS = sr.Access.LOCAL_WRITE | sr.Access.REMOTE_WRITE;
  const open = async (address, spins, plain = false) => {
    const dev = await sr.openDevice({ address, port: 0, worker: true, workerSpinUs: spins ? 50 : 0, ...(plain ? { workerAnswerSpinUs: 0, workerAppSpinYield: false } : {}) });
    // the receiver with both spins on: its application thread looks at the CQ it awaits (racing the
    // worker's notifies) and its worker spins for the answer
    if (spins) sr.setWorkerAppSpin(dev, 200);
    assert.equal(dev.worker, true, `no worker: ${dev.workerFallback}`);
    const pd = dev.allocPd();
    const cq = dev.createCq(4 * RQ);
    const qp = pd.createQp({ qpType: sr.QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 2 * WINDOW, maxRecvWr: RQ, maxSendSge: 1, maxRecvSge: 1 } });
    const mr = pd.regMr(2 * SLOTS * SIZE, ACCESS);
    return { dev, cq, qp, mr };
  };
  const a = await open(A, false, SENDER === "plain");
  const b = await open(B, true);
  try {
    const o = { qpAccessFlags: ACCESS, timeout: 14, retryCnt: 7, rnrRetry: 7, minRnrTimer: 1 };
    sr.connectQp(a.qp, { qpNum: b.qp.qpNum, psn: 11, gid: `::ffff:${B}`, port: sr.udpPortOf(b.dev) }, { sqPsn: 22, ...o });
    sr.connectQp(b.qp, { qpNum: a.qp.qpNum, psn: 22, gid: `::ffff:${A}`, port: sr.udpPortOf(a.dev) }, { sqPsn: 11, ...o });

    // receiver: receive buffers in the second half of its MR (one per RQ slot), WRITE slots in the first
    const recvBuf = (j) => SLOTS * SIZE + (j % RQ) * SIZE;
    let recvPosted = 0;
    const postRecvs = (upTo) => {
      const wrs = [];
      while (recvPosted < upTo) {
        const j = recvPosted++;
        wrs.push({ wrId: BigInt(j), sgList: [b.mr.sge(recvBuf(j), SIZE)] });
      }
      if (wrs.length) b.qp.postRecv(wrs);
    };
    postRecvs(Math.min(OPS, RQ));
    let received = 0;
    let bad = 0;
    const firstBad = [];
    const receiver = (async () => {
      while (received < OPS) {
        let batch = b.cq.poll(64);
        if (!batch.length) batch = [await b.cq.next()];
        for (const wc of batch) {
          const i = received;
          const write = i % 2 === 1;
          const off = write ? (i % SLOTS) * SIZE : recvBuf(i);
          let ok = wc.status === 0 && Number(wc.wrId) === i && wc.immData === (i >>> 0) && wc.byteLen === SIZE && wc.opcode === (write ? sr.WcOpcode.RECV_RDMA_WITH_IMM : sr.WcOpcode.RECV);
          for (let k = 0; k < SIZE; k++) if (b.mr.bytes[off + k] !== pattern(i, k)) ok = false;
          if (!ok) {
            bad++;
            if (firstBad.length < 3) firstBad.push({ i, wrId: String(wc.wrId), status: wc.status, imm: wc.immData, byteLen: wc.byteLen, opcode: wc.opcode });
          }
          received++;
        }
        postRecvs(Math.min(OPS, received + RQ));
      }
    })();

    // sender: posts while its completions come; every completion once, in order
    let posted = 0;
    let done = 0;
    let sendBad = 0;
    let firstSendBad;
    const t0 = performance.now();
    const post = () => {
      const wrs = [];
      while (posted < OPS && posted - done < WINDOW && wrs.length < 32) {
        const i = posted++;
        const off = (i % SLOTS) * SIZE;
        for (let k = 0; k < SIZE; k++) a.mr.bytes[off + k] = pattern(i, k);
        const wr = { wrId: BigInt(i), immData: i >>> 0, sendFlags: sr.SendFlags.SIGNALED, sgList: [a.mr.sge(off, SIZE)] };
        if (i % 2 === 1) wrs.push({ ...wr, opcode: sr.WrOpcode.RDMA_WRITE_WITH_IMM, rdma: { remoteAddr: b.mr.addr + BigInt(off), rkey: b.mr.rkey } });
        else wrs.push({ ...wr, opcode: sr.WrOpcode.SEND_WITH_IMM });
      }
      if (wrs.length) a.qp.postSend(wrs);
    };
    post();
    let lastLog = t0;
    while (done < OPS) {
      let batch = a.cq.poll(64);
      if (!batch.length) batch = [await a.cq.next()];
      for (const wc of batch) {
        if (wc.status !== 0 || Number(wc.wrId) !== done) {
          sendBad++;
          firstSendBad ??= { done, wrId: String(wc.wrId), status: wc.status, vendorErr: wc.vendorErr, opcode: wc.opcode };
        }
        done++;
      }
      if (sendBad) break;
      post();
      if (performance.now() - lastLog > 30_000) {
        lastLog = performance.now();
        console.log(`    ${done} / ${OPS} done (${Math.round(done / ((lastLog - t0) / 1000))} ops/s)`);
      }
    }
    if (sendBad) {
      const counters = (d) => Object.entries(d.queryCounters()).filter(([, v]) => v).map(([k, v]) => `${k} ${v}`).join(", ");
      const ports = async (d) => {
        const st = await d.port.fetchStats();
        return JSON.stringify({ port: st.port, link: st.link, datapath: Object.fromEntries(Object.entries(st.datapath ?? {}).filter(([, v]) => v)) });
      };
      assert.fail(`sender completions out of order or failed at ${done}: first ${JSON.stringify(firstSendBad)}; sender counters: ${counters(a.dev)}; receiver counters: ${counters(b.dev)}; sender port ${await ports(a.dev)}; receiver port ${await ports(b.dev)}`);
    }
    await receiver;
    const s = (performance.now() - t0) / 1000;
    const lost = (d) => {
      const st = sr.workerStatsOf(d);
      return `${st.appLostWakeups}/${st.workerLostWakeups} (late, not lost: ${st.appLateWakeups}/${st.workerLateWakeups})`;
    };
    const looks = sr.workerStatsOf(b.dev);
    const sl = sr.workerStatsOf(a.dev);
    console.log(`    ${OPS} operations in ${s.toFixed(1)} s (${Math.round(OPS / s)} ops/s); receiver ${received}, bad ${bad}; lost wake-ups (application/worker) sender ${lost(a.dev)}, receiver ${lost(b.dev)}; receiver's looks: ${looks.appSpinHits} caught, ${looks.appSpinMisses} empty, ${looks.appSpinSkips} skipped; its worker's spins caught ${looks.spinHits}; sender (${SENDER}): its worker's looks for the answer caught ${sl.answerSpinHits}, ${sl.answerSpinMisses} empty, ${sl.answerSpinGated} held back; its application's looks ${sl.appSpinHits} caught, ${sl.appSpinMisses} empty`);
    assert.equal(received, OPS);
    assert.deepEqual(firstBad, []);
    assert.equal(bad, 0);
    assert.deepEqual([a.cq.poll(8).length, b.cq.poll(8).length], [0, 0], "no completion beyond the last");
  } finally {
    a.dev.close();
    b.dev.close();
  }
});

await run({ testTimeoutMs: 1_400_000 });
