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
import { openDevice, connectQp, randomPsn, QpType, Access, SendFlags, WcStatus, WrOpcode } from "../dist/internal/node.js";

export const SIZES = [1000, 4096, 9000];
const SLOT = 14336; // per QP: the three WRITEs side by side, 64-byte aligned
const OFFS = [0, 1024, 5120];
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
const byte = (q, w, i) => (q * 7 + w * 13 + i * 31 + 1) & 0xff;

const dev = await openDevice({
  address, port: 4791, maxQp: N + 16, maxCq: 4, maxCqe: 32767, maxMr: 16,
  mrArenaBytes: Math.max(16 << 20, N * SLOT + (1 << 20)), ringArenaBytes: Math.max(16 << 20, N * 4096),
});
const pd = dev.allocPd();
const cq = dev.createCq(Math.min(32767, 3 * N + 16));
const mr = pd.regMr(N * SLOT, Access.LOCAL_WRITE | Access.REMOTE_WRITE);
const qps = Array.from({ length: N }, () => pd.createQp({
  qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 4, maxRecvWr: 1, maxSendSge: 1, maxRecvSge: 1 },
}));
const psns = qps.map(() => randomPsn());
say({ hello: { qpns: qps.map((q) => q.qpNum), psns, rkey: mr.rkey, addr: mr.addr.toString(), gid: dev.queryGid(0), port: 4791 } });
const peer = (await next()).hello;
const opts = { qpAccessFlags: Access.REMOTE_WRITE, timeout: 14, retryCnt: 7, rnrRetry: 7 };
qps.forEach((qp, i) => connectQp(qp, { qpNum: peer.qpns[i], psn: peer.psns[i], gid: peer.gid, port: peer.port }, { sqPsn: psns[i], ...opts }));

const mem = () => ({ rssMiB: Math.round(process.memoryUsage().rss / 2 ** 20), wasmMiB: Math.round(dev.memory.buffer.byteLength / 2 ** 20) });

if (role === "writer") {
  for (let q = 0; q < N; q++) for (let w = 0; w < 3; w++) {
    const o = q * SLOT + OFFS[w];
    for (let i = 0; i < SIZES[w]; i++) mr.bytes[o + i] = byte(q, w, i);
  }
  const remote = BigInt(peer.addr);
  const t0 = performance.now();
  qps.forEach((qp, q) => {
    for (let w = 0; w < 3; w++) {
      qp.postSend({
        wrId: BigInt(q * 3 + w), opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED,
        sgList: [mr.sge(q * SLOT + OFFS[w], SIZES[w])], rdma: { remoteAddr: remote + BigInt(q * SLOT + OFFS[w]), rkey: peer.rkey },
      });
    }
  });
  const seen = new Uint8Array(3 * N);
  const statuses = {};
  let completions = 0;
  let duplicates = 0;
  const end = Date.now() + DEADLINE_MS;
  while (completions < 3 * N && Date.now() < end) {
    const wcs = cq.poll(256);
    if (!wcs.length) { await new Promise((r) => setTimeout(r, 1)); continue; }
    for (const wc of wcs) {
      completions++;
      const id = Number(wc.wrId);
      if (seen[id]) duplicates++;
      seen[id]++;
      const s = Object.keys(WcStatus).find((k) => WcStatus[k] === wc.status) ?? String(wc.status);
      statuses[s] = (statuses[s] ?? 0) + 1;
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  // let the last ACKs' effects settle before reading the counters
  await new Promise((r) => setTimeout(r, 100));
  const c = dev.queryCounters();
  say({ done: { seconds, completions, duplicates, missing: seen.filter((x) => x === 0).length, statuses, counters: c, ...mem() } });
  dev.close();
  process.exit(0);
} else {
  say({ ready: true });
  await next(); // {"check": true}
  let wrong = 0;
  for (let q = 0; q < N; q++) for (let w = 0; w < 3; w++) {
    const o = q * SLOT + OFFS[w];
    for (let i = 0; i < SIZES[w]; i++) if (mr.bytes[o + i] !== byte(q, w, i)) { wrong++; break; }
  }
  say({ checked: { wrongWrites: wrong, counters: dev.queryCounters(), ...mem() } });
  dev.close();
  process.exit(0);
}
