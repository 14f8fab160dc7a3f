// What one hop costs on this machine, without Node and with it.
//
// Between two processes, without Node: bench/native/wake.c (built here with the compiler node-gyp
// uses, $CC else `cc`) ping-pongs between two processes over loopback UDP and TCP, the receiver
// either sleeping in epoll_wait (a wake-up per message, as an event loop waits) or spinning on
// non-blocking reads (a busy poll). Printed: one-way latency median (min / median / max over the
// rounds) and the ratio block/spin, which is what a wake-up adds to a hop.
//
// Between two threads of this process, as the device worker's doorbell crosses: the application
// thread bumps a shared word and notifies the other thread, which answers by bumping a second word
// the application thread blocks on (Atomics.wait). How the woken thread sleeps:
//   futex      Atomics.wait (a bare futex: no event loop);
//   waitAsync  Atomics.waitAsync inside its event loop (the device worker's sleep: the notify posts
//              a task to its loop, which wakes libuv, which settles a promise).
// Printed: the round trip's median per round (min / median / max), and waitAsync's over futex's:
// what the event loop adds to the hop beyond the kernel's wake-up.
// Three processes, without Node: the gateway's path in C (wake.c's relay mode): the pinger over
// loopback TCP to a relay, which forwards over loopback UDP to an echoing process, both ways, every
// process blocking (or spinning and yielding). Printed: its round trip and what the relay adds over
// the direct UDP round trip of the same rounds — the floor under the tunnel's round trip beside a
// UDP device's (bench/gateway.mjs), with no user-space work at all. And the device worker's shape in
// C (wake.c's worker mode): an application thread hands each message to a worker thread through a
// shared word, the worker sends it over UDP to an echoing process and hands the echo back (blocking:
// eventfd and futex; spinning: yielding looks): the floor under the worker device's round trip beside
// a single-thread device's (bench/worker.mjs).
// Rounds interleave every case. BENCH_ROUNDS (5), BENCH_ITERS (20000; the thread cases a quarter),
// BENCH_ADDR (127.0.0.1).
import { loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";
import { WAKE_WAYS, buildWake, fmtSpread, runWake, spread } from "./native/probe.mjs";

/** The answering thread: every change of word 0 is answered by a bump of word 1; -1 ends it. */
function answerer() {
  const { sab, mode } = workerData;
  const i32 = new Int32Array(sab);
  let seen = 0;
  const answer = () => {
    const v = Atomics.load(i32, 0);
    if (v === -1) return false;
    if (v !== seen) {
      seen = v;
      Atomics.add(i32, 1, 1);
      Atomics.notify(i32, 1);
    }
    return true;
  };
  if (mode === "futex") {
    parentPort.postMessage("ready");
    while (answer()) Atomics.wait(i32, 0, seen);
    return;
  }
  const keep = setInterval(() => {}, 1000); // a pending waitAsync does not keep the loop alive
  const loop = () => {
    if (!answer()) return clearInterval(keep);
    const w = Atomics.waitAsync(i32, 0, seen);
    if (w.async) void w.value.then(loop);
    else setImmediate(loop);
  };
  loop();
  parentPort.postMessage("ready");
}

/** `iters` round trips with a thread sleeping as `mode` says; the median µs. */
async function threadRound(mode, iters) {
  const sab = new SharedArrayBuffer(8);
  const i32 = new Int32Array(sab);
  const w = new Worker(fileURLToPath(import.meta.url), { workerData: { sab, mode } });
  try {
    await new Promise((ok, no) => {
      w.once("message", ok);
      w.once("error", no);
    });
    const t = new Float64Array(iters);
    for (let i = 0; i < iters; i++) {
      const t0 = performance.now();
      Atomics.add(i32, 0, 1);
      Atomics.notify(i32, 0);
      const deadline = Date.now() + 5000;
      while (Atomics.load(i32, 1) !== i + 1) {
        Atomics.wait(i32, 1, i, 100);
        if (Date.now() > deadline) throw new Error(`thread ${mode}: no answer to round trip ${i + 1} in 5 s`);
      }
      t[i] = (performance.now() - t0) * 1000;
    }
    Atomics.store(i32, 0, -1);
    Atomics.notify(i32, 0);
    const exited = new Promise((ok) => w.once("exit", ok));
    await Promise.race([exited, new Promise((ok) => setTimeout(ok, 2000).unref())]);
    return t.sort()[iters >> 1];
  } finally {
    await w.terminate();
  }
}

async function main() {
  const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
  const ITERS = Number(process.env.BENCH_ITERS ?? 20000);
  const ADDR = process.env.BENCH_ADDR ?? "127.0.0.1";
  const wake = buildWake();
  const cc = wake.cc;
  try {
    const cases = ["udp block", "udp spin", "tcp block", "tcp spin", "relay block", "relay spin", "worker block", "worker spin"];
    const shapes = [["relay", "pinger -TCP- relay -UDP- echo (the gateway's path)"], ["worker", "application thread -doorbell- worker thread -UDP- echo (the device worker's)"]];
    const threads = ["futex", "waitAsync"];
    const got = Object.fromEntries(cases.map((c) => [c, { oneway: [], p90: [], rtt: [] }]));
    const hop = Object.fromEntries(threads.map((m) => [m, []]));
    const load = [loadavg()[0]];
    for (let r = 0; r < ROUNDS; r++) {
      for (const c of cases) {
        const [shape, how] = c.split(" ");
        const j = runWake(wake, shape, how, ITERS, ADDR);
        got[c].oneway.push(j.onewayMedianUs);
        got[c].p90.push(j.onewayP90Us ?? j.rttP90Us);
        got[c].rtt.push(j.rttMedianUs);
      }
      const order = r % 2 ? [...threads].reverse() : threads;
      for (const m of order) hop[m].push(await threadRound(m, Math.max(1, ITERS >> 2)));
    }
    load.push(loadavg()[0]);
    console.log(`one hop (C, ${cc}, two processes on loopback ${ADDR}; Node, two threads), ${ROUNDS} interleaved rounds x ${ITERS} round trips (threads ${Math.max(1, ITERS >> 2)}); load average ${load.map((x) => x.toFixed(1)).join(" -> ")}`);
    console.log("processes, one-way latency, send call to message in hand, median of each round (min / median / max), us:");
    for (const c of cases.filter((x) => /^(udp|tcp) /.test(x))) console.log(`  ${c.padEnd(10)} ${fmtSpread(spread(got[c].oneway), 1)}   (p90 ${fmtSpread(spread(got[c].p90), 1)}; round trip ${fmtSpread(spread(got[c].rtt), 1)})`);
    for (const p of ["udp", "tcp"]) {
      const ratio = got[`${p} block`].oneway.map((x, i) => x / got[`${p} spin`].oneway[i]);
      const diff = got[`${p} block`].oneway.map((x, i) => x - got[`${p} spin`].oneway[i]);
      console.log(`  ${p}: a wake-up adds ${fmtSpread(spread(diff), 1)} us to a hop (block/spin ${fmtSpread(spread(ratio))})`);
    }
    for (const [shape, what] of shapes) {
      console.log(`${what}, in C, round trip, median of each round, us:`);
      for (const w of WAKE_WAYS) {
        const rtt = got[`${shape} ${w}`].rtt, direct = got[`udp ${w}`].rtt;
        const added = rtt.map((x, i) => x - direct[i]), ratio = rtt.map((x, i) => x / direct[i]);
        console.log(`  ${shape} ${w.padEnd(5)} ${fmtSpread(spread(rtt), 1)}   (p90 ${fmtSpread(spread(got[`${shape} ${w}`].p90), 1)}); over the direct UDP round trip: +${fmtSpread(spread(added), 1)} us, ratio ${fmtSpread(spread(ratio))}`);
      }
    }
    console.log("threads, round trip (the answering thread woken once), median of each round, us:");
    for (const m of threads) {
      const over = hop[m].map((x, i) => x / hop.futex[i]);
      console.log(`  ${m.padEnd(10)} ${fmtSpread(spread(hop[m]), 1)}${m === "futex" ? "" : `   (over futex ${fmtSpread(spread(over))})`}`);
    }
  } finally {
    wake.dispose();
  }
}

if (isMainThread) await main();
else answerer();
