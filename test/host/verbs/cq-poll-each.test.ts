// CompletionQueue.pollEach: the perf loop's poll, with no array and no completion object per
// call — the same completions, in the same order, as ibv_poll_cq (poll) reads.
import { describe, expect, it } from "vitest";
import { QpState, WcStatus, type WorkCompletion } from "../../../host/core/verbs/index.js";
import { expectVerbsError, rcQp, smallDevice } from "../support/verbs-helpers.js";

/** A CQ holding `n` flushed receive completions (wrId 0 .. n-1). */
async function flushed(n: number) {
  const dev = await smallDevice();
  const pd = dev.allocPd();
  const cq = dev.createCq(64);
  const qp = rcQp(pd, cq, { maxSendWr: 16, maxRecvWr: 32, maxSendSge: 1, maxRecvSge: 1 });
  qp.modify({ qpState: QpState.INIT, pkeyIndex: 0, portNum: 1, qpAccessFlags: 0 });
  qp.postRecv(Array.from({ length: n }, (_, i) => ({ wrId: BigInt(i) })));
  qp.modify({ qpState: QpState.ERR });
  return { cq, qp };
}

const plain = (w: WorkCompletion) => ({ ...w });

describe("CompletionQueue.pollEach", () => {
  it("hands out what poll would, oldest first, up to max, in one reused object", async () => {
    const a = await flushed(10);
    const b = await flushed(10);
    const want = a.cq.poll(64).map(plain);
    expect(want.length).toBe(10);
    expect(want.every((w) => w.status === WcStatus.WR_FLUSH_ERR)).toBe(true);
    const got: ReturnType<typeof plain>[] = [];
    const objects = new Set<WorkCompletion>();
    const fn = (w: WorkCompletion) => {
      objects.add(w);
      got.push(plain(w));
    };
    expect(b.cq.pollEach(4, fn)).toBe(4);
    expect(b.cq.depth).toBe(6);
    expect(b.cq.pollEach(Infinity, fn)).toBe(6);
    expect(b.cq.pollEach(Infinity, fn)).toBe(0);
    expect(got.map((w) => ({ ...w, qpNum: 0 }))).toEqual(want.map((w) => ({ ...w, qpNum: 0 })));
    expect(got.every((w) => w.qpNum === b.qp.qpNum)).toBe(true);
    expect(objects.size).toBe(1);
    expect(b.cq.poll(4)).toEqual([]);
  });

  it("consumes each entry before the callback runs (the callback may poll again)", async () => {
    const { cq } = await flushed(6);
    const order: bigint[] = [];
    cq.pollEach(2, (w) => {
      order.push(w.wrId);
      if (w.wrId === 0n) for (const x of cq.poll(1)) order.push(x.wrId); // takes entry 1
    });
    expect(order).toEqual([0n, 1n, 2n]);
    expect(cq.depth).toBe(3);
  });

  it("bad flow: a destroyed CQ is EINVAL, as poll", async () => {
    const { cq, qp } = await flushed(1);
    qp.destroy();
    cq.destroy();
    expectVerbsError(() => cq.pollEach(1, () => {}), "EINVAL", "ibv_poll_cq");
  });
});
