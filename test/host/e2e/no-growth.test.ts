// Linear memory is carved when the device opens and never grows afterwards:
// growth would detach every Uint8Array the application holds (mr.bytes).
import { describe, expect, it } from "vitest";
import { coreModule } from "../../../host/node/wasm-source.js";
import { SimNetwork } from "../../../host/core/sim/network.js";
import { connectQp } from "../../../host/core/verbs/connect.js";
import { Access, QpType, SendFlags, WrOpcode } from "../../../host/core/verbs/enums.js";

describe("memory after open", () => {
  it("stays the same size through the first requests and responses (mr.bytes stays attached)", async () => {
    const mod = await coreModule();
    const net = new SimNetwork({ seed: 5 });
    const ALL = Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ | Access.REMOTE_ATOMIC;
    const mk = async (addr: string) => {
      // many QPs: the engines' per-QP storage is larger than the slack left after open
      const dev = await net.addDevice(mod, addr, { maxQp: 4096 });
      const pd = dev.allocPd();
      const cq = dev.createCq(64);
      const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 16, maxRecvWr: 16, maxSendSge: 4, maxRecvSge: 4 } });
      const mr = pd.regMr(65536, ALL);
      return { dev, cq, qp, mr, size: dev.memory.buffer.byteLength };
    };
    const a = await mk("127.0.0.1");
    const b = await mk("127.0.0.2");
    connectQp(a.qp, { qpNum: b.qp.qpNum, psn: 1, gid: "::ffff:127.0.0.2" }, { sqPsn: 2, qpAccessFlags: ALL });
    connectQp(b.qp, { qpNum: a.qp.qpNum, psn: 2, gid: "::ffff:127.0.0.1" }, { sqPsn: 1, qpAccessFlags: ALL });
    const bytesA = a.mr.bytes;
    b.qp.postRecv({ wrId: 1n, sgList: [{ addr: b.mr.addr, length: 4096, lkey: b.mr.lkey }] });
    a.qp.postSend([
      // two SGEs in one packet's payload: the bounce path
      { wrId: 1n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [
        { addr: a.mr.addr, length: 100, lkey: a.mr.lkey }, { addr: a.mr.addr + 1000n, length: 100, lkey: a.mr.lkey }] },
      { wrId: 2n, opcode: WrOpcode.RDMA_READ, sendFlags: SendFlags.SIGNALED, sgList: [{ addr: a.mr.addr + 8192n, length: 3000, lkey: a.mr.lkey }],
        rdma: { remoteAddr: b.mr.addr + 8192n, rkey: b.mr.rkey } },
      { wrId: 3n, opcode: WrOpcode.ATOMIC_FETCH_AND_ADD, sendFlags: SendFlags.SIGNALED, sgList: [{ addr: a.mr.addr + 16384n, length: 8, lkey: a.mr.lkey }],
        atomic: { remoteAddr: b.mr.addr + 16384n, compareAdd: 5n, swap: 0n, rkey: b.mr.rkey } },
    ]);
    net.run();
    expect(a.cq.poll(8).map((w) => w.status)).toEqual([0, 0, 0]);
    expect(a.dev.memory.buffer.byteLength).toBe(a.size);
    expect(b.dev.memory.buffer.byteLength).toBe(b.size);
    expect(bytesA.byteLength).toBe(65536);
    expect(bytesA.buffer).toBe(a.dev.memory.buffer);
  });
});
