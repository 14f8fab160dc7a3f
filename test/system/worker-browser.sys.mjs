// The device in a Web Worker, in headless Chromium: a cross-origin-isolated page (COOP/COEP)
// opens openTunnelDevice(url, { worker: true }) through an in-process gateway; the worker owns
// the WebSocket and the transport, the page's thread posts WQEs and polls CQEs through the shared
// rings. RC WRITEs and SENDs with a Node UDP device (itself in a worker thread): every completion
// once and in order, every byte checked on both sides. A page without cross-origin isolation gets
// the single-thread device, and says so (device.worker false, workerFallback names the reason).
// system-suite-timeout: 300
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { ROOT, run, test, withTimeout } from "./lib/harness.mjs";
import { requireBrowser, startBrowserGateway } from "./lib/browser-gateway.mjs";

const TOKEN = "worker-browser-token";
const ALL = 1 | 2 | 4; // LOCAL_WRITE | REMOTE_WRITE | REMOTE_READ
const ADDR = "127.0.18.9";
const WRITES = Number(process.env.WORKER_BROWSER_WRITES ?? 20000);
const SENDS = Number(process.env.WORKER_BROWSER_SENDS ?? 2000);

requireBrowser();
for (const f of ["dist/internal/browser.js", "dist/internal/device-worker.js", "dist/internal/node.js", "dist/node/device-thread.js", "build/softroce-shared.wasm"]) {
  if (!existsSync(join(ROOT, f))) throw new Error(`${f} is missing: npm run build`);
}

const pattern = (i, k) => (i * 31 + k * 7 + (i >>> 8)) & 0xff;

/** In the page: the tunnel device in a worker, an RC QP, CQ and a 1 MiB MR. */
async function pageOpen(url) {
  const sr = window.sr;
  const { device, link } = await sr.openTunnelDevice(url, { worker: true, helloTimeoutMs: 20000 });
  const pd = device.allocPd();
  const cq = device.createCq(1024);
  const qp = pd.createQp({ qpType: sr.QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 256, maxRecvWr: 256, maxSendSge: 1, maxRecvSge: 1 } });
  const mr = pd.regMr(1 << 20, 7);
  window.t = { device, link, pd, cq, qp, mr };
  return {
    worker: device.worker, fallback: device.workerFallback ?? null, isolated: self.crossOriginIsolated, shared: device.memory.buffer instanceof SharedArrayBuffer,
    qpNum: qp.qpNum, rkey: mr.rkey, addr: String(mr.addr), gid: device.queryGid(0), hello: { ...link.hello },
  };
}

/** In the page: WRITES RDMA WRITEs of 64 B into the Node MR, SENDS SENDs of 200 B; posts while completions come. */
async function pageFlow({ rkey, addr, writes, sends }) {
  const { t, sr } = window;
  const pattern = (i, k) => (i * 31 + k * 7 + (i >>> 8)) & 0xff;
  const SIZE = 64;
  const SLOTS = (1 << 20) / 2 / SIZE; // first half of the page's MR: WRITE sources; second half: SEND sources
  const base = BigInt(addr);
  let posted = 0;
  let done = 0;
  const errors = [];
  const total = writes + sends;
  const post = () => {
    const wrs = [];
    while (posted < total && posted - done < 128 && wrs.length < 32) {
      const i = posted++;
      if (i < writes) {
        const off = (i % SLOTS) * SIZE;
        for (let k = 0; k < SIZE; k++) t.mr.bytes[off + k] = pattern(i, k);
        wrs.push({ wrId: BigInt(i), opcode: sr.WrOpcode.RDMA_WRITE, sendFlags: sr.SendFlags.SIGNALED, sgList: [t.mr.sge(off, SIZE)], rdma: { remoteAddr: base + BigInt(off), rkey } });
      } else {
        const j = i - writes;
        const off = (1 << 19) + (j % 1024) * 200;
        for (let k = 0; k < 200; k++) t.mr.bytes[off + k] = pattern(j, k);
        wrs.push({ wrId: BigInt(i), opcode: sr.WrOpcode.SEND_WITH_IMM, immData: j, sendFlags: sr.SendFlags.SIGNALED, sgList: [t.mr.sge(off, 200)] });
      }
    }
    if (wrs.length) t.qp.postSend(wrs);
  };
  const t0 = performance.now();
  post();
  while (done < total) {
    let batch = t.cq.poll(64);
    if (batch.length === 0) batch = [await t.cq.next()];
    for (const wc of batch) {
      if (wc.status !== 0 || Number(wc.wrId) !== done) errors.push(`wc ${done}: wrId ${wc.wrId} status ${wc.status}`);
      done++;
    }
    if (errors.length) break;
    post();
  }
  return { done, errors: errors.slice(0, 5), ms: performance.now() - t0, calls: null };
}

test("Chromium, cross-origin isolated: the tunnel device in a Web Worker; WRITEs and SENDs with a Node worker device, every CQE once and every byte checked", async () => {
  const node = await import(pathToFileURL(join(ROOT, "dist/internal/node.js")).href);
  let env;
  let n;
  try {
    const dev = await node.openDevice({ address: ADDR, port: 0, worker: true });
    assert.equal(dev.worker, true, "the Node device runs in a worker");
    const pd = dev.allocPd();
    const cq = dev.createCq(4096);
    const qp = pd.createQp({ qpType: node.QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 256, maxRecvWr: 1024, maxSendSge: 1, maxRecvSge: 1 } });
    const mr = pd.regMr(1 << 20, ALL);
    n = { dev, pd, cq, qp, mr, port: node.udpPortOf(dev) };
    env = await startBrowserGateway({ token: TOKEN, gateway: { udpAddress: ADDR, allow: [ADDR], dstPorts: [n.port] } });
    const { gw } = env;
    const wsUrl = env.wsUrl();
    const page = await env.openPage("/isolated.html");
    const pageErrors = page.errors;

    const b = await withTimeout(page.evaluate(pageOpen, wsUrl), 60_000, "openTunnelDevice({ worker: true }) in the page");
    assert.deepEqual([b.isolated, b.worker, b.fallback, b.shared], [true, true, null, true], `page device: ${JSON.stringify(b)} ${pageErrors}`);
    // the worker's WebSocket speaks tunnel version 2 (BATCH frames)
    assert.equal(b.hello.version, 2, `HELLO from the worker's tunnel: ${JSON.stringify(b.hello)}`);

    // openDevice({ worker: true }) on no network: the control verbs from the page's main thread
    // (which may not block: it spins for the worker's answer), errors keep their class and code
    const local = await withTimeout(page.evaluate(async () => {
      const d = await window.sr.openDevice({ worker: true });
      const pd = d.allocPd();
      const mr = pd.regMr(4096, 7);
      mr.bytes[5] = 42;
      const out = { worker: d.worker, maxQp: d.query().maxQp, gid: d.queryGid(0).slice(0, 4), byte: new Uint8Array(d.memory.buffer)[Number(mr.addr) + 5] };
      let err = "";
      try {
        d.createCq(1 << 30);
      } catch (e) {
        err = `${e.name} ${e.code}`;
      }
      d.close();
      return { ...out, err };
    }), 60_000, "openDevice({ worker: true }) in the page");
    assert.deepEqual(local, { worker: true, maxQp: 256, gid: "fe80", byte: 42, err: "VerbsError EINVAL" });

    const o = { qpAccessFlags: ALL, timeout: 16, retryCnt: 7 };
    node.connectQp(n.qp, { qpNum: b.qpNum, psn: 0x300, gid: b.gid, port: gw.udpPort }, { sqPsn: 0x400, ...o });
    await page.evaluate(({ qpNum, gid, port, o }) => window.sr.connectQp(window.t.qp, { qpNum, psn: 0x400, gid, port }, { sqPsn: 0x300, ...o }), { qpNum: n.qp.qpNum, gid: n.dev.queryGid(0), port: n.port, o });

    // Node side: receives for every SEND, reposted as they complete; each checked byte by byte.
    let recvPosted = 0;
    const postRecvs = (upTo) => {
      const wrs = [];
      while (recvPosted < upTo) {
        const j = recvPosted++;
        wrs.push({ wrId: BigInt(j), sgList: [n.mr.sge((1 << 19) + (j % 1024) * 256, 256)] });
      }
      if (wrs.length) n.qp.postRecv(wrs);
    };
    postRecvs(Math.min(SENDS, 1024));
    let received = 0;
    let badRecv = 0;
    const recvDone = (async () => {
      while (received < SENDS) {
        let batch = n.cq.poll(64);
        if (batch.length === 0) batch = [await n.cq.next()];
        for (const wc of batch) {
          const j = Number(wc.wrId);
          if (wc.status !== 0 || j !== received || wc.byteLen !== 200 || wc.immData !== j) badRecv++;
          const off = (1 << 19) + (j % 1024) * 256;
          for (let k = 0; k < 200; k++) if (n.mr.bytes[off + k] !== pattern(j, k)) badRecv++;
          received++;
        }
        postRecvs(Math.min(SENDS, received + 1024));
      }
    })();

    const r = await withTimeout(page.evaluate(pageFlow, { rkey: n.mr.rkey, addr: String(n.mr.addr), writes: WRITES, sends: SENDS }), 200_000, "the page's WRITEs and SENDs");
    assert.deepEqual(r.errors, [], "page completions");
    assert.equal(r.done, WRITES + SENDS);
    await withTimeout(recvDone, 30_000, "the Node side's receives");
    assert.equal(received, SENDS);
    assert.equal(badRecv, 0, "received SENDs: wrong completions or bytes");
    // the last (1 MiB / 2 / 64) WRITEs are still in the Node MR, byte for byte
    const SLOTS = (1 << 20) / 2 / 64;
    let badWrite = 0;
    for (let i = Math.max(0, WRITES - SLOTS); i < WRITES; i++) {
      const off = (i % SLOTS) * 64;
      for (let k = 0; k < 64; k++) if (n.mr.bytes[off + k] !== pattern(i, k)) badWrite++;
    }
    assert.equal(badWrite, 0, "WRITE bytes in the Node MR");
    assert.deepEqual(pageErrors, []);
    console.log(`    page: ${WRITES} WRITEs + ${SENDS} SENDs in ${Math.round(r.ms)} ms through the worker`);

    // A page without COOP/COEP: no SharedArrayBuffer, the single-thread device, reported.
    // BATCH both ways: fewer WebSocket messages than datagrams
    assert.ok(gw.counters.framesIn < gw.counters.udpOut, `page messages ${gw.counters.framesIn}, datagrams ${gw.counters.udpOut}`);
    assert.ok(gw.counters.framesOut < gw.counters.udpIn, `messages to the page ${gw.counters.framesOut}, datagrams ${gw.counters.udpIn}`);
    const plain = await env.openPage("/plain.html");
    const p = await withTimeout(plain.evaluate(async (url) => {
      const { device } = await window.sr.openTunnelDevice(url, { worker: true, helloTimeoutMs: 20000 });
      const out = { isolated: self.crossOriginIsolated, sab: typeof SharedArrayBuffer, worker: device.worker, fallback: device.workerFallback };
      device.close();
      return out;
    }, wsUrl), 60_000, "the plain page");
    assert.equal(p.isolated, false);
    assert.equal(p.worker, false);
    assert.match(p.fallback, /cross-origin isolated/);
    await page.evaluate(() => window.t.device.close());
  } finally {
    if (env) await env.close();
    if (n) n.dev.close();
  }
});

await run();
