// The tunnel's cost: RC WRITE goodput (64 KiB messages, MTU 4096) and RC SEND 64 B round-trip latency
// from a tunnel client through the gateway to a Node UDP device, next to the same from a Node UDP
// device straight to it, in the same run, printed as ratios (reported, not a gate).
// Three processes on loopback: this one holds both clients (the tunnel device is a Node `ws` client
// standing in for a browser page: openTunnelDevice from dist/node), a child holds the target device
// (one RC QP per path; it echoes every SEND with a SEND), another child runs the gateway (rate limits
// raised out of the way). QPN, PSN, ports, rkey and address go over the children's IPC channels.
import { fork } from "node:child_process";
import { once } from "node:events";
import { Access, Mtu, QpType, SendFlags, WcOpcode, WcStatus, WrOpcode, connectQp, openDevice, openTunnelDevice } from "../dist/node/index.js";

const SIZE = 65536;
const DEPTH = Number(process.env.BENCH_DEPTH ?? 64);
const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 1000); // ~65 MB per round and path
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const ITERS = Number(process.env.BENCH_ITERS ?? 2000);
const WARMUP = 200;
const PING = 64;
const ACCESS = Access.LOCAL_WRITE | Access.REMOTE_WRITE;
const ADDR = "127.0.0.1";
const TOKEN = "bench-token";

function side(d) {
  const pd = d.allocPd();
  const mr = pd.regMr(DEPTH * SIZE, ACCESS);
  const qp = (cq) => pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: DEPTH, maxRecvWr: 32, maxSendSge: 1, maxRecvSge: 1 } });
  return { d, pd, mr, qp };
}
const devOpts = { activeMtu: Mtu.MTU_4096, mrArenaBytes: DEPTH * SIZE + (1 << 20) };
const connOpts = (sqPsn) => ({ sqPsn, pathMtu: Mtu.MTU_4096, qpAccessFlags: ACCESS });

// ---- child "target": a Node UDP device with one QP per path; echoes SENDs
async function target() {
  const s = side(await openDevice({ address: ADDR, port: 0, ...devOpts }));
  const qps = {};
  for (const path of ["udp", "tunnel"]) {
    const cq = s.d.createCq(DEPTH * 2);
    const qp = s.qp(cq);
    qps[path] = { cq, qp, psn: (Math.random() * 0xffffff) | 0 };
  }
  const postRecv = (q) => q.qp.postRecv({ wrId: 1n, sgList: [s.mr.sge(0, PING)] });
  process.on("message", async (msg) => {
    if (msg.type === "exit") return (s.d.close(), process.disconnect());
    if (msg.type !== "peer") return;
    const q = qps[msg.path];
    connectQp(q.qp, { qpNum: msg.peer.qpn, psn: msg.peer.psn, gid: msg.peer.gid, port: msg.peer.port }, connOpts(q.psn));
    for (let i = 0; i < 32; i++) postRecv(q);
    process.send({ type: "ready" });
    for (;;) {
      const wc = await q.cq.next();
      if (wc.status !== WcStatus.SUCCESS) throw new Error(`target ${msg.path}: completion status ${wc.status}`);
      if (wc.opcode !== WcOpcode.RECV) continue;
      postRecv(q);
      q.qp.postSend({ wrId: 2n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [s.mr.sge(0, PING)] });
    }
  });
  const me = (path) => ({ qpn: qps[path].qp.qpNum, psn: qps[path].psn });
  process.send({ type: "hello", port: s.d.limits.port, gid: s.d.queryGid(0), rkey: s.mr.rkey, addr: s.mr.addr.toString(), udp: me("udp"), tunnel: me("tunnel") });
}

// ---- child "gateway"
async function gateway(targetPort) {
  const { Gateway } = await import("../dist/gateway/index.js");
  const gw = await Gateway.start({
    port: 0, udpPort: 0, token: TOKEN, allow: [ADDR], dstPorts: [targetPort],
    packetsPerSecond: 1e9, bytesPerSecond: 1e12, clientQueueBytes: 64 << 20,
  });
  process.on("message", (m) => m.type === "exit" && gw.close().then(() => process.disconnect()));
  process.send({ type: "hello", port: gw.port, udpPort: gw.udpPort });
}

// ---- parent: both clients
function ask(c, msg, type) {
  return new Promise((resolve) => {
    const on = (m) => m.type === type && (c.off("message", on), resolve(m));
    c.on("message", on);
    c.send(msg);
  });
}

async function client(d, t, path, remotePort, c) {
  const s = side(d);
  const cq = d.createCq(DEPTH * 2);
  const qp = s.qp(cq);
  const psn = (Math.random() * 0xffffff) | 0;
  await ask(c, { type: "peer", path, peer: { qpn: qp.qpNum, psn, gid: d.queryGid(0), port: d.limits.port } }, "ready");
  connectQp(qp, { qpNum: t[path].qpn, psn: t[path].psn, gid: t.gid, port: remotePort }, connOpts(psn));
  for (let i = 0; i < 32; i++) qp.postRecv({ wrId: 1n, sgList: [s.mr.sge(SIZE, PING)] });
  return { d, cq, qp, mr: s.mr };
}

const check = (wc) => {
  if (wc.status !== WcStatus.SUCCESS) throw new Error(`completion status ${wc.status} (opcode ${wc.opcode})`);
  return wc;
};

async function writeGoodput(c, t) {
  let posted = 0, done = 0;
  const post = () => {
    const slot = posted % DEPTH;
    c.qp.postSend({ wrId: BigInt(posted++), opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED, sgList: [c.mr.sge(slot * SIZE, SIZE)],
      rdma: { remoteAddr: BigInt(t.addr) + BigInt(slot * SIZE), rkey: t.rkey } });
  };
  const t0 = performance.now();
  while (posted < Math.min(DEPTH, MESSAGES)) post();
  while (done < MESSAGES) {
    check(await c.cq.next());
    done++;
    for (const w of c.cq.poll(64)) check(w), done++;
    while (posted < MESSAGES && posted - done < DEPTH) post();
  }
  return (SIZE * MESSAGES) / ((performance.now() - t0) * 1000);
}

async function pingPong(c) {
  const rtts = [];
  for (let i = 0; i < WARMUP + ITERS; i++) {
    const t0 = performance.now();
    c.qp.postSend({ wrId: 2n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [c.mr.sge(0, PING)] });
    for (;;) {
      const wc = check(await c.cq.next());
      if (wc.opcode === WcOpcode.RECV) break;
    }
    if (i >= WARMUP) rtts.push((performance.now() - t0) * 1000);
    c.qp.postRecv({ wrId: 1n, sgList: [c.mr.sge(SIZE, PING)] });
  }
  // the last SEND's own completion may still be queued: drain it
  await new Promise((r) => setTimeout(r, 20));
  for (const w of c.cq.poll(64)) check(w);
  rtts.sort((a, b) => a - b);
  return { p50: rtts[rtts.length >> 1], p99: rtts[Math.floor(rtts.length * 0.99)] };
}

async function parent() {
  const self = new URL(import.meta.url).pathname;
  const tc = fork(self, ["target"], { stdio: "inherit" });
  const [t] = await once(tc, "message");
  const gc = fork(self, ["gateway", String(t.port)], { stdio: "inherit" });
  const [g] = await once(gc, "message");

  const udp = await client(await openDevice({ address: ADDR, port: 0, ...devOpts }), t, "udp", t.port, tc);
  const tun = await openTunnelDevice(`ws://${ADDR}:${g.port}/tunnel`, { token: TOKEN, ...devOpts, highWaterMark: 4 << 20 });
  const tunnel = await client(tun.device, t, "tunnel", t.port, tc);

  const best = { udp: 0, tunnel: 0 };
  for (let r = 0; r < ROUNDS; r++) {
    best.udp = Math.max(best.udp, await writeGoodput(udp, t));
    best.tunnel = Math.max(best.tunnel, await writeGoodput(tunnel, t));
  }
  const lat = { udp: await pingPong(udp), tunnel: await pingPong(tunnel) };

  const retries = (d) => d.queryCounters().completer_retry_err ?? 0;
  console.log("tunnel client = a Node `ws` client (openTunnelDevice from dist/node) standing in for a browser page; gateway in its own process");
  const mtu = (c) => 128 << c.qp.query().attr.pathMtu;
  if (mtu(udp) !== 4096 || mtu(tunnel) !== 4096) throw new Error(`path MTU udp ${mtu(udp)}, tunnel ${mtu(tunnel)}: expected 4096 on both`);
  console.log(`RC WRITE ${SIZE} B, MTU 4096, ${DEPTH} in flight, best of ${ROUNDS} x ${MESSAGES} messages (MB/s = 10^6 B/s):`);
  console.log(`  Node UDP -> Node UDP:            ${best.udp.toFixed(0)} MB/s`);
  console.log(`  tunnel -> gateway -> Node UDP:   ${best.tunnel.toFixed(0)} MB/s`);
  console.log(`  ratio tunnel/UDP: ${(best.tunnel / best.udp).toFixed(2)}  (retransmission timeouts: udp ${retries(udp.d)}, tunnel ${retries(tunnel.d)})`);
  console.log(`RC SEND ${PING} B round trip (echoed by the target), ${ITERS} iterations, median / p99:`);
  console.log(`  Node UDP -> Node UDP:            ${lat.udp.p50.toFixed(1)} / ${lat.udp.p99.toFixed(1)} us`);
  console.log(`  tunnel -> gateway -> Node UDP:   ${lat.tunnel.p50.toFixed(1)} / ${lat.tunnel.p99.toFixed(1)} us`);
  console.log(`  ratio tunnel/UDP (median): ${(lat.tunnel.p50 / lat.udp.p50).toFixed(2)}`);

  tun.device.close();
  udp.d.close();
  tc.send({ type: "exit" });
  gc.send({ type: "exit" });
  await Promise.all([once(tc, "exit"), once(gc, "exit")]);
}

if (process.argv[2] === "target") await target();
else if (process.argv[2] === "gateway") await gateway(Number(process.argv[3]));
else await parent();
