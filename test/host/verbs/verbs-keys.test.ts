// Bad and stale keys, access violations, end to end: two devices on the simulated
// wire. What rxe gives: a local key problem completes the WR with LOC_PROT_ERR; a
// remote one comes back as a NAK and completes it with REM_ACCESS_ERR; either way
// the QP goes to ERR and the WRs behind are flushed.
import { describe, expect, it } from "vitest";
import { simRcPair } from "../support/sim-pair.js";
import { SimNetwork } from "../../../host/core/sim/network.js";
import { Access, QpState, SendFlags, WcStatus, WrOpcode, type CompletionQueue, type WorkCompletion } from "../../../host/core/verbs/index.js";

const S = SendFlags.SIGNALED;


/** Two connected RC QPs (simulated devices at 127.0.0.1 and .2) on small devices; b's MR has `remoteAccess`. */
function pair(remoteAccess = Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ) {
  const connect = { qpAccessFlags: Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ, timeout: 8, minRnrTimer: 1 };
  return simRcPair({
    seed: 7, addresses: ["127.0.0.1", "127.0.0.2"], device: { mrArenaBytes: 1 << 20, ringArenaBytes: 1 << 20, maxQp: 8 },
    cap: { maxSendWr: 16, maxRecvWr: 16, maxSendSge: 2, maxRecvSge: 2 }, mrBytes: 4096, mrAccess: [Access.LOCAL_WRITE, remoteAccess], psns: [200, 100], connect,
  });
}

function drain(net: SimNetwork, cq: CompletionQueue, n: number): WorkCompletion[] {
  const out: WorkCompletion[] = [];
  net.runUntil(() => (out.push(...cq.poll(16)), out.length >= n), 5_000_000);
  return out;
}

describe("keys and access, end to end", () => {
  it("a stale lkey (MR deregistered) completes with LOC_PROT_ERR; the QP goes to ERR, the rest is flushed", async () => {
    const { net, a } = await pair();
    const old = a.mr;
    const sge = old.sge(0, 64);
    old.destroy();
    a.qp.postSend([{ wrId: 1n, opcode: WrOpcode.SEND, sendFlags: S, sgList: [sge] }, { wrId: 2n, opcode: WrOpcode.SEND, sendFlags: S }]);
    const wcs = drain(net, a.cq, 2);
    expect(wcs.map((w) => [w.wrId, w.status])).toEqual([[1n, WcStatus.LOC_PROT_ERR], [2n, WcStatus.WR_FLUSH_ERR]]);
    expect(a.qp.state).toBe(QpState.ERR);
  });

  it("an lkey of another PD, or a range past the MR's end, is LOC_PROT_ERR", async () => {
    for (const bad of ["pd", "range"] as const) {
      const { net, a } = await pair();
      const other = a.pd.device.allocPd().regMr(64, Access.LOCAL_WRITE);
      const sge = bad === "pd" ? other.sge() : { addr: a.mr.addr + 4000n, length: 200, lkey: a.mr.lkey };
      a.qp.postSend({ wrId: 3n, opcode: WrOpcode.SEND, sendFlags: S, sgList: [sge] });
      expect(drain(net, a.cq, 1).map((w) => [w.wrId, w.status])).toEqual([[3n, WcStatus.LOC_PROT_ERR]]);
    }
  });

  it("RDMA WRITE to an MR without REMOTE_WRITE, or with a stale rkey, is REM_ACCESS_ERR at the requester", async () => {
    for (const bad of ["access", "stale"] as const) {
      const { net, a, b } = await pair(bad === "access" ? Access.LOCAL_WRITE | Access.REMOTE_READ : undefined);
      const rkey = b.mr.rkey;
      const remoteAddr = b.mr.addr;
      if (bad === "stale") {
        b.mr.destroy();
        b.pd.regMr(4096, Access.LOCAL_WRITE | Access.REMOTE_WRITE); // likely the same slot, a new key byte
      }
      a.qp.postSend([
        { wrId: 5n, opcode: WrOpcode.RDMA_WRITE, sendFlags: S, sgList: [a.mr.sge(0, 32)], rdma: { remoteAddr, rkey } },
        { wrId: 6n, opcode: WrOpcode.SEND, sendFlags: S },
      ]);
      expect(drain(net, a.cq, 2).map((w) => [w.wrId, w.status])).toEqual([[5n, WcStatus.REM_ACCESS_ERR], [6n, WcStatus.WR_FLUSH_ERR]]);
      expect(a.qp.state).toBe(QpState.ERR);
    }
  });

  it("the same WRITE with a current rkey and REMOTE_WRITE lands", async () => {
    const { net, a, b } = await pair();
    a.mr.bytes.set([9, 8, 7], 0);
    a.qp.postSend({ wrId: 7n, opcode: WrOpcode.RDMA_WRITE, sendFlags: S, sgList: [a.mr.sge(0, 3)], rdma: { remoteAddr: b.mr.addr + 10n, rkey: b.mr.rkey } });
    expect(drain(net, a.cq, 1).map((w) => [w.wrId, w.status])).toEqual([[7n, WcStatus.SUCCESS]]);
    expect([...b.mr.bytes.slice(10, 13)]).toEqual([9, 8, 7]);
  });
});
