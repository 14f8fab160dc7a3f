// Connection management against Linux: the Debian 12 guest of test/interop
// (kernel 6.1 rdma_rxe, rdma-core's rdmacm-utils) under qemu in its own network
// namespace, our Node host beside it (192.0.2.1 / fd00:4791::1, the guest's rxe0
// 192.0.2.2 / fd00:4791::2). rdma-core's rping against `softroce rping` both
// ways over IPv4 and IPv6 with -v and -V, every ping line checked against the
// text rping writes; ucmatose both ways (2 connections, 20 SENDs of 3000 B each way); udaddy
// both ways (rdma_cm's UD port space: 2 SIDR "connections", 20 datagrams of 1000 B each way); mckey
// both ways (an IPv4 group joined through rdma_join_multicast, 20 datagrams; IPv6 groups fail on both);
// cmtime both ways (100 RC connections made and broken at once); rdma_server / rdma_client both ways;
// perftest's seven tests both ways against `softroce perf --perftest` (its own TCP exchange) over
// IPv4 and IPv6 and against `softroce perf -R` (its rdma_cm mode), the four bandwidth tests with -q 4
// both ways (one MR against --mr_per_qp), with perftest's exchange and with -R; tshark captures the tap meanwhile, and every CM MAD in the
// capture — ours and Linux's — is checked field by field against tshark's CM
// dissector, and ours against Linux's of the same kind field by field (what
// differs per connection aside). Must run as root. Results: docs/INTEROP.md.
// system-suite-timeout: 1500
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, run, runOk, test as harnessTest } from "./lib/harness.mjs";
import { GUEST4, GUEST6, HOST4, HOST6, interopGuest, requireGuestTools } from "./lib/interop-guest.mjs";
import { runNetns } from "./lib/run-netns.mjs";

const WORK = process.env.INTEROP_CM_WORK ?? join(ROOT, "test/.out/interop-cm");
// The guest's network namespace is this run's own: softroce-interop-cm-<pid> unless INTEROP_CM_NS
// names another (run-netns.mjs: deleted at the end, on SIGTERM/SIGINT or failure, and by the next run
// if this one is killed outright).
const NETNS = runNetns({ prefix: "softroce-interop-cm-", override: process.env.INTEROP_CM_NS, script: "interop-cm.sys.mjs" });
const FAMILIES = [
  { name: "IPv4", host: HOST4, guest: GUEST4 },
  { name: "IPv6", host: HOST6, guest: GUEST6 },
];
const COUNT = 10;
const RUN_TIMEOUT_S = 60;

await requireGuestTools();
const api = await import(join(ROOT, "dist/internal/node.js")); // everything, the CM codec included (not the package's public entry)
const G = interopGuest({ work: WORK, netns: NETNS });
const { exec: guest, softroce } = G;

// The tests between the guest's boot and its stop run guarded: a guest QEMU's NIC stopped is
// restarted and the test run once more on it, saying so; a guest that stopped otherwise is restarted
// for the tests after (interop-guest.mjs, guarded).
const test = (name, fn) => harnessTest(name, G.guarded(fn));
// this run's own directory (<work>/runs/<namespace>): parallel runs do not write one file
const CAPTURE = join(G.runDir, "interop-cm.pcap");

/** The lines rping's client prints with -v for `count` pings of `size` bytes (rping_test_client's text). */
function pingLines(prefix, count, size) {
  const out = [];
  for (let i = 0, start = 65; i < count; i++, start = start + 1 > 122 ? 65 : start + 1) {
    let s = `rdma-ping-${i}: `.slice(0, size - 1);
    for (let c = start; s.length < size - 1; c = c + 1 > 122 ? 65 : c + 1) s += String.fromCharCode(c);
    out.push(prefix + s);
  }
  return out;
}

// ---------------------------------------------------------------- guest

harnessTest("guest image builds and boots in its own netns; rxe0 ACTIVE, rping (rdmacm-utils) present", async () => {
  await G.build();
  const r = await G.start(); // throws if this run's netns exists already
  for (const ns of r.reaped) process.stdout.write(`      deleted ${ns} (a killed run's)\n`);
  const out = await guest("rdma link show rxe0/1; command -v rping ucmatose");
  assert.match(out, /state ACTIVE/);
  assert.match(out, /\/rping\n/);
});

// Only the frames of at most 400 bytes: every CM MAD's (342 bytes at most, over IPv6), not the
// gigabytes of perftest's -a runs
const MAX_FRAME = 400;

test("tshark captures UDP 4791 on the tap", async () => {
  const r = await G.captureStart(CAPTURE, MAX_FRAME);
  assert.match(r.stdout, /capturing on tap0/);
});

// ---------------------------------------------------------------- rping

for (const fam of FAMILIES) {
  test(`${fam.name}: softroce rping -c -v -V -C ${COUNT} -> rping -s (rxe0): every ping through, data as rping wrote it`, async () => {
    await guest(`rping -s -a ${fam.guest} -v -V -C ${COUNT} > /tmp/rs.out 2> /tmp/rs.err & echo $! > /tmp/rs.pid
i=0; while [ $i -lt 100 ] && ! rdma res show cm_id | grep -q LISTEN; do sleep 0.1; i=$((i + 1)); done`, 30);
    const ours = await softroce(["rping", "-c", "-a", fam.guest, "-I", fam.host, "-v", "-V", "-C", String(COUNT), "--timeout", String(RUN_TIMEOUT_S)], (RUN_TIMEOUT_S + 10) * 1000);
    const theirs = await guest(`i=0; while [ $i -lt 100 ] && kill -0 $(cat /tmp/rs.pid) 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
cat /tmp/rs.out; echo "--- stderr"; cat /tmp/rs.err`, 30);
    assert.equal(ours.code, 0, `softroce rping: ${ours.stdout}${ours.stderr}\n--- rping -s:\n${theirs}`);
    assert.deepEqual(ours.stdout.trimEnd().split("\n"), pingLines("ping data: ", COUNT, 64));
    assert.equal(ours.stderr, "client DISCONNECT EVENT...\n");
    const serverData = theirs.split("\n").filter((l) => l.startsWith("server ping data: "));
    assert.deepEqual(serverData, pingLines("server ping data: ", COUNT, 64), theirs);
    assert.match(theirs, /server DISCONNECT EVENT\.\.\./);
  });

  test(`${fam.name}: rping -c -v -V -C ${COUNT} (rxe0) -> softroce rping -s: every ping through, data as rping wrote it`, async () => {
    const server = softroce(["rping", "-s", "-a", fam.host, "-v", "-V", "--timeout", String(RUN_TIMEOUT_S)], (RUN_TIMEOUT_S + 10) * 1000);
    await new Promise((r) => setTimeout(r, 2000)); // Node's start; the guest's client would get REJ 8 before our listen
    const theirs = await guest(`rping -c -a ${fam.host} -v -V -C ${COUNT} > /tmp/rc.out 2> /tmp/rc.err; echo "client-exit=$?"; cat /tmp/rc.out; echo "--- stderr"; cat /tmp/rc.err`, RUN_TIMEOUT_S);
    const ours = await server;
    assert.match(theirs, /^client-exit=0$/m, `rping -c:\n${theirs}\n--- softroce:\n${ours.stdout}${ours.stderr}`);
    assert.deepEqual(theirs.split("\n").filter((l) => l.startsWith("ping data: ")), pingLines("ping data: ", COUNT, 64));
    assert.equal(ours.code, 0, `softroce rping -s: ${ours.stdout}${ours.stderr}`);
    assert.deepEqual(ours.stdout.trimEnd().split("\n"), pingLines("server ping data: ", COUNT, 64));
    assert.equal(ours.stderr, "server DISCONNECT EVENT...\nwait for RDMA_READ_ADV state 10\n");
  });
}

test("rping -c (rxe0) against a softroce device nobody listens on: REJECTED, error 8 (invalid service ID) at once, as against Linux", async () => {
  // a softroce device that runs no CM application: perf's server waiting for its TCP client
  const server = softroce(["perf", "write_bw", "--perftest", "--address", HOST4, "-s", "4096", "-n", "5"], (RUN_TIMEOUT_S + 30) * 1000);
  await new Promise((r) => setTimeout(r, 2000));
  const theirs = await guest(`s=$(cut -d. -f1 /proc/uptime); rping -c -a ${HOST4} -C 1 > /tmp/rj.out 2>&1; echo "client-exit=$?"; e=$(cut -d. -f1 /proc/uptime); echo "secs=$((e - s))"; cat /tmp/rj.out`, 40);
  const done = await guest(`ib_write_bw -d rxe0 -x 1 -s 4096 -n 5 -F ${HOST4} > /tmp/pt.out 2>&1; echo "client-exit=$?"`, RUN_TIMEOUT_S);
  const srv = await server;
  assert.match(theirs, /RDMA_CM_EVENT_REJECTED, error 8/, theirs);
  assert.doesNotMatch(theirs, /^client-exit=0$/m, theirs);
  assert.ok(Number(/secs=(\d+)/.exec(theirs)[1]) < 5, theirs); // the REQ's first answer, not its retries (4 s and more apart)
  assert.match(done, /client-exit=0/);
  assert.equal(srv.code, 0, `${srv.stdout}${srv.stderr}`);
});

// ---------------------------------------------------------------- a Linux server and our client, and the other way round

/** `theirsServer` in the guest (in the background, until `listening` holds: rdma_cm listens), `oursArgs` as its client; both outputs once the server ended. */
async function oursToGuestServer(theirsServer, oursArgs, listening = "rdma res show cm_id | grep -q LISTEN") {
  await guest(`${theirsServer} > /tmp/srv.out 2>&1 & echo $! > /tmp/srv.pid
i=0; while [ $i -lt 100 ] && ! ${listening}; do sleep 0.1; i=$((i + 1)); done`, 30);
  const ours = await softroce([...oursArgs, "--timeout", String(RUN_TIMEOUT_S)], (RUN_TIMEOUT_S + 10) * 1000);
  const theirs = await guest(`i=0; while [ $i -lt 100 ] && kill -0 $(cat /tmp/srv.pid) 2>/dev/null; do sleep 0.1; i=$((i + 1)); done; kill $(cat /tmp/srv.pid) 2>/dev/null; cat /tmp/srv.out`, 30);
  return { ours, theirs };
}

/** `oursArgs` as the server (2 s to start: a client before our listen gets REJ 8), `theirsClient` in the guest against it: its output and exit line. */
async function guestToOursServer(oursArgs, theirsClient) {
  const server = softroce([...oursArgs, "--timeout", String(RUN_TIMEOUT_S)], (RUN_TIMEOUT_S + 10) * 1000);
  await new Promise((r) => setTimeout(r, 2000));
  const theirs = await guest(`timeout ${RUN_TIMEOUT_S - 5} ${theirsClient}; echo "client-exit=$?"`, RUN_TIMEOUT_S);
  return { ours: await server, theirs };
}

// ---------------------------------------------------------------- ucmatose

const CLIENT_LINES = "cmatose: starting client\ncmatose: connecting\nreceiving data transfers\nsending replies\ndata transfers complete\ntest complete\nreturn status 0\n";
const SERVER_LINES = "cmatose: starting server\ninitiating data transfers\ncompleting sends\nreceiving data transfers\ndata transfers complete\ncmatose: disconnecting\ndisconnected\ntest complete\nreturn status 0\n";

for (const fam of FAMILIES) {
  test(`${fam.name}: softroce ucmatose client -> ucmatose server (rxe0), -c 2 -C 20 -S 3000: both print cmatose's lines, exit 0`, async () => {
    const { ours, theirs } = await oursToGuestServer(`ucmatose -b ${fam.guest} -c 2 -C 20 -S 3000`, ["ucmatose", "-s", fam.guest, "-b", fam.host, "-c", "2", "-C", "20", "-S", "3000"]);
    assert.equal(ours.code, 0, `softroce ucmatose: ${ours.stdout}${ours.stderr}\n--- ucmatose:\n${theirs}`);
    assert.equal(ours.stdout, CLIENT_LINES);
    assert.equal(theirs, SERVER_LINES);
  });

  test(`${fam.name}: ucmatose client (rxe0) -> softroce ucmatose server, -c 2 -C 20 -S 3000: both print cmatose's lines, exit 0`, async () => {
    const { ours, theirs } = await guestToOursServer(["ucmatose", "-b", fam.host, "-c", "2", "-C", "20", "-S", "3000"], `ucmatose -s ${fam.host} -c 2 -C 20 -S 3000`);
    assert.match(theirs, /client-exit=0/, `ucmatose -s:\n${theirs}\n--- softroce:\n${ours.stdout}${ours.stderr}`);
    assert.equal(theirs.replace(/client-exit=0\n?$/, ""), CLIENT_LINES);
    assert.equal(ours.code, 0, `softroce ucmatose server: ${ours.stdout}${ours.stderr}`);
    assert.equal(ours.stdout, SERVER_LINES);
  });
}

// ---------------------------------------------------------------- udaddy (rdma_cm's UD port space: SIDR on QP1)

const UD_CLIENT_LINES = "udaddy: starting client\nudaddy: connecting\ninitiating data transfers\nreceiving data transfers\ndata transfers complete\ntest complete\nreturn status 0\n";
const UD_SERVER_LINES = "udaddy: starting server\nreceiving data transfers\nsending replies\ndata transfers complete\ntest complete\nreturn status 0\n";

for (const fam of FAMILIES) {
  test(`${fam.name}: softroce udaddy client -> udaddy server (rxe0), -c 2 -C 20 -S 1000: both print udaddy's lines, exit 0`, async () => {
    const { ours, theirs } = await oursToGuestServer(`udaddy -b ${fam.guest} -c 2 -C 20 -S 1000`, ["udaddy", "-s", fam.guest, "-b", fam.host, "-c", "2", "-C", "20", "-S", "1000"]);
    assert.equal(ours.code, 0, `softroce udaddy: ${ours.stdout}${ours.stderr}\n--- udaddy:\n${theirs}`);
    assert.equal(ours.stdout, UD_CLIENT_LINES);
    assert.equal(theirs, UD_SERVER_LINES);
  });

  test(`${fam.name}: udaddy client (rxe0) -> softroce udaddy server, -c 2 -C 20 -S 1000: the server answers at the address it made from the first message (ibv_create_ah_from_wc), exit 0`, async () => {
    const { ours, theirs } = await guestToOursServer(["udaddy", "-b", fam.host, "-c", "2", "-C", "20", "-S", "1000"], `udaddy -s ${fam.host} -c 2 -C 20 -S 1000`);
    assert.match(theirs, /client-exit=0/, `udaddy -s:\n${theirs}\n--- softroce:\n${ours.stdout}${ours.stderr}`);
    assert.equal(theirs.replace(/client-exit=0\n?$/, ""), UD_CLIENT_LINES);
    assert.equal(ours.code, 0, `softroce udaddy server: ${ours.stdout}${ours.stderr}`);
    assert.equal(ours.stdout, UD_SERVER_LINES);
  });
}

// ---------------------------------------------------------------- mckey (rdma_join_multicast: RoCEv2 multicast, IPv4)

const MC_GROUP = "239.1.1.1";
const MC_LINES = (role, count) =>
  `mckey: starting ${role}\nmckey: joining\nmckey: joined dgid: ::ffff:${MC_GROUP} mlid 0x0 sl 0\n` +
  (role === "client" ? "initiating data transfers\n" : "receiving data transfers\n") + "data transfers complete\ntest complete\nreturn status 0\n";

test(`IPv4: softroce mckey -s (sender) -> mckey (rxe0) joined to ${MC_GROUP}, -C 20 -S 1000: every datagram received, both print mckey's lines, exit 0`, async () => {
  await guest(`mckey -m ${MC_GROUP} -b ${GUEST4} -C 20 -S 1000 > /tmp/mk.out 2>&1 & echo $! > /tmp/mk.pid
i=0; while [ $i -lt 100 ] && ! grep -q joined /tmp/mk.out; do sleep 0.1; i=$((i + 1)); done`, 30);
  const ours = await softroce(["mckey", "-m", MC_GROUP, "-b", HOST4, "-s", "-C", "20", "-S", "1000", "--timeout", String(RUN_TIMEOUT_S)], (RUN_TIMEOUT_S + 10) * 1000);
  const theirs = await guest(`i=0; while [ $i -lt 100 ] && kill -0 $(cat /tmp/mk.pid) 2>/dev/null; do sleep 0.1; i=$((i + 1)); done; kill $(cat /tmp/mk.pid) 2>/dev/null; cat /tmp/mk.out`, 30);
  assert.equal(ours.code, 0, `softroce mckey: ${ours.stdout}${ours.stderr}\n--- mckey:\n${theirs}`);
  assert.equal(ours.stdout, MC_LINES("client"));
  assert.equal(theirs, MC_LINES("server"));
});

test(`IPv4: mckey -s (rxe0) -> softroce mckey joined to ${MC_GROUP}, -C 20 -S 1000: our QP attached to the group receives every datagram, exit 0`, async () => {
  const ours = softroce(["mckey", "-m", MC_GROUP, "-b", HOST4, "-C", "20", "-S", "1000", "--timeout", String(RUN_TIMEOUT_S)], (RUN_TIMEOUT_S + 10) * 1000);
  await new Promise((r) => setTimeout(r, 2000)); // Node's start and our join; the sender pauses 3 s after its own
  const theirs = await guest(`timeout ${RUN_TIMEOUT_S - 5} mckey -m ${MC_GROUP} -b ${GUEST4} -s -C 20 -S 1000; echo "sender-exit=$?"`, RUN_TIMEOUT_S);
  const r = await ours;
  assert.match(theirs, /sender-exit=0/, `mckey -s:\n${theirs}\n--- softroce:\n${r.stdout}${r.stderr}`);
  assert.equal(theirs.replace(/sender-exit=0\n?$/, ""), MC_LINES("client"));
  assert.equal(r.code, 0, `softroce mckey: ${r.stdout}${r.stderr}`);
  assert.equal(r.stdout, MC_LINES("server"));
});

test("IPv6: a group ff0e::4791:1 — Linux's mckey and ours both fail to join with error 524 (ENOTSUPP: rdma_cm joins only IPv4 groups over RoCEv2)", async () => {
  const theirs = await guest(`timeout 20 mckey -m ff0e::4791:1 -b ${GUEST6} -C 1; echo "exit=$?"`, 30);
  const ours = await softroce(["mckey", "-m", "ff0e::4791:1", "-b", HOST6, "-C", "1", "--timeout", "20"], 30_000);
  assert.match(theirs, /mckey: failure joining: Unknown error 524/, theirs);
  assert.doesNotMatch(theirs, /exit=0/, theirs);
  assert.match(ours.stdout, /mckey: failure joining: rdma_join_multicast: ENOTSUPP/, ours.stdout);
  assert.equal(ours.code, 1, ours.stdout);
});

// ---------------------------------------------------------------- cmtime (100 connections at once)

const CMTIME_STEPS = ["create id", "bind addr", "resolve addr", "resolve route", "create qp", "connect", "disconnect", "destroy"];
/** cmtime's client output: its progress lines, then the table with every step (bind only with -b), no error line. */
function checkCmtimeClient(out, withBind) {
  const steps = CMTIME_STEPS.filter((s) => withBind || s !== "bind addr");
  const rows = [...out.matchAll(/^(.{13}): (?: *\d+\.\d\d){4}$/gm)].map((m) => m[1].trimEnd());
  assert.deepEqual(rows, steps, out);
  assert.match(out, /^step {14}total ms {5}max ms {5}min us {2}us \/ conn$/m, out);
  assert.doesNotMatch(out, /error|failing|failure/i, out);
}

test("IPv4: softroce cmtime -c 100 -> cmtime server (rxe0): 100 connections made and broken at once, every step in the table, no error", async () => {
  await guest(`cmtime -b ${GUEST4} > /tmp/ct.out 2>&1 & echo $! > /tmp/ct.pid
i=0; while [ $i -lt 100 ] && ! rdma res show cm_id | grep -q LISTEN; do sleep 0.1; i=$((i + 1)); done`, 30);
  const ours = await softroce(["cmtime", "-s", GUEST4, "-b", HOST4, "-c", "100", "--timeout", String(RUN_TIMEOUT_S)], (RUN_TIMEOUT_S + 10) * 1000);
  // cmtime's server never ends: stopped here, its output must hold no error
  const theirs = await guest("sleep 1; kill $(cat /tmp/ct.pid); cat /tmp/ct.out", 30);
  assert.equal(ours.code, 0, `softroce cmtime: ${ours.stdout}${ours.stderr}\n--- cmtime -b:\n${theirs}`);
  checkCmtimeClient(ours.stdout, true);
  assert.doesNotMatch(theirs, /error|failing|failure/i, theirs);
});

test("IPv4: cmtime -c 100 (rxe0) -> softroce cmtime server: Linux's client makes and breaks its 100 connections, no error; our server tore every one down", async () => {
  const ours = softroce(["cmtime", "-b", HOST4, "--serve", "100", "--timeout", String(RUN_TIMEOUT_S)], (RUN_TIMEOUT_S + 10) * 1000);
  await new Promise((r) => setTimeout(r, 2000));
  const theirs = await guest(`timeout ${RUN_TIMEOUT_S - 5} cmtime -s ${HOST4} -c 100; echo "client-exit=$?"`, RUN_TIMEOUT_S);
  assert.match(theirs, /client-exit=0/, theirs);
  checkCmtimeClient(theirs.replace(/client-exit=0\n?$/, ""), false);
  const r = await ours;
  assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
  assert.equal(r.stdout, "");
  assert.equal(r.stderr, "softroce cmtime: served 100 connections, tore down 100\n");
});

// ---------------------------------------------------------------- rdma_server / rdma_client

for (const fam of FAMILIES) {
  test(`${fam.name}: softroce rdma_client -> rdma_server (rxe0): one connection, a 16-byte inline SEND each way; both print start and end 0`, async () => {
    const { ours, theirs } = await oursToGuestServer(`rdma_server -s ${fam.guest}`, ["rdma_client", "-s", fam.guest, "--address", fam.host]);
    assert.equal(ours.code, 0, `softroce rdma_client: ${ours.stdout}${ours.stderr}\n--- rdma_server:\n${theirs}`);
    assert.equal(ours.stdout, "rdma_client: start\nrdma_client: end 0\n");
    assert.equal(theirs, "rdma_server: start\nrdma_server: end 0\n");
  });

  test(`${fam.name}: rdma_client (rxe0) -> softroce rdma_server: the same, roles swapped`, async () => {
    const { ours, theirs } = await guestToOursServer(["rdma_server", "-s", fam.host], `rdma_client -s ${fam.host}`);
    assert.match(theirs, /client-exit=0/, `rdma_client:\n${theirs}\n--- softroce:\n${ours.stdout}${ours.stderr}`);
    assert.equal(theirs.replace(/client-exit=0\n?$/, ""), "rdma_client: start\nrdma_client: end 0\n");
    assert.equal(ours.code, 0, `softroce rdma_server: ${ours.stdout}${ours.stderr}`);
    assert.equal(ours.stdout, "rdma_server: start\nrdma_server: end 0\n");
  });
}

// rdma_xserver / rdma_xclient (RC): one SEND from the client; Linux's server listens on 0.0.0.0 only
// (rdma_getaddrinfo's first passive answer), so IPv4. Its REP (a zeroed rdma_conn_param: no reads,
// RNR retry 0) is in the capture beside ours for the MAD comparison below

test("IPv4: softroce rdma_xclient -> rdma_xserver (rxe0): one connection, a 16-byte inline SEND; both print start and end 0", async () => {
  const { ours, theirs } = await oursToGuestServer("rdma_xserver", ["rdma_xclient", "-s", GUEST4, "--address", HOST4]);
  assert.equal(ours.code, 0, `softroce rdma_xclient: ${ours.stdout}${ours.stderr}\n--- rdma_xserver:\n${theirs}`);
  assert.equal(ours.stdout, "rdma_xclient: start\nrdma_xclient: end 0\n");
  assert.equal(theirs, "rdma_xserver: start\nrdma_xserver: end 0\n");
});

test("IPv4: rdma_xclient (rxe0) -> softroce rdma_xserver: the same, roles swapped", async () => {
  const { ours, theirs } = await guestToOursServer(["rdma_xserver", "--address", HOST4], `rdma_xclient -s ${HOST4}`);
  assert.match(theirs, /client-exit=0/, `rdma_xclient:\n${theirs}\n--- softroce:\n${ours.stdout}${ours.stderr}`);
  assert.equal(theirs.replace(/client-exit=0\n?$/, ""), "rdma_xclient: start\nrdma_xclient: end 0\n");
  assert.equal(ours.code, 0, `softroce rdma_xserver: ${ours.stdout}${ours.stderr}`);
  assert.equal(ours.stdout, "rdma_xserver: start\nrdma_xserver: end 0\n");
});

test("rdma_xclient -c x: Linux's fails at rdma_create_ep on rxe (no XRC) and ours says the same lines", async () => {
  const theirs = await guest(`rdma_xclient -s ${HOST4} -c x 2>&1; echo "client-exit=$?"`, 30);
  const ours = await softroce(["rdma_xclient", "-s", HOST4, "-c", "x", "--address", HOST4, "--timeout", "20"], 30_000);
  assert.match(theirs, /client-exit=255/, theirs);
  assert.equal(ours.code, 1, `${ours.stdout}${ours.stderr}`);
  // the same lines; Linux's perror goes to unbuffered stderr, before the piped stdout's "start"
  const lines = (t) => t.trimEnd().split("\n").sort();
  assert.deepEqual(lines(ours.stdout), lines(theirs.replace(/client-exit=255\n?$/, "")));
});

// ---------------------------------------------------------------- rstream (rsockets)

// rsockets' stream protocol: the rs_conn_data in the REQ and REP, data as RDMA WRITE WITH IMMEDIATE into
// the buffers each side gave, credits as writes into the other's target SGL. -T v: each side checks every
// byte it receives (rstream's verify_buf); 4 MB each way, four times the 1 MiB receive buffer. -k 1:
// SO_KEEPALIVE with TCP_KEEPIDLE 1 s on every socket, set_keepalive's two lines for each (the server's
// listening socket and the one it accepted, the client's), an RS_CTRL_KEEPALIVE a second while connected
const RSTREAM = ["-S", "100000", "-C", "20", "-I", "2", "-T", "v", "-k", "1"];
const KEEPALIVE_LINES = "Keepalive: ON\n  time: 1\n";
const RSTREAM_ROW = /^(custom)\s+(97k)\s+(20)\s+(2)\s+(7\.6m)\s+\d+\.\d\ds\s+\d+\.\d\d\s+\d+\.\d\d$/m;
const RSTREAM_HEAD = "name      bytes   xfers   iters   total       time     Gb/sec    usec/xfer\n";

// riostream: rsockets' iomaps. Each side sets RDMA_IOMAPSIZE 1 (its rs_conn_data says so), maps its
// transfer buffer with riomap and tells the peer by an RS_OP_IOMAP_SGL write before its sync message; the
// transfers are RDMA WRITEs straight into the peer's buffer, each turn's last carrying the marker the
// peer spins on; -T v checks the bytes before it (riostream's verify_buf). 2 MB each way
const RIOSTREAM = ["-S", "100000", "-C", "10", "-I", "2", "-T", "v"];
const RIOSTREAM_ROW = /^(custom)\s+(97k)\s+(10)\s+(2)\s+(3\.8m)\s+\d+\.\d\ds\s+\d+\.\d\d\s+\d+\.\d\d$/m;

for (const [tool, flags, row, checks] of [["rstream", RSTREAM, RSTREAM_ROW, "every byte"], ["riostream", RIOSTREAM, RIOSTREAM_ROW, "the bytes"]]) {
  /** both sides' tables: the header and the row, no failure said; with -k, set_keepalive's lines after the header (the server's twice) */
  const tables = (ours, theirs, oursServes) => {
    for (const [out, serves] of [[ours.stdout, oursServes], [theirs, !oursServes]]) {
      assert.ok(out.startsWith(RSTREAM_HEAD), out);
      assert.match(out, row);
      assert.doesNotMatch(out, /verification failed|riomap|riowrite|rsend|rrecv/);
      if (flags.includes("-k")) assert.ok(out.startsWith(RSTREAM_HEAD + KEEPALIVE_LINES.repeat(serves ? 2 : 1) + "custom"), `${serves ? "server" : "client"}:\n${out}`);
    }
  };
  test(`IPv4: softroce ${tool} -s (client) -> ${tool} (rxe0), ${flags.join(" ")}: both check ${checks}, print ${tool}'s table, exit 0`, async () => {
    const { ours, theirs } = await oursToGuestServer(`${tool} -b ${GUEST4} ${flags.join(" ")}`, [tool, "-s", GUEST4, "-b", HOST4, ...flags]);
    assert.equal(ours.code, 0, `softroce ${tool}: ${ours.stdout}${ours.stderr}\n--- ${tool}:\n${theirs}`);
    tables(ours, theirs, false);
  });

  test(`IPv4: ${tool} -s (rxe0) -> softroce ${tool}, ${flags.join(" ")}: the same, roles swapped`, async () => {
    const { ours, theirs } = await guestToOursServer([tool, "-b", HOST4, ...flags], `${tool} -s ${HOST4} -b ${GUEST4} ${flags.join(" ")}`);
    assert.match(theirs, /client-exit=0/, `${tool}:\n${theirs}\n--- softroce:\n${ours.stdout}${ours.stderr}`);
    assert.equal(ours.code, 0, `softroce ${tool}: ${ours.stdout}${ours.stderr}`);
    tables(ours, theirs, true);
  });
}

// rcopy: one file over an rsockets stream (open with the destination and mode, write with the size, the
// bytes, close; each answered by a 16-byte response). 2 MB of random bytes each way, compared by SHA-256
const RCOPY_BYTES = 2_000_000;
const sha256 = (b) => createHash("sha256").update(b).digest("hex");

test(`IPv4: softroce rcopy (client) -> rcopy (rxe0, the server): ${RCOPY_BYTES} random bytes land in the guest's file as sent; both print rcopy's lines`, async () => {
  const src = join(G.runDir, "rcopy-src.bin");
  const bytes = randomBytes(RCOPY_BYTES);
  writeFileSync(src, bytes);
  await guest(`rm -f /tmp/rc.dst; rcopy > /tmp/rcs.out 2>&1 & echo $! > /tmp/rcs.pid
i=0; while [ $i -lt 100 ] && ! rdma res show cm_id | grep -q LISTEN; do sleep 0.1; i=$((i + 1)); done`, 30);
  const ours = await softroce(["rcopy", src, `${GUEST4}:/tmp/rc.dst`, "--address", HOST4, "--timeout", String(RUN_TIMEOUT_S)], (RUN_TIMEOUT_S + 10) * 1000);
  const theirs = await guest("sleep 0.5; kill $(cat /tmp/rcs.pid); cat /tmp/rcs.out; echo; sha256sum /tmp/rc.dst", 30);
  assert.equal(ours.code, 0, `softroce rcopy: ${ours.stdout}${ours.stderr}\n--- rcopy:\n${theirs}`);
  assert.match(ours.stdout, new RegExp(`^opening\\.\\.\\.transferring\\.\\.\\.closing\\.\\.\\.done\n${RCOPY_BYTES} bytes in \\d+\\.\\d\\d seconds = \\d+\\.\\d\\d Gb/sec\n$`));
  assert.ok(theirs.startsWith(`waiting for connection...client: ${HOST4}\nopening: /tmp/rc.dst, transferring...${RCOPY_BYTES} bytes...closing...done\nwaiting for connection...`), theirs);
  assert.match(theirs, new RegExp(`^${sha256(bytes)}  /tmp/rc.dst$`, "m"));
});

test(`IPv4: rcopy (rxe0, the client) -> softroce rcopy --serve 1: ${RCOPY_BYTES} random bytes land in our file as sent; both print rcopy's lines`, async () => {
  const dir = join(G.runDir, "rcopy");
  mkdirSync(dir, { recursive: true });
  rmSync(join(dir, "rc.copy"), { force: true });
  const server = softroce(["rcopy", "--address", HOST4, "--dir", dir, "--serve", "1", "--timeout", String(RUN_TIMEOUT_S)], (RUN_TIMEOUT_S + 10) * 1000);
  await new Promise((r) => setTimeout(r, 2000));
  const theirs = await guest(`head -c ${RCOPY_BYTES} /dev/urandom > /tmp/rc.src; sha256sum /tmp/rc.src; timeout ${RUN_TIMEOUT_S - 5} rcopy /tmp/rc.src ${HOST4}:rc.copy; echo "client-exit=$?"`, RUN_TIMEOUT_S);
  const ours = await server;
  assert.match(theirs, /client-exit=0/, `rcopy:\n${theirs}\n--- softroce:\n${ours.stdout}${ours.stderr}`);
  assert.equal(ours.code, 0, `softroce rcopy: ${ours.stdout}${ours.stderr}`);
  assert.equal(ours.stdout, `waiting for connection...client: ${GUEST4}\nopening: rc.copy, transferring...${RCOPY_BYTES} bytes...closing...done\n`);
  assert.match(theirs, new RegExp(`opening\\.\\.\\.transferring\\.\\.\\.closing\\.\\.\\.done\n${RCOPY_BYTES} bytes in \\d+\\.\\d\\d seconds = \\d+\\.\\d\\d Gb/sec\n`));
  assert.equal(theirs.split(" ")[0], sha256(readFileSync(join(dir, "rc.copy"))), theirs);
});

// ---------------------------------------------------------------- perftest's own exchange

const PERFTESTS = ["write_bw", "read_bw", "send_bw", "atomic_bw", "write_lat", "read_lat", "send_lat", "atomic_lat"];
const PT_ITERS = 20;
const atomicTest = (t) => t.startsWith("atomic_");
/** A test's -s: atomics move 8 bytes, perftest's only size for them (no -s). */
const ptBytes = (t) => (atomicTest(t) ? 8 : t.endsWith("_lat") ? 64 : 4096);
const ptSize = (t) => (atomicTest(t) ? [] : ["-s", String(ptBytes(t))]);
/** The servers that print no figures: read_lat's and atomic_lat's only serve. */
const serverPrints = (t) => t !== "read_lat" && t !== "atomic_lat";
/** The result line of perftest's table: size, iterations, figures. */
// A row's first figure: Linux's perftest prints inf or nan for a row whose CPU-frequency sample it
// rejects ("Correlation coefficient r^2 < 0.9", which the TCG guest's clock gives it now and then)
const FIG = "(?:\\d+\\.\\d\\d|-?inf|-?nan)";
const ptLine = (t, out) => out.split("\n").find((l) => new RegExp(`^ ${ptBytes(t)}\\s+\\d+\\s+${FIG}`).test(l));

// perftest's default exchange over IPv4 (rxe's GID 1) and IPv6 (GID 2; the TCP exchange stays on IPv4,
// perftest's socket is AF_INET), and its rdma_cm mode (-R: IPv4, as perftest's rdma_cm mode is)
const PT_MODES = [
  { name: "IPv4", theirs: "-x 1", ours: ["--perftest", "--address", HOST4] },
  { name: "IPv6", theirs: "-x 2", ours: ["--perftest", "--address", HOST6] },
  { name: "-R", theirs: "-R", ours: ["-R", "--address", HOST4] },
];

/**
 * A side's header as perftest prints it (from the rule above the title to the address lines), with what
 * is the machine's made the same on both: the device's name, the GID index (rxe's are 1 and 2, ours
 * 0), PCIe relaxed ordering (Debian's perftest is built with it).
 */
function headerOf(out) {
  const title = out.search(/^ {20}\S/m);
  if (title < 0) return undefined;
  return out.slice(out.lastIndexOf(`${"-".repeat(87)}\n`, title), out.indexOf(" local address:", title))
    .replace(/Device {9}: \w+/, "Device         : DEV").replace(/ GID index {7}: \d+/, " GID index       : N").replace(/PCIe relax order: \w+/, "PCIe relax order: X")
    .replace(/ Test with events\. Using \w+_comp0/, " Test with events. Using DEV_comp0");
}

/**
 * One run each way: softroce perf the client of Linux's ib_<t> server (in the guest, in the
 * background), then Linux's ib_<t> client of a softroce perf server. Both ends must exit 0 and the
 * Linux server must end by itself without a complaint; gives the four outputs for the run's checks.
 * `theirServer`/`ourServer`: flags for that side's server only; `long`: a run of many sizes (-a), given more time;
 * `stderr`: our two sides' stderr too (`stderr.oursClient`, `stderr.oursServer`; Linux's is in its output).
 */
async function perftestBothWays(t, mode, flags, { theirServer = [], ourServer = [], long = false, json = false, stderr = false } = {}) {
  const what = `${t} ${[mode.ours[0], ...flags].join(" ")}`;
  const slackS = long ? 60 : 30;
  const waitS = long ? 30 : 20;
  // json: each side writes perftest's --out_json file too (Linux's in the guest), read after each run
  const ourJson = join(WORK, "pt.json");
  const theirFlags = json ? ["--out_json", "--out_json_file", "/tmp/pt.json"] : [];
  const ourFlags = json ? ["--out_json", "--out_json_file", ourJson] : [];
  const SEP = "@@out_json@@\n";
  const theirJson = json ? `; rm -f /tmp/pt.json` : "";
  const catJson = json ? `; printf '${SEP.replace("\n", "\\n")}'; cat /tmp/pt.json` : "";
  const split = (out) => (json ? out.split(SEP) : [out, undefined]);
  const readOurs = () => (json ? readFileSync(ourJson, "utf8") : undefined);
  await guest(`rm -f /tmp/pt.json; ib_${t} -d rxe0 ${mode.theirs} ${[...flags, ...theirFlags, ...theirServer].join(" ")} -F > /tmp/pt.out 2>&1 & echo $! > /tmp/pt.pid; sleep 2`, 20);
  const ours = await softroce(["perf", t, GUEST4, ...mode.ours, ...flags, ...ourFlags], (RUN_TIMEOUT_S + slackS) * 1000);
  const jsonOursClient = readOurs();
  const [theirs, jsonTheirServer] = split(await guest(`pid=$(cat /tmp/pt.pid); i=0; while [ $i -lt ${waitS * 10} ] && kill -0 $pid 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
kill -0 $pid 2>/dev/null && { kill $pid; echo STILL-RUNNING; }; cat /tmp/pt.out${catJson}${theirJson}`, 2 * waitS));
  // stderr first: a failure's message is cut at 2000 characters
  assert.equal(ours.code, 0, `softroce perf ${what} (client): ${ours.stderr}\n${ours.stdout}\n--- ib_${t}:\n${theirs}`);
  assert.doesNotMatch(theirs, /STILL-RUNNING|Couldn't|Failed|not compatible|Unable/, theirs);
  const server = softroce(["perf", t, ...mode.ours, ...flags, ...ourFlags, ...ourServer], (RUN_TIMEOUT_S + slackS) * 1000);
  await new Promise((r) => setTimeout(r, 2000));
  // a Linux client that never ends fails the test, after our server has ended (so the next test's can bind)
  const [client, jsonTheirClient] = split(await guest(`ib_${t} -d rxe0 ${mode.theirs} ${[...flags, ...theirFlags].join(" ")} -F ${HOST4} > /tmp/pt.out 2>&1; echo "client-exit=$?"; cat /tmp/pt.out${catJson}${theirJson}`, RUN_TIMEOUT_S + (long ? 60 : 20))
    .catch(async (e) => {
      await server;
      throw e;
    }));
  const srv = await server;
  assert.match(client, /^client-exit=0$/m, `ib_${t} client (${flags.join(" ")}):\n${client}\n--- softroce server:\n${srv.stdout}${srv.stderr}`);
  assert.equal(srv.code, 0, `softroce perf ${what} (server): ${srv.stderr}\n${srv.stdout}`);
  // each side's header line for line as Linux's for the same flags: ours the client as theirs, ours the server as theirs
  assert.equal(headerOf(ours.stdout), headerOf(client), `client headers (ours, then Linux's):\n${ours.stdout}\n---\n${client}`);
  assert.equal(headerOf(srv.stdout), headerOf(theirs), `server headers (ours, then Linux's):\n${srv.stdout}\n---\n${theirs}`);
  const outs = { oursClient: ours.stdout, theirServer: theirs, theirClient: client, oursServer: srv.stdout };
  const errs = stderr ? { stderr: { oursClient: ours.stderr, oursServer: srv.stderr } } : {};
  return json ? { ...outs, ...errs, json: { oursClient: jsonOursClient, theirServer: jsonTheirServer, theirClient: jsonTheirClient, oursServer: readOurs() } } : { ...outs, ...errs };
}

// IPv6 (rxe's GID 2) differs from IPv4 in the GIDs the QPs are given, which two tests show
for (const mode of PT_MODES) {
  for (const t of mode.name === "IPv6" ? ["read_bw", "send_lat"] : PERFTESTS) {
    test(`perftest ${t} (${mode.name}): softroce perf ${mode.ours[0]} client -> ib_${t} ${mode.theirs} server (rxe0), and ib_${t} client -> softroce server; both ends exit 0`, async () => {
      const r = await perftestBothWays(t, mode, [...ptSize(t), "-n", String(PT_ITERS)]);
      assert.ok(ptLine(t, r.oursClient), r.oursClient);
      if (serverPrints(t)) assert.ok(ptLine(t, r.theirServer), r.theirServer);
      if (["write_bw", "read_bw", "atomic_bw"].includes(t)) assert.equal(ptLine(t, r.theirServer).trim(), ptLine(t, r.oursClient).trim()); // the server prints the client's report
      if (mode.name === "IPv6") assert.match(r.oursClient, / remote address: .*\n GID: 253:00:71:145:00:00:00:00:00:00:00:00:00:00:00:02\n/);
      if (mode.name === "-R") assert.match(r.theirServer, / rdma_cm QPs\t : ON\n Data ex. method : rdma_cm/);
      assert.ok(ptLine(t, r.theirClient), r.theirClient);
      if (serverPrints(t)) assert.ok(ptLine(t, r.oursServer), r.oursServer);
    });
  }
}

// -A CMP_AND_SWAP: perftest compares with 0 and swaps in 0; the title names the operation on both ends
for (const t of ["atomic_bw", "atomic_lat"]) {
  test(`perftest ${t} -A CMP_AND_SWAP (IPv4): softroce perf client -> ib_${t} server (rxe0), and ib_${t} client -> softroce server; both ends exit 0`, async () => {
    const r = await perftestBothWays(t, PT_MODES[0], ["-n", String(PT_ITERS), "-A", "CMP_AND_SWAP"]);
    const title = `\n                    Atomic CMP_AND_SWAP ${t === "atomic_bw" ? "BW" : "Latency"} Test\n`;
    for (const out of [r.oursClient, r.theirServer, r.theirClient]) assert.ok(out.includes(title), out);
    assert.ok(ptLine(t, r.oursClient), r.oursClient);
    assert.ok(ptLine(t, r.theirClient), r.theirClient);
  });
}

// -a: every size from 2 to 2^23 bytes, a row each; the handshakes perftest adds per size (SEND tests:
// the receives of each size posted, then one before and, for send_bw, one after) are what must match
const rowsOf = (out) => out.split("\n").filter((l) => new RegExp(`^ \\d+\\s+\\d+\\s+${FIG}`).test(l)).map((l) => Number(l.trim().split(/\s+/)[0]));
const ALL_ROWS = Array.from({ length: 23 }, (_, i) => 2 << i);
/** The rows a server prints with -a: WRITE and READ bandwidth the client's last report, read_lat none, the rest its own per size. */
const serverRows = (t) => (t === "write_bw" || t === "read_bw" ? [ALL_ROWS[22]] : t === "read_lat" ? [] : ALL_ROWS);
// Four of perftest's six, each a way -a differs: write_bw (the server prints the client's last report),
// send_bw and send_lat (the handshakes around each size, different for each), read_lat (the server prints
// nothing; READs up to 8 MiB); read_bw and write_lat add no way of their own, and each -a run costs about
// 45 s of the CI's time on the TCG guest. rdma_cm's exchange once, with send_bw's handshakes
for (const [mode, t] of [...["write_bw", "send_bw", "read_lat", "send_lat"].map((t) => [PT_MODES[0], t]), [PT_MODES[2], "send_bw"]]) {
  test(`perftest ${t} -a (${mode.name}): softroce perf client -> ib_${t} -a server (rxe0), and ib_${t} -a client -> softroce server; 23 sizes each way, both ends exit 0`, async () => {
    // READs of up to 8 MiB from a TCG guest that moves about 5 MB/s: with -u 14 (67 ms) a stall of the
    // guest sends a retry, which restarts the guest's response from the PSN asked; a run of them was
    // seen to end in RETRY_EXC once (a READ retried seven times with no response at all). -u 16 (268 ms)
    // on both sides gives a stall 1.9 s; -u 18 did too, but every lost last packet of a response then
    // waits 1 s, and the two tests took 3.5 times as long. The test is of -a's sizes and handshakes
    const slow = t.startsWith("read") ? ["-u", "16"] : [];
    const r = await perftestBothWays(t, mode, ["-a", "-n", "5", ...slow], { long: true });
    assert.deepEqual(rowsOf(r.oursClient), ALL_ROWS, r.oursClient);
    assert.deepEqual(rowsOf(r.theirServer), serverRows(t), r.theirServer);
    assert.deepEqual(rowsOf(r.theirClient), ALL_ROWS, r.theirClient);
    assert.deepEqual(rowsOf(r.oursServer), serverRows(t), r.oursServer);
  });
}

// -D: each side runs perftest's duration clock (a quarter of it warm-up, the middle half the sample, a
// quarter to the end); a bandwidth row has no peak, a latency row perftest's duration columns
const DURATION_S = 4;
const durBwRow = (out) => /^ \d+\s+(\d+)\s+0\.00\s+(\d+\.\d\d)\s+\d+\.\d+\s*$/m.exec(out);
const durLatRow = (out) => new RegExp(`^ \\d+\\s+(\\d+)\\s+(${FIG})\\s+(${FIG})\\s*$`, "m").exec(out);
const durRow = (t, out) => (t.endsWith("_bw") ? durBwRow(out) : durLatRow(out));
for (const t of ["write_bw", "send_bw", "read_lat", "write_lat", "send_lat"]) {
  test(`perftest ${t} -D ${DURATION_S} (IPv4): softroce perf client -> ib_${t} -D server (rxe0), and ib_${t} -D client -> softroce server; both ends exit 0`, async () => {
    const r = await perftestBothWays(t, PT_MODES[0], ["-D", String(DURATION_S)]);
    const mine = durRow(t, r.oursClient);
    assert.ok(mine && Number(mine[1]) > 0, r.oursClient);
    if (t === "write_bw") assert.equal(durBwRow(r.theirServer)?.[0], mine[0], r.theirServer); // the server prints the client's report
    else if (t !== "read_lat") assert.ok(durRow(t, r.theirServer) && Number(durRow(t, r.theirServer)[1]) > 0, r.theirServer);
    assert.ok(durRow(t, r.theirClient) && Number(durRow(t, r.theirClient)[1]) > 0, r.theirClient);
    if (t !== "read_lat") assert.ok(durRow(t, r.oursServer), r.oursServer);
  });
}

// send_bw -b -D: run_iter_bi on the clock (a server starts its clock at its first receive); each side
// prints its own row, the sends and receives completed in its sample, and swaps no report
test(`perftest send_bw -b -D ${DURATION_S} (IPv4): softroce perf client -> ib_send_bw -b -D server (rxe0), and ib_send_bw -b -D client -> softroce server; both ends exit 0, each with its own row`, async () => {
  const r = await perftestBothWays("send_bw", PT_MODES[0], ["-b", "-D", String(DURATION_S)]);
  for (const out of Object.values(r)) {
    assert.ok(out.includes("Send Bidirectional BW Test\n"), out);
    assert.ok(durBwRow(out) && Number(durBwRow(out)[1]) > 0, out);
  }
});

// --run_infinitely: each side that measures prints a row every -D seconds until it is stopped
// (perftest's print thread); send_bw's server its receives'. Our rows are read (Linux's perftest writes
// its rows to a file through stdio's buffer, which a stopped perftest never flushes); each Linux side is
// checked to have been still running when stopped, as an endless run is
test("perftest send_bw --run_infinitely -D 1 (IPv4): softroce perf client -> ib_send_bw --run_infinitely server (rxe0), and ib_send_bw --run_infinitely client -> softroce server; our rows a second apart until stopped, Linux's side still running", async () => {
  const flags = ["--run_infinitely", "-D", "1"];
  const counted = (out) => [...out.matchAll(/^ 65536\s+(\d+)\s+0\.00\s+\d+\.\d\d\s+\d+\.\d+\s*$/gm)].map((m) => Number(m[1])).filter((n) => n > 0);
  await guest(`ib_send_bw -d rxe0 -x 1 ${flags.join(" ")} -F > /tmp/pt.out 2>&1 & echo $! > /tmp/pt.pid; sleep 2`, 20);
  const ours = await softroce(["perf", "send_bw", GUEST4, ...PT_MODES[0].ours, ...flags], 6000);
  const theirs = await guest("kill $(cat /tmp/pt.pid) && echo SERVER-WAS-RUNNING; sleep 0.5; cat /tmp/pt.out", 20);
  assert.ok(ours.timedOut, `softroce perf ended by itself: ${ours.stderr}\n${ours.stdout}\n--- ib_send_bw:\n${theirs}`);
  assert.ok(counted(ours.stdout).length >= 3, ours.stdout);
  assert.match(theirs, /^SERVER-WAS-RUNNING$/m, theirs);
  // our server, left by the client's end: nothing more comes, and it gives up after --wait
  const server = softroce(["perf", "send_bw", ...PT_MODES[0].ours, ...flags, "--wait", "5"], 40_000);
  await new Promise((r) => setTimeout(r, 2000));
  const client = await guest(`timeout -s TERM 6 ib_send_bw -d rxe0 -x 1 ${flags.join(" ")} -F ${HOST4} > /tmp/pt.out 2>&1; echo "client-exit=$?"; cat /tmp/pt.out`, 30);
  const srv = await server;
  // busybox timeout's status for a command it had to stop: the signal's (128 + SIGTERM)
  assert.match(client, /^client-exit=143$/m, `${client}\n--- softroce server:\n${srv.stdout}${srv.stderr}`);
  assert.ok(counted(srv.stdout).length >= 3, srv.stdout);
  assert.equal(srv.code, 1, srv.stdout + srv.stderr);
  assert.match(srv.stderr, /nothing from the peer for 5 s during the test/);
});

// --cpu_util with -D: the CPU_Util[%] column after the table header and each row (write_bw's servers print
// the client's report with their own figure, 0.00, never measured); --wait_destroy's line last, after the rule
test("perftest write_bw -D 2 --cpu_util --wait_destroy 1 (IPv4): softroce perf client -> ib_write_bw server (rxe0), and ib_write_bw client -> softroce server; both ends exit 0, the CPU column and the wait line as Linux's", async () => {
  const r = await perftestBothWays("write_bw", PT_MODES[0], ["-D", "2", "--cpu_util", "--wait_destroy", "1"]);
  for (const [who, out] of Object.entries(r)) {
    assert.ok(out.includes("   MsgRate[Mpps]    CPU_Util[%]\n"), `${who}:\n${out}`);
    const row = /^ 65536\s+\d+\s+0\.00\s+\d+\.\d\d\s+\d+\.\d+\t {4}(\d+\.\d\d)$/m.exec(out);
    assert.ok(row, `${who}:\n${out}`);
    if (who.endsWith("Server")) assert.equal(row[1], "0.00", `${who}:\n${out}`);
    assert.ok(out.endsWith("-".repeat(87) + "\n Waiting 1 seconds before releasing resources...\n"), `${who}:\n${out}`);
  }
});

// --latency_gap: each side's wait before a post is in every measurement (both sides' on write_lat, whose row halves them)
test("perftest write_lat --latency_gap 3000 (IPv4): softroce perf client -> ib_write_lat server (rxe0), and ib_write_lat client -> softroce server; both ends exit 0, every t_min past the gap", async () => {
  const r = await perftestBothWays("write_lat", PT_MODES[0], ["-s", "64", "-n", "20", "--latency_gap", "3000"]);
  for (const [who, out] of Object.entries(r)) {
    const row = /^ 64\s+20\s+(\d+\.\d\d)\s/m.exec(out);
    assert.ok(row && Number(row[1]) >= 3000, `${who}:\n${out}`);
  }
});

// --rate_limit_type SW: the sender's bursts, one a gap; 1000 messages in bursts of 10 span at least 99
// gaps of 10 ms, so a client's rate is at most 1000 / 0.99 a second (without the limiter both run 5 to 50 times that)
test("perftest write_bw --rate_limit_type SW --rate_limit 1000 --rate_units p --burst_size 10 (IPv4): softroce perf client -> ib_write_bw server (rxe0), and ib_write_bw client -> softroce server; both ends exit 0, each client's message rate within the limit", async () => {
  const r = await perftestBothWays("write_bw", PT_MODES[0], ["-s", "64", "-n", "1000", "--rate_limit_type", "SW", "--rate_limit", "1000", "--rate_units", "p", "--burst_size", "10"]);
  for (const [who, out] of [["ours", r.oursClient], ["Linux's", r.theirClient]]) {
    const row = /^ 64\s+1000\s+\d+\.\d\d\s+\d+\.\d\d\s+(\d+\.\d+)$/m.exec(out);
    assert.ok(row, `${who}:\n${out}`);
    const pps = Number(row[1]) * 1e6;
    assert.ok(pps <= (1000 / 0.99) * 1.001 && pps > 250, `${who}: ${pps} messages/s\n${out}`);
  }
});

// -C: the latency figures in CPU cycles (ours: the wall time at /proc/cpuinfo's rate); -U lists them
// under "#, cycles"; the header still says usec (compared line for line by perftestBothWays)
test("perftest write_lat -C -U (IPv4): softroce perf client -> ib_write_lat server (rxe0), and ib_write_lat client -> softroce server; both ends exit 0, every list under '#, cycles', every t_min in cycles", async () => {
  const r = await perftestBothWays("write_lat", PT_MODES[0], ["-s", "64", "-n", "20", "-C", "-U"]);
  for (const [who, out] of Object.entries(r)) {
    assert.match(out, /\n#, cycles\n1, /, `${who}:\n${out}`);
    const row = /^ 64\s+20\s+(\d+\.\d\d)\s/m.exec(out);
    // a loopback or tap half round trip is microseconds: in cycles above 10000 (in µs it would be a 10 ms minimum)
    assert.ok(row && Number(row[1]) > 10000, `${who}:\n${out}`);
  }
});

// -o: outstanding reads in the header and the key message (a READ test's address lines' OUT), as Linux's
test("perftest read_bw -o 4 (IPv4): softroce perf client -> ib_read_bw server (rxe0), and ib_read_bw client -> softroce server; both ends exit 0, Outstand reads 4 in every header, OUT 0x04 in every address line", async () => {
  const r = await perftestBothWays("read_bw", PT_MODES[0], ["-s", "1024", "-n", String(PT_ITERS), "-o", "4"]);
  for (const [who, out] of Object.entries(r)) {
    assert.match(out, / Outstand reads  : 4\n/, `${who}:\n${out}`);
    const lines = out.split("\n").filter((l) => / (local|remote) address: /.test(l));
    assert.equal(lines.length, 2, `${who}:\n${out}`);
    for (const l of lines) assert.match(l, / OUT 0x04 /, `${who}: ${l}`);
  }
});

// --reversed: perftest's machine swapped, its exchange not: the side that listens runs the client's part
// (a bandwidth test's sender; write_lat's side that waits for the first write) and the side that connects
// the server's: it says "Waiting for client to connect" (before it connects) and has the server's header
for (const t of ["write_bw", "send_bw", "write_lat"]) {
  test(`perftest ${t} --reversed (IPv4): softroce perf client -> ib_${t} server (rxe0), and ib_${t} client -> softroce server; both ends exit 0, the connecting sides wait and have the server's header${t.endsWith("_bw") ? ", the listeners send" : ""}`, async () => {
    const r = await perftestBothWays(t, PT_MODES[0], ["--reversed", ...ptSize(t), "-n", String(PT_ITERS)]);
    const waits = (out) => out.includes("* Waiting for client to connect... *");
    const txDepth = ` TX depth        : ${t.endsWith("_lat") ? 1 : PT_ITERS}\n`;
    for (const out of [r.oursClient, r.theirClient]) assert.ok(waits(out) && !out.includes(" TX depth "), out);
    for (const out of [r.oursServer, r.theirServer]) assert.ok(!waits(out) && out.includes(txDepth), out);
    for (const out of Object.values(r)) assert.ok(ptLine(t, out), out);
    // write_bw's receiver prints the sender's report; send_bw's receiver measures its own (peak 0.00)
    if (t === "write_bw") {
      assert.equal(ptLine(t, r.oursClient).trim(), ptLine(t, r.theirServer).trim());
      assert.equal(ptLine(t, r.theirClient).trim(), ptLine(t, r.oursServer).trim());
    }
    if (t === "send_bw") for (const out of [r.oursClient, r.theirClient]) assert.match(ptLine(t, out), new RegExp(`^ 4096\\s+${PT_ITERS}\\s+0\\.00\\s`), out);
  });
}

// -z: perftest's exchange over rdma_cm (a comm connection's SENDs, as -R's; the header's "Data ex. method :
// rdma_cm" and address lines without RKey), its test QPs its own, connected by the key messages ("rdma_cm QPs : OFF")
const PT_Z = { name: "-z", theirs: "-z -x 1", ours: ["-z", "--address", HOST4] };
for (const [t, conn] of [["write_bw", "RC"], ["read_bw", "RC"], ["send_lat", "RC"], ["send_bw", "UD"]]) {
  test(`perftest ${t} -z${conn === "RC" ? "" : ` -c ${conn}`} (IPv4): softroce perf -z client -> ib_${t} -z server (rxe0), and ib_${t} -z client -> softroce server; both ends exit 0, every header says the exchange is rdma_cm's and the QPs are not`, async () => {
    const bytes = conn === "UD" ? 1024 : ptBytes(t);
    const r = await perftestBothWays(t, PT_Z, ["-c", conn, "-s", String(bytes), "-n", String(PT_ITERS)]);
    for (const [who, out] of Object.entries(r)) {
      assert.match(out, / rdma_cm QPs\t : OFF\n Data ex\. method : rdma_cm\n/, `${who}:\n${out}`);
      const lines = out.split("\n").filter((l) => / (local|remote) address: /.test(l));
      assert.equal(lines.length, 2, `${who}:\n${out}`);
      for (const l of lines) assert.doesNotMatch(l, /RKey/, `${who}: ${l}`);
    }
    const row = (out) => out.split("\n").find((l) => new RegExp(`^ ${bytes}\\s+${PT_ITERS}\\s+${FIG}`).test(l));
    for (const out of [r.oursClient, r.theirClient, ...(serverPrints(t) ? [r.oursServer, r.theirServer] : [])]) assert.ok(row(out), out);
  });
}

// -c UC (the SEND and WRITE tests) and -c UD (the SEND tests, a message at most the path MTU, 1024 on
// the tap): perftest's QPs of those types, connected by its own exchange
// With -R the UD tests' QPs are connected through rdma_cm's UDP port space (SIDR_REQ, SIDR_REP); a
// latency test's client first sends the server its QPN in an immediate, for the server's address handle
const UC_UD = [["write_bw", "UC"], ["send_bw", "UC"], ["write_lat", "UC"], ["send_lat", "UC"], ["send_bw", "UD"], ["send_lat", "UD"]].map(([t, c]) => [t, c, PT_MODES[0]]);
for (const [t, conn, mode] of [...UC_UD, ["send_bw", "UD", PT_MODES[2]], ["send_lat", "UD", PT_MODES[2]]]) {
  test(`perftest ${t} -c ${conn} (${mode.name}): softroce perf client -> ib_${t} -c ${conn} server (rxe0), and ib_${t} -c ${conn} client -> softroce server; both ends exit 0`, async () => {
    const bytes = t.endsWith("_lat") ? 64 : 1024;
    const row = (out) => out.split("\n").find((l) => new RegExp(`^ ${bytes}\\s+${PT_ITERS}\\s+${FIG}`).test(l));
    const r = await perftestBothWays(t, mode, ["-c", conn, "-s", String(bytes), "-n", String(PT_ITERS)]);
    for (const out of [r.oursClient, r.theirServer]) assert.ok(out.includes(` Connection type : ${conn}\t`), out);
    for (const out of Object.values(r)) assert.ok(row(out), out);
  });
}

// -e: perftest's events mode (it sleeps on CQ events); the header line under the title names the device's completion vector
test("perftest send_bw -e (IPv4): softroce perf client -> ib_send_bw -e server (rxe0), and ib_send_bw -e client -> softroce server; both ends exit 0, both say the test runs with events", async () => {
  const events = (out, dev) => out.includes(`                    Send BW Test\n Test with events. Using ${dev}_comp0\n`);
  const r = await perftestBothWays("send_bw", PT_MODES[0], ["-e", "-s", "4096", "-n", String(PT_ITERS)]);
  assert.ok(events(r.oursClient, "softroce0") && events(r.oursServer, "softroce0"), r.oursClient + r.oursServer);
  assert.ok(events(r.theirServer, "rxe0"), r.theirServer);
  for (const out of Object.values(r)) assert.ok(ptLine("send_bw", out), out);
});

// -U and -H: perftest's lists of latency measurements ("#, usec", then a "n, value" line each: -U all in
// the order taken, -H those the row counts, sorted), then the rule and the column header again
for (const [t, flag] of [["send_lat", "-H"], ["read_lat", "-U"]]) {
  test(`perftest ${t} ${flag} (IPv4): softroce perf client -> ib_${t} ${flag} server (rxe0), and ib_${t} ${flag} client -> softroce server; both list their measurements, exit 0`, async () => {
    const r = await perftestBothWays(t, PT_MODES[0], [flag, "-s", "64", "-n", String(PT_ITERS)]);
    const listed = (out) => /#, usec\n((?:\d+, \S+\n)+)/.exec(out)?.[1].trimEnd().split("\n").length;
    // -n measurements less one (post to post), -H without the two largest
    const want = flag === "-U" ? PT_ITERS - 1 : PT_ITERS - 3;
    const sides = t === "send_lat" ? Object.values(r) : [r.oursClient, r.theirClient];
    for (const out of sides) {
      assert.equal(listed(out), want, out);
      assert.match(out, /-{87}\n #bytes #iterations +t_min\[usec\].*\n 64 /, out);
    }
  });
}

// -Q (CQ moderation) and -l (post lists): the header's lines and title, perftest's note for -l without -Q
for (const flags of [["-Q", "10"], ["-l", "4"], ["-l", "8", "-Q", "4"]]) {
  for (const t of ["write_bw", "send_bw"]) {
    test(`perftest ${t} ${flags.join(" ")} (IPv4): softroce perf client -> ib_${t} server (rxe0), and ib_${t} client -> softroce server; both ends exit 0`, async () => {
      const r = await perftestBothWays(t, PT_MODES[0], [...flags, "-s", "4096", "-n", "200"]);
      const note = "Post List requested - CQ moderation will be the size of the post list\n";
      for (const out of Object.values(r)) {
        assert.match(out, /^ 4096\s+200\s+\S+/m, out);
        assert.equal(out.includes(note), flags.length === 2 && flags[0] === "-l", out);
      }
    });
  }
}

// -r (a SEND server's rx depth, odd made even: its header says 64) with --recv_post_list (its receives
// posted in lists of 8; both headers say so), -N (no peak), --perform_warm_up (a tx
// depth of WRs per QP before the run, uncounted). Linux's warm-up waits for a completion of each of its
// WRs but signals only every CQ moderation-th: it waits for ever unless -Q 1 (Linux against Linux too)
for (const [t, flags] of [["send_bw", ["-r", "63", "--recv_post_list", "8"]], ["write_bw", ["-N", "--perform_warm_up", "-Q", "1"]], ["read_bw", ["--perform_warm_up", "-Q", "1"]]]) {
  test(`perftest ${t} ${flags.join(" ")} (IPv4): softroce perf client -> ib_${t} server (rxe0), and ib_${t} client -> softroce server; both ends exit 0`, async () => {
    const r = await perftestBothWays(t, PT_MODES[0], [...flags, "-s", "4096", "-n", "200"]);
    for (const out of Object.values(r)) assert.match(out, /^ 4096\s+200\s+\S+/m, out);
    if (t === "send_bw") for (const out of [r.oursServer, r.theirServer]) assert.ok(out.includes(" RX depth        : 64\n"), out);
    if (t === "send_bw") for (const out of Object.values(r)) assert.ok(out.includes(" Recv Post List  : 8\n"), out);
    if (flags.includes("-N")) for (const out of [r.oursClient, r.theirClient]) assert.match(out, /^ 4096\s+200\s+0\.00\s/m, out);
  });
}

// --use-srq: the receiving side's QPs share one SRQ (send_bw's server, both send_lat sides), each receive
// counted for the QP slot it was posted for; both headers say "Using SRQ : ON"
for (const [t, flags] of [["send_bw", ["-q", "4", "-s", "4096", "-n", "200"]], ["send_lat", ["-c", "UD", "-s", "64", "-n", "20"]]]) {
  test(`perftest ${t} --use-srq ${flags.slice(0, 2).join(" ")} (IPv4): softroce perf client -> ib_${t} server (rxe0), and ib_${t} client -> softroce server; both ends exit 0`, async () => {
    const r = await perftestBothWays(t, PT_MODES[0], [...flags, "--use-srq"]);
    for (const out of Object.values(r)) assert.ok(out.includes("Using SRQ      : ON\n"), out);
    if (t === "send_bw") for (const out of [r.oursServer, r.theirServer]) assert.match(out, /^ 4096\s+800\s+\S+/m, out);
    for (const out of [r.oursClient, r.theirClient]) assert.ok(ptLine(t, out), out);
  });
}

// --tclass: the GRH traffic class perftest's own exchange puts in the address vector, which rxe and ours
// send as the IPv4 TOS byte; the capture's check is below, once it stops ("--tclass 96")
const TCLASS = 96;
test(`perftest send_lat --tclass ${TCLASS} (IPv4): softroce perf client -> ib_send_lat server (rxe0), and ib_send_lat client -> softroce server; both ends exit 0`, async () => {
  const r = await perftestBothWays("send_lat", PT_MODES[0], ["-s", "64", "-n", "20", `--tclass=${TCLASS}`]);
  for (const out of [r.oursClient, r.theirClient]) assert.ok(ptLine("send_lat", out), out);
});

// -T with -R: rdma_set_option's type of service on every rdma_cm connection (the exchange's and the
// test's): the path's traffic class, the REQ's, and so every packet's TOS byte, MADs included; checked
// in the capture below ("-T 104")
const TOS = 104;
test(`perftest send_lat -R -T ${TOS} (IPv4): softroce perf client -> ib_send_lat server (rxe0), and ib_send_lat client -> softroce server; both ends exit 0, both headers say the TOS`, async () => {
  const r = await perftestBothWays("send_lat", PT_MODES[2], ["-s", "64", "-n", "20", "-T", String(TOS)]);
  for (const out of Object.values(r)) assert.ok(out.includes(` Data ex. method : rdma_cm \tTOS    : ${TOS}\n`), out);
  for (const out of [r.oursClient, r.theirClient]) assert.ok(ptLine("send_lat", out), out);
});

// -b: both sides run the test and swap reports; each prints its own figures plus the peer's (send_bw: each
// side's SENDs and the peer's receives in one loop, a server sending nothing before its first receive)
for (const [mode, t] of [[PT_MODES[0], "write_bw"], [PT_MODES[0], "read_bw"], [PT_MODES[0], "atomic_bw"], [PT_MODES[0], "send_bw"], [PT_MODES[2], "write_bw"]]) {
  test(`perftest ${t} -b (${mode.name}): softroce perf client -> ib_${t} -b server (rxe0), and ib_${t} -b client -> softroce server; both ends exit 0, both rows the same sum`, async () => {
    const r = await perftestBothWays(t, mode, ["-b", ...ptSize(t), "-n", "200"]);
    const avg = (out) => Number(new RegExp(`^ ${ptBytes(t)}\\s+200\\s+\\S+\\s+(\\S+)`, "m").exec(out)?.[1]);
    for (const [a, b] of [[r.oursClient, r.theirServer], [r.theirClient, r.oursServer]]) {
      assert.ok(a.includes(" Bidirectional BW Test\n") && b.includes(" Bidirectional BW Test\n"), a + b);
      // each side's row: its own figures plus the other's report, so the two agree (a figure Linux could not time is inf)
      if (Number.isFinite(avg(a)) && Number.isFinite(avg(b))) assert.ok(Math.abs(avg(a) - avg(b)) <= 0.011, `${a}\n---\n${b}`);
      else assert.match(a + b, new RegExp(`^ ${ptBytes(t)}\\s+200\\s+${FIG}`, "m"));
    }
  });
}

// -b with -a (a row per size, each side's own plus the peer's) and on UD, both ways
// (send_bw's: run_iter_bi's handshakes per size; write_bw -b -a, a minute more, is tested softroce to softroce)
for (const [t, flags] of [["send_bw", ["-b", "-a", "-n", "5"]], ["send_bw", ["-b", "-c", "UD", "-s", "1024", "-n", "200"]]]) {
  test(`perftest ${t} ${flags.join(" ")} (IPv4): softroce perf client -> ib_${t} server (rxe0), and ib_${t} client -> softroce server; both ends exit 0 with every row`, async () => {
    const r = await perftestBothWays(t, PT_MODES[0], flags, { long: flags.includes("-a") });
    for (const out of Object.values(r)) {
      assert.ok(out.includes(" Bidirectional BW Test\n"), out);
      if (flags.includes("-a")) assert.deepEqual(rowsOf(out), ALL_ROWS, out);
      else assert.match(out, new RegExp(`^ 1024\\s+200\\s+${FIG}`, "m"));
    }
  });
}

// --report-both with -b: after the summed row each side's own (Local results, Remote results), the two
// sides' reports crossed; -w and -y low enough that every side passes them (perftest checks the summed row)
test("perftest write_bw -b --report-both -w 0.001 -y 0.000001 (IPv4): softroce perf client -> ib_write_bw server (rxe0), and ib_write_bw client -> softroce server; each side's Local row is the other's Remote row", async () => {
  const r = await perftestBothWays("write_bw", PT_MODES[0], ["-b", "--report-both", "-w", "0.001", "-y", "0.000001", "-s", "4096", "-n", "200"]);
  const sections = (out) => {
    const m = /\n Local results: \n-+\n #bytes .*\n( 4096 .*)\n-+\n\n Remote results: \n-+\n #bytes .*\n( 4096 .*)\n-+\n/.exec(out);
    assert.ok(m, out);
    return { local: m[1], remote: m[2] };
  };
  for (const [a, b] of [[r.oursClient, r.theirServer], [r.theirClient, r.oursServer]]) {
    const [x, y] = [sections(a), sections(b)];
    assert.equal(x.local, y.remote, `${a}\n---\n${b}`);
    assert.equal(x.remote, y.local, `${a}\n---\n${b}`);
  }
});

// --out_json: perftest's report file (not JSON despite its name). Ours says what Linux's says for the
// same role (the device's name and GID index aside), and each file's results are the row its side printed
// (write_bw's server prints, and writes, the client's report)
const testInfoOf = (j) => /^\{\ntest_info: \{\n[\s\S]*?\n\},\n/.exec(j ?? "")?.[0];
const resultsOf = (j) => [.../\nresults: \{\n([\s\S]*?)\},\n\}\n$/.exec(j ?? "")?.[1].matchAll(/^[\w.]+: (\S+),$/gm) ?? []].map((m) => m[1]);
const lastRow = (out) => out.split("\n").filter((l) => new RegExp(`^ \\d+\\s+\\d+\\s+${FIG}`).test(l)).pop()?.trim().split(/\s+/);
for (const t of ["write_bw", "send_lat"]) {
  test(`perftest ${t} --out_json (IPv4): softroce perf client -> ib_${t} server (rxe0), and ib_${t} client -> softroce server; each file's test_info is Linux's for the same role, its results the row printed`, async () => {
    const r = await perftestBothWays(t, PT_MODES[0], [...ptSize(t), "-n", String(PT_ITERS)], { json: true });
    const linux = (j) => testInfoOf(j)?.replace(/^Device: "rxe0",$/m, 'Device: "softroce0",').replace(/^GID_index: \d+,$/m, "GID_index: 0,");
    assert.ok(testInfoOf(r.json.oursClient), r.json.oursClient);
    assert.equal(testInfoOf(r.json.oursClient), linux(r.json.theirClient), `${r.json.oursClient}\n---\n${r.json.theirClient}`);
    assert.equal(testInfoOf(r.json.oursServer), linux(r.json.theirServer), `${r.json.oursServer}\n---\n${r.json.theirServer}`);
    for (const side of ["oursClient", "theirServer", "theirClient", "oursServer"]) {
      assert.deepEqual(resultsOf(r.json[side]), lastRow(r[side]), `${side}: ${r.json[side]}\n---\n${r[side]}`);
    }
    if (t === "write_bw") assert.deepEqual(resultsOf(r.json.theirServer), resultsOf(r.json.oursClient));
  });
}

// --output: perftest's verbosity. Every side prints its row's one figure ("%lf") and nothing else, and
// its --out_json file holds that figure alone (bw_avg, avg_lat) after the same test_info as Linux's
// (write_bw with --disable_pcie_relaxed: the file's PCIe_relax_order then OFF on both)
for (const [t, level] of [["write_bw", "bandwidth"], ["send_lat", "latency"]]) {
  test(`perftest ${t} --output ${level} (IPv4): softroce perf client -> ib_${t} server (rxe0), and ib_${t} client -> softroce server; each side prints the one figure, its file holds it`, async () => {
    const r = await perftestBothWays(t, PT_MODES[0], [...ptSize(t), "-n", String(PT_ITERS), `--output=${level}`, ...(t === "write_bw" ? ["--disable_pcie_relaxed"] : [])], { json: true });
    const linux = (j) => testInfoOf(j)?.replace(/^Device: "rxe0",$/m, 'Device: "softroce0",').replace(/^GID_index: \d+,$/m, "GID_index: 0,");
    assert.equal(testInfoOf(r.json.oursClient), linux(r.json.theirClient), `${r.json.oursClient}\n---\n${r.json.theirClient}`);
    assert.equal(testInfoOf(r.json.oursServer), linux(r.json.theirServer), `${r.json.oursServer}\n---\n${r.json.theirServer}`);
    const key = level === "bandwidth" ? "bw_avg" : "avg_lat";
    // Linux's perftest warns on stderr when it rejects its CPU-frequency sample (the TCG guest's clock,
    // now and then; see FIG); ours samples no clock that way and must print the figure alone
    const printed = (side) => r[side].replace(/^client-exit=0\n/m, "").replace(side.startsWith("their") ? /^Correlation coefficient r\^2: \S+ < 0\.9\n/gm : /(?!)/g, "");
    for (const side of ["oursClient", "theirServer", "theirClient", "oursServer"]) {
      const out = printed(side);
      const figure = /^(\d+\.\d{6})\n$/.exec(out);
      assert.ok(figure, `${side} prints more than the figure:\n${out}`);
      assert.match(r.json[side], new RegExp(`\\nresults: \\{\\n${key}: ${figure[1].replace(".", "\\.")},\\n\\},\\n\\}\\n$`), `${side}: ${r.json[side]}`);
    }
    if (t === "write_bw") assert.equal(printed("theirServer"), printed("oursClient")); // the server prints the client's report
  });
}

// -V: perftest's version line, and its exit status (its parser's VERSION_EXIT ends main with FAILURE)
test("perftest -V: ib_write_bw's version line and exit status, ours the same", async () => {
  const theirs = await guest(`ib_write_bw -V; echo "exit=$?"`, 20);
  const ours = await softroce(["perf", "write_bw", "--perftest", "-V"], 20_000);
  assert.equal(`${ours.stdout}exit=${ours.code}\n`, theirs);
  assert.match(theirs, /^Version: \d+\.\d+\nexit=1\n$/);
});

// --pkey_index: rxe says max_pkeys 64 and its QPs take any index below it (every packet still carries
// P_Key 0xffff), as ours now do; past it both sides' check_link says so and takes 0 (a rule on stdout first)
for (const index of [3, 70]) {
  test(`perftest write_bw --pkey_index ${index} (IPv4): softroce perf client -> ib_write_bw server (rxe0), and ib_write_bw client -> softroce server; both ends exit 0, ${index < 64 ? "neither says a word of it" : "both say it is past max 63 and take 0"}`, async () => {
    const r = await perftestBothWays("write_bw", PT_MODES[0], ["-s", "4096", "-n", String(PT_ITERS), "--pkey_index", String(index)], { stderr: true });
    const said = ` Specified PKey Index, ${index}, greater than allowed max, 63\n Changing to 0\n`;
    for (const side of ["theirServer", "theirClient"]) assert.equal(r[side].includes(said), index >= 64, `${side}:\n${r[side]}`);
    for (const side of ["oursClient", "oursServer"]) assert.equal(r.stderr[side], index >= 64 ? said : "", `${side}'s stderr`);
    assert.equal(ptLine("write_bw", r.theirServer).trim(), ptLine("write_bw", r.oursClient).trim());
    assert.ok(ptLine("write_bw", r.theirClient), r.theirClient);
  });
}

// -R --retry_count: perftest's rdma_cm connections carry it as their retry count, and the test
// connection as its RNR retry count too (the exchange's stays 7); the capture checks below compare them
const RETRY = 3;
test(`perftest write_bw -R --retry_count ${RETRY}: softroce perf client -> ib_write_bw server (rxe0), and ib_write_bw client -> softroce server; both ends exit 0`, async () => {
  const r = await perftestBothWays("write_bw", PT_MODES[2], ["-s", "4096", "-n", String(PT_ITERS), `--retry_count=${RETRY}`]);
  assert.equal(ptLine("write_bw", r.theirServer).trim(), ptLine("write_bw", r.oursClient).trim());
  assert.ok(ptLine("write_bw", r.theirClient), r.theirClient);
});

// several QPs (-q 4): perftest 4.5 sends every QP's key message twice, the first QP's as the
// handshakes; an address line per QP. It lays every QP's buffer in one MR, as ours does by default,
// or gives each its own with --mr_per_qp; each side names each QP's VAddr and RKey, whichever it chose
const rkeysOf = (out, which) => new Set([...out.matchAll(new RegExp(`^ ${which} address: .*RKey (0x[0-9a-f]+)`, "gm"))].map((m) => m[1]));
// With -R each QP is connected through rdma_cm (a connection per QP, the listener's backlog -q)
for (const mode of [PT_MODES[0], PT_MODES[2]]) for (const t of ["write_bw", "read_bw", "send_bw", "atomic_bw"]) {
  test(`perftest ${t} -q 4 (${mode.name}): softroce perf client (one MR) -> ib_${t} --mr_per_qp server (rxe0), and ib_${t} client (one MR) -> softroce --mr_per_qp server; both ends exit 0`, async () => {
    const r = await perftestBothWays(t, mode, [...ptSize(t), "-n", String(PT_ITERS), "-q", "4"], { theirServer: ["--mr_per_qp"], ourServer: ["--mr_per_qp"] });
    for (const out of [r.oursClient, r.theirServer]) {
      assert.equal(out.match(/^ local address: /gm)?.length, 4, out);
      assert.equal(out.match(/^ remote address: /gm)?.length, 4, out);
      // -n per QP; #iterations counts all four QPs' messages, as perftest 4.5 prints it
      assert.match(ptLine(t, out) ?? "", new RegExp(`^ \\d+\\s+${4 * PT_ITERS}\\s`), out);
    }
    if (t !== "send_bw") assert.equal(ptLine(t, r.theirServer).trim(), ptLine(t, r.oursClient).trim()); // the server prints the client's report
    assert.ok(ptLine(t, r.theirClient), r.theirClient);
    assert.ok(ptLine(t, r.oursServer), r.oursServer);
    if (mode.name !== "-R" && (t === "write_bw" || t === "read_bw")) {
      // RKeys are printed for READ and WRITE (not with -R): ours one MR, theirs one per QP (and the other way round)
      assert.equal(rkeysOf(r.oursClient, "local").size, 1, r.oursClient);
      assert.equal(rkeysOf(r.oursClient, "remote").size, 4, r.oursClient);
      assert.equal(rkeysOf(r.oursServer, "local").size, 4, r.oursServer);
      assert.equal(rkeysOf(r.theirClient, "local").size, 1, r.theirClient);
    }
  });
}

// ---------------------------------------------------------------- the MADs on the wire

/** Every CM MAD in the capture: frame number, who sent it, and its 256 bytes. */
function capturedMads(file) {
  const out = [];
  for (const rec of api.readCaptureAll(new Uint8Array(readFileSync(file)))) {
    const ip = rec.data;
    if (!ip) continue;
    const v6 = ip[0] >> 4 === 6;
    const ihl = v6 ? 40 : (ip[0] & 15) * 4;
    const src = v6 ? api.ipv6ToString(ip, 8) : api.ipv4ToString(ip, 12);
    const bth = ip.subarray(ihl + 8);
    const dqp = (bth[5] << 16) | (bth[6] << 8) | bth[7];
    if (dqp !== 1 || bth.length < 20 + 256 + 4) continue;
    const mad = bth.slice(20, 276);
    if (mad[1] !== api.MgmtClass.CM) continue;
    out.push({ frame: rec.index, ours: src === HOST4 || src === HOST6, mad, parsed: api.parseCmMad(mad) });
  }
  return out;
}

/** tshark's value text as a comparable string: 0x.. and decimal numbers as decimal, GIDs/bytes as hex. */
function norm(v) {
  if (typeof v === "bigint" || typeof v === "number") return BigInt(v).toString();
  if (v instanceof Uint8Array) return Buffer.from(v).toString("hex");
  if (v.length >= 32 && /^[0-9a-f]+$/i.test(v)) return v.toLowerCase(); // a GID or private data as hex digits
  if (/^0x[0-9a-f]+$/i.test(v)) return BigInt(v).toString();
  if (/^\d+$/.test(v)) return BigInt(v).toString();
  if (/^([0-9a-f]{2}:)+[0-9a-f]{2}$/i.test(v)) return v.replace(/:/g, "").toLowerCase();
  if (v.includes(":")) return Buffer.from(api.parseGid(v)).toString("hex");
  return v;
}

// tshark 4.0.17 reads a REQ's flow label from 3 bytes and its packet rate from 1 (docs/reference/cm-wire.md)
const TSHARK_KNOWN_WRONG = new Set(["primaryFlowLabel", "primaryPacketRate", "alternateFlowLabel", "alternatePacketRate"]);

let mads = [];
// ---------------------------------------------------------------- a lossy wire

// One RoCE packet in LOSS_ONE_IN each way dropped at random where its sender cannot see it
// (G.withLoss: tc in the guest drops ours, nft in the namespace rxe's; the CM's MADs pass). Every run
// must still end whole by both ends' retransmissions: softroce's go-back-N and READ retries from the
// first missing response against rxe's duplicate handling, and rxe's against ours. rping's -V checks
// every ping's bytes on both sides; perftest checks none, so its runs show completion only. At random,
// not every Nth: a fixed period loses the same packets again in every go-back-N replay whose length is
// a multiple of it (under "every 10th" a 20-packet READ lost its FIRST in every replay), which no
// retry can win and no real wire does.
const LOSS_ONE_IN = 20;
const LOSS_PINGS = 10;
const LOSS_BYTES = 4000;
const lossOk = (lost) => assert.ok(lost.toGuest > 0 && lost.toHost > 0, `packets dropped: ${JSON.stringify(lost)}`);

test(`lossy wire (1 in ${LOSS_ONE_IN} each way): softroce rping -c -v -V -C ${LOSS_PINGS} -S ${LOSS_BYTES} -> rping -s (rxe0), and rping -c -> softroce rping -s; both ends exit 0 each way, every ping's data as rping wrote it`, async () => {
  const [, lost] = await G.withLoss(LOSS_ONE_IN, async () => {
    const args = ["-v", "-V", "-C", String(LOSS_PINGS), "-S", String(LOSS_BYTES)];
    await guest(`rping -s -a ${GUEST4} ${args.join(" ")} > /tmp/rs.out 2> /tmp/rs.err & echo $! > /tmp/rs.pid
i=0; while [ $i -lt 100 ] && ! rdma res show cm_id | grep -q LISTEN; do sleep 0.1; i=$((i + 1)); done`, 30);
    let ours = await softroce(["rping", "-c", "-a", GUEST4, "-I", HOST4, ...args, "--timeout", String(RUN_TIMEOUT_S)], (RUN_TIMEOUT_S + 10) * 1000);
    let theirs = await guest(`i=0; while [ $i -lt 100 ] && kill -0 $(cat /tmp/rs.pid) 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
kill $(cat /tmp/rs.pid) 2>/dev/null; cat /tmp/rs.out; echo "--- stderr"; cat /tmp/rs.err`, 30);
    assert.equal(ours.code, 0, `softroce rping -c: ${ours.stdout}${ours.stderr}\n--- rping -s:\n${theirs}`);
    assert.deepEqual(ours.stdout.trimEnd().split("\n"), pingLines("ping data: ", LOSS_PINGS, LOSS_BYTES));
    assert.deepEqual(theirs.split("\n").filter((l) => l.startsWith("server ping data: ")), pingLines("server ping data: ", LOSS_PINGS, LOSS_BYTES), theirs);
    const server = softroce(["rping", "-s", "-a", HOST4, "-v", "-V", "-S", String(LOSS_BYTES), "--timeout", String(RUN_TIMEOUT_S)], (RUN_TIMEOUT_S + 10) * 1000);
    await new Promise((r) => setTimeout(r, 2000)); // Node's start; the guest's client would get REJ 8 before our listen
    theirs = await guest(`rping -c -a ${HOST4} ${args.join(" ")} > /tmp/rc.out 2> /tmp/rc.err; echo "client-exit=$?"; cat /tmp/rc.out; echo "--- stderr"; cat /tmp/rc.err`, RUN_TIMEOUT_S + 10);
    ours = await server;
    assert.match(theirs, /^client-exit=0$/m, `rping -c:\n${theirs}\n--- softroce:\n${ours.stdout}${ours.stderr}`);
    assert.deepEqual(theirs.split("\n").filter((l) => l.startsWith("ping data: ")), pingLines("ping data: ", LOSS_PINGS, LOSS_BYTES));
    assert.equal(ours.code, 0, `softroce rping -s: ${ours.stdout}${ours.stderr}`);
    assert.deepEqual(ours.stdout.trimEnd().split("\n"), pingLines("server ping data: ", LOSS_PINGS, LOSS_BYTES));
  });
  lossOk(lost);
});

for (const [t, mode] of [...["write_bw", "read_bw", "send_bw", "atomic_bw"].map((t) => [t, PT_MODES[0]]), ["read_bw", PT_MODES[1]]]) {
  test(`lossy wire (1 in ${LOSS_ONE_IN} each way): perftest ${t} (${mode.name}): softroce perf client -> ib_${t} server (rxe0), and ib_${t} client -> softroce server; both ends exit 0 each way, every row there`, async () => {
    const [r, lost] = await G.withLoss(LOSS_ONE_IN, () => perftestBothWays(t, mode, atomicTest(t) ? ["-n", "500"] : ["-s", "4096", "-n", "200"]));
    const row = (out) => out.split("\n").find((l) => new RegExp(`^ ${atomicTest(t) ? 8 : 4096}\\s+${atomicTest(t) ? 500 : 200}\\s+${FIG}`).test(l));
    for (const [who, out] of Object.entries(r)) assert.ok(row(out), `${who}:\n${out}`);
    lossOk(lost);
  });
}

test("capture stops; it holds REQ, REP, RTU, DREQ, DREP, SIDR_REQ, SIDR_REP from both sides (ours and rxe's)", async () => {
  await G.captureStop();
  mads = capturedMads(CAPTURE);
  for (const name of ["REQ", "REP", "RTU", "DREQ", "DREP", "SIDR_REQ", "SIDR_REP"]) {
    assert.ok(mads.some((m) => m.ours && m.parsed.name === name), `no ${name} of ours in the capture`);
    assert.ok(mads.some((m) => !m.ours && m.parsed.name === name), `no ${name} of rxe's in the capture`);
  }
});

test(`--tclass ${TCLASS}: the send_lat runs' packets carry it as the IPv4 TOS byte, rxe's and ours, each way (20 SENDs and their ACKs a run at least)`, async () => {
  const r = await runOk("tshark", ["-r", CAPTURE, "-Y", `udp.dstport == 4791 && ip.dsfield == ${TCLASS}`, "-T", "fields", "-e", "ip.src"], { timeoutMs: 60_000 });
  const from = (ip) => r.stdout.split("\n").filter((l) => l === ip).length;
  // two runs, each side a client once and a server once: each sends 20 SENDs a run (and its ACKs)
  assert.ok(from(HOST4) >= 40, `ours (${HOST4}): ${from(HOST4)} packets with TOS ${TCLASS}`);
  assert.ok(from(GUEST4) >= 40, `rxe's (${GUEST4}): ${from(GUEST4)} packets with TOS ${TCLASS}`);
});

test(`-R -T ${TOS}: the send_lat runs' packets carry it as the IPv4 TOS byte, rxe's and ours, each way: the SENDs and ACKs, and the CM's REQ, REP and RTU (the passive side's as the REQ said)`, async () => {
  const r = await runOk("tshark", ["-r", CAPTURE, "-Y", `udp.dstport == 4791 && ip.dsfield == ${TOS}`, "-T", "fields", "-e", "ip.src", "-e", "infiniband.bth.destqp", "-e", "infiniband.mad.attributeid"], { timeoutMs: 60_000 });
  const rows = r.stdout.trim().split("\n").map((l) => l.split("\t"));
  for (const ip of [HOST4, GUEST4]) {
    const mine = rows.filter((f) => f[0] === ip);
    // two runs, a client and a server each: 40 SENDs at least
    assert.ok(mine.filter((f) => Number(f[1]) !== 1).length >= 40, `${ip}: ${mine.length} packets with TOS ${TOS}`);
    // REQ 0x0010, REP 0x0013, RTU 0x0014: each side sends a REQ in one run and a REP in the other
    for (const attr of [0x10, 0x13, 0x14]) assert.ok(mine.some((f) => Number(f[2]) === attr), `${ip}: no MAD 0x${attr.toString(16)} with TOS ${TOS}:\n${r.stdout}`);
  }
});

test("every CM MAD in the capture, ours and rxe's, decodes field by field as tshark decodes it", async () => {
  let compared = 0;
  // tshark 4.0 decodes no SIDR field: of those two, the MAD header
  for (const name of ["REQ", "REP", "RTU", "DREQ", "DREP", "REJ", "SIDR_REQ", "SIDR_REP"]) {
    const layout = api.CM_MESSAGES[name].layout;
    const fields = Object.entries(layout).filter(([k, f]) => f.wireshark && !TSHARK_KNOWN_WRONG.has(k));
    const hdrFields = Object.entries(api.MAD_HEADER).filter(([, f]) => f.wireshark);
    const args = ["-r", CAPTURE, "--disable-protocol", "rpcordma", "-Y", `infiniband.mad.attributeid == ${layout === undefined ? 0 : api.CM_MESSAGES[name].attrId}`, "-T", "json"];
    for (const [, f] of [...fields, ...hdrFields]) args.push("-e", f.wireshark);
    args.push("-e", "frame.number");
    const r = await runOk("tshark", args, { timeoutMs: 60_000 });
    const rows = JSON.parse(r.stdout || "[]");
    const ofKind = mads.filter((m) => m.parsed.name === name);
    assert.equal(rows.length, ofKind.length, `${name}: tshark shows ${rows.length}, we found ${ofKind.length}`);
    for (const row of rows) {
      const L = row._source.layers;
      const frame = Number(L["frame.number"][0]);
      const m = ofKind.find((x) => x.frame === frame);
      assert.ok(m, `${name} frame ${frame} not found by our parser`);
      for (const [k, f] of fields) {
        if (!L[f.wireshark]) continue; // tshark leaves out what its dissector does not show for this message (e.g. IPv4 GIDs)
        assert.equal(norm(m.parsed.msg[k]), norm(L[f.wireshark][0]), `${name} frame ${frame} (${m.ours ? "ours" : "rxe"}) ${k} / ${f.wireshark}`);
        compared++;
      }
      for (const [k, f] of hdrFields) {
        if (!L[f.wireshark]) continue;
        assert.equal(norm(m.parsed.hdr[k]), norm(L[f.wireshark][0]), `${name} frame ${frame} header ${k}`);
        compared++;
      }
    }
  }
  assert.ok(compared > 300, `only ${compared} fields compared`);
});

// What differs from one connection to the next: IDs, GUIDs, QPNs, PSNs, addresses, flow labels from the ports, private data.
const PER_CONNECTION = new Set([
  "localCommId", "remoteCommId", "localCaGuid", "localQpn", "startingPsn", "primaryLocalPortGid", "primaryRemotePortGid",
  "primaryFlowLabel", "privateData", "localQkey", "serviceId", "remoteQpnEecn", "requestId", "qpn",
]);

// rstream's and riostream's connections carry rsocket's rs_conn_data (after the CMA header in a REQ;
// the whole REP private data): its first 8 bytes (version 1, flags RS_CONN_FLAG_IOMAP, credits: the
// RQ's 384, the target iomap's size: rstream's none, riostream's 1) and its target SGL's length (2
// entries) are the same from each side; the addresses and keys are the connection's own (the
// comparison below leaves private data aside)
test("rstream's and riostream's rs_conn_data in the REQs and REPs, ours as rxe's: version 1, flags IOMAP, credits 384, an iomap of 0 (rstream) or 1 (riostream), a target SGL of 2 entries", () => {
  const rsData = (m) => {
    const pd = m.parsed.msg.privateData;
    if (!(pd instanceof Uint8Array)) return undefined;
    const b = m.parsed.name === "REQ" ? pd.subarray(36) : pd;
    return b[0] === 1 && b[1] === 2 ? `${m.parsed.name} ${Buffer.from(b.subarray(0, 8)).toString("hex")} sgl ${new DataView(b.buffer, b.byteOffset).getUint32(20)}` : undefined;
  };
  const kinds = (ours) => [...new Set(mads.filter((m) => m.ours === ours && (m.parsed.name === "REQ" || m.parsed.name === "REP")).map(rsData).filter(Boolean))].sort();
  const want = ["REP 0102018000000000 sgl 2", "REP 0102018000000001 sgl 2", "REQ 0102018000000000 sgl 2", "REQ 0102018000000001 sgl 2"];
  assert.deepEqual(kinds(false), want, "rxe's");
  assert.deepEqual(kinds(true), want, "ours");
});

// rdma_xserver accepts with a zeroed rdma_conn_param (its private data aside): the comparison below
// would pass a REP of ours with the defaults too (it finds rxe's rdma_server REP for it), so this
// asks for the kind itself on both sides
test("rdma_xserver's REP, ours as rxe's: a zeroed rdma_conn_param's (responder resources and initiator depth 0, RNR retry 0)", () => {
  const zeroed = (m) => m.parsed.name === "REP" && [m.parsed.msg.responderResources, m.parsed.msg.initiatorDepth, m.parsed.msg.rnrRetryCount].every((v) => Number(v) === 0);
  assert.ok(mads.some((m) => !m.ours && zeroed(m)), "no REP of rxe's from a zeroed rdma_conn_param (Linux's rdma_xserver)");
  assert.ok(mads.some((m) => m.ours && zeroed(m)), "no REP of ours from a zeroed rdma_conn_param (softroce rdma_xserver)");
});

// the comparison below matches a MAD to rxe's by its retry count but not its RNR retry count, so a REQ of
// ours with the wrong one would still find its equal: this asks for each kind by both
test(`perftest -R --retry_count ${RETRY}'s REQs and REPs, ours as rxe's: the exchange's REQ retry ${RETRY} and RNR retry 7, the test connection's REQ and REP RNR retry ${RETRY}`, () => {
  const kinds = (ours) => [...new Set(mads.filter((m) => m.ours === ours && ((m.parsed.name === "REQ" && Number(m.parsed.msg.retryCount) === RETRY) || (m.parsed.name === "REP" && Number(m.parsed.msg.rnrRetryCount) === RETRY)))
    .map((m) => `${m.parsed.name} retry ${m.parsed.msg.retryCount ?? "-"} RNR retry ${m.parsed.msg.rnrRetryCount}`))].sort();
  const want = [`REP retry - RNR retry ${RETRY}`, `REQ retry ${RETRY} RNR retry ${RETRY}`, `REQ retry ${RETRY} RNR retry 7`];
  assert.deepEqual(kinds(false), want, "rxe's");
  assert.deepEqual(kinds(true), want, "ours");
});

test("our REQ, REP, RTU, DREQ, DREP, SIDR_REQ, SIDR_REP equal rxe's of the same family field by field (per-connection values aside)", async () => {
  const differ = [];
  const v6 = (m) => m.mad.length && m.parsed.msg.primaryLocalPortGid ? m.parsed.msg.primaryLocalPortGid[0] !== 0 : undefined;
  for (const name of ["REQ", "REP", "RTU", "DREQ", "DREP", "SIDR_REQ", "SIDR_REP"]) {
    const ours = mads.filter((m) => m.ours && m.parsed.name === name);
    const allTheirs = mads.filter((m) => !m.ours && m.parsed.name === name);
    for (const o of ours) {
      // the rxe MAD that plays the same role: same kind, same family where the message says
      // (a REQ: of the same tool — the service ID holds its port, which ucmatose and cmtime share;
      // cmtime's REQ asks for its -r retries — and family); a SIDR_REP of the same status (rxe
      // refuses a SIDR_REQ that comes before perftest's server listens on its UD port, and the
      // client asks again: that refusal is no answer of the kind ours gives); a REQ of the same traffic
      // class (the -R -T runs' carry their type of service, both sides'); the same RNR retry count and
      // flow control first (a REP says no more of its kind: rdma_xserver's asks no RNR retries where the
      // others ask 7, rstream's has flow control where perftest's has none; the kinds whose fields
      // would then go unchecked have checks of their own above)
      const same = (x, k) => norm(x.parsed.msg[k] ?? 0) === norm(o.parsed.msg[k] ?? 0);
      const sameStatus = allTheirs.filter((x) => same(x, "status") && same(x, "primaryTrafficClass"));
      const theirs = sameStatus.length ? sameStatus : allTheirs;
      const t = theirs.find((x) => v6(x) === v6(o) && same(x, "serviceId") && same(x, "responderResources") && same(x, "initiatorDepth") && same(x, "retryCount") && same(x, "rnrRetryCount") && same(x, "endToEndFlowControl")) ??
        theirs.find((x) => v6(x) === v6(o) && same(x, "serviceId") && same(x, "responderResources") && same(x, "initiatorDepth") && same(x, "retryCount")) ??
        theirs.find((x) => v6(x) === v6(o) && same(x, "serviceId") && same(x, "responderResources") && same(x, "initiatorDepth")) ??
        theirs.find((x) => v6(x) === v6(o) && same(x, "serviceId")) ?? theirs.find((x) => v6(x) === v6(o)) ?? theirs[0];
      for (const k of Object.keys(o.parsed.msg)) {
        if (PER_CONNECTION.has(k)) continue;
        if (norm(o.parsed.msg[k]) !== norm(t.parsed.msg[k])) {
          differ.push(`${name}.${k}: ours ${norm(o.parsed.msg[k])} (frame ${o.frame}), rxe's ${norm(t.parsed.msg[k])} (frame ${t.frame})`);
        }
      }
      for (const k of Object.keys(o.parsed.hdr)) {
        if (k !== "transactionId" && o.parsed.hdr[k] !== t.parsed.hdr[k]) differ.push(`${name} header ${k}: ours ${o.parsed.hdr[k]}, rxe's ${t.parsed.hdr[k]}`);
      }
    }
  }
  assert.deepEqual([...new Set(differ)], []);
});

// ---------------------------------------------------------------- udpong (datagram rsockets)

// Linux's datagram rsockets do not run over RoCE as they are: ds_create_qp makes an address handle to its
// own port with no GRH (ds_add_qp_dest: the port's LID only), which rxe refuses (EINVAL) as every RoCE
// device does; rconnect fails (udpong prints a stale errno), and a udpong server drops every first
// datagram, its QP never made. The first row says so, and fails the day the guest's rsocket makes its QP.
// The rows after run udpong with LD_PRELOAD=/usr/lib/libah-grh.so (test/interop/tools/libah-grh.c): that
// one AH gets a GRH naming the port's own GID, and everything else is rsocket.c's. The client's first
// datagram goes to the server's UDP socket at -p behind a ds_udp_header naming its UD QP; the server
// answers with its own QPN, each side makes an address handle from the route, and the rest are UD SENDs
// in RDMA_PS_UDP (Q_Key 0x01234567) behind a ds_header saying where they are from. -T e: the server echoes
// each of the -C datagrams, the client waits for each; its row counts both ways. Our side's --stats line
// says how many it sent and took by UDP and by its QP (the login and at most two more by UDP, sent before
// the answer naming the guest's QPN came back; every answer by the QP), and the guest rxe's counters
// (rdma_sends, rdma_recvs) that the datagrams went through its device.
// (Last, after the capture's checks: they add nothing to the capture, and the rows before keep their numbers.)
test("udpong -s (rxe0) -> softroce udpong: Linux's datagram rsocket fails rconnect over RoCE (its AH to its own port has no GRH), no datagram reaches our server", async () => {
  const server = softroce(["udpong", "-b", HOST4, "--idle", "3", "--timeout", String(RUN_TIMEOUT_S)], (RUN_TIMEOUT_S + 10) * 1000);
  await new Promise((r) => setTimeout(r, 2000));
  const theirs = await guest(`timeout ${RUN_TIMEOUT_S - 5} udpong -s ${HOST4} -b ${GUEST4} -C 10 -S 100 -T e; echo "client-exit=$?"`, RUN_TIMEOUT_S);
  const ours = await server;
  assert.match(theirs, /^rconnect: .+\n/m, theirs);
  assert.match(theirs, /client-exit=255/, theirs);
  assert.equal(ours.code, 0, `softroce udpong: ${ours.stdout}${ours.stderr}`);
  assert.equal(ours.stdout, "");
});

const UDPONG = ["-C", "200", "-S", "1000", "-T", "e"];
const UDPONG_HEAD = "name      bytes   xfers   total       time     Gb/sec    usec/xfer\n";
const UDPONG_ROW = /^custom\s+1000\s+400\s+390k\s+\d+\.\d\ds\s+\d+\.\d\d\s+\d+\.\d\d$/m;
/** udpong with the shim; its own AH names GID 1 (rxe's IPv4) or 2 (IPv6) */
const shimmed = (fam) => `env AH_GRH_SGID_INDEX=${fam.name === "IPv4" ? 1 : 2} LD_PRELOAD=/usr/lib/libah-grh.so udpong`;
/** our --stats line's counts: by UDP and by the QP, each way, and the drops */
const udpongStats = (stderr) => {
  const m = /^udpong: sent (\d+) by UDP, (\d+) by the QP; received (\d+) by UDP, (\d+) by the QP; dropped (\d+) without room, (\d+) bad receives, (\d+) bad UDP datagrams; (\d+) routes unresolved, (\d+) send errors$/m.exec(stderr);
  assert.ok(m, `no --stats line: ${stderr}`);
  const [udpSent, qpSent, udpTaken, qpTaken, ...dropped] = m.slice(1).map(Number);
  assert.deepEqual(dropped, [0, 0, 0, 0, 0], m[0]);
  return { udpSent, qpSent, udpTaken, qpTaken };
};
const RXE_OPS = "echo rxe-ops $(cat /sys/class/infiniband/rxe0/ports/1/hw_counters/rdma_sends /sys/class/infiniband/rxe0/ports/1/hw_counters/rdma_recvs)";
/** the guest rxe's SENDs and receives between two RXE_OPS lines in `text` */
const rxeOps = (before, after) => {
  const [a, b] = [before, after].map((t) => t.match(/^rxe-ops (\d+) (\d+)$/m).slice(1).map(Number));
  return { sends: b[0] - a[0], recvs: b[1] - a[1] };
};

for (const fam of FAMILIES) {
  test(`${fam.name}: softroce udpong -s (client) -> udpong (rxe0, AH shim), ${UDPONG.join(" ")}: the login by UDP, the datagrams by UD SENDs through the guest's rxe each way; udpong's row`, async () => {
    const before = await guest(`${shimmed(fam)} -b ${fam.guest} > /tmp/udp.out 2>&1 & echo $! > /tmp/udp.pid; ${RXE_OPS}`, 30);
    await new Promise((r) => setTimeout(r, 500));
    const ours = await softroce(["udpong", "-s", fam.guest, "-b", fam.host, ...UDPONG, "--stats", "--timeout", String(RUN_TIMEOUT_S)], (RUN_TIMEOUT_S + 10) * 1000);
    // udpong's server runs until killed, its stdout (a file here) never flushed: its login line is lost
    const after = await guest(`${RXE_OPS}; kill $(cat /tmp/udp.pid); sleep 0.2; cat /tmp/udp.out`, 30);
    assert.equal(ours.code, 0, `softroce udpong: ${ours.stdout}${ours.stderr}\n--- udpong:\n${after}`);
    // the login, start, 200 datagrams and end went out; each was answered by the guest's QP
    const st = udpongStats(ours.stderr);
    assert.ok(st.udpSent >= 1 && st.udpSent <= 3 && st.udpSent + st.qpSent >= 203 && st.udpTaken === 0 && st.qpTaken >= 203, JSON.stringify(st));
    assert.ok(ours.stdout.startsWith(UDPONG_HEAD), ours.stdout);
    assert.match(ours.stdout, UDPONG_ROW);
    const n = rxeOps(before, after);
    assert.ok(n.sends >= 200 && n.recvs >= 200, `rxe0's SENDs and receives: ${JSON.stringify(n)}`);
  });

  test(`${fam.name}: udpong -s (rxe0, AH shim) -> softroce udpong, ${UDPONG.join(" ")}: the same, roles swapped; our server logs the guest in`, async () => {
    const before = await guest(RXE_OPS, 30);
    const server = softroce(["udpong", "-b", fam.host, "--idle", "3", "--stats", "--timeout", String(RUN_TIMEOUT_S)], (RUN_TIMEOUT_S + 10) * 1000);
    await new Promise((r) => setTimeout(r, 2000));
    const theirs = await guest(`timeout ${RUN_TIMEOUT_S - 5} ${shimmed(fam)} -s ${fam.host} -b ${fam.guest} ${UDPONG.join(" ")}; echo "client-exit=$?"; ${RXE_OPS}`, RUN_TIMEOUT_S);
    const ours = await server;
    assert.match(theirs, /client-exit=0/, `udpong:\n${theirs}\n--- softroce:\n${ours.stdout}${ours.stderr}`);
    assert.ok(theirs.startsWith(UDPONG_HEAD), theirs);
    assert.match(theirs, UDPONG_ROW);
    assert.equal(ours.code, 0, `softroce udpong: ${ours.stdout}${ours.stderr}`);
    assert.equal(ours.stdout, `client login from ${fam.guest}\n`);
    // the guest's login by UDP, and its datagrams after it by UDP too until its rsocket has an address
    // handle for our QP (its route to us resolved: 1–3 datagrams in most runs, 7 over IPv6 in one CI run,
    // the guest running slowly under emulation); most by its QP; every answer by ours (by our QP)
    const st = udpongStats(ours.stderr);
    assert.ok(st.udpTaken >= 1 && st.qpTaken >= 150 && st.udpTaken + st.qpTaken >= 203 && st.udpSent === 0 && st.qpSent >= 203, JSON.stringify(st));
    // so rxe0 sent at least what our QP took (191 SENDs in a CI run whose guest sent 12 by UDP), and
    // received every answer
    const n = rxeOps(before, theirs);
    assert.ok(n.sends >= st.qpTaken && n.recvs >= 200, `rxe0's SENDs and receives: ${JSON.stringify(n)}, ours: ${JSON.stringify(st)}`);
  });
}

// ---------------------------------------------------------------- rstream -T s / -T f (TCP sockets)

// rstream's baseline: its test over standard TCP sockets (use_rs = 0), no RDMA. -T f is rstream's forking
// server (TCP sockets too; its parent waits for each child). The same sync and transfers as over rsockets;
// -T v checks every byte, -k 1 sets each socket's keepalive (set_keepalive's lines: the server's twice)
const RSTREAM_TCP = ["-S", "100000", "-C", "20", "-I", "2", "-T", "v", "-k", "1"];
/** the guest listening on rstream's TCP port, 7471 (/proc/net/tcp: local :1D2F, state 0A) */
const TCP_LISTENING = "grep -q ':1D2F 00000000:0000 0A' /proc/net/tcp";
const rstreamTcpTable = (out, serves) => {
  assert.ok(out.startsWith(RSTREAM_HEAD + KEEPALIVE_LINES.repeat(serves ? 2 : 1) + "custom"), `${serves ? "server" : "client"}:\n${out}`);
  assert.match(out, RSTREAM_ROW);
  assert.doesNotMatch(out, /verification failed|rsend|rrecv|rbind|rconnect|raccept/);
};

test(`IPv4: softroce rstream -T s -s (client) -> rstream -T f (the guest's forking server), ${RSTREAM_TCP.join(" ")}: over TCP, both check every byte, print rstream's table, exit 0`, async () => {
  const { ours, theirs } = await oursToGuestServer(`rstream -T f -b ${GUEST4} ${RSTREAM_TCP.join(" ")}`, ["rstream", "-T", "s", "-s", GUEST4, "-b", HOST4, ...RSTREAM_TCP], TCP_LISTENING);
  assert.equal(ours.code, 0, `softroce rstream: ${ours.stdout}${ours.stderr}\n--- rstream:\n${theirs}`);
  rstreamTcpTable(ours.stdout, false);
  rstreamTcpTable(theirs, true);
});

test(`IPv4: rstream -T s -s (the guest) -> softroce rstream -T f, ${RSTREAM_TCP.join(" ")}: the same, roles swapped`, async () => {
  const { ours, theirs } = await guestToOursServer(["rstream", "-T", "f", "-b", HOST4, ...RSTREAM_TCP], `rstream -T s -s ${HOST4} -b ${GUEST4} ${RSTREAM_TCP.join(" ")}`);
  assert.match(theirs, /client-exit=0/, `rstream:\n${theirs}\n--- softroce:\n${ours.stdout}${ours.stderr}`);
  assert.equal(ours.code, 0, `softroce rstream: ${ours.stdout}${ours.stderr}`);
  rstreamTcpTable(ours.stdout, true);
  rstreamTcpTable(theirs.replace(/client-exit=0\n?$/, ""), false);
});

// --force-link IB: the link taken as InfiniBand's whatever the port's. With -x the GID is given, so the
// test runs as on Ethernet (the headers say IB); over rdma_cm the route has one and no GID is shown.
// --flow_label (Raw Ethernet's) and -Z (its side choice) are taken and change nothing on these tests.
test("perftest write_bw --force-link=IB -x (rxe's 1, ours 0) --flow_label=3, -Z on the servers (IPv4): softroce perf client -> ib_write_bw server (rxe0), and ib_write_bw client -> softroce server; both ends exit 0, the headers say Link type IB", async () => {
  const mode = { ...PT_MODES[0], ours: [...PT_MODES[0].ours, "-x", "0"] };
  const r = await perftestBothWays("write_bw", mode, ["-s", "4096", "-n", String(PT_ITERS), "--force-link=IB", "--flow_label=3"], { theirServer: ["-Z"], ourServer: ["-Z"] });
  for (const out of Object.values(r)) assert.ok(out.includes(" Link type       : IB\n GID index       : "), out);
  assert.equal(ptLine("write_bw", r.theirServer).trim(), ptLine("write_bw", r.oursClient).trim());
  assert.ok(ptLine("write_bw", r.theirClient), r.theirClient);
});

test("perftest send_lat -R --force-link=IB: softroce perf client -> ib_send_lat server (rxe0), and ib_send_lat client -> softroce server; both ends exit 0, no GID in the headers or the address lines, ours as Linux's", async () => {
  const r = await perftestBothWays("send_lat", PT_MODES[2], ["-s", "64", "-n", "20", "--force-link=IB"]);
  const addressLines = (out) => out.split("\n").filter((l) => / (local|remote) address:|^ GID/.test(l)).map((l) => l.replace(/0x[0-9a-f]+/g, "0x"));
  for (const out of Object.values(r)) {
    assert.ok(out.includes(" Link type       : IB\n Max inline data : 0[B]\n"), out);
    assert.deepEqual(addressLines(out), [" local address: LID 0000 QPN 0x PSN 0x", " remote address: LID 0000 QPN 0x PSN 0x"], out);
  }
  for (const out of [r.oursClient, r.theirClient]) assert.ok(ptLine("send_lat", out), out);
});

// A test that fails under way (perftest's run_iter): a read_lat client whose server is killed mid-test
// (6 s and 10 s in: a million READs take minutes here, and the exchange is long done) has its READs
// fail their retries; perftest's main then exits 17 (read_lat sets error = 17), ours too.
// Linux's client runs over rdma_cm with --retry_count 1: rxe takes perftest's default retry count, 7,
// as retrying for ever (ours as seven retries, the IBA's), and would never end
test("perftest read_lat -n 1000000, the server killed mid-test: softroce perf client -> ib_read_lat server (rxe0, IPv4), and ib_read_lat -R --retry_count 1 client -> softroce -R server; each client's READs fail with perftest's completion error and it exits 17, ours as Linux's", async () => {
  const flags = ["-s", "64", "-n", "1000000"];
  await guest(`ib_read_lat -d rxe0 -x 1 ${flags.join(" ")} -F > /tmp/pt.out 2>&1 & echo $! > /tmp/pt.pid; sleep 2`, 20);
  const oursRun = softroce(["perf", "read_lat", GUEST4, ...PT_MODES[0].ours, ...flags], 40_000);
  const killed = await guest("sleep 6; kill -9 $(cat /tmp/pt.pid) && echo SERVER-KILLED", 20);
  const ours = await oursRun;
  assert.match(killed, /^SERVER-KILLED$/m, `${killed}\n--- softroce:\n${ours.stdout}${ours.stderr}`);
  assert.equal(ours.code, 17, `softroce perf: ${ours.stdout}${ours.stderr}`);
  const failed = /^ Completion with error at client\n Failed status 12: wr_id \d+ syndrom 0x0\nscnt=\d+, ccnt=\d+$/m;
  assert.match(ours.stderr, failed, ours.stderr);
  // ours the server, stopped mid-test by its time bound (its device goes with it)
  const server = softroce(["perf", "read_lat", ...PT_MODES[2].ours, ...flags], 10_000);
  await new Promise((r) => setTimeout(r, 2000));
  const client = await guest(`ib_read_lat -d rxe0 -R --retry_count 1 ${flags.join(" ")} -F ${HOST4} > /tmp/pt.out 2>&1; echo "client-exit=$?"; cat /tmp/pt.out`, 45);
  const srv = await server;
  assert.ok(srv.timedOut, `softroce perf server ended by itself: ${srv.stdout}${srv.stderr}\n--- ib_read_lat:\n${client}`);
  assert.match(client, /^client-exit=17$/m, `${client}\n--- softroce server:\n${srv.stdout}${srv.stderr}`);
  assert.match(client, failed, client);
});

harnessTest("guest stops: qemu killed by its saved PID, netns deleted", async () => {
  await G.stop(); // throws if the netns is still listed
  assert.equal(NETNS.exists(), false);
});

await run();
