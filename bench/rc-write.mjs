// RC WRITE goodput in process: two devices on the simulated wire (no faults), 64 KiB messages,
// MTU 4096, 128 in flight — next to a ceiling measured in the same run: per byte moved, two CRC-32
// passes (the ICRC on send and on receive, the core's wasm crc32 over data in linear memory) and two
// memory copies (typed-array copies out of and into linear memory, as the wire and the RX buffer do),
// at the packet size. Prints both and their ratio per round (min / median / max over BENCH_ROUNDS
// interleaved rounds), on the wall clock and per CPU second of this process (on a machine that
// other jobs load, the CPU figures are the steadier ones: time spent descheduled is not counted).
// BENCH_BASE=<another checkout, built>: each round also runs that checkout's goodput, interleaved, and
// the bench prints this build's goodput over the other's per round (a change measured side by side).
import path from "node:path";
import { pathToFileURL } from "node:url";
import { WireCodec, coreModule, runPerf } from "../dist/internal/node.js";

const SIZE = 65536;
const MTU = 4096;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
// perf's (and perftest's) default for a bandwidth test, ~328 MB per round: each round opens four devices
// of 47.5 MiB (the setup run's two, the measured run's two), and V8 answers that memory with major GCs
// on its helper threads; a round this long keeps them a small part of the process's CPU
const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 5000);
const SETUP_MESSAGES = 8;
const mod = await coreModule();
const codec = await WireCodec.create(mod);
const self = { runPerf, mod };
const baseDir = process.env.BENCH_BASE;
const base = baseDir ? await loadBase(baseDir) : undefined;

/** The other checkout's perf entry and core (its dist/internal/node.js, which loads its own build/). */
async function loadBase(dir) {
  const lib = await import(pathToFileURL(path.resolve(dir, "dist/internal/node.js")).href);
  return { runPerf: lib.runPerf, mod: await lib.coreModule() };
}

/** CPU time of this process so far, µs (user + system: unlike the wall clock, not charged while other processes hold the cores). */
function cpuNow() {
  const c = process.cpuUsage();
  return c.user + c.system;
}

/** One perf run of `messages`: its wall time (first post to last completion) and the CPU time of the whole call, µs. */
async function perfRun(messages, build = self) {
  const c0 = cpuNow();
  const r = await build.runPerf(build.mod, { test: "write_bw", size: SIZE, mtu: MTU, iterations: messages, txDepth: 128, verify: false });
  const cpu = cpuNow() - c0;
  if (!r.ok) throw new Error(`write_bw failed: ${JSON.stringify({ lost: r.lost, errors: r.errors })}`);
  return { wall: r.wall.duration_us, cpu };
}

/**
 * Goodput of one perf run, bytes per µs (= MB/s, 10^6 B/s): on the wall clock from first post to
 * last completion, and per CPU µs (the CPU time of a tiny run in the same round — opening the two
 * devices and connecting — subtracted).
 */
async function rcWrite(build = self) {
  const setup = await perfRun(SETUP_MESSAGES, build);
  const run = await perfRun(MESSAGES, build);
  const bytes = SIZE * MESSAGES;
  const cpuBytes = SIZE * (MESSAGES - SETUP_MESSAGES);
  return { wall: bytes / run.wall, cpu: cpuBytes / Math.max(1, run.cpu - setup.cpu) };
}

/** The ceiling: the same bytes through 2 CRC passes and 2 copies per MTU-sized packet (wall and CPU). */
function ceiling() {
  const wasm = codec.scratch().subarray(0, MTU);
  const js = new Uint8Array(MTU);
  for (let i = 0; i < MTU; i++) wasm[i] = (i * 131) & 0xff;
  const packets = (SIZE / MTU) * Math.max(200, MESSAGES / 4);
  let sink = 0;
  const c0 = cpuNow();
  const t0 = performance.now();
  for (let p = 0; p < packets; p++) {
    sink ^= codec.crc32Resident(MTU); // ICRC on send
    js.set(wasm); // out of linear memory (onto the wire)
    wasm.set(js); // into linear memory (the RX buffer)
    sink ^= codec.crc32Resident(MTU); // ICRC on receive
  }
  const us = (performance.now() - t0) * 1000;
  const cpu = cpuNow() - c0;
  if (sink === 0.5) console.log(sink);
  return { wall: (packets * MTU) / us, cpu: (packets * MTU) / Math.max(1, cpu) };
}

const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return { min: s[0], median: s[s.length >> 1], max: s[s.length - 1] };
};
const f = (x, d = 0) => x.toFixed(d);
const mmm = (xs, d = 0) => {
  const { min, median, max } = stats(xs);
  return `${f(min, d)} / ${f(median, d)} / ${f(max, d)}`;
};

await rcWrite(); // warm up the JIT and the wasm tier-up
if (base) await rcWrite(base);
ceiling();
const rows = [];
for (let r = 0; r < ROUNDS; r++) {
  // with a base build, which of the two goes first alternates from round to round
  const b = base && r % 2 === 1 ? await rcWrite(base) : undefined;
  const g = await rcWrite();
  const c = ceiling();
  rows.push({ g, c, b: b ?? (base ? await rcWrite(base) : undefined) });
}
const load = (await import("node:os")).loadavg().map((x) => x.toFixed(2)).join(" ");
console.log(`RC WRITE in process: ${SIZE} B messages, MTU ${MTU}, tx depth 128, 1 QP, ${MESSAGES} messages per round; Node ${process.version}; ${ROUNDS} interleaved rounds; load average ${load}`);
console.log("  (MB = 10^6 B; ceiling = 2 wasm CRC-32 passes + 2 copies per byte; each ratio is one round's goodput over the same round's ceiling)");
console.log("  clock  goodput[MB/s] min/median/max  ceiling[MB/s] min/median/max  goodput/ceiling min/median/max");
for (const k of ["wall", "cpu"]) {
  console.log(`  ${k.padEnd(5)}  ${mmm(rows.map((x) => x.g[k])).padEnd(30)}  ${mmm(rows.map((x) => x.c[k])).padEnd(30)}  ${mmm(rows.map((x) => x.g[k] / x.c[k]), 3)}`);
}
if (base) {
  console.log(`  vs BENCH_BASE (${baseDir}): its goodput[MB/s] min/median/max, and this build's over it per round`);
  for (const k of ["wall", "cpu"]) {
    console.log(`  ${k.padEnd(5)}  ${mmm(rows.map((x) => x.b[k])).padEnd(30)}  this/base ${mmm(rows.map((x) => x.g[k] / x.b[k]), 3)}`);
  }
}
