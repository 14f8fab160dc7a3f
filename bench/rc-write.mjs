// RC WRITE goodput in process: two devices on the simulated wire (no faults), 64 KiB messages,
// MTU 4096, 128 in flight — next to a ceiling measured in the same run: per byte moved, two CRC-32
// passes (the ICRC on send and on receive, the core's wasm crc32 over data in linear memory) and two
// memory copies (typed-array copies out of and into linear memory, as the wire and the RX buffer do),
// at the packet size. Prints both and their ratio; candidates take turns, best of BENCH_ROUNDS.
import { WireCodec, coreModule, runPerf } from "../dist/internal/node.js";

const SIZE = 65536;
const MTU = 4096;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 3000); // ~197 MB per round
const mod = await coreModule();
const codec = await WireCodec.create(mod);

/** Goodput of one perf run, bytes per µs (= MB/s, 10^6 B/s), on the wall clock from first post to last completion. */
async function rcWrite() {
  const r = await runPerf(mod, { test: "write_bw", size: SIZE, mtu: MTU, iterations: MESSAGES, txDepth: 128, verify: false });
  if (!r.ok) throw new Error(`write_bw failed: ${JSON.stringify({ lost: r.lost, errors: r.errors })}`);
  return (SIZE * MESSAGES) / r.wall.duration_us;
}

/** The ceiling: the same bytes through 2 CRC passes and 2 copies per MTU-sized packet. */
function ceiling() {
  const wasm = codec.scratch().subarray(0, MTU);
  const js = new Uint8Array(MTU);
  for (let i = 0; i < MTU; i++) wasm[i] = (i * 131) & 0xff;
  const packets = (SIZE / MTU) * Math.max(200, MESSAGES / 4);
  let sink = 0;
  const t0 = performance.now();
  for (let p = 0; p < packets; p++) {
    sink ^= codec.crc32Resident(MTU); // ICRC on send
    js.set(wasm); // out of linear memory (onto the wire)
    wasm.set(js); // into linear memory (the RX buffer)
    sink ^= codec.crc32Resident(MTU); // ICRC on receive
  }
  const us = (performance.now() - t0) * 1000;
  if (sink === 0.5) console.log(sink);
  return (packets * MTU) / us;
}

await rcWrite(); // warm up the JIT and the wasm tier-up
ceiling();
let best = 0;
let bestCeiling = 0;
for (let r = 0; r < ROUNDS; r++) {
  best = Math.max(best, await rcWrite());
  bestCeiling = Math.max(bestCeiling, ceiling());
}
console.log(`RC WRITE in process: ${SIZE} B messages, MTU ${MTU}, tx depth 128, 1 QP, ${MESSAGES} messages per round; Node ${process.version}; best of ${ROUNDS} interleaved rounds`);
console.log("  goodput[MB/s]  ceiling[MB/s]  goodput/ceiling   (MB = 10^6 B; ceiling = 2 wasm CRC-32 passes + 2 copies per byte)");
console.log(`  ${best.toFixed(0).padStart(13)}  ${bestCeiling.toFixed(0).padStart(13)}  ${(best / bestCeiling).toFixed(3).padStart(15)}`);
