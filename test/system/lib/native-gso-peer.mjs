// One end of test/system/native-gso.sys.mjs, run inside a network namespace with
// `ip netns exec`: sends RoCEv2 datagrams through the native datapath (dist/node) or
// sinks them with node:dgram, and prints one JSON line with what it saw.
//   send  <src> <dst> <dstPort> <plan>    plan: {"calls": [[{"n", "payload", "flags"}, ...], ...]}
//   flood <src> <dst> <dstPort> <count> <payload> <sndbuf> [poolPort [close]]   every datagram,
//         resuming on writable; with poolPort from a SourcePortPool socket bound to that port (its
//         SO_SNDBUF sndbuf; the wait watches that socket: onWritable(fn, fd)); with "close" the
//         datapath closes while it waits, and what is left open is reported
//   sink  <address> <port> <count> <readyFile> <timeoutMs>
import dgram from "node:dgram";
import { readdirSync, writeFileSync } from "node:fs";

const dist = await import(new URL("../../../dist/internal/node.js", import.meta.url).href);
const { openDatapath, TX_RECORD, TX_GSO, TX_ICRC, WireCodec, instantiateCore, coreModule, parseGid, SourcePortPool, sockoptAddon } = dist;

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
function makeRecord(codec, ctx, i, psn, src, dst, dstPort, payload, flags, srcPort = ctx.d.port) {
  const pkt = codec.emit({ src, dst, ipId: 0, udpSrcPort: srcPort, udpDstPort: dstPort, opcode: 0x07, destQp: 0x42, psn, payload: new Uint8Array(payload).fill(psn & 0xff) });
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

const openFds = () => readdirSync("/proc/self/fd").length;

async function flood([src, dst, dstPort, countText, payloadText, sndbufText, poolPortText, then]) {
  const count = Number(countText), payload = Number(payloadText), sndbuf = Number(sndbufText);
  const codec = new WireCodec(await instantiateCore(await coreModule()));
  const ctx = open(src, { sendBufferSize: sndbuf });
  const poolPort = poolPortText ? Number(poolPortText) : 0;
  const pool = poolPort ? new SourcePortPool({ address: src, family: v6(src) ? 6 : 4, addon: sockoptAddon(), cap: 4, sweepMs: 600_000 }) : undefined;
  const fd = pool ? pool.fd(poolPort) : -1;
  if (pool && fd < 0) throw new Error(`pool: ${pool.stats().lastFailure}`);
  pool?.socket(poolPort).setSendBufferSize(sndbuf);
  for (let i = 0; i < count; i++) makeRecord(codec, ctx, i, i, src, dst, Number(dstPort), payload, TX_GSO | TX_ICRC, poolPort || ctx.d.port);
  // stops: sendBatch calls that ended early; wakeups: onWritable callbacks; idle: wake-ups whose
  // first sendBatch still sent nothing (the wait woke for a socket that was not the one full)
  let next = 0, stops = 0, wakeups = 0, idle = 0;
  const t0 = performance.now();
  const fdsBefore = openFds();
  let fdsWaiting = 0, fdsAfterClose = 0, calledAfterClose = false;
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`flood: stuck at ${next} of ${count}`)), 30_000);
    const pump = (woken) => {
      while (next < count) {
        const want = Math.min(64, count - next);
        const done = ctx.d.sendBatch(0, next, want, 0, fd);
        if (woken && done === 0) idle++;
        woken = false;
        next += done;
        if (done < want) {
          stops++;
          ctx.d.onWritable(() => (wakeups++, pump(true)), fd);
          if (then === "close") {
            // the datapath closes while it waits: the callback never runs, the dup is closed
            fdsWaiting = openFds();
            ctx.d.onWritable(() => (calledAfterClose = true), fd);
            ctx.d.close();
            fdsAfterClose = openFds();
            clearTimeout(timer);
            setTimeout(resolve, 200);
          }
          return;
        }
      }
      clearTimeout(timer);
      resolve();
    };
    pump(false);
  });
  const results = [...Array(count).keys()].map((i) => ctx.dv.getInt32(i * TX_RECORD.stride + TX_RECORD.result, true));
  const stats = ctx.d.stats();
  const info = then === "close" ? undefined : ctx.d.info();
  if (then !== "close") ctx.d.close();
  await pool?.close();
  console.log(JSON.stringify({ stops, wakeups, idle, sent: next, bad: results.filter((r) => r <= 0).length, ms: performance.now() - t0, stats, info, fdsBefore, fdsWaiting, fdsAfterClose, fdsEnd: openFds(), calledAfterClose }));
}

async function sink([address, port, countText, readyFile, timeoutText]) {
  const want = Number(countText);
  const s = dgram.createSocket({ type: v6(address) ? "udp6" : "udp4", ipv6Only: v6(address) });
  await new Promise((r) => s.bind(Number(port), address, r));
  try {
    s.setRecvBufferSize(4 << 20);
  } catch {}
  // late: datagrams that came after one with a higher PSN; missing and dups over PSNs 0..want-1
  let count = 0, inOrder = true, last = -1, late = 0, dups = 0, highest = -1;
  const seen = new Uint8Array(want);
  const lengths = new Set();
  const finish = () => {
    const missing = seen.length - seen.reduce((n, b) => n + b, 0);
    console.log(JSON.stringify({ count, inOrder, lengths: [...lengths], late, missing, dups }));
    s.close();
  };
  const timer = setTimeout(finish, Number(timeoutText));
  s.on("message", (msg) => {
    const psn = (msg[9] << 16) | (msg[10] << 8) | msg[11];
    if (psn !== last + 1) inOrder = false;
    if (psn < highest) late++;
    highest = Math.max(highest, psn);
    if (psn < want) dups += seen[psn], seen[psn] = 1;
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
