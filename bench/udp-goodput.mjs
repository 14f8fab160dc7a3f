// Two-process goodput over UDP loopback: RC WRITE (64 KiB messages, MTU 4096, 128 in flight) from a
// softroce device in this process to one in a child process, next to raw dgram goodput between the
// same two processes with the RC WRITE's datagram size (4112 B: BTH + 4096 + ICRC), the sender keeping
// a bounded window in flight (the receiver returns a cumulative count every 32 datagrams), measured
// at the receiver, loss counted. Target: RC/raw >= 0.85 (reported, not a gate). Best of BENCH_ROUNDS.
// The two processes exchange QPN, PSN, UDP port, rkey and address over the child's IPC channel.
import { fork } from "node:child_process";
import dgram from "node:dgram";
import { once } from "node:events";
import { sendRawWindowed } from "./native/raw-sender.mjs";
import { Access, Mtu, QpType, SendFlags, WcStatus, WrOpcode, connectQp, openDevice } from "../dist/node/index.js";

const SIZE = 65536;
const DEPTH = 128;
const DGRAM = 4112;
const WINDOW = Number(process.env.BENCH_WINDOW ?? 128);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 2000); // ~131 MB per round
const ACCESS = Access.LOCAL_WRITE | Access.REMOTE_WRITE;
const ADDR = "127.0.0.1";

async function rcSide() {
  const d = await openDevice({ address: ADDR, port: 0, activeMtu: Mtu.MTU_4096, mrArenaBytes: DEPTH * SIZE + (1 << 20) });
  const pd = d.allocPd();
  const cq = d.createCq(DEPTH * 2);
  const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: DEPTH, maxRecvWr: 4, maxSendSge: 1, maxRecvSge: 1 } });
  const mr = pd.regMr(DEPTH * SIZE, ACCESS);
  const me = { qpn: qp.qpNum, psn: (Math.random() * 0xffffff) | 0, port: d.limits.port, rkey: mr.rkey, addr: mr.addr.toString() };
  const connect = (peer) =>
    connectQp(qp, { qpNum: peer.qpn, psn: peer.psn, gid: `::ffff:${ADDR}`, port: peer.port }, { sqPsn: me.psn, pathMtu: Mtu.MTU_4096, qpAccessFlags: ACCESS });
  return { d, cq, qp, mr, me, connect };
}

// ---- child: the RC WRITE target and the raw receiver
async function child() {
  const rc = await rcSide();
  const sock = dgram.createSocket("udp4");
  sock.bind(0, ADDR);
  await once(sock, "listening");
  try { sock.setRecvBufferSize(4 << 20); } catch {}
  let count = 0, first = 0, last = 0, peer;
  sock.on("message", (m, rinfo) => {
    const now = performance.now();
    if (count === 0) first = now;
    last = now;
    count++;
    peer = rinfo;
    if ((count & 31) === 0) {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(count);
      sock.send(b, rinfo.port, rinfo.address);
    }
  });
  process.on("message", (msg) => {
    if (msg.type === "rc-peer") rc.connect(msg.peer), process.send({ type: "rc-ready" });
    else if (msg.type === "raw-reset") (count = 0), process.send({ type: "raw-ready" });
    else if (msg.type === "raw-result") process.send({ type: "raw-result", count, us: (last - first) * 1000 });
    else if (msg.type === "exit") (rc.d.close(), sock.close(), process.disconnect());
  });
  process.send({ type: "hello", rc: rc.me, rawPort: sock.address().port });
}

// ---- parent
function ask(c, msg, type) {
  return new Promise((resolve) => {
    const on = (m) => m.type === type && (c.off("message", on), resolve(m));
    c.on("message", on);
    c.send(msg);
  });
}

async function rcWrite(rc, peer) {
  let posted = 0, done = 0;
  const post = () => {
    const slot = posted % DEPTH;
    rc.qp.postSend({ wrId: BigInt(posted++), opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED, sgList: [rc.mr.sge(slot * SIZE, SIZE)],
      rdma: { remoteAddr: BigInt(peer.addr) + BigInt(slot * SIZE), rkey: peer.rkey } });
  };
  const t0 = performance.now();
  while (posted < Math.min(DEPTH, MESSAGES)) post();
  while (done < MESSAGES) {
    const wc = await rc.cq.next();
    if (wc.status !== WcStatus.SUCCESS) throw new Error(`RC WRITE completed with status ${wc.status}`);
    done++;
    for (const w of rc.cq.poll(64)) {
      if (w.status !== WcStatus.SUCCESS) throw new Error(`RC WRITE completed with status ${w.status}`);
      done++;
    }
    while (posted < MESSAGES && posted - done < DEPTH) post();
  }
  return (SIZE * MESSAGES) / ((performance.now() - t0) * 1000);
}

async function raw(c, port) {
  await ask(c, { type: "raw-reset" }, "raw-ready");
  const total = Math.round((SIZE * MESSAGES) / 4096);
  await sendRawWindowed({ address: ADDR, port, size: DGRAM, total, window: WINDOW });
  const res = await ask(c, { type: "raw-result" }, "raw-result");
  return { mbps: (res.count * DGRAM) / res.us, lost: total - res.count, total };
}

async function parent() {
  const c = fork(new URL(import.meta.url).pathname, ["child"], { stdio: "inherit" });
  const [hello] = await once(c, "message");
  const rc = await rcSide();
  await ask(c, { type: "rc-peer", peer: rc.me }, "rc-ready");
  rc.connect(hello.rc);
  let best = { rc: 0, raw: 0, lost: 0, total: 0 };
  for (let r = 0; r < ROUNDS; r++) {
    const w = await rcWrite(rc, hello.rc);
    const d = await raw(c, hello.rawPort);
    best.rc = Math.max(best.rc, w);
    if (d.mbps > best.raw) best = { ...best, raw: d.mbps, lost: d.lost, total: d.total };
  }
  const link = rc.d.port.stats;
  console.log(`RC WRITE over UDP loopback, 2 processes, ${SIZE} B messages, MTU 4096, ${DEPTH} in flight: ${best.rc.toFixed(0)} MB/s (10^6 B/s), best of ${ROUNDS}`);
  console.log(`raw dgram, 2 processes, ${DGRAM} B datagrams, window ${WINDOW}, at the receiver:      ${best.raw.toFixed(0)} MB/s, lost ${best.lost} of ${best.total}`);
  console.log(`ratio RC/raw: ${(best.rc / best.raw).toFixed(2)} (target >= 0.85); RC datagrams sent ${link.txDatagrams}, retransmissions ${rc.d.queryCounters().completer_retry_err ?? 0}`);
  c.send({ type: "exit" });
  rc.d.close();
}

if (process.argv[2] === "child") await child();
else await parent();
