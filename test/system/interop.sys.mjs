// Interop with the Linux kernel's own RoCE device: a Debian 12 guest (kernel
// 6.1, rdma_rxe, rdma-core's ibverbs-utils) under qemu (TCG) on a tap inside a
// network namespace this suite creates (test/interop/guest.sh). Our Node host
// runs in that namespace on 192.0.2.1 / fd00:4791::1, the guest's rxe0 on
// 192.0.2.2 / fd00:4791::2. The suite builds the guest (debs cached in
// $INTEROP_CACHE, default /var/cache/softroce-interop), boots it once, runs
// `softroce rc_pingpong` against `ibv_rc_pingpong` (and uc/ud/srq_pingpong against
// ibv_uc/ud/srq_pingpong) both ways over IPv4 and IPv6 while tshark captures the tap, checks every captured packet's ICRC with our
// decoder, and stops the guest (qemu by its saved PID, then the namespace).
// Must run as root. Results and setup: docs/INTEROP.md.
// system-suite-timeout: 900
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, run, runOk, runProcess, takeReruns, test as harnessTest } from "./lib/harness.mjs";
import { GUEST4, GUEST6, GUEST_SH, HOST4, HOST6, interopGuest, NIC_STALL, requireGuestTools, TC_ROCE4, TC_ROCE6 } from "./lib/interop-guest.mjs";
import { createSport, rxeSport } from "./lib/rxe-sport.mjs";
import { runNetns } from "./lib/run-netns.mjs";

const WORK = process.env.INTEROP_WORK ?? join(ROOT, "test/.out/interop");
// The guest's network namespace is this run's own: softroce-interop-<pid> unless INTEROP_NS names
// another (run-netns.mjs: deleted at the end, on SIGTERM/SIGINT or failure, and by the next run if
// this one is killed outright).
const NETNS = runNetns({ prefix: "softroce-interop-", override: process.env.INTEROP_NS, script: "interop.sys.mjs" });
const NS = NETNS.name;
await requireGuestTools();
// INTEROP_SOFTROCE_CLI: try another build of the CLI (its build/ and host/ must sit two levels above it)
const G = interopGuest({ work: WORK, netns: NETNS, cli: process.env.INTEROP_SOFTROCE_CLI });
const { env: ENV, cli: CLI, exec: guest, softroce } = G;

// The tests between the guest's boot and its stop run guarded: a guest QEMU's NIC stopped is
// restarted and the test run once more on it, saying so; a guest that stopped otherwise is restarted
// for the tests after (interop-guest.mjs, guarded).
const test = (name, fn) => harnessTest(name, G.guarded(fn));
// this run's own directory (<work>/runs/<namespace>): parallel runs do not write one file
const CAPTURE = join(G.runDir, "interop.pcap");

// ---------------------------------------------------------------- guest

harnessTest("guest image builds (Debian 12 kernel + rdma_rxe + rdma-core, debs cached)", async () => {
  const r = await G.build();
  process.stdout.write(r.stdout.split("\n").filter((l) => l.includes("done") || l.includes("up to date")).map((l) => `      ${l}\n`).join(""));
  const info = readFileSync(join(WORK, "build-info.txt"), "utf8");
  assert.match(info, /^kernel: linux-image-6\.1\.\S+ /m);
  assert.match(info, /rdma_rxe/);
});

harnessTest("guest boots under qemu in its own netns; rxe0 is ACTIVE with RoCE v2 GIDs ::ffff:192.0.2.2 and fd00:4791::2", async () => {
  const r = await G.start(); // throws if this run's netns exists already
  for (const ns of r.reaped) process.stdout.write(`      deleted ${ns} (a killed run's)\n`);
  process.stdout.write(`      ${r.stdout.split("\n")[0]}\n`);
  const gids = new Map();
  for (const m of r.stdout.matchAll(/^GID (\d+) (\S+) (RoCE v[12]) (\S+)$/gm)) gids.set(Number(m[1]), { gid: m[2], type: m[3], ndev: m[4] });
  assert.deepEqual(gids.get(1), { gid: "0000:0000:0000:0000:0000:ffff:c000:0202", type: "RoCE v2", ndev: "eth0" });
  assert.deepEqual(gids.get(2), { gid: "fd00:4791:0000:0000:0000:0000:0000:0002", type: "RoCE v2", ndev: "eth0" });
  const link = await guest("rdma link show rxe0/1; ibv_devinfo -d rxe0 -i 1");
  assert.match(link, /link rxe0\/1 state ACTIVE physical_state LINK_UP netdev eth0/);
  assert.match(link, /state:\s+PORT_ACTIVE \(4\)/);
  assert.match(link, /active_mtu:\s+1024 \(3\)/);
  assert.match(link, /link_layer:\s+Ethernet/);
  // the guest reaches the host side of the tap (IPv4 and IPv6)
  await guest(`ping -c 1 -W 5 ${HOST4} && ping6 -c 1 -W 5 ${HOST6}`, 30);
});

test("guest only: ibv_rc_pingpong client and server over rxe0 loopback (GID 1 and 2, 4096 B at MTU 1024)", async () => {
  for (const gid of [1, 2]) {
    const out = await guest(
      `(ibv_rc_pingpong -d rxe0 -g ${gid} -s 4096 -m 1024 -n 20 > /tmp/lo.log 2>&1; echo "server rc=$?" >> /tmp/lo.log) </dev/null &
i=0; while [ $i -lt 100 ] && ! netstat -ltn | grep -q ":18515 "; do sleep 0.1; i=$((i + 1)); done
ibv_rc_pingpong -d rxe0 -g ${gid} -s 4096 -m 1024 -n 20 ${GUEST4}; echo "client rc=$?"; wait; cat /tmp/lo.log`,
      90,
    );
    assert.match(out, /client rc=0/, out);
    assert.match(out, /server rc=0/, out);
    assert.equal(out.match(/^20 iters in /gm)?.length, 2, out);
  }
});

// ---------------------------------------------------------------- our host in the namespace

test("socket addon loads in the namespace: IPv4 socket with IP_PMTUDISC_DO (ID 0), IPv6 socket with UDP_NO_CHECK6_RX", async () => {
  const script = `
    const { sockoptAddon, sockoptUnavailableReason, UdpLink } = await import(${JSON.stringify(join(ROOT, "dist/internal/node.js"))});
    const { closeSync } = await import("node:fs");
    const addon = sockoptAddon();
    if (!addon) throw new Error(sockoptUnavailableReason());
    const out = {};
    for (const [family, address] of [[4, ${JSON.stringify(HOST4)}], [6, ${JSON.stringify(HOST6)}]]) {
      const fd = addon.openUdpSocket(family, address, 0, false);
      out["v" + family] = addon.socketOptions(fd);
      closeSync(fd);
      const link = await UdpLink.open({ address, port: 4791 });
      out["v" + family].limitations = link.limitations;
      await link.close();
    }
    console.log(JSON.stringify(out));`;
  const r = await runProcess("ip", ["netns", "exec", NS, process.execPath, "--input-type=module", "-e", script], { timeoutMs: 30_000 });
  assert.equal(r.code, 0, r.stderr);
  const o = JSON.parse(r.stdout);
  assert.equal(o.v4.pmtuDiscover, 2); // IP_PMTUDISC_DO: Linux sends ID 0
  assert.equal(o.v6.noCheck6Rx, 1);
  assert.deepEqual(o.v4.limitations, []);
  assert.deepEqual(o.v6.limitations, []);
});

// ---------------------------------------------------------------- softroce <-> rxe

// Each pingpong run: message size, path MTU, iterations. 10000 B and 4096 B at MTU 1024 are
// FIRST/MIDDLE/LAST sequences (10 and 4 packets), 1 B and 64 B single-packet SEND_ONLYs.
// chk: both sides run with -c (rdma-core checks the first byte of every page it receives);
// events: both sides wait on a completion channel (-e). The guest's active MTU is 1024
// (eth0 MTU 1500), so -m 2048/4096 cannot work on this link (see docs/INTEROP.md).
const RUNS = [
  { size: 1, mtu: 1024, iters: 10 },
  { size: 64, mtu: 1024, iters: 20 },
  { size: 4096, mtu: 1024, iters: 20, chk: true },
  { size: 10000, mtu: 1024, iters: 10 },
  { size: 3000, mtu: 512, iters: 10, events: true },
];
const FAMILIES = [
  { name: "IPv4", hostAddr: HOST4, hostGid: `::ffff:${HOST4}`, guestGidIdx: 1, guestGid: `::ffff:${GUEST4}` },
  { name: "IPv6", hostAddr: HOST6, hostGid: HOST6, guestGidIdx: 2, guestGid: GUEST6 },
];
const RUN_TIMEOUT_S = 30;

/** The "local address"/"remote address" lines and summary of a pingpong's output. */
function parsePingpong(out) {
  // every address line of a kind (srq_pingpong prints one per QP)
  const addrs = (which) => {
    // rc/uc_pingpong print ", GID"; rdma-core 44 ud_pingpong ": GID" in its local line
    const re = new RegExp(`${which} address:\\s+LID 0x([0-9a-f]{4}), QPN 0x([0-9a-f]{6}), PSN 0x([0-9a-f]{6})[,:] GID (\\S+)`, "g");
    return [...out.matchAll(re)].map((m) => ({ lid: m[1], qpn: Number.parseInt(m[2], 16), psn: Number.parseInt(m[3], 16), gid: m[4] }));
  };
  const bytes = /^(\d+) bytes in [\d.]+ seconds/m.exec(out);
  const iters = /^(\d+) iters in [\d.]+ seconds/m.exec(out);
  const locals = addrs("local");
  const remotes = addrs("remote");
  return { local: locals[0], remote: remotes[0], locals, remotes, bytes: bytes ? Number(bytes[1]) : undefined, iters: iters ? Number(iters[1]) : undefined };
}

/** Checks one side's output: done, the peer's QPN/PSN/GID as the peer printed them. */
function checkPair(run, fam, ours, theirs, what) {
  const o = parsePingpong(ours);
  const t = parsePingpong(theirs);
  const ctx = `${tool(run)} ${what} ${pingpongFlags(run)}\n--- softroce:\n${ours}\n--- ibv_${tool(run)}:\n${theirs}`;
  assert.ok(o.local && o.remote && t.local && t.remote, `address lines missing: ${ctx}`);
  assert.equal(o.local.gid, fam.hostGid, ctx);
  assert.equal(t.local.gid, fam.guestGid, ctx);
  assert.deepEqual(o.remotes, t.locals, ctx);
  assert.deepEqual(t.remotes, o.locals, ctx);
  assert.equal(o.locals.length, run.qps ?? 1, ctx);
  // -c: rdma-core only prints this (and still exits 0); softroce also exits 1
  assert.doesNotMatch(ours, /invalid data/, ctx);
  assert.doesNotMatch(theirs, /invalid data/, ctx);
  for (const p of [o, t]) {
    assert.equal(p.iters, run.iters, ctx);
    assert.equal(p.bytes, 2 * run.size * run.iters, ctx);
  }
}

/** Starts ibv_<tool> as a server in the guest (background) and waits until it listens. */
async function startGuestServer(tool, args) {
  await guest(
    `[ -s /tmp/srv.pid ] && kill $(cat /tmp/srv.pid) 2>/dev/null; rm -f /tmp/srv.pid /tmp/srv.rc /tmp/srv.log
( ibv_${tool} ${args} >/tmp/srv.log 2>&1 & echo $! >/tmp/srv.pid; wait $!; echo $? >/tmp/srv.rc ) </dev/null >/dev/null 2>&1 &
i=0; while [ $i -lt 100 ] && ! netstat -ltn | grep -q ":18515 "; do sleep 0.1; i=$((i + 1)); done
netstat -ltn | grep -q ":18515 " || { echo "ibv_${tool} server not listening"; cat /tmp/srv.log; exit 1; }`,
  );
}

/** Waits (bounded) for the guest's server to end; its output and exit status. */
async function guestServerResult(timeoutS) {
  const out = await guest(
    `i=0; while [ $i -lt ${timeoutS * 10} ] && [ ! -s /tmp/srv.rc ]; do sleep 0.1; i=$((i + 1)); done
[ -s /tmp/srv.rc ] || { kill $(cat /tmp/srv.pid) 2>/dev/null; echo "server still running after ${timeoutS} s"; }
cat /tmp/srv.log; echo "server-exit=$(cat /tmp/srv.rc 2>/dev/null)"; rm -f /tmp/srv.pid`,
    timeoutS + 15,
  );
  const m = /server-exit=(\d*)\s*$/.exec(out);
  return { out: out.slice(0, m?.index), code: m?.[1] ? Number(m[1]) : undefined };
}

/** Waits until something in the namespace listens on TCP 18515 (our server). */
async function waitHostListening(child, timeoutMs) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = await runProcess("ip", ["netns", "exec", NS, "ss", "-Hltn", "sport", "= :18515"], { timeoutMs: 5000 });
    if (r.code === 0 && r.stdout.includes("18515")) return;
    if (child.done) throw new Error(`softroce pingpong server ended before listening:\n${child.result?.stdout}${child.result?.stderr}`);
    if (Date.now() > until) throw new Error("softroce pingpong server not listening on TCP 18515");
    await new Promise((r) => setTimeout(r, 100));
  }
}

let capturing = false;
test("tshark captures UDP 4791 on the tap", async () => {
  const r = await G.captureStart(CAPTURE);
  assert.match(r.stdout, /capturing on tap0/);
  capturing = true;
});

/** "rc_pingpong" (the default), "uc_pingpong", "ud_pingpong" or "srq_pingpong". */
function tool(run) {
  return `${run.qp ?? "rc"}_pingpong`;
}

/** The flags both sides get (ud_pingpong has no -m: its size must fit the active MTU, 1024). */
function pingpongFlags(run) {
  return `-s ${run.size}${run.mtu ? ` -m ${run.mtu}` : ""} -n ${run.iters}${run.qps ? ` -q ${run.qps}` : ""}${run.chk ? " -c" : ""}${run.events ? " -e" : ""}`;
}

/** softroce <tool> as the client in the namespace, ibv_<tool> as the server in the guest: both outputs. */
async function runOursToRxe(fam, run, timeoutS = RUN_TIMEOUT_S) {
  const flags = pingpongFlags(run);
  await startGuestServer(tool(run), `-d rxe0 -g ${fam.guestGidIdx} ${flags}`);
  const ours = await softroce(
    [tool(run), "--address", fam.hostAddr, "-g", "0", ...flags.split(" "), "--timeout", String(timeoutS), GUEST4],
    (timeoutS + 10) * 1000,
  );
  const theirs = await guestServerResult(ours.code === 0 ? 10 : 1);
  return { flags, ours, text: `${ours.stdout}${ours.stderr}`, theirs };
}

/** The same, and both must have completed every iteration. */
async function oursToRxe(fam, run) {
  const { flags, ours, text, theirs } = await runOursToRxe(fam, run);
  assert.equal(ours.code, 0, `softroce ${tool(run)} ${flags} exit ${ours.code ?? ours.signal}:\n${text}\n--- ibv_${tool(run)}:\n${theirs.out}`);
  assert.equal(theirs.code, 0, `ibv_${tool(run)} server ${flags} exit ${theirs.code}:\n${theirs.out}`);
  checkPair(run, fam, text, theirs.out, "client->server");
}

/** ibv_<tool> as the client in the guest, softroce <tool> as the server in the namespace. */
async function rxeToOurs(fam, run) {
  const flags = pingpongFlags(run);
  const child = { done: false, result: undefined };
  const server = softroce(
    [tool(run), "--address", fam.hostAddr, "-g", "0", ...flags.split(" "), "--timeout", String(RUN_TIMEOUT_S)],
    (RUN_TIMEOUT_S + 15) * 1000,
  ).then((r) => {
    child.done = true;
    child.result = r;
    return r;
  });
  await waitHostListening(child, 15_000);
  const client = await runProcess(
    GUEST_SH,
    ["exec", `ibv_${tool(run)} -d rxe0 -g ${fam.guestGidIdx} ${flags} ${HOST4}; echo "client-exit=$?"`, String(RUN_TIMEOUT_S)],
    { env: ENV, timeoutMs: (RUN_TIMEOUT_S + 10) * 1000 },
  );
  const ours = await server;
  const text = `${ours.stdout}${ours.stderr}`;
  const theirs = client.stdout;
  assert.match(theirs, /client-exit=0/, `ibv_${tool(run)} client ${flags}:\n${theirs}${client.stderr}\n--- softroce:\n${text}`);
  assert.equal(ours.code, 0, `softroce ${tool(run)} server ${flags} exit ${ours.code ?? ours.signal}:\n${text}\n--- ibv_${tool(run)}:\n${theirs}`);
  checkPair(run, fam, text, theirs, "server<-client");
}

for (const fam of FAMILIES) {
  const sizes = RUNS.map((r) => r.size).join("/");
  test(`${fam.name}: softroce rc_pingpong client <-> ibv_rc_pingpong server (rxe0 -g ${fam.guestGidIdx}), ${sizes} B`, async () => {
    for (const run of RUNS) await oursToRxe(fam, run);
  });
  test(`${fam.name}: ibv_rc_pingpong client (rxe0 -g ${fam.guestGidIdx}) <-> softroce rc_pingpong server, ${sizes} B`, async () => {
    for (const run of RUNS) await rxeToOurs(fam, run);
  });
}

// UC: the same SEND sequences without ACKs (UC opcodes 0x20-0x24); 4096 B at -m 1024 and 3000 B at
// -m 512 are 4- and 6-packet messages (FIRST/MIDDLE/LAST), 3000 B at the default -m 1024 three, 64 B a SEND_ONLY.
const UC_RUNS = [
  { qp: "uc", size: 64, mtu: 1024, iters: 20 },
  { qp: "uc", size: 4096, mtu: 1024, iters: 20, chk: true },
  { qp: "uc", size: 3000, iters: 10 },
  { qp: "uc", size: 3000, mtu: 512, iters: 10, events: true },
];
// UD: one SEND_ONLY (0x64, with a DETH) per message, at most the active MTU (1024); the receiver's
// buffers take the 40-byte GRH first.
const UD_RUNS = [
  { qp: "ud", size: 1024, iters: 20, chk: true },
  { qp: "ud", size: 512, iters: 20, events: true },
  { qp: "ud", size: 1, iters: 10 },
];
// SRQ: 16 RC QPs (srq_pingpong's default) or 4 whose receives come from one SRQ, SENDs in flight on
// every QP at once; 4096 B at MTU 1024 four packets, 3000 B at 512 six.
const SRQ_RUNS = [
  { qp: "srq", size: 4096, mtu: 1024, iters: 200, qps: 16 },
  { qp: "srq", size: 64, mtu: 1024, iters: 100, qps: 4, chk: true },
  { qp: "srq", size: 3000, mtu: 512, iters: 40, qps: 4, events: true },
];
for (const fam of FAMILIES) {
  for (const runs of [UC_RUNS, UD_RUNS, SRQ_RUNS]) {
    const t = tool(runs[0]);
    const sizes = runs.map((r) => r.size).join("/");
    test(`${fam.name}: softroce ${t} client <-> ibv_${t} server (rxe0 -g ${fam.guestGidIdx}), ${sizes} B`, async () => {
      for (const run of runs) await oursToRxe(fam, run);
    });
    test(`${fam.name}: ibv_${t} client (rxe0 -g ${fam.guestGidIdx}) <-> softroce ${t} server, ${sizes} B`, async () => {
      for (const run of runs) await rxeToOurs(fam, run);
    });
  }
}

// The guard every test between boot and stop runs under, on guests made to stop: the link taken down
// (the control shell goes with it) after the NIC watchdog's line written to the kernel's log, as the
// virtio-net driver writes it when QEMU stops taking its TX ring; the link taken down with no such
// line (the kernel still answers on the serial console); qemu stopped (SIGSTOP: nothing answers).
// The capture runs across the restarts: the ICRC test below reads it merged.
harnessTest("a guest whose NIC stalled (its kernel's watchdog line, or a kernel that answers on the serial console only) is restarted and the test runs again on the new one; one that answers nowhere is restarted and the test fails saying so; a failure with the guest answering is the test's own", async () => {
  assert.equal(await G.console("echo on the console; cat /sys/class/net/eth0/operstate"), "on the console\nup\n", "the serial console's shell");
  const before = G.restarts;
  await assert.rejects(G.guarded(async () => {
    throw new Error("the test's own");
  })(), (e) => e.message === "the test's own");
  assert.equal(G.restarts, before, "the guest answers: not restarted");

  const linkDownSoon = "(sleep 1; ip link set eth0 down) </dev/null >/dev/null 2>&1 &";
  const stopLink = async (line) => {
    await guest(`${line ? `echo "<2>${line}" > /dev/kmsg; ` : ""}${linkDownSoon}`);
    await new Promise((r) => setTimeout(r, 2000));
    await guest("echo still here", 5); // throws: no answer
  };
  for (const [i, line] of [[1, "virtio_net virtio0 eth0: NETDEV WATCHDOG: CPU: 0: transmit queue 0 timed out 5736 ms"], [2, undefined]]) {
    let runs = 0;
    const result = await G.guarded(async () => {
      runs += 1;
      if (runs === 1) await stopLink(line);
      return guest("rdma link show rxe0/1");
    })();
    assert.equal(runs, 2, `case ${i}: run again`);
    assert.equal(G.restarts, before + i);
    assert.match(result, /state ACTIVE/);
    const dead = readFileSync(join(G.runDir, `serial-${G.restarts}.log`), "latin1");
    if (line) assert.match(dead, NIC_STALL, "the dead guest's serial log kept");
    assert.equal(G.nicStall(), undefined, "the new guest's log has no stall");
    // the rerun is on the test's record, for the summary's "run again" (taken off: this test's reruns are its subject)
    const reruns = takeReruns();
    assert.equal(reruns.length, 1, `case ${i}: one rerun recorded`);
    assert.match(reruns[0], line ? /^on a new guest: its NIC stopped \(.*NETDEV WATCHDOG/ : /^on a new guest: its NIC stopped \(its kernel answers on the serial console, not over eth0/);
  }

  let runs = 0;
  await assert.rejects(G.guarded(async () => {
    runs += 1;
    process.kill(Number(readFileSync(join(G.runDir, "qemu.pid"), "utf8")), "SIGSTOP");
    await guest("echo still here", 5);
  })(), /no answer after 5 s[^]*the guest stopped answering, over its NIC and on its serial console, with no NIC watchdog line in its log: restarted for the tests after this one/);
  assert.equal(runs, 1, "not run again");
  assert.deepEqual(takeReruns(), [], "a guest answering nowhere: no rerun");
  assert.equal(G.restarts, before + 3);
  assert.match(await guest("rdma link show rxe0/1"), /state ACTIVE/);
});

// Longer runs: thousands of packets each way (10000 B = 10 packets, 65536 B = 64 packets a message).
test("longer runs: 300 x 10000 B and 50 x 65536 B each way, IPv4 and IPv6", async () => {
  for (const fam of FAMILIES) {
    await oursToRxe(fam, { size: 10000, mtu: 1024, iters: 300 });
    await rxeToOurs(fam, { size: 65536, mtu: 1024, iters: 50 });
  }
});

test("ICRC: every packet captured on the tap, both directions, IPv4 and IPv6, verifies with `softroce decode`", async () => {
  assert.ok(capturing, "no capture was started");
  const stop = await G.captureStop();
  capturing = false;
  // the guard's test restarted the guest three times while this capture ran: the four guests' captures in one file
  assert.match(stop.stdout, /merged with the captures of the guests before the restarts/);
  assert.ok(existsSync(CAPTURE), `no capture file: ${stop.stdout}`);
  const r = await runProcess(process.execPath, [CLI, "decode", "--json", "--pcap", CAPTURE], { timeoutMs: 120_000 });
  const pkts = r.stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
  const bad = pkts.filter((p) => p.icrc_ok !== true);
  assert.deepEqual(bad.map((p) => `#${p["frame.number"]} ${p.opcode_name} icrc ${p.icrc} expected ${p.icrc_expected}`), [], `${bad.length} of ${pkts.length} packets with a bad ICRC (${CAPTURE})`);
  assert.equal(r.code, 0, `decode exit ${r.code}: ${r.stderr}`);
  const from = (addr) => pkts.filter((p) => (p["ip.src"] ?? p["ipv6.src"]) === addr);
  const counts = Object.fromEntries([HOST4, GUEST4, HOST6, GUEST6].map((a) => [a, from(a).length]));
  process.stdout.write(`      ${pkts.length} RoCE packets, all ICRCs good; by source: ${JSON.stringify(counts)}\n`);
  for (const [a, n] of Object.entries(counts)) assert.ok(n > 0, `no packet from ${a} in the capture`);
  // Ours leave with IPv4 ID 0 and DF (the socket addon); rxe's carry the kernel's IDs, which the ICRC covers.
  assert.deepEqual([...new Set(from(HOST4).map((p) => `${p["ip.id"]}/${p["ip.flags.df"]}`))], ["0/1"]);
  assert.ok(from(GUEST4).some((p) => p["ip.id"] !== 0), "rxe sent only IPv4 ID 0");
  // Multi-packet messages went both ways (SEND FIRST 0x00, MIDDLE 0x01, LAST 0x02).
  for (const a of [HOST4, GUEST4, HOST6, GUEST6]) {
    const ops = new Set(from(a).map((p) => p["infiniband.bth.opcode"]));
    for (const op of [0, 1, 2, 4, 17]) assert.ok(ops.has(op), `no opcode ${op} from ${a} (saw ${[...ops].join(",")})`);
    // UC SEND FIRST/MIDDLE/LAST/ONLY (0x20-0x22, 0x24) and UD SEND_ONLY (0x64), and no ACK for them
    for (const op of [0x20, 0x21, 0x22, 0x24, 0x64]) assert.ok(ops.has(op), `no opcode 0x${op.toString(16)} from ${a} (saw ${[...ops].join(",")})`);
    // every UD SEND carries ud_pingpong's Q_Key; the payload is the -s size (1024, 512, 1), never the GRH
    const ud = from(a).filter((p) => p["infiniband.bth.opcode"] === 0x64);
    assert.deepEqual([...new Set(ud.map((p) => p["infiniband.deth.q_key"]))], [0x11111111], `UD Q_Keys from ${a}`);
    assert.deepEqual([...new Set(ud.map((p) => p.payload_len))].sort((x, y) => x - y), [1, 512, 1024], `UD payload sizes from ${a}`);
  }
  // UDP source ports: ours are the ones rxe computes for the same QPNs (docs/INTEROP.md, "UDP source port").
  for (const [ours, theirs] of [[HOST4, GUEST4], [HOST6, GUEST6]]) {
    const mine = from(ours);
    const rxe = from(theirs);
    // UD: the create-time port of the sending QP (its DETH source QP)
    for (const p of mine.filter((q) => q["infiniband.bth.opcode"] === 0x64)) {
      assert.equal(p["udp.srcport"], createSport(p["infiniband.deth.srcqp"]), `UD from ${ours}: source port ${p["udp.srcport"]} for QP ${p["infiniband.deth.srcqp"]}`);
    }
    for (const p of rxe.filter((q) => q["infiniband.bth.opcode"] === 0x64)) {
      assert.equal(p["udp.srcport"], createSport(p["infiniband.deth.srcqp"]), `rxe's UD source port for QP ${p["infiniband.deth.srcqp"]}`);
    }
    // RC and UC: rdma_get_udp_sport(0, our QPN, rxe's QPN), the same port rxe's QP of the pair sends from
    const rxePorts = new Map(); // source port -> the QPNs rxe sent to from it (ours)
    for (const p of rxe.filter((q) => q["infiniband.bth.opcode"] < 0x40)) {
      if (!rxePorts.has(p["udp.srcport"])) rxePorts.set(p["udp.srcport"], new Set());
      rxePorts.get(p["udp.srcport"]).add(p["infiniband.bth.destqp"]);
    }
    const rcuc = mine.filter((q) => q["infiniband.bth.opcode"] < 0x40);
    assert.ok(rcuc.length > 0, `no RC/UC packet from ${ours}`);
    const unmatched = rcuc.filter((p) => ![...(rxePorts.get(p["udp.srcport"]) ?? [])].some((o) => rxeSport(0, o, p["infiniband.bth.destqp"]) === p["udp.srcport"]));
    assert.deepEqual(unmatched.slice(0, 5).map((p) => `#${p["frame.number"]} port ${p["udp.srcport"]} to QP ${p["infiniband.bth.destqp"]}`), [], `${unmatched.length} RC/UC packets from ${ours} not on rxe's port for their QP pair`);
    process.stdout.write(`      ${ours}: ${rcuc.length} RC/UC packets on rxe's per-QP ports (${new Set(rcuc.map((p) => p["udp.srcport"])).size} ports)\n`);
  }
});

// ---------------------------------------------------------------- controls (after the capture: they break ICRCs on purpose)

/** Runs fn with one tc filter on the guest's eth0; resolves [fn's result, packets the filter acted on]. */
async function withGuestFilter(dir, filter, fn) {
  const [result, stats] = await G.withGuestFilters(dir, ["act_pedit", "act_csum"], [filter], fn);
  const m = /Sent \d+ bytes (\d+) pkt/.exec(stats);
  assert.ok(m, `no filter statistics:\n${stats}`);
  return [result, Number(m[1])];
}

async function rxeCounter(name) {
  const out = await guest("rdma statistic show link rxe0/1");
  const m = new RegExp(`\\b${name} (\\d+)`).exec(out);
  assert.ok(m, `no ${name} in: ${out}`);
  return Number(m[1]);
}

const FAM4 = FAMILIES[0];
const FAM6 = FAMILIES[1];
const SMALL = { size: 64, mtu: 1024, iters: 5 };
const RETRY_EXCEEDED = /Failed status transport retry counter exceeded \(12\)/;

test("control: our packets with TTL/TOS (IPv4) and hop limit/traffic class/flow label (IPv6) changed in flight (ICRC-masked) are accepted by rxe", async () => {
  const [, n4] = await withGuestFilter("ingress", `${TC_ROCE4} action pedit munge ip ttl set 7 munge ip tos set 0x28 pipe action csum ip4h`, () =>
    oursToRxe(FAM4, SMALL),
  );
  assert.ok(n4 >= SMALL.iters, `the IPv4 filter rewrote ${n4} packets`);
  const [, n6] = await withGuestFilter("ingress", `${TC_ROCE6} action pedit ex munge ip6 hoplimit set 7 munge ip6 traffic_class set 0x28 munge ip6 flow_lbl set 0x12345`, () =>
    oursToRxe(FAM6, SMALL),
  );
  assert.ok(n6 >= SMALL.iters, `the IPv6 filter rewrote ${n6} packets`);
});

test("control: our IPv4 packets with the IP ID changed in flight are dropped by rxe (the ICRC covers the ID); softroce fails with retry exceeded", async () => {
  const before = await rxeCounter("rcvd_pkts");
  const [r, n] = await withGuestFilter("ingress", `${TC_ROCE4} action pedit munge offset 4 u16 set 0x1234 pipe action csum ip4h`, () =>
    runOursToRxe(FAM4, SMALL, 10),
  );
  assert.equal(r.ours.code, 1, r.text);
  assert.match(r.text, RETRY_EXCEEDED);
  assert.equal(n, 8, "the first SEND and its 7 retries (retry_cnt 7) were rewritten"); // nothing else was sent
  assert.equal(await rxeCounter("rcvd_pkts"), before, "rxe counted a packet it should have dropped");
  assert.notEqual(r.theirs.code, 0, `the rxe server finished: ${r.theirs.out}`);
});

test("control: rxe's IPv4 packets with a byte changed in flight (after its ICRC) are dropped by softroce; softroce fails with retry exceeded", async () => {
  // offset 40: the first byte after the BTH (AETH syndrome of an ACK, payload of a SEND)
  const [r, n] = await withGuestFilter("egress", `${TC_ROCE4} action pedit munge offset 40 u8 set 0xa5 pipe action csum ip4h`, () =>
    runOursToRxe(FAM4, SMALL, 10),
  );
  assert.equal(r.ours.code, 1, r.text);
  assert.match(r.text, RETRY_EXCEEDED);
  assert.ok(n >= 8, `the filter rewrote ${n} packets`);
});

harnessTest("guest stops: qemu killed by its saved PID, netns deleted", async () => {
  const r = await G.stop(); // throws if the netns is still listed
  assert.match(r.stdout, /stopped/);
  assert.equal(NETNS.exists(), false);
});

await run({ testTimeoutMs: 900_000 });
