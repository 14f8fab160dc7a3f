import { mrAccessCheck, ACCESS_LOCAL_WRITE, ACCESS_REMOTE_ATOMIC, ACCESS_REMOTE_READ, ACCESS_REMOTE_WRITE, ACCESS_ZERO_BASED, ACCESS_ON_DEMAND, ACCESS_FLUSH_GLOBAL, ACCESS_FLUSH_PERSISTENT } from "../../assembly/mem/access";
import { EINVAL, EOPNOTSUPP, EBUSY } from "../../assembly/mem/errno";
import { mrCheck, mrDereg, mrFind, mrInRange, mrKey, mrReg, MR_ADDR, MR_BAD_ACCESS, MR_BAD_KEY, MR_BAD_RANGE, MR_OK } from "../../assembly/mem/mr";
import { pdAlloc, pdDealloc } from "../../assembly/mem/pd";
import { openTestDevice } from "./verbs-device.include";

openTestDevice();

describe("access rules", () => {
  it("accepts local-only and remote read without local write", () => {
    expect(mrAccessCheck(0)).toBe(0);
    expect(mrAccessCheck(ACCESS_REMOTE_READ)).toBe(0);
    expect(mrAccessCheck(ACCESS_LOCAL_WRITE | ACCESS_REMOTE_WRITE | ACCESS_REMOTE_ATOMIC)).toBe(0);
    expect(mrAccessCheck(ACCESS_FLUSH_GLOBAL | ACCESS_FLUSH_PERSISTENT)).toBe(0);
  });
  it("needs local write for remote write or remote atomic (EINVAL)", () => {
    expect(mrAccessCheck(ACCESS_REMOTE_WRITE)).toBe(-EINVAL);
    expect(mrAccessCheck(ACCESS_REMOTE_ATOMIC | ACCESS_REMOTE_READ)).toBe(-EINVAL);
  });
  it("rejects unknown bits with EINVAL and unsupported ones with EOPNOTSUPP", () => {
    expect(mrAccessCheck(1 << 12)).toBe(-EINVAL);
    expect(mrAccessCheck(ACCESS_ON_DEMAND)).toBe(-EOPNOTSUPP);
    expect(mrAccessCheck(ACCESS_ZERO_BASED)).toBe(-EOPNOTSUPP);
  });
});

describe("memory regions", () => {
  it("mints lkey = (index + 1) << 8 | key byte, a new key byte per registration", () => {
    const pd = <u32>pdAlloc();
    const k1 = mrReg(pd, 100, ACCESS_LOCAL_WRITE);
    expect(k1).toBeGreaterThan(0);
    expect((<u32>k1 >> 8) - 1).toBeLessThan(16);
    expect(mrDereg(<u32>k1)).toBe(0);
    expect(mrFind(<u32>k1)).toBe(0);
    // register until the same slot comes back: its key byte differs, the old key stays stale
    let again: i32 = 0;
    for (let i = 0; i < 64; i++) {
      const k = mrReg(pd, 100, ACCESS_LOCAL_WRITE);
      if ((k >> 8) == (k1 >> 8)) { again = k; break; }
      mrDereg(<u32>k);
    }
    expect(again).toBeGreaterThan(0);
    expect(again & 0xff).not.toBe(k1 & 0xff);
    expect(mrCheck(<u32>k1, pd, 0, 0, 0)).toBe(MR_BAD_KEY);
    mrDereg(<u32>again);
    expect(pdDealloc(pd)).toBe(0);
  });

  it("keeps the PD busy while it has MRs", () => {
    const pd = <u32>pdAlloc();
    const k = mrReg(pd, 64, 0);
    expect(pdDealloc(pd)).toBe(-EBUSY);
    mrDereg(<u32>k);
    expect(pdDealloc(pd)).toBe(0);
  });

  it("bounds-checks with no 64-bit overflow", () => {
    const pd = <u32>pdAlloc();
    const k = <u32>mrReg(pd, 4096, ACCESS_LOCAL_WRITE | ACCESS_REMOTE_READ);
    const slot = mrFind(k);
    const a = load<u64>(slot + MR_ADDR);
    expect(mrInRange(slot, a, 4096)).toBe(true);
    expect(mrInRange(slot, a + 4095, 1)).toBe(true);
    expect(mrInRange(slot, a + 4096, 0)).toBe(true);
    expect(mrInRange(slot, a + 4096, 1)).toBe(false);
    expect(mrInRange(slot, a - 1, 1)).toBe(false);
    expect(mrInRange(slot, a, 4097)).toBe(false);
    // addr + len wraps to inside the region: must still fail
    expect(mrInRange(slot, a + 16, 0xffffffffffffffff)).toBe(false);
    expect(mrInRange(slot, 0xfffffffffffff000, 0x2000)).toBe(false);
    expect(mrCheck(k, pd, a, 16, ACCESS_REMOTE_READ)).toBe(MR_OK);
    expect(mrCheck(k, pd, a, 16, ACCESS_REMOTE_WRITE)).toBe(MR_BAD_ACCESS);
    expect(mrCheck(k, pd, a + 4090, 16, 0)).toBe(MR_BAD_RANGE);
    expect(mrCheck(k, pd + 1, a, 16, 0)).toBe(MR_BAD_KEY);
    expect(mrCheck(mrKey(3000, 1), pd, a, 16, 0)).toBe(MR_BAD_KEY);
    mrDereg(k);
    pdDealloc(pd);
  });
});
