// What a bad datagram costs a receiver that cannot see the IPv4 ID (an ordinary UDP
// socket): 4 KiB UC WRITEs into an MR through the device's receive path, good ones
// (ID 0 as softroce sends, and a Linux-like per-flow counter the device solves and
// predicts) next to ones with a random ICRC (solved, refused). Candidates take turns
// inside every round so load from other processes hits them alike; prints datagrams/s
// per candidate (best of the rounds) and the ratios min / median / max over the rounds.
// Before the fast solver a bad 4 KiB datagram cost about 10x a good one. BENCH_PAYLOAD sets the size
// (4096; 64 shows the solver's own share best).
import { SimNetwork, WireCodec, coreModule, connectQp, QpType, Access } from "../dist/node/index.js";

const PAYLOAD = Number(process.env.BENCH_PAYLOAD ?? 4096);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);
const ROUND_MS = Number(process.env.BENCH_MS ?? 1800) / ROUNDS;

const mod = await coreModule();
const codec = await WireCodec.create(mod);
const net = new SimNetwork({ seed: 3 });
const dev = await net.addDevice(mod, "127.0.12.1");
const pd = dev.allocPd();
const cq = dev.createCq(64);
const mr = pd.regMr(PAYLOAD, Access.LOCAL_WRITE | Access.REMOTE_WRITE);
const qp = pd.createQp({ qpType: QpType.UC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 1, maxRecvWr: 1, maxSendSge: 1, maxRecvSge: 1 } });
connectQp(qp, { qpNum: 0x99, psn: 0, gid: "::ffff:127.0.12.2" }, { sqPsn: 1, qpAccessFlags: Access.REMOTE_WRITE });

const payload = Uint8Array.from({ length: PAYLOAD }, (_, i) => (i * 7) & 0xff);
// PSNs advance for good datagrams; every packet is a whole UC WRITE ONLY, so any PSN past the last is taken
const emit = (ipId, psn) => codec.emit({
  src: "127.0.12.2", dst: "127.0.12.1", udpSrcPort: 0xc001, udpDstPort: 4791, ipId, opcode: 0x24, destQp: qp.qpNum, psn,
  reth: { va: mr.addr, rkey: mr.rkey, len: PAYLOAD }, payload,
}).subarray(28).slice();
const port = dev.port;
const deliver = (p) => port.receive({ src: "127.0.12.2", dst: "127.0.12.1", srcPort: 0xc001, dstPort: 4791, payload: p });

// Pre-built datagrams: the PSN and the ID each cycle through a table, so no packet is built in the loop.
const N = 256;
let psn = 0;
let linuxId = 0x4000;
const zeroId = Array.from({ length: N }, () => emit(0, psn++ & 0xffffff));
// A Linux-like sender: IDs 0x4000, 0x4001, ... The ICRC is affine in the ID, so one datagram's
// ICRC is patched per ID from the ICRCs at ID 0 and at each single ID bit (no packet built in the loop).
const icrcOf = (p) => new DataView(p.buffer, p.byteOffset + p.length - 4, 4).getUint32(0, true);
const counted = emit(0, psn);
const atZero = icrcOf(counted);
const delta = Array.from({ length: 16 }, (_, b) => icrcOf(emit(1 << b, psn)) ^ atZero);
const countedView = new DataView(counted.buffer, counted.byteOffset + counted.length - 4, 4);
const withId = (id) => {
  let c = atZero;
  for (let b = 0; b < 16; b++) if (id & (1 << b)) c ^= delta[b];
  countedView.setUint32(0, c >>> 0, true);
  return counted;
};
// the flow's first datagram only seeds the prediction
deliver(withId(linuxId++));
const bad = Array.from({ length: N }, (_, i) => {
  const p = emit(0x4000 + i, psn);
  let x = (i + 1) * 0x9e3779b9;
  for (let k = 0; k < 4; k++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; p[p.length - 4 + k] = x & 0xff; }
  return p;
});

// A flood of many lengths: every datagram a different length (the solver's table covers every
// length a datagram can have: assembly/crc/ipid.ts, so this costs what one length does)
const spread = new Uint8Array(4096);
const badLengths = Array.from({ length: N }, (_, i) => {
  const len = 4 + ((PAYLOAD + 4 * i) % 4092); // 256 different lengths around PAYLOAD
  const p = codec.emit({
    src: "127.0.12.2", dst: "127.0.12.1", udpSrcPort: 0xc001, udpDstPort: 4791, ipId: 0x4000 + i, opcode: 0x24, destQp: qp.qpNum, psn,
    reth: { va: mr.addr, rkey: mr.rkey, len }, payload: spread.subarray(0, len),
  }).subarray(28).slice();
  p[p.length - 1] ^= 0x5a;
  return p;
});

let zi = 0, bi = 0, li = 0;
const candidates = {
  "good, ID 0 (softroce)": () => deliver(zeroId[zi++ & (N - 1)]) === 0,
  "good, solved ID (Linux counter)": () => deliver(withId(linuxId++ & 0xffff)) === 0,
  "bad ICRC": () => deliver(bad[bi++ & (N - 1)]) !== 0,
  "bad ICRC, a new length each": () => deliver(badLengths[li++ & (N - 1)]) !== 0,
};

// The ID-0 datagrams come from the same source, so the flow's prediction follows them between
// rounds; the Linux-like candidate re-seeds it (one refused datagram) before it is timed.
const prime = { "good, solved ID (Linux counter)": () => deliver(withId(linuxId++ & 0xffff)) };

function burst(fn, ms) {
  let n = 0;
  let wrong = 0;
  const t0 = performance.now();
  let dt = 0;
  do {
    for (let i = 0; i < 64; i++) if (!fn()) wrong++;
    n += 64;
    dt = performance.now() - t0;
  } while (dt < ms);
  return { rate: (n * 1000) / dt, wrong };
}

const names = Object.keys(candidates);
const rates = Object.fromEntries(names.map((k) => [k, []]));
const wrong = Object.fromEntries(names.map((k) => [k, 0]));
for (const k of names) {
  prime[k]?.();
  burst(candidates[k], 50); // warm-up
}
for (const k of names) wrong[k] = 0;
for (let r = 0; r < ROUNDS; r++) {
  for (const k of names) {
    prime[k]?.();
    const b = burst(candidates[k], ROUND_MS / names.length);
    rates[k].push(b.rate);
    wrong[k] += b.wrong;
  }
}
const med = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
console.log(`receive path, ${PAYLOAD}-byte UC WRITE datagrams, IPv4 ID unseen; ${ROUNDS} interleaved rounds`);
for (const k of names) {
  console.log(`  ${k.padEnd(34)} ${(Math.max(...rates[k]) / 1000).toFixed(1).padStart(8)} k datagrams/s (best round)` +
    `${wrong[k] ? `  UNEXPECTED VERDICTS: ${wrong[k]}` : ""}`);
}
const ratio = (num, den) => rates[num].map((x, i) => rates[den][i] / x);
for (const [label, bad, good] of [["bad / good(ID 0)", names[2], names[0]], ["bad / good(solved)", names[2], names[1]],
  ["bad, many lengths / good(ID 0)", names[3], names[0]]]) {
  const r = ratio(bad, good);
  console.log(`  cost ratio ${label.padEnd(31)} min ${Math.min(...r).toFixed(2)}x  median ${med(r).toFixed(2)}x  max ${Math.max(...r).toFixed(2)}x`);
}
const c = dev.queryCounters();
const stat = (i) => dev.port.core.icrc_id_stat(i);
console.log(`  device counters: rcvd_pkts ${c.rcvd_pkts}, bad_icrc ${c.bad_icrc}; ID solver: solved ${stat(0)}, unsolvable ${stat(1)}, ` +
  `out of sequence ${stat(2)}`);
if (Object.values(wrong).some((w) => w)) process.exit(1);
