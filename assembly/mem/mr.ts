// Memory regions: ranges of the MR arena in linear memory. lkey == rkey ==
// ((index + 1) << 8) | key byte, the key byte random (assembly/mem/entropy.ts) and
// changing on every registration of a slot (as rxe), so keys of a deregistered MR
// stay invalid. An MR's
// address (iova) is its linear-memory address. Two kinds, as rxe: user MRs
// (ibv_reg_mr, memory of their own from the arena, VALID from the start) and
// fast-registration MRs (ibv_alloc_mr: no memory, FREE until a REG_MR work
// request maps a range of registered memory and makes them VALID; LOCAL_INV or
// a peer's SEND_WITH_INV makes them FREE again). MR indexes stay below
// MW_INDEX_MIN so one key says whether it names an MR or a memory window.
//
// A fast-registration MR has a page list (rxe mr->page_info), filled by ib_map_mr_sg
// (host/core/verbs/mr.ts mapSg runs ib_sg_to_pages and calls mrMapBegin/mrSetPage, as
// the IB core calls rxe_map_mr_sg/rxe_set_page). When its pages are not contiguous in
// linear memory the MR is SCATTERED: its iova bytes are found through the list
// (mrXlate, mrCopy), page by page; otherwise iova is the linear address itself.
import { Arena, arenaAlloc, arenaFree, arenaRound } from "./arena";
import { mrAccessCheck } from "./access";
import { EINVAL, ENOMEM, EOPNOTSUPP } from "./errno";
import { pdFind } from "./pd";
import { Pool, poolGive, poolInit, poolSlot, poolTake, useDec, useInc, SLOT_GEN, SLOT_HANDLE } from "./pool";
import { entropyU32 } from "./entropy";
import {
  MR_PD, MR_ACCESS, MR_KEY, MR_BLOCK, MR_ADDR, MR_LEN, MR_TYPE, MR_STATE, MR_NUM_MW, MR_MAX_LEN, MR_SLOT,
  MR_PAGES, MR_MAX_SG, MR_NBUF, MR_PAGE_SHIFT, MR_MAPPED, MR_SCATTERED,
  REREG_CHANGE_TRANSLATION, REREG_CHANGE_PD, REREG_CHANGE_ACCESS, MR_TYPE_USER, MR_TYPE_FAST_REG, MR_STATE_INVALID,
  MR_STATE_FREE, MR_STATE_VALID, MR_PAGE_SIZE, MW_INDEX_MIN,
} from "../abi/records";

// ABI constants: generated from abi/schema.json into assembly/abi/records.ts; re-exported for this file's importers.
export {
  MR_PD, MR_ACCESS, MR_KEY, MR_BLOCK, MR_ADDR, MR_LEN, MR_TYPE, MR_STATE, MR_NUM_MW, MR_MAX_LEN, MR_SLOT,
  MR_PAGES, MR_MAX_SG, MR_NBUF, MR_PAGE_SHIFT, MR_MAPPED, MR_SCATTERED,
  REREG_CHANGE_TRANSLATION, REREG_CHANGE_PD, REREG_CHANGE_ACCESS, MR_TYPE_USER, MR_TYPE_FAST_REG, MR_STATE_INVALID,
  MR_STATE_FREE, MR_STATE_VALID, MR_PAGE_SIZE, MW_INDEX_MIN,
} from "../abi/records";

/** Largest MR slot index: its key index (index + 1) stays below MW_INDEX_MIN. */
export const MR_MAX_INDEX: u32 = MW_INDEX_MIN - 2;

/** Does `key` name a memory window (rxe rkey_is_mw)? */
@inline export function keyIsMw(key: u32): bool { return (key >> 8) >= MW_INDEX_MIN; }

export const mrPool = changetype<Pool>(memory.data(offsetof<Pool>()));
export const mrArena = changetype<Arena>(memory.data(offsetof<Arena>()));

export function mrPoolInit(base: usize, cap: u32): void { poolInit(mrPool, base, MR_SLOT, cap); }

/** Fast-registration MRs allocated (user MR deregistration looks for theirs only when there are some). */
let fastMrs: u32 = 0;

/** Arena bytes from here on have never been written (see mrReg). */
let mrZeroMark: usize = 0;
/** Device open: the arena at `base` is fresh memory. */
export function mrZeroFrom(base: usize): void { mrZeroMark = base; }

/**
 * A random key byte (rxe draws it at random too) other than the slot's previous one, so keys do not
 * follow registration order and a deregistered MR's key stays invalid when its slot is reused.
 */
function freshKeyByte(prev: u32): u32 {
  const kb = entropyU32() & 0xff;
  return kb == (prev & 0xff) ? (kb + 1) & 0xff : kb;
}

/** Key for slot `idx` with key byte `kb`. */
@inline export function mrKey(idx: u32, kb: u32): u32 { return ((idx + 1) << 8) | (kb & 0xff); }

/** Registers `len` bytes with `access` in PD `pdh`; returns the key or -errno. */
export function mrReg(pdh: u32, len: u64, access: u32): i32 {
  const pd = pdFind(pdh);
  if (!pd) return -EINVAL;
  const ac = mrAccessCheck(access);
  if (ac) return ac;
  if (len > <u64>mrArena.size) return -ENOMEM;
  const idx = poolTake(mrPool);
  if (idx < 0) return -EINVAL; // rxe_pool.c: more than max_elem is EINVAL; arena exhaustion is ENOMEM
  const ptr = arenaAlloc(mrArena, <u32>len);
  if (!ptr) {
    poolGive(mrPool, <u32>idx);
    return -ENOMEM;
  }
  // A new MR reads as zeros. Arena bytes past the high-water mark were never
  // written since memory grew (fresh pages are zero), so only reused bytes are
  // cleared: a large arena is not touched, and committed, before it is used.
  const end = ptr + <usize>len;
  if (ptr < mrZeroMark) memory.fill(ptr, 0, min(end, mrZeroMark) - ptr);
  if (end > mrZeroMark) mrZeroMark = end;
  const slot = mrClaim(idx, pdh);
  const key = load<u32>(slot + MR_KEY);
  store<u32>(slot + MR_ACCESS, access);
  store<u32>(slot + MR_BLOCK, arenaRound(<u32>len));
  store<u64>(slot + MR_ADDR, <u64>ptr);
  store<u64>(slot + MR_LEN, len);
  store<u32>(slot + MR_TYPE, MR_TYPE_USER);
  store<u32>(slot + MR_STATE, MR_STATE_VALID);
  store<u32>(slot + MR_SCATTERED, 0);
  store<u32>(slot + MR_MAPPED, 0);
  useInc(pd);
  return <i32>key;
}

/** Takes pool slot `idx` for a new MR of PD `pdh`: a fresh key byte, the key as its handle. Returns the slot. */
function mrClaim(idx: i32, pdh: u32): usize {
  const slot = poolSlot(mrPool, <u32>idx);
  const kb = freshKeyByte(load<u32>(slot + SLOT_GEN));
  store<u32>(slot + SLOT_GEN, kb);
  const key = mrKey(<u32>idx, kb);
  store<u32>(slot + SLOT_HANDLE, key);
  store<u32>(slot + MR_PD, pdh);
  store<u32>(slot + MR_KEY, key);
  return slot;
}

/**
 * ibv_alloc_mr (IB_MR_TYPE_MEM_REG): an MR for fast registration that can map
 * up to `maxNumSg` pages; FREE (no access) until a REG_MR work request.
 * Returns the key or -errno.
 */
export function mrAllocFast(pdh: u32, maxNumSg: u32): i32 {
  const pd = pdFind(pdh);
  if (!pd) return -EINVAL;
  if (maxNumSg == 0 || <u64>maxNumSg * MR_PAGE_SIZE > <u64>mrArena.size) return -EINVAL; // rxe: max_num_sg > max_fast_reg_page_list_len
  const idx = poolTake(mrPool);
  if (idx < 0) return -EINVAL;
  // the page list (rxe alloc_mr_page_info: max_num_sg entries)
  const pages = arenaAlloc(mrArena, maxNumSg << 2);
  if (!pages) {
    poolGive(mrPool, <u32>idx);
    return -ENOMEM;
  }
  const slot = mrClaim(idx, pdh);
  store<u32>(slot + MR_PAGES, <u32>pages);
  store<u32>(slot + MR_BLOCK, arenaRound(maxNumSg << 2));
  store<u32>(slot + MR_MAX_SG, maxNumSg);
  store<u32>(slot + MR_NBUF, 0);
  store<u32>(slot + MR_PAGE_SHIFT, MR_PAGE_SHIFT_DEFAULT);
  store<u32>(slot + MR_MAPPED, 0);
  store<u32>(slot + MR_SCATTERED, 0);
  store<u32>(slot + MR_TYPE, MR_TYPE_FAST_REG);
  store<u32>(slot + MR_STATE, MR_STATE_FREE);
  store<u32>(slot + MR_MAX_LEN, maxNumSg * MR_PAGE_SIZE);
  fastMrs++;
  useInc(pd);
  return <i32>load<u32>(slot + MR_KEY);
}

/** The MR slot with index `key >> 8`, whatever its key byte (for key-byte changes), or 0. */
export function mrByIndex(key: u32): usize {
  const idx = (key >> 8) - 1;
  if (idx >= mrPool.cap) return 0;
  const slot = poolSlot(mrPool, idx);
  return load<u32>(slot + SLOT_HANDLE) ? slot : 0;
}

const MR_PAGE_SHIFT_DEFAULT: u32 = 12; // log2(MR_PAGE_SIZE)
/** Smallest and largest page size ib_map_mr_sg may ask for (powers of two). */
export const MR_MAP_PAGE_MIN: u32 = 512;
export const MR_MAP_PAGE_MAX: u32 = 1 << 30;

/**
 * ib_map_mr_sg, driver part (rxe_map_mr_sg): starts a new page list of pages of `pageSize`
 * bytes for fast-registration MR `key` (any key byte). -EINVAL for a page size that is not a
 * power of two in [MR_MAP_PAGE_MIN, MR_MAP_PAGE_MAX] (rxe: not compatible with PAGE_SIZE), or
 * while the MR is VALID: its live translation must not change under a peer (rxe lets it;
 * invalidate first).
 */
export function mrMapBegin(key: u32, pageSize: u32): i32 {
  const slot = mrByIndex(key);
  if (!slot || load<u32>(slot + MR_TYPE) != MR_TYPE_FAST_REG) return -EINVAL;
  if (pageSize < MR_MAP_PAGE_MIN || pageSize > MR_MAP_PAGE_MAX || (pageSize & (pageSize - 1))) return -EINVAL;
  if (load<u32>(slot + MR_STATE) == MR_STATE_VALID) return -EINVAL;
  store<u32>(slot + MR_NBUF, 0);
  store<u32>(slot + MR_PAGE_SHIFT, ctz(pageSize));
  store<u32>(slot + MR_MAPPED, 1);
  return 0;
}

/**
 * rxe_set_page: appends page `addr` (aligned to the mapping's page size) to the list begun by
 * mrMapBegin. -ENOMEM when max_num_sg pages are already there (rxe), -EINVAL for an unaligned
 * page, one past the 32-bit memory, or no mapping begun.
 */
export function mrSetPage(key: u32, addr: u64): i32 {
  const slot = mrByIndex(key);
  if (!slot || load<u32>(slot + MR_TYPE) != MR_TYPE_FAST_REG || !load<u32>(slot + MR_MAPPED)) return -EINVAL;
  const size = <u64>1 << load<u32>(slot + MR_PAGE_SHIFT);
  if ((addr & (size - 1)) != 0 || addr + size > <u64>0x100000000) return -EINVAL;
  const n = load<u32>(slot + MR_NBUF);
  if (n >= load<u32>(slot + MR_MAX_SG)) return -ENOMEM;
  store<u32>(<usize>load<u32>(slot + MR_PAGES) + (<usize>n << 2), <u32>addr);
  store<u32>(slot + MR_NBUF, n + 1);
  return 0;
}

/**
 * A mapped page list as [iova, iova + len) (ib_sg_to_pages set iova to the first byte's
 * address): the first page holds iova, the pages cover len, every byte mapped lies in a user
 * MR of PD `pdh`. Sets SCATTERED when the pages are not contiguous. 0 or -EINVAL.
 */
function mrTakePages(slot: usize, pdh: u32, iova: u64, len: u64): i32 {
  const shift = load<u32>(slot + MR_PAGE_SHIFT);
  const size = <u64>1 << shift;
  const mask = size - 1;
  const pages = <usize>load<u32>(slot + MR_PAGES);
  const n = load<u32>(slot + MR_NBUF);
  if (n == 0) return -EINVAL;
  if (<u64>load<u32>(pages) != (iova & ~mask)) return -EINVAL; // iova is where the first page starts plus the offset
  if (len > (<u64>n << shift) - (iova & mask)) return -EINVAL; // the pages do not cover the length
  let scattered: u32 = 0;
  let at = iova;
  let left = len;
  let owner: usize = 0; // pages usually come from one MR: checked first, the pool scanned only when it changes
  for (let i: u32 = 0; left > 0; i++) {
    const page = <u64>load<u32>(pages + (<usize>i << 2));
    const off = at & mask;
    const run = min(size - off, left);
    owner = mrBacking(pdh, page + off, run, owner);
    if (!owner) return -EINVAL;
    if (i > 0 && page != <u64>load<u32>(pages + (<usize>(i - 1) << 2)) + size) scattered = 1;
    at += run;
    left -= run;
  }
  store<u32>(slot + MR_SCATTERED, scattered);
  return 0;
}

/**
 * REG_MR work request (rxe_reg_fast_mr): gives the MR `access` and the new key `key` (only its
 * key byte may differ) and maps [addr, addr + len): through the page list an ib_map_mr_sg set
 * since the last REG_MR (mrMapBegin/mrSetPage; addr is then its iova), or else that range of
 * linear memory as it is, at most the MR's page budget. Every byte mapped must be registered
 * memory of the QP's PD. 0 or -EINVAL.
 */
export function mrFastReg(pdh: u32, key: u32, access: u32, addr: u64, len: u64): i32 {
  const slot = mrByIndex(key);
  if (!slot || load<u32>(slot + MR_TYPE) != MR_TYPE_FAST_REG) return -EINVAL;
  if (load<u32>(slot + MR_STATE) != MR_STATE_FREE) return -EINVAL; // only a FREE MR may be registered
  if (load<u32>(slot + MR_PD) != pdh) return -EINVAL; // the QP's PD
  if (mrAccessCheck(access) != 0) return -EINVAL;
  if (load<u32>(slot + MR_MAPPED)) {
    if (mrTakePages(slot, pdh, addr, len) != 0) return -EINVAL;
    store<u32>(slot + MR_MAPPED, 0);
  } else {
    if (len > <u64>load<u32>(slot + MR_MAX_LEN)) return -EINVAL;
    // The pages must be memory the PD already owns: a user MR of the same PD holds the range.
    if (!mrBacked(pdh, addr, len)) return -EINVAL;
    store<u32>(slot + MR_SCATTERED, 0);
  }
  store<u32>(slot + SLOT_HANDLE, key);
  store<u32>(slot + SLOT_GEN, key & 0xff);
  store<u32>(slot + MR_KEY, key);
  store<u32>(slot + MR_ACCESS, access);
  store<u64>(slot + MR_ADDR, addr);
  store<u64>(slot + MR_LEN, len);
  store<u32>(slot + MR_STATE, MR_STATE_VALID);
  return 0;
}

/** Is [addr, addr + len) inside one user MR of PD `pdh`? */
function mrBacked(pdh: u32, addr: u64, len: u64): bool {
  return mrBacking(pdh, addr, len, 0) != 0;
}

/** The user MR of PD `pdh` that holds [addr, addr + len), trying `hint` first (the one that held the last page), or 0. */
function mrBacking(pdh: u32, addr: u64, len: u64, hint: usize): usize {
  if (hint && mrInRange(hint, addr, len)) return hint;
  for (let i: u32 = 0; i < mrPool.cap; i++) {
    const s = poolSlot(mrPool, i);
    if (!load<u32>(s + SLOT_HANDLE) || load<u32>(s + MR_TYPE) != MR_TYPE_USER || load<u32>(s + MR_PD) != pdh) continue;
    if (mrInRange(s, addr, len)) return s;
  }
  return 0;
}

/**
 * LOCAL_INV or a peer's SEND_WITH_INV of an MR key (rxe_invalidate_mr): only a
 * VALID fast-registration MR with no window bound may be invalidated, from a
 * QP of its PD. 0 or -EINVAL.
 */
export function mrInvalidate(pdh: u32, key: u32): i32 {
  const slot = mrFind(key);
  if (!slot || load<u32>(slot + MR_PD) != pdh) return -EINVAL;
  if (load<u32>(slot + MR_NUM_MW) != 0) return -EINVAL;
  if (load<u32>(slot + MR_TYPE) != MR_TYPE_FAST_REG) return -EINVAL; // user MRs cannot be invalidated
  if (load<u32>(slot + MR_STATE) != MR_STATE_VALID) return -EINVAL;
  store<u32>(slot + MR_STATE, MR_STATE_FREE);
  return 0;
}

/** The MR slot a key names, or 0 when the key is unknown or stale. */
export function mrFind(key: u32): usize {
  const idx = (key >> 8) - 1;
  if (idx >= mrPool.cap) return 0;
  const slot = poolSlot(mrPool, idx);
  return key != 0 && load<u32>(slot + SLOT_HANDLE) == key ? slot : 0;
}

export function mrDereg(key: u32): i32 {
  const slot = mrFind(key);
  if (!slot) return -EINVAL;
  if (load<u32>(slot + MR_NUM_MW) != 0) return -EINVAL; // windows still bound (rxe_dereg_mr)
  if (load<u32>(slot + MR_TYPE) == MR_TYPE_USER) {
    // fast-registration MRs that map these pages lose them: they become FREE
    const start = load<u64>(slot + MR_ADDR);
    const len = load<u64>(slot + MR_LEN);
    for (let i: u32 = 0; fastMrs != 0 && i < mrPool.cap; i++) {
      const s = poolSlot(mrPool, i);
      if (!load<u32>(s + SLOT_HANDLE) || load<u32>(s + MR_TYPE) != MR_TYPE_FAST_REG || load<u32>(s + MR_STATE) != MR_STATE_VALID) continue;
      if (mrMapsAny(s, start, len)) store<u32>(s + MR_STATE, MR_STATE_FREE);
    }
    arenaFree(mrArena, <usize>start, load<u32>(slot + MR_BLOCK));
  } else {
    fastMrs--; // it borrowed its pages: only its page list goes back
    arenaFree(mrArena, <usize>load<u32>(slot + MR_PAGES), load<u32>(slot + MR_BLOCK));
  }
  store<u32>(slot + MR_STATE, MR_STATE_INVALID);
  const pd = pdFind(load<u32>(slot + MR_PD));
  if (pd) useDec(pd);
  poolGive(mrPool, (key >> 8) - 1);
  return 0;
}

/** Does VALID fast-registration MR `s` map any byte of linear memory [start, start + len)? */
function mrMapsAny(s: usize, start: u64, len: u64): bool {
  const a = load<u64>(s + MR_ADDR);
  const l = load<u64>(s + MR_LEN);
  if (!load<u32>(s + MR_SCATTERED)) return a < start + len && start < a + l;
  const shift = load<u32>(s + MR_PAGE_SHIFT);
  const size = <u64>1 << shift;
  const pages = <usize>load<u32>(s + MR_PAGES);
  const used = <u32>(((a & (size - 1)) + l + size - 1) >> shift);
  for (let i: u32 = 0; i < used; i++) {
    const p = <u64>load<u32>(pages + (<usize>i << 2));
    if (p < start + len && start < p + size) return true;
  }
  return false;
}

/**
 * ibv_rereg_mr as rxe does it (rxe_rereg_user_mr): the PD and/or the access flags
 * change in place and the keys stay; a new translation (address/length) is
 * EOPNOTSUPP.
 */
export function mrRereg(key: u32, flags: u32, pdh: u32, access: u32): i32 {
  const slot = mrFind(key);
  if (!slot) return -EINVAL;
  if (load<u32>(slot + MR_TYPE) != MR_TYPE_USER) return -EINVAL; // rereg is for user MRs
  if (flags == 0 || (flags & ~(REREG_CHANGE_TRANSLATION | REREG_CHANGE_PD | REREG_CHANGE_ACCESS))) return -EINVAL; // uverbs
  if (flags & REREG_CHANGE_ACCESS) {
    const ac = mrAccessCheck(access);
    if (ac) return ac;
  }
  let pd: usize = 0;
  if (flags & REREG_CHANGE_PD) {
    pd = pdFind(pdh);
    if (!pd) return -EINVAL;
  }
  if (flags & REREG_CHANGE_TRANSLATION) return -EOPNOTSUPP; // not in RXE_MR_REREG_SUPPORTED
  if (pd) {
    const old = pdFind(load<u32>(slot + MR_PD));
    if (old) useDec(old);
    useInc(pd);
    store<u32>(slot + MR_PD, pdh);
  }
  if (flags & REREG_CHANGE_ACCESS) store<u32>(slot + MR_ACCESS, access);
  return 0;
}

/**
 * The one bounds check every DMA uses: is [addr, addr + len) inside the MR?
 * Written without addr + len so 64-bit wrap-around cannot pass.
 */
export function mrInRange(slot: usize, addr: u64, len: u64): bool {
  const start = load<u64>(slot + MR_ADDR);
  const size = load<u64>(slot + MR_LEN);
  return addr >= start && len <= size && addr - start <= size - len;
}

export const MR_OK: i32 = 0;
export const MR_BAD_KEY: i32 = 1; // unknown/stale key or another PD
export const MR_BAD_RANGE: i32 = 2;
export const MR_BAD_ACCESS: i32 = 3;

/**
 * Validates a DMA through `key` for `len` bytes at `addr`, from PD `pdh`,
 * needing every bit of `need` (0 for local reads). Zero-length transfers are
 * not checked by the callers (C9-88), so len 0 here still needs a valid key.
 */
export function mrCheck(key: u32, pdh: u32, addr: u64, len: u64, need: u32): i32 {
  const slot = mrFind(key);
  if (!slot || load<u32>(slot + MR_PD) != pdh || load<u32>(slot + MR_STATE) != MR_STATE_VALID) return MR_BAD_KEY;
  if ((load<u32>(slot + MR_ACCESS) & need) != need) return MR_BAD_ACCESS;
  if (!mrInRange(slot, addr, len)) return MR_BAD_RANGE;
  return MR_OK;
}

/** mrCheck's verdict as the MR slot (0 when refused): what the copy routines use. */
export function mrLookup(key: u32, pdh: u32, addr: u64, len: u64, need: u32): usize {
  const slot = mrFind(key);
  if (!slot || load<u32>(slot + MR_PD) != pdh || load<u32>(slot + MR_STATE) != MR_STATE_VALID) return 0;
  if ((load<u32>(slot + MR_ACCESS) & need) != need || !mrInRange(slot, addr, len)) return 0;
  return slot;
}

// ---- iova → linear memory (rxe_mr_iova_to_index / rxe_mr_copy_xarray) ----

/** Linear address of byte `va` of a scattered MR (va inside the MR). */
function pageAddr(slot: usize, va: u64): usize {
  const shift = load<u32>(slot + MR_PAGE_SHIFT);
  const mask = (<u64>1 << shift) - 1;
  const idx = <u32>((va - (load<u64>(slot + MR_ADDR) & ~mask)) >> shift);
  return <usize>load<u32>(<usize>load<u32>(slot + MR_PAGES) + (<usize>idx << 2)) + <usize>(va & mask);
}

/** Linear address of byte `va` of MR `slot` (checked to be inside it). */
@inline export function mrXlate(slot: usize, va: u64): usize {
  return load<u32>(slot + MR_SCATTERED) ? pageAddr(slot, va) : <usize>va;
}

/** Linear address of [va, va + len) of MR `slot` when those bytes are one run of linear memory, else 0. */
export function mrSpan(slot: usize, va: u64, len: u32): usize {
  if (!load<u32>(slot + MR_SCATTERED)) return <usize>va;
  const size = <u64>1 << load<u32>(slot + MR_PAGE_SHIFT);
  return (va & (size - 1)) + <u64>len <= size ? pageAddr(slot, va) : 0;
}

/** Copies `len` bytes between MR `slot` at iova `va` (checked) and linear memory `mem`, page by page when scattered. */
export function mrCopy(slot: usize, va: u64, mem: usize, len: u32, toMr: bool): void {
  if (!load<u32>(slot + MR_SCATTERED)) {
    if (toMr) memory.copy(<usize>va, mem, len);
    else memory.copy(mem, <usize>va, len);
    return;
  }
  const size = <u64>1 << load<u32>(slot + MR_PAGE_SHIFT);
  while (len > 0) {
    const n = <u32>min(<u64>len, size - (va & (size - 1)));
    const p = pageAddr(slot, va);
    if (toMr) memory.copy(p, mem, n);
    else memory.copy(mem, p, n);
    va += <u64>n;
    mem += n;
    len -= n;
  }
}
