// The RC loss sweep, like smoltcp's netsim: a fixed workload (RC WRITE,
// 4 KiB messages, MTU 1024, 16 in flight, verified byte for byte) over the
// simulated wire at 10 Gb/s with 5 µs one-way delay, at loss rates from 0 to
// 30 %, on the virtual clock. The table (goodput, retransmissions, packets)
// must equal the committed snapshot; a change in the transport's behaviour
// under loss shows up as a diff to review.
//
// Update the snapshot after an intended change:
//   UPDATE_SNAPSHOTS=1 npx vitest run test/host/e2e/rc-sweep.test.ts
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";
import { coreModule } from "../../../host/node/wasm-source.js";
import { runPerf, type BwFigures, type PerfResult } from "../../../host/core/perf/index.js";

const SNAPSHOT = fileURLToPath(new URL("../../fixtures/snapshots/rc-loss-sweep.txt", import.meta.url));
const LOSSES = [0, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3];
const WORKLOAD = {
  test: "write_bw",
  size: 4096,
  iterations: 500,
  mtu: 1024,
  txDepth: 16,
  qps: 1,
  seed: 7,
  timeout: 5,
  retryCnt: 7,
  verify: true,
} as const;
const LINK = { delayUs: 5, rateBps: 10e9 };

function row(loss: number, r: PerfResult): string {
  const sim = r.sim as BwFigures | null;
  const goodput = sim ? ((r.verified * r.bytes) / sim.duration_us).toFixed(1) : "-";
  const status = r.ok ? "ok" : Object.entries(r.error_statuses).map(([k, v]) => `${k}×${v}`).join(" ") || `lost ${r.lost}`;
  return [
    `${(loss * 100).toFixed(0)}%`.padStart(5),
    goodput.padStart(14),
    String(r.verified).padStart(9),
    String(r.retransmissions).padStart(8),
    String(r.seq_naks).padStart(9),
    String(r.packets_sent).padStart(8),
    String(r.wire.lost).padStart(10),
    (sim ? sim.duration_us.toFixed(1) : "-").padStart(12),
    `  ${status}`,
  ].join(" ");
}

async function sweep(): Promise<string> {
  const mod = await coreModule();
  const lines = [
    `# RC loss sweep: write_bw ${WORKLOAD.size} B × ${WORKLOAD.iterations}, MTU ${WORKLOAD.mtu}, tx depth ${WORKLOAD.txDepth},`,
    `# timeout ${WORKLOAD.timeout} (${(4.096 * 2 ** WORKLOAD.timeout).toFixed(0)} µs), retry_cnt ${WORKLOAD.retryCnt}; link 10 Gb/s, 5 µs one way; seed ${WORKLOAD.seed}; virtual clock.`,
    "# goodput = verified bytes / virtual µs (MB/s, 10^6 B); retries = completer_retry_err; packets = sent by both devices.",
    " loss  goodput[MB/s]  verified  retries  seq_naks  packets  wire_lost  virtual[us]  status",
  ];
  for (const loss of LOSSES) {
    const r = await runPerf(mod, { ...WORKLOAD, faults: { loss, ...LINK } });
    lines.push(row(loss, r));
  }
  return lines.join("\n") + "\n";
}

it("goodput and retransmissions vs loss match the snapshot", async () => {
  const table = await sweep();
  if (process.env.UPDATE_SNAPSHOTS) {
    mkdirSync(dirname(SNAPSHOT), { recursive: true });
    writeFileSync(SNAPSHOT, table);
  }
  let want: string;
  try {
    want = readFileSync(SNAPSHOT, "utf8");
  } catch {
    throw new Error(`no snapshot at ${SNAPSHOT}: create it with UPDATE_SNAPSHOTS=1 npx vitest run test/host/e2e/rc-sweep.test.ts`);
  }
  expect(table).toBe(want);
  // the table itself must say something: a perfect link loses nothing and needs no retry
  const first = table.split("\n")[4]!;
  expect(first).toMatch(/^ {3}0% .* ok$/);
}, 120_000);
