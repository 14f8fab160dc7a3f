// The native datapath's UDP GSO on the wire: two network namespaces joined by a veth pair, the
// sender's side set to segment in software before the capture point (gso_max_segs 1: the kernel
// splits a GSO send in validate_xmit_skb, as with `ethtool -K va tx-udp-segmentation off`), tshark
// capturing on the receiver's side. Every segment must carry the IPv4 ID the datapath predicted
// (0, 1, 2, ... per send) and an ICRC that recomputes (our decoder, which checks every ICRC against
// the captured IP header). Also: IPv6, a route whose MTU is below the segment size (GSO falls back,
// each datagram gets EMSGSIZE), a veth that passes GSO through whole, EAGAIN backpressure
// under a slow qdisc, and a real device whose link waits on a per-QP port's socket when the pool
// closes it (NativeUdpLink.poolSocketClosing). Needs root (network namespaces), ip, tc and tshark.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { ROOT, requireTools, run, runOk, runProcess, tempDir, test } from "./lib/harness.mjs";

const CLI = join(ROOT, "dist/cli/softroce.js");
const PEER = join(ROOT, "test/system/lib/native-gso-peer.mjs");
const POOL_PEER = join(ROOT, "test/system/lib/pool-close-peer.mjs");
const NS_A = `sr-nat-${process.pid}-a`;
const NS_B = `sr-nat-${process.pid}-b`;
const A4 = "192.0.2.1", B4 = "192.0.2.2", A6 = "fd00:4791:33::1", B6 = "fd00:4791:33::2";
const PORT = 4791;
const EMSGSIZE = 90;

requireTools([
  { cmd: "tshark", args: ["--version"], pkg: "tshark" },
  { cmd: "ip", args: ["-V"], pkg: "iproute2" },
  { cmd: "tc", args: ["-V"], pkg: "iproute2", what: "tc" },
  { cmd: "id", args: ["-u"], pkg: "coreutils" },
]);

function sh(...args) {
  const r = spawnSync(args[0], args.slice(1), { encoding: "utf8", timeout: 30_000 });
  if (r.status !== 0) throw new Error(`${args.join(" ")}: ${(r.stderr || r.error?.message || "").trim()}`);
  return r.stdout;
}

function teardown() {
  for (const ns of [NS_A, NS_B]) spawnSync("ip", ["netns", "del", ns], { stdio: "ignore" });
}
process.on("exit", teardown);

function setup() {
  if (process.getuid?.() !== 0) throw new Error("network namespaces need root (run the system suite as root)");
  teardown();
  sh("ip", "netns", "add", NS_A);
  sh("ip", "netns", "add", NS_B);
  sh("ip", "link", "add", "va", "netns", NS_A, "type", "veth", "peer", "name", "vb", "netns", NS_B);
  sh("ip", "-n", NS_A, "addr", "add", `${A4}/24`, "dev", "va");
  sh("ip", "-n", NS_B, "addr", "add", `${B4}/24`, "dev", "vb");
  sh("ip", "-n", NS_A, "-6", "addr", "add", `${A6}/64`, "dev", "va", "nodad");
  sh("ip", "-n", NS_B, "-6", "addr", "add", `${B6}/64`, "dev", "vb", "nodad");
  for (const [ns, dev] of [[NS_A, "va"], [NS_B, "vb"], [NS_A, "lo"], [NS_B, "lo"]]) sh("ip", "-n", ns, "link", "set", dev, "up");
  softwareSegmentation(true);
}

/** true: the sender's veth segments GSO sends itself, before the capture point. */
function softwareSegmentation(on) {
  sh("ip", "-n", NS_A, "link", "set", "va", "gso_max_segs", on ? "1" : "65535");
}

function inNs(ns, cmd, args, opts) {
  return runProcess("ip", ["netns", "exec", ns, cmd, ...args], opts);
}

async function waitFor(cond, ms, what) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Captures UDP 4791 on vb while `fn` runs a sink in B and a sender in A; returns the pcap path,
 * the sink's and the sender's JSON. tshark stops after `packets` packets (or 20 s).
 */
async function exchange({ dst, packets, sinkCount = packets, sender, captureOn = [NS_B, "vb"] }) {
  const dir = tempDir("gso");
  const [capNs, capDev] = captureOn;
  const pcap = join(dir, `${capDev}.pcap`);
  const ready = join(dir, "sink.ready");
  const cap = inNs(capNs, "tshark", ["-i", capDev, "-F", "pcap", "-w", pcap, "-f", `udp port ${PORT}`, "-a", `packets:${packets}`, "-a", "duration:20"], { timeoutMs: 40_000 });
  await waitFor(() => existsSync(pcap) && statSync(pcap).size >= 24, 15_000, "tshark to start capturing");
  const sink = inNs(NS_B, process.execPath, [PEER, "sink", dst, String(PORT), String(sinkCount), ready, "15000"], { timeoutMs: 30_000 });
  await waitFor(() => existsSync(ready), 15_000, "the sink to bind");
  const sent = await inNs(NS_A, process.execPath, [PEER, ...sender], { timeoutMs: 60_000 });
  if (sent.code !== 0) throw new Error(`sender: exit ${sent.code}\n${sent.stderr}`);
  const [sunk, captured] = await Promise.all([sink, cap]);
  if (sunk.code !== 0) throw new Error(`sink: exit ${sunk.code}\n${sunk.stderr}`);
  if (captured.code !== 0) throw new Error(`tshark: exit ${captured.code}\n${captured.stderr}`);
  return { pcap, sink: JSON.parse(sunk.stdout.trim()), sender: JSON.parse(sent.stdout.trim().split("\n").pop()) };
}

/** Our decoder's verdict on every RoCE packet of the capture. */
async function decode(pcap) {
  const r = await runProcess(process.execPath, [CLI, "decode", "--pcap", pcap, "--json"], { timeoutMs: 60_000 });
  const packets = r.stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
  return { exit: r.code, packets };
}

const plan = (...calls) => JSON.stringify({ calls });

test("setup: two namespaces, a veth pair segmenting in software on the sender's side", () => {
  setup();
  assert.match(sh("ip", "-n", NS_A, "-d", "link", "show", "va"), /gso_max_segs 1 /);
});

test("IPv4: GSO segments carry IDs 0, 1, 2, ... per send and every ICRC recomputes on the wire", async () => {
  // send 1: one run of 8; send 2: 5 full + a shorter last (one run of 6), then a run of 3 smaller; send 3: 8 again
  const calls = [[{ n: 8, payload: 1024 }], [{ n: 5, payload: 1024 }, { n: 1, payload: 512 }, { n: 3, payload: 256 }], [{ n: 8, payload: 1024 }]];
  const total = 25;
  const { pcap, sink, sender } = await exchange({ dst: B4, packets: total, sender: ["send", A4, B4, String(PORT), plan(...calls)] });
  const predicted = sender.calls.flatMap((c) => c.ipIds);
  assert.deepEqual(predicted, [...[0, 1, 2, 3, 4, 5, 6, 7], ...[0, 1, 2, 3, 4, 5], ...[0, 1, 2], ...[0, 1, 2, 3, 4, 5, 6, 7]]);
  assert.deepEqual(sender.calls.map((c) => c.done), [8, 9, 8]);
  assert.equal(sender.stats.txGsoSends, 4);
  assert.equal(sender.stats.txErrors, 0);
  const { exit, packets } = await decode(pcap);
  assert.equal(packets.length, total, "every segment captured as its own frame");
  assert.deepEqual(packets.map((p) => p["ip.id"]), predicted, "the wire's IPv4 IDs are the predicted ones");
  assert.ok(packets.every((p) => p.icrc_ok === true), `bad ICRC on frames ${packets.filter((p) => !p.icrc_ok).map((p) => p["frame.number"])}`);
  assert.ok(packets.every((p) => p["ip.flags.df"] === 1));
  assert.deepEqual(packets.map((p) => p["infiniband.bth.psn"]), [...Array(total).keys()]);
  assert.equal(exit, 0);
  assert.deepEqual(sink, { count: total, inOrder: true, lengths: [1040, 528, 272], late: 0, missing: 0, dups: 0 });
});

test("IPv6: GSO segments recompute too (no ID to predict)", async () => {
  const { pcap, sink, sender } = await exchange({ dst: B6, packets: 16, sender: ["send", A6, B6, String(PORT), plan([{ n: 10, payload: 1024 }], [{ n: 6, payload: 1024 }])] });
  assert.equal(sender.stats.txGsoSends, 2);
  const { exit, packets } = await decode(pcap);
  assert.equal(packets.length, 16);
  assert.ok(packets.every((p) => p["ipv6.version"] === 6 && p.icrc_ok === true));
  assert.equal(exit, 0);
  assert.deepEqual(sink, { count: 16, inOrder: true, lengths: [1040], late: 0, missing: 0, dups: 0 });
});

test("a route whose MTU is below the segment size: the GSO send falls back and each datagram gets EMSGSIZE", async () => {
  sh("ip", "-n", NS_A, "route", "add", `${B4}/32`, "dev", "va", "mtu", "lock", "600");
  try {
    const { pcap, sink, sender } = await exchange({
      dst: B4, packets: 4, sender: ["send", A4, B4, String(PORT), plan([{ n: 4, payload: 1024 }], [{ n: 4, payload: 256 }])],
    });
    assert.deepEqual(sender.calls[0].results, Array(4).fill(-EMSGSIZE));
    assert.equal(sender.calls[0].done, 4);
    assert.deepEqual(sender.calls[1].results, Array(4).fill(272));
    assert.deepEqual(sender.calls[1].ipIds, [0, 1, 2, 3]);
    assert.equal(sender.stats.txGsoFallbacks, 1);
    const { packets } = await decode(pcap);
    assert.deepEqual(packets.map((p) => [p["ip.id"], p.icrc_ok]), [[0, true], [1, true], [2, true], [3, true]]);
    assert.equal(sink.count, 4);
  } finally {
    sh("ip", "-n", NS_A, "route", "del", `${B4}/32`);
  }
});

test("with segmentation offloaded the veth carries the send whole; the receiving kernel splits it, in order", async () => {
  softwareSegmentation(false);
  try {
    const { pcap, sink } = await exchange({ dst: B4, packets: 1, sinkCount: 8, sender: ["send", A4, B4, String(PORT), plan([{ n: 8, payload: 1024 }])] });
    const frames = sh("tshark", "-r", pcap, "-T", "fields", "-e", "ip.id", "-e", "udp.length").trim().split("\n");
    assert.deepEqual(frames, ["0x0000\t8328"], "one super-frame: the IDs are given where it is segmented, not here");
    assert.deepEqual(sink, { count: 8, inOrder: true, lengths: [1040], late: 0, missing: 0, dups: 0 });
  } finally {
    softwareSegmentation(true);
  }
});

/**
 * The EAGAIN tests' order: the sender's veth carries every datagram in PSN order (captured on va, as
 * the slow qdisc hands them to it: the order the datapath sent them), the receiver gets each exactly
 * once. Not its order: the qdisc's dequeues run in the sender's context or in its timer, on either
 * CPU, and the veth queues each packet on the backlog of the CPU that dequeued it — two backlogs
 * drained at once can hand the receiving socket a later datagram first (3 runs of 12 here, while
 * the capture on va was in order in all 12).
 */
function assertSentInOrder(packets, sink, count) {
  const psns = packets.map((p) => p["infiniband.bth.psn"]);
  const firstOut = psns.findIndex((psn, i) => psn !== i);
  assert.equal(firstOut, -1, `the wire's order differs from the sends' at frame ${firstOut + 1}: PSNs ${psns.slice(Math.max(0, firstOut - 3), firstOut + 4)}`);
  assert.deepEqual({ count: sink.count, missing: sink.missing, dups: sink.dups, lengths: sink.lengths }, { count, missing: 0, dups: 0, lengths: [1040] });
  if (!sink.inOrder) console.log(`  the receiving socket got ${sink.late} of ${count} after a later one (the veth's per-CPU backlogs), every one once`);
}

test("EAGAIN: a slow qdisc fills the send buffer, sendBatch stops early, onWritable resumes, nothing is lost", async () => {
  sh("tc", "-n", NS_A, "qdisc", "add", "dev", "va", "root", "tbf", "rate", "40mbit", "burst", "64kb", "limit", "16mb");
  try {
    const count = 1500;
    const { pcap, sink, sender } = await exchange({ dst: B4, packets: count, sender: ["flood", A4, B4, String(PORT), String(count), "1024", "32768"], captureOn: [NS_A, "va"] });
    assert.ok(sender.stops > 0, "the socket pushed back at least once");
    assert.equal(sender.wakeups, sender.stops);
    assert.equal(sender.sent, count);
    assert.equal(sender.bad, 0);
    assert.equal(sender.stats.txEagain, sender.stops);
    const { exit, packets } = await decode(pcap);
    assert.equal(packets.length, count);
    assertSentInOrder(packets, sink, count);
    assert.equal(exit, 0, "every ICRC recomputes, IDs included");
  } finally {
    sh("tc", "-n", NS_A, "qdisc", "del", "dev", "va", "root");
  }
});

// A per-QP source port's socket (SourcePortPool) pushes back: the wait must watch that socket, not
// the datapath's own (almost always writable: the wait would wake at once, find the pool socket
// still full and wait again, a spin through the event loop until it drains).
const POOL_PORT = 50123;

test("EAGAIN on a pool socket: onWritable(fn, fd) waits for that socket, every wake-up sends, nothing is lost", async () => {
  sh("tc", "-n", NS_A, "qdisc", "add", "dev", "va", "root", "tbf", "rate", "40mbit", "burst", "64kb", "limit", "16mb");
  try {
    const count = 1500;
    const { pcap, sink, sender } = await exchange({ dst: B4, packets: count, sender: ["flood", A4, B4, String(PORT), String(count), "1024", "32768", String(POOL_PORT)], captureOn: [NS_A, "va"] });
    console.log(`  pool socket: ${sender.stops} stops, ${sender.wakeups} wake-ups, ${sender.idle} idle, txEagain ${sender.stats.txEagain}, ${sender.ms.toFixed(0)} ms`);
    assert.ok(sender.stops > 0, "the pool socket pushed back at least once");
    assert.equal(sender.idle, 0, `wake-ups that found the pool socket still full (${sender.wakeups} wake-ups for ${sender.stops} stops)`);
    assert.equal(sender.wakeups, sender.stops);
    assert.equal(sender.stats.txEagain, sender.stops, "one EAGAIN per wait");
    assert.equal(sender.sent, count);
    assert.equal(sender.bad, 0);
    assert.equal(sender.fdsEnd, sender.fdsBefore - 2, "the datapath's and the pool's sockets closed, no dup left open");
    const { exit, packets } = await decode(pcap);
    assert.equal(packets.length, count);
    assertSentInOrder(packets, sink, count);
    assert.ok(packets.every((p) => Number(p["udp.srcport"]) === POOL_PORT), "sent from the pool socket's port");
    assert.equal(exit, 0, "every ICRC recomputes, IDs included");
  } finally {
    sh("tc", "-n", NS_A, "qdisc", "del", "dev", "va", "root");
  }
});

test("EAGAIN on a pool socket, then the datapath closes while it waits: no callback, the watch's dup closed, the process exits", async () => {
  sh("tc", "-n", NS_A, "qdisc", "add", "dev", "va", "root", "tbf", "rate", "40mbit", "burst", "64kb", "limit", "16mb");
  try {
    const r = await inNs(NS_A, process.execPath, [PEER, "flood", A4, B4, String(PORT), "1500", "1024", "32768", String(POOL_PORT), "close"], { timeoutMs: 30_000 });
    assert.equal(r.code, 0, r.stderr);
    const sender = JSON.parse(r.stdout.trim().split("\n").pop());
    assert.equal(sender.stops, 1);
    assert.equal(sender.wakeups, 0);
    assert.equal(sender.calledAfterClose, false);
    assert.equal(sender.fdsWaiting, sender.fdsBefore + 1, "the wait holds one dup of the pool socket");
    assert.equal(sender.fdsAfterClose, sender.fdsBefore - 1, "the datapath's close closed its socket and the dup");
  } finally {
    sh("tc", "-n", NS_A, "qdisc", "del", "dev", "va", "root");
  }
});

// The link-level half: a real device in A (openDevice, the native datapath, per-QP source ports)
// whose link waits on a pool socket when the pool closes that socket. tbf would drain a pool socket
// in milliseconds, so a wait left on it would end by itself and the test could not fail: instead
// an htb class holds every datagram to 4791 that does not come from 4791 (the pool's ports) at
// 8 kbit, about one 1 KiB packet a second, so a full pool socket stays full for the whole test,
// while the device's own port's traffic passes at 1 Gbit.
function slowPoolPorts() {
  sh("tc", "-n", NS_A, "qdisc", "add", "dev", "va", "root", "handle", "1:", "htb", "default", "10");
  sh("tc", "-n", NS_A, "class", "add", "dev", "va", "parent", "1:", "classid", "1:10", "htb", "rate", "1gbit", "quantum", "1514");
  sh("tc", "-n", NS_A, "class", "add", "dev", "va", "parent", "1:", "classid", "1:20", "htb", "rate", "8kbit", "ceil", "8kbit", "quantum", "1514");
  const udp = ["protocol", "ip", "u32", "match", "ip", "protocol", "17", "0xff", "match", "ip"];
  sh("tc", "-n", NS_A, "filter", "add", "dev", "va", "parent", "1:", "prio", "1", ...udp, "sport", String(PORT), "0xffff", "flowid", "1:10");
  sh("tc", "-n", NS_A, "filter", "add", "dev", "va", "parent", "1:", "prio", "2", ...udp, "dport", String(PORT), "0xffff", "flowid", "1:20");
}

/** The veths' MTU (a path MTU of 4096 needs jumbo frames). */
function vethMtu(mtu) {
  sh("ip", "-n", NS_A, "link", "set", "va", "mtu", String(mtu));
  sh("ip", "-n", NS_B, "link", "set", "vb", "mtu", String(mtu));
}

/** The target in B, the writer in A (pool-close-peer.mjs); both must exit 0. Their JSON lines. */
async function poolClose(mtu, mode) {
  const dir = tempDir("poolclose");
  const target = inNs(NS_B, process.execPath, [POOL_PEER, "target", B4, dir, String(mtu)], { timeoutMs: 30_000 });
  const w = await inNs(NS_A, process.execPath, [POOL_PEER, "writer", A4, dir, String(mtu), ...(mode ? [mode] : [])], { timeoutMs: 30_000 });
  const t = await target;
  assert.equal(w.code, 0, `writer: exit ${w.code ?? w.signal}\n${w.stderr}`);
  assert.equal(t.code, 0, `target: exit ${t.code ?? t.signal}\n${t.stderr}`);
  return { writer: JSON.parse(w.stdout.trim().split("\n").pop()), target: JSON.parse(t.stdout.trim().split("\n").pop()) };
}

for (const mtu of [1024, 4096]) {
  test(`a pool socket closes while the link waits on it (MTU ${mtu}): the wait moves, the port resumes, the destroyed QP's port stays closed, every byte arrives, no descriptor left`, async () => {
    slowPoolPorts();
    if (mtu > 1024) vethMtu(9000);
    try {
      const { writer: w, target: t } = await poolClose(mtu);
      console.log(`  MTU ${mtu}: ${w.waiting.stats.sent} sent before the pool socket pushed back, ${w.waiting.held.txUnsent} behind; QP 2 done ${w.ms.toFixed(1)} ms after the sweep; pool ${JSON.stringify(w.end.pool)}`);
      // QP 1 has the pool's one socket; QP 2 was refused it and sends from the device's port
      assert.equal(w.connected.ports.length, 1);
      assert.equal(w.connected.fallbacks, 1);
      // the link waits on the pool socket: a dup of it is watched (two descriptors of that socket)
      assert.equal(w.waiting.stats.backpressured, 1);
      assert.equal(w.waiting.stats.resumed, 0);
      assert.equal(w.waiting.txEagain, 1);
      assert.equal(w.waiting.held.blocked, true);
      assert.ok(w.waiting.held.txUnsent > 0, "QP 1's descriptors wait in the TX ring");
      assert.equal(w.waiting.of, 2, "the pool socket and the wait's dup of it");
      assert.equal(w.waiting.count, w.connected.fds + 1);
      // QP 1 destroyed, the sweep closed its socket: nothing of that socket is left open
      assert.deepEqual([w.swept.open, w.swept.closed], [0, 1]);
      assert.equal(w.afterSweep.of, 0, "the pool socket and the wait's dup closed");
      // the wait moved to the device's socket: the port resumed, QP 2's WRITE and SEND completed
      assert.equal(w.stuck, null);
      assert.deepEqual(w.wcs, [["21", "SUCCESS"], ["22", "SUCCESS"]]);
      assert.equal(w.end.stats.resumed, w.end.stats.backpressured, "every wait ended");
      assert.deepEqual([w.end.held.blocked, w.end.held.txUnsent], [false, 0]);
      // QP 1's packets left in the ring went out, each moved to the device's port once: QP 1's own
      // port was not opened again
      assert.deepEqual([w.end.pool.opened, w.end.pool.open], [1, 0]);
      assert.ok(w.end.pool.sweptRefusals >= 1);
      assert.equal(w.end.fallbacks, w.connected.fallbacks + w.waiting.held.txUnsent);
      const qp2Packets = (256 << 10) / mtu + 1;
      assert.ok(w.end.stats.sent >= w.waiting.stats.sent + w.waiting.held.txUnsent + qp2Packets, `sent ${w.end.stats.sent}`);
      assert.equal(w.end.stats.sendErrors, 0);
      assert.deepEqual(w.errors, []);
      assert.equal(w.fdsEnd, w.fdsAtStart, "every descriptor the device opened is closed");
      assert.deepEqual(t, { recv: { status: "SUCCESS", qp: 2 }, checked: 256 << 10, mismatches: 0 });
    } finally {
      if (mtu > 1024) vethMtu(1500);
      sh("tc", "-n", NS_A, "qdisc", "del", "dev", "va", "root");
    }
  });
}

test("the control: with poolSocketClosing a no-op the wait stays on the closed socket's dup and QP 2 never gets out", async () => {
  slowPoolPorts();
  try {
    const { writer: w, target: t } = await poolClose(1024, "no-move");
    assert.equal(w.waiting.of, 2);
    assert.equal(w.afterSweep.of, 1, "the wait's dup still open");
    assert.ok(w.stuck !== null || w.wcs[0]?.[1] !== "SUCCESS", `QP 2 completed: ${JSON.stringify(w.wcs)}`);
    assert.equal(w.end.stats.resumed, 0);
    assert.equal(w.end.held.blocked, true);
    assert.equal(w.fdsEnd, w.fdsAtStart, "the datapath's close closed the dup");
    assert.equal(t.recv, "none");
  } finally {
    sh("tc", "-n", NS_A, "qdisc", "del", "dev", "va", "root");
  }
});

await run({ testTimeoutMs: 120_000 });
