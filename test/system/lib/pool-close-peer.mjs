// One end of native-gso.sys.mjs's pool-socket-closing tests, run inside a network namespace with
// `ip netns exec`: a real device on each side (openDevice on the native datapath, per-QP UDP source
// ports), RC QPs connected through JSON files in a directory both ends see. Prints one JSON line.
//   target <address> <dir> <mtu>
//     B: an MR open to remote writes and two RC QPs; waits for the SEND behind QP 2's WRITE (or
//     for the writer to finish without it), then checks every byte that WRITE placed.
//   writer <address> <dir> <mtu> [no-move]
//     A, with sourcePortCap 1 and no GSI: QP 1 takes the pool's one socket, QP 2 falls back to the
//     device's port. QP 1 streams WRITEs from its own port (the suite's qdisc holds that port's
//     traffic) until its socket pushes back and the link waits on it; QP 1 is destroyed and the
//     pool's sweep closes its socket while the link waits; then QP 2's WRITE and SEND must complete.
//     Reports the descriptors open at each step (those of the pool socket by its inode), the link's
//     and the pool's counters, QP 2's completions. "no-move": the link's poolSocketClosing is made a
//     no-op first, the control that shows the test can fail.
//   <mtu>: both QPs' path MTU in bytes (1024, or 4096 on a jumbo link).
import { existsSync, readdirSync, readFileSync, readlinkSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const dist = await import(new URL("../../../dist/internal/node.js", import.meta.url).href);
const { openDevice, udpLinkOf, connectQp, localEndpoint, remoteMr, remoteAddr, QpType, WrOpcode, SendFlags, WcStatus, Access, Mtu, nameOf } = dist;

/** QP 2's WRITE: this many bytes at this offset of both MRs, byte i = PATTERN(i). */
const CHECK_OFFSET = 1 << 20;
const CHECK_BYTES = 256 << 10;
const PATTERN = (i) => (i * 7 + 3) & 0xff;
/** QP 1's stream: WRs of this many bytes, more than the pool socket's send buffer holds. */
const STREAM_WR_BYTES = 16 << 10;
const STREAM_WRS = 64;
/**
 * QP 1's socket's SO_SNDBUF (the kernel doubles it): set, not the machine's wmem_default, so that
 * what the device lets one QP have in flight (128 packets) overfills it at any MTU.
 */
const POOL_SNDBUF = 64 << 10;
const MR_BYTES = 2 << 20;
const WAIT_MS = 10_000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The path MTU enum for `bytes` (connectQp's pathMtu). */
function pathMtu(bytes) {
  const v = Mtu[`MTU_${bytes}`];
  if (v === undefined) throw new Error(`not a RoCE MTU: ${bytes}`);
  return v;
}

async function waitFor(cond, ms, what) {
  const end = Date.now() + ms;
  for (;;) {
    const v = cond();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
}

function writeJson(path, value) {
  writeFileSync(`${path}.tmp`, JSON.stringify(value));
  renameSync(`${path}.tmp`, path);
}

const readJsonWhenThere = (path) => waitFor(() => existsSync(path) && JSON.parse(readFileSync(path, "utf8")), WAIT_MS, path);

/** This process's descriptors: how many, and how many are the socket `inode` ("socket:[inode]"). */
function fds(inode) {
  const all = readdirSync("/proc/self/fd");
  let of = 0;
  for (const n of all) {
    try {
      if (inode !== undefined && readlinkSync(`/proc/self/fd/${n}`) === `socket:[${inode}]`) of++;
    } catch {
      // the directory's own descriptor, gone by now
    }
  }
  return { count: all.length, of };
}

function socketInode(fd) {
  const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
  if (!m) throw new Error(`descriptor ${fd} is not a socket`);
  return m[1];
}

/** The next completion on `cq`, or an error naming what did not come. */
function next(cq, what) {
  let timer;
  return Promise.race([
    cq.next(),
    new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no completion for ${what} after ${WAIT_MS} ms`)), WAIT_MS))),
  ]).finally(() => clearTimeout(timer));
}

function rcQp(pd, cq, depth) {
  return pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: depth, maxRecvWr: 4, maxSendSge: 1, maxRecvSge: 1 } });
}

async function target([address, dir, mtu]) {
  const dev = await openDevice({ address });
  const pd = dev.allocPd();
  const cq = dev.createCq(256);
  const qps = [rcQp(pd, cq, 4), rcQp(pd, cq, 4)];
  const mr = pd.regMr(MR_BYTES, Access.LOCAL_WRITE | Access.REMOTE_WRITE);
  const psns = [0x1000, 0x2000];
  writeJson(join(dir, "b.json"), { qps: qps.map((qp, i) => localEndpoint(qp, dev, psns[i])), mr: remoteMr(mr) });
  const a = await readJsonWhenThere(join(dir, "a.json"));
  qps.forEach((qp, i) => connectQp(qp, a.qps[i], { sqPsn: psns[i], qpAccessFlags: Access.REMOTE_WRITE, pathMtu: pathMtu(Number(mtu)) }));
  qps[1].postRecv({ wrId: 2n, sgList: [mr.sge(0, 64)] });
  writeJson(join(dir, "b-connected.json"), { ok: true });
  // the SEND behind QP 2's WRITE, or nothing once the writer has finished (it failed)
  const done = join(dir, "a-done.json");
  const wc = await waitFor(() => cq.poll(1)[0] ?? (existsSync(done) && (cq.poll(1)[0] ?? "none")), WAIT_MS, "the SEND behind QP 2's WRITE");
  let mismatches = 0;
  for (let i = 0; i < CHECK_BYTES; i++) if (mr.bytes[CHECK_OFFSET + i] !== PATTERN(i)) mismatches++;
  const recv = wc === "none" ? "none" : { status: nameOf(WcStatus, wc.status), qp: wc.qpNum === qps[1].qpNum ? 2 : wc.qpNum };
  console.log(JSON.stringify({ recv, checked: CHECK_BYTES, mismatches }));
  dev.close();
}

async function writer([address, dir, mtu, mode]) {
  const errors = [];
  process.on("uncaughtException", (e) => errors.push(`uncaught: ${e?.stack ?? e}`));
  process.on("unhandledRejection", (e) => errors.push(`unhandled rejection: ${e?.stack ?? e}`));
  process.on("warning", (w) => errors.push(`warning: ${w.name}: ${w.message}`));
  const fdsAtStart = fds().count;
  // no GSI (QP1 would take the pool's one socket); cap 1: QP 1's port is the pool's only socket
  const dev = await openDevice({ address, sourcePortCap: 1, gsi: false });
  const link = udpLinkOf(dev);
  if (link?.path !== "native" || !link.pool) throw new Error(`not the native link with a source port pool: ${link?.path}`);
  if (mode === "no-move") {
    // the control: the link ignores the pool closing the socket it waits on
    if (typeof link.poolSocketClosing !== "function") throw new Error("NativeUdpLink has no poolSocketClosing to disable");
    link.poolSocketClosing = () => {};
  }
  const pd = dev.allocPd();
  const cq1 = dev.createCq(256);
  const cq2 = dev.createCq(16);
  const qp1 = rcQp(pd, cq1, STREAM_WRS);
  const qp2 = rcQp(pd, cq2, 4);
  const mr = pd.regMr(MR_BYTES, Access.LOCAL_WRITE);
  for (let i = 0; i < CHECK_BYTES; i++) mr.bytes[CHECK_OFFSET + i] = PATTERN(i);
  const b = await readJsonWhenThere(join(dir, "b.json"));
  const psns = [0x3000, 0x4000];
  connectQp(qp1, b.qps[0], { sqPsn: psns[0], pathMtu: pathMtu(Number(mtu)) });
  connectQp(qp2, b.qps[1], { sqPsn: psns[1], pathMtu: pathMtu(Number(mtu)) });
  writeJson(join(dir, "a.json"), { qps: [qp1, qp2].map((qp, i) => localEndpoint(qp, dev, psns[i])) });
  await readJsonWhenThere(join(dir, "b-connected.json"));
  const connected = { ports: link.pool.ports, pool: link.sourcePortStats(), fallbacks: link.port.stats.sportFallbacks, fds: fds().count };
  const poolPort = connected.ports[0];
  const inode = socketInode(link.pool.fd(poolPort));
  link.pool.socket(poolPort).setSendBufferSize(POOL_SNDBUF);

  // QP 1 streams from its own port until that socket pushes back and the link waits on it
  const base = remoteAddr(b.mr.addr);
  const rkey = b.mr.rkey;
  for (let i = 0; i < STREAM_WRS; i++) {
    const at = (i * STREAM_WR_BYTES) % CHECK_OFFSET;
    qp1.postSend({ wrId: BigInt(i), opcode: WrOpcode.RDMA_WRITE, sendFlags: 0, sgList: [mr.sge(at, STREAM_WR_BYTES)], rdma: { remoteAddr: base + BigInt(at), rkey } });
  }
  await waitFor(() => link.stats.backpressured > 0, WAIT_MS, "the pool socket to push back");
  const waiting = { ...fds(inode), stats: { ...link.stats }, txEagain: link.datapathStats().txEagain, held: link.port.holding() };

  // QP 1 goes; the pool's sweep (what its timer runs) closes QP 1's socket while the link waits on it
  qp1.destroy();
  link.pool.sweep();
  const swept = link.sourcePortStats();
  await new Promise((r) => setTimeout(r, 0));
  await new Promise((r) => setImmediate(r));
  const afterSweep = fds(inode);

  // QP 2, on the device's port: its WRITE and the SEND behind it complete once the port resumes
  qp2.postSend({ wrId: 21n, opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED, sgList: [mr.sge(CHECK_OFFSET, CHECK_BYTES)], rdma: { remoteAddr: base + BigInt(CHECK_OFFSET), rkey } });
  qp2.postSend({ wrId: 22n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [mr.sge(0, 8)] });
  const t0 = performance.now();
  const wcs = [];
  let stuck;
  try {
    for (const what of ["QP 2's WRITE", "QP 2's SEND"]) {
      const wc = await next(cq2, what);
      wcs.push([String(wc.wrId), nameOf(WcStatus, wc.status)]);
    }
  } catch (e) {
    stuck = e.message;
  }
  const ms = performance.now() - t0;
  const end = { stats: { ...link.stats }, pool: link.sourcePortStats(), fallbacks: link.port.stats.sportFallbacks, held: link.port.holding() };
  writeJson(join(dir, "a-done.json"), { ok: true });
  dev.close();
  // the link closes its sockets asynchronously (the pool's through node:dgram)
  await waitFor(() => fds().count <= fdsAtStart, 2000, "the device's descriptors to close").catch(() => {});
  console.log(JSON.stringify({ poolPort, connected, waiting, swept, afterSweep, wcs, ms, stuck: stuck ?? null, end, fdsAtStart, fdsEnd: fds().count, errors }));
}

const [role, ...args] = process.argv.slice(2);
const roles = { target, writer };
if (!roles[role]) {
  console.error(`pool-close-peer: unknown role ${role}`);
  process.exit(2);
}
await roles[role](args);
