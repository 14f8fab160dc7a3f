// The ICRC offload (the socket addon computes every datagram's ICRC; docs/PERFORMANCE.md, "ICRC
// offload") on the worker device's goodput and CPU: bench/worker.mjs run one round at a time, with
// the offload on and off on both ends (SOFTROCE_ICRC_OFFLOAD, read when each link opens: the
// device worker and the peer process inherit it), the two alternating and their order swapped every
// round, so that each round's on/off ratios compare runs taken side by side. Prints per candidate
// min / median / max over the rounds, and the per-round ratios on / off:
//  - RC WRITE 64 KiB goodput of the worker device, application thread idle and busy, and busy/idle
//    (target >= 0.9) with the CPU's bound on it;
//  - CPU µs per 64 KiB WRITE in the idle run: the device worker (the sender) and the peer (the receiver);
//  - the single-thread device's busy/idle and the 64 B round trip beside them.
//   node bench/icrc-offload.mjs   (after npm run build)   env: BENCH_ROUNDS (4), BENCH_GOODPUT_MS (600),
//   BENCH_PINGS (500), and every knob of bench/worker.mjs (BENCH_ADDR_A/B, BENCH_APP_CPU, ...), passed through
import { spawn } from "node:child_process";
import { once } from "node:events";
import { loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { fmtSpread, spread } from "./native/probe.mjs";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 4);
const WORKER_BENCH = fileURLToPath(new URL("./worker.mjs", import.meta.url));

/** What one bench/worker.mjs round printed, as numbers (undefined: the line was missing). */
function parse(out) {
  const num = (re) => {
    const m = re.exec(out);
    return m ? Number(m[1]) : undefined;
  };
  const cpu = /CPU µs per 64 KiB WRITE \(idle, median\): worker (\d+(?:\.\d+)?), peer (\d+(?:\.\d+)?), app (\d+(?:\.\d+)?)/.exec(out);
  return {
    idle: num(/worker idle min ([\d.]+)/),
    busy: num(/worker busy min ([\d.]+)/),
    busyIdle: num(/ratio worker busy\/idle: min ([\d.]+)/),
    bound: num(/CPU bound on worker busy\/idle [^:]*: min ([\d.]+)/),
    worker: cpu ? Number(cpu[1]) : undefined,
    peer: cpu ? Number(cpu[2]) : undefined,
    app: cpu ? Number(cpu[3]) : undefined,
    singleBusyIdle: num(/ratio single busy\/idle: min ([\d.]+)/),
    rtt: num(/64 B RC SEND round trip \(median of \d+\), µs: worker min ([\d.]+)/),
  };
}

async function round(offload) {
  const env = {
    ...process.env, SOFTROCE_ICRC_OFFLOAD: offload ? "1" : "0", BENCH_ROUNDS: "1",
    BENCH_PINGS: process.env.BENCH_PINGS ?? "500", BENCH_SMALL_OPS: process.env.BENCH_SMALL_OPS ?? "1000",
    BENCH_VARIANTS: process.env.BENCH_VARIANTS ?? "",
  };
  const child = spawn(process.execPath, [WORKER_BENCH], { env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (b) => (out += b));
  child.stderr.on("data", (b) => (out += b));
  const [code] = await once(child, "exit");
  const r = parse(out);
  if (code !== 0 || Object.values(r).some((v) => v === undefined)) {
    throw new Error(`bench/worker.mjs (offload ${offload ? "on" : "off"}) exited ${code}:\n${out.trim().split("\n").slice(-8).join("\n")}`);
  }
  return r;
}

const runs = { on: [], off: [] };
const loads = [];
for (let r = 0; r < ROUNDS; r++) {
  loads.push(loadavg()[0]);
  for (const which of r % 2 ? ["off", "on"] : ["on", "off"]) runs[which].push(await round(which === "on"));
}
loads.push(loadavg()[0]);

const col = (which, k) => runs[which].map((x) => x[k]);
const each = (k, digits = 2) => `on ${fmtSpread(spread(col("on", k)), digits)};  off ${fmtSpread(spread(col("off", k)), digits)}`;
const ratio = (k) => fmtSpread(spread(runs.on.map((x, i) => x[k] / runs.off[i][k])));
console.log(
  `ICRC offload on vs off, bench/worker.mjs one round at a time, ${ROUNDS} rounds each, alternating (min / median / max); ` +
    `load average ${Math.min(...loads).toFixed(1)}-${Math.max(...loads).toFixed(1)}`,
);
console.log(`RC WRITE 64 KiB, worker device, MB/s: idle ${each("idle", 0)}`);
console.log(`                                       busy ${each("busy", 0)}`);
console.log(`  on / off: idle ${ratio("idle")}, busy ${ratio("busy")}`);
console.log(`worker busy/idle (target >= 0.9): ${each("busyIdle")}`);
console.log(`  the CPU's bound on it:          ${each("bound")}`);
console.log(`CPU µs per 64 KiB WRITE, idle run: worker (sender) ${each("worker", 0)}`);
console.log(`                                   peer (receiver) ${each("peer", 0)}`);
console.log(`                                   application     ${each("app", 0)}`);
console.log(`  on / off: worker ${ratio("worker")}, peer ${ratio("peer")}`);
console.log(`single-thread device busy/idle: ${each("singleBusyIdle")}`);
console.log(`64 B RC SEND round trip, worker device, µs (median of each run): ${each("rtt", 1)};  on / off ${ratio("rtt")}`);
