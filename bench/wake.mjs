// What one hop between two processes costs on this machine, without Node: bench/native/wake.c
// (built here with the compiler node-gyp uses, $CC else `cc`) ping-pongs between two processes
// over loopback UDP and TCP, the receiver either sleeping in epoll_wait (a wake-up per message,
// as an event loop waits) or spinning on non-blocking reads (a busy poll). Rounds interleaved;
// printed: one-way latency median (min / median / max over the rounds) and the ratio block/spin,
// which is what a wake-up adds to a hop. BENCH_ROUNDS (5), BENCH_ITERS (20000), BENCH_ADDR.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { fmtSpread, spread } from "./native/probe.mjs";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const ITERS = Number(process.env.BENCH_ITERS ?? 20000);
const ADDR = process.env.BENCH_ADDR ?? "127.0.0.1";
const cc = process.env.CC || "cc";
const dir = mkdtempSync(join(tmpdir(), "softroce-wake-"));
try {
  const bin = join(dir, "wake");
  const src = fileURLToPath(new URL("./native/wake.c", import.meta.url));
  const b = spawnSync(cc, ["-O2", "-Wall", "-o", bin, src], { encoding: "utf8" });
  if (b.status !== 0) throw new Error(`${cc} could not build ${src}: ${(b.stderr || b.error?.message || "").trim()}`);
  const cases = ["udp block", "udp spin", "tcp block", "tcp spin"];
  const got = Object.fromEntries(cases.map((c) => [c, { oneway: [], p90: [], rtt: [] }]));
  for (let r = 0; r < ROUNDS; r++) {
    for (const c of cases) {
      const x = spawnSync(bin, [...c.split(" "), String(ITERS), ADDR], { encoding: "utf8", timeout: 120_000 });
      if (x.status !== 0) throw new Error(`wake ${c}: ${(x.stderr || x.error?.message || `exit ${x.status}`).trim()}`);
      const j = JSON.parse(x.stdout.trim());
      got[c].oneway.push(j.onewayMedianUs);
      got[c].p90.push(j.onewayP90Us);
      got[c].rtt.push(j.rttMedianUs);
    }
  }
  console.log(`one hop between two processes (C, ${cc}), loopback ${ADDR}, ${ROUNDS} interleaved rounds x ${ITERS} round trips; load average ${loadavg().map((x) => x.toFixed(1)).join(" ")}`);
  console.log("one-way latency, send call to message in hand, median of each round (min / median / max), us:");
  for (const c of cases) console.log(`  ${c.padEnd(10)} ${fmtSpread(spread(got[c].oneway), 1)}   (p90 ${fmtSpread(spread(got[c].p90), 1)}; round trip ${fmtSpread(spread(got[c].rtt), 1)})`);
  for (const p of ["udp", "tcp"]) {
    const ratio = got[`${p} block`].oneway.map((x, i) => x / got[`${p} spin`].oneway[i]);
    const diff = got[`${p} block`].oneway.map((x, i) => x - got[`${p} spin`].oneway[i]);
    console.log(`  ${p}: a wake-up adds ${fmtSpread(spread(diff), 1)} us to a hop (block/spin ${fmtSpread(spread(ratio))})`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
