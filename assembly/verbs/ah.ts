// Address handles: an AV in a pool slot, owned by a PD.
import { EINVAL } from "../mem/errno";
import { pdFind } from "../mem/pd";
import { Pool, poolFind, poolGive, poolInit, poolMint, poolSlot, poolTake, slotIndex, useDec, useInc } from "../mem/pool";
import { avCheck, AV_SIZE } from "./av";
import { AH_PD, AH_AV, AH_SLOT } from "../abi/records";

// ABI constants: generated from abi/schema.json into assembly/abi/records.ts; re-exported for this file's importers.
export { AH_PD, AH_AV, AH_SLOT } from "../abi/records";

export const ahPool = changetype<Pool>(memory.data(offsetof<Pool>()));

export function ahPoolInit(base: usize, cap: u32): void { poolInit(ahPool, base, AH_SLOT, cap); }
export function ahFind(h: u32): usize { return poolFind(ahPool, h); }

/** ibv_create_ah from the AV at `av`; returns the handle or -errno. */
export function ahCreate(pdh: u32, av: usize): i32 {
  const pd = pdFind(pdh);
  if (!pd) return -EINVAL;
  const err = avCheck(av);
  if (err) return err;
  const idx = poolTake(ahPool);
  if (idx < 0) return -EINVAL; // rxe_pool.c
  const h = poolMint(ahPool, <u32>idx);
  const s = poolSlot(ahPool, <u32>idx);
  store<u32>(s + AH_PD, pdh);
  memory.copy(s + AH_AV, av, AV_SIZE);
  useInc(pd);
  return <i32>h;
}

export function ahDestroy(h: u32): i32 {
  const s = ahFind(h);
  if (!s) return -EINVAL;
  const pd = pdFind(load<u32>(s + AH_PD));
  if (pd) useDec(pd);
  poolGive(ahPool, slotIndex(ahPool, s));
  return 0;
}
