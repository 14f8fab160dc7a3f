// Two-process latency over UDP loopback: RC SEND 64 B ping-pong between a softroce device in this
// process and one in a child process (each side waits on its CQ with cq.next(), the child answers
// every SEND with a SEND), next to a raw dgram ping-pong between the same two processes with the
// RC SEND's datagram size (80 B: BTH + 64 + ICRC). Medians of the round trip; target: RC/raw <= 1.3
// (reported, not a gate). QPN, PSN and UDP port go over the child's IPC channel.
import { fork } from "node:child_process";
import dgram from "node:dgram";
import { once } from "node:events";
import { Access, QpType, SendFlags, WcOpcode, WcStatus, WrOpcode, connectQp, openDevice } from "../dist/node/index.js";

const SIZE = 64;
const DGRAM = 80;
const ITERS = Number(process.env.BENCH_ITERS ?? 5000);
const WARMUP = 200;
const ADDR = "127.0.0.1";

async function rcSide() {
  const d = await openDevice({ address: ADDR, port: 0 });
  const pd = d.allocPd();
  const cq = d.createCq(64);
  const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 16, maxRecvWr: 16, maxSendSge: 1, maxRecvSge: 1 } });
  const mr = pd.regMr(4096, Access.LOCAL_WRITE);
  const me = { qpn: qp.qpNum, psn: (Math.random() * 0xffffff) | 0, port: d.limits.port };
  const postRecv = () => qp.postRecv({ wrId: 1n, sgList: [mr.sge(0, SIZE)] });
  const connect = (peer) => {
    connectQp(qp, { qpNum: peer.qpn, psn: peer.psn, gid: `::ffff:${ADDR}`, port: peer.port }, { sqPsn: me.psn });
    for (let i = 0; i < 16; i++) postRecv();
  };
  const send = () => qp.postSend({ wrId: 2n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [mr.sge(0, SIZE)] });
  /** resolves at the next receive completion (send completions are skipped) */
  const recv = async () => {
    for (;;) {
      const wc = await cq.next();
      if (wc.status !== WcStatus.SUCCESS) throw new Error(`completion status ${wc.status}`);
      if (wc.opcode === WcOpcode.RECV) return postRecv();
    }
  };
  return { d, me, connect, send, recv };
}

async function child() {
  const rc = await rcSide();
  const sock = dgram.createSocket("udp4");
  sock.bind(0, ADDR);
  await once(sock, "listening");
  sock.on("message", (m, r) => sock.send(m, r.port, r.address));
  let stop = false;
  process.on("message", async (msg) => {
    if (msg.type === "rc-peer") {
      rc.connect(msg.peer);
      process.send({ type: "rc-ready" });
      for (;;) {
        await rc.recv();
        if (stop) break;
        rc.send();
      }
    } else if (msg.type === "exit") (stop = true), rc.d.close(), sock.close(), process.disconnect();
  });
  process.send({ type: "hello", rc: rc.me, rawPort: sock.address().port });
}

const median = (a) => a.sort((x, y) => x - y)[a.length >> 1];

async function parent() {
  const c = fork(new URL(import.meta.url).pathname, ["child"], { stdio: "inherit" });
  const [hello] = await once(c, "message");
  const rc = await rcSide();
  c.send({ type: "rc-peer", peer: rc.me });
  await once(c, "message");
  rc.connect(hello.rc);
  const rcT = [];
  for (let i = 0; i < ITERS + WARMUP; i++) {
    const t0 = performance.now();
    rc.send();
    await rc.recv();
    if (i >= WARMUP) rcT.push((performance.now() - t0) * 1000);
  }
  const sock = dgram.createSocket("udp4");
  sock.bind(0, ADDR);
  await once(sock, "listening");
  const payload = Buffer.alloc(DGRAM, 1);
  const rawT = [];
  for (let i = 0; i < ITERS + WARMUP; i++) {
    const t0 = performance.now();
    sock.send(payload, hello.rawPort, ADDR);
    await once(sock, "message");
    if (i >= WARMUP) rawT.push((performance.now() - t0) * 1000);
  }
  const rcM = median(rcT);
  const rawM = median(rawT);
  console.log(`RC SEND ${SIZE} B ping-pong over UDP loopback, 2 processes: round trip median ${rcM.toFixed(1)} µs (${ITERS} iterations)`);
  console.log(`raw dgram ${DGRAM} B ping-pong, 2 processes:                   round trip median ${rawM.toFixed(1)} µs`);
  console.log(`ratio RC/raw: ${(rcM / rawM).toFixed(2)} (target <= 1.3)`);
  sock.close();
  c.send({ type: "exit" });
  rc.d.close();
}

if (process.argv[2] === "child") await child();
else await parent();
