// One side of the load proof (bench/load.mjs, test/system/load.sys.mjs): a Node UDP device
// with N RC QPs, spoken to by its parent one JSON line at a time on stdin/stdout.
//   argv: role (writer | target), address, pairs
//   out: {"hello": {qpns, psns, rkey, addr, gid, port}}   in: the other side's hello
//   writer: connects, posts 3 signaled WRITEs per QP (SIZES), polls until every WR completed or
//           the deadline, prints {"done": {...}} and exits
//   target: connects, prints {"ready": true}; on {"check": true} verifies every byte and prints
//           {"checked": {...}}, then exits
// Default ACK timeout (14: 67 ms) and retry count (7), as the issue asks.
import { createInterface } from "node:readline";
import { connectQp } from "../dist/internal/node.js";
import { CONNECT, collectCompletions, fillPattern, openLoadSide, postWrites, wrongWrites } from "./load-common.mjs";

const [role, address, pairsArg] = process.argv.slice(2);
const N = Number(pairsArg);
const DEADLINE_MS = Number(process.env.LOAD_DEADLINE_MS ?? 180_000);
const lines = createInterface({ input: process.stdin });
const inbox = [];
let wake;
lines.on("line", (l) => { inbox.push(JSON.parse(l)); wake?.(); });
const next = async () => {
  while (!inbox.length) await new Promise((r) => (wake = r));
  return inbox.shift();
};
const say = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);

const { dev, cq, mr, qps, psns } = await openLoadSide(address, N);
say({ hello: { qpns: qps.map((q) => q.qpNum), psns, rkey: mr.rkey, addr: mr.addr.toString(), gid: dev.queryGid(0), port: 4791 } });
const peer = (await next()).hello;
qps.forEach((qp, i) => connectQp(qp, { qpNum: peer.qpns[i], psn: peer.psns[i], gid: peer.gid, port: peer.port }, { sqPsn: psns[i], ...CONNECT }));

const mem = () => ({ rssMiB: Math.round(process.memoryUsage().rss / 2 ** 20), wasmMiB: Math.round(dev.memory.buffer.byteLength / 2 ** 20) });

if (role === "writer") {
  fillPattern(mr, N);
  const remote = BigInt(peer.addr);
  const t0 = performance.now();
  qps.forEach((qp, q) => postWrites(qp, q, mr, remote, peer.rkey));
  const { statuses, completions, duplicates, missing } = await collectCompletions(cq, 3 * N, DEADLINE_MS);
  const seconds = (performance.now() - t0) / 1000;
  // let the last ACKs' effects settle before reading the counters
  await new Promise((r) => setTimeout(r, 100));
  const c = dev.queryCounters();
  say({ done: { seconds, completions, duplicates, missing, statuses, counters: c, ...mem() } });
  dev.close();
  process.exit(0);
} else {
  say({ ready: true });
  await next(); // {"check": true}
  say({ checked: { wrongWrites: wrongWrites(mr, N), counters: dev.queryCounters(), ...mem() } });
  dev.close();
  process.exit(0);
}
