// CRC-32 throughput: the core's wasm CRC (data already in linear memory, and with the copy in)
// next to node:zlib crc32, measured in the same run. Prints a table with ratios.
import { crc32 as zlibCrc32 } from "node:zlib";
import { WireCodec, coreModule } from "../dist/node/index.js";

const codec = await WireCodec.create(await coreModule());
const SIZES = [64, 1024, 4096, 65536];
const MIN_MS = Number(process.env.BENCH_MS ?? 300);

function random(n) {
  const b = new Uint8Array(n);
  let x = 0x9e3779b9;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/** Bytes per second of fn(), which processes `bytes` bytes per call; best of 3 timed rounds. */
function rate(bytes, fn) {
  let iters = 1;
  for (;;) {
    const t0 = performance.now();
    for (let i = 0; i < iters; i++) fn();
    const dt = performance.now() - t0;
    if (dt > 20) { iters = Math.ceil(iters * (MIN_MS / 3) / dt); break; }
    iters *= 4;
  }
  let best = 0;
  for (let round = 0; round < 3; round++) {
    const t0 = performance.now();
    for (let i = 0; i < iters; i++) fn();
    const dt = (performance.now() - t0) / 1000;
    best = Math.max(best, (bytes * iters) / dt);
  }
  return best;
}

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
  const resident = rate(size, () => { let c = 0; for (let k = 0; k < calls; k++) c = codec.crc32Resident(chunk, c); sink ^= c; });
  const copied = rate(size, () => { sink ^= codec.crc32(data); });
  const zlib = rate(size, () => { sink ^= zlibCrc32(data); });
  rows.push({ size, resident, copied, zlib });
}

const mb = (r) => (r / 1e6).toFixed(0).padStart(8);
const x = (a, b) => `${(a / b).toFixed(2)}x`.padStart(8);
console.log(`CRC-32 throughput, MB/s (10^6 B/s), Node ${process.version}, best of 3 rounds of ~${Math.round(MIN_MS / 3)} ms`);
console.log("   bytes  wasm(mem)  wasm+copy  node:zlib  mem/zlib  copy/zlib");
for (const r of rows) {
  console.log(`${String(r.size).padStart(8)}  ${mb(r.resident)}   ${mb(r.copied)}   ${mb(r.zlib)}  ${x(r.resident, r.zlib)}  ${x(r.copied, r.zlib)}`);
}
if (sink === 0.5) console.log(sink);
