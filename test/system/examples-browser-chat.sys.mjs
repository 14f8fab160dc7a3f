// examples/browser-chat end to end: `softroce playground` serves the chat at /chat/ and runs
// the gateway; two Chromium tabs join one room, connect RC QPs through the gateway (which
// hairpins tab-to-tab datagrams) and exchange messages as RC SENDs in both directions.
// A third tab is refused (the room is full), and bad rendezvous bodies get 400.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { request } from "node:http";
import { join } from "node:path";
import { ROOT, requireTools, run, test, withTimeout } from "./lib/harness.mjs";

const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const HOST = "127.0.14.2";

requireTools([
  { cmd: CHROMIUM, pkg: "chromium", what: "chromium (/usr/bin/chromium)" },
  { cmd: process.execPath, args: ["-e", "import('playwright-core')"], pkg: "npm ci (playwright-core)", what: "playwright-core" },
]);

function post(url, body) {
  return new Promise((resolve, reject) => {
    const data = typeof body === "string" ? body : JSON.stringify(body);
    const req = request(url, { method: "POST", headers: { "content-type": "application/json" } }, (res) => {
      let text = "";
      res.on("data", (c) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode, text }));
    });
    req.on("error", reject);
    req.end(data);
  });
}

test("two tabs chat over RC SEND through the gateway", async () => {
  const child = spawn(process.execPath, [join(ROOT, "dist/cli/softroce.js"), "playground", "--port", "0", "--host", HOST, "--udp-address", HOST, "--peer-address", "127.0.14.4", "--duration", "300"], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stderr.on("data", (d) => (err += d));
  const exited = new Promise((r) => child.once("exit", (code) => r(code)));
  let browser;
  try {
    const url = await withTimeout(new Promise((resolve, reject) => {
      child.stdout.on("data", (d) => {
        out += d;
        const m = /open (http:\S+)/.exec(out);
        if (m) resolve(m[1]);
      });
      child.once("exit", (c) => reject(new Error(`softroce playground exited ${c}: ${err}`)));
    }), 30_000, "softroce playground start");

    // the rendezvous refuses what it must
    assert.equal((await post(`${url}rendezvous`, "not json")).status, 400);
    assert.equal((await post(`${url}rendezvous`, { room: "../x", me: { qpn: 1, psn: 1, gid: "::1", port: 4791 } })).status, 400);
    assert.equal((await post(`${url}rendezvous`, { room: "r", me: { qpn: 1 << 24, psn: 1, gid: "::1", port: 4791 } })).status, 400);

    const { chromium } = await import("playwright-core");
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true, timeout: 60_000, handleSIGINT: false, handleSIGTERM: false });
    const tab = async (name) => {
      const page = await (await browser.newContext()).newPage();
      const errors = [];
      page.on("pageerror", (e) => errors.push(String(e)));
      await page.goto(`${url}chat/?room=sys-test&name=${name}&autojoin=1`, { timeout: 30_000 });
      return { page, errors };
    };
    const alice = await tab("alice");
    const bob = await tab("bob");
    for (const t of [alice, bob]) await t.page.waitForFunction(() => document.body.dataset.state === "connected" || document.body.dataset.state === "error", null, { timeout: 60_000 });
    for (const t of [alice, bob]) assert.equal(await t.page.evaluate(() => window.chat.state), "connected", await t.page.evaluate(() => window.chat.error ?? ""));

    const say = async (t, text) => {
      await t.page.locator("#text").fill(text);
      await t.page.locator("#text").press("Enter");
    };
    await say(alice, "hello bob, this is RDMA");
    await say(bob, "hi alice ✓");
    await say(alice, "x".repeat(1000));
    const want = [
      { from: "alice", text: "hello bob, this is RDMA" },
      { from: "bob", text: "hi alice ✓" },
      { from: "alice", text: "x".repeat(1000) },
    ];
    const heard = (t, n) => t.page.waitForFunction((n) => window.chat.messages.length >= n, n, { timeout: 30_000 });
    await heard(alice, 3);
    await heard(bob, 3);
    const sorted = (ms) => [...ms].sort((a, b) => a.text.localeCompare(b.text));
    assert.deepEqual(sorted(await alice.page.evaluate(() => window.chat.messages)), sorted(want));
    assert.deepEqual(sorted(await bob.page.evaluate(() => window.chat.messages)), sorted(want));
    assert.match(await bob.page.locator("#log").innerText(), /alice: hello bob, this is RDMA/);

    const carol = await tab("carol");
    await carol.page.waitForFunction(() => document.body.dataset.state === "error", null, { timeout: 30_000 });
    assert.match(await carol.page.evaluate(() => window.chat.error), /room is full/);
    assert.deepEqual([...alice.errors, ...bob.errors], []);
  } finally {
    if (browser) await withTimeout(browser.close(), 20_000, "browser.close").catch(() => {});
    if (child.exitCode === null) child.kill("SIGTERM"); // our child, by its PID
    assert.equal(await withTimeout(exited, 20_000, "softroce playground stop"), 0);
  }
});

await run();
