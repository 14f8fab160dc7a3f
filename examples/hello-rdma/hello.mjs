// hello-rdma: two softroce devices on real UDP (RoCEv2, port 4791), one RC connection,
// and the four kinds of RDMA operation: WRITE, READ, SEND and an atomic.
//   node examples/hello-rdma/hello.mjs [addressA] [addressB]     (after npm run build)
import { openDevice, connectQp, Access, QpType, WrOpcode, SendFlags } from "softroce";

const [addrA = "127.0.0.1", addrB = "127.0.0.2"] = process.argv.slice(2);
const ACCESS = Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ | Access.REMOTE_ATOMIC;

// One side: a device bound to an address, a PD, a CQ, an RC QP and 4 KiB of registered memory.
async function side(address) {
  const dev = await openDevice({ address });
  const pd = dev.allocPd();
  const cq = dev.createCq(16);
  const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 16, maxRecvWr: 16, maxSendSge: 1, maxRecvSge: 1 } });
  const mr = pd.regMr(4096, ACCESS);
  return { dev, cq, qp, mr, gid: `::ffff:${address}` };
}

const a = await side(addrA);
const b = await side(addrB);
// What rc_pingpong exchanges over TCP (QPN, PSN, GID), here in one process.
connectQp(a.qp, { qpNum: b.qp.qpNum, psn: 200, gid: b.gid }, { sqPsn: 100, qpAccessFlags: ACCESS });
connectQp(b.qp, { qpNum: a.qp.qpNum, psn: 100, gid: a.gid }, { sqPsn: 200, qpAccessFlags: ACCESS });

const text = (mr, off, len) => new TextDecoder().decode(mr.bytes.subarray(off, off + len));
const remote = (off) => ({ remoteAddr: b.mr.addr + BigInt(off), rkey: b.mr.rkey });
async function post(wr) {
  a.qp.postSend({ wrId: 1n, sendFlags: SendFlags.SIGNALED, ...wr });
  const wc = await a.cq.next();
  if (wc.status !== 0) throw new Error(`work request failed: status ${wc.status}`);
}

// RDMA WRITE: A's bytes land in B's memory; B's CPU is not involved.
a.mr.bytes.set(new TextEncoder().encode("hello, RDMA"), 0);
await post({ opcode: WrOpcode.RDMA_WRITE, sgList: [a.mr.sge(0, 11)], rdma: remote(0) });
console.log(`WRITE: B's memory now says "${text(b.mr, 0, 11)}"`);

// RDMA READ: A fetches bytes from B's memory.
b.mr.bytes.set(new TextEncoder().encode("read me"), 100);
await post({ opcode: WrOpcode.RDMA_READ, sgList: [a.mr.sge(200, 7)], rdma: remote(100) });
console.log(`READ: A fetched "${text(a.mr, 200, 7)}"`);

// SEND: needs a receive posted at B; B's CQ says how many bytes came.
b.qp.postRecv({ wrId: 9n, sgList: [b.mr.sge(1024, 64)] });
a.mr.bytes.set(new TextEncoder().encode("a message"), 300);
await post({ opcode: WrOpcode.SEND, sgList: [a.mr.sge(300, 9)] });
const recv = await b.cq.next();
console.log(`SEND: B received ${recv.byteLen} bytes: "${text(b.mr, 1024, recv.byteLen)}"`);

// FETCH_ADD: adds to a 64-bit counter in B's memory and returns the old value to A.
const counter = new DataView(b.mr.bytes.buffer, b.mr.bytes.byteOffset + 512, 8);
counter.setBigUint64(0, 41n, true);
await post({ opcode: WrOpcode.ATOMIC_FETCH_AND_ADD, sgList: [a.mr.sge(512, 8)], atomic: { ...remote(512), compareAdd: 1n } });
const old = new DataView(a.mr.bytes.buffer, a.mr.bytes.byteOffset + 512, 8).getBigUint64(0, true);
console.log(`FETCH_ADD: the counter was ${old}, now ${counter.getBigUint64(0, true)}`);

a.dev.close();
b.dev.close();
