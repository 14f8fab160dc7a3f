import { describe, expect, it } from "vitest";
import { Access, ReregMrFlags } from "../../../host/core/verbs/index.js";
import { expectVerbsError, smallDevice } from "../support/verbs-helpers.js";


describe("memory region (ibv_reg_mr, ibv_dereg_mr)", () => {
  it("registers a zeroed range of linear memory with lkey == rkey and a live byte view", async () => {
    const dev = await smallDevice();
    const pd = dev.allocPd();
    const mr = pd.regMr(4096, Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ);
    expect(mr.lkey).toBe(mr.rkey);
    expect(mr.length).toBe(4096);
    expect(typeof mr.addr).toBe("bigint");
    expect(mr.addr % 64n).toBe(0n);
    expect(mr.bytes.length).toBe(4096);
    expect(mr.bytes.every((b) => b === 0)).toBe(true);
    mr.bytes[10] = 0xab;
    expect(new Uint8Array(dev.memory.buffer)[Number(mr.addr) + 10]).toBe(0xab);
    expect(mr.sge(8, 16)).toEqual({ addr: mr.addr + 8n, length: 16, lkey: mr.lkey });
    mr.destroy();
  });

  it("mints keys as (index + 1) << 8 | key byte, the key byte random and never the slot's previous one", async () => {
    const dev = await smallDevice({ maxMr: 2 });
    const pd = dev.allocPd();
    const bytes = new Set<number>();
    let prev = pd.regMr(64);
    const stale: number[] = [];
    for (let i = 0; i < 60; i++) {
      const next = pd.regMr(64);
      stale.push(prev.lkey);
      prev.destroy();
      expect(next.lkey).not.toBe(stale[stale.length - 1]);
      expect(next.lkey >>> 8).toBeGreaterThanOrEqual(1);
      expect(next.lkey >>> 8).toBeLessThanOrEqual(2);
      bytes.add(next.lkey & 0xff);
      prev = next;
    }
    prev.destroy();
    // 60 draws of a random byte: many distinct values (a counter would also give many, so
    // consecutive keys of one slot must not step by one every time)
    expect(bytes.size).toBeGreaterThan(30);
    const steps = stale.slice(2).filter((k, i) => (k & 0xff) === ((stale[i]! + 1) & 0xff)).length;
    expect(steps).toBeLessThan(10);
  });

  it("two fresh devices hand out different keys and addresses for their first MR", async () => {
    const firsts = await Promise.all([0, 1, 2, 3].map(async () => (await smallDevice()).allocPd().regMr(4096)));
    expect(new Set(firsts.map((m) => m.rkey)).size).toBeGreaterThan(1);
    expect(new Set(firsts.map((m) => m.addr)).size).toBeGreaterThan(1);
  });

  it("bad flow: access flags as ibv_reg_mr checks them", async () => {
    const pd = (await smallDevice()).allocPd();
    // remote write / atomic need local write (IB core ib_check_mr_access)
    expectVerbsError(() => pd.regMr(64, Access.REMOTE_WRITE), "EINVAL", "ibv_reg_mr");
    expectVerbsError(() => pd.regMr(64, Access.REMOTE_ATOMIC), "EINVAL", "ibv_reg_mr");
    expectVerbsError(() => pd.regMr(64, 1 << 15), "EINVAL", "ibv_reg_mr"); // undefined bit
    // rxe does not implement these for MRs
    expectVerbsError(() => pd.regMr(64, Access.ON_DEMAND), "EOPNOTSUPP", "ibv_reg_mr");
    expectVerbsError(() => pd.regMr(64, Access.ZERO_BASED | Access.LOCAL_WRITE), "EOPNOTSUPP", "ibv_reg_mr");
    expectVerbsError(() => pd.regMr(64, Access.HUGETLB), "EOPNOTSUPP", "ibv_reg_mr");
    // allowed: read-only remote, flush, relaxed ordering (an optional hint)
    pd.regMr(64, Access.REMOTE_READ).destroy();
    pd.regMr(64, Access.LOCAL_WRITE | Access.FLUSH_GLOBAL | Access.FLUSH_PERSISTENT).destroy();
    pd.regMr(64, Access.LOCAL_WRITE | Access.RELAXED_ORDERING).destroy();
  });

  it("bad flow: lengths the arena cannot hold (ENOMEM), malformed lengths (EINVAL), too many MRs (EINVAL as rxe_pool)", async () => {
    const pd = (await smallDevice({ maxMr: 4 })).allocPd();
    expectVerbsError(() => pd.regMr(2 << 20), "ENOMEM", "ibv_reg_mr");
    expectVerbsError(() => pd.regMr(-1), "EINVAL", "ibv_reg_mr");
    expectVerbsError(() => pd.regMr(1.5), "EINVAL", "ibv_reg_mr");
    const mrs = [1, 2, 3, 4].map(() => pd.regMr(16));
    expectVerbsError(() => pd.regMr(16), "EINVAL", "ibv_reg_mr");
    mrs.forEach((m) => m.destroy());
  });

  it("stale keys fail the device's key check; dereg twice is a no-op", async () => {
    const dev = await smallDevice();
    const pd = dev.allocPd();
    const mr = pd.regMr(128, Access.LOCAL_WRITE);
    const core = dev.core as unknown as { mr_ptr(k: number): number };
    expect(core.mr_ptr(mr.lkey)).toBeGreaterThan(0);
    mr.destroy();
    expect(core.mr_ptr(mr.lkey)).toBe(0);
    expect(() => mr.destroy()).not.toThrow();
  });

  it("re-registering 10,000 MRs reuses the arena (no exhaustion, no growth)", async () => {
    const dev = await smallDevice({ maxMr: 8 });
    const pd = dev.allocPd();
    const bytes = dev.memory.buffer.byteLength;
    for (let i = 0; i < 10_000; i++) pd.regMr(4096 + (i % 5) * 1000, Access.LOCAL_WRITE).destroy();
    expect(dev.memory.buffer.byteLength).toBe(bytes);
    pd.regMr(1 << 20).destroy(); // the whole arena is one free range again
  });
});

describe("ibv_rereg_mr (as rxe: PD and access change in place, keys stay)", () => {
  it("changes access and PD; the PD use counts follow", async () => {
    const dev = await smallDevice();
    const pd1 = dev.allocPd();
    const pd2 = dev.allocPd();
    const mr = pd1.regMr(256, Access.LOCAL_WRITE);
    const key = mr.lkey;
    mr.rereg({ access: Access.LOCAL_WRITE | Access.REMOTE_WRITE });
    expect(mr.access).toBe(Access.LOCAL_WRITE | Access.REMOTE_WRITE);
    mr.rereg({ pd: pd2 });
    expect(mr.pd).toBe(pd2);
    expect(mr.lkey).toBe(key);
    pd1.destroy(); // no longer holds the MR
    expectVerbsError(() => pd2.destroy(), "EBUSY", "ibv_dealloc_pd");
    mr.destroy();
    pd2.destroy();
  });

  it("bad flow: bad access (EINVAL), a new translation (EOPNOTSUPP, rxe), no flags (EINVAL), dead PD or MR (EINVAL)", async () => {
    const dev = await smallDevice();
    const pd = dev.allocPd();
    const mr = pd.regMr(256, Access.LOCAL_WRITE);
    expectVerbsError(() => mr.rereg({ access: Access.REMOTE_WRITE }), "EINVAL", "ibv_rereg_mr");
    expectVerbsError(() => mr.rereg({ access: Access.ON_DEMAND }), "EOPNOTSUPP", "ibv_rereg_mr");
    expectVerbsError(() => mr.rereg({ flags: ReregMrFlags.CHANGE_TRANSLATION }), "EOPNOTSUPP", "ibv_rereg_mr");
    expectVerbsError(() => mr.rereg({}), "EINVAL", "ibv_rereg_mr");
    expectVerbsError(() => mr.rereg({ flags: 8 }), "EINVAL", "ibv_rereg_mr");
    const dead = dev.allocPd();
    dead.destroy();
    expectVerbsError(() => mr.rereg({ pd: dead }), "EINVAL", "ibv_rereg_mr");
    expect(mr.access).toBe(Access.LOCAL_WRITE);
    mr.destroy();
    expectVerbsError(() => mr.rereg({ access: 0 }), "EINVAL", "ibv_rereg_mr");
  });
});
