// A gateway and headless Chromium pages that load the browser bundle: what the system suites that
// run a page's device through the gateway (browser-gateway, worker-browser) share.
//   requireBrowser()            the tools check (chromium, playwright-core), before any test
//   startBrowserGateway(opts)   an HTTP server for the pages and dist/, the gateway (dist/gateway),
//                               and Chromium; returns { gw, origin, wsUrl(token), openPage(path), close() }
// Every page is the same small module page: it imports dist/internal/browser.js as `window.sr`
// (every export; dist/browser/ is served too) and says `window.__ready`. `isolated: true` serves it
// with COOP/COEP (and every resource with CORP) at /isolated.html, for SharedArrayBuffer;
// /plain.html never is. openPage waits for the import and fails on a page that could not load it;
// errors in the page are collected in `page.errors`.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import { extname, join, normalize, sep } from "node:path";
import { pathToFileURL } from "node:url";
import { ROOT, requireTools, withTimeout } from "./harness.mjs";

export const CHROMIUM = "/usr/bin/chromium";
export const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

/** The tools a browser suite needs (a missing one fails the suite naming its package). */
export function requireBrowser() {
  requireTools([
    { cmd: CHROMIUM, pkg: "chromium", what: "chromium (/usr/bin/chromium)" },
    { cmd: process.execPath, args: ["-e", "import('playwright-core')"], pkg: "npm ci (playwright-core)", what: "playwright-core" },
  ]);
}

const MIME = { ".js": "text/javascript", ".wasm": "application/wasm", ".map": "application/json", ".html": "text/html" };
const PAGE = `<!doctype html><meta charset="utf-8"><title>softroce</title>
<script type="module">
try {
  window.sr = await import("/dist/internal/browser.js");
  window.__ready = "ok";
} catch (e) {
  window.__ready = String((e && e.stack) || e);
}
</script>`;
const SERVED = ["dist/browser", "dist/internal"].map((d) => join(ROOT, d) + sep);
const ISOLATION = { "cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp", "cross-origin-resource-policy": "same-origin" };

/** The pages' HTTP server on 127.0.0.1 (a free port). */
function startPageServer() {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    let body;
    let type;
    if (url.pathname === "/favicon.ico") return void res.writeHead(204).end();
    if (url.pathname === "/tunnel.html" || url.pathname === "/isolated.html" || url.pathname === "/plain.html") {
      body = PAGE;
      type = MIME[".html"];
    } else if (url.pathname.startsWith("/dist/")) {
      const file = normalize(join(ROOT, decodeURIComponent(url.pathname)));
      if (SERVED.some((d) => file.startsWith(d)) && existsSync(file)) {
        body = readFileSync(file);
        type = MIME[extname(file)] ?? "application/octet-stream";
      }
    }
    if (body === undefined) return void res.writeHead(404, { "content-type": "text/plain" }).end("not found");
    // the isolated page and everything it loads carry COOP/COEP/CORP; the plain page nothing
    const isolated = url.pathname === "/isolated.html" || url.pathname.startsWith("/dist/");
    res.writeHead(200, { "content-type": type, "cache-control": "no-store", ...(isolated ? ISOLATION : {}) }).end(body);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve({ server, port: server.address().port }));
  });
}

/**
 * Starts the page server, a gateway and Chromium. `gateway`: Gateway.start options (port 0 and
 * udpPort 0 by default; `origins` gets the page server's origin). Close with `close()` (also after
 * a failure part-way: whatever started is stopped).
 */
export async function startBrowserGateway({ gateway = {}, token } = {}) {
  const { chromium } = await import("playwright-core");
  const { Gateway } = await import(pathToFileURL(join(ROOT, "dist/gateway/index.js")).href);
  const { server, port } = await startPageServer();
  const origin = `http://127.0.0.1:${port}`;
  let gw;
  let browser;
  const close = async () => {
    if (browser) await withTimeout(browser.close(), 20_000, "browser.close").catch(() => {});
    if (gw) await withTimeout(gw.close(), 10_000, "gateway close").catch(() => {});
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  };
  try {
    gw = await Gateway.start({ port: 0, udpPort: 0, token, ...gateway, origins: [origin, ...(gateway.origins ?? [])] });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true, timeout: 60_000, handleSIGINT: false, handleSIGTERM: false });
  } catch (e) {
    await close();
    throw e;
  }
  return {
    gw,
    browser,
    origin,
    /** The tunnel URL with the token in the query (browsers cannot set headers on a WebSocket). */
    wsUrl: (t = token) => `ws://127.0.0.1:${gw.port}/tunnel${t === undefined ? "" : `?token=${encodeURIComponent(t)}`}`,
    /** A new page at `path` (/tunnel.html, /isolated.html, /plain.html) with `window.sr` loaded; `page.errors` collects its errors. */
    async openPage(path = "/tunnel.html") {
      const page = await browser.newPage();
      page.errors = [];
      page.on("pageerror", (e) => page.errors.push(String(e)));
      page.on("console", (m) => m.type() === "error" && page.errors.push(m.text()));
      await page.goto(`${origin}${path}`, { timeout: 30_000 });
      await page.waitForFunction(() => window.__ready !== undefined, null, { timeout: 30_000 });
      assert.equal(await page.evaluate(() => window.__ready), "ok", `the page ${path} failed to import the browser bundle`);
      return page;
    },
    close,
  };
}
