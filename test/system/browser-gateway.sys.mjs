// The browser through the gateway: headless Chromium loads dist/browser from a
// loopback HTTP server, opens a tunnel device with openTunnelDevice("ws://…?token=…")
// to an in-process gateway, and does RC WRITE, READ and SEND with a Node UDP
// device on 127.0.0.1 — bytes and completions checked on both sides. A second page
// with a wrong token is refused (HTTP 401 bad_token at the gateway) while the
// first page's tunnel keeps working. Also the Node openTunnelDevice (dist/node, ws client).
// system-suite-timeout: 240
import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { ROOT, run, test, withTimeout } from "./lib/harness.mjs";
import { requireBrowser, startBrowserGateway } from "./lib/browser-gateway.mjs";

const TOKEN = "browser-gw-token";
const ALL = 1 | 2 | 4; // LOCAL_WRITE | REMOTE_WRITE | REMOTE_READ

requireBrowser();

/** In the page: open the tunnel device and an RC QP, PD, CQ and a 16 KiB MR; returns what the peer needs. */
async function pageOpen(url) {
  const sr = window.sr;
  const { device, link } = await sr.openTunnelDevice(url, { helloTimeoutMs: 20000 }); // a loaded machine can be slow
  const pd = device.allocPd();
  const cq = device.createCq(64);
  const qp = pd.createQp({ qpType: sr.QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 16, maxRecvWr: 16, maxSendSge: 1, maxRecvSge: 1 } });
  const mr = pd.regMr(16384, 7);
  window.t = { device, link, pd, cq, qp, mr };
  return { qpNum: qp.qpNum, rkey: mr.rkey, addr: String(mr.addr), gid: device.queryGid(0), hello: { ...link.hello } };
}

async function openNode(node) {
  return openNodeSide(node, await node.openDevice({ address: "127.0.0.1", port: 0 }));
}

function openNodeSide(node, dev) {
  const pd = dev.allocPd();
  const cq = dev.createCq(64);
  const qp = pd.createQp({ qpType: node.QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 16, maxRecvWr: 16, maxSendSge: 1, maxRecvSge: 1 } });
  const mr = pd.regMr(16384, ALL);
  return { dev, pd, cq, qp, mr, port: dev.limits.port };
}

const pattern = (n, k) => Uint8Array.from({ length: n }, (_, i) => (i * k + 3) & 0xff);
const wcOf = (w) => ({ wrId: String(w.wrId), status: w.status, opcode: w.opcode, byteLen: w.byteLen });

test("Chromium through the gateway: RC WRITE, READ and SEND with a Node UDP device; a wrong token is refused", async () => {
  const node = await import(pathToFileURL(join(ROOT, "dist/internal/node.js")).href);
  const logs = [];
  let env;
  let n;
  try {
    n = await openNode(node);
    env = await startBrowserGateway({ token: TOKEN, gateway: { allow: ["127.0.0.1"], dstPorts: [n.port], log: (r) => logs.push(r) } });
    const { gw, wsUrl } = env;
    const page = await env.openPage("/tunnel.html");
    const pageErrors = page.errors;

    // Open the tunnel device in the page; its identity is the gateway's HELLO.
    const b = await withTimeout(page.evaluate(pageOpen, wsUrl(TOKEN)), 30_000, "openTunnelDevice in the page");
    assert.deepEqual(
      [b.hello.address, b.hello.port, b.hello.qpnBase, b.hello.qpnCount, b.gid, b.hello.version],
      ["127.0.0.1", gw.udpPort, 1024, 1024, "::ffff:127.0.0.1", 2],
    );
    assert.ok(b.qpNum >= 1024 && b.qpNum < 2048, `page QPN ${b.qpNum} outside its range`);
    assert.equal(gw.counters.refused.bad_origin, undefined, "the page's origin was refused");

    // Connect both ends (fixed PSNs; the page's path MTU is the tunnel default).
    // timeout 16: 268 ms per try (4.096 us * 2^16) — a page and its JIT can be slow to answer at first
    const o = { qpAccessFlags: ALL, timeout: 16, retryCnt: 7 };
    node.connectQp(n.qp, { qpNum: b.qpNum, psn: 0x300, gid: b.gid, port: gw.udpPort }, { sqPsn: 0x400, ...o });
    await page.evaluate(({ qpNum, gid, port, o }) => {
      window.sr.connectQp(window.t.qp, { qpNum, psn: 0x400, gid, port }, { sqPsn: 0x300, ...o });
      return window.t.qp.query().attr.qpState;
    }, { qpNum: n.qp.qpNum, gid: n.dev.queryGid(0), port: n.port, o });

    // 1) page WRITEs 5000 bytes into the Node MR, READs 3000 back from another place, SENDs 777 bytes.
    n.mr.bytes.set(pattern(3000, 11), 9000);
    n.qp.postRecv({ wrId: 50n, sgList: [n.mr.sge(14000, 2000)] });
    const pageResult = await withTimeout(page.evaluate(async ({ rkey, addr }) => {
      const { t, sr } = window;
      for (let i = 0; i < 5000; i++) t.mr.bytes[i] = (i * 7 + 3) & 0xff;
      for (let i = 0; i < 777; i++) t.mr.bytes[12000 + i] = (i * 5 + 3) & 0xff;
      const base = BigInt(addr);
      t.qp.postSend([
        { wrId: 1n, opcode: sr.WrOpcode.RDMA_WRITE, sendFlags: sr.SendFlags.SIGNALED, sgList: [t.mr.sge(0, 5000)], rdma: { remoteAddr: base + 100n, rkey } },
        { wrId: 2n, opcode: sr.WrOpcode.RDMA_READ, sendFlags: sr.SendFlags.SIGNALED, sgList: [t.mr.sge(6000, 3000)], rdma: { remoteAddr: base + 9000n, rkey } },
        { wrId: 3n, opcode: sr.WrOpcode.SEND, sendFlags: sr.SendFlags.SIGNALED, sgList: [t.mr.sge(12000, 777)] },
      ]);
      const wcs = [];
      for (let i = 0; i < 3; i++) wcs.push(await t.cq.next());
      return { wcs: wcs.map((w) => ({ wrId: String(w.wrId), status: w.status, opcode: w.opcode, byteLen: w.byteLen })), read: Array.from(t.mr.bytes.subarray(6000, 9000)) };
    }, { rkey: n.mr.rkey, addr: String(n.mr.addr) }), 30_000, "page WRITE/READ/SEND");
    // WC opcodes: SEND 0, RDMA_WRITE 1, RDMA_READ 2, RECV 128; status 0 = SUCCESS
    assert.deepEqual(pageResult.wcs, [
      { wrId: "1", status: 0, opcode: 1, byteLen: 5000 },
      { wrId: "2", status: 0, opcode: 2, byteLen: 3000 },
      { wrId: "3", status: 0, opcode: 0, byteLen: 777 },
    ], `page completions; gateway ${JSON.stringify(gw.counters)}, Node port ${JSON.stringify(n.dev.port.stats)}`);
    assert.deepEqual(n.mr.bytes.subarray(100, 5100), pattern(5000, 7), "the page's WRITE in the Node MR");
    assert.deepEqual(Uint8Array.from(pageResult.read), pattern(3000, 11), "the page's READ of the Node MR");
    const recv = await withTimeout(n.cq.next(), 10_000, "Node receive completion");
    assert.deepEqual(wcOf(recv), { wrId: "50", status: 0, opcode: 128, byteLen: 777 });
    assert.deepEqual(n.mr.bytes.subarray(14000, 14777), pattern(777, 5), "the page's SEND in the Node MR");

    // tunnel version 2: the page's WRITE, READ request and SEND left in fewer messages than datagrams
    assert.ok(gw.counters.framesIn < gw.counters.udpOut, `page messages ${gw.counters.framesIn}, datagrams ${gw.counters.udpOut}: no BATCH`);

    // 2) a second page with a wrong token: refused at the upgrade with 401 bad_token.
    const page2 = await env.openPage("/tunnel.html");
    const refused = await withTimeout(page2.evaluate(async (url) => {
      try {
        await window.sr.openTunnelDevice(url, { helloTimeoutMs: 20000 });
        return "opened";
      } catch (e) {
        return `refused: ${e && e.message}`;
      }
    }, wsUrl("wrong-token")), 30_000, "the wrong-token page");
    assert.match(refused, /^refused: /, "a page with a wrong token got a tunnel");
    assert.deepEqual(gw.counters.refused, { bad_token: 1 });
    const rec = logs.filter((l) => l.event === "refused");
    assert.equal(rec.length, 1, `refusals logged: ${JSON.stringify(rec)}`);
    assert.equal(rec[0].reason, "bad_token");
    await page2.close();

    // 3) the first page keeps working: Node WRITEs and SENDs into the page, page READ completes again.
    await page.evaluate(() => window.t.qp.postRecv({ wrId: 60n, sgList: [window.t.mr.sge(15000, 1000)] }));
    n.mr.bytes.set(pattern(4000, 13), 0);
    n.qp.postSend([
      { wrId: 70n, opcode: node.WrOpcode.RDMA_WRITE, sendFlags: node.SendFlags.SIGNALED, sgList: [n.mr.sge(0, 4000)], rdma: { remoteAddr: BigInt(b.addr) + 1000n, rkey: b.rkey } },
      { wrId: 71n, opcode: node.WrOpcode.SEND, sendFlags: node.SendFlags.SIGNALED, sgList: [n.mr.sge(0, 900)] },
    ]);
    const nWcs = [await withTimeout(n.cq.next(), 10_000, "Node WRITE"), await withTimeout(n.cq.next(), 10_000, "Node SEND")].map(wcOf);
    assert.deepEqual(nWcs, [
      { wrId: "70", status: 0, opcode: 1, byteLen: 4000 },
      { wrId: "71", status: 0, opcode: 0, byteLen: 900 },
    ]);
    const after = await withTimeout(page.evaluate(async () => {
      const { t } = window;
      const w = await t.cq.next();
      return {
        wc: { wrId: String(w.wrId), status: w.status, opcode: w.opcode, byteLen: w.byteLen },
        written: Array.from(t.mr.bytes.subarray(1000, 5000)),
        sent: Array.from(t.mr.bytes.subarray(15000, 15900)),
        drops: t.device.port.stats.drops,
      };
    }), 10_000, "page receive after the refusal");
    assert.deepEqual(after.wc, { wrId: "60", status: 0, opcode: 128, byteLen: 900 });
    assert.deepEqual(Uint8Array.from(after.written), pattern(4000, 13), "Node's WRITE in the page MR");
    assert.deepEqual(Uint8Array.from(after.sent), pattern(900, 13), "Node's SEND in the page MR");
    // every ICRC matched at both ends
    assert.deepEqual(after.drops, {});
    assert.deepEqual(n.dev.port.stats.drops, {});
    assert.ok(gw.counters.udpOut > 0 && gw.counters.udpIn > 0, `gateway counters ${JSON.stringify(gw.counters)}`);
    assert.deepEqual(pageErrors, [], "errors in the page");
    await page.evaluate(() => window.t.device.close());
  } finally {
    if (env) await env.close();
    if (n) n.dev.close();
  }
});

// The Node twin of the page's openTunnelDevice (dist/node, the ws client): token as a bearer header,
// HELLO identity, a refused wrong token; then one RC SEND with a Node UDP device through the gateway.
test("Node openTunnelDevice(url, { token }) through the gateway: identity, SEND, a wrong token refused", async () => {
  const node = await import(pathToFileURL(join(ROOT, "dist/internal/node.js")).href);
  const { Gateway } = await import(pathToFileURL(join(ROOT, "dist/gateway/index.js")).href);
  let gw;
  let n;
  let t;
  try {
    n = await openNode(node);
    gw = await Gateway.start({ port: 0, udpPort: 0, token: TOKEN, allow: ["127.0.0.1"], dstPorts: [n.port] });
    const url = `ws://127.0.0.1:${gw.port}/tunnel`;
    await assert.rejects(node.openTunnelDevice(url, { token: "nope", helloTimeoutMs: 20000 }), /tunnel: /);
    assert.deepEqual(gw.counters.refused, { bad_token: 1 });
    t = await node.openTunnelDevice(url, { token: TOKEN, helloTimeoutMs: 20000 });
    assert.deepEqual([t.link.hello.port, t.link.hello.qpnBase, t.device.queryGid(0)], [gw.udpPort, 1024, "::ffff:127.0.0.1"]);
    const a = await openNodeSide(node, t.device);
    const o = { qpAccessFlags: ALL, timeout: 16, retryCnt: 7 };
    node.connectQp(a.qp, { qpNum: n.qp.qpNum, psn: 0x10, gid: n.dev.queryGid(0), port: n.port }, { sqPsn: 0x20, ...o });
    node.connectQp(n.qp, { qpNum: a.qp.qpNum, psn: 0x20, gid: t.device.queryGid(0), port: gw.udpPort }, { sqPsn: 0x10, ...o });
    n.qp.postRecv({ wrId: 5n, sgList: [n.mr.sge(0, 1024)] });
    a.mr.bytes.set(pattern(600, 9), 0);
    a.qp.postSend({ wrId: 6n, opcode: node.WrOpcode.SEND, sendFlags: node.SendFlags.SIGNALED, sgList: [a.mr.sge(0, 600)] });
    assert.deepEqual(wcOf(await withTimeout(a.cq.next(), 10_000, "tunnel SEND")), { wrId: "6", status: 0, opcode: 0, byteLen: 600 });
    assert.deepEqual(wcOf(await withTimeout(n.cq.next(), 10_000, "Node RECV")), { wrId: "5", status: 0, opcode: 128, byteLen: 600 });
    assert.deepEqual(n.mr.bytes.subarray(0, 600), pattern(600, 9));
  } finally {
    if (t) t.device.close();
    if (gw) await withTimeout(gw.close(), 10_000, "gateway close").catch(() => {});
    if (n) n.dev.close();
  }
});

await run();
