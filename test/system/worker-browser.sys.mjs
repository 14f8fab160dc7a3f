// The device in a Web Worker, in headless Chromium: a cross-origin-isolated page (COOP/COEP)
// opens openTunnelDevice(url, { worker: true }) through an in-process gateway; the worker owns
// the WebSocket and the transport, the page's thread posts WQEs and polls CQEs through the shared
// rings. RC WRITEs and SENDs with a Node UDP device (itself in a worker thread): every completion
// once and in order, every byte checked on both sides. A page without cross-origin isolation gets
// the single-thread device, and says so (device.worker false, workerFallback names the reason).
// system-suite-timeout: 300
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import { extname, join, normalize, sep } from "node:path";
import { pathToFileURL } from "node:url";
import { ROOT, requireTools, run, test, withTimeout } from "./lib/harness.mjs";

const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const TOKEN = "worker-browser-token";
const ALL = 1 | 2 | 4; // LOCAL_WRITE | REMOTE_WRITE | REMOTE_READ
const ADDR = "127.0.18.9";
const WRITES = Number(process.env.WORKER_BROWSER_WRITES ?? 20000);
const SENDS = Number(process.env.WORKER_BROWSER_SENDS ?? 2000);

requireTools([
  { cmd: CHROMIUM, pkg: "chromium", what: "chromium (/usr/bin/chromium)" },
  { cmd: process.execPath, args: ["-e", "import('playwright-core')"], pkg: "npm ci (playwright-core)", what: "playwright-core" },
]);
for (const f of ["dist/internal/browser.js", "dist/internal/device-worker.js", "dist/internal/node.js", "dist/node/device-thread.js", "build/softroce-shared.wasm"]) {
  if (!existsSync(join(ROOT, f))) throw new Error(`${f} is missing: npm run build`);
}

const MIME = { ".js": "text/javascript", ".wasm": "application/wasm", ".map": "application/json", ".html": "text/html" };
const PAGE = `<!doctype html><meta charset="utf-8"><title>softroce worker</title>
<script type="module">
try {
  window.sr = await import("/dist/internal/browser.js");
  window.__ready = "ok";
} catch (e) {
  window.__ready = String((e && e.stack) || e);
}
</script>`;

/** /isolated.html with COOP/COEP (and every resource with CORP), /plain.html without. */
function startServer() {
  const isolation = { "cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp", "cross-origin-resource-policy": "same-origin" };
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    let body;
    let type;
    const isolated = url.pathname === "/isolated.html" || url.searchParams.has("iso") || url.pathname.startsWith("/dist/");
    if (url.pathname === "/favicon.ico") {
      res.writeHead(204).end();
      return;
    }
    if (url.pathname === "/isolated.html" || url.pathname === "/plain.html") {
      body = PAGE;
      type = MIME[".html"];
    } else if (url.pathname.startsWith("/dist/internal/")) {
      const file = normalize(join(ROOT, decodeURIComponent(url.pathname)));
      if (file.startsWith(join(ROOT, "dist/internal") + sep) && existsSync(file)) {
        body = readFileSync(file);
        type = MIME[extname(file)] ?? "application/octet-stream";
      }
    }
    if (body === undefined) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found");
      return;
    }
    const plain = url.pathname === "/plain.html";
    res.writeHead(200, { "content-type": type, "cache-control": "no-store", ...(plain || !isolated ? {} : isolation) }).end(body);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve({ server, port: server.address().port }));
  });
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
  const { chromium } = await import("playwright-core");
  const node = await import(pathToFileURL(join(ROOT, "dist/internal/node.js")).href);
  const { Gateway } = await import(pathToFileURL(join(ROOT, "dist/gateway/index.js")).href);
  const { server, port: httpPort } = await startServer();
  const origin = `http://127.0.0.1:${httpPort}`;
  let browser;
  let gw;
  let n;
  try {
    const dev = await node.openDevice({ address: ADDR, port: 0, worker: true });
    assert.equal(dev.worker, true, "the Node device runs in a worker");
    const pd = dev.allocPd();
    const cq = dev.createCq(4096);
    const qp = pd.createQp({ qpType: node.QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 256, maxRecvWr: 1024, maxSendSge: 1, maxRecvSge: 1 } });
    const mr = pd.regMr(1 << 20, ALL);
    n = { dev, pd, cq, qp, mr, port: node.udpPortOf(dev) };
    gw = await Gateway.start({ port: 0, udpAddress: ADDR, udpPort: 0, token: TOKEN, origins: [origin], allow: [ADDR], dstPorts: [n.port] });
    const wsUrl = `ws://127.0.0.1:${gw.port}/tunnel?token=${TOKEN}`;

    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true, timeout: 60_000, handleSIGINT: false, handleSIGTERM: false });
    const page = await browser.newPage();
    const pageErrors = [];
    page.on("pageerror", (e) => pageErrors.push(String(e)));
    page.on("console", (m) => m.type() === "error" && pageErrors.push(m.text()));
    await page.goto(`${origin}/isolated.html`, { timeout: 30_000 });
    await page.waitForFunction(() => window.__ready !== undefined, null, { timeout: 30_000 });
    assert.equal(await page.evaluate(() => window.__ready), "ok", "the page failed to import dist/internal/browser.js");

    const b = await withTimeout(page.evaluate(pageOpen, wsUrl), 60_000, "openTunnelDevice({ worker: true }) in the page");
    assert.deepEqual([b.isolated, b.worker, b.fallback, b.shared], [true, true, null, true], `page device: ${JSON.stringify(b)} ${pageErrors}`);

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
    const plain = await browser.newPage();
    await plain.goto(`${origin}/plain.html`, { timeout: 30_000 });
    await plain.waitForFunction(() => window.__ready !== undefined, null, { timeout: 30_000 });
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
    if (browser) await browser.close().catch(() => {});
    if (gw) await withTimeout(gw.close(), 10_000, "gateway close").catch(() => {});
    if (n) n.dev.close();
    server.close();
  }
});

await run();
