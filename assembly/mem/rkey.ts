// The one remote-key check every remote access makes (rxe check_rkey): an rkey
// names an MR or a memory window (keyIsMw); either way the answer is the
// linear-memory address of the bytes, or 0 for a key violation.
import { keyIsMw, mrCheck, mrFind, MR_ACCESS, MR_OK, MR_PD, MR_STATE, MR_STATE_VALID } from "./mr";
import { mwLookup, mwResolve, MW_MR } from "./mw";

/**
 * Where [va, va + len) through `rkey` lives, for QP `qph` of PD `pdh` needing
 * `access`; 0 when the key, its PD, its QP (type 2 windows), the access or the
 * range refuse it.
 */
export function rkeyResolve(rkey: u32, qph: u32, pdh: u32, va: u64, len: u64, access: u32): usize {
  if (keyIsMw(rkey)) return mwResolve(rkey, qph, pdh, va, len, access);
  return mrCheck(rkey, pdh, va, len, access) == MR_OK ? <usize>va : 0;
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
