// Memory windows, fast registration and the remote-key resolution
// (assembly/mem/mw.ts, mr.ts, rkey.ts): rxe's key layout and every check of
// rxe_check_bind_mw, rxe_lookup_mw, rxe_invalidate_mw/mr, rxe_reg_fast_mr.
import { ACCESS_LOCAL_WRITE, ACCESS_MW_BIND, ACCESS_REMOTE_READ, ACCESS_REMOTE_WRITE, ACCESS_ZERO_BASED } from "../../assembly/mem/access";
import { EINVAL, EOPNOTSUPP } from "../../assembly/mem/errno";
import {
  keyIsMw, mrAllocFast, mrDereg, mrFastReg, mrFind, mrInvalidate, mrReg, MR_ADDR, MR_NUM_MW, MR_STATE, MR_STATE_FREE, MR_STATE_VALID,
} from "../../assembly/mem/mr";
import { mwAlloc, mwBind, mwDealloc, mwFind, mwInvalidate, mwResolve, MW_STATE, MW_STATE_FREE, MW_STATE_VALID } from "../../assembly/mem/mw";
import { pdAlloc } from "../../assembly/mem/pd";
import { rkeyResolve } from "../../assembly/mem/rkey";
import { gidIsMulticast, mcastAttach } from "../../assembly/verbs/mcast";
import { openTestDevice } from "./verbs-device.include";

openTestDevice();

const RW: u32 = ACCESS_REMOTE_READ | ACCESS_REMOTE_WRITE;
const QP1: u32 = 0x01000001; // QP handles as the checks see them (no QP object needed)
const QP2: u32 = 0x01000002;

function userMr(pd: u32, access: u32 = ACCESS_LOCAL_WRITE | ACCESS_MW_BIND): u32 { return <u32>mrReg(pd, 4096, access); }
function addrOf(key: u32): u64 { return load<u64>(mrFind(key) + MR_ADDR); }
@inline function next(key: u32): u32 { return (key & ~0xff) | ((key + 1) & 0xff); }

describe("memory window keys", () => {
  it("a window's rkey has index 0x80001 or more (rxe RXE_MIN_MW_INDEX); an MR's less", () => {
    const pd = <u32>pdAlloc();
    const k = <u32>mwAlloc(pd, 1);
    expect(k >> 8).toBeGreaterThanOrEqual(0x80001);
    expect(keyIsMw(k)).toBe(true);
    const m = userMr(pd);
    expect(keyIsMw(m)).toBe(false);
    expect(mwAlloc(pd, 3)).toBe(-EINVAL);
    expect(mwAlloc(0x7fff, 1)).toBe(-EINVAL);
    expect(mwDealloc(k)).toBe(0);
    expect(mwFind(k)).toBe(0);
    mrDereg(m);
  });
});

describe("binding", () => {
  it("type 1: VALID unbound, bind sets the key byte, range and access; length 0 unbinds", () => {
    const pd = <u32>pdAlloc();
    const mr = userMr(pd);
    const w = <u32>mwAlloc(pd, 1);
    expect(load<u32>(mwFind(w) + MW_STATE)).toBe(MW_STATE_VALID);
    const k = next(w);
    expect(mwBind(QP1, pd, w, k, mr, addrOf(mr) + 64, 128, RW)).toBe(0);
    expect(mwFind(w)).toBe(0); // the old rkey is gone
    expect(load<u32>(mrFind(mr) + MR_NUM_MW)).toBe(1);
    expect(mrDereg(mr)).toBe(-EINVAL); // bound
    // the window answers any QP of its PD (type 1) inside its range only
    expect(<u64>mwResolve(k, QP2, pd, addrOf(mr) + 64, 128, ACCESS_REMOTE_WRITE)).toBe(addrOf(mr) + 64);
    expect(mwResolve(k, QP2, pd, addrOf(mr) + 63, 8, ACCESS_REMOTE_WRITE)).toBe(0);
    expect(mwResolve(k, QP2, pd, addrOf(mr) + 190, 8, ACCESS_REMOTE_WRITE)).toBe(0);
    expect(mwResolve(k, QP2, pd + 1, addrOf(mr) + 64, 8, ACCESS_REMOTE_WRITE)).toBe(0); // another PD
    const k2 = next(k);
    expect(mwBind(QP1, pd, k, k2, 0, 0, 0, 0)).toBe(0); // unbind
    expect(load<u32>(mrFind(mr) + MR_NUM_MW)).toBe(0);
    expect(mwResolve(k2, QP1, pd, addrOf(mr), 8, 0)).toBe(0);
    expect(mrDereg(mr)).toBe(0);
  });

  it("refuses what rxe_check_bind_mw refuses", () => {
    const pd = <u32>pdAlloc();
    const other = <u32>pdAlloc();
    const mr = userMr(pd);
    const noBind = userMr(pd, ACCESS_LOCAL_WRITE);
    const noLocalWrite = userMr(pd, ACCESS_MW_BIND);
    const t1 = <u32>mwAlloc(pd, 1);
    const t2 = <u32>mwAlloc(pd, 2);
    const a = addrOf(mr);
    expect(mwBind(QP1, pd, next(t1), next(t1), mr, a, 8, RW)).toBe(-EINVAL); // not the current rkey
    expect(mwBind(QP1, other, t1, next(t1), mr, a, 8, RW)).toBe(-EINVAL); // the QP's PD (C10-72)
    expect(mwBind(QP1, pd, t1, next(t1), noBind, addrOf(noBind), 8, RW)).toBe(-EINVAL); // C10-73
    expect(mwBind(QP1, pd, t1, next(t1), noLocalWrite, addrOf(noLocalWrite), 8, ACCESS_REMOTE_WRITE)).toBe(-EINVAL); // C10-74
    expect(mwBind(QP1, pd, t1, next(t1), noLocalWrite, addrOf(noLocalWrite), 8, ACCESS_REMOTE_READ)).toBe(0); // read-only is fine
    const t1b = <u32>mwAlloc(pd, 1);
    expect(mwBind(QP1, pd, t1b, next(t1b), mr, a + 4000, 200, RW)).toBe(-EINVAL); // C10-75
    expect(mwBind(QP1, pd, t1b, next(t1b), mr, a, 8, RW | ACCESS_ZERO_BASED)).toBe(-EINVAL); // o10-36.2.2
    expect(mwBind(QP1, pd, t1b, next(t1b), mr, a, 8, 1 << 12)).toBe(-EOPNOTSUPP);
    expect(mwBind(QP1, pd, t2, next(t2), 0, 0, 0, 0)).toBe(-EINVAL); // o10-37.2.40
    const k2 = next(t2);
    expect(mwBind(QP1, pd, t2, k2, mr, a, 64, RW | ACCESS_ZERO_BASED)).toBe(0);
    expect(mwBind(QP1, pd, k2, next(k2), mr, a, 64, RW)).toBe(-EINVAL); // o10-37.2.30: bound already
  });

  it("type 2: tied to its QP; zero based from 0; LOCAL_INV or the bound QP's SEND_WITH_INV frees it", () => {
    const pd = <u32>pdAlloc();
    const mr = userMr(pd);
    const w = <u32>mwAlloc(pd, 2);
    expect(load<u32>(mwFind(w) + MW_STATE)).toBe(MW_STATE_FREE);
    const k = next(w);
    const a = addrOf(mr);
    expect(mwBind(QP1, pd, w, k, mr, a + 1024, 256, RW | ACCESS_ZERO_BASED)).toBe(0);
    expect(<u64>rkeyResolve(k, QP1, pd, 16, 8, ACCESS_REMOTE_READ)).toBe(a + 1040);
    expect(rkeyResolve(k, QP2, pd, 16, 8, ACCESS_REMOTE_READ)).toBe(0); // another QP
    expect(rkeyResolve(k, QP1, pd, 250, 8, ACCESS_REMOTE_READ)).toBe(0); // past the window
    expect(mwInvalidate(QP2, pd, k)).toBe(-EINVAL); // a peer's SEND_WITH_INV on another QP
    expect(mwInvalidate(QP1, pd, k)).toBe(0);
    expect(mwInvalidate(QP1, pd, k)).toBe(-EINVAL); // FREE now
    expect(rkeyResolve(k, QP1, pd, 16, 8, ACCESS_REMOTE_READ)).toBe(0);
    expect(load<u32>(mrFind(mr) + MR_NUM_MW)).toBe(0);
    const t1 = <u32>mwAlloc(pd, 1);
    expect(mwBind(QP1, pd, t1, next(t1), mr, a, 8, RW)).toBe(0);
    expect(mwInvalidate(0, pd, next(t1))).toBe(-EINVAL); // o10-37.2.26: type 1
    expect(mwDealloc(next(t1))).toBe(0);
    expect(load<u32>(mrFind(mr) + MR_NUM_MW)).toBe(0);
  });
});

describe("fast registration", () => {
  it("a FREE MR until REG_MR maps registered memory of its PD; invalidation frees it; user MRs are not invalidated", () => {
    const pd = <u32>pdAlloc();
    const other = <u32>pdAlloc();
    const backing = userMr(pd);
    const f = <u32>mrAllocFast(pd, 1);
    expect(load<u32>(mrFind(f) + MR_STATE)).toBe(MR_STATE_FREE);
    expect(rkeyResolve(f, QP1, pd, addrOf(backing), 8, 0)).toBe(0);
    const a = addrOf(backing);
    expect(mrFastReg(other, next(f), ACCESS_LOCAL_WRITE | RW, a, 4096)).toBe(-EINVAL); // another PD
    expect(mrFastReg(pd, next(f) + 0x100, ACCESS_LOCAL_WRITE, a, 64)).toBe(-EINVAL); // another index
    expect(mrFastReg(pd, next(f), ACCESS_LOCAL_WRITE, a, 8192)).toBe(-EINVAL); // past max_num_sg pages
    expect(mrFastReg(pd, next(f), ACCESS_LOCAL_WRITE, 64, 64)).toBe(-EINVAL); // not registered memory
    expect(mrFastReg(pd, next(f), ACCESS_REMOTE_WRITE, a, 64)).toBe(-EINVAL); // remote write without local write
    const k = next(f);
    expect(mrFastReg(pd, k, ACCESS_LOCAL_WRITE | RW, a + 512, 1024)).toBe(0);
    expect(mrFind(f)).toBe(0);
    expect(load<u32>(mrFind(k) + MR_STATE)).toBe(MR_STATE_VALID);
    expect(<u64>rkeyResolve(k, QP1, pd, a + 512, 1024, ACCESS_REMOTE_WRITE)).toBe(a + 512);
    expect(mrFastReg(pd, next(k), ACCESS_LOCAL_WRITE, a, 64)).toBe(-EINVAL); // VALID: invalidate first
    expect(mrInvalidate(other, k)).toBe(-EINVAL);
    expect(mrInvalidate(pd, backing)).toBe(-EINVAL); // a user MR
    expect(mrInvalidate(pd, k)).toBe(0);
    expect(rkeyResolve(k, QP1, pd, a + 512, 8, ACCESS_REMOTE_WRITE)).toBe(0);
    expect(mrAllocFast(pd, 0)).toBe(-EINVAL);
    // registered again, then its backing MR goes away: FREE
    expect(mrFastReg(pd, next(k), ACCESS_LOCAL_WRITE, a, 64)).toBe(0);
    expect(mrDereg(backing)).toBe(0);
    expect(load<u32>(mrFind(next(k)) + MR_STATE)).toBe(MR_STATE_FREE);
    expect(mrDereg(next(k))).toBe(0);
  });
});

describe("multicast GIDs", () => {
  it("ff00::/8 and IPv4-mapped 224.0.0.0/4 are multicast; others are not; attach needs a live UD QP", () => {
    const g = memory.data(16);
    memory.fill(g, 0, 16);
    store<u8>(g, 0xff);
    expect(gidIsMulticast(g)).toBe(true);
    memory.fill(g, 0, 16);
    store<u32>(g + 8, 0xffff0000);
    store<u8>(g + 12, 239);
    expect(gidIsMulticast(g)).toBe(true);
    store<u8>(g + 12, 10);
    expect(gidIsMulticast(g)).toBe(false);
    store<u8>(g + 12, 224);
    expect(mcastAttach(0x01000009, g)).toBe(-EINVAL); // no such QP
  });
});
