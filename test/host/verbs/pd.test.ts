import { describe, expect, it } from "vitest";
import { Access, QpType } from "../../../host/core/verbs/index.js";
import { AV, expectVerbsError, smallDevice } from "../support/verbs-helpers.js";

describe("protection domain (ibv_alloc_pd, ibv_dealloc_pd)", () => {
  it("allocates and deallocates", async () => {
    const dev = await smallDevice();
    const pd = dev.allocPd();
    expect(pd.handle).toBeGreaterThan(0);
    pd.destroy();
    expect(pd.isDestroyed).toBe(true);
  });

  it("allocates up to max_pd, then fails; freed PDs are reused", async () => {
    const dev = await smallDevice();
    const pds = Array.from({ length: dev.query().maxPd }, () => dev.allocPd());
    // rxe_pool.c (__rxe_add_to_pool) answers "more objects than max_elem" with EINVAL
    expectVerbsError(() => dev.allocPd(), "EINVAL", "ibv_alloc_pd");
    pds[3]!.destroy();
    const again = dev.allocPd();
    expect(again.handle).not.toBe(pds[3]!.handle); // new generation, so the old handle stays stale
    pds.forEach((p) => p.destroy());
    again.destroy();
  });

  it("destroying twice is a no-op (as pyverbs' close())", async () => {
    const pd = (await smallDevice()).allocPd();
    pd.destroy();
    expect(() => pd.destroy()).not.toThrow();
  });

  it("bad flow: a destroyed PD cannot create objects (EINVAL)", async () => {
    const dev = await smallDevice();
    const pd = dev.allocPd();
    const cq = dev.createCq(4);
    pd.destroy();
    expectVerbsError(() => pd.regMr(64), "EINVAL", "ibv_reg_mr");
    expectVerbsError(() => pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq }), "EINVAL", "ibv_create_qp");
    expectVerbsError(() => pd.createSrq({ attr: { maxWr: 4, maxSge: 1 } }), "EINVAL", "ibv_create_srq");
    expectVerbsError(() => pd.createAh(AV), "EINVAL", "ibv_create_ah");
  });

  it("bad flow: deallocating a PD that still has an MR, QP, SRQ or AH fails with EBUSY", async () => {
    const dev = await smallDevice();
    const cq = dev.createCq(4);
    const pd = dev.allocPd();
    const mr = pd.regMr(64, Access.LOCAL_WRITE);
    expectVerbsError(() => pd.destroy(), "EBUSY", "ibv_dealloc_pd");
    mr.destroy();
    const qp = pd.createQp({ qpType: QpType.UD, sendCq: cq, recvCq: cq });
    expectVerbsError(() => pd.destroy(), "EBUSY", "ibv_dealloc_pd");
    qp.destroy();
    const srq = pd.createSrq({ attr: { maxWr: 4, maxSge: 1 } });
    expectVerbsError(() => pd.destroy(), "EBUSY", "ibv_dealloc_pd");
    srq.destroy();
    const ah = pd.createAh(AV);
    expectVerbsError(() => pd.destroy(), "EBUSY", "ibv_dealloc_pd");
    ah.destroy();
    pd.destroy();
    expect(pd.isDestroyed).toBe(true);
  });
});
