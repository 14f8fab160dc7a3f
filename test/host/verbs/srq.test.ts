import { describe, expect, it } from "vitest";
import { AsyncEvent, QpType } from "../../../host/core/verbs/index.js";
import { expectVerbsError, smallDevice, tick } from "../support/verbs-helpers.js";

async function fixture() {
  const dev = await smallDevice();
  const pd = dev.allocPd();
  const events: AsyncEvent[] = [];
  dev.on("event", (e) => events.push(e));
  // the responder's take, exported for tests until the transport lands; dev.call drains events after it
  const take = (h: number) => dev.call(() => (dev.core as unknown as { srq_take(h: number): number }).srq_take(h));
  return { dev, pd, events, take };
}

describe("shared receive queue (ibv_create_srq, ibv_modify_srq, ibv_post_srq_recv)", () => {
  it("creates with max_wr rounded up and reports its attributes", async () => {
    const { pd } = await fixture();
    const srq = pd.createSrq({ attr: { maxWr: 10, maxSge: 3, srqLimit: 2 } });
    expect(srq.query()).toEqual({ maxWr: 16, maxSge: 3, srqLimit: 2 });
    const flat = pd.createSrq({ maxWr: 4, maxSge: 1 });
    expect(flat.query().maxWr).toBe(4);
  });

  it("bad flow: max_wr 0 or above max_srq_wr, max_sge above max_srq_sge, limit above max_wr (EINVAL)", async () => {
    const { dev, pd } = await fixture();
    const a = dev.query();
    expectVerbsError(() => pd.createSrq({ attr: { maxWr: 0, maxSge: 1 } }), "EINVAL", "ibv_create_srq");
    expectVerbsError(() => pd.createSrq({ attr: { maxWr: a.maxSrqWr + 1, maxSge: 1 } }), "EINVAL", "ibv_create_srq");
    expectVerbsError(() => pd.createSrq({ attr: { maxWr: 4, maxSge: a.maxSrqSge + 1 } }), "EINVAL", "ibv_create_srq");
    expectVerbsError(() => pd.createSrq({ attr: { maxWr: 4, maxSge: 1, srqLimit: 5 } }), "EINVAL", "ibv_create_srq");
    const srq = pd.createSrq({ attr: { maxWr: 4, maxSge: 1 } });
    expectVerbsError(() => srq.modify({ srqLimit: 5 }), "EINVAL", "ibv_modify_srq");
    expectVerbsError(() => srq.modify({ maxWr: 0 }), "EINVAL", "ibv_modify_srq");
    expectVerbsError(() => srq.modify({ maxWr: a.maxSrqWr + 1 }), "EINVAL", "ibv_modify_srq");
  });

  it("bad flow: too many SGEs (EINVAL), full (ENOMEM)", async () => {
    const { pd } = await fixture();
    const srq = pd.createSrq({ attr: { maxWr: 4, maxSge: 1 } });
    const sge = { addr: 0n, length: 1, lkey: 0 };
    expectVerbsError(() => srq.postRecv({ sgList: [sge, sge] }), "EINVAL", "ibv_post_srq_recv");
    srq.postRecv([{}, {}, {}, {}]);
    const e = expectVerbsError(() => srq.postRecv([{}]), "ENOMEM", "ibv_post_srq_recv");
    expect(e.badWr).toBe(0);
    expect(srq.depth).toBe(4);
  });

  it("bad flow: destroying an SRQ a QP uses is EBUSY", async () => {
    const { dev, pd } = await fixture();
    const cq = dev.createCq(4);
    const srq = pd.createSrq({ attr: { maxWr: 4, maxSge: 1 } });
    const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, srq });
    expectVerbsError(() => srq.destroy(), "EBUSY", "ibv_destroy_srq");
    qp.destroy();
    srq.destroy();
    expect(() => srq.destroy()).not.toThrow();
    expectVerbsError(() => srq.postRecv({}), "EINVAL", "ibv_post_srq_recv");
  });

  it("raises SRQ_LIMIT_REACHED once when the count drops below the armed limit", async () => {
    const { pd, events, take } = await fixture();
    const srq = pd.createSrq({ attr: { maxWr: 16, maxSge: 1 } });
    srq.postRecv(Array.from({ length: 10 }, (_, i) => ({ wrId: BigInt(i) })));
    srq.modify({ srqLimit: 5 });
    for (let i = 0; i < 5; i++) expect(take(srq.handle)).toBe(1); // 5 left: not below 5
    await tick();
    expect(events).toEqual([]);
    expect(take(srq.handle)).toBe(1); // 4 left
    for (let i = 0; i < 4; i++) expect(take(srq.handle)).toBe(1);
    expect(take(srq.handle)).toBe(0); // empty
    await tick();
    expect(events.map((e) => [e.eventName, e.srq === srq, e.info])).toEqual([["SRQ_LIMIT_REACHED", true, 4]]);
    expect(srq.query().srqLimit).toBe(0); // disarmed: one shot
    srq.postRecv({});
    srq.modify({ srqLimit: 1 });
    expect(take(srq.handle)).toBe(1);
    await tick();
    expect(events.length).toBe(2);
  });

  it("resizes (ibv_modify_srq MAX_WR) keeping the posted WQEs in order; not below what waits or an armed limit", async () => {
    const { dev, pd, take } = await fixture();
    const srq = pd.createSrq({ attr: { maxWr: 4, maxSge: 1 } });
    srq.postRecv([0, 1, 2, 3].map((i) => ({ wrId: BigInt(i) })));
    expect(take(srq.handle)).toBe(1); // wr 0 taken: 1, 2, 3 wait, the ring indices are not at 0
    srq.postRecv({ wrId: 4n });
    expectVerbsError(() => srq.modify({ maxWr: 2 }), "EINVAL", "ibv_modify_srq"); // 4 waiting
    srq.modify({ maxWr: 20 });
    expect(srq.query().maxWr).toBe(32);
    expect(srq.depth).toBe(4);
    srq.postRecv(Array.from({ length: 28 }, (_, i) => ({ wrId: BigInt(5 + i) })));
    expectVerbsError(() => srq.postRecv({}), "ENOMEM", "ibv_post_srq_recv");
    const args = (dev.core as unknown as { dev_args(): number }).dev_args();
    const order: bigint[] = [];
    while (take(srq.handle) === 1) order.push(dev.mem.u64(args));
    expect(order).toEqual(Array.from({ length: 32 }, (_, i) => BigInt(i + 1)));
    srq.modify({ srqLimit: 8 });
    expectVerbsError(() => srq.modify({ maxWr: 4 }), "EINVAL", "ibv_modify_srq"); // below the armed limit
    srq.modify({ maxWr: 8, srqLimit: 0 });
    expect(srq.query()).toEqual({ maxWr: 8, maxSge: 1, srqLimit: 0 });
  });
});
