// Memory regions: ranges of the MR arena in linear memory. lkey == rkey ==
// ((index + 1) << 8) | key byte, the key byte changing on every registration
// of a slot (as rxe), so keys of a deregistered MR stay invalid.
import { Arena, arenaAlloc, arenaFree, arenaRound } from "./arena";
import { mrAccessCheck } from "./access";
import { EINVAL, ENOMEM, EOPNOTSUPP } from "./errno";
import { pdFind } from "./pd";
import { Pool, poolGive, poolInit, poolSlot, poolTake, useDec, useInc, SLOT_GEN, SLOT_HANDLE } from "./pool";
import {
  MR_PD, MR_ACCESS, MR_KEY, MR_BLOCK, MR_ADDR, MR_LEN, MR_SLOT, REREG_CHANGE_TRANSLATION, REREG_CHANGE_PD,
  REREG_CHANGE_ACCESS,
} from "../abi/records";

// ABI constants: generated from abi/schema.json into assembly/abi/records.ts; re-exported for this file's importers.
export {
  MR_PD, MR_ACCESS, MR_KEY, MR_BLOCK, MR_ADDR, MR_LEN, MR_SLOT, REREG_CHANGE_TRANSLATION, REREG_CHANGE_PD,
  REREG_CHANGE_ACCESS,
} from "../abi/records";

/** Largest MR index: keys must stay positive i32 values. */
export const MR_MAX_INDEX: u32 = (1 << 23) - 2;

export const mrPool = changetype<Pool>(memory.data(offsetof<Pool>()));
export const mrArena = changetype<Arena>(memory.data(offsetof<Arena>()));

export function mrPoolInit(base: usize, cap: u32): void { poolInit(mrPool, base, MR_SLOT, cap); }

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
  memory.fill(ptr, 0, <usize>len);
  const slot = poolSlot(mrPool, <u32>idx);
  const kb = (load<u32>(slot + SLOT_GEN) + 1) & 0xff;
  store<u32>(slot + SLOT_GEN, kb);
  const key = mrKey(<u32>idx, kb);
  store<u32>(slot + SLOT_HANDLE, key);
  store<u32>(slot + MR_PD, pdh);
  store<u32>(slot + MR_ACCESS, access);
  store<u32>(slot + MR_KEY, key);
  store<u32>(slot + MR_BLOCK, arenaRound(<u32>len));
  store<u64>(slot + MR_ADDR, <u64>ptr);
  store<u64>(slot + MR_LEN, len);
  useInc(pd);
  return <i32>key;
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
  arenaFree(mrArena, <usize>load<u64>(slot + MR_ADDR), load<u32>(slot + MR_BLOCK));
  const pd = pdFind(load<u32>(slot + MR_PD));
  if (pd) useDec(pd);
  poolGive(mrPool, (key >> 8) - 1);
  return 0;
}

/**
 * ibv_rereg_mr as rxe does it (rxe_rereg_user_mr): the PD and/or the access flags
 * change in place and the keys stay; a new translation (address/length) is
 * EOPNOTSUPP.
 */
export function mrRereg(key: u32, flags: u32, pdh: u32, access: u32): i32 {
  const slot = mrFind(key);
  if (!slot) return -EINVAL;
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
  if (!slot || load<u32>(slot + MR_PD) != pdh) return MR_BAD_KEY;
  if ((load<u32>(slot + MR_ACCESS) & need) != need) return MR_BAD_ACCESS;
  if (!mrInRange(slot, addr, len)) return MR_BAD_RANGE;
  return MR_OK;
}
