// Protection domains: a pool slot whose use count counts the MRs, QPs, SRQs and
// AHs created in it (deallocating a PD in use fails with EBUSY, as in IB core).
import { EBUSY, EINVAL } from "./errno";
import { Pool, poolFind, poolGive, poolInit, poolMint, poolTake, slotIndex, useCount, SLOT_HDR } from "./pool";

export const PD_SLOT: u32 = <u32>SLOT_HDR;
export const pdPool = changetype<Pool>(memory.data(offsetof<Pool>()));

export function pdPoolInit(base: usize, cap: u32): void { poolInit(pdPool, base, PD_SLOT, cap); }

export function pdAlloc(): i32 {
  const idx = poolTake(pdPool);
  if (idx < 0) return -EINVAL; // rxe_pool.c __rxe_add_to_pool: more than max_elem is EINVAL
  return <i32>poolMint(pdPool, <u32>idx);
}

/** The PD's slot, or 0 for a stale handle. */
export function pdFind(h: u32): usize { return poolFind(pdPool, h); }

export function pdDealloc(h: u32): i32 {
  const slot = pdFind(h);
  if (!slot) return -EINVAL;
  if (useCount(slot)) return -EBUSY;
  poolGive(pdPool, slotIndex(pdPool, slot));
  return 0;
}
