// One end of test/system/native-gso.sys.mjs, run inside a network namespace with
// `ip netns exec`: sends RoCEv2 datagrams through the native datapath (dist/node) or
// sinks them with node:dgram, and prints one JSON line with what it saw.
//   send  <src> <dst> <dstPort> <plan>    plan: {"calls": [[{"n", "payload", "flags"}, ...], ...]}
//   flood <src> <dst> <dstPort> <count> <payload> <sndbuf>   every datagram, resuming on writable
//   sink  <address> <port> <count> <readyFile> <timeoutMs>
import dgram from "node:dgram";
import { writeFileSync } from "node:fs";

const dist = await import(new URL("../../../dist/internal/node.js", import.meta.url).href);
const { openDatapath, TX_RECORD, TX_GSO, TX_ICRC, WireCodec, instantiateCore, coreModule, parseGid } = dist;

const MEM = 8 << 20;
const DATA = 1 << 20;
const v6 = (a) => a.includes(":");
const gid = (a) => parseGid(v6(a) ? a : `::ffff:${a}`);

function open(src, extra = {}) {
  const memory = new Uint8Array(MEM);
  const { datapath, reason } = openDatapath({ memory, address: src, port: 0, ...extra });
  if (!datapath) throw new Error(reason);
  return { d: datapath, m: memory, dv: new DataView(memory.buffer) };
}

/** Writes record i: an RC WRITE MIDDLE with `payload` bytes and PSN `psn`, its ICRC for ID 0. */
function makeRecord(codec, ctx, i, psn, src, dst, dstPort, payload, flags) {
  const pkt = codec.emit({ src, dst, ipId: 0, udpSrcPort: ctx.d.port, udpDstPort: dstPort, opcode: 0x07, destQp: 0x42, psn, payload: new Uint8Array(payload).fill(psn & 0xff) });
  const udp = pkt.subarray(v6(dst) ? 48 : 28);
  const at = DATA + i * 4352, t = i * TX_RECORD.stride;
  if (at + udp.length > MEM) throw new Error("plan too large");
  ctx.m.set(udp, at);
  ctx.m.set(gid(dst), t + TX_RECORD.dstAddr);
  ctx.dv.setUint32(t + TX_RECORD.dstPort, dstPort, true);
  ctx.dv.setUint32(t + TX_RECORD.flags, flags, true);
  ctx.dv.setUint32(t + TX_RECORD.ipId, 0, true);
  ctx.dv.setUint32(t + TX_RECORD.pieces[0].data, at, true);
  ctx.dv.setUint32(t + TX_RECORD.pieces[0].len, udp.length, true);
  for (const p of TX_RECORD.pieces.slice(1)) ctx.dv.setUint32(t + p.len, 0, true);
}

async function send([src, dst, dstPort, planText]) {
  const plan = JSON.parse(planText);
  const codec = new WireCodec(await instantiateCore(await coreModule()));
  const ctx = open(src);
  let psn = 0;
  const calls = [];
  for (const runs of plan.calls) {
    let n = 0;
    for (const r of runs) for (let k = 0; k < r.n; k++) makeRecord(codec, ctx, n++, psn++, src, dst, Number(dstPort), r.payload, r.flags ?? TX_GSO | TX_ICRC);
    const done = ctx.d.sendBatch(0, 0, n);
    const rec = (i, f, signed) => (signed ? ctx.dv.getInt32(i * TX_RECORD.stride + f, true) : ctx.dv.getUint32(i * TX_RECORD.stride + f, true));
    calls.push({ done, results: [...Array(n).keys()].map((i) => rec(i, TX_RECORD.result, true)), ipIds: [...Array(n).keys()].map((i) => rec(i, TX_RECORD.ipId)) });
  }
  console.log(JSON.stringify({ port: ctx.d.port, calls, stats: ctx.d.stats() }));
  ctx.d.close();
}

async function flood([src, dst, dstPort, countText, payloadText, sndbufText]) {
  const count = Number(countText), payload = Number(payloadText);
  const codec = new WireCodec(await instantiateCore(await coreModule()));
  const ctx = open(src, { sendBufferSize: Number(sndbufText) });
  for (let i = 0; i < count; i++) makeRecord(codec, ctx, i, i, src, dst, Number(dstPort), payload, TX_GSO | TX_ICRC);
  let next = 0, stops = 0, wakeups = 0;
  const t0 = performance.now();
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`flood: stuck at ${next} of ${count}`)), 30_000);
    const pump = () => {
      while (next < count) {
        const want = Math.min(64, count - next);
        const done = ctx.d.sendBatch(0, next, want);
        next += done;
        if (done < want) {
          stops++;
          ctx.d.onWritable(() => (wakeups++, pump()));
          return;
        }
      }
      clearTimeout(timer);
      resolve();
    };
    pump();
  });
  const results = [...Array(count).keys()].map((i) => ctx.dv.getInt32(i * TX_RECORD.stride + TX_RECORD.result, true));
  console.log(JSON.stringify({ stops, wakeups, sent: next, bad: results.filter((r) => r <= 0).length, ms: performance.now() - t0, stats: ctx.d.stats(), info: ctx.d.info() }));
  ctx.d.close();
}

async function sink([address, port, countText, readyFile, timeoutText]) {
  const want = Number(countText);
  const s = dgram.createSocket({ type: v6(address) ? "udp6" : "udp4", ipv6Only: v6(address) });
  await new Promise((r) => s.bind(Number(port), address, r));
  try {
    s.setRecvBufferSize(4 << 20);
  } catch {}
  let count = 0, inOrder = true, last = -1;
  const lengths = new Set();
  const finish = () => {
    console.log(JSON.stringify({ count, inOrder, lengths: [...lengths] }));
    s.close();
  };
  const timer = setTimeout(finish, Number(timeoutText));
  s.on("message", (msg) => {
    const psn = (msg[9] << 16) | (msg[10] << 8) | msg[11];
    if (psn !== last + 1) inOrder = false;
    last = psn;
    lengths.add(msg.length);
    if (++count === want) clearTimeout(timer), finish();
  });
  writeFileSync(readyFile, "ready");
}

const [mode, ...args] = process.argv.slice(2);
const modes = { send, flood, sink };
if (!modes[mode]) {
  console.error(`native-gso-peer: unknown mode ${mode}`);
  process.exit(2);
}
await modes[mode](args);
