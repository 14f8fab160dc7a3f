// The playground in headless Chromium, served by `softroce playground`: every preset
// runs from its URL (?scenario=&seed=&autorun=1) and shows the packet sequence, completions
// and end states examples/playground/src/expected.ts lists; trace() rows are what
// `softroce decode --json` prints for the pcapng the page downloads (and tshark reads it);
// 10,000 packets keep the ladder virtualised; keyboard and phone width work; the page
// fetches nothing but its own files. SOFTROCE_PLAYGROUND_SCREENSHOTS=1 also writes
// docs/playground-*.png.
// system-suite-timeout: 900
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, get, request } from "node:http";
import { extname, join, normalize } from "node:path";
import { ROOT, requireTools, run, runProcess, tempDir, test, withTimeout } from "./lib/harness.mjs";
import { importTs } from "./lib/ts-import.mjs";

const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const HOST = "127.0.14.1";
const CLI = join(ROOT, "dist/cli/softroce.js");

requireTools([
  { cmd: CHROMIUM, pkg: "chromium", what: "chromium (/usr/bin/chromium)" },
  { cmd: process.execPath, args: ["-e", "import('playwright-core')"], pkg: "npm ci (playwright-core)", what: "playwright-core" },
  { cmd: "tshark", pkg: "tshark" },
]);

const { EXPECTED, firstPsn, packetLines } = await importTs("examples/playground/src/expected.ts");
const { SCENARIOS } = await importTs("examples/playground/src/scenarios.ts");
const { ADDRESS, wcStatusName } = await importTs("examples/playground/src/session.ts");

/** Starts `softroce playground` on a free port; resolves {url, gatewayUrl, stop}. */
async function startServer(extra = []) {
  assert.ok(existsSync(join(ROOT, "dist/playground/index.html")), "dist/playground missing: run npm run build");
  const child = spawn(process.execPath, [CLI, "playground", "--port", "0", "--host", HOST, "--udp-address", HOST, "--peer-address", "127.0.14.3", "--duration", "600", ...extra], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stderr.on("data", (d) => (err += d));
  const line = await withTimeout(
    new Promise((resolve, reject) => {
      child.stdout.on("data", (d) => {
        out += d;
        const m = /open (http:\S+)(?: \(live mode: gateway (ws:\S+)\))?/.exec(out);
        if (m) resolve({ url: m[1], gatewayUrl: m[2] });
      });
      child.once("exit", (code) => reject(new Error(`softroce playground exited ${code}: ${err}`)));
    }),
    30_000,
    "softroce playground start",
  );
  const exited = new Promise((r) => child.once("exit", (code, signal) => r({ code, signal })));
  return {
    ...line,
    output: () => out,
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM"); // our own child, by its PID
      const r = await withTimeout(exited, 20_000, "softroce playground stop");
      return r;
    },
  };
}

function fetchRaw(url, method = "GET") {
  return new Promise((resolve, reject) => {
    const req = request(url, { method }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on("error", reject);
    req.end();
  });
}

let browser;
async function newPage(opts = {}) {
  if (!browser) {
    const { chromium } = await import("playwright-core");
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true, timeout: 60_000, handleSIGINT: false, handleSIGTERM: false });
  }
  const context = await browser.newContext({ viewport: opts.viewport ?? { width: 1280, height: 720 }, acceptDownloads: true });
  const page = await context.newPage();
  const errors = [];
  const requests = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => m.type() === "error" && errors.push(`console: ${m.text()}`));
  page.on("request", (r) => requests.push(r.url()));
  page.on("websocket", (ws) => requests.push(ws.url()));
  const workers = []; // every Web Worker the page started (a device worker ends with its device)
  page.on("worker", (w) => workers.push(w.url()));
  return { page, context, errors, requests, workers };
}

async function runPreset(srv, name, seed = 1) {
  const p = await newPage();
  await p.page.goto(`${srv.url}?scenario=${name}&seed=${seed}&autorun=1`, { timeout: 30_000 });
  await p.page.waitForFunction(() => document.body.dataset.state === "done", null, { timeout: 120_000 });
  return p;
}

let srv;
test("softroce playground serves the page with cross-origin isolation and refuses what it must", async () => {
  srv = await startServer();
  assert.match(srv.gatewayUrl ?? "", /^ws:\/\/127\.0\.14\.1:\d+\/tunnel$/, `live mode gateway: ${srv.output()}`);
  const index = await fetchRaw(srv.url);
  assert.equal(index.status, 200);
  assert.equal(index.headers["cross-origin-opener-policy"], "same-origin");
  assert.equal(index.headers["cross-origin-embedder-policy"], "require-corp");
  assert.match(index.headers["content-type"], /^text\/html/);
  const js = await fetchRaw(new URL("playground.js", srv.url));
  assert.equal(js.status, 200);
  const wasmName = /["']\.\/(softroce-[\w-]+\.wasm)["']/.exec(js.body.toString())?.[1];
  assert.ok(wasmName, "the bundle names its wasm asset");
  const wasm = await fetchRaw(new URL(wasmName, srv.url));
  assert.equal(wasm.headers["content-type"], "application/wasm");
  assert.equal((await fetchRaw(`${srv.url}..%2f..%2fpackage.json`)).status, 403, "path traversal");
  assert.equal((await fetchRaw(`${srv.url}nope.html`)).status, 404);
  assert.equal((await fetchRaw(srv.url, "POST")).status, 405);
  const live = JSON.parse((await fetchRaw(new URL("live.json", srv.url))).body.toString());
  assert.equal(live.gateway, srv.gatewayUrl);
  const bad = await runProcess(process.execPath, [CLI, "playground", "--port", "70000"], { timeoutMs: 20_000 });
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /--port/);
  const help = await runProcess(process.execPath, [CLI, "playground", "--help"], { timeoutMs: 20_000 });
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Cross-Origin-Embedder-Policy/);
});

test("under softroce playground the page is cross-origin isolated; from a server without the headers it says it runs single-threaded", async () => {
  const iso = await newPage();
  try {
    await iso.page.goto(srv.url, { timeout: 30_000 });
    await iso.page.waitForFunction(() => document.body.dataset.state === "ready", null, { timeout: 30_000 });
    assert.equal(await iso.page.evaluate(() => globalThis.crossOriginIsolated), true);
    assert.equal(await iso.page.evaluate(() => typeof SharedArrayBuffer), "function");
    assert.equal(await iso.page.evaluate(() => document.body.dataset.isolated), "1");
    assert.match(await iso.page.locator("#mode").innerText(), /^cross-origin isolated/);
    assert.deepEqual(iso.errors, []);
  } finally {
    await iso.context.close();
  }
  // the same folder from a plain static server (no COOP/COEP): not isolated, and the page says so
  const dir = join(ROOT, "dist/playground");
  const plain = createServer(async (req, res) => {
    const path = new URL(req.url, "http://x").pathname.replace(/^\/$/, "/index.html");
    const file = normalize(join(dir, path));
    if (!file.startsWith(dir) || !existsSync(file)) return res.writeHead(404).end();
    const type = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".wasm": "application/wasm" }[extname(file)] ?? "application/octet-stream";
    res.writeHead(200, { "content-type": type }).end(readFileSync(file));
  });
  await new Promise((r) => plain.listen(0, HOST, r));
  const p = await newPage();
  try {
    await p.page.goto(`http://${HOST}:${plain.address().port}/?scenario=lost-ack&autorun=1`, { timeout: 30_000 });
    await p.page.waitForFunction(() => document.body.dataset.state === "done", null, { timeout: 60_000 });
    assert.equal(await p.page.evaluate(() => globalThis.crossOriginIsolated), false);
    assert.equal(await p.page.evaluate(() => document.body.dataset.isolated), "0");
    assert.match(await p.page.locator("#mode").innerText(), /not cross-origin isolated.*single-threaded/);
    assert.deepEqual(packetLines(await p.page.evaluate(() => window.softroce.playground.trace()), ADDRESS.A), EXPECTED["lost-ack"].packets, "the page works without isolation");
    assert.deepEqual(p.errors.filter((e) => !/live\.json|404/.test(e)), []);
  } finally {
    await p.context.close();
    await new Promise((r) => plain.close(r));
  }
});

for (const sc of ["lost-middle-packet", "lost-ack", "rnr", "lost-read-response", "retry-exhausted", "wrong-rkey", "psn-wrap", "uc-gap", "ud-wrong-qkey"]) {
  test(`preset ${sc}: expected packets, completions and end states in Chromium`, async () => {
    assert.ok(SCENARIOS.some((s) => s.name === sc), `${sc} is a preset`);
    const exp = EXPECTED[sc];
    const { page, context, errors, requests } = await runPreset(srv, sc);
    try {
      const rows = await page.evaluate(() => window.softroce.playground.trace());
      assert.deepEqual(packetLines(rows, ADDRESS.A), exp.packets);
      if (exp.firstPsn !== undefined) assert.equal(firstPsn(rows), exp.firstPsn);
      for (const r of rows) {
        assert.equal(typeof r.t_us, "number");
        assert.equal(typeof r["frame.time_epoch"], "string");
        assert.equal(r.icrc_ok, true);
      }
      const wcs = await page.evaluate(() => window.softroce.playground.completions());
      const sides = await page.evaluate((qpns) => qpns.map((q) => window.softroce.playground.sideOf(q)), wcs.map((wc) => wc.qpNum));
      assert.deepEqual(wcs.map((wc, i) => `${sides[i]} wr=${wc.wrId} ${wcStatusName(wc.status)}`), exp.completions);
      assert.deepEqual(await page.evaluate(() => window.softroce.playground.timers()), exp.timers);
      for (const wc of wcs) assert.equal(typeof wc.wrId, "string", "bigint fields as decimal strings");
      const rxe = await page.evaluate(() => window.softroce.playground.rxe());
      for (const want of exp.rxe) assert.ok(rxe.includes(want), `${want} in ${rxe}`);
      const state = await page.evaluate(() => window.softroce.playground.state());
      assert.deepEqual([state.A.qpState, state.B.qpState], exp.qpStates);
      // the page shows it: the ladder has the rows, the QP table the states, the CQ table the statuses
      const ladderText = await page.locator("#ladder").innerText();
      assert.ok((await page.locator("#ladder [data-row]").count()) >= exp.packets.length);
      if (exp.packets.some((p) => p.endsWith(" lost"))) assert.match(ladderText, /lost \(scripted\)/);
      if (exp.timers.length) assert.match(ladderText, /timer fired/);
      for (const [frame, note] of Object.entries(exp.notes)) {
        const row = await page.locator(`#ladder [data-row]`).filter({ hasText: new RegExp(`#${frame} `) }).innerHTML();
        assert.ok(row.includes(note.replace(/&/g, "&amp;")), `ladder row #${frame} says "${note}": ${row}`);
      }
      const qps = await page.locator("#qps").innerText();
      for (const s of exp.qpStates) assert.match(qps, new RegExp(s));
      const cq = await page.locator("#cq").innerText();
      for (const c of exp.completions) assert.ok(cq.includes(c.split(" ")[2]), `CQ table shows ${c}`);
      // an error completion's opcode and byte_len are not valid (ibv_poll_cq): the table shows none
      const cqRows = await page.locator("#cq tbody tr").allInnerTexts();
      assert.equal(cqRows.length, exp.completions.length);
      cqRows.forEach((row, i) => {
        const cells = row.split("\t");
        if (exp.completions[i].endsWith(" SUCCESS")) assert.match(cells[4], /^[A-Z_]+$/, row);
        else assert.deepEqual(cells.slice(4, 6), ["—", "—"], row);
      });
      assert.match(await page.locator("#explain").innerText(), /.{100,}/, "the preset's explanation is shown");
      const own = new URL(srv.url).origin;
      assert.deepEqual(requests.filter((u) => !u.startsWith(own) && !u.startsWith("data:") && !u.startsWith("blob:")), [], "no network beyond the page's own files");
      assert.deepEqual(errors, []);
      if (process.env.SOFTROCE_PLAYGROUND_SCREENSHOTS === "1" && ["lost-middle-packet", "rnr", "wrong-rkey"].includes(sc)) {
        const NAK_ROW = { "lost-middle-packet": 4, rnr: 1, "wrong-rkey": 1 };
        await page.locator(`#ladder [data-row="${NAK_ROW[sc]}"]`).click();
        await page.locator("#tree [data-field='infiniband.aeth.syndrome']").click();
        writeFileSync(join(ROOT, `docs/playground-${sc}.png`), await page.screenshot());
      }
    } finally {
      await context.close();
    }
  });
}

test("the downloaded pcapng: softroce decode --json prints the rows trace() gives, tshark reads fates and PSNs", async () => {
  const { page, context } = await runPreset(srv, "lost-middle-packet");
  try {
    const rows = await page.evaluate(() => window.softroce.playground.trace());
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download")]);
    const file = join(tempDir("pg"), download.suggestedFilename());
    await download.saveAs(file);
    assert.match(download.suggestedFilename(), /^softroce-lost-middle-packet-seed1\.pcapng$/);
    const dec = await runProcess(process.execPath, [CLI, "decode", "--json", "--pcap", file], { timeoutMs: 30_000 });
    assert.equal(dec.code, 0, dec.stderr);
    const recs = dec.stdout.trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(recs, rows.map(({ fate, t_us, ...rec }) => rec));
    const ts = await runProcess("tshark", ["-r", file, "--disable-protocol", "rpcordma", "-T", "fields", "-e", "infiniband.bth.psn", "-e", "frame.comment"], { timeoutMs: 60_000 });
    assert.equal(ts.code, 0, ts.stderr);
    const lines = ts.stdout.trim().split("\n");
    assert.equal(lines.length, rows.length);
    assert.equal(lines[1].split("\t")[0], String(rows[1]["infiniband.bth.psn"]));
    assert.match(lines[1], /^\d+\tfate=lost reason=scripted \(2nd data packet\)/);
  } finally {
    await context.close();
  }
});

test("10,000 packets: the run yields to the page, the ladder stays virtualised and scrolls to the end", async () => {
  const { page, context, errors } = await newPage();
  try {
    await page.goto(`${srv.url}?op=write&size=65536&depth=40&mtu=256&autorun=1`, { timeout: 30_000 });
    // while it runs, the page answers (the run goes in slices between frames)
    await page.waitForFunction(() => document.body.dataset.state === "running" || document.body.dataset.state === "done", null, { timeout: 30_000 });
    const midRun = await page.evaluate(() => ({ state: document.body.dataset.state }));
    assert.ok(midRun.state === "running" || midRun.state === "done");
    await page.waitForFunction(() => document.body.dataset.state === "done", null, { timeout: 240_000 });
    const n = await page.evaluate(() => window.softroce.playground.trace().length);
    assert.ok(n >= 10_000, `${n} packets`);
    const inDom = await page.evaluate(() => window.softroce.playground.ladderRowsInDom());
    assert.ok(inDom > 0 && inDom < 200, `${inDom} ladder rows in the DOM for ${n} packets`);
    await page.locator("#ladder").focus();
    await page.keyboard.press("End");
    const last = await page.locator("#ladder [data-row].selected").getAttribute("data-row");
    assert.ok(Number(last) >= n - 1, `End selects the last row (${last})`);
    assert.match(await page.locator("#tree").innerText(), /Frame \d+/);
    const wcs = await page.evaluate(() => window.softroce.playground.completions());
    assert.equal(wcs.length, 40);
    assert.ok(wcs.every((w) => w.status === 0));
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

test("keyboard: step with s, select packets with the arrow keys, a field highlights its bytes", async () => {
  const { page, context, errors } = await newPage();
  try {
    await page.goto(`${srv.url}?scenario=lost-middle-packet`, { timeout: 30_000 });
    await page.waitForFunction(() => document.body.dataset.state === "ready", null, { timeout: 30_000 });
    await page.locator("body").press("s");
    await page.waitForFunction(() => document.body.dataset.state === "paused", null, { timeout: 10_000 });
    await page.locator("body").press("Space");
    await page.waitForFunction(() => document.body.dataset.state === "done", null, { timeout: 60_000 });
    await page.locator("#ladder").focus();
    await page.keyboard.press("ArrowDown");
    await page.keyboard.press("ArrowDown");
    assert.match(await page.locator("#tree").innerText(), /Frame 2: .*lost \(scripted: 2nd data packet\)/);
    // Tab into the tree and onto a field: its bytes light up in the hex view
    const psn = page.locator("#tree [data-field='infiniband.bth.psn']");
    await psn.focus();
    await page.keyboard.press("Enter");
    assert.equal(await page.locator("#hex .b.on").count(), 3, "the PSN is 3 bytes");
    const psn2 = await page.evaluate(() => window.softroce.playground.trace()[1]["infiniband.bth.psn"]);
    assert.equal((await page.locator("#hex .b.on").allInnerTexts()).join(""), Number(psn2).toString(16).padStart(6, "0"));
    // a setting change goes into the URL and replays
    await page.locator("#seed").fill("7");
    await page.locator("#seed").press("Enter");
    await page.locator("#seed").blur();
    await page.waitForFunction(() => location.search.includes("seed=7"), null, { timeout: 10_000 });
    assert.match(page.url(), /scenario=lost-middle-packet&seed=7/);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

test("phone width (375 px): nothing overflows sideways, the CQ and memory tables fit their boxes; a bad URL value is reported, not thrown", async () => {
  const { page, context, errors } = await newPage({ viewport: { width: 375, height: 812 } });
  try {
    await page.goto(`${srv.url}?scenario=rnr&autorun=1&loss=7&op=bogus`, { timeout: 30_000 });
    await page.waitForFunction(() => document.body.dataset.state === "done", null, { timeout: 60_000 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `${overflow} px wider than the screen`);
    // only the ladder scrolls sideways (by design); every other box shows its content whole
    const scrolled = await page.evaluate(() =>
      [...document.querySelectorAll("main > section:not(#ladder-box), main > section:not(#ladder-box) *")]
        .filter((el) => el.clientWidth > 1 && el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX !== "visible")
        .map((el) => `${el.closest("section").getAttribute("aria-label")}: <${el.tagName.toLowerCase()} id="${el.id}" class="${el.className}"> ${el.scrollWidth} px in ${el.clientWidth}`),
    );
    assert.deepEqual(scrolled, []);
    // a completion is a card of labelled fields at this width: each field's name before its value
    const card = await page.evaluate(() => [...document.querySelectorAll("#cq tbody tr:first-child td")].map((td) => [getComputedStyle(td, "::before").content, td.textContent]));
    assert.deepEqual(card.slice(1, 4), [['"CQ "', "A"], ['"wr_id "', "1"], ['"status "', "SUCCESS"]]);
    const problems = await page.locator("#problems").innerText();
    assert.match(problems, /loss=7/);
    assert.match(problems, /op=bogus/);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

for (const op of ["write", "read", "send", "fetch-add"]) {
  test(`live mode: ${op} from the page through the gateway to the Node device on UDP`, async () => {
    const { page, context, errors, requests, workers } = await newPage();
    try {
      await page.goto(`${srv.url}?live=1&worker=0&op=${op}&size=3000&depth=2&autorun=1`, { timeout: 30_000 });
      await page.waitForFunction(() => ["done", "error"].includes(document.body.dataset.state), null, { timeout: 60_000 });
      assert.equal(await page.evaluate(() => document.body.dataset.state), "done", await page.locator("#problems").innerText());
      const rows = await page.evaluate(() => window.softroce.playground.trace());
      const wcs = await page.evaluate(() => window.softroce.playground.completions());
      assert.deepEqual(wcs.map((w) => [w.wrId, w.status]), [["1", 0], ["2", 0]]);
      const names = rows.map((r) => r.opcode_name);
      const want = { write: "RC RDMA Write First", read: "RC RDMA Read Response First", send: "RC Send First", "fetch-add": "RC Fetch Add" }[op];
      assert.ok(names.includes(want), `${want} in ${names}`);
      assert.ok(names.some((n) => /Acknowledge|Read Response/.test(n)), "responses came back from the peer");
      for (const r of rows) {
        assert.equal(r.icrc_ok, true, `ICRC of ${r.opcode_name}`);
        assert.equal(r["udp.dstport"], 4791);
      }
      assert.ok(requests.some((u) => u === srv.gatewayUrl), `the page opened the gateway: ${requests}`);
      assert.match(await page.locator("#lanes").innerText(), /127\.0\.14\.3:4791 \(Node, UDP\)/);
      assert.match(await page.locator("#mode").innerText(), /single-threaded on the page's thread/);
      assert.deepEqual(workers, [], "worker=0: no device worker");
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });
}

test("live mode with the device in a Web Worker (the default on an isolated page): the worker owns the tunnel; the ladder has the bytes the worker captured", async () => {
  const { page, context, errors, workers } = await newPage();
  try {
    await page.goto(`${srv.url}?live=1&op=write&size=3000&depth=2&autorun=1`, { timeout: 30_000 });
    await page.waitForFunction(() => ["done", "error"].includes(document.body.dataset.state), null, { timeout: 60_000 });
    assert.equal(await page.evaluate(() => document.body.dataset.state), "done", await page.locator("#problems").innerText());
    assert.match(await page.locator("#mode").innerText(), /runs in a Web Worker/);
    assert.ok(workers.some((u) => /device-worker\.js$/.test(u)), `a device worker: ${workers}`);
    assert.equal(await page.locator("#worker").isChecked(), true);
    const wcs = await page.evaluate(() => window.softroce.playground.completions());
    assert.deepEqual(wcs.map((w) => [w.wrId, w.status]), [["1", 0], ["2", 0]]);
    const rows = await page.evaluate(() => window.softroce.playground.trace());
    const names = rows.map((r) => r.opcode_name);
    for (const want of ["RC RDMA Write First", "RC RDMA Write Last", "RC Acknowledge"]) assert.ok(names.includes(want), `${want} in ${names}`);
    // the worker's port streams each datagram's bytes back (WorkerPort capture): the same ladder as on the page's thread
    assert.ok(rows.every((r) => typeof r["infiniband.bth.psn"] === "number" && r.fate === "delivered" && r.icrc_ok === true));
    assert.equal(await page.locator("#download").isDisabled(), false, "pcapng from the worker's captured bytes");
    // untick: the same run on the page's thread, with bytes
    await page.locator("#worker").uncheck();
    await page.waitForFunction(() => location.search.includes("worker=0"), null, { timeout: 10_000 });
    await page.locator("#run").click();
    await page.waitForFunction(() => ["done", "error"].includes(document.body.dataset.state), null, { timeout: 60_000 });
    assert.match(await page.locator("#mode").innerText(), /single-threaded/);
    assert.ok((await page.evaluate(() => window.softroce.playground.trace())).every((r) => r.icrc_ok === true));
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

test("softroce playground stops cleanly on SIGTERM", async () => {
  if (browser) await withTimeout(browser.close(), 20_000, "browser.close").catch(() => {});
  browser = undefined;
  const r = await srv.stop();
  assert.equal(r.code, 0, `exit ${r.code ?? r.signal}: ${srv.output()}`);
  assert.match(srv.output(), /stopped/);
  srv = undefined;
});

await run();
if (browser) await browser.close().catch(() => {});
if (srv) await srv.stop().catch(() => {});
