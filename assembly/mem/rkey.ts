// The one remote-key check every remote access makes (rxe check_rkey): an rkey
// names an MR or a memory window (keyIsMw); either way the answer is the
// linear-memory address of the bytes, or 0 for a key violation.
import { keyIsMw, mrCheck, MR_OK } from "./mr";
import { mwResolve } from "./mw";

/**
 * Where [va, va + len) through `rkey` lives, for QP `qph` of PD `pdh` needing
 * `access`; 0 when the key, its PD, its QP (type 2 windows), the access or the
 * range refuse it.
 */
export function rkeyResolve(rkey: u32, qph: u32, pdh: u32, va: u64, len: u64, access: u32): usize {
  if (keyIsMw(rkey)) return mwResolve(rkey, qph, pdh, va, len, access);
  return mrCheck(rkey, pdh, va, len, access) == MR_OK ? <usize>va : 0;
}
