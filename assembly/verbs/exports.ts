// Exports of the device object model (assembly/mem + assembly/verbs): numbers
// in, numbers out. Handles are positive i32; failures are -errno. Argument
// records are written by the host into dev_args() before the call.
import { mrAllocFast, mrByIndex, mrDereg, mrFind, mrMapBegin, mrReg, mrRereg, mrSetPage } from "../mem/mr";
import { mwAlloc, mwByIndex, mwDealloc } from "../mem/mw";
import { mcastAttach, mcastDetach } from "./mcast";
import { pdAlloc, pdDealloc, pdFind } from "../mem/pd";
import { ahCreate, ahDestroy, ahFind } from "./ah";
import { config, gidTable, CFG_SIZE } from "./config";
import { counterBlock, Counter, COUNTER_NAMES } from "./counters";
import { cqCreate, cqDestroy, cqFind, cqResize } from "./cq";
import { devArgs, devOpen } from "./device";
import { EINVAL } from "../mem/errno";
import { eventsRing } from "./events";
import { gsiCreate, gsiForget } from "./gsi";
import { qpAt, qpByNum, qpCreate, qpDestroy, qpFind, qpPool, INIT_QP_TYPE } from "./qp";
import { qpSport, qpSportSet, sportBitmap, sportsClear, sportsMark } from "./sport";
import { SLOT_HANDLE } from "../mem/pool";
import { QPT_GSI } from "./enums";
import { srqCreate, srqDestroy, srqFind, srqModify, srqTake } from "./srq";
import { VERBS_ABI_VERSION } from "../abi/version";
import { entropyAvail, entropyFilled, entropyPool, entropyStarved, ENTROPY_CAP, ENTROPY_LOW } from "../mem/entropy";

/** The layout version of abi/schema.json this core was built from; the host refuses another. */
export function verbs_abi_version(): u32 { return VERBS_ABI_VERSION; }

/** The configuration record (CFG_* offsets), written by the host before dev_open. */
export function dev_config(): usize { return config; }
export function dev_config_size(): u32 { return CFG_SIZE; }
export function dev_open(): i32 { return devOpen(); }
/** The argument block for create/modify calls (512 bytes, valid after open). */
export function dev_args(): usize { return devArgs(); }
/** The GID table, 16 entries of 16 bytes; CFG_GID_COUNT says how many are valid. */
export function dev_gids(): usize { return gidTable; }
export function dev_events(): usize { return eventsRing(); }
export function dev_counters(): usize { return counterBlock; }
export function dev_counter_count(): u32 { return <u32>Counter.COUNT; }
/** A UTF-16 AssemblyScript string (byte length at ptr - 4): counter names, comma separated. */
export function dev_counter_names(): usize { return changetype<usize>(COUNTER_NAMES); }

/** The entropy pool (assembly/mem/entropy.ts): the host writes random bytes at its start, then says how many. */
export function entropy_pool(): usize { return entropyPool; }
export function entropy_cap(): u32 { return ENTROPY_CAP; }
export function entropy_low(): u32 { return ENTROPY_LOW; }
export function entropy_filled(n: u32): void { entropyFilled(n); }
export function entropy_avail(): u32 { return entropyAvail(); }
export function entropy_starved(): u32 { return entropyStarved(); }

export function pd_alloc(): i32 { return pdAlloc(); }
export function pd_dealloc(h: u32): i32 { return pdDealloc(h); }
export function pd_ptr(h: u32): usize { return pdFind(h); }

export function mr_reg(pd: u32, length: u32, access: u32): i32 { return mrReg(pd, <u64>length, access); }
export function mr_dereg(key: u32): i32 { return mrDereg(key); }
export function mr_ptr(key: u32): usize { return mrFind(key); }
export function mr_rereg(key: u32, flags: u32, pd: u32, access: u32): i32 { return mrRereg(key, flags, pd, access); }
/** ibv_alloc_mr: an MR for fast registration (REG_MR work requests) of up to max_num_sg pages. */
export function mr_alloc_fast(pd: u32, maxNumSg: u32): i32 { return mrAllocFast(pd, maxNumSg); }
/** ib_map_mr_sg (rxe_map_mr_sg): a new page list of `pageSize` pages for fast-registration MR `key`; 0 or -errno. */
export function mr_map_begin(key: u32, pageSize: u32): i32 { return mrMapBegin(key, pageSize); }
/** rxe_set_page: the next page of that list; 0, -ENOMEM (max_num_sg pages already) or -EINVAL. */
export function mr_set_page(key: u32, addr: u32): i32 { return mrSetPage(key, <u64>addr); }
/** The MR record whose key has `key`'s index, whatever its key byte (fast-registration keys change). */
export function mr_ptr_index(key: u32): usize { return mrByIndex(key); }

/** ibv_alloc_mw: the window's rkey or -errno; `type` 1 or 2. */
export function mw_alloc(pd: u32, type: u32): i32 { return mwAlloc(pd, type); }
/** ibv_dealloc_mw by any rkey the window had (its index). */
export function mw_dealloc(key: u32): i32 { return mwDealloc(key); }
/** The window record (MW_* offsets) by any rkey it had, 0 when gone. */
export function mw_ptr(key: u32): usize { return mwByIndex(key); }

/** ibv_attach_mcast / ibv_detach_mcast: the 16-byte GID is at dev_args(). */
export function mcast_attach(qp: u32): i32 { return mcastAttach(qp, devArgs()); }
export function mcast_detach(qp: u32): i32 { return mcastDetach(qp, devArgs()); }

export function cq_create(cqe: i32): i32 { return cqCreate(cqe); }
export function cq_destroy(h: u32): i32 { return cqDestroy(h); }
export function cq_ptr(h: u32): usize { return cqFind(h); }
export function cq_resize(h: u32, cqe: i32): i32 { return cqResize(h, cqe); }

export function qp_create(pd: u32): i32 {
  const init = devArgs();
  return load<u32>(init + INIT_QP_TYPE) <= QPT_GSI ? gsiCreate(pd, init) : qpCreate(pd, init);
}
export function qp_destroy(h: u32): i32 {
  gsiForget(qpFind(h));
  return qpDestroy(h);
}
export function qp_ptr(h: u32): usize { return qpFind(h); }
/** The host sends QP `h` from UDP port `port` (0: the device's port): its fallback when it cannot bind the QP's own. */
export function qp_set_udp_sport(h: u32, port: u32): i32 {
  const q = qpFind(h);
  if (!q || port > 0xffff) return -EINVAL;
  qpSportSet(q, port);
  return 0;
}
/**
 * The host cannot send from `port`: QP `qpn`, if it sends from that port, sends from the device's
 * from now on (its descriptors already in the TX ring: tx_set_sport). 1 when the QP moved, else 0.
 */
export function qp_sport_fallback(qpn: u32, port: u32): i32 {
  const q = qpByNum(qpn);
  if (!q || qpSport(q) != port || port == 0) return 0;
  qpSportSet(q, 0);
  return 1;
}
/** A bitmap (2 KiB, bit n = port 0xC000 + n) of the UDP source ports live QPs send from; its address. */
export function qp_sports(): usize {
  sportsClear();
  for (let i: u32 = 0; i < qpPool.cap; i++) {
    const q = qpAt(i);
    if (load<u32>(q + SLOT_HANDLE)) sportsMark(qpSport(q));
  }
  return sportBitmap;
}
// qp_modify and doorbell(qp, queues, now) are in transport/exports.ts: they run the transport
// (verbs never imports transport).

export function srq_create(pd: u32): i32 { return srqCreate(pd, devArgs()); }
export function srq_destroy(h: u32): i32 { return srqDestroy(h); }
export function srq_ptr(h: u32): usize { return srqFind(h); }
export function srq_modify(h: u32, mask: u32): i32 { return srqModify(h, mask, devArgs()); }
/**
 * Responder entry point, exported for tests until the transport lands: takes the
 * oldest SRQ WQE into the argument block. 1 taken, 0 empty, -EINVAL stale handle.
 */
export function srq_take(h: u32): i32 {
  const s = srqFind(h);
  if (!s) return -EINVAL;
  return srqTake(s, devArgs()) ? 1 : 0;
}

export function ah_create(pd: u32): i32 { return ahCreate(pd, devArgs()); }
export function ah_destroy(h: u32): i32 { return ahDestroy(h); }
export function ah_ptr(h: u32): usize { return ahFind(h); }
