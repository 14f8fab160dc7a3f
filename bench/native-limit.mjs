// The machine's limit: a C program (bench/native/udp-limit.c, built here with the compiler
// node-gyp uses) moving 4112-byte datagrams (BTH + 4096 + ICRC: an RC WRITE middle at MTU 4096)
// between two processes over UDP loopback with 128 in flight, with one send() each, sendmmsg,
// UDP GSO, and GSO + GRO. Rounds interleave the four; each prints min / median / max GB/s.
// bench/udp-goodput.mjs (node:dgram vs RC WRITE) and bench/native-datapath.mjs are the Node side.
// Knobs: BENCH_ROUNDS (5), BENCH_COUNT (datagrams a measurement, 60000 = ~247 MB).
import { PROBE_MODES, buildProbe, fmtSpread, runProbe, spread } from "./native/probe.mjs";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const COUNT = Number(process.env.BENCH_COUNT ?? 60000);

const probe = buildProbe();
try {
  const gbps = Object.fromEntries(PROBE_MODES.map((m) => [m, []]));
  const cpu = Object.fromEntries(PROBE_MODES.map((m) => [m, []]));
  let lost = 0;
  for (let r = 0; r < ROUNDS; r++) {
    for (const m of PROBE_MODES) {
      const x = runProbe(probe, m, { count: COUNT });
      gbps[m].push(x.gbps);
      cpu[m].push(x.sender_us_per_dgram);
      lost += x.lost;
    }
  }
  console.log(`the machine's limit (C probe built with ${probe.cc}, 2 processes, UDP loopback, 4112 B datagrams, window 128, ${ROUNDS} interleaved rounds of ${COUNT}):`);
  console.log("  mode       GB/s min / median / max     sender CPU µs a datagram (median)");
  for (const m of PROBE_MODES) {
    console.log(`  ${m.padEnd(9)}  ${fmtSpread(spread(gbps[m])).padEnd(24)}  ${spread(cpu[m]).median.toFixed(2)}`);
  }
  console.log(`  datagrams lost over all runs: ${lost}`);
} finally {
  probe.dispose();
}
