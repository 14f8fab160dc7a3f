// Completion queues: a pool slot plus a ring of 64-byte CQEs the device produces
// and the host consumes without calling into the device. A full CQ is never
// overwritten: the post fails, CQ_ERR is raised and counted.
import { EBUSY, EINVAL, ENOMEM } from "../mem/errno";
import { arenaAlloc, arenaFree } from "../mem/arena";
import { Pool, poolFind, poolGive, poolInit, poolMint, poolTake, slotIndex, useCount, SLOT_HANDLE } from "../mem/pool";
import { cfg, CFG_MAX_CQE } from "./config";
import { count, Counter } from "./counters";
import { raiseEvent, EVENT_CQ_ERR } from "./events";
import { traceOn, traceRecord, TraceKind } from "../trace/trace";
import { nextPow2 } from "../mem/pow2";
import { ringArena, ringBytes, ringCap, ringCount, ringEntry, ringInit, ringProd, ringResize, ringSetProd, RING_CQ } from "../mem/ring";
import { CQ_RING, CQ_BLOCK, CQ_CQE, CQ_FLAGS, CQ_SLOT, CQ_FLAG_OVERFLOW } from "../abi/records";
import { CQE_STATUS, CQE_OPCODE, CQE_BYTE_LEN, CQE_QP_NUM, CQE_SIZE } from "../abi/cq";

// ABI constants: generated from abi/schema.json into assembly/abi/records.ts; re-exported for this file's importers.
export { CQ_RING, CQ_BLOCK, CQ_CQE, CQ_FLAGS, CQ_NOTIFY, CQ_SLOT, CQ_FLAG_OVERFLOW } from "../abi/records";
// ABI constants: generated from abi/schema.json into assembly/abi/cq.ts; re-exported for this file's importers.
export {
  CQE_WR_ID, CQE_STATUS, CQE_OPCODE, CQE_VENDOR_ERR, CQE_BYTE_LEN, CQE_IMM_DATA, CQE_QP_NUM, CQE_SRC_QP,
  CQE_WC_FLAGS, CQE_PKEY_INDEX, CQE_SLID, CQE_SL, CQE_DLID_PATH_BITS, CQE_SOLICITED, CQE_SGID, CQE_SIZE,
} from "../abi/cq";

export const cqPool = changetype<Pool>(memory.data(offsetof<Pool>()));

export function cqPoolInit(base: usize, cap: u32): void { poolInit(cqPool, base, CQ_SLOT, cap); }

export function cqCreate(cqe: i32): i32 {
  // rxe_cq_chk_attr: cqe must be in 1..max_cqe.
  if (cqe <= 0 || <u32>cqe > cfg(CFG_MAX_CQE)) return -EINVAL;
  const slots = nextPow2(<u32>cqe);
  const bytes = ringBytes(slots, CQE_SIZE);
  const idx = poolTake(cqPool);
  // rxe's object pools answer "too many objects" with EINVAL (rxe_pool.c).
  if (idx < 0) return -EINVAL;
  const ring = arenaAlloc(ringArena, bytes);
  if (!ring) {
    poolGive(cqPool, <u32>idx);
    return -ENOMEM;
  }
  const h = poolMint(cqPool, <u32>idx);
  const slot = cqPool.base + <usize>idx * CQ_SLOT;
  ringInit(ring, slots, CQE_SIZE, RING_CQ, h);
  store<u32>(slot + CQ_RING, <u32>ring);
  store<u32>(slot + CQ_BLOCK, bytes);
  store<u32>(slot + CQ_CQE, slots);
  return <i32>h;
}

export function cqFind(h: u32): usize { return poolFind(cqPool, h); }

/**
 * ibv_resize_cq: a new ring of at least `cqe` entries holding the unpolled CQEs
 * (rxe_cq_chk_attr: 1..max_cqe and not fewer than the CQEs waiting, else EINVAL).
 * The host must not poll during the call (it re-reads the ring address after).
 */
export function cqResize(h: u32, cqe: i32): i32 {
  const slot = cqFind(h);
  if (!slot) return -EINVAL;
  if (cqe <= 0 || <u32>cqe > cfg(CFG_MAX_CQE)) return -EINVAL;
  const r = <usize>load<u32>(slot + CQ_RING);
  const slots = nextPow2(<u32>cqe);
  if (slots < ringCount(r)) return -EINVAL;
  if (slots == ringCap(r)) return 0;
  const nr = ringResize(r, load<u32>(slot + CQ_BLOCK), slots);
  if (!nr) return -ENOMEM;
  store<u32>(slot + CQ_RING, <u32>nr);
  store<u32>(slot + CQ_BLOCK, ringBytes(slots, CQE_SIZE));
  store<u32>(slot + CQ_CQE, slots);
  return 0;
}

export function cqDestroy(h: u32): i32 {
  const slot = cqFind(h);
  if (!slot) return -EINVAL;
  if (useCount(slot)) return -EBUSY; // ib_destroy_cq: still used by a QP
  arenaFree(ringArena, <usize>load<u32>(slot + CQ_RING), load<u32>(slot + CQ_BLOCK));
  poolGive(cqPool, slotIndex(cqPool, slot));
  return 0;
}

/**
 * Reserves the next CQE of a CQ and returns its address (zeroed), or 0 when the
 * CQ is full: then CQ_ERR is raised and nothing is overwritten (rxe_cq_post).
 * The entry becomes visible to the host only with cqCommit.
 */
export function cqReserve(slot: usize): usize {
  const r = <usize>load<u32>(slot + CQ_RING);
  if (ringCount(r) >= ringCap(r)) {
    store<u32>(slot + CQ_FLAGS, load<u32>(slot + CQ_FLAGS) | CQ_FLAG_OVERFLOW);
    count(Counter.CQ_OVERFLOW);
    raiseEvent(EVENT_CQ_ERR, load<u32>(slot + SLOT_HANDLE), ringProd(r));
    return 0;
  }
  const e = ringEntry(r, ringProd(r));
  memory.fill(e, 0, CQE_SIZE);
  return e;
}

/** CQEs committed so far, on every CQ (wraps): "did that make a completion?" (engine.ts's sim batch). */
export let cqCommits: u32 = 0;

export function cqCommit(slot: usize): void {
  cqCommits++;
  const r = <usize>load<u32>(slot + CQ_RING);
  const i = ringProd(r);
  if (traceOn(TraceKind.COMPLETION)) {
    const e = ringEntry(r, i);
    traceRecord(TraceKind.COMPLETION, load<u32>(e + CQE_QP_NUM), load<u32>(e + CQE_STATUS), load<u32>(e + CQE_OPCODE),
      load<u32>(e + CQE_BYTE_LEN));
  }
  ringSetProd(r, i + 1);
}
