// The one remote-key check every remote access makes (rxe check_rkey): an rkey
// names an MR or a memory window (keyIsMw); either way the answer is the
// linear-memory address of the first byte, or 0 for a key violation. The MR
// and its iova stay for the caller whose bytes may cross the pages of a
// scattered fast-registration MR (rkeyMr, rkeyIova, then mrCopy).
import { keyIsMw, mrFind, mrLookup, mrXlate, MR_ACCESS, MR_PD, MR_STATE, MR_STATE_VALID } from "./mr";
import { mwLookup, mwResolveMr, mwResolvedIova, MW_MR } from "./mw";

let lastMr: usize = 0;
let lastIova: u64 = 0;
/** The MR slot the last successful rkeyResolve reached. */
export function rkeyMr(): usize { return lastMr; }
/** The iova, in that MR, of the first byte it resolved (a zero-based window moves it). */
export function rkeyIova(): u64 { return lastIova; }

/**
 * Where [va, va + len) through `rkey` lives, for QP `qph` of PD `pdh` needing
 * `access`: the linear address of its first byte; 0 when the key, its PD, its QP
 * (type 2 windows), the access or the range refuse it.
 */
export function rkeyResolve(rkey: u32, qph: u32, pdh: u32, va: u64, len: u64, access: u32): usize {
  let mr: usize;
  let iova = va;
  if (keyIsMw(rkey)) {
    mr = mwResolveMr(rkey, qph, pdh, va, len, access);
    iova = mwResolvedIova();
  } else {
    mr = mrLookup(rkey, pdh, va, len, access);
  }
  if (!mr) return 0;
  lastMr = mr;
  lastIova = iova;
  return mrXlate(mr, iova);
}

/**
 * The MR behind `rkey` for an operation on the whole region (FLUSH with selectivity MR): no
 * range is checked. A window's rkey reaches its MR when the window allows `access` (rxe
 * check_rkey: rxe_lookup_mw, then mw->mr, and the range check skipped for IB_FLUSH_MR).
 * 0 when the key refuses.
 */
export function rkeyWholeMr(rkey: u32, qph: u32, pdh: u32, access: u32): usize {
  let mr: usize;
  if (keyIsMw(rkey)) {
    const mw = mwLookup(rkey, qph, pdh, access);
    if (!mw) return 0;
    mr = mrFind(load<u32>(mw + MW_MR));
    if (!mr || load<u32>(mr + MR_STATE) != MR_STATE_VALID) return 0;
    return mr;
  }
  mr = mrFind(rkey);
  if (!mr || load<u32>(mr + MR_PD) != pdh || load<u32>(mr + MR_STATE) != MR_STATE_VALID) return 0;
  return (load<u32>(mr + MR_ACCESS) & access) == access ? mr : 0;
}
