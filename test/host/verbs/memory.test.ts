import { describe, expect, it } from "vitest";
import { Access, QpState, QpType, WcStatus } from "../../../host/core/verbs/index.js";
import { openDevice } from "../../../host/node/index.js";
import { rcQp, SMALL, toRts } from "../support/verbs-helpers.js";

describe("nothing allocates after open", () => {
  it("100,000 receive WRs flushed through ERR, 10,000 MR re-registrations, 1,000 QP/CQ cycles: memory does not grow", async () => {
    const dev = await openDevice({ ...SMALL, maxCqe: 32767 });
    const bytes = dev.memory.buffer.byteLength;
    const pd = dev.allocPd();
    const cq = dev.createCq(1024);
    const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxRecvWr: 512, maxRecvSge: 1 } });
    const mr = pd.regMr(1024, Access.LOCAL_WRITE);
    let flushed = 0;
    let next = 0n;
    for (let round = 0; round < 200; round++) {
      qp.modify({ qpState: QpState.INIT, pkeyIndex: 0, portNum: 1, qpAccessFlags: 0 });
      qp.postRecv(Array.from({ length: 500 }, () => ({ wrId: next++, sgList: [mr.sge(0, 64)] })));
      qp.modify({ qpState: QpState.ERR });
      for (let wcs = cq.poll(1024); wcs.length; wcs = cq.poll(1024)) {
        for (const wc of wcs) {
          expect(wc.status).toBe(WcStatus.WR_FLUSH_ERR);
          expect(wc.wrId).toBe(BigInt(flushed));
          flushed++;
        }
      }
      qp.modify({ qpState: QpState.RESET });
    }
    expect(flushed).toBe(100_000);
    for (let i = 0; i < 10_000; i++) pd.regMr(512 + (i % 13) * 300, Access.LOCAL_WRITE | Access.REMOTE_WRITE).destroy();
    for (let i = 0; i < 1_000; i++) {
      const c = dev.createCq(1 + (i % 300));
      const q = rcQp(pd, c, { maxSendWr: 1 + (i % 100), maxRecvWr: 1 + (i % 50), maxSendSge: 2, maxRecvSge: 2 });
      if (i % 10 === 0) toRts(q);
      q.destroy();
      c.destroy();
    }
    expect(dev.memory.buffer.byteLength).toBe(bytes);
    expect(dev.queryCounters().flushed_wqes).toBe(100_000);
  });
});
