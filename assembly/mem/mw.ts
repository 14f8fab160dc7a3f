// Memory windows (rxe_mw.c): a window gives remote access to part of an MR
// under a key of its own. Type 1 windows are bound by ibv_bind_mw, type 2 by a
// BIND_MW work request; both binds go through the send queue, as rxe's provider
// turns ibv_bind_mw into a BIND_MW WQE. A type 2 window is tied to the QP that
// bound it and is invalidated by LOCAL_INV or a peer's SEND_WITH_INV; a type 1
// window is unbound by binding it with length 0 and cannot be invalidated.
// rkey == ((MW_INDEX_MIN + index) << 8) | key byte; a bind sets the key byte the
// WR carries, so old rkeys stop working.
import { ACCESS_LOCAL_WRITE, ACCESS_MW_BIND, ACCESS_REMOTE_ATOMIC, ACCESS_REMOTE_WRITE, ACCESS_SUPPORTED_MR, ACCESS_ZERO_BASED } from "./access";
import { EINVAL, EOPNOTSUPP } from "./errno";
import { mrFind, mrInRange, mrXlate, MR_ACCESS, MR_NUM_MW, MR_PD, MR_STATE, MR_STATE_VALID, MW_INDEX_MIN } from "./mr";
import { pdFind } from "./pd";
import { Pool, poolGive, poolInit, poolSlot, poolTake, useDec, useInc, SLOT_GEN, SLOT_HANDLE } from "./pool";

import {
  MW_PD, MW_TYPE, MW_STATE, MW_ACCESS, MW_MR, MW_QP, MW_ADDR, MW_LEN, MW_KEY, MW_SLOT, MW_STATE_INVALID, MW_STATE_FREE,
  MW_STATE_VALID,
} from "../abi/records";
import { MW_TYPE_1, MW_TYPE_2 } from "../abi/enums";

// ABI constants: generated from abi/schema.json into assembly/abi/records.ts; re-exported for this file's importers.
export {
  MW_PD, MW_TYPE, MW_STATE, MW_ACCESS, MW_MR, MW_QP, MW_ADDR, MW_LEN, MW_KEY, MW_SLOT, MW_STATE_INVALID, MW_STATE_FREE,
  MW_STATE_VALID,
} from "../abi/records";

export { MW_TYPE_1, MW_TYPE_2 } from "../abi/enums";

/** Access bits a window may grant (rxe RXE_ACCESS_SUPPORTED_MW). */
export const ACCESS_SUPPORTED_MW: u32 = ACCESS_SUPPORTED_MR | ACCESS_ZERO_BASED;

export const mwPool = changetype<Pool>(memory.data(offsetof<Pool>()));

export function mwPoolInit(base: usize, cap: u32): void { poolInit(mwPool, base, MW_SLOT, cap); }

/** The window slot with index `key >> 8` (any key byte), or 0. */
export function mwByIndex(key: u32): usize {
  const idx = (key >> 8) - MW_INDEX_MIN;
  if ((key >> 8) < MW_INDEX_MIN || idx >= mwPool.cap) return 0;
  const slot = poolSlot(mwPool, idx);
  return load<u32>(slot + SLOT_HANDLE) ? slot : 0;
}

/** The window whose current rkey is exactly `key`, or 0. */
export function mwFind(key: u32): usize {
  const slot = mwByIndex(key);
  return slot && load<u32>(slot + MW_KEY) == key ? slot : 0;
}

/** ibv_alloc_mw: the window's first rkey, or -errno. Type 1 starts VALID (unbound), type 2 FREE. */
export function mwAlloc(pdh: u32, type: u32): i32 {
  const pd = pdFind(pdh);
  if (!pd) return -EINVAL;
  if (type != MW_TYPE_1 && type != MW_TYPE_2) return -EINVAL;
  const idx = poolTake(mwPool);
  if (idx < 0) return -EINVAL; // rxe_pool: more than max_mw
  const slot = poolSlot(mwPool, <u32>idx);
  const kb = (load<u32>(slot + SLOT_GEN) + 1) & 0xff;
  store<u32>(slot + SLOT_GEN, kb);
  const key = ((MW_INDEX_MIN + <u32>idx) << 8) | kb;
  store<u32>(slot + SLOT_HANDLE, key);
  store<u32>(slot + MW_KEY, key);
  store<u32>(slot + MW_PD, pdh);
  store<u32>(slot + MW_TYPE, type);
  store<u32>(slot + MW_STATE, type == MW_TYPE_1 ? MW_STATE_VALID : MW_STATE_FREE);
  useInc(pd);
  return <i32>key;
}

/** Drops the window's MR binding (and its QP tie). */
function unbind(slot: usize): void {
  const mr = mrFind(load<u32>(slot + MW_MR));
  if (mr) store<u32>(mr + MR_NUM_MW, load<u32>(mr + MR_NUM_MW) - 1);
  store<u32>(slot + MW_MR, 0);
  store<u32>(slot + MW_QP, 0);
  store<u32>(slot + MW_ACCESS, 0);
  store<u64>(slot + MW_ADDR, 0);
  store<u64>(slot + MW_LEN, 0);
}

/** ibv_dealloc_mw (any state; its MR binding is released). 0 or -EINVAL. */
export function mwDealloc(key: u32): i32 {
  const slot = mwByIndex(key);
  if (!slot) return -EINVAL;
  unbind(slot);
  store<u32>(slot + MW_STATE, MW_STATE_INVALID);
  const pd = pdFind(load<u32>(slot + MW_PD));
  if (pd) useDec(pd);
  poolGive(mwPool, (key >> 8) - MW_INDEX_MIN);
  return 0;
}

/**
 * A BIND_MW WQE (rxe_bind_mw + rxe_check_bind_mw) from QP `qph` of PD `qpPd`:
 * window `mwKey` (its current rkey) takes key byte `newKey`, MR `mrKey`'s bytes
 * [addr, addr + len) and `access`. Length 0 unbinds a type 1 window. 0, or
 * -errno (the WQE completes with MW_BIND_ERR).
 */
export function mwBind(qph: u32, qpPd: u32, mwKey: u32, newKey: u32, mrKey: u32, addr: u64, len: u64, access: u32): i32 {
  const mw = mwFind(mwKey);
  if (!mw) return -EINVAL;
  let mr: usize = 0;
  if (len) {
    mr = mrFind(mrKey);
    if (!mr) return -EINVAL;
  }
  if (access & ~ACCESS_SUPPORTED_MW) return -EOPNOTSUPP;
  const type = load<u32>(mw + MW_TYPE);
  if (load<u32>(mw + MW_PD) != qpPd) return -EINVAL; // C10-72: the QP's PD
  if (type == MW_TYPE_1) {
    if (load<u32>(mw + MW_STATE) != MW_STATE_VALID) return -EINVAL;
    if (access & ACCESS_ZERO_BASED) return -EINVAL; // o10-36.2.2
  } else {
    if (load<u32>(mw + MW_STATE) != MW_STATE_FREE) return -EINVAL; // o10-37.2.30: a bound type 2 window is invalidated first
    if (!mr) return -EINVAL; // o10-37.2.40: no zero-length type 2 binding
  }
  if (mr) {
    if (load<u32>(mr + MR_PD) != load<u32>(mw + MW_PD)) return -EINVAL; // the MR is of the window's PD
    if (load<u32>(mr + MR_STATE) != MR_STATE_VALID) return -EINVAL;
    const mrAccess = load<u32>(mr + MR_ACCESS);
    if (mrAccess & ACCESS_ZERO_BASED) return -EINVAL;
    if (!(mrAccess & ACCESS_MW_BIND)) return -EINVAL; // C10-73
    if ((access & (ACCESS_REMOTE_WRITE | ACCESS_REMOTE_ATOMIC)) && !(mrAccess & ACCESS_LOCAL_WRITE)) return -EINVAL; // C10-74
    if (!mrInRange(mr, addr, len)) return -EINVAL; // C10-75 (a zero-based window too: its bytes are these)
  }
  unbind(mw);
  const key = (mwKey & ~0xff) | (newKey & 0xff);
  store<u32>(mw + SLOT_HANDLE, key);
  store<u32>(mw + SLOT_GEN, key & 0xff);
  store<u32>(mw + MW_KEY, key);
  store<u32>(mw + MW_ACCESS, access);
  store<u32>(mw + MW_STATE, MW_STATE_VALID);
  store<u64>(mw + MW_ADDR, addr);
  store<u64>(mw + MW_LEN, len);
  if (mr) {
    store<u32>(mw + MW_MR, mrKey);
    store<u32>(mr + MR_NUM_MW, load<u32>(mr + MR_NUM_MW) + 1);
  }
  if (type == MW_TYPE_2) store<u32>(mw + MW_QP, qph);
  return 0;
}

/**
 * LOCAL_INV (qph = 0) or a peer's SEND_WITH_INV arriving on QP `qph` of PD
 * `qpPd` (rxe_invalidate_mw): only a bound type 2 window of the PD — and for a
 * remote invalidation, bound through that QP — is invalidated. 0 or -EINVAL.
 */
export function mwInvalidate(qph: u32, qpPd: u32, key: u32): i32 {
  const mw = mwFind(key);
  if (!mw) return -EINVAL;
  if (load<u32>(mw + MW_TYPE) == MW_TYPE_1) return -EINVAL; // o10-37.2.26
  if (load<u32>(mw + MW_STATE) != MW_STATE_VALID) return -EINVAL;
  if (load<u32>(mw + MW_PD) != qpPd) return -EINVAL;
  if (qph && load<u32>(mw + MW_QP) != qph) return -EINVAL;
  unbind(mw);
  store<u32>(mw + MW_STATE, MW_STATE_FREE);
  return 0;
}

/**
 * The window `key` names when QP `qph` of PD `qpPd` may use it for `access` (rxe_lookup_mw):
 * current rkey, VALID, the QP's PD, a type 2 window's own QP, nonzero length, every access bit
 * granted. 0 otherwise.
 */
export function mwLookup(key: u32, qph: u32, qpPd: u32, access: u32): usize {
  const mw = mwFind(key);
  if (!mw || load<u32>(mw + MW_STATE) != MW_STATE_VALID || load<u32>(mw + MW_PD) != qpPd) return 0;
  if (load<u32>(mw + MW_TYPE) == MW_TYPE_2 && load<u32>(mw + MW_QP) != qph) return 0;
  if (load<u64>(mw + MW_LEN) == 0 || (load<u32>(mw + MW_ACCESS) & access) != access) return 0;
  return mw;
}

/** The iova (in its MR) the last successful mwResolveMr reached. */
let resolvedIova: u64 = 0;
export function mwResolvedIova(): u64 { return resolvedIova; }

/**
 * Remote access through a window (rxe_lookup_mw + the range check): the
 * linear-memory address of [va, va + len) for QP `qph` of PD `qpPd` needing
 * `access`, or 0. A zero-based window's va counts from the window's start.
 */
export function mwResolve(key: u32, qph: u32, qpPd: u32, va: u64, len: u64, access: u32): usize {
  const mr = mwResolveMr(key, qph, qpPd, va, len, access);
  return mr ? mrXlate(mr, resolvedIova) : 0;
}

/**
 * mwResolve's check, answered as the window's MR slot (0 when refused); the MR's iova of va is
 * then mwResolvedIova() (the bytes may cross the pages of a scattered MR: mrCopy).
 */
export function mwResolveMr(key: u32, qph: u32, qpPd: u32, va: u64, len: u64, access: u32): usize {
  const mw = mwLookup(key, qph, qpPd, access);
  if (!mw) return 0;
  const size = load<u64>(mw + MW_LEN);
  const granted = load<u32>(mw + MW_ACCESS);
  const start = load<u64>(mw + MW_ADDR);
  let off: u64;
  if (granted & ACCESS_ZERO_BASED) off = va;
  else {
    if (va < start) return 0;
    off = va - start;
  }
  if (len > size || off > size - len) return 0;
  const mr = mrFind(load<u32>(mw + MW_MR));
  if (!mr || load<u32>(mr + MR_STATE) != MR_STATE_VALID || !mrInRange(mr, start + off, len)) return 0;
  resolvedIova = start + off;
  return mr;
}
