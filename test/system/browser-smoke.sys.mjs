// Browser smoke test: headless Chromium loads dist/browser/ from a loopback HTTP
// server, instantiates the core and computes ICRCs; plus the "no node: in the
// browser build" guarantees (the shipped bundle, and esbuild.config.mjs really
// rejecting a node: import reachable from host/browser).
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync, appendFileSync } from "node:fs";
import { createServer } from "node:http";
import { extname, join, normalize, sep } from "node:path";
import { pathToFileURL } from "node:url";
import { ROOT, requireTools, run, runProcess, tempDir, test, withTimeout } from "./lib/harness.mjs";
import { hex, referenceIcrc, unhex } from "./lib/icrc.mjs";

const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

// Golden vectors whose ICRCs come from elsewhere: a ConnectX-4 Lx CNP (the capture in
// scapy's test/contrib/roce.uts) and scapy's UC SEND_ONLY example.
const GOLDEN = [
  {
    name: "ConnectX-4 Lx CNP (Ethernet header stripped)",
    packet:
      "45c2003c718c4000401191610a0011010a001201000012b7002800008100ffff4000011800000000000000000000000000000000000000" +
      "0082fd002a",
    icrc: "82fd002a",
  },
  {
    name: "scapy UC SEND_ONLY",
    packet:
      "45010040047840004011b4d5c0a80007c0a80007c00012b7002caca22460ffff000000d300cf17104630818be28935d90e9a95505401be88" +
      "5e50000078f353f3",
    icrc: "78f353f3",
  },
];

// A packet for the page to emit: RC SEND ONLY with 5 payload bytes (3 bytes of pad).
const EMIT_SPEC = {
  ipVersion: 4,
  src: "192.0.2.1",
  dst: "192.0.2.2",
  ipId: 0x1234,
  ipFlags: 2,
  ttl: 64,
  tos: 0,
  udpSrcPort: 0xc001,
  opcode: 0x04,
  se: 1,
  pkey: 0xffff,
  destQp: 0x000011,
  ackReq: 1,
  psn: 0x00abcd,
  payload: [1, 2, 3, 4, 5],
};

requireTools([
  { cmd: CHROMIUM, pkg: "chromium", what: "chromium (/usr/bin/chromium)" },
  { cmd: process.execPath, args: ["-e", "import('playwright-core')"], pkg: "npm ci (playwright-core)", what: "playwright-core" },
]);

const BROWSER_DIR = join(ROOT, "dist/browser");
const BUNDLE = join(BROWSER_DIR, "index.js");

test("the browser bundle exists and imports nothing from node:", () => {
  assert.ok(existsSync(BUNDLE), `${BUNDLE} missing: run npm run build`);
  const text = readFileSync(BUNDLE, "utf8");
  const hits = text.match(/(?:\bfrom\s*|\bimport\s*\(?\s*|\brequire\s*\(\s*)["']node:[^"']*["']/g) ?? [];
  assert.deepEqual(hits, [], "dist/browser/index.js imports node: modules");
  assert.doesNotMatch(text, /["']node:/, "dist/browser/index.js mentions a node: specifier");
  // The asset URL is a string literal in the bundle (a comment may name build/softroce.wasm too).
  const refs = [...new Set([...text.matchAll(/["'`](?:\.\/)?([\w.-]+\.wasm)["'`]/g)].map((m) => m[1]))];
  // two assets: the core, and its threads build for the device worker (openDevice({ worker: true }))
  const kinds = refs.map((r) => r.replace(/-[A-Z0-9]+\.wasm$/, "")).sort();
  assert.deepEqual(kinds, ["softroce", "softroce-shared"], `the bundle should reference the core and its threads build, found: ${refs.join(", ") || "none"}`);
  for (const r of refs) assert.ok(readdirSync(BROWSER_DIR).includes(r), `dist/browser/${r} (referenced by the bundle) is missing`);
});

// Copies the build inputs to a temp project (node_modules linked) and runs the
// real esbuild.config.mjs there: first unchanged (must build), then with a
// module under host/core importing node:fs re-exported from host/core/index.ts
// (reachable from host/browser): the build must fail on the browser entry.
test("esbuild.config.mjs rejects a node: import reachable from host/browser", async () => {
  const dir = tempDir("esbuild");
  for (const f of ["esbuild.config.mjs", "package.json", "tsconfig.json"]) cpSync(join(ROOT, f), join(dir, f));
  cpSync(join(ROOT, "host"), join(dir, "host"), { recursive: true, filter: (src) => !src.includes(`${sep}native${sep}build`) });
  mkdirSync(join(dir, "build"));
  for (const w of ["softroce.wasm", "softroce-shared.wasm"]) cpSync(join(ROOT, "build", w), join(dir, "build", w));
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"), "dir");

  const clean = await runProcess(process.execPath, ["esbuild.config.mjs"], { cwd: dir, timeoutMs: 120_000 });
  assert.equal(clean.timedOut, false, "control build timed out");
  assert.equal(clean.code, 0, `control build (unchanged sources) failed:\n${clean.stderr}`);
  assert.ok(existsSync(join(dir, "dist/browser/index.js")), "control build wrote no dist/browser/index.js");

  writeFileSync(
    join(dir, "host/core/leak-node.ts"),
    'import { readFileSync } from "node:fs";\nexport const leakedReadFile = readFileSync;\n',
  );
  appendFileSync(join(dir, "host/core/index.ts"), '\nexport { leakedReadFile } from "./leak-node.js";\n');
  const leaky = await runProcess(process.execPath, ["esbuild.config.mjs"], { cwd: dir, timeoutMs: 120_000 });
  assert.equal(leaky.timedOut, false, "leaky build timed out");
  assert.notEqual(leaky.code, 0, "esbuild.config.mjs built a browser bundle that imports node:fs");
  const msg = leaky.stderr + leaky.stdout;
  assert.match(msg, /node:fs/, `the error does not name node:fs:\n${msg}`);
  assert.match(msg, /leak-node\.ts/, `the error does not name the importing file:\n${msg}`);
});

const MIME = { ".js": "text/javascript", ".wasm": "application/wasm", ".map": "application/json", ".html": "text/html" };

function pageHtml() {
  return `<!doctype html><meta charset="utf-8"><title>softroce smoke</title>
<script type="module">
const GOLDEN = ${JSON.stringify(GOLDEN)};
const SPEC = ${JSON.stringify(EMIT_SPEC)};
const fromHex = (h) => new Uint8Array(h.match(/../g).map((b) => parseInt(b, 16)));
const toHex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const icrcHex = (v) => (typeof v === "number" ? (v >>> 0).toString(16).padStart(8, "0") : toHex(v));
const out = {};
try {
  const sr = await import("/dist/internal/browser.js");
  out.exports = Object.keys(sr).sort();
  const mod = await sr.coreModule();
  out.isModule = mod instanceof WebAssembly.Module;
  const core = await sr.instantiateCore(mod);
  out.memoryBytes = core.memory.buffer.byteLength;
  const codec = await sr.WireCodec.create(mod);
  out.golden = GOLDEN.map((g) => icrcHex(codec.icrc(fromHex(g.packet))));
  const spec = { ...SPEC, payload: Uint8Array.from(SPEC.payload) };
  const pkt = codec.emit(spec);
  out.emitted = toHex(pkt);
  out.emittedIcrc = icrcHex(codec.icrc(pkt));
  const parsed = codec.parse(pkt);
  out.parsed = parsed.ok ? { ok: true, opcode: parsed.repr.opcode, psn: parsed.repr.psn, icrcOk: parsed.repr.icrcOk } : { ok: false, error: String(parsed.error) };
} catch (e) {
  out.error = String((e && e.stack) || e);
}
window.__softroce = out;
</script>`;
}

// The verbs API end to end in the page: two devices on the simulated wire (one
// virtual clock), a bad flow with its errno, then RC WRITE, READ and SEND with
// every byte checked and every completion's fields reported.
function verbsPageHtml() {
  return `<!doctype html><meta charset="utf-8"><title>softroce verbs</title>
<script type="module">
const out = {};
try {
  const sr = await import("/dist/internal/browser.js");
  const { Access, QpType, QpState, WrOpcode, SendFlags, Mtu } = sr;
  const mod = await sr.coreModule();
  const net = new sr.SimNetwork({ seed: 3, faults: { delayUs: 5 } });
  const ALL = Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ;
  const side = async (addr) => {
    const dev = await net.addDevice(mod, addr);
    const pd = dev.allocPd();
    const cq = dev.createCq(64);
    const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 16, maxRecvWr: 16, maxSendSge: 2, maxRecvSge: 2 } });
    const mr = pd.regMr(16384, ALL);
    return { dev, pd, cq, qp, mr };
  };
  const a = await side("127.0.0.1");
  const b = await side("127.0.0.2");
  try {
    a.qp.postSend({ wrId: 1n, opcode: WrOpcode.SEND, sgList: [] });
    out.badFlow = "no error";
  } catch (e) {
    out.badFlow = e.code + " " + (e.message.includes("ibv_post_send") ? "names the verb" : e.message);
  }
  const common = { pathMtu: Mtu.MTU_1024, qpAccessFlags: ALL, timeout: 10 };
  sr.connectQp(a.qp, { qpNum: b.qp.qpNum, psn: 0xfffffe, gid: "::ffff:127.0.0.2" }, { sqPsn: 0xfffff0, ...common });
  sr.connectQp(b.qp, { qpNum: a.qp.qpNum, psn: 0xfffff0, gid: "::ffff:127.0.0.1" }, { sqPsn: 0xfffffe, ...common });
  out.states = [a.qp.query().attr.qpState, b.qp.query().attr.qpState];
  for (let i = 0; i < 3000; i++) a.mr.bytes[i] = (i * 7 + 1) & 0xff;
  for (let i = 0; i < 100; i++) a.mr.bytes[8192 + i] = 200 - i;
  b.qp.postRecv({ wrId: 9n, sgList: [{ addr: b.mr.addr + 12000n, length: 256, lkey: b.mr.lkey }] });
  a.qp.postSend([
    { wrId: 1n, opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED,
      sgList: [{ addr: a.mr.addr, length: 3000, lkey: a.mr.lkey }], rdma: { remoteAddr: b.mr.addr + 100n, rkey: b.mr.rkey } },
    { wrId: 2n, opcode: WrOpcode.RDMA_READ, sendFlags: SendFlags.SIGNALED,
      sgList: [{ addr: a.mr.addr + 4096n, length: 3000, lkey: a.mr.lkey }], rdma: { remoteAddr: b.mr.addr + 100n, rkey: b.mr.rkey } },
    { wrId: 3n, opcode: WrOpcode.SEND_WITH_IMM, sendFlags: SendFlags.SIGNALED, immData: 0x01020304,
      sgList: [{ addr: a.mr.addr + 8192n, length: 100, lkey: a.mr.lkey }] },
  ]);
  net.run(10_000_000);
  const wc = (cq) => cq.poll(16).map((w) => ({ wrId: String(w.wrId), status: w.status, opcode: w.opcode, byteLen: w.byteLen, immData: w.immData }));
  out.aWc = wc(a.cq);
  out.bWc = wc(b.cq);
  let bad = 0;
  for (let i = 0; i < 3000; i++) {
    if (b.mr.bytes[100 + i] !== ((i * 7 + 1) & 0xff)) bad++;
    if (a.mr.bytes[4096 + i] !== ((i * 7 + 1) & 0xff)) bad++;
  }
  for (let i = 0; i < 100; i++) if (b.mr.bytes[12000 + i] !== 200 - i) bad++;
  out.badBytes = bad;
  out.packets = net.wire.stats.delivered;
  out.counters = b.dev.queryCounters().rcvd_pkts;
} catch (e) {
  out.error = String((e && e.stack) || e);
}
window.__softroce = out;
</script>`;
}

function startServer() {
  const requests = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    let body;
    let type;
    if (url.pathname === "/favicon.ico") {
      res.writeHead(204).end();
      return;
    }
    if (url.pathname === "/" || url.pathname === "/smoke.html") {
      body = pageHtml();
      type = MIME[".html"];
    } else if (url.pathname === "/verbs.html") {
      body = verbsPageHtml();
      type = MIME[".html"];
    } else if (url.pathname.startsWith("/dist/browser/") || url.pathname.startsWith("/dist/internal/")) {
      // the public bundle, or the repository's internal one (every export, not published)
      const file = normalize(join(ROOT, decodeURIComponent(url.pathname)));
      if ((file.startsWith(BROWSER_DIR + sep) || file.startsWith(join(ROOT, "dist/internal") + sep)) && existsSync(file)) {
        body = readFileSync(file);
        type = MIME[extname(file)] ?? "application/octet-stream";
      }
    }
    requests.push({ path: url.pathname, status: body === undefined ? 404 : 200, type });
    if (body === undefined) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found");
      return;
    }
    res.writeHead(200, { "content-type": type, "cache-control": "no-store" }).end(body);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve({ server, requests, port: server.address().port }));
  });
}

test("Chromium loads dist/browser, computes the golden ICRCs and emits a packet with a correct ICRC", async () => {
  const { chromium } = await import("playwright-core");
  const { server, requests, port } = await startServer();
  let browser;
  try {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: CHROMIUM_ARGS,
      headless: true,
      timeout: 60_000,
      handleSIGINT: false,
      handleSIGTERM: false,
    });
    const page = await browser.newPage();
    const pageErrors = [];
    page.on("pageerror", (e) => pageErrors.push(String(e)));
    page.on("console", (m) => {
      if (m.type() === "error") pageErrors.push(`console: ${m.text()}`);
    });
    await page.goto(`http://127.0.0.1:${port}/smoke.html`, { timeout: 30_000 });
    await page.waitForFunction(() => window.__softroce !== undefined, null, { timeout: 30_000 });
    const out = await page.evaluate(() => window.__softroce);
    assert.equal(out.error, undefined, `page threw:\n${out.error}\nexports: ${out.exports}`);
    assert.equal(out.isModule, true, "coreModule() did not give a WebAssembly.Module");
    assert.ok(out.memoryBytes >= 64 * 65536, `core memory ${out.memoryBytes} bytes`);
    assert.deepEqual(out.golden, GOLDEN.map((g) => g.icrc), "golden-vector ICRCs");

    const emitted = unhex(out.emitted);
    assert.equal(emitted.length, 20 + 8 + 12 + 8 + 4, "RC SEND ONLY with 5 bytes + 3 pad, IPv4");
    assert.equal(emitted[0], 0x45);
    assert.equal(emitted[28], 0x04, "BTH opcode");
    assert.equal((emitted[29] >> 4) & 3, 3, "BTH pad count");
    assert.equal(hex(emitted.subarray(40, 45)), "0102030405", "payload");
    assert.equal(hex(emitted.subarray(45, 48)), "000000", "pad bytes");
    const ref = hex(referenceIcrc(emitted));
    assert.equal(hex(emitted.subarray(-4)), ref, "the ICRC Chromium emitted vs the reference ICRC");
    assert.equal(out.emittedIcrc, ref, "codec.icrc() in Chromium vs the reference ICRC");
    assert.deepEqual(out.parsed, { ok: true, opcode: 0x04, psn: 0x00abcd, icrcOk: true }, "parse of the emitted packet");

    // The same bytes as the Node bundle emits (one core, two hosts).
    const node = await import(pathToFileURL(join(ROOT, "dist/internal/node.js")).href);
    const nodeCodec = await node.WireCodec.create(await node.coreModule());
    const nodePkt = nodeCodec.emit({ ...EMIT_SPEC, payload: Uint8Array.from(EMIT_SPEC.payload) });
    assert.equal(out.emitted, hex(nodePkt), "Chromium and Node emit different bytes for one spec");

    const wasmReq = requests.find((r) => r.path.endsWith(".wasm"));
    assert.ok(wasmReq, `the page never fetched the wasm: ${JSON.stringify(requests)}`);
    assert.equal(wasmReq.status, 200);
    assert.equal(wasmReq.type, "application/wasm");
    assert.deepEqual(pageErrors, [], "errors in the page");
  } finally {
    if (browser) await withTimeout(browser.close(), 20_000, "browser.close").catch(() => {});
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});

test("Chromium runs the verbs API and RC WRITE, READ and SEND over the simulated wire", async () => {
  const { chromium } = await import("playwright-core");
  const { server, port } = await startServer();
  let browser;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true, timeout: 60_000, handleSIGINT: false, handleSIGTERM: false });
    const page = await browser.newPage();
    const pageErrors = [];
    page.on("pageerror", (e) => pageErrors.push(String(e)));
    await page.goto(`http://127.0.0.1:${port}/verbs.html`, { timeout: 30_000 });
    await page.waitForFunction(() => window.__softroce !== undefined, null, { timeout: 60_000 });
    const out = await page.evaluate(() => window.__softroce);
    assert.equal(out.error, undefined, `page threw:\n${out.error}`);
    assert.equal(out.badFlow, "EINVAL names the verb", "post_send before RTS");
    assert.deepEqual(out.states, [3, 3], "both QPs in RTS");
    // WC opcodes: RDMA_WRITE 1, RDMA_READ 2, SEND 0, RECV 128; status 0 = SUCCESS
    // rxe's send CQEs carry the WR's length as byte_len (make_send_cqe)
    assert.deepEqual(out.aWc, [
      { wrId: "1", status: 0, opcode: 1, byteLen: 3000, immData: 0 },
      { wrId: "2", status: 0, opcode: 2, byteLen: 3000, immData: 0 },
      { wrId: "3", status: 0, opcode: 0, byteLen: 100, immData: 0 },
    ]);
    assert.equal(out.bWc.length, 1, `receive completions: ${JSON.stringify(out.bWc)}`);
    assert.deepEqual(out.bWc[0], { wrId: "9", status: 0, opcode: 128, byteLen: 100, immData: 0x01020304 });
    assert.equal(out.badBytes, 0, "bytes placed by WRITE, READ and SEND");
    assert.ok(out.packets >= 3 + 3 + 1, `packets on the wire: ${out.packets}`);
    assert.deepEqual(pageErrors, []);
  } finally {
    if (browser) await withTimeout(browser.close(), 20_000, "browser.close").catch(() => {});
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});

await run();
