// Fast registration page lists (assembly/mem/mr.ts): rxe_map_mr_sg / rxe_set_page (mrMapBegin,
// mrSetPage), rxe_reg_fast_mr with a page list (mrFastReg), and the iova translation every copy
// uses for a scattered MR (mrXlate, mrSpan, mrCopy; rxe_mr_copy_xarray).
import { ACCESS_LOCAL_WRITE, ACCESS_REMOTE_READ, ACCESS_REMOTE_WRITE } from "../../assembly/mem/access";
import { EINVAL, ENOMEM } from "../../assembly/mem/errno";
import {
  mrAllocFast, mrCopy, mrDereg, mrFastReg, mrFind, mrInvalidate, mrMapBegin, mrReg, mrSetPage, mrSpan, mrXlate, MR_ADDR,
  MR_SCATTERED, MR_STATE, MR_STATE_FREE,
} from "../../assembly/mem/mr";
import { pdAlloc } from "../../assembly/mem/pd";
import { rkeyIova, rkeyMr, rkeyResolve } from "../../assembly/mem/rkey";
import { openTestDevice } from "./verbs-device.include";

openTestDevice();

const RW: u32 = ACCESS_REMOTE_READ | ACCESS_REMOTE_WRITE;
const QP1: u32 = 0x01000001;
@inline function next(key: u32): u32 { return (key & ~0xff) | ((key + 1) & 0xff); }

describe("fast registration with a page list", () => {
  it("maps out-of-order pages; iova bytes translate page by page; copies cross the boundaries", () => {
    const pd = <u32>pdAlloc();
    const backing = <u32>mrReg(pd, 6 * 4096, ACCESS_LOCAL_WRITE);
    const base = (load<u64>(mrFind(backing) + MR_ADDR) + 4095) & ~(<u64>4095); // first whole page
    const p0 = base, p1 = base + 4096, p2 = base + 8192;
    const f = <u32>mrAllocFast(pd, 2);
    expect(mrSetPage(f, p2)).toBe(-EINVAL); // no mapping begun
    expect(mrMapBegin(f, 1000)).toBe(-EINVAL); // not a power of two
    expect(mrMapBegin(f, 256)).toBe(-EINVAL); // below 512
    expect(mrMapBegin(f, 4096)).toBe(0);
    expect(mrSetPage(f, p2 + 8)).toBe(-EINVAL); // not page aligned
    expect(mrSetPage(f, p2)).toBe(0);
    expect(mrSetPage(f, p0)).toBe(0);
    expect(mrSetPage(f, p1)).toBe(-ENOMEM); // max_num_sg pages already (rxe_set_page)
    const k = next(f);
    const iova = p2 + 100;
    expect(mrFastReg(pd, k, ACCESS_LOCAL_WRITE | RW, iova + 4096, 64)).toBe(-EINVAL); // iova not on the first page
    expect(mrFastReg(pd, k, ACCESS_LOCAL_WRITE | RW, iova, 8192)).toBe(-EINVAL); // past what the pages cover
    expect(mrFastReg(pd, k, ACCESS_LOCAL_WRITE | RW, iova, 8192 - 100)).toBe(0);
    const slot = mrFind(k);
    expect(load<u32>(slot + MR_SCATTERED)).toBe(1);
    expect(<u64>mrXlate(slot, iova)).toBe(p2 + 100);
    expect(<u64>mrXlate(slot, p2 + 4095)).toBe(p2 + 4095);
    expect(<u64>mrXlate(slot, p2 + 4096)).toBe(p0); // the second page of the list
    expect(<u64>mrSpan(slot, p2 + 4000, 96)).toBe(p2 + 4000);
    expect(mrSpan(slot, p2 + 4000, 97)).toBe(0); // crosses into a page elsewhere
    // a copy across the boundary lands on both pages
    const src = memory.data(16);
    for (let i: u32 = 0; i < 16; i++) store<u8>(src + i, <u8>(0xa0 + i));
    mrCopy(slot, p2 + 4090, src, 16, true);
    expect(load<u8>(<usize>(p2 + 4095))).toBe(0xa5);
    expect(load<u8>(<usize>p0)).toBe(0xa6);
    expect(load<u8>(<usize>(p1))).toBe(0); // untouched: not in the list
    const dst = memory.data(16);
    mrCopy(slot, p2 + 4090, dst, 16, false);
    expect(load<u8>(dst + 15)).toBe(0xaf);
    // the remote-key resolution keeps the MR and iova for such copies
    expect(<u64>rkeyResolve(k, QP1, pd, p2 + 4094, 8, ACCESS_REMOTE_WRITE)).toBe(p2 + 4094);
    expect(rkeyMr()).toBe(slot);
    expect(rkeyIova()).toBe(p2 + 4094);
    // a VALID MR is not remapped; after invalidation it is
    expect(mrMapBegin(k, 4096)).toBe(-EINVAL);
    expect(mrInvalidate(pd, k)).toBe(0);
    expect(mrMapBegin(k, 4096)).toBe(0);
    expect(mrSetPage(k, p1)).toBe(0);
    expect(mrSetPage(k, p0)).toBe(0);
    const k2 = next(k);
    expect(mrFastReg(pd, k2, ACCESS_LOCAL_WRITE, p1, 8192)).toBe(0);
    expect(load<u32>(mrFind(k2) + MR_SCATTERED)).toBe(1);
    expect(<u64>mrXlate(mrFind(k2), p1 + 4096)).toBe(p0);
    // its backing MR going away frees a VALID scattered MR that maps any of its pages
    expect(mrDereg(backing)).toBe(0);
    expect(load<u32>(mrFind(k2) + MR_STATE)).toBe(MR_STATE_FREE);
    expect(mrDereg(k2)).toBe(0);
  });

  it("a page list's bytes must be registered memory of the QP's PD", () => {
    const pd = <u32>pdAlloc();
    const other = <u32>pdAlloc();
    const mine = <u32>mrReg(pd, 2 * 4096, ACCESS_LOCAL_WRITE);
    const theirs = <u32>mrReg(other, 2 * 4096, ACCESS_LOCAL_WRITE);
    const pm = (load<u64>(mrFind(mine) + MR_ADDR) + 4095) & ~(<u64>4095);
    const pt = (load<u64>(mrFind(theirs) + MR_ADDR) + 4095) & ~(<u64>4095);
    const f = <u32>mrAllocFast(pd, 2);
    expect(mrMapBegin(f, 4096)).toBe(0);
    expect(mrSetPage(f, pm)).toBe(0);
    expect(mrSetPage(f, pt)).toBe(0);
    expect(mrFastReg(pd, next(f), ACCESS_LOCAL_WRITE, pm, 4096)).toBe(0); // the first page only: mine
    expect(mrInvalidate(pd, next(f))).toBe(0);
    expect(mrMapBegin(f, 4096)).toBe(0);
    expect(mrSetPage(f, pm)).toBe(0);
    expect(mrSetPage(f, pt)).toBe(0);
    expect(mrFastReg(pd, next(next(f)), ACCESS_LOCAL_WRITE, pm, 8192)).toBe(-EINVAL); // the second is another PD's
    mrDereg(next(f));
    mrDereg(mine);
    mrDereg(theirs);
  });
});
