// The tunnel's cost: RC WRITE goodput (64 KiB messages, MTU 4096) and RC SEND 64 B round-trip latency
// from a tunnel client through the gateway to a Node UDP device, next to the same from a Node UDP
// device straight to it — on the native datapath (openDevice's default) and on node:dgram
// (`datapath: "dgram"`, the Node UDP path when issue 11's gateway target was set) — in the same run,
// rounds interleaved, printed as ratios with min/median/max over the rounds (reported, not a gate).
// Processes on loopback: this one holds the clients (the tunnel devices are Node's openTunnelDevice from
// dist/node, on softroce's own WebSocket client or on `ws`, standing in for a browser page), a child holds the target
// device (one RC QP per path; it echoes every SEND with a SEND), another child runs the gateway (rate
// limits raised out of the way). QPN, PSN, ports, rkey and address go over the children's IPC channels.
import { machineLine } from "./machine.mjs";
import { fork } from "node:child_process";
import { once } from "node:events";
import { Access, Mtu, QpType, SendFlags, WcOpcode, WcStatus, WrOpcode, connectQp, datapathOf, openDevice, openTunnelDevice, udpLinkOf } from "../dist/node/index.js";
import { inRoundOrder } from "./order-common.mjs";
import { WAKE_WAYS, openFloor } from "./native/probe.mjs";

const SIZE = 65536;
const DEPTH = Number(process.env.BENCH_DEPTH ?? 64);
const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 1000); // ~65 MB per round and path
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const ITERS = Number(process.env.BENCH_ITERS ?? 2000);
const WARMUP = 200;
const PING = 64;
const ACCESS = Access.LOCAL_WRITE | Access.REMOTE_WRITE;
const ADDR = process.env.BENCH_ADDR ?? "127.0.0.1";
// tunnel: through a gateway whose packets go through its event loop (relay "js"); relay: through a
// second gateway with the native relay thread (relay "native"), the rounds interleaved with the others;
// relayws: the same through a third relay gateway, the client on the `ws` package (webSocket: "ws")
// where the others use the default (softroce's own client, host/node/ws-client.ts); relayab: the relay
// path's own gateway and client with the relay's request poll switched (relayRequestPollUs) to
// BENCH_REQUEST_POLL_AB µs during its slices (default: 300 when the gateway's is off, else 0) — the
// request poll's A/B in the same interleaved rounds, one command; with BENCH_RELAY_AB=join it switches
// the relay's ACK joining (relayJoinAcks, on by default) the other way instead, and with
// BENCH_RELAY_AB=ackorder the client's link sends its ACKs where the device makes them (before the
// requests of the same turn: TunnelLink.ackAfterRequests false, the way before)
const ALL_PATHS = ["native", "dgram", "tunnel", "relay", "relayab", "relayws"];
const TUNNELS = ["tunnel", "relay", "relayab", "relayws"];
// BENCH_PATHS=tunnel (say) runs only those paths: for profiling one (ratios need native, dgram and tunnel)
const PATHS = (process.env.BENCH_PATHS ?? ALL_PATHS.join(",")).split(",").filter((p) => ALL_PATHS.includes(p));
// BENCH_FLOOR (on unless 0): each round trip round also runs bench/native/wake.c's gateway shape
// (pinger -TCP- relay -UDP- echo, three C processes) and its direct UDP ping-pong, each once blocking
// in epoll_wait and once spinning (looks that yield the CPU between them, as the relay's polls do),
// BENCH_FLOOR_ITERS (2000) round trips each at BENCH_ADDR, in the round's order with the paths: what a
// relay hop adds with no user-space work at all, set slice by slice against this run's node:dgram
// round trip — the best relay/dgram a relay of the gateway's shape could reach here
const FLOOR = process.env.BENCH_FLOOR !== "0";
const FLOOR_ITERS = Number(process.env.BENCH_FLOOR_ITERS ?? 2000);
const TOKEN = "bench-token";
const med = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];

// BENCH_TRACE=N: after the measurements, N more tunnel round trips with a timestamp at every hop
// (process.hrtime: CLOCK_MONOTONIC, one clock for the three processes), printed as a per-hop
// breakdown (median / p90 µs); then N on each relay path and N on the node:dgram path, its hops
// beside the relay's. Wrappers on the instances only; the measured rounds run without them.
// The round trips also print the target's busy-poll windows during each path's slices.
const TRACE = Number(process.env.BENCH_TRACE ?? 0);
const marks = {};
const now = () => Number(process.hrtime.bigint());
const mark = (k) => (marks[k] ??= []).push(now());
/**
 * Replaces `o[name]` by a wrapper that marks `k` before calling the original (and `kEnd`, when given,
 * once it returned); returns what puts the original back.
 */
function hook(o, name, k, kEnd) {
  const f = o[name];
  o[name] = function (...a) {
    mark(k);
    const r = f.apply(this, a);
    if (kEnd) mark(kEnd);
    return r;
  };
  return () => void (o[name] = f);
}
/** Marks `k` whenever the socket under `ws` reads (before ws parses it). */
function hookRead(ws, k) {
  if (ws._socket) ws._socket.prependListener("data", () => mark(k));
  else hook(ws, "onRead", k); // softroce's client (no 'data' events: onread)
}

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
  // BENCH_TARGET_BUSY_POLL: the target device's busy poll (openDevice's busyPollUs: µs, or "adaptive", the default)
  const tbp = process.env.BENCH_TARGET_BUSY_POLL;
  const busyPollUs = tbp === undefined || tbp === "adaptive" ? undefined : Number(tbp);
  const s = side(await openDevice({ address: ADDR, port: 0, ...devOpts, ...(busyPollUs === undefined ? {} : { busyPollUs }) }));
  const qps = {};
  for (const path of PATHS) {
    const cq = s.d.createCq(DEPTH * 2);
    const qp = s.qp(cq);
    qps[path] = { cq, qp, psn: (Math.random() * 0xffffff) | 0 };
  }
  const postRecv = (q) => q.qp.postRecv({ wrId: 1n, sgList: [s.mr.sge(0, PING)] });
  process.on("message", async (msg) => {
    if (msg.type === "exit") return (s.d.close(), process.disconnect());
    if (msg.type === "trace") return (marks.on = msg.on, process.send({ type: "trace", marks }));
    if (msg.type === "stats") {
      const l = udpLinkOf(s.d);
      const st = l.path === "native" ? l.datapathStats() : undefined;
      const busy = st ? { windows: st.rxBusyPolls, hits: st.rxBusyHits, ready: st.rxBusyReady ?? 0, gated: st.rxBusyGated ?? 0, late: st.rxBusyLate ?? 0 } : undefined;
      return process.send({ type: "stats", drops: s.d.port.stats.drops, busy, counters: Object.fromEntries(Object.entries(s.d.queryCounters()).filter(([, v]) => v)) });
    }
    if (msg.type !== "peer") return;
    const q = qps[msg.path];
    connectQp(q.qp, { qpNum: msg.peer.qpn, psn: msg.peer.psn, gid: msg.peer.gid, port: msg.peer.port }, connOpts(q.psn));
    for (let i = 0; i < 32; i++) postRecv(q);
    process.send({ type: "ready" });
    for (;;) {
      const wc = await q.cq.next();
      if (wc.status !== WcStatus.SUCCESS) throw new Error(`target ${msg.path}: completion status ${wc.status}`);
      if (wc.opcode !== WcOpcode.RECV) continue;
      if (marks.on) mark("t.recv");
      postRecv(q);
      q.qp.postSend({ wrId: 2n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [s.mr.sge(0, PING)] });
      if (marks.on) mark("t.sent");
    }
  });
  const me = (path) => ({ qpn: qps[path].qp.qpNum, psn: qps[path].psn });
  process.send({ type: "hello", port: s.d.limits.port, gid: s.d.queryGid(0), rkey: s.mr.rkey, addr: s.mr.addr.toString(), ...Object.fromEntries(PATHS.map((p) => [p, me(p)])) });
}

// ---- child "gateway" (relay: "js" or "native")
async function gateway(targetPort, relay) {
  const { Gateway } = await import("../dist/gateway/index.js");
  const gw = await Gateway.start({
    listen: ADDR, port: 0, udpAddress: ADDR, udpPort: 0, token: TOKEN, allow: [ADDR], dstPorts: [targetPort],
    packetsPerSecond: 1e9, bytesPerSecond: 1e12, clientQueueBytes: 64 << 20, nativeUdp: process.env.BENCH_GATEWAY_UDP !== "dgram",
    udpBusyPollUs: Number(process.env.BENCH_GATEWAY_BUSY_POLL ?? 0), relay,
    ...(process.env.BENCH_RELAY_BUSY_POLL === undefined ? {} : { relayBusyPollUs: Number(process.env.BENCH_RELAY_BUSY_POLL) }),
    ...(process.env.BENCH_RELAY_REQUEST_POLL === undefined ? {} : { relayRequestPollUs: Number(process.env.BENCH_RELAY_REQUEST_POLL) }),
  });
  if (gw.relayPath !== relay) throw new Error(`gateway relay ${gw.relayPath}, asked ${relay}: ${gw.limitations.join("; ")}`);
  const { monitorEventLoopDelay } = await import("node:perf_hooks");
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  loopDelay.enable();
  process.on("message", (m) => {
    if (m.type === "stats") {
      process.send({ type: "stats", udp: gw.udp.stats, relay: gw.relayStats(), counters: gw.counters, cpu: process.cpuUsage(), loopMaxMs: loopDelay.max / 1e6, loopP99Ms: loopDelay.percentile(99) / 1e6 });
    }
    if (m.type === "trace") {
      // the one client (private fields, read by a bench only)
      for (const c of gw.clients.values()) {
        hookRead(c.ws, "g.tcp");
        hook(c.ws, "send", "g.wsSend");
      }
      hook(gw, "fromUdp", "g.udpRecv");
      if (gw.udp.dp) hook(gw.udp.dp, "sendBatch", "g.udpSend");
      else hook(gw.udp, "send", "g.udpSend");
      process.send({ type: "trace", marks });
    }
    if (m.type === "turn") {
      // a bench-only switch: what clients forward to UDP leaves at the end of the socket read (microtask, the
      // gateway's way) or after the loop's other I/O (setImmediate, the way before)
      if (m.immediate) gw.udpSoon = gw.endTurnSoon;
      else delete gw.udpSoon;
      process.send({ type: "turn" });
    }
    if (m.type === "relayTrace") {
      // the relay thread's own timestamps of its forwarding turns (relay.c trace), for the per-hop breakdown
      if (m.cap !== undefined) gw.relay.trace(m.cap);
      const t = m.take ? Array.from(gw.relay.traceTake(), Number) : [];
      process.send({ type: "relayTrace", t });
    }
    if (m.type === "relayRequestPoll") {
      gw.relay.requestPoll(m.us); // the request poll's A/B (bench-only, between slices)
      process.send({ type: "relayRequestPoll" });
    }
    if (m.type === "relayJoinAcks") {
      gw.relay.joinAcks(m.on); // the ACK joining's A/B (bench-only, between slices)
      process.send({ type: "relayJoinAcks" });
    }
    if (m.type === "relayBusyPoll") {
      gw.relay.busyPoll(m.us); // a bench-only switch between rounds (relayBusyPollUs is fixed at start otherwise)
      process.send({ type: "relayBusyPoll" });
    }
    if (m.type === "busyPoll") {
      gw.o.udpBusyPollUs = m.us; // a bench-only switch between rounds (the option is fixed at start otherwise)
      process.send({ type: "busyPoll" });
    }
    if (m.type === "exit") gw.close().then(() => process.disconnect());
  });
  process.send({ type: "hello", port: gw.port, udpPort: gw.udpPort, udpPath: gw.udpPath, relayPath: gw.relayPath, requestPollUs: gw.o.relayRequestPollUs, joinAcks: gw.o.relayJoinAcks });
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

const LABEL = {
  native: "Node UDP (native) -> Node UDP:  ", dgram: "Node UDP (dgram) -> Node UDP:   ", tunnel: "tunnel -> gateway (js) -> UDP:  ",
  relay: "tunnel -> gateway (relay) -> UDP:", relayab: "the same, relayab's switch:       ", relayws: "the same, client on `ws`:        ",
};

/** `iters` round trips after `warmup` unmeasured ones; returns the measured ones in µs. */
async function pingPong(c, warmup, iters) {
  const rtts = [];
  for (let i = 0; i < warmup + iters; i++) {
    const t0 = performance.now();
    c.qp.postSend({ wrId: 2n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [c.mr.sge(0, PING)] });
    for (;;) {
      const wc = check(await c.cq.next());
      if (wc.opcode === WcOpcode.RECV) break;
    }
    if (i >= warmup) rtts.push((performance.now() - t0) * 1000);
    c.qp.postRecv({ wrId: 1n, sgList: [c.mr.sge(SIZE, PING)] });
  }
  // the last SEND's own completion may still be queued: drain it
  await new Promise((r) => setTimeout(r, 20));
  for (const w of c.cq.poll(64)) check(w);
  return rtts;
}

async function parent() {
  const self = new URL(import.meta.url).pathname;
  const tc = fork(self, ["target"], { stdio: "inherit" });
  const [t] = await once(tc, "message");
  // one gateway per tunnel path: its packets through the event loop (tunnel) or the native relay (relay)
  const gws = {};
  for (const p of PATHS.filter((x) => TUNNELS.includes(x) && x !== "relayab")) {
    const c = fork(self, ["gateway", String(t.port), p === "tunnel" ? "js" : "native"], { stdio: "inherit" });
    const [hello] = await once(c, "message");
    gws[p] = { c, g: hello };
  }
  if (PATHS.includes("relayab") && !gws.relay) throw new Error("BENCH_PATHS: relayab needs relay (it switches the relay gateway's request poll)");
  // the request poll's A/B: relayab is the relay path's gateway and client, switched during its slices
  // BENCH_RELAY_AB=join: relayab switches the relay's ACK joining (relayJoinAcks) instead, to the opposite of the gateway's
  const abKind = process.env.BENCH_RELAY_AB ?? "request";
  if (!["request", "join", "ackorder"].includes(abKind)) throw new RangeError(`BENCH_RELAY_AB ${abKind}: request, join or ackorder`);
  const ab = !(gws.relay && PATHS.includes("relayab")) ? undefined
    : abKind === "join" ? { kind: "join", on: gws.relay.g.joinAcks ? 0 : 1, off: gws.relay.g.joinAcks ? 1 : 0 }
    : abKind === "ackorder" ? { kind: "ackorder", on: false, off: true }
    : { kind: "request", on: Number(process.env.BENCH_REQUEST_POLL_AB ?? (gws.relay.g.requestPollUs ? 0 : 300)), off: gws.relay.g.requestPollUs };
  if (ab) gws.relayab = gws.relay;
  /** The paths in round r's order: a seeded shuffle (BENCH_SEED), so that no path always goes first or after the same one. */
  const inOrder = (r) => inRoundOrder(PATHS, r);
  /** Runs `f` with the relay's request poll switched for the relayab path (the relay's own window otherwise). */
  const asPath = async (p, f) => {
    if (p !== "relayab") return f();
    const set = (v) => (ab.kind === "ackorder" ? (tuns.relay.link.ackAfterRequests = v)
      : ab.kind === "join" ? ask(gws.relay.c, { type: "relayJoinAcks", on: v }, "relayJoinAcks") : ask(gws.relay.c, { type: "relayRequestPoll", us: v }, "relayRequestPoll"));
    await set(ab.on);
    try {
      return await f();
    } finally {
      await set(ab.off);
    }
  };
  const gc = gws.tunnel?.c ?? gws.relay?.c;
  const g = gws.tunnel?.g ?? gws.relay?.g;

  const clients = {};
  const tuns = {};
  for (const p of PATHS) {
    if (p === "relayab") {
      clients[p] = clients.relay;
      tuns[p] = tuns.relay;
      continue;
    }
    if (TUNNELS.includes(p)) {
      const inFlight = process.env.BENCH_TUNNEL_IN_FLIGHT; // packets (0: no bound)
      const webSocket = p === "relayws" ? "ws" : process.env.BENCH_WEBSOCKET; // the default client unless told
      tuns[p] = await openTunnelDevice(`ws://${ADDR}:${gws[p].g.port}/tunnel`, { token: TOKEN, ...devOpts, highWaterMark: 4 << 20, webSocket, ...(inFlight === undefined ? {} : { inFlightPackets: Number(inFlight), inFlightBytes: 0 }) });
      clients[p] = await client(tuns[p].device, t, p, t.port, tc);
      continue;
    }
    clients[p] = await client(await openDevice({ address: ADDR, port: 0, datapath: p, ...devOpts }), t, p, t.port, tc);
    const got = datapathOf(clients[p].d);
    if (got?.path !== p) throw new Error(`the ${p} client is on ${JSON.stringify(got)}`);
  }

  const tun = tuns.tunnel;
  // goodput: rounds interleaved (native, dgram, tunnel, relay, native, ...); per-round ratios
  const good = { native: [], dgram: [], tunnel: [], relay: [], relayab: [], relayws: [] };
  // CPU time (user + system) per 64 KiB message: this process's during each path's rounds, the gateway's during the tunnel's
  const cpu = { native: 0, dgram: 0, tunnel: 0, relay: 0, relayab: 0, relayws: 0, gw: { tunnel: 0, relay: 0, relayab: 0, relayws: 0 }, gwSys: { tunnel: 0, relay: 0, relayab: 0, relayws: 0 } };
  const cpuUs = (u) => u.user + u.system;
  for (let r = 0; r < ROUNDS; r++) {
    for (const p of inOrder(r)) {
      const g0 = gws[p] ? (await ask(gws[p].c, { type: "stats" }, "stats")).cpu : undefined;
      const c0 = process.cpuUsage();
      good[p].push(await asPath(p, () => writeGoodput(clients[p], t)));
      cpu[p] += cpuUs(process.cpuUsage(c0));
      if (g0) {
        const g1 = (await ask(gws[p].c, { type: "stats" }, "stats")).cpu;
        cpu.gw[p] += cpuUs(g1) - cpuUs(g0);
        cpu.gwSys[p] += g1.system - g0.system;
      }
    }
  }
  // round trip: the iterations in ROUNDS slices, interleaved the same way
  const rtt = { native: [], dgram: [], tunnel: [], relay: [], relayab: [], relayws: [] };
  // and each gateway's CPU time (user + system) during its path's slices
  const rttCpu = { tunnel: 0, relay: 0, relayab: 0, relayws: 0 };
  // and the target's busy-poll windows during each path's slices (windows, hits, gated)
  const targetBusy = {};
  // and the floor in C (BENCH_FLOOR): the relay shape's round trip less the direct UDP one, per round
  const floor = FLOOR && PATHS.includes("dgram") ? openFloor("relay", FLOOR_ITERS, ADDR) : undefined;
  for (let r = 0; r < ROUNDS; r++) {
    for (const p of inRoundOrder(floor ? [...PATHS, "floor"] : PATHS, r)) {
      if (p === "floor") {
        floor.round();
        continue;
      }
      const g0 = gws[p] ? (await ask(gws[p].c, { type: "stats" }, "stats")).cpu : undefined;
      const b0 = (await ask(tc, { type: "stats" }, "stats")).busy;
      rtt[p].push(...(await asPath(p, () => pingPong(clients[p], r === 0 ? WARMUP : 0, Math.ceil(ITERS / ROUNDS)))));
      if (g0) rttCpu[p] += cpuUs((await ask(gws[p].c, { type: "stats" }, "stats")).cpu) - cpuUs(g0);
      const b1 = (await ask(tc, { type: "stats" }, "stats")).busy;
      if (b0 && b1) for (const k of Object.keys(b1)) (targetBusy[p] ??= {})[k] = (targetBusy[p]?.[k] ?? 0) + b1[k] - b0[k];
    }
  }
  // BENCH_BUSY_POLL_SWEEP=0,100,300: the tunnel round trip again with each gateway busy-poll window, rounds interleaved
  const sweep = (process.env.BENCH_BUSY_POLL_SWEEP ?? "").split(",").filter((x) => x !== "").map(Number);
  const swept = Object.fromEntries(sweep.map((us) => [us, []]));
  if (sweep.length && clients.tunnel) {
    for (let r = 0; r < ROUNDS; r++) {
      for (const p of PATHS) if (!TUNNELS.includes(p)) (swept[p] ??= []).push(med(await pingPong(clients[p], 50, Math.ceil(ITERS / ROUNDS))));
      for (const us of sweep) {
        await ask(gc, { type: "busyPoll", us }, "busyPoll");
        swept[us].push(med(await pingPong(clients.tunnel, 50, Math.ceil(ITERS / ROUNDS))));
      }
      if (process.env.BENCH_TURN_AB) {
        await ask(gc, { type: "busyPoll", us: sweep[0] }, "busyPoll");
        await ask(gc, { type: "turn", immediate: true }, "turn");
        (swept.immediate ??= []).push(med(await pingPong(clients.tunnel, 50, Math.ceil(ITERS / ROUNDS))));
        await ask(gc, { type: "turn", immediate: false }, "turn");
      }
    }
    await ask(gc, { type: "busyPoll", us: Number(process.env.BENCH_GATEWAY_BUSY_POLL ?? 0) }, "busyPoll");
  }
  // BENCH_RELAY_BUSY_POLL_SWEEP=0,30,60: the relay path's round trip again with each relay busy-poll window (relayBusyPollUs),
  // rounds interleaved with the UDP paths; the relay gateway's CPU during each
  const rsweep = (process.env.BENCH_RELAY_BUSY_POLL_SWEEP ?? "").split(",").filter((x) => x !== "").map(Number);
  const rswept = Object.fromEntries(rsweep.map((us) => [us, []]));
  const rsweptCpu = Object.fromEntries(rsweep.map((us) => [us, 0]));
  const rsweptUdp = {};
  const rsweptGood = {};
  if (rsweep.length && clients.relay) {
    const n = Math.ceil(ITERS / ROUNDS);
    for (let r = 0; r < ROUNDS; r++) {
      for (const p of PATHS) if (!TUNNELS.includes(p)) (rsweptUdp[p] ??= []).push(med(await pingPong(clients[p], 50, n)));
      for (const us of rsweep) {
        await ask(gws.relay.c, { type: "relayBusyPoll", us }, "relayBusyPoll");
        const c0 = (await ask(gws.relay.c, { type: "stats" }, "stats")).cpu;
        rswept[us].push(med(await pingPong(clients.relay, 50, n)));
        const c1 = (await ask(gws.relay.c, { type: "stats" }, "stats")).cpu;
        rsweptCpu[us] += (c1.user + c1.system - c0.user - c0.system) / (n + 50);
        (rsweptGood[us] ??= []).push(await writeGoodput(clients.relay, t)); // what the window does to a WRITE stream
      }
    }
    await ask(gws.relay.c, { type: "relayBusyPoll", us: Number(process.env.BENCH_RELAY_BUSY_POLL ?? 0) }, "relayBusyPoll");
  }
  let breakdown;
  if (TRACE && clients.tunnel) {
    await ask(gc, { type: "trace" }, "trace");
    await ask(tc, { type: "trace", on: true }, "trace");
    hookRead(tun.link.ws, "c.tcp");
    hook(tun.link.ws, "send", "c.wsSend");
    const onMessage = tun.link.onMessage;
    tun.link.onMessage = function (...a) { mark("c.msg"); const r = onMessage.apply(this, a); mark("c.msgEnd"); return r; };
    const c = clients.tunnel;
    const unhookPost = hook(c.qp, "postSend", "c.post");
    const total = await pingPong(c, 0, TRACE);
    unhookPost();
    const g = (await ask(gc, { type: "trace" }, "trace")).marks;
    const t = (await ask(tc, { type: "trace", on: false }, "trace")).marks;
    breakdown = hops({ ...marks, ...g, ...t }, total);
  }
  // the same through the relay gateway: its thread has no JS to mark, so its stages are measured
  // between the client's marks and the target's (each then holds one gateway pass and one hop)
  for (const rp of ["relay", "relayab", "relayws"]) {
    if (!TRACE || !clients[rp]) continue;
    for (const k of Object.keys(marks)) delete marks[k];
    await ask(tc, { type: "trace", on: true }, "trace");
    const link = tuns[rp].link;
    if (!link.traced) { // relayab shares the relay path's link: hooked once
      link.traced = true;
      hookRead(link.ws, "c.tcp");
      // the send call itself (frame, mask, the socket's write path and its write system call), timed
      const send = link.ws.send;
      link.ws.send = function (...a) {
        mark("c.wsSend");
        const t0 = now();
        const r = send.apply(this, a);
        (marks["c.sendCall"] ??= []).push(now() - t0);
        return r;
      };
      const onMessage = link.onMessage;
      link.onMessage = function (...a) { mark("c.msg"); const r = onMessage.apply(this, a); mark("c.msgEnd"); return r; };
      // inside the client's send side: the link's turn end (the port's deferred flush, then the BATCH), the datagrams it takes
      hook(link, "turnEnd", "c.turnEnd");
      hook(link, "sendRing", "c.linkSend");
      hook(link, "send", "c.linkSend");
    }
    const c = clients[rp];
    const unhookPost = hook(c.qp, "postSend", "c.post", "c.postEnd");
    const rg = gws[rp].c;
    await ask(rg, { type: "relayTrace", cap: 8 * TRACE + 64 }, "relayTrace");
    const total = await asPath(rp, () => pingPong(c, 0, TRACE));
    unhookPost();
    const t = (await ask(tc, { type: "trace", on: false }, "trace")).marks;
    // the relay's turns: woken by the client's TCP and sent to UDP, or woken by UDP and queued frames to the client
    const rt = (await ask(rg, { type: "relayTrace", take: true }, "relayTrace")).t;
    await ask(rg, { type: "relayTrace", cap: 0 }, "relayTrace");
    for (let i = 0; i + 4 < rt.length; i += 5) {
      const [wake, end, woke, udpOut, framesOut] = rt.slice(i, i + 5);
      if (woke & 1 && udpOut > 0) (marks["r.tcpWake"] ??= []).push(wake), (marks["r.tcpBusy"] ??= []).push(end - wake);
      if (woke & 2 && framesOut > 0) (marks["r.udpEnd"] ??= []).push(end), (marks["r.udpBusy"] ??= []).push(end - wake);
    }
    const busy = marks["r.udpBusy"] ?? [];
    const sendCall = marks["c.sendCall"] ?? [];
    breakdown = `${breakdown ? `${breakdown}\n` : ""}${hops({ ...marks, ...t }, total, RELAY_STAGES, rp === "relay" ? "relay (softroce WebSocket client)" : rp === "relayab" ? `relay, ${ab.kind === "ackorder" ? "the client's ACKs where the device makes them" : ab.kind === "join" ? `ACK joining ${ab.on ? "on" : "off"}` : `request poll ${ab.on} us`} (softroce WebSocket client)` : "relay (ws client)")}`;
    const tcpBusy = marks["r.tcpBusy"] ?? [];
    if (tcpBusy.length) breakdown += `\n  (the relay's client -> UDP turns: ${(med(tcpBusy) / 1000).toFixed(1)} us median from its wake-up to its sendmmsg's return: read, parse, checks, sendmmsg)`;
    if (busy.length) breakdown += `\n  (the relay's UDP -> client turns: ${(med(busy) / 1000).toFixed(1)} us median from its wake-up to its write)`;
    if (sendCall.length) breakdown += `\n  (the client's send call, from the frame to its write system call's return: ${(med(sendCall) / 1000).toFixed(1)} / ${([...sendCall].sort((x, y) => x - y)[Math.floor(sendCall.length * 0.9)] / 1000).toFixed(1)} us median / p90)`;
  }
  // the node:dgram path, marked the same way (the client's link send and its socket's receive), so that
  // its hops stand beside the relay's: what the relay adds is the difference
  if (TRACE && clients.dgram) {
    for (const k of Object.keys(marks)) delete marks[k];
    await ask(tc, { type: "trace", on: true }, "trace");
    const c = clients.dgram;
    const link = udpLinkOf(c.d);
    const unhookSend = hook(link, "send", "c.udpSend");
    const onRecv = () => mark("c.udpRecv");
    link.socket.prependListener("message", onRecv);
    const unhookPost = hook(c.qp, "postSend", "c.post");
    const total = await asPath("dgram", () => pingPong(c, 0, TRACE));
    unhookPost();
    unhookSend();
    link.socket.removeListener("message", onRecv);
    const t = (await ask(tc, { type: "trace", on: false }, "trace")).marks;
    breakdown = `${breakdown ? `${breakdown}\n` : ""}${hops({ ...marks, ...t }, total, DGRAM_STAGES, "node:dgram")}`;
  }
  const gwStats = await ask(gc, { type: "stats" }, "stats");
  const relayStats = gws.relay ? await ask(gws.relay.c, { type: "stats" }, "stats") : undefined;
  const targetStats = await ask(tc, { type: "stats" }, "stats");

  const spread = (a) => { const b = [...a].sort((x, y) => x - y); return `${b[0].toFixed(2)} / ${b[b.length >> 1].toFixed(2)} / ${b[b.length - 1].toFixed(2)}`; };
  const ratios = (a, b) => a.map((x, i) => x / b[i]);
  const pct = (a, q) => { const b = [...a].sort((x, y) => x - y); return b[Math.min(b.length - 1, Math.floor(b.length * q))]; };
  const retries = (d) => d.queryCounters().completer_retry_err ?? 0;
  console.log(`tunnel clients = Node's openTunnelDevice (from dist/node; WebSocket client ${process.env.BENCH_WEBSOCKET ?? "softroce"}, relayws: ws) standing in for a browser page; each gateway in its own process`);
  console.log(`gateway UDP side: ${g.udpPath}; paths ${PATHS.join(", ")}; machine: ${machineLine()}`);
  const mtu = (c) => 128 << c.qp.query().attr.pathMtu;
  for (const p of PATHS) if (mtu(clients[p]) !== 4096) throw new Error(`path MTU ${p} ${mtu(clients[p])}: expected 4096`);
  console.log(`RC WRITE ${SIZE} B, MTU 4096, ${DEPTH} in flight, ${ROUNDS} rounds x ${MESSAGES} messages per path, interleaved (MB/s = 10^6 B/s; min / median / max):`);
  const perMsg = (us) => (us / (ROUNDS * MESSAGES)).toFixed(0);
  for (const p of PATHS) console.log(`  ${LABEL[p]} ${spread(good[p]).replace(/\.\d\d/g, "")} MB/s  (retransmission timeouts ${retries(clients[p].d)}; client CPU ${perMsg(cpu[p])} us/message${gws[p] ? `, gateway CPU ${perMsg(cpu.gw[p])} us/message, ${perMsg(cpu.gwSys[p])} of it in the kernel` : ""})`);
  const has = (...ps) => ps.every((p) => PATHS.includes(p));
  for (const tp of TUNNELS) {
    if (has(tp, "native")) console.log(`  ratio ${tp}/native per round: ${spread(ratios(good[tp], good.native))}`);
    if (has(tp, "dgram")) console.log(`  ratio ${tp}/dgram  per round: ${spread(ratios(good[tp], good.dgram))}   (issue 11's target, >= 0.7, was set against node:dgram)`);
  }
  if (has("tunnel", "relay")) console.log(`  ratio relay/tunnel per round: ${spread(ratios(good.relay, good.tunnel))}`);
  if (has("relay", "relayws")) console.log(`  ratio relay/relayws per round: ${spread(ratios(good.relay, good.relayws))}   (softroce's WebSocket client vs ws)`);
  console.log(`RC SEND ${PING} B round trip (echoed by the target), ${rtt[PATHS[0]].length} iterations per path, median / p99:`);
  for (const p of PATHS) console.log(`  ${LABEL[p]} ${med(rtt[p]).toFixed(1)} / ${pct(rtt[p], 0.99).toFixed(1)} us${gws[p] ? `  (gateway CPU ${(rttCpu[p] / rtt[p].length).toFixed(1)} us per round trip)` : ""}`);
  // per slice too: each slice's median over the other path's in the same slice (the load moves between slices)
  const slices = (a) => Array.from({ length: ROUNDS }, (_, r) => med(a.slice(r * Math.ceil(ITERS / ROUNDS), (r + 1) * Math.ceil(ITERS / ROUNDS))));
  for (const tp of TUNNELS) {
    if (has(tp, "native")) console.log(`  ratio ${tp}/native (median): ${(med(rtt[tp]) / med(rtt.native)).toFixed(2)}; per slice ${spread(ratios(slices(rtt[tp]), slices(rtt.native)))}`);
    if (has(tp, "dgram")) console.log(`  ratio ${tp}/dgram  (median): ${(med(rtt[tp]) / med(rtt.dgram)).toFixed(2)}; per slice ${spread(ratios(slices(rtt[tp]), slices(rtt.dgram)))}   (issue 11's target, <= 1.5, was set against node:dgram)`);
  }
  if (floor) {
    const dgram = slices(rtt.dgram);
    console.log(`  the floor in C (bench/native/wake.c, pinger -TCP- relay -UDP- echo; ${FLOOR_ITERS} round trips a round), over the direct UDP round trip,`);
    console.log(`  and at each slice's node:dgram round trip the best relay/dgram a relay of this shape reaches here:`);
    for (const how of WAKE_WAYS) {
      console.log(`    ${how.padEnd(5)}: a relay hop adds ${spread(floor.added[how])} us; best relay/dgram ${spread(dgram.map((d, i) => (d + floor.added[how][i]) / d))}`);
    }
  }
  if (has("tunnel", "relay")) console.log(`  ratio relay/tunnel (median): ${(med(rtt.relay) / med(rtt.tunnel)).toFixed(2)}; per slice ${spread(ratios(slices(rtt.relay), slices(rtt.tunnel)))}`);
  for (const p of Object.keys(targetBusy)) {
    const b = targetBusy[p];
    console.log(`  the target's busy poll during ${p}'s slices: ${b.windows} windows, ${b.hits} caught the next batch after a wait, ${b.ready} found it there at their first look, ${b.gated} held back, ${b.late} late`);
  }
  if (ab) console.log(`  ratio relayab/relay (median): ${(med(rtt.relayab) / med(rtt.relay)).toFixed(2)}; per slice ${spread(ratios(slices(rtt.relayab), slices(rtt.relay)))}   (${ab.kind === "ackorder" ? "the client's ACKs where the device makes them vs after its requests (TunnelLink.ackAfterRequests)" : ab.kind === "join" ? `ACK joining ${ab.on ? "on" : "off"} vs ${ab.off ? "on" : "off"}` : `the request poll at ${ab.on} us vs ${ab.off} us`}; goodput per round ${spread(ratios(good.relayab, good.relay))})`);
  if (has("relay", "relayws")) console.log(`  ratio relay/relayws (median): ${(med(rtt.relay) / med(rtt.relayws)).toFixed(2)}; per slice ${spread(ratios(slices(rtt.relay), slices(rtt.relayws)))}   (softroce's WebSocket client vs ws)`);
  const u = gwStats.udp;
  if (relayStats?.relay) {
    const r = relayStats.relay;
    console.log(`relay gateway: ${relayStats.counters.udpOut} datagrams out (${r.udpOut} by the relay thread in ${r.udpSendCalls} sendmmsg), ${relayStats.counters.udpIn} in (${r.udpIn} by the thread in ${r.udpReceiveCalls} recvmmsg); ${r.wakeups} thread wake-ups; answer-poll windows ${r.busyPolls} (${r.busyPollHits} answered, ${r.busyPollReady} found it at their first look, ${r.busyPollGated} gated), request-poll windows ${r.requestPolls} (${r.requestPollHits} saw the request, ${r.requestPollReady} found it at their first look, ${r.requestPollGated} gated); punted to JS: ${r.puntedDatagrams} datagrams, ${r.puntedUdp} UDP datagrams, ${r.puntedFrames} frames; refused ${JSON.stringify(relayStats.counters.refused)}`);
  }
  console.log(`gateway${gws.tunnel ? " (js)" : ""}: ${gwStats.counters.udpOut} datagrams out in ${u.sendCalls} send calls, ${u.received} in through ${u.receiveCalls} receive calls (busy polls ${u.polls}, ${u.pollHits} of them answered); ${gwStats.counters.framesIn} messages from the client, ${gwStats.counters.framesOut} to it; refused ${JSON.stringify(gwStats.counters.refused)}, send errors ${u.sendErrors}`);
  if (process.env.BENCH_VERBOSE) console.log(`gateway event loop delay: max ${gwStats.loopMaxMs.toFixed(1)} ms, p99 ${gwStats.loopP99Ms.toFixed(1)} ms`);
  if (process.env.BENCH_VERBOSE) console.log(`target counters ${JSON.stringify(targetStats.counters)}\ntunnel counters ${JSON.stringify(Object.fromEntries(Object.entries(tun?.device.queryCounters() ?? {}).filter(([, v]) => v)))}`);
  if (sweep.length && clients.tunnel) {
    console.log(`tunnel round trip by the gateway's busy-poll window (udpBusyPollUs), ${ROUNDS} interleaved rounds of ${Math.ceil(ITERS / ROUNDS)}, round medians min / median / max us, and per round vs ${sweep[0]} us:`);
    for (const us of sweep) {
      const vs = swept.dgram ? `; vs Node UDP on node:dgram ${spread(ratios(swept[us], swept.dgram))}` : "";
      console.log(`  ${String(us).padStart(5)} us: ${spread(swept[us])}   ratio ${spread(ratios(swept[us], swept[sweep[0]]))}${vs}`);
    }
    if (swept.immediate) console.log(`  ${sweep[0]} us, flushed by setImmediate: ${spread(swept.immediate)}   ratio ${spread(ratios(swept.immediate, swept[sweep[0]]))} (vs the microtask flush)`);
    for (const p of PATHS) if (p !== "tunnel") console.log(`  ${LABEL[p]} ${spread(swept[p])} (the same rounds)`);
  }
  if (rsweep.length && clients.relay) {
    const st = (await ask(gws.relay.c, { type: "stats" }, "stats")).relay;
    console.log(`relay round trip by the relay thread's answer-poll window (relayBusyPollUs), ${ROUNDS} interleaved rounds of ${Math.ceil(ITERS / ROUNDS)}, round medians min / median / max us, per round vs ${rsweep[0]} us, gateway CPU per round trip:`);
    for (const us of rsweep) {
      const vs = rsweptUdp.dgram ? `; vs node:dgram ${spread(ratios(rswept[us], rsweptUdp.dgram))}` : "";
      console.log(`  ${String(us).padStart(5)} us: ${spread(rswept[us])}   ratio ${spread(ratios(rswept[us], rswept[rsweep[0]]))}${vs}; gateway CPU ${(rsweptCpu[us] / ROUNDS).toFixed(1)} us; RC WRITE goodput ${spread(rsweptGood[us]).replace(/\.\d\d/g, "")} MB/s, ratio ${spread(ratios(rsweptGood[us], rsweptGood[rsweep[0]]))}`);
    }
    for (const p of Object.keys(rsweptUdp)) console.log(`  ${LABEL[p]} ${spread(rsweptUdp[p])} (the same rounds)`);
    console.log(`  relay thread: ${st.busyPolls} answer-poll windows, ${st.busyPollHits} of them saw their answer, ${st.busyPollReady} found it at their first look, ${st.busyPollGated} held back by the gate; ${st.wakeups} blocking wake-ups`);
  }
  if (breakdown) console.log(breakdown);
  console.log(`target: drops ${JSON.stringify(targetStats.drops)}; tunnel client: drops ${JSON.stringify(tun?.device.port.stats.drops ?? {})}, link ${JSON.stringify(tun?.link.stats ?? {})}${tuns.relay ? `; relay client: drops ${JSON.stringify(tuns.relay.device.port.stats.drops)}` : ""}`);

  floor?.dispose();
  for (const tn of new Set(Object.values(tuns))) tn.device.close();
  for (const p of PATHS) if (!TUNNELS.includes(p)) clients[p].d.close();
  tc.send({ type: "exit" });
  const gwProcs = [...new Set(Object.values(gws).map((x) => x.c))];
  for (const c of gwProcs) c.send({ type: "exit" });
  await Promise.all([once(tc, "exit"), ...gwProcs.map((c) => once(c, "exit"))]);
}

// The stages of one traced round trip, in order; each takes the first mark of its kind at or after the previous stage's.
const STAGES = [
  ["c.post", "client: postSend"],
  ["c.wsSend", "client: device + link, to ws.send"],
  ["g.tcp", "client ws.send -> gateway TCP read (client's write, wake-up)"],
  ["g.udpSend", "gateway: ws parse, checks, to sendmmsg"],
  ["t.recv", "gateway sendmmsg -> target completion (wake-up, rx, device)"],
  ["t.sent", "target: echo postSend (send inline)"],
  ["g.udpRecv", "target send -> gateway UDP receive (wake-up, recvmmsg)"],
  ["g.wsSend", "gateway: checks, BATCH, to ws.send"],
  ["c.tcp", "gateway ws.send -> client TCP read (write, wake-up)"],
  ["c.msg", "client: ws parse, to the link's message handler"],
  ["c.msgEnd", "client: link, device receive (ACKs it sends)"],
  ["c.done", "client: completion, await"],
];
// Through the relay gateway: the client's and the target's marks, and the relay thread's own (relay.c trace).
const RELAY_STAGES = [
  ["c.post", "client: postSend"],
  ["c.postEnd", "client: postSend itself (the verbs, the doorbell, the device)"],
  ["c.turnEnd", "client: cq.next and the rest of the turn, to the link's turn end"],
  ["c.linkSend", "client: the port's deferred flush (the device's TX), to the link"],
  ["c.wsSend", "client: the link's BATCH, to ws.send"],
  ["r.tcpWake", "client send -> relay thread awake (write, wake-up)"],
  // not the relay turn's end: the target often completes before it (it runs on the other CPU from the
  // relay's sendmmsg on), so that order would leave those round trips out; the turn is given apart
  ["t.recv", "relay awake -> target completion (relay turn, wake-up, rx, device)"],
  ["t.sent", "target: echo postSend (send inline)"],
  ["r.udpEnd", "target send -> relay's write to the client done"],
  ["c.tcp", "relay write -> client TCP read (wake-up)"],
  ["c.msg", "client: ws parse, to the link's message handler"],
  ["c.msgEnd", "client: link, device receive (ACKs it sends)"],
  ["c.done", "client: completion, await"],
];
// The node:dgram path: the client's marks and the target's.
const DGRAM_STAGES = [
  ["c.post", "client: postSend"],
  ["c.udpSend", "client: device, to the link's send"],
  ["t.recv", "client send -> target completion (dgram send, wake-up, rx, device)"],
  ["t.sent", "target: echo postSend (send inline)"],
  ["c.udpRecv", "target send -> client's socket message (wake-up, libuv)"],
  ["c.done", "client: device receive, completion, await"],
];
function hops(m, total, stages = STAGES, what = "tunnel") {
  const STAGES_ = stages;
  const posts = m["c.post"] ?? [];
  const per = STAGES_.slice(1).map(() => []);
  let n = 0;
  const missing = {}; // the first stage not found, for the round trips left out
  for (let i = 0; i < posts.length; i++) {
    const end = i + 1 < posts.length ? posts[i + 1] : Infinity;
    let t = posts[i];
    const row = [];
    for (const [k] of STAGES_.slice(1)) {
      if (k === "c.done") { row.push(t + 0); break; }
      const x = (m[k] ?? []).find((v) => v >= t && v < end);
      if (x === undefined) break;
      row.push(x);
      t = x;
    }
    if (row.length !== STAGES_.length - 1) {
      const k = STAGES_[row.length + 1][0];
      missing[k] = (missing[k] ?? 0) + 1;
      continue;
    }
    // the last stage: the client's completion, from the iteration's measured total
    row[row.length - 1] = posts[i] + total[i] * 1000;
    let prev = posts[i];
    row.forEach((x, j) => { per[j].push((x - prev) / 1000); prev = x; });
    n++;
  }
  const q = (a, f) => { const b = [...a].sort((x, y) => x - y); return b[Math.min(b.length - 1, Math.floor(b.length * f))] ?? NaN; };
  const left = Object.entries(missing).map(([k, c]) => `${c} without ${k}`).join(", ");
  const lines = [`per-hop breakdown of ${n} of ${posts.length} traced ${what} round trips (median / p90 us; medians do not add up to the total's)${left ? `; left out: ${left}` : ""}:`];
  STAGES_.slice(1).forEach(([, label], j) => lines.push(`  ${label.padEnd(64)} ${q(per[j], 0.5).toFixed(1).padStart(7)} / ${q(per[j], 0.9).toFixed(1)}`));
  lines.push(`  ${"round trip".padEnd(64)} ${q(total, 0.5).toFixed(1).padStart(7)} / ${q(total, 0.9).toFixed(1)}`);
  return lines.join("\n");
}

if (process.argv[2] === "target") await target();
else if (process.argv[2] === "gateway") await gateway(Number(process.argv[3]), process.argv[4] ?? "js");
else await parent();
