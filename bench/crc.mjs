// CRC-32 throughput: the core's wasm CRC (data already in linear memory, and with the copy in)
// next to node:zlib crc32 and the socket addon's CRC (the ICRC offload's: PCLMULQDQ folding where
// the CPU has it), measured in the same run. Prints a table with ratios: best rounds on the wall
// clock, and per CPU second of this process with each round's wasm/zlib and C/wasm ratios (min /
// median / max), the steadier figures on a machine other jobs load.
import { crc32 as zlibCrc32 } from "node:zlib";
import { createRequire } from "node:module";
import { WireCodec, coreModule } from "../dist/node/index.js";

// the addon's CRC over the same bytes in place (one N-API call each: at 64 B the call dominates,
// as it does zlib's; the datapath calls the C function directly, without it)
let addon;
try {
  addon = createRequire(import.meta.url)("../host/node/native/build/Release/softroce_sockopt.node");
  if (typeof addon.crc32 !== "function") addon = undefined;
} catch {
  addon = undefined;
}

const codec = await WireCodec.create(await coreModule());
const SIZES = [64, 1024, 4096, 65536];
const MIN_MS = Number(process.env.BENCH_MS ?? 1500); // per size, all candidates and rounds
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);

function random(n) {
  const b = new Uint8Array(n);
  let x = 0x9e3779b9;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/** Calls per ~`ms` milliseconds of fn(). */
function calibrate(fn, ms) {
  let iters = 1;
  for (;;) {
    const t0 = performance.now();
    for (let i = 0; i < iters; i++) fn();
    const dt = performance.now() - t0;
    if (dt > 10) return Math.max(1, Math.ceil((iters * ms) / dt));
    iters *= 4;
  }
}

/** CPU time of this process so far, µs (user + system: not charged while other processes hold the cores). */
function cpuNow() {
  const c = process.cpuUsage();
  return c.user + c.system;
}

/**
 * Bytes/second of each candidate in each of ROUNDS rounds, on the wall clock and per CPU second;
 * the candidates take turns inside every round so that load from other processes hits them alike.
 */
function race(bytes, fns) {
  const per = MIN_MS / ROUNDS / Object.keys(fns).length;
  const iters = Object.fromEntries(Object.entries(fns).map(([k, f]) => [k, calibrate(f, per)]));
  const rounds = [];
  for (let r = 0; r < ROUNDS; r++) {
    const round = {};
    for (const [k, f] of Object.entries(fns)) {
      const n = iters[k];
      const c0 = cpuNow();
      const t0 = performance.now();
      for (let i = 0; i < n; i++) f();
      const dt = (performance.now() - t0) / 1000;
      const cpu = Math.max(1, cpuNow() - c0) / 1e6;
      round[k] = { wall: (bytes * n) / dt, cpu: (bytes * n) / cpu };
    }
    rounds.push(round);
  }
  const best = (k, clock) => Math.max(...rounds.map((r) => r[k][clock]));
  return { rounds, best };
}

// the addon's 256-bit path (VPCLMULQDQ) on or off, switched only when the candidate changes
let wideNow;
const wide = (on) => {
  if (wideNow === on) return;
  addon.crc32Wide?.(on);
  wideNow = on;
};
const cap = codec.bufCap;
const rows = [];
let sink = 0;
for (const size of SIZES) {
  const data = random(size);
  const want = zlibCrc32(data);
  if (codec.crc32(data) !== want) throw new Error(`crc32 mismatch at ${size} bytes`);
  // Resident: the data sits in wire_buf; sizes above the buffer chain over it in buffer-sized calls
  // (a 64 KiB "message" = 4 resident 16 KiB chunks), so only the wasm CRC is measured.
  const chunk = Math.min(size, cap);
  codec.scratch().set(data.subarray(0, chunk));
  const calls = size / chunk;
  const { rounds, best } = race(size, {
    resident: () => { let c = 0; for (let k = 0; k < calls; k++) c = codec.crc32Resident(chunk, c); sink ^= c; },
    copied: () => { sink ^= codec.crc32(data); },
    zlib: () => { sink ^= zlibCrc32(data); },
    ...(addon ? { native: () => { wide(true); sink ^= addon.crc32(data, 0, size, 0xffffffff); } } : {}),
    ...(addon?.crc32Vclmul ? { native128: () => { wide(false); sink ^= addon.crc32(data, 0, size, 0xffffffff); } } : {}),
  });
  if (addon && (~addon.crc32(data, 0, size, 0xffffffff) >>> 0) !== want) throw new Error(`addon crc32 mismatch at ${size} bytes`);
  rows.push({
    size, resident: best("resident", "wall"), copied: best("copied", "wall"), zlib: best("zlib", "wall"),
    cpu: { resident: best("resident", "cpu"), zlib: best("zlib", "cpu") },
    ratios: rounds.map((r) => r.resident.cpu / r.zlib.cpu),
    native: addon ? best("native", "wall") : undefined,
    nativeRatios: addon ? rounds.map((r) => r.native.cpu / r.resident.cpu) : undefined,
    wideRatios: addon?.crc32Vclmul ? rounds.map((r) => r.native.cpu / r.native128.cpu) : undefined,
  });
}

const mb = (r) => (r / 1e6).toFixed(0).padStart(8);
const x = (a, b) => `${(a / b).toFixed(2)}x`.padStart(8);
const load = (await import("node:os")).loadavg().map((v) => v.toFixed(2)).join(" ");
console.log(`CRC-32 throughput, MB/s (10^6 B/s), Node ${process.version}; best of ${ROUNDS} interleaved rounds, ~${MIN_MS} ms per size; load average ${load}`);
console.log("   bytes  wasm(mem)  wasm+copy  node:zlib  mem/zlib  copy/zlib   per CPU second: wasm(mem)  node:zlib  mem/zlib per round min/median/max");
for (const r of rows) {
  const q = [...r.ratios].sort((a, b) => a - b);
  const mmm = `${q[0].toFixed(2)} / ${q[q.length >> 1].toFixed(2)} / ${q[q.length - 1].toFixed(2)}`;
  console.log(`${String(r.size).padStart(8)}  ${mb(r.resident)}   ${mb(r.copied)}   ${mb(r.zlib)}  ${x(r.resident, r.zlib)}  ${x(r.copied, r.zlib)}                  ${mb(r.cpu.resident)}   ${mb(r.cpu.zlib)}  ${mmm}`);
}
const mmmOf = (v) => {
  const q = [...v].sort((a, b) => a - b);
  return `${q[0].toFixed(2)} / ${q[q.length >> 1].toFixed(2)} / ${q[q.length - 1].toFixed(2)}`;
};
if (addon) {
  const how = addon.crc32Vclmul ? "PCLMULQDQ folding, 256-bit VPCLMULQDQ from 256 bytes" : addon.crc32Clmul ? "PCLMULQDQ folding" : "slicing-by-8 table: this CPU has no PCLMULQDQ";
  console.log(`\nThe socket addon's CRC-32 (ICRC offload; ${how}), same rounds:`);
  console.log(`   bytes  addon(C)  C/wasm(mem)  C/zlib   per CPU second C/wasm(mem) per round min/median/max${addon.crc32Vclmul ? "   256-bit / 128-bit path per round" : ""}`);
  for (const r of rows) {
    const w = r.wideRatios ? `   ${mmmOf(r.wideRatios)}` : "";
    console.log(`${String(r.size).padStart(8)}  ${mb(r.native)}  ${x(r.native, r.resident)}     ${x(r.native, r.zlib)}   ${mmmOf(r.nativeRatios)}${w}`);
  }
} else {
  console.log("\nThe socket addon is not built (or predates its CRC): no C column.");
}
if (sink === 0.5) console.log(sink);
