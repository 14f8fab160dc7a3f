// The Node fast path (issue 11), every target in one run. Two processes on UDP loopback; rounds
// interleave the candidates so each round's ratios compare figures taken side by side, and each
// ratio is printed as min / median / max over the rounds:
//  - RC WRITE 64 KiB, MTU 4096, 128 in flight, on the native datapath and on node:dgram, next to
//    raw node:dgram at the same datagram size (4112 B, window 128, counted at the receiver) and to
//    the C probe's GSO+GRO (bench/native/udp-limit.c: the machine's limit). Targets: native/raw
//    >= 1.5, native/C aim 0.5.
//  - RC SEND 64 B round trip (each side waits on its CQ, the child answers every SEND with a
//    SEND), native and dgram, next to a raw dgram ping-pong of the same datagram size (80 B).
//    Target: native/raw median <= 1.3; p99 reported.
//  - `softroce rc_pingpong -s 64` next to `softroce perf send_lat -s 64` (two processes each, the
//    CLI's defaults): rc_pingpong's usec/iter (the mean round trip) over send_lat's mean round trip
//    (2 x t_avg: perftest reports half the round trip). Target <= 1.2.
// Then once: `softroce perf write_bw -q 64` and `-q 256 -t 64` at 64 KiB (two processes, default
// timeout 14 and retry 7: pass, and retransmission events per datagram), the in-process RC WRITE
// against its two-CRC-two-copy ceiling (bench/rc-write.mjs) and CRC-32 against node:zlib
// (bench/crc.mjs). Knobs: BENCH_ROUNDS (5), BENCH_MESSAGES (1500 a goodput run), BENCH_ITERS
// (2000 round trips a latency run), BENCH_SKIP_ONCE=1 (the rounds only), BENCH_ONLY=write|lat|cli (one
// part of the rounds), BENCH_ADDR (the loopback address both ends bind, default 127.0.0.1; the CLI
// pairs use the addresses after it: perf write_bw +1, rc_pingpong +10/+11, send_lat +12/+13),
// BENCH_TIMER_AB=1 (one more device pair, "native-defer-eagertimer", whose ports re-arm their timer
// the way before the lazy timer: PacketPort.eagerTimer), BENCH_ACKHOLD_AB=1 (one more device pair,
// "native-defer-ackevery", whose links hold a lone request's ACK for the application's reply too:
// NativeUdpLink.holdEveryBatch, ackHold "every"; and the CLI pairs once more with SOFTROCE_ACK_HOLD=every).
// BENCH_BUSYPOLL_AB=1 (instead of the pairs above, three native "defer" pairs that differ only in the
// busy poll: "native-defer-polloff" (0), "native-defer" (the default, adaptive) and
// "native-defer-pollfixed" (a fixed 200 µs window, every window opens); BENCH_BUSYPOLL_WINDOWS=100,150cap2000
// adds adaptive pairs with those windows (µs; "capC": a wake-up's cap of C µs instead of the adaptive
// default's; pairs "native-defer-adaptive100", ...). Their round trips come with the CPU
// both processes spent per round trip (raw dgram's too), and each round adds a SPARSE run per pair:
// BENCH_SPARSE (100) one-way 64 B SENDs, one every 2-5 ms (seeded), the peer answering nothing, with
// the CPU both processes spent per message. BENCH_HOGS=N starts N CPU hogs (node busy loops)
// for the rounds and kills them by their handles after. The busy-poll counters (windows, hits, gated)
// of both ends are printed at the end.
// The native datapath runs twice where the flush matters: "native" with NativeUdpLink's default
// flush, "native-now"/"native-defer" pinned (a received batch's ACKs leave before the receive
// callback returns, or after the application's reaction to its completions, with it). Both offload
// the ICRC to the socket addon where it can (NativeUdpLink's default); "native-defer-icrcoff" is the
// same device pair with the offload off on both ends (SOFTROCE_ICRC_OFFLOAD=0 at open: the core's
// wasm CRC), its goodput, round trip and the CPU both processes spend per 64 KiB WRITE beside the
// offloaded one's.
import { machineLine } from "./machine.mjs";
import { fork, spawn, spawnSync } from "node:child_process";
import dgram from "node:dgram";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { Access, Mtu, QpType, SendFlags, WcOpcode, WcStatus, WrOpcode, connectQp, openDevice, udpLinkOf } from "../dist/node/index.js";
import { buildProbe, fmtSpread, runProbe, spread } from "./native/probe.mjs";
import { sendRawWindowed } from "./native/raw-sender.mjs";
import { roundOrder } from "./order-common.mjs";

const SIZE = 65536;
const DEPTH = 128;
const DGRAM = 4112;
const LAT_SIZE = 64;
const LAT_DGRAM = 80;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 1500);
const ITERS = Number(process.env.BENCH_ITERS ?? 2000);
const WARMUP = 200;
const ADDR = process.env.BENCH_ADDR ?? "127.0.0.1";
const ONLY = process.env.BENCH_ONLY;
// BENCH_WRITE_BUFFER=perftest: every RC WRITE names the same 64 KiB at both ends, as perftest's
// write_bw -s 65536 does (its buffer per QP is max(size, 4096)); the default gives each of the 128
// WRITEs in flight its own 64 KiB (8 MiB a side: the receiver's copy into the MR then misses the cache)
const WRITE_PLACES = process.env.BENCH_WRITE_BUFFER === "perftest" ? 1 : DEPTH;
const WRITE_BUFFER_TEXT = WRITE_PLACES === 1 ? "one 64 KiB buffer a side (perftest's)" : `a 64 KiB place for each WRITE in flight`;
const ACCESS = Access.LOCAL_WRITE | Access.REMOTE_WRITE;
// BENCH_TIMER_AB=1 adds "native-defer-eagertimer": the device's port re-arming its platform timer
// whenever the deadline moves (PacketPort.eagerTimer, the way before), beside the default's lazy timer
const TIMER_AB = process.env.BENCH_TIMER_AB === "1";
// BENCH_ACKHOLD_AB=1 adds "native-defer-ackevery": every received batch holds its plain ACKs for the
// application's reply (ackHold "every"), a lone request's too, beside the default's ("more")
const ACKHOLD_AB = process.env.BENCH_ACKHOLD_AB === "1";
const BUSYPOLL_AB = process.env.BENCH_BUSYPOLL_AB === "1";
const POLL_WINDOWS = (process.env.BENCH_BUSYPOLL_WINDOWS ?? "").split(",").filter(Boolean);
// BENCH_INFLIGHT_AB=256,512: native "defer" pairs whose devices' in-flight budget allows that many
// packets (PacketPort.setBudget; the bytes limit kept) beside the default's (DEFAULT_IN_FLIGHT_PACKETS, 128)
const INFLIGHT_AB = (process.env.BENCH_INFLIGHT_AB ?? "").split(",").filter(Boolean).map(Number);
const SPARSE = Number(process.env.BENCH_SPARSE ?? 100);
const HOGS = Number(process.env.BENCH_HOGS ?? 0);
const PATHS = BUSYPOLL_AB
  ? ["native-defer-polloff", "native-defer", "native-defer-pollfixed", ...POLL_WINDOWS.map((w) => `native-defer-adaptive${w}`)]
  : [
      "native-now", "native-defer", "native-defer-icrcoff", "dgram",
      ...(TIMER_AB ? ["native-defer-eagertimer"] : []), ...(ACKHOLD_AB ? ["native-defer-ackevery"] : []),
      ...INFLIGHT_AB.map((n) => `native-defer-inflight${n}`),
    ];
/** The kinds of device pair each path gets: WRITE goodput, SEND ping-pong, and with BUSYPOLL_AB one-way sparse SENDs. */
const KINDS = BUSYPOLL_AB ? ["write", "lat", "sparse"] : ["write", "lat"];

/** One device with one RC QP: a WRITE source/target (`write`) or a SEND ping-pong end (`lat`). */
async function rcSide(path, kind) {
  const write = kind === "write";
  const [datapath, flush, icrc] = path.split("-");
  // the offload is chosen when the link opens (NativeUdpLink reads SOFTROCE_ICRC_OFFLOAD); sides open one at a time
  const env = process.env.SOFTROCE_ICRC_OFFLOAD;
  if (icrc === "icrcoff") process.env.SOFTROCE_ICRC_OFFLOAD = "0";
  let d;
  try {
    d = await openDevice({ address: ADDR, port: 0, activeMtu: Mtu.MTU_4096, mrArenaBytes: write ? DEPTH * SIZE + (1 << 20) : 1 << 20, datapath });
  } finally {
    if (env === undefined) delete process.env.SOFTROCE_ICRC_OFFLOAD;
    else process.env.SOFTROCE_ICRC_OFFLOAD = env;
  }
  if (udpLinkOf(d).path !== datapath) throw new Error(`asked for the ${datapath} path, got ${udpLinkOf(d).path}`);
  if (datapath === "native" && /^on/.test(udpLinkOf(d).icrcOffloadState) !== (icrc !== "icrcoff")) {
    throw new Error(`${path}: ICRC offload ${udpLinkOf(d).icrcOffloadState}`);
  }
  if (flush) udpLinkOf(d).flush = flush;
  if (icrc === "eagertimer") d.port.eagerTimer = true;
  if (icrc === "ackevery") udpLinkOf(d).holdEveryBatch = true;
  if (icrc === "polloff") udpLinkOf(d).setBusyPoll(0);
  if (icrc === "pollfixed") udpLinkOf(d).setBusyPoll(200);
  if (icrc?.startsWith("inflight")) d.port.setBudget(d.port.budget().limit, Number(icrc.slice(8)));
  if (icrc?.startsWith("adaptive")) { // adaptiveW or adaptiveWcapC: a window of W µs, a wake-up's cap C µs
    const [w, cap] = icrc.slice(8).split("cap").map(Number);
    udpLinkOf(d).datapath.setBusyPoll(w, true, cap || undefined);
  }
  if (datapath === "native" && !icrc && udpLinkOf(d).busyPoll !== "adaptive") throw new Error(`${path}: the default busy poll is ${udpLinkOf(d).busyPollState}`);
  const pd = d.allocPd();
  const cq = d.createCq(DEPTH * 2);
  const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: DEPTH, maxRecvWr: 16, maxSendSge: 1, maxRecvSge: 1 } });
  const mr = pd.regMr(write ? DEPTH * SIZE : 4096, ACCESS);
  const me = { qpn: qp.qpNum, psn: (Math.random() * 0xffffff) | 0, port: d.limits.port, rkey: mr.rkey, addr: mr.addr.toString() };
  // WRs built once and reused (the post copies them into the SQ)
  const sge = mr.sge(0, LAT_SIZE);
  const sendWr = { wrId: 2n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [sge] };
  const recvWr = { wrId: 1n, sgList: [sge] };
  const connect = (peer) => {
    connectQp(qp, { qpNum: peer.qpn, psn: peer.psn, gid: `::ffff:${ADDR}`, port: peer.port }, { sqPsn: me.psn, pathMtu: Mtu.MTU_4096, qpAccessFlags: ACCESS });
    if (!write) for (let i = 0; i < 16; i++) qp.postRecv(recvWr);
  };
  const recv = async () => {
    for (;;) {
      const wc = await cq.next();
      if (wc.status !== WcStatus.SUCCESS) throw new Error(`completion status ${wc.status}`);
      if (wc.opcode === WcOpcode.RECV) return qp.postRecv(recvWr);
    }
  };
  return { d, cq, qp, mr, me, connect, send: () => qp.postSend(sendWr), recv };
}

// ---- child: WRITE targets, SEND answerers, the raw receiver and the raw echo
async function child() {
  const sides = {};
  for (const p of PATHS) for (const k of KINDS) sides[`${p}-${k}`] = await rcSide(p, k);
  const sink = dgram.createSocket("udp4");
  sink.bind(0, ADDR);
  await once(sink, "listening");
  try { sink.setRecvBufferSize(4 << 20); } catch {}
  let count = 0, first = 0, last = 0;
  const ack = Buffer.alloc(4);
  sink.on("message", (m, rinfo) => {
    const now = performance.now();
    if (count === 0) first = now;
    last = now;
    count++;
    if ((count & 31) === 0) {
      ack.writeUInt32LE(count);
      sink.send(ack, rinfo.port, rinfo.address);
    }
  });
  const echo = dgram.createSocket("udp4");
  echo.bind(0, ADDR);
  await once(echo, "listening");
  echo.on("message", (m, r) => echo.send(m, r.port, r.address));
  let stop = false;
  process.on("message", async (msg) => {
    if (msg.type === "peers") {
      for (const [k, peer] of Object.entries(msg.peers)) sides[k].connect(peer);
      process.send({ type: "ready" });
      for (const p of PATHS) {
        void (async () => {
          const s = sides[`${p}-lat`];
          for (;;) {
            await s.recv();
            if (stop) break;
            s.send();
          }
        })();
        // the sparse target receives and answers nothing (its ACKs aside)
        if (KINDS.includes("sparse")) void (async () => { for (;;) await sides[`${p}-sparse`].recv(); })();
      }
    } else if (msg.type === "raw-reset") (count = 0), process.send({ type: "raw-ready" });
    else if (msg.type === "raw-result") process.send({ type: "raw-result", count, us: (last - first) * 1000 });
    else if (msg.type === "cpu") process.send({ type: "cpu", us: cpuUs() });
    else if (msg.type === "busy") process.send({ type: "busy", stats: busyStats(sides) });
    else if (msg.type === "exit") {
      stop = true;
      for (const s of Object.values(sides)) s.d.close();
      sink.close();
      echo.close();
      process.disconnect();
    }
  });
  process.send({ type: "hello", peers: Object.fromEntries(Object.entries(sides).map(([k, s]) => [k, s.me])), sinkPort: sink.address().port, echoPort: echo.address().port });
}

// ---- parent
function ask(c, msg, type) {
  return new Promise((resolve) => {
    const on = (m) => m.type === type && (c.off("message", on), resolve(m));
    c.on("message", on);
    c.send(msg);
  });
}

/** RC WRITE goodput (MB/s = 10^6 B/s) from first post to last completion; WRs reused. */
async function rcWrite(s, peer) {
  const wrs = Array.from({ length: DEPTH }, (_, slot) => ({
    wrId: BigInt(slot), opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED, sgList: [s.mr.sge((slot % WRITE_PLACES) * SIZE, SIZE)],
    rdma: { remoteAddr: BigInt(peer.addr) + BigInt((slot % WRITE_PLACES) * SIZE), rkey: peer.rkey },
  }));
  let posted = 0, done = 0;
  const t0 = performance.now();
  while (posted < Math.min(DEPTH, MESSAGES)) s.qp.postSend(wrs[posted++ % DEPTH]);
  while (done < MESSAGES) {
    const wc = await s.cq.next();
    if (wc.status !== WcStatus.SUCCESS) throw new Error(`RC WRITE completed with status ${wc.status}`);
    done++;
    for (const w of s.cq.poll(64)) {
      if (w.status !== WcStatus.SUCCESS) throw new Error(`RC WRITE completed with status ${w.status}`);
      done++;
    }
    while (posted < MESSAGES && posted - done < DEPTH) s.qp.postSend(wrs[posted++ % DEPTH]);
  }
  return (SIZE * MESSAGES) / ((performance.now() - t0) * 1000);
}

/** Raw node:dgram goodput at the receiver, window 128 against a count every 32 datagrams. */
async function rawGoodput(c, port) {
  await ask(c, { type: "raw-reset" }, "raw-ready");
  await sendRawWindowed({ address: ADDR, port, size: DGRAM, total: Math.round((SIZE * MESSAGES) / 4096), window: DEPTH });
  const res = await ask(c, { type: "raw-result" }, "raw-result");
  return (res.count * DGRAM) / res.us;
}

/** CPU time of this process so far (user + system), µs. */
function cpuUs() {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** rcWrite with the CPU each process spent on it: µs per 64 KiB message, sender (this process) and receiver (the child). */
async function rcWriteCpu(c, s, peer, cpu) {
  const k0 = (await ask(c, { type: "cpu" }, "cpu")).us;
  const c0 = cpuUs();
  const mbps = await rcWrite(s, peer);
  const c1 = cpuUs();
  const k1 = (await ask(c, { type: "cpu" }, "cpu")).us;
  cpu.push({ tx: (c1 - c0) / MESSAGES, rx: (k1 - k0) / MESSAGES });
  return mbps;
}

const pct = (a, q) => a[Math.min(a.length - 1, Math.floor(a.length * q))];

/** The CPU both processes spent while `run` ran, µs per `per`: { me, peer }. */
async function bothCpu(c, per, run) {
  const k0 = (await ask(c, { type: "cpu" }, "cpu")).us;
  const c0 = cpuUs();
  const r = await run();
  const c1 = cpuUs();
  const k1 = (await ask(c, { type: "cpu" }, "cpu")).us;
  return { r, cpu: { me: (c1 - c0) / per, peer: (k1 - k0) / per } };
}

async function rcLatency(s, c) {
  const t = [];
  for (let i = 0; i < WARMUP; i++) s.send(), await s.recv();
  const { cpu } = await bothCpu(c, ITERS, async () => {
    for (let i = 0; i < ITERS; i++) {
      const t0 = performance.now();
      s.send();
      await s.recv();
      t.push((performance.now() - t0) * 1000);
    }
  });
  t.sort((x, y) => x - y);
  return { p50: pct(t, 0.5), p99: pct(t, 0.99), cpu };
}

/** SPARSE one-way 64 B SENDs, one every 2-5 ms (the same seeded gaps for every pair), each waited for (its ACK); CPU per message. */
async function sparseRun(s, c, seed) {
  let x = seed;
  const gap = () => ((x = (x * 1103515245 + 12345) & 0x7fffffff), 2 + (x % 3001) / 1000);
  const { cpu } = await bothCpu(c, SPARSE, async () => {
    for (let i = 0; i < SPARSE; i++) {
      await new Promise((r) => setTimeout(r, gap()));
      s.send();
      for (;;) {
        const wc = await s.cq.next();
        if (wc.status !== WcStatus.SUCCESS) throw new Error(`sparse SEND completed with status ${wc.status}`);
        if (wc.opcode === WcOpcode.SEND) break;
      }
    }
  });
  return cpu;
}

/** The busy-poll counters of each native side: windows, hits, gated. */
function busyStats(sides) {
  const o = {};
  for (const [k, s] of Object.entries(sides)) {
    const l = udpLinkOf(s.d);
    if (l.path !== "native") continue;
    const st = l.datapathStats();
    o[k] = { windows: st.rxBusyPolls, hits: st.rxBusyHits, gated: st.rxBusyGated ?? 0, late: st.rxBusyLate ?? 0 };
  }
  return o;
}

async function rawLatency(port, c) {
  const sock = dgram.createSocket("udp4");
  sock.bind(0, ADDR);
  await once(sock, "listening");
  const payload = Buffer.alloc(LAT_DGRAM, 1);
  const t = [];
  for (let i = 0; i < WARMUP; i++) sock.send(payload, port, ADDR), await once(sock, "message");
  const { cpu } = await bothCpu(c, ITERS, async () => {
    for (let i = 0; i < ITERS; i++) {
      const t0 = performance.now();
      sock.send(payload, port, ADDR);
      await once(sock, "message");
      t.push((performance.now() - t0) * 1000);
    }
  });
  sock.close();
  t.sort((x, y) => x - y);
  return { p50: pct(t, 0.5), p99: pct(t, 0.99), cpu };
}

const CLI = fileURLToPath(new URL("../dist/cli/softroce.js", import.meta.url));

/** `softroce perf write_bw` between two processes (BENCH_ADDR and the address after it): its JSON result. */
async function perfQps(qps, extra) {
  const tcp = String(20000 + Math.floor(Math.random() * 20000));
  // -m 1024: the path MTU of a 1500-byte Ethernet link (without -m, perf takes loopback's active MTU, 4096)
  const common = ["perf", "write_bw", "-q", String(qps), "-s", String(SIZE), "-m", "1024", ...extra, "-p", tcp, "--udp-port", "0", "--json"];
  const server = spawn(process.execPath, [CLI, ...common, "--address", ADDR], { stdio: ["ignore", "ignore", "pipe"] });
  const serverExit = once(server, "exit"); // at once: an exit seen before anyone listens would leave this waiting forever
  let serverErr = "";
  server.stderr.on("data", (b) => (serverErr += b));
  // the server prints "waiting for a client" once it listens
  for (let i = 0; i < 200 && !serverErr.includes("waiting"); i++) await new Promise((r) => setTimeout(r, 50));
  // the client asynchronously too: spawnSync's own loop can take the server's exit (the bench then ended without a word)
  const client = spawn(process.execPath, [CLI, ...common, ADDR, "--address", cliAddr(1)], { stdio: ["ignore", "pipe", "pipe"], timeout: 600_000 });
  const r = { stdout: "", stderr: "" };
  client.stdout.on("data", (b) => (r.stdout += b));
  client.stderr.on("data", (b) => (r.stderr += b));
  await Promise.all([once(client, "exit"), serverExit]);
  try {
    return JSON.parse(r.stdout);
  } catch {
    return { ok: false, error: (r.stderr || r.stdout).trim().split("\n").pop() };
  }
}

/** A CLI server and its client (two processes each side of the pair); the client's stdout. */
async function cliPair(args, serverAddr, clientAddr, extraEnv = {}) {
  const env = { ...process.env, ...extraEnv };
  const server = spawn(process.execPath, [CLI, ...args, "--address", serverAddr], { stdio: ["ignore", "ignore", "pipe"], env });
  const serverExit = once(server, "exit");
  let serverErr = "";
  server.stderr.on("data", (b) => (serverErr += b));
  for (let i = 0; i < 400 && !serverErr.includes("waiting"); i++) await new Promise((r) => setTimeout(r, 25));
  const client = spawn(process.execPath, [CLI, ...args, "--address", clientAddr, serverAddr], { stdio: ["ignore", "pipe", "pipe"], timeout: 300_000, env });
  let out = "", err = "";
  client.stdout.on("data", (b) => (out += b));
  client.stderr.on("data", (b) => (err += b));
  await Promise.all([once(client, "exit"), serverExit]);
  return { out, err: err + serverErr };
}

const tcpPort = () => String(20000 + Math.floor(Math.random() * 20000));
const cliAddr = (k) => ADDR.replace(/\.\d+$/, (m) => `.${(Number(m.slice(1)) + k) & 255}`);

/** `softroce rc_pingpong -s 64 -n ITERS`: usec/iter, the mean round trip (µs). */
async function rcPingpong(env) {
  // the pingpongs have no UDP port exchange: both ends bind the same port on their own address
  const udp = String(24000 + Math.floor(Math.random() * 8000));
  const r = await cliPair(["rc_pingpong", "-s", String(LAT_SIZE), "-n", String(ITERS), "-p", tcpPort(), "--udp-port", udp], cliAddr(10), cliAddr(11), env);
  const m = /([\d.]+) usec\/iter/.exec(r.out);
  if (!m) throw new Error(`rc_pingpong: no usec/iter line: ${(r.out + r.err).trim().split("\n").pop()}`);
  return Number(m[1]);
}

/** `softroce perf send_lat -s 64 -n ITERS --json`: mean and typical round trip (2 x perftest's half round trip), µs. */
async function perfSendLat(env) {
  const r = await cliPair(["perf", "send_lat", "-s", String(LAT_SIZE), "-n", String(ITERS), "-p", tcpPort(), "--udp-port", "0", "--json"], cliAddr(12), cliAddr(13), env);
  let j;
  try {
    j = JSON.parse(r.out);
  } catch {
    throw new Error(`perf send_lat: ${(r.out + r.err).trim().split("\n").pop()}`);
  }
  return { avg: 2 * j.t_avg_usec, typical: 2 * j.t_typical_usec };
}

function runBench(file, env) {
  const r = spawnSync(process.execPath, [fileURLToPath(new URL(file, import.meta.url))], { encoding: "utf8", env: { ...process.env, ...env }, timeout: 600_000 });
  return (r.stdout + r.stderr).trim();
}

async function parent() {
  const c = fork(fileURLToPath(import.meta.url), ["child"], { stdio: "inherit" });
  const [hello] = await once(c, "message");
  const mine = {};
  for (const p of PATHS) for (const k of KINDS) mine[`${p}-${k}`] = await rcSide(p, k);
  await ask(c, { type: "peers", peers: Object.fromEntries(Object.entries(mine).map(([k, s]) => [k, s.me])) }, "ready");
  for (const [k, s] of Object.entries(mine)) s.connect(hello.peers[k]);
  const probe = buildProbe();
  const g = { ...Object.fromEntries(PATHS.map((p) => [p, []])), raw: [], c: [] };
  const lat = { ...Object.fromEntries(PATHS.map((p) => [p, []])), raw: [] };
  const cpu = Object.fromEntries(PATHS.map((p) => [p, []]));
  const cli = { pingpong: [], sendLat: [], pingpongEvery: [], sendLatEvery: [] };
  const sparse = Object.fromEntries(PATHS.map((p) => [p, []]));
  // CPU hogs of our own (BENCH_HOGS), killed by their handles when the rounds end
  const hogs = Array.from({ length: HOGS }, () => spawn(process.execPath, ["-e", "for (;;) {}"], { stdio: "ignore" }));
  try {
    for (let r = 0; r < ROUNDS; r++) {
      // a seeded shuffle each round (BENCH_SEED): no candidate always first, or always after the same one
      const writes = [
        ...PATHS.map((p) => async () => g[p].push(await rcWriteCpu(c, mine[`${p}-write`], hello.peers[`${p}-write`], cpu[p]))),
        async () => g.raw.push(await rawGoodput(c, hello.sinkPort)),
        async () => g.c.push(runProbe(probe, "gso+gro", { count: Math.round((SIZE * MESSAGES) / 4096) }).gbps * 1000),
      ];
      const lats = [
        ...PATHS.map((p) => async () => lat[p].push(await rcLatency(mine[`${p}-lat`], c))),
        async () => lat.raw.push(await rawLatency(hello.echoPort, c)),
        ...(KINDS.includes("sparse") ? PATHS.map((p) => async () => sparse[p].push(await sparseRun(mine[`${p}-sparse`], c, 1000 + r))) : []),
      ];
      const EVERY = { SOFTROCE_ACK_HOLD: "every" };
      const clis = [
        async () => cli.pingpong.push(await rcPingpong()), async () => cli.sendLat.push(await perfSendLat()),
        ...(ACKHOLD_AB ? [async () => cli.pingpongEvery.push(await rcPingpong(EVERY)), async () => cli.sendLatEvery.push(await perfSendLat(EVERY))] : []),
      ];
      const jobs = ONLY === "cli" ? clis : [...(ONLY === "lat" ? [] : writes), ...(ONLY === "write" ? [] : lats), ...(ONLY ? [] : clis)];
      for (const j of roundOrder(jobs.length, r)) await jobs[j]();
    }
  } finally {
    probe.dispose();
    for (const h of hogs) h.kill();
  }
  const ratio = (a, b) => fmtSpread(spread(a.map((x, i) => x / b[i])));
  const mb = (a) => fmtSpread(spread(a), 0);
  console.log(`Node fast path, 2 processes on UDP loopback, ${ROUNDS} interleaved rounds (min / median / max)${HOGS ? `, ${HOGS} CPU hogs running` : ""}`);
  console.log(`machine: ${machineLine()}`);
  if (BUSYPOLL_AB) {
    const busy = { mine: busyStats(mine), peer: (await ask(c, { type: "busy" }, "busy")).stats };
    printBusyPollAb(g, cpu, lat, sparse, busy);
    c.send({ type: "exit" });
    for (const s of Object.values(mine)) s.d.close();
    return;
  }
  if (ONLY !== "lat" && ONLY !== "cli") {
    console.log(`RC WRITE ${SIZE} B, MTU 4096, ${DEPTH} in flight, ${WRITE_BUFFER_TEXT}, ${MESSAGES} messages a run (MB/s = 10^6 B/s):`);
    console.log(`  native, flush now      ${mb(g["native-now"])}`);
    console.log(`  native, flush defer    ${mb(g["native-defer"])}`);
    console.log(`  node:dgram path        ${mb(g.dgram)}`);
    console.log(`  raw node:dgram ${DGRAM} B  ${mb(g.raw)}`);
    console.log(`  C probe GSO+GRO        ${mb(g.c)}`);
    console.log(`  native now / raw dgram    ${ratio(g["native-now"], g.raw)}   (target >= 1.5)`);
    console.log(`  native defer / raw dgram  ${ratio(g["native-defer"], g.raw)}`);
    console.log(`  native now / C GSO+GRO    ${ratio(g["native-now"], g.c)}   (aim 0.5)`);
    console.log(`  native defer / C GSO+GRO  ${ratio(g["native-defer"], g.c)}`);
    console.log(`  dgram path / raw          ${ratio(g.dgram, g.raw)}`);
    console.log(`  native defer, ICRC offload off (the core's CRC)  ${mb(g["native-defer-icrcoff"])}`);
    console.log(`  offload on / off (native defer)  ${ratio(g["native-defer"], g["native-defer-icrcoff"])}`);
    console.log(`  offload off / raw dgram          ${ratio(g["native-defer-icrcoff"], g.raw)};  / C GSO+GRO ${ratio(g["native-defer-icrcoff"], g.c)}`);
    if (ACKHOLD_AB) console.log(`  native defer, ackHold every  ${mb(g["native-defer-ackevery"])};  every / more ${ratio(g["native-defer-ackevery"], g["native-defer"])}`);
    for (const n of INFLIGHT_AB) {
      const k = `native-defer-inflight${n}`;
      console.log(`  native defer, ${n} packets in flight  ${mb(g[k])};  / the default's ${ratio(g[k], g["native-defer"])};  / C GSO+GRO ${ratio(g[k], g.c)}`);
    }
    console.log(`CPU per 64 KiB WRITE, µs (user + system of each process over its run), sender / receiver:`);
    for (const p of PATHS) {
      console.log(`  ${p.padEnd(22)} ${fmtSpread(spread(cpu[p].map((x) => x.tx)), 1)}  /  ${fmtSpread(spread(cpu[p].map((x) => x.rx)), 1)}`);
    }
    const tx = (p) => cpu[p].map((x) => x.tx), rx = (p) => cpu[p].map((x) => x.rx);
    console.log(`  offload on / off (native defer): sender ${ratio(tx("native-defer"), tx("native-defer-icrcoff"))}, receiver ${ratio(rx("native-defer"), rx("native-defer-icrcoff"))}`);
  }
  const p50 = (a) => a.map((x) => x.p50);
  const p99 = (a) => a.map((x) => x.p99);
  if (ONLY !== "write" && ONLY !== "cli") {
    console.log(`RC SEND ${LAT_SIZE} B round trip, ${ITERS} a run (µs, median of each run; p99 of each run):`);
    console.log(`  native, flush now      p50 ${fmtSpread(spread(p50(lat["native-now"])), 1)}   p99 ${fmtSpread(spread(p99(lat["native-now"])), 1)}`);
    console.log(`  native, flush defer    p50 ${fmtSpread(spread(p50(lat["native-defer"])), 1)}   p99 ${fmtSpread(spread(p99(lat["native-defer"])), 1)}`);
    console.log(`  node:dgram path        p50 ${fmtSpread(spread(p50(lat.dgram)), 1)}   p99 ${fmtSpread(spread(p99(lat.dgram)), 1)}`);
    console.log(`  raw dgram ${LAT_DGRAM} B ping-pong p50 ${fmtSpread(spread(p50(lat.raw)), 1)}   p99 ${fmtSpread(spread(p99(lat.raw)), 1)}`);
    console.log(`  native now / raw (p50)    ${ratio(p50(lat["native-now"]), p50(lat.raw))}   (target <= 1.3)`);
    console.log(`  native defer / raw (p50)  ${ratio(p50(lat["native-defer"]), p50(lat.raw))}`);
    console.log(`  dgram path / raw (p50)    ${ratio(p50(lat.dgram), p50(lat.raw))}`);
    console.log(`  native defer, ICRC offload off p50 ${fmtSpread(spread(p50(lat["native-defer-icrcoff"])), 1)}   p99 ${fmtSpread(spread(p99(lat["native-defer-icrcoff"])), 1)}`);
    console.log(`  offload on / off (p50, native defer)  ${ratio(p50(lat["native-defer"]), p50(lat["native-defer-icrcoff"]))}`);
    if (TIMER_AB) {
      const e = lat["native-defer-eagertimer"];
      console.log(`  native defer, eager timer p50 ${fmtSpread(spread(p50(e)), 1)}   p99 ${fmtSpread(spread(p99(e)), 1)}`);
      console.log(`  lazy / eager timer (p50, native defer)  ${ratio(p50(lat["native-defer"]), p50(e))};  eager / raw ${ratio(p50(e), p50(lat.raw))}`);
    }
    if (ACKHOLD_AB) {
      const e = lat["native-defer-ackevery"];
      console.log(`  native defer, ackHold every p50 ${fmtSpread(spread(p50(e)), 1)}   p99 ${fmtSpread(spread(p99(e)), 1)}`);
      console.log(`  every / more (p50, native defer)  ${ratio(p50(e), p50(lat["native-defer"]))};  every / raw ${ratio(p50(e), p50(lat.raw))}`);
    }
  }
  if (!ONLY || ONLY === "cli") {
    console.log(`CLI, RC SEND ${LAT_SIZE} B, ${ITERS} iterations, two processes each (µs):`);
    console.log(`  rc_pingpong usec/iter (mean round trip)   ${fmtSpread(spread(cli.pingpong), 1)}`);
    console.log(`  perf send_lat mean round trip (2 t_avg)   ${fmtSpread(spread(cli.sendLat.map((x) => x.avg)), 1)}`);
    console.log(`  perf send_lat typical round trip          ${fmtSpread(spread(cli.sendLat.map((x) => x.typical)), 1)}`);
    console.log(`  rc_pingpong / send_lat (means)            ${ratio(cli.pingpong, cli.sendLat.map((x) => x.avg))}   (target <= 1.2)`);
    if (ACKHOLD_AB) {
      console.log(`  with SOFTROCE_ACK_HOLD=every: rc_pingpong ${fmtSpread(spread(cli.pingpongEvery), 1)}, send_lat mean ${fmtSpread(spread(cli.sendLatEvery.map((x) => x.avg)), 1)}`);
      console.log(`  every / more: rc_pingpong ${ratio(cli.pingpongEvery, cli.pingpong)}, send_lat ${ratio(cli.sendLatEvery.map((x) => x.avg), cli.sendLat.map((x) => x.avg))}; every rc_pingpong / send_lat ${ratio(cli.pingpongEvery, cli.sendLatEvery.map((x) => x.avg))}`);
    }
  }
  const ret = PATHS.map((p) => `${p} ${mine[`${p}-write`].d.queryCounters().completer_retry_err ?? 0}`).join(", ");
  console.log(`  (WRITE retransmission events over all rounds: ${ret})`);
  c.send({ type: "exit" });
  for (const s of Object.values(mine)) s.d.close();
  if (process.env.BENCH_SKIP_ONCE === "1") return;
  // -q 256 -t 64: 16384 messages in flight, the most perf lets one send CQ hold (perftest's default
  // -t 128 would ask for 32768 CQEs, over rxe's and our device's 32767)
  for (const [qps, extra] of [[64, ["-n", "200"]], [256, ["-n", "40", "-t", "64"]]]) {
    const r = await perfQps(qps, extra);
    const pkts = r.packets_sent ?? 0;
    console.log(
      `perf write_bw -q ${qps} -s ${SIZE} ${extra.join(" ")} (MTU 1024, timeout 14, retry 7): ${r.ok ? "pass" : `FAIL ${r.error ?? JSON.stringify(r.errors)}`}` +
        (r.ok ? `, ${Number(r.bw_avg_MiBps ?? NaN).toFixed(1)} MB/s (perftest's MB = 2^20 B), retransmission events ${r.retransmissions} in ${pkts} datagrams` : ""),
    );
  }
  console.log("in process (bench/rc-write.mjs, BENCH_ROUNDS=3):\n" + runBench("./rc-write.mjs", { BENCH_ROUNDS: "3" }));
  console.log("CRC-32 (bench/crc.mjs):\n" + runBench("./crc.mjs", { BENCH_ROUNDS: "5", BENCH_MS: "800" }));
}

/** BENCH_BUSYPOLL_AB's report: each busy-poll pair against raw dgram and against polling off, per round. */
function printBusyPollAb(g, cpu, lat, sparse, busy) {
  const ratio = (a, b) => fmtSpread(spread(a.map((x, i) => x / b[i])));
  const f1 = (a) => fmtSpread(spread(a), 1);
  const OFF = "native-defer-polloff";
  const name = (p) => (p === "native-defer" ? "adaptive (default)" : p.replace("native-defer-", "")).padEnd(20);
  const p50 = (p) => lat[p].map((x) => x.p50), p99 = (p) => lat[p].map((x) => x.p99);
  const both = (x) => x.me + x.peer;
  if (ONLY !== "write" && ONLY !== "cli") {
    console.log(`RC SEND ${LAT_SIZE} B round trip, ${ITERS} a run; CPU of both processes per round trip (µs):`);
    console.log(`  raw dgram ${LAT_DGRAM} B ping-pong  p50 ${f1(p50("raw"))}   p99 ${f1(p99("raw"))}   CPU ${f1(lat.raw.map((x) => both(x.cpu)))}`);
    for (const p of PATHS) {
      console.log(`  ${name(p)} p50 ${f1(p50(p))}   p99 ${f1(p99(p))}   CPU ${f1(lat[p].map((x) => both(x.cpu)))} (this side ${f1(lat[p].map((x) => x.cpu.me))})`);
    }
    for (const p of PATHS) {
      console.log(`  ${name(p)} / raw: p50 ${ratio(p50(p), p50("raw"))}   p99 ${ratio(p99(p), p99("raw"))}   CPU ${ratio(lat[p].map((x) => both(x.cpu)), lat.raw.map((x) => both(x.cpu)))}${p === OFF ? "" : `;  / off: p50 ${ratio(p50(p), p50(OFF))}, CPU ${ratio(lat[p].map((x) => both(x.cpu)), lat[OFF].map((x) => both(x.cpu)))}`}`);
    }
    console.log(`Sparse one-way RC SEND ${LAT_SIZE} B, ${SPARSE} a run, one every 2-5 ms: CPU of both processes per message (µs), sender + receiver:`);
    for (const p of PATHS) {
      console.log(`  ${name(p)} ${f1(sparse[p].map(both))} (${f1(sparse[p].map((x) => x.me))} + ${f1(sparse[p].map((x) => x.peer))})${p === OFF ? "" : `;  / off ${ratio(sparse[p].map(both), sparse[OFF].map(both))}`}`);
    }
  }
  if (ONLY !== "lat" && ONLY !== "cli") {
    console.log(`RC WRITE ${SIZE} B, MTU 4096, ${DEPTH} in flight, ${WRITE_BUFFER_TEXT}, ${MESSAGES} messages a run (MB/s = 10^6 B/s); CPU per WRITE sender / receiver (µs):`);
    console.log(`  raw node:dgram ${DGRAM} B  ${fmtSpread(spread(g.raw), 0)}`);
    for (const p of PATHS) {
      console.log(`  ${name(p)} ${fmtSpread(spread(g[p]), 0)}  / raw ${ratio(g[p], g.raw)}${p === OFF ? "" : `  / off ${ratio(g[p], g[OFF])}`}   CPU ${f1(cpu[p].map((x) => x.tx))} / ${f1(cpu[p].map((x) => x.rx))}`);
    }
  }
  console.log("Busy-poll windows over the whole run (opened / caught a datagram / held back by the gate / ended by a late yield), this process | the peer:");
  for (const p of PATHS) {
    const row = (k) => {
      const a = busy.mine[`${p}-${k}`], b = busy.peer[`${p}-${k}`];
      return `${k} ${a.windows}/${a.hits}/${a.gated}/${a.late} | ${b.windows}/${b.hits}/${b.gated}/${b.late}`;
    };
    console.log(`  ${name(p)} ${KINDS.map(row).join(";  ")}`);
  }
}

if (process.argv[2] === "child") await child();
else await parent();
