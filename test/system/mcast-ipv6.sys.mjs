// UD multicast to an IPv6 group over the Node host. Loopback has no IPv6 multicast route (lo lacks
// the MULTICAST flag, so no ff00::/8 in its local table), so the devices run in two network
// namespaces joined by a veth pair, where each end has that route: device A (the sender, itself a
// member) in one, members B and C in the other, each its own node process under `ip netns exec`.
// C attaches and detaches again before the send. The one UD SEND from A to QPN 0xFFFFFF at the
// group GID must reach A (multicast loops back) and B, with A's QPN as source, and nothing may
// reach C. Run once on the native datapath and once on node:dgram. Needs root and ip (iproute2).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, requireTools, run, runProcess, tempDir, test } from "./lib/harness.mjs";

const PEER = join(ROOT, "test/system/lib/mcast6-peer.mjs");
const NS_A = `sr-mc6-${process.pid}-a`;
const NS_B = `sr-mc6-${process.pid}-b`;
const A = "fd00:4791:16::1";
const B = "fd00:4791:16::2";
const C = "fd00:4791:16::3";
const GROUP = "ff0e::4791:16";

requireTools([
  { cmd: "ip", args: ["-V"], pkg: "iproute2" },
  { cmd: "id", args: ["-u"], pkg: "coreutils" },
]);

function sh(...args) {
  const r = spawnSync(args[0], args.slice(1), { encoding: "utf8", timeout: 30_000 });
  if (r.status !== 0) throw new Error(`${args.join(" ")} refused: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}`);
  return r.stdout;
}

function teardown() {
  for (const ns of [NS_A, NS_B]) spawnSync("ip", ["netns", "del", ns], { stdio: "ignore" });
}
process.on("exit", teardown);

let ready = false;
/** Creates the namespaces once (each test calls it, so the second does not depend on the first having run). */
function setup() {
  if (ready) return;
  if (process.getuid?.() !== 0) throw new Error(`network namespaces need root: run this suite as root (uid 0, not ${process.getuid?.()})`);
  teardown();
  sh("ip", "netns", "add", NS_A);
  sh("ip", "netns", "add", NS_B);
  sh("ip", "link", "add", "va", "netns", NS_A, "type", "veth", "peer", "name", "vb", "netns", NS_B);
  sh("ip", "-n", NS_A, "-6", "addr", "add", `${A}/64`, "dev", "va", "nodad");
  sh("ip", "-n", NS_B, "-6", "addr", "add", `${B}/64`, "dev", "vb", "nodad");
  sh("ip", "-n", NS_B, "-6", "addr", "add", `${C}/64`, "dev", "vb", "nodad");
  for (const [ns, dev] of [[NS_A, "va"], [NS_B, "vb"], [NS_A, "lo"], [NS_B, "lo"]]) sh("ip", "-n", ns, "link", "set", dev, "up");
  // the multicast route each member's join and A's send need (the kernel adds it to the local
  // table when a MULTICAST interface comes up; say so plainly if it did not)
  for (const [ns, dev] of [[NS_A, "va"], [NS_B, "vb"]]) {
    const routes = sh("ip", "-n", ns, "-6", "route", "show", "table", "local", "dev", dev);
    if (!/^multicast ff00::\/8/m.test(routes)) sh("ip", "-n", ns, "-6", "route", "add", "multicast", "ff00::/8", "dev", dev, "table", "local");
  }
  ready = true;
}

function peer(ns, args, env, timeoutMs = 20_000) {
  return runProcess("ip", ["netns", "exec", ns, process.execPath, PEER, ...args], { timeoutMs, env: { ...process.env, ...env } });
}

function parse(r, who) {
  if (r.timedOut || r.code !== 0) throw new Error(`${who}: ${r.timedOut ? "timed out" : `exit ${r.code}`}\n${r.stderr.trim().split("\n").slice(-12).join("\n")}`);
  const line = r.stdout.trim().split("\n").pop();
  return JSON.parse(line);
}

async function waitFile(path, ms, what) {
  const end = Date.now() + ms;
  while (!existsSync(path)) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return readFileSync(path, "utf8");
}

async function round(datapath) {
  const dir = tempDir("mc6");
  const env = { SOFTROCE_DATAPATH: datapath };
  const readyB = join(dir, "b.ready");
  const readyC = join(dir, "c.ready");
  const b = peer(NS_B, ["member", B, GROUP, readyB, "2500", "0"], env);
  const c = peer(NS_B, ["member", C, GROUP, readyC, "2500", "1"], env);
  // a peer that dies before it is ready: report its error, not a timeout
  const early = Promise.race([b, c]).then((r) => new Error(`a member exited before it was ready (exit ${r.code}): ${r.stderr.trim().split("\n").slice(-8).join("\n")}`));
  await Promise.race([Promise.all([waitFile(readyB, 15_000, "member B"), waitFile(readyC, 15_000, "member C")]), early.then((e) => { throw e; })]);
  const text = `mcast6 over ${datapath}`;
  const sent = parse(await peer(NS_A, ["send", A, GROUP, text, "3000"], env), "sender A");
  const gotB = parse(await b, "member B");
  const gotC = parse(await c, "member C");
  return { text, sent, gotB, gotC };
}

function check({ text, sent, gotB, gotC }, datapath) {
  assert.equal(sent.path, datapath, `sender on ${sent.path}`);
  assert.deepEqual(sent.joined, [GROUP]);
  const sendWc = sent.wcs.filter((w) => !w.recv);
  assert.deepEqual(sendWc.map((w) => w.status), [0], `sender's send completion: ${JSON.stringify(sent.wcs)}`);
  // the sender is a member: its own copy comes back (IPV6_MULTICAST_LOOP)
  assert.deepEqual(sent.wcs.filter((w) => w.recv).map((w) => [w.status, w.srcQp, w.text]), [[0, sent.qpn, text]]);
  assert.deepEqual(gotB.wcs.map((w) => [w.status, w.srcQp, w.byteLen, w.text]), [[0, sent.qpn, 40 + text.length, text]], "member B");
  assert.deepEqual(gotB.joined, [GROUP]);
  assert.deepEqual(gotC.joined, [], "member C left the group");
  assert.deepEqual(gotC.wcs, [], "the detached member received nothing");
}

test("IPv6 multicast UD between namespaces, native datapath: every attached member receives, a detached one nothing", async () => {
  setup();
  check(await round("native"), "native");
});

test("the same over node:dgram", async () => {
  setup();
  check(await round("dgram"), "dgram");
});

await run();
