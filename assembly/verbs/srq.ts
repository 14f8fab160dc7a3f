// Shared receive queues: a ring of receive WQEs shared by QPs of one PD, with
// the one-shot limit event (SRQ_LIMIT_REACHED when the count drops below it).
import { arenaAlloc, arenaFree } from "../mem/arena";
import { EBUSY, EINVAL, ENOMEM } from "../mem/errno";
import { pdFind } from "../mem/pd";
import { Pool, poolFind, poolGive, poolInit, poolMint, poolSlot, poolTake, slotIndex, useCount, useDec, useInc, SLOT_HANDLE } from "../mem/pool";
import { cfg, CFG_MAX_SRQ_SGE, CFG_MAX_SRQ_WR } from "./config";
import { raiseEvent, EVENT_SRQ_LIMIT_REACHED } from "./events";
import { nextPow2 } from "../mem/pow2";
import { ringArena, ringBytes, ringCap, ringCons, ringCount, ringEntry, ringInit, ringResize, ringSetCons, RING_SLOT, RING_SRQ } from "../mem/ring";
import { rqSlotSize } from "./wqe";
import {
  SRQ_PD, SRQ_RING, SRQ_BYTES, SRQ_MAX_WR, SRQ_MAX_SGE, SRQ_LIMIT, SRQ_SLOT, SRQ_INIT_MAX_WR, SRQ_INIT_MAX_SGE,
  SRQ_INIT_LIMIT, SRQ_ATTR_MAX_WR, SRQ_ATTR_LIMIT,
} from "../abi/records";

// ABI constants: generated from abi/schema.json into assembly/abi/records.ts; re-exported for this file's importers.
export {
  SRQ_PD, SRQ_RING, SRQ_BYTES, SRQ_MAX_WR, SRQ_MAX_SGE, SRQ_LIMIT, SRQ_SLOT, SRQ_INIT_MAX_WR, SRQ_INIT_MAX_SGE,
  SRQ_INIT_LIMIT, SRQ_ATTR_MAX_WR, SRQ_ATTR_LIMIT,
} from "../abi/records";

export const srqPool = changetype<Pool>(memory.data(offsetof<Pool>()));

export function srqPoolInit(base: usize, cap: u32): void { poolInit(srqPool, base, SRQ_SLOT, cap); }
export function srqFind(h: u32): usize { return h ? poolFind(srqPool, h) : 0; }

/** ibv_create_srq (rxe_srq_chk_init): returns the handle or -errno. */
export function srqCreate(pdh: u32, init: usize): i32 {
  const pd = pdFind(pdh);
  if (!pd) return -EINVAL;
  const maxWr = load<u32>(init + SRQ_INIT_MAX_WR);
  const maxSge = load<u32>(init + SRQ_INIT_MAX_SGE);
  const limit = load<u32>(init + SRQ_INIT_LIMIT);
  if (maxWr == 0 || maxWr > cfg(CFG_MAX_SRQ_WR)) return -EINVAL;
  if (maxSge > cfg(CFG_MAX_SRQ_SGE)) return -EINVAL;
  const cap = nextPow2(maxWr);
  if (limit > cap) return -EINVAL;
  const slotSize = rqSlotSize(maxSge);
  const bytes = ringBytes(cap, slotSize);
  const idx = poolTake(srqPool);
  if (idx < 0) return -EINVAL; // rxe_pool.c
  const ring = arenaAlloc(ringArena, bytes);
  if (!ring) {
    poolGive(srqPool, <u32>idx);
    return -ENOMEM;
  }
  const h = poolMint(srqPool, <u32>idx);
  const s = poolSlot(srqPool, <u32>idx);
  ringInit(ring, cap, slotSize, RING_SRQ, h);
  store<u32>(s + SRQ_PD, pdh);
  store<u32>(s + SRQ_RING, <u32>ring);
  store<u32>(s + SRQ_BYTES, bytes);
  store<u32>(s + SRQ_MAX_WR, cap);
  store<u32>(s + SRQ_MAX_SGE, maxSge);
  store<u32>(s + SRQ_LIMIT, limit);
  useInc(pd);
  return <i32>h;
}

/** ibv_modify_srq: resize (MAX_WR, keeping the waiting WQEs) and/or arm the limit. */
export function srqModify(h: u32, mask: u32, attr: usize): i32 {
  const s = srqFind(h);
  if (!s) return -EINVAL;
  if (mask & ~(SRQ_ATTR_MAX_WR | SRQ_ATTR_LIMIT)) return -EINVAL;
  const r = <usize>load<u32>(s + SRQ_RING);
  let cap = load<u32>(s + SRQ_MAX_WR);
  const limit = (mask & SRQ_ATTR_LIMIT) ? load<u32>(attr + SRQ_INIT_LIMIT) : load<u32>(s + SRQ_LIMIT);
  if (mask & SRQ_ATTR_MAX_WR) {
    // rxe_srq_chk_attr: 1..max_srq_wr, not below an armed limit; rxe_queue_resize:
    // the WQEs waiting must fit
    const maxWr = load<u32>(attr + SRQ_INIT_MAX_WR);
    if (maxWr == 0 || maxWr > cfg(CFG_MAX_SRQ_WR)) return -EINVAL;
    if (limit && maxWr < limit) return -EINVAL;
    cap = nextPow2(maxWr);
    if (cap < ringCount(r)) return -EINVAL;
  }
  if (limit > cap) return -EINVAL; // rxe_srq_chk_attr
  if ((mask & SRQ_ATTR_MAX_WR) && cap != load<u32>(s + SRQ_MAX_WR)) {
    const nr = ringResize(r, load<u32>(s + SRQ_BYTES), cap);
    if (!nr) return -ENOMEM;
    store<u32>(s + SRQ_RING, <u32>nr);
    store<u32>(s + SRQ_BYTES, ringBytes(cap, load<u32>(nr + RING_SLOT)));
    store<u32>(s + SRQ_MAX_WR, cap);
  }
  if (mask & SRQ_ATTR_LIMIT) store<u32>(s + SRQ_LIMIT, limit);
  return 0;
}

export function srqDestroy(h: u32): i32 {
  const s = srqFind(h);
  if (!s) return -EINVAL;
  if (useCount(s)) return -EBUSY; // ib core: SRQ still attached to a QP
  arenaFree(ringArena, <usize>load<u32>(s + SRQ_RING), load<u32>(s + SRQ_BYTES));
  const pd = pdFind(load<u32>(s + SRQ_PD));
  if (pd) useDec(pd);
  poolGive(srqPool, slotIndex(srqPool, s));
  return 0;
}

/**
 * Takes the oldest posted receive WQE, copying it to `dst` (the slot size of the
 * ring); false when the SRQ is empty. After the take, if the remaining count is
 * below an armed limit, SRQ_LIMIT_REACHED is raised once and the limit disarmed
 * (rxe_resp.c get_srq_wqe). Used by the responder.
 */
export function srqTake(s: usize, dst: usize): bool {
  const r = <usize>load<u32>(s + SRQ_RING);
  if (ringCount(r) == 0) return false;
  const c = ringCons(r);
  memory.copy(dst, ringEntry(r, c), load<u32>(r + RING_SLOT));
  ringSetCons(r, c + 1);
  const limit = load<u32>(s + SRQ_LIMIT);
  if (limit && ringCount(r) < limit) {
    store<u32>(s + SRQ_LIMIT, 0);
    raiseEvent(EVENT_SRQ_LIMIT_REACHED, load<u32>(s + SLOT_HANDLE), ringCount(r));
  }
  return true;
}

export function srqCapacity(s: usize): u32 { return ringCap(<usize>load<u32>(s + SRQ_RING)); }
