// perftest's ib_write_bw / ib_send_bw against Linux rxe in the interop guest (qemu, TCG), in
// interleaved rounds: rxe to rxe inside the guest (its loopback: what the guest itself manages),
// softroce client -> rxe server, rxe client -> softroce server, each with perftest's exchange. The
// figures are perftest's "BW average" of the client (MB/s of 2^20 bytes); the ratios to the guest's
// own loopback say what is ours and what is the emulated CPU's. Needs root (a network namespace, a
// tap, qemu): INTEROP_BENCH=1 node bench/interop-perftest.mjs (after npm run build). Rounds:
// BENCH_ROUNDS (3), messages per run: BENCH_ITERS (300) of 65536 bytes; BENCH_FAMILY=6 runs RoCE over
// IPv6 (rxe's GID 2, softroce on fd00:4791::1; perftest's TCP exchange stays on IPv4).
// BENCH_TESTS: which (default write_bw,send_bw). INTEROP_NS: a namespace name instead of the run's own.
import { join } from "node:path";
import { ROOT } from "../test/system/lib/harness.mjs";
import { GUEST4, HOST4, HOST6, interopGuest } from "../test/system/lib/interop-guest.mjs";
import { runNetns } from "../test/system/lib/run-netns.mjs";

if (process.env.INTEROP_BENCH !== "1" || process.getuid?.() !== 0) {
  console.log("skipped: boots the interop guest (root, qemu); run as root with INTEROP_BENCH=1");
  process.exit(0);
}
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const ITERS = Number(process.env.BENCH_ITERS ?? 300);
const SIZE = 65536;
const V6 = process.env.BENCH_FAMILY === "6";
const GID = V6 ? "-x 2" : "-x 1";
const OURS = V6 ? HOST6 : HOST4;
// the guest's network namespace is this run's own (softroce-interop-bench-<pid>, or INTEROP_NS), as the
// interop suites' are: parallel runs do not share one, and the next run deletes what a killed one left
const NETNS = runNetns({ prefix: "softroce-interop-bench-", override: process.env.INTEROP_NS, script: "interop-perftest.mjs" });
const G = interopGuest({ work: join(ROOT, "test/.out/interop-bench"), netns: NETNS });
const avgOf = (out) => {
  const m = new RegExp(`^ ${SIZE}\\s+\\d+\\s+[\\d.]+\\s+([\\d.]+)`, "m").exec(out);
  if (!m) throw new Error(`no result line in:\n${out}`);
  return Number(m[1]);
};
const flags = `-s ${SIZE} -n ${ITERS} -F`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function guestLoopback(t) {
  return avgOf(await G.exec(`ib_${t} -d rxe0 ${GID} ${flags} > /tmp/b.srv 2>&1 & sleep 1; ib_${t} -d rxe0 ${GID} ${flags} ${GUEST4} 2>&1; wait`, 300));
}
async function oursClient(t) {
  await G.exec(`ib_${t} -d rxe0 ${GID} ${flags} > /tmp/b.srv 2>&1 & sleep 2`, 20);
  const r = await G.softroce(["perf", t, GUEST4, "--perftest", "--address", OURS, ...flags.split(" ")], 300_000);
  await G.exec("wait; sleep 0.5", 30);
  if (r.code !== 0) throw new Error(`softroce client: ${r.stdout}${r.stderr}`);
  return avgOf(r.stdout);
}
async function oursServer(t) {
  const server = G.softroce(["perf", t, "--perftest", "--address", OURS, ...flags.split(" ")], 300_000);
  await sleep(2000);
  const out = await G.exec(`ib_${t} -d rxe0 ${GID} ${flags} ${HOST4} 2>&1`, 300);
  const s = await server;
  if (s.code !== 0) throw new Error(`softroce server: ${s.stdout}${s.stderr}`);
  return avgOf(out);
}

const stats = (v) => {
  const s = [...v].sort((a, b) => a - b);
  return `min ${s[0].toFixed(2)} / median ${s[s.length >> 1].toFixed(2)} / max ${s[s.length - 1].toFixed(2)}`;
};

await G.build();
await G.start();
try {
  for (const t of (process.env.BENCH_TESTS ?? "write_bw,send_bw").split(",")) {
    const r = { loop: [], client: [], server: [] };
    for (let i = 0; i < ROUNDS; i++) {
      r.loop.push(await guestLoopback(t));
      r.client.push(await oursClient(t));
      r.server.push(await oursServer(t));
    }
    const ratio = (a, b) => a.map((x, i) => x / b[i]);
    console.log(`${t} over IPv${V6 ? 6 : 4}, ${SIZE} B x ${ITERS}, ${ROUNDS} interleaved rounds, client's BW average [MB/s]:`);
    console.log(`  rxe -> rxe in the guest         ${stats(r.loop)}`);
    console.log(`  softroce client -> rxe server   ${stats(r.client)}   ratio to the guest's loopback ${stats(ratio(r.client, r.loop))}`);
    console.log(`  rxe client -> softroce server   ${stats(r.server)}   ratio to the guest's loopback ${stats(ratio(r.server, r.loop))}`);
  }
} finally {
  await G.stop();
}
