// The device in a worker thread (issue 17) against today's single-thread device, side by side in
// one run, two processes on loopback UDP. This process opens both kinds of device (worker: true
// and the single-thread one); the child process is the peer of both (one RC QP each).
//   1. RC WRITE goodput (64 KiB messages, MTU 4096, 128 in flight: 8 MiB, more than the link moves while the load holds the thread) with an idle application thread
//      and with one kept busy by a synthetic load (BENCH_LOAD_MS of CPU in every BENCH_LOAD_PERIOD_MS,
//      in timer callbacks): target worker busy/idle >= 0.9, the single-thread device's beside it.
//   2. What posting and polling cost the application thread per operation (wall time inside
//      postSend + poll, 64 B WRITEs, 32 in flight): worker vs single-thread.
//   3. 64 B RC SEND round trip (ping-pong with the child echoing): target worker/single <= 1.2; the
//      devices take turns in blocks of BENCH_RTT_BLOCK (100) pings, so that all see the same load.
// Rounds interleave the configurations (which device goes first alternates every round, whether its idle
// or its busy run goes first every two rounds, after one unrecorded warm-up run per device); ratios are
// printed per round as min/median/max.
// On Linux each goodput run is accounted per thread (schedstat: ns on a CPU, ns runnable waiting for
// one): the application thread, the device worker, the peer process, the rest of the machine; and
// the bound the CPU puts on busy/idle (the cores the busy run leaves the worker and the peer over the
// cores they used idle).
//   node bench/worker.mjs   (after npm run build)   env: BENCH_ROUNDS, BENCH_GOODPUT_MS, BENCH_PINGS,
//   BENCH_SPINS (worker spins side by side, µs), BENCH_ACK_HOLD, BENCH_PEER_FLUSH, BENCH_PEER_BUSY_POLL, BENCH_PEER_CPUS, BENCH_APP_CPU,
//   BENCH_AB (the round trip's levers and busy polls side by side: see below)
import { machineLine } from "./machine.mjs";
import { execFileSync, fork } from "node:child_process";
import { once } from "node:events";
import { readdirSync, readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { inRoundOrder } from "./order-common.mjs";
import { WAKE_WAYS, openFloor } from "./native/probe.mjs";
import { Access, Mtu, QpType, SendFlags, WcStatus, WrOpcode, connectQp, openDevice, udpPortOf, workerStatsOf, workerDebugOf, workerTraceOf, workerSessionOf, setWorkerAppSpin, TraceStage, Ring, DEFAULT_SPIN_US } from "../dist/internal/node.js";

const SIZE = 65536;
// WRITEs posted ahead (each 64 KiB): BENCH_DEPTH, the "post deeper" lever
const DEPTH = Number(process.env.BENCH_DEPTH ?? 128);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
// BENCH_FLOOR (on unless 0): each round also runs bench/native/wake.c's device-worker shape (an
// application thread hands each message to a worker thread through a shared word, the worker sends it
// over UDP to an echoing process and hands the echo back) and its direct UDP ping-pong, each once
// blocking (eventfd, futex, epoll_wait) and once spinning (every thread looks in a loop and yields the
// CPU between empty looks, as the worker's and the application's looks do), BENCH_FLOOR_ITERS (2000)
// round trips each at BENCH_ADDR_A, right after the round's round trips: what the two thread hand-offs
// add with no user-space work, set round by round against the single-thread device's round trip — the
// best worker/single ratio here
const FLOOR = process.env.BENCH_FLOOR !== "0";
const FLOOR_ITERS = Number(process.env.BENCH_FLOOR_ITERS ?? 2000);
// each goodput run posts WRITEs for this long (ms), then waits for the last completion: long beside the
// load's period (5 ms) and the window (8 MiB), so that one run is hundreds of load periods
const GOODPUT_MS = Number(process.env.BENCH_GOODPUT_MS ?? 600);
/** each device's unrecorded warm-up run before the rounds (ms) */
const WARM_MS = Math.min(GOODPUT_MS, 200);
const SMALL_OPS = Number(process.env.BENCH_SMALL_OPS ?? 5000);
const PINGS = Number(process.env.BENCH_PINGS ?? 2000);
// the round trips of a round go in blocks of this many pings per device, the devices taking turns
const RTT_BLOCK = Number(process.env.BENCH_RTT_BLOCK ?? 100);
const LOAD_MS = Number(process.env.BENCH_LOAD_MS ?? 4);
const LOAD_PERIOD_MS = Number(process.env.BENCH_LOAD_PERIOD_MS ?? 5);
const ACCESS = Access.LOCAL_WRITE | Access.REMOTE_WRITE;
const A = process.env.BENCH_ADDR_A ?? "127.0.10.50";
const B = process.env.BENCH_ADDR_B ?? "127.0.10.51";
const MR_BYTES = DEPTH * SIZE;
const CPUS = availableParallelism();
// no completion for this long (s): both processes print where every device stands (control block,
// rings, QP state, port, link, timer) and the bench exits 3 instead of hanging (0: no watchdog)
const WATCHDOG_S = Number(process.env.BENCH_WATCHDOG_S ?? 60);

// the worker's spin before it sleeps (µs, openDevice's workerSpinUs): the first is the worker device of
// every figure; each further one adds a worker device whose round trip is measured beside it
const SPINS = (process.env.BENCH_SPINS ?? "").split(",").filter((x) => x !== "").map(Number);
// BENCH_ACK_HOLD=1: one more worker device, with workerAckHold (held ACKs across the threads), its round trip beside
const ACK_HOLD = process.env.BENCH_ACK_HOLD === "1";
// BENCH_VARIANTS="appSpin=60;watchOnly=1;appSpin=60,spin=50" ("" none): one more worker device per variant
// (";" between variants), its round trip and goodput beside the first's: appSpin the application
// thread's look at an awaited CQ (µs, setWorkerAppSpin), watchOnly=1 the worker's notifies filtered by
// the watch list (the worker's "tune"), spin the worker's doorbell spin (µs, workerSpinUs), answer its
// look at the socket for a request's answer (µs, workerAnswerSpinUs; on Node 200 by default), appYield=1|0
// the application's look yielding between looks or not (workerAppSpinYield; on Node it yields by default), busyPoll the worker's datapath busy poll (µs,
// SOFTROCE_BUSY_POLL_US at its open), appShare the share of wall time the application's looks may take (%, setWorkerAppSpin; APP_SPIN_SHARE); BENCH_BASE="appSpin=0" the same for the first worker device
const VARIANT_KEYS = ["appSpin", "spin", "answer", "busyPoll", "appShare"];
const parseVariant = (v) => Object.fromEntries(v.split(",").filter((x) => x).map((kv) => {
  const [k, x] = kv.split("=");
  const ok = k === "watchOnly" ? x === "1" : k === "appYield" ? x === "0" || x === "1" : VARIANT_KEYS.includes(k) && /^[0-9]+$/.test(x ?? "");
  if (!ok) throw new RangeError(`BENCH_VARIANTS: ${kv} (appSpin=<µs>, watchOnly=1, spin=<µs>, answer=<µs>, appYield=0|1, busyPoll=<µs>, appShare=<%>)`);
  return [k, Number(x)];
}));
// BENCH_AB=1: the A/B of the round trip's levers in one run (docs/PERFORMANCE.md, "The levers, and the
// datapath's busy poll, side by side"): a second single-thread device with the datapath's busy poll
// (SOFTROCE_BUSY_POLL_US=BENCH_AB_BUSY_POLL, 200), and beside the default worker device (on Node the look
// for the answer and the application's yielding look are on by default): the worker with that busy
// poll, the worker with the levers (BENCH_AB_LEVERS: the doorbell spin too), the levers with the busy
// poll, and the worker without the default levers (BENCH_AB_PLAIN: answer=0,appYield=0); every worker's
// round trip is set against both single-thread devices, with the CPU each round trip cost (this
// process and the peer)
const AB = process.env.BENCH_AB === "1";
const AB_BUSY_POLL = Number(process.env.BENCH_AB_BUSY_POLL ?? 200);
const AB_LEVERS = process.env.BENCH_AB_LEVERS ?? "spin=200,answer=200,appYield=1";
const AB_PLAIN = process.env.BENCH_AB_PLAIN ?? "answer=0,appYield=0";
// by default one: the application's look off (appSpin=0) beside the default device (on Node the look is
// on, 200 µs: NODE_APP_SPIN_US), so that every run shows what it gains
const VARIANTS = (process.env.BENCH_VARIANTS ?? (AB ? `busyPoll=${AB_BUSY_POLL};${AB_LEVERS};${AB_LEVERS},busyPoll=${AB_BUSY_POLL};${AB_PLAIN}` : "appSpin=0"))
  .split(";").filter((x) => x !== "").map(parseVariant);
const BASE = parseVariant(process.env.BENCH_BASE ?? "");
// the peer's sides: the single-thread device, the worker devices, then (BENCH_AB) the single-thread device with the busy poll
const EXTRA = Math.max(0, SPINS.length - 1) + (ACK_HOLD ? 1 : 0) + VARIANTS.length + (AB ? 1 : 0);
// BENCH_VERBOSE=1: the worker devices open with a stage trace (SOFTROCE_WORKER_TRACE) and the round
// trip is laid out stage by stage (median µs after the SEND's post), beside the peer's own stamps
// and the single-thread device's; the trace costs a little, so the verbose run's figures are not the ones to quote
const VERBOSE = process.env.BENCH_VERBOSE === "1";
/** µs on CLOCK_MONOTONIC: the worker trace's clock on Node, in this process and in the peer */
const monoUs = () => Number(process.hrtime.bigint()) / 1000;

/** With env `name` set to `value` (undefined: as it is) while `fn` runs. */
async function withEnv(name, value, fn) {
  if (value === undefined) return fn();
  const was = process.env[name];
  process.env[name] = String(value);
  try {
    return await fn();
  } finally {
    if (was === undefined) delete process.env[name];
    else process.env[name] = was;
  }
}

async function side(address, worker, workerSpinUs, workerAckHold, more = {}) {
  const d = await withEnv("SOFTROCE_BUSY_POLL_US", more.busyPoll, () => openDevice({
    address, port: 0, worker, workerSpinUs, workerAckHold, workerAnswerSpinUs: more.answer, workerAppSpinYield: more.appYield === undefined ? undefined : more.appYield === 1,
    activeMtu: Mtu.MTU_4096, mrArenaBytes: MR_BYTES + (1 << 20),
  }));
  const pd = d.allocPd();
  const cq = d.createCq(DEPTH * 4);
  const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: DEPTH * 2, maxRecvWr: DEPTH * 2, maxSendSge: 1, maxRecvSge: 1 } });
  const mr = pd.regMr(MR_BYTES, ACCESS);
  const me = { qpn: qp.qpNum, psn: (Math.random() * 0xffffff) | 0, port: udpPortOf(d), rkey: mr.rkey, addr: mr.addr.toString(), address };
  const connect = (peer) =>
    connectQp(qp, { qpNum: peer.qpn, psn: peer.psn, gid: `::ffff:${peer.address}`, port: peer.port }, { sqPsn: me.psn, pathMtu: Mtu.MTU_4096, qpAccessFlags: ACCESS });
  return { d, cq, qp, mr, me, connect, name: `${worker ? "worker" : "single"} ${address}` };
}

// ---- stall diagnosis (the watchdog)
/** An object's own number/string/boolean fields. */
function fields(o) {
  return o ? Object.fromEntries(Object.entries(o).filter(([, v]) => ["number", "string", "boolean"].includes(typeof v))) : undefined;
}
/** Where one device stands: its rings read first (nothing woken), then its QP, port, link, worker. */
async function dumpSide(s) {
  const m = s.d.mem;
  const ring = (r) => r && { prod: m.loadIndex(r + Ring.PROD), cons: m.loadIndex(r + Ring.CONS), cap: m.u32(r + Ring.CAP) };
  const out = { name: s.name, cq: ring(s.cq.ring), sq: ring(s.qp.sq), rq: ring(s.qp.rq), cqWaiters: s.cq.waiters?.length };
  if (s.d.worker) out.worker = await workerDebugOf(s.d);
  else {
    const core = s.d.core;
    const link = s.d.port?.link;
    out.port = fields(s.d.port);
    out.portStats = s.d.port?.stats;
    out.budget = s.d.port?.budget();
    out.link = fields(link);
    out.linkStats = link?.stats;
    out.datapath = link?.datapathStats?.();
    out.now = s.d.now?.();
    out.nextDeadline = core.next_deadline?.();
    out.enginePending = core.engine_pending?.();
  }
  try {
    const { attr } = s.qp.query();
    out.qp = fields(attr);
  } catch (e) {
    out.qp = String(e);
  }
  try {
    out.counters = Object.fromEntries(Object.entries(s.d.queryCounters()).filter(([, v]) => v));
  } catch (e) {
    out.counters = String(e);
  }
  return out;
}
const bigintJson = (_k, v) => (typeof v === "bigint" ? v.toString() : v);

// ---- child: the peer of both parent devices; echoes every SEND it receives (64 B) back
async function child() {
  const sides = [];
  // BENCH_VERBOSE: when each echo's SEND arrived and when its answer was posted (monotonic µs), per side
  const peerStamps = [];
  for (let i = 0; i < 2 + EXTRA; i++) sides.push(await side(B, false));
  const serve = (s, k) => {
    const stamps = (peerStamps[k] = []);
    for (let i = 0; i < DEPTH; i++) s.qp.postRecv({ wrId: BigInt(i), sgList: [s.mr.sge(i * 64, 64)] });
    (async () => {
      for (;;) {
        const wc = await s.cq.next();
        if (wc.status !== WcStatus.SUCCESS) return;
        if (wc.opcode !== 128) continue; // a RECV: echo it, repost the receive
        const got = VERBOSE && wc.byteLen === 64 ? monoUs() : 0;
        s.qp.postRecv({ wrId: wc.wrId, sgList: [s.mr.sge(Number(wc.wrId) * 64, 64)] });
        s.qp.postSend({ wrId: 1000n, opcode: WrOpcode.SEND, sendFlags: 0, sgList: [s.mr.sge(Number(wc.wrId) * 64, 64)] });
        if (got && stamps.length < 1 << 20) stamps.push(got, monoUs());
      }
    })();
  };
  process.on("message", (msg) => {
    if (msg.type === "peers") {
      msg.peers.forEach((p, i) => sides[i].connect(p));
      sides.forEach((s, k) => serve(s, k));
      process.send({ type: "ready" });
    } else if (msg.type === "dump") {
      (async () => {
        const all = [];
        for (const s of sides) all.push(await dumpSide(s));
        console.error(`[watchdog] peer (pid ${process.pid}):\n${JSON.stringify(all, bigintJson, 1)}`);
        process.send({ type: "dumped" });
      })();
    } else if (msg.type === "stamps") {
      // the stamps of side msg.side since the last ask
      process.send({ type: "stamps", stamps: peerStamps[msg.side].splice(0) });
    } else if (msg.type === "exit") {
      for (const s of sides) s.d.close();
      process.disconnect();
    }
  });
  // the parent is gone (it failed, or a timeout ended it): so is the peer
  process.on("disconnect", () => process.exit(0));
  process.send({ type: "hello", sides: sides.map((s) => s.me) });
}

// ---- CPU accounting (Linux; undefined elsewhere)
/** [ns on a CPU, ns runnable waiting] of a task's schedstat. */
function schedstat(path) {
  try {
    const [run, wait] = readFileSync(path, "utf8").split(" ").map(Number);
    return [run, wait];
  } catch {
    return undefined;
  }
}
/** The summed schedstat of every thread of process `pid`. */
function processSched(pid) {
  let run = 0, wait = 0;
  try {
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      const x = schedstat(`/proc/${pid}/task/${t}/schedstat`);
      if (x) (run += x[0]), (wait += x[1]);
    }
  } catch {
    return undefined;
  }
  return [run, wait];
}
/** ns the whole machine's CPUs were busy (/proc/stat: all but idle and iowait). */
function machineBusyNs() {
  try {
    const f = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
    const ticks = f.reduce((a, b) => a + b, 0) - f[3] - (f[4] ?? 0);
    return (ticks * 1e9) / 100; // USER_HZ
  } catch {
    return undefined;
  }
}
/** ns on a CPU of every thread of process `pid`, by thread id, with its name (BENCH_THREADS). */
function threadsSched(pid) {
  const out = new Map();
  try {
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      const x = schedstat(`/proc/${pid}/task/${t}/schedstat`);
      let comm = "?";
      try {
        comm = readFileSync(`/proc/${pid}/task/${t}/comm`, "utf8").trim();
      } catch {}
      if (x) out.set(t, { comm, run: x[0] });
    }
  } catch {}
  return out;
}
// BENCH_THREADS=1: the first worker device's goodput runs print the cores each thread of this process and of the peer used
const THREADS = process.env.BENCH_THREADS === "1";
/** Cores per thread between two threadsSched snapshots over `ms`, the busiest first ("name tid cores"). */
function threadsBetween(a, b, ms) {
  const rows = [];
  for (const [t, x] of b) rows.push([x.comm, t, (x.run - (a.get(t)?.run ?? 0)) / (ms * 1e6)]);
  return rows.filter((r) => r[2] >= 0.005).sort((p, q) => q[2] - p[2]).map(([c, t, v]) => `${c}#${t} ${v.toFixed(2)}`).join(", ");
}

/** A snapshot of the threads a goodput run involves. */
async function cpuSnapshot(s, peerPid) {
  const worker = s.d.worker ? (await s.d.port.fetchStats()).thread : undefined;
  const threads = THREADS ? { here: threadsSched(process.pid), peer: threadsSched(peerPid) } : undefined;
  return { t: performance.now(), app: schedstat("/proc/thread-self/schedstat"), proc: processSched(process.pid), worker: worker && [worker.runNs, worker.waitNs], peer: processSched(peerPid), machine: machineBusyNs(), threads };
}
/** Cores (0..CPUs) each part used between two snapshots: run and runnable-waiting. */
function cpuBetween(a, b) {
  const ns = (b.t - a.t) * 1e6;
  if (!a.app || !b.app || !a.proc || !b.peer || a.machine === undefined) return undefined;
  const d = (k, i) => (b[k] && a[k] ? (b[k][i] - a[k][i]) / ns : 0);
  const app = d("app", 0), worker = d("worker", 0), peer = d("peer", 0), proc = d("proc", 0);
  return {
    app, worker, peer, rest: proc - app - worker, machine: Math.max(0, (b.machine - a.machine) / ns - proc - peer),
    appWait: d("app", 1), workerWait: d("worker", 1), peerWait: d("peer", 1),
  };
}

// ---- parent
/** When a completion last came, and what the bench was doing (the watchdog's). */
let progressAt = performance.now();
let doing = "start";
function alive(what) {
  progressAt = performance.now();
  doing = what;
}

/** Dumps every device of both processes once no completion came for WATCHDOG_S, then exits 3. */
function watchdog(sides, child) {
  if (!(WATCHDOG_S > 0)) return;
  const t = setInterval(async () => {
    if (performance.now() - progressAt < WATCHDOG_S * 1000) return;
    clearInterval(t);
    console.error(`[watchdog] no completion for ${WATCHDOG_S} s at ${new Date().toISOString()} while: ${doing}`);
    const all = [];
    for (const s of sides) all.push(await dumpSide(s).catch((e) => ({ name: s.name, error: String(e) })));
    console.error(`[watchdog] this process (pid ${process.pid}):\n${JSON.stringify(all, bigintJson, 1)}`);
    child.send({ type: "dump" });
    await Promise.race([once(child, "message"), new Promise((r) => setTimeout(r, 5000))]);
    child.kill();
    process.exit(3);
  }, Math.min(1000, (WATCHDOG_S * 1000) / 4));
  t.unref();
}

/** The synthetic load: LOAD_MS of busy CPU in a timer callback every LOAD_PERIOD_MS while on. */
function startLoad() {
  let on = true;
  const tick = () => {
    if (!on) return;
    const end = performance.now() + LOAD_MS;
    while (performance.now() < end);
    setTimeout(tick, Math.max(0, LOAD_PERIOD_MS - LOAD_MS));
  };
  setTimeout(tick, 0);
  return () => (on = false);
}

async function drain(s, n, onWc) {
  let done = 0;
  while (done < n) {
    let batch = s.cq.poll(64);
    if (!batch.length) batch = [await s.cq.next()];
    for (const wc of batch) {
      if (wc.status !== WcStatus.SUCCESS) throw new Error(`completion status ${wc.status}`);
      done++;
      onWc?.(wc);
    }
  }
}

/** MB/s (10^6 B/s) of 64 KiB RC WRITEs, posted for GOODPUT_MS. */
async function goodput(s, peer, busy, peerPid, warmUp = false) {
  const runMs = warmUp ? WARM_MS : GOODPUT_MS;
  const cpu0 = await cpuSnapshot(s, peerPid);
  const stop = busy ? startLoad() : () => {};
  let posted = 0, done = 0, open = true;
  const before = s.d.worker ? workerStatsOf(s.d) : undefined;
  const t0 = performance.now();
  // what the window allows, posted as one list: one doorbell per batch
  const post = () => {
    if (open && performance.now() - t0 >= runMs) open = false;
    const wrs = [];
    while (open && posted - done < DEPTH) {
      const slot = posted % DEPTH;
      wrs.push({ wrId: BigInt(posted++), opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED, sgList: [s.mr.sge(slot * SIZE, SIZE)],
        rdma: { remoteAddr: BigInt(peer.addr) + BigInt(slot * SIZE), rkey: peer.rkey } });
    }
    if (wrs.length) s.qp.postSend(wrs);
  };
  post();
  while (done < posted) {
    let batch = s.cq.poll(64);
    if (!batch.length) batch = [await s.cq.next()];
    for (const wc of batch) {
      if (wc.status !== WcStatus.SUCCESS) throw new Error(`RC WRITE status ${wc.status}`);
      done++;
    }
    alive(`goodput ${s.name} ${busy ? "busy" : "idle"}: posted ${posted}, completed ${done}`);
    post();
  }
  const mbps = (SIZE * done) / ((performance.now() - t0) * 1000);
  stop();
  const cpu1 = await cpuSnapshot(s, peerPid);
  const cpu = cpuBetween(cpu0, cpu1);
  if (THREADS && cpu0.threads && !warmUp) {
    const ms = cpu1.t - cpu0.t;
    console.log(`  threads, ${s.name}${s.variant ? ` ${s.variant}` : ""} ${busy ? "busy" : "idle"} (cores): here: ${threadsBetween(cpu0.threads.here, cpu1.threads.here, ms)}; peer: ${threadsBetween(cpu0.threads.peer, cpu1.threads.peer, ms)}`);
  }
  if (warmUp) return mbps;
  if (cpu) (s.cpu ??= { idle: [], busy: [] })[busy ? "busy" : "idle"].push({ ...cpu, mbps });
  (s.messages ??= []).push(done);
  if (before && !s.goodputWakeups?.[busy ? 1 : 0]) {
    const after = workerStatsOf(s.d);
    const per = (k) => ((after[k] - before[k]) / done).toFixed(2);
    (s.goodputWakeups ??= [])[busy ? 1 : 0] = `doorbells ${per("doorbells")}, worker wake-ups ${per("workerWakeups")}, app wake-ups ${per("appWakeups")}, device runs ${per("progress")}, app spin hits ${per("appSpinHits")} misses ${per("appSpinMisses")} µs ${per("appSpinUs")}`;
  }
  return mbps;
}

/** µs of application-thread wall time inside postSend and poll per 64 B WRITE. */
async function postPollCost(s, peer) {
  let posted = 0, done = 0, spent = 0;
  const wr = (i) => ({ wrId: BigInt(i), opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED, sgList: [s.mr.sge((i % 32) * 64, 64)], rdma: { remoteAddr: BigInt(peer.addr) + BigInt((i % 32) * 64), rkey: peer.rkey } });
  while (done < SMALL_OPS) {
    let t = performance.now();
    while (posted < SMALL_OPS && posted - done < 32) s.qp.postSend(wr(posted++));
    const batch = s.cq.poll(64);
    spent += performance.now() - t;
    if (!batch.length) {
      const wc = await s.cq.next();
      if (wc.status !== WcStatus.SUCCESS) throw new Error(`status ${wc.status}`);
      done++;
    }
    for (const wc of batch) {
      if (wc.status !== WcStatus.SUCCESS) throw new Error(`status ${wc.status}`);
      done++;
    }
    alive(`post+poll ${s.name}: posted ${posted}, completed ${done}`);
  }
  return (spent * 1000) / SMALL_OPS;
}

/**
 * A round's 64 B SEND round trips (echoed by the child) on every device in `devices`, interleaved in
 * blocks of RTT_BLOCK pings, so that every device sees the same minutes of the machine's load;
 * returns each device's median µs. Two devices alternate block by block; three or more (BENCH_SPINS,
 * BENCH_ACK_HOLD, the busy-poll single) go in each block's seeded order (order-common.mjs): a
 * reversal keeps the middle one behind the same neighbour in every block.
 */
let rttBlocks = 0;
async function rttRound(devices, child, peerIndex) {
  const n = Math.max(1, Math.ceil(PINGS / RTT_BLOCK));
  const per = new Map(devices.map((s) => [s, { samples: [], before: s.d.worker ? workerStatsOf(s.d) : undefined, marks: [], hereNs: 0, peerNs: 0, cpuPings: 0 }]));
  const traceOf = (s) => (VERBOSE ? workerTraceOf(s.d) : undefined);
  for (const s of devices) {
    const trace = traceOf(s);
    if (trace) {
      trace.reset();
      trace.followedRing = s.cq.ring;
    }
  }
  let ping = 0;
  for (let b = 0; b < n; b++) {
    const order = devices.length > 2 ? inRoundOrder(devices, rttBlocks++) : b % 2 ? [...devices].reverse() : devices;
    const count = Math.min(RTT_BLOCK, PINGS - b * RTT_BLOCK);
    for (const s of order) {
      const x = per.get(s);
      const here0 = processSched(process.pid), peer0 = processSched(child.pid);
      await pings(s, count, ping, x, traceOf(s));
      const here1 = processSched(process.pid), peer1 = processSched(child.pid);
      if (here0 && here1 && peer0 && peer1) (x.hereNs += here1[0] - here0[0]), (x.peerNs += peer1[0] - peer0[0]), (x.cpuPings += count);
    }
    ping += count;
  }
  const out = new Map();
  for (const s of devices) {
    const x = per.get(s);
    if (x.before) {
      const after = workerStatsOf(s.d);
      const f = (k) => ((after[k] - x.before[k]) / PINGS).toFixed(2);
      s.wakeups.push(`app spin hits ${f("appSpinHits")} misses ${f("appSpinMisses")} skips ${f("appSpinSkips")} µs ${f("appSpinUs")}, doorbells ${f("doorbells")}, app notifies ${f("appNotifies")}, worker wake-ups ${f("workerWakeups")}, spin hits ${f("spinHits")} misses ${f("spinMisses")} gated ${f("spinGated")}, answer look hits ${f("answerSpinHits")} misses ${f("answerSpinMisses")} gated ${f("answerSpinGated")}, worker notifies ${f("workerNotifies")}, app wake-ups ${f("appWakeups")}, device runs ${f("progress")}, ACK holds ${f("ackHolds")} (joined by the answer ${f("ackHoldsJoined")})`);
    }
    // CPU per round trip (µs, on a CPU): this process (the application thread, the worker threads), the peer process
    if (x.cpuPings) {
      (s.cpuHere ??= []).push(x.hereNs / x.cpuPings / 1000);
      (s.cpuPeer ??= []).push(x.peerNs / x.cpuPings / 1000);
    }
    if (VERBOSE) {
      child.send({ type: "stamps", side: peerIndex(s) });
      const [{ stamps }] = await once(child, "message");
      const trace = traceOf(s);
      (s.stages ??= []).push(trace ? workerStages(trace, stamps) : singleStages(x.marks, stamps));
    }
    out.set(s, median(x.samples));
  }
  return out;
}

/** `count` round trips on device `s` (ping numbers from `first`), their µs into `acc.samples`. */
async function pings(s, count, first, acc, trace) {
  // BENCH_VERBOSE: the worker device's trace (its threads stamp their stages), this thread's marks in it
  const prod = () => s.d.mem.loadIndex(s.cq.ring + Ring.PROD);
  for (let i = first; i < first + count; i++) {
    if (trace) trace.mark(TraceStage.PING);
    s.qp.postRecv({ wrId: 7n, sgList: [s.mr.sge(4096, 64)] });
    if (trace) trace.mark(TraceStage.POST, prod());
    const t0 = performance.now();
    const m0 = VERBOSE && !trace ? monoUs() : 0;
    s.qp.postSend({ wrId: BigInt(i), opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [s.mr.sge(0, 64)] });
    await drain(s, 2);
    if (trace) trace.mark(TraceStage.RESOLVED);
    if (m0) acc.marks.push(m0, monoUs());
    alive(`round trip ${s.name}: ping ${i + 1}`);
    acc.samples.push((performance.now() - t0) * 1000);
  }
}

const median = (xs) => (xs.length ? [...xs].sort((a, b) => a - b)[xs.length >> 1] : NaN);

/** The first of `stamps` (time order) from index `from` on with `stage` (and `ok(arg)`), or undefined. */
function find(stamps, from, stage, ok = () => true) {
  for (let i = from; i < stamps.length; i++) if (stamps[i].stage === stage && ok(stamps[i].arg)) return i;
  return undefined;
}

/**
 * A worker device's round trips, stage by stage: per ping (PING to the next PING) the time of each
 * stage after the SEND's post (POST), from the trace and the peer's stamps (its echo's SEND arrived,
 * its answer posted); returns each stage's times and the stamp counts per ping.
 */
function workerStages(trace, peerStamps) {
  const all = trace.stamps();
  const out = { n: 0, at: {}, count: {} };
  const at = (k, v) => (out.at[k] ??= []).push(v);
  const starts = [];
  all.forEach((x, i) => x.stage === TraceStage.PING && starts.push(i));
  let pi = 0;
  for (let k = 0; k < starts.length; k++) {
    const seg = all.slice(starts[k], starts[k + 1] ?? all.length);
    const p = find(seg, 0, TraceStage.POST);
    const end = find(seg, 0, TraceStage.RESOLVED);
    if (p === undefined || end === undefined) continue;
    out.n++;
    const t0 = seg[p].t;
    const base = seg[p].arg;
    const mark = (name, i) => i !== undefined && at(name, seg[i].t - t0);
    mark("doorbell notify (the RQ's or the SQ's, whichever woke the worker)", find(seg, 0, TraceStage.APP_NOTIFY));
    const woken = find(seg, 0, TraceStage.W_WOKEN);
    mark("worker awake", woken);
    const sent = find(seg, p, TraceStage.W_SEND);
    mark("datagram sent", sent);
    // the peer's stamps of this ping: the first pair after the post
    while (pi + 1 < peerStamps.length && peerStamps[pi] < t0) pi += 2;
    if (pi + 1 < peerStamps.length && peerStamps[pi] < seg[end].t) {
      at("peer: SEND completed", peerStamps[pi] - t0);
      at("peer: answer posted", peerStamps[pi + 1] - t0);
    }
    const ack = sent === undefined ? undefined : find(seg, sent, TraceStage.W_RECV);
    mark("first datagram back (the ACK)", ack);
    const cqe1 = find(seg, p, TraceStage.W_PROGRESS, (a) => a - base >= 1);
    mark("send CQE (worker run over)", cqe1);
    const woke1 = cqe1 === undefined ? undefined : find(seg, cqe1, TraceStage.APP_WOKEN);
    mark("app woken after it", woke1);
    const cqe2 = find(seg, p, TraceStage.W_PROGRESS, (a) => a - base >= 2);
    let r2;
    if (cqe2 !== undefined) {
      for (let i = cqe2; i >= p; i--) if (seg[i].stage === TraceStage.W_RECV) { r2 = i; break; }
      mark("reply received", r2);
    }
    mark("recv CQE (worker run over)", cqe2);
    const woke2 = cqe2 === undefined || cqe2 === cqe1 ? undefined : find(seg, cqe2, TraceStage.APP_WOKEN);
    mark("app woken after it (2nd)", woke2);
    let look;
    for (let i = end; i >= p; i--) if (seg[i].stage === TraceStage.APP_SPIN_HIT) { look = i; break; }
    if (look !== undefined && (r2 === undefined || look > r2)) mark("app look caught the answer", look);
    mark("promise resolved", end);
    for (const x of seg) out.count[x.stage] = (out.count[x.stage] ?? 0) + 1;
  }
  return out;
}

/** The single-thread device's round trips: the peer's stamps after the post, and the end. */
function singleStages(marks, peerStamps) {
  const out = { n: 0, at: {}, count: {} };
  const at = (k, v) => (out.at[k] ??= []).push(v);
  let pi = 0;
  for (let k = 0; k + 1 < marks.length; k += 2) {
    const t0 = marks[k];
    out.n++;
    while (pi + 1 < peerStamps.length && peerStamps[pi] < t0) pi += 2;
    if (pi + 1 < peerStamps.length && peerStamps[pi] < marks[k + 1]) {
      at("peer: SEND completed", peerStamps[pi] - t0);
      at("peer: answer posted", peerStamps[pi + 1] - t0);
    }
    at("promise resolved", marks[k + 1] - t0);
  }
  return out;
}

/** Prints stage tables (one per round): median µs after the post of each stage, and the step from the one before. */
function printStages(name, rounds) {
  rounds.forEach((r, i) => {
    console.log(`  stages, ${name}, round ${i + 1} (${r.n} round trips; median µs after the SEND's post; step from the stage above):`);
    let prev = 0;
    for (const [k, xs] of Object.entries(r.at)) {
      const m = median(xs);
      console.log(`    ${m.toFixed(1).padStart(7)}  ${(m - prev >= 0 ? "+" : "") + (m - prev).toFixed(1).padStart(6)}  ${k}${xs.length < r.n ? ` (in ${xs.length} of ${r.n})` : ""}`);
      prev = m;
    }
    const per = Object.entries(r.count).map(([st, c]) => `${Object.keys(TraceStage).find((x) => TraceStage[x] === Number(st))} ${(c / r.n).toFixed(2)}`);
    if (per.length) console.log(`    stamps per round trip: ${per.join(", ")}`);
  });
}

const stat = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return `min ${s[0].toFixed(2)} / median ${s[s.length >> 1].toFixed(2)} / max ${s[s.length - 1].toFixed(2)}`;
};

async function parent() {
  if (VERBOSE) process.env.SOFTROCE_WORKER_TRACE ??= "1";
  // BENCH_PEER_FLUSH=defer: the peer sends a received SEND's ACK with its echo in one batch (SOFTROCE_FLUSH)
  // BENCH_PEER_BUSY_POLL=0: the peer's datapath busy poll (SOFTROCE_BUSY_POLL_US: "adaptive" by default, a
  // spinning thread on one of the two CPUs after each datagram) set for the peer alone
  const peerEnv = { ...process.env };
  if (process.env.BENCH_PEER_FLUSH) peerEnv.SOFTROCE_FLUSH = process.env.BENCH_PEER_FLUSH;
  if (process.env.BENCH_PEER_BUSY_POLL) peerEnv.SOFTROCE_BUSY_POLL_US = process.env.BENCH_PEER_BUSY_POLL;
  // BENCH_PEER_CPUS=1: the peer process pinned to those CPUs (taskset -c), e.g. with this one under taskset -c 0
  const pin = process.env.BENCH_PEER_CPUS ? { execPath: "taskset", execArgv: ["-c", process.env.BENCH_PEER_CPUS, process.execPath] } : {};
  const c = fork(new URL(import.meta.url).pathname, ["child"], { stdio: "inherit", env: peerEnv, ...pin });
  const [hello] = await once(c, "message");
  const single = await side(A, false);
  const workers = [];
  const configs = (SPINS.length ? SPINS : [undefined]).map((spin, i) => ({ spin, hold: false, variant: i ? {} : BASE }));
  if (ACK_HOLD) configs.push({ spin: configs[0].spin, hold: true, variant: {} });
  for (const variant of VARIANTS) configs.push({ spin: variant.spin ?? configs[0].spin, hold: false, variant });
  for (const { spin, hold, variant } of configs) {
    const w = await side(A, true, spin, hold, variant);
    if (!w.d.worker) throw new Error(`no worker: ${w.d.workerFallback}`);
    w.spinUs = spin ?? process.env.SOFTROCE_WORKER_SPIN_US ?? DEFAULT_SPIN_US;
    w.hold = hold;
    if (variant.appSpin !== undefined || variant.appShare !== undefined) {
      if (variant.appShare !== undefined && !(variant.appShare > 0 && variant.appShare <= 100)) throw new RangeError(`BENCH_VARIANTS: appShare=${variant.appShare} (1..100 %)`);
      setWorkerAppSpin(w.d, variant.appSpin ?? (await workerDebugOf(w.d)).app.spin.boundUs, variant.appShare === undefined ? undefined : variant.appShare / 100);
    }
    if (variant.watchOnly === 1) await workerSessionOf(w.d).request("tune", { watchOnly: true });
    w.variant = Object.entries(variant).map(([k, v]) => `${k}=${v}`).join(",");
    w.rtts = [];
    w.wakeups = [];
    workers.push(w);
  }
  const worker = workers[0];
  // BENCH_AB: the single-thread device with the datapath's busy poll (round trips only), the peer's last side
  const singleBp = AB ? await side(A, false, undefined, undefined, { busyPoll: AB_BUSY_POLL }) : undefined;
  if (singleBp) singleBp.name = `single ${A} busyPoll=${AB_BUSY_POLL}`;
  // BENCH_APP_CPU=0: the application thread alone on that CPU, the worker threads and the peer on the
  // others (taskset per thread): does the worker depend on the application thread, or only on CPU?
  const pinned = process.env.BENCH_APP_CPU !== undefined;
  if (pinned) {
    const app = Number(process.env.BENCH_APP_CPU);
    const rest = Array.from({ length: CPUS }, (_, i) => i).filter((i) => i !== app).join(",");
    if (!(Number.isInteger(app) && app >= 0 && app < CPUS) || !rest) throw new RangeError(`BENCH_APP_CPU ${process.env.BENCH_APP_CPU}: a CPU 0..${CPUS - 1} of a machine with 2 or more`);
    execFileSync("taskset", ["-p", "-c", String(app), String(process.pid)], { stdio: "ignore" });
    for (const w of workers) {
      const tid = (await w.d.port.fetchStats()).thread?.tid;
      if (!tid) throw new Error("BENCH_APP_CPU: the worker thread's id is unknown (Linux only)");
      execFileSync("taskset", ["-p", "-c", rest, String(tid)], { stdio: "ignore" });
    }
    execFileSync("taskset", ["-a", "-p", "-c", rest, String(c.pid)], { stdio: "ignore" });
    console.log(`pinned: application thread on CPU ${app}; worker threads and the peer on CPU ${rest}`);
  }
  watchdog([single, ...workers, ...(singleBp ? [singleBp] : [])], c);
  c.send({ type: "peers", peers: [single.me, ...workers.map((w) => w.me), ...(singleBp ? [singleBp.me] : [])] });
  await once(c, "message");
  single.connect(hello.sides[0]);
  workers.forEach((w, i) => w.connect(hello.sides[1 + i]));
  singleBp?.connect(hello.sides[1 + workers.length]);
  const [peerS, peerW] = hello.sides;
  const r = { wIdle: [], wBusy: [], sIdle: [], sBusy: [], wCost: [], sCost: [], wRtt: worker.rtts, sRtt: [] };
  // one unrecorded run per device first: a worker thread's code is cold (its own isolate) and every
  // MR and ring page untouched until its first run, which would otherwise land in round 1's idle figure
  for (const [s, p] of [[single, peerS], ...workers.map((w, i) => [w, hello.sides[1 + i]])]) await goodput(s, p, false, c.pid, true);
  // pinned, the floor's processes would inherit the application thread's one CPU (spawned from it),
  // and its spinning threads would take turns on that CPU: a figure of nothing, so it is left out
  if (FLOOR && pinned) console.log("(the floor in C is left out: BENCH_APP_CPU pins this thread, and the floor's processes would inherit its one CPU)");
  const floor = FLOOR && !pinned ? openFloor("worker", FLOOR_ITERS, A) : undefined;
  for (let round = 0; round < ROUNDS; round++) {
    // alternate which goes first, so drift in the machine's load does not favour one
    const order = round % 2 ? [["w", worker, peerW], ["s", single, peerS]] : [["s", single, peerS], ["w", worker, peerW]];
    // and whether the idle or the busy run goes first, so neither is always the one after a cold start
    // or after the other's traffic
    const busyFirst = round % 4 >= 2;
    for (const [k, s, p] of order) {
      for (const busy of busyFirst ? [true, false] : [false, true]) r[`${k}${busy ? "Busy" : "Idle"}`].push(await goodput(s, p, busy, c.pid));
    }
    // the further worker devices (BENCH_SPINS, BENCH_ACK_HOLD): their goodput beside, the levers on busy/idle
    const extra = workers.slice(1).map((w, i) => [w, hello.sides[2 + i]]);
    for (const [w, p] of inRoundOrder(extra, round)) {
      for (const busy of busyFirst ? [true, false] : [false, true]) (w[busy ? "busy" : "idle"] ??= []).push(await goodput(w, p, busy, c.pid));
    }
    for (const [k, s, p] of order) r[`${k}Cost`].push(await postPollCost(s, p));
    const rttOrder = [single, ...workers, ...(singleBp ? [singleBp] : [])];
    if (round % 2) rttOrder.reverse();
    const medians = await rttRound(rttOrder, c, (s) => (s === single ? 0 : s === singleBp ? 1 + workers.length : 1 + workers.indexOf(s)));
    r.sRtt.push(medians.get(single));
    floor?.round();
    if (singleBp) (singleBp.rtts ??= []).push(medians.get(singleBp));
    for (const w of workers) w.rtts.push(medians.get(w));
  }
  const per = (a, b) => a.map((x, i) => x / b[i]);
  console.log(`device in a worker vs on the application thread; 2 processes on UDP loopback; ${ROUNDS} interleaved rounds; min / median / max`);
  console.log(`machine: ${machineLine()}`);
  console.log(`RC WRITE 64 KiB posted for ${GOODPUT_MS} ms a run (${stat(worker.messages)} WRITEs), ${DEPTH} in flight, MB/s: worker idle ${stat(r.wIdle)}; worker busy ${stat(r.wBusy)}`);
  console.log(`                                          single idle ${stat(r.sIdle)}; single busy ${stat(r.sBusy)}`);
  console.log(`  (busy: ${LOAD_MS} ms of CPU every ${LOAD_PERIOD_MS} ms on the application thread)`);
  console.log(`ratio worker busy/idle: ${stat(per(r.wBusy, r.wIdle))}   (target >= 0.9)`);
  console.log(`  per WRITE, worker device (round 1): idle: ${worker.goodputWakeups[0]}; busy: ${worker.goodputWakeups[1]}`);
  if (worker.cpu) {
    const med = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
    const show = (runs) => {
      const m = (k) => med(runs.map((x) => x[k])).toFixed(2);
      return `app ${m("app")}+${m("appWait")}, worker ${m("worker")}+${m("workerWait")}, peer ${m("peer")}+${m("peerWait")}, rest of this process ${m("rest")}, rest of the machine ${m("machine")}`;
    };
    const perMsg = (k) => med(worker.cpu.idle.map((x) => (x[k] * SIZE) / x.mbps)).toFixed(0);
    console.log(`  CPU, worker device (cores of ${CPUS}, median; on a CPU + runnable waiting): idle: ${show(worker.cpu.idle)}`);
    console.log(`                                                             busy: ${show(worker.cpu.busy)}`);
    console.log(`  CPU µs per 64 KiB WRITE (idle, median): worker ${perMsg("worker")}, peer ${perMsg("peer")}, app ${perMsg("app")}`);
    // what the busy run leaves the worker and the peer, over what they used moving the idle run's bytes
    const bound = worker.cpu.busy.map((b, i) => {
      const a = worker.cpu.idle[i];
      return (CPUS - b.app - b.rest - b.machine) / (a.worker + a.peer);
    });
    console.log(`  CPU bound on worker busy/idle ((${CPUS} - app - rest - machine, busy) / (worker + peer, idle)): ${stat(bound)}`);
  }
  console.log(`ratio single busy/idle: ${stat(per(r.sBusy, r.sIdle))}   (today's device under the same load)`);
  console.log(`ratio worker busy / single busy: ${stat(per(r.wBusy, r.sBusy))}`);
  console.log(`post+poll on the application thread, 64 B WRITE, µs/op: worker ${stat(r.wCost)}; single ${stat(r.sCost)}; ratio worker/single ${stat(per(r.wCost, r.sCost))}`);
  console.log(`64 B RC SEND round trip (median of ${PINGS}), µs: worker ${stat(r.wRtt)}; single ${stat(r.sRtt)}`);
  console.log(`ratio RTT worker/single: ${stat(per(r.wRtt, r.sRtt))}   (target <= 1.2)`);
  if (floor) {
    console.log(`  the floor in C (bench/native/wake.c, application thread -doorbell- worker thread -UDP- echo; ${FLOOR_ITERS} round trips a round), over the direct UDP round trip,`);
    console.log(`  and at each round's single-thread round trip the best worker/single a worker of this shape reaches here:`);
    for (const how of WAKE_WAYS) {
      console.log(`    ${how.padEnd(5)}: the hand-offs add ${stat(floor.added[how])} µs; best worker/single ${stat(r.sRtt.map((x, i) => (x + floor.added[how][i]) / x))}`);
    }
  }
  console.log(`per round trip, worker device (spin ${worker.spinUs} µs${worker.variant ? `, ${worker.variant}` : ""}, round 1): ${worker.wakeups[0]}`);
  if (VERBOSE) {
    for (const w of workers) console.log(`  application look, worker device ${w.variant || "(default)"}: ${JSON.stringify((await workerDebugOf(w.d)).app.spin)}`);
    printStages("single-thread device", single.stages);
    for (const w of workers) printStages(`worker device (spin ${w.spinUs} µs${w.hold ? ", held ACKs" : ""}${w.variant ? `, ${w.variant}` : ""})`, w.stages);
  }
  for (const w of workers.slice(1)) {
    const name = w.variant ? `worker ${w.variant}` : w.hold ? `worker with held ACKs (spin ${w.spinUs} µs)` : `worker spin ${w.spinUs} µs`;
    console.log(`64 B RC SEND round trip, ${name}: ${stat(w.rtts)}; ratio to single ${stat(per(w.rtts, r.sRtt))}; ratio to the first worker ${stat(per(w.rtts, worker.rtts))}`);
    console.log(`  per round trip (round 1): ${w.wakeups[0]}`);
    console.log(`  RC WRITE goodput, ${name}: busy/idle ${stat(per(w.busy, w.idle))}; idle over the first worker's ${stat(per(w.idle, r.wIdle))}; busy over the first worker's ${stat(per(w.busy, r.wBusy))}`);
    console.log(`    per WRITE (round 1): idle: ${w.goodputWakeups[0]}; busy: ${w.goodputWakeups[1]}`);
  }
  if (AB) {
    // every worker device against both single-thread devices, and what a round trip cost in CPU
    const singles = [[`single`, r.sRtt], [`single busyPoll=${AB_BUSY_POLL}`, singleBp.rtts]];
    const cpu = (s) => s.cpuHere ? `CPU µs per round trip: this process ${stat(s.cpuHere)}, peer ${stat(s.cpuPeer)}` : "";
    console.log(`A/B (BENCH_AB), 64 B RC SEND round trip, µs (median of ${PINGS} per round):`);
    console.log(`  single: ${stat(r.sRtt)}; ${cpu(single)}`);
    console.log(`  single busyPoll=${AB_BUSY_POLL}: ${stat(singleBp.rtts)}; ${cpu(singleBp)}; ratio to single ${stat(per(singleBp.rtts, r.sRtt))}`);
    for (const w of workers) {
      const name = `worker${w.variant ? ` ${w.variant}` : " (default)"}`;
      console.log(`  ${name}: ${stat(w.rtts)}; ${cpu(w)}`);
      for (const [sn, srtt] of singles) console.log(`    ratio to ${sn}: ${stat(per(w.rtts, srtt))}${sn === "single" ? "   (target <= 1.2)" : ""}`);
      if (w !== worker) console.log(`    ratio to the default worker: ${stat(per(w.rtts, worker.rtts))}`);
      console.log(`    per round trip (round 1): ${w.wakeups[0]}`);
    }
  }
  // a wait whose wake-up did not come within 100-200 ms (the lost-wake-up looks ran the loop); late: it came after
  for (const w of workers) {
    const st = workerStatsOf(w.d);
    console.log(`lost wake-ups, worker device${w.variant ? ` ${w.variant}` : ""}: application ${st.appLostWakeups} (late, not lost: ${st.appLateWakeups}), worker ${st.workerLostWakeups} (late, not lost: ${st.workerLateWakeups})`);
  }
  floor?.dispose();
  c.send({ type: "exit" });
  singleBp?.d.close();
  single.d.close();
  for (const w of workers) w.d.close();
}

if (process.argv[2] === "child") await child();
else await parent();
