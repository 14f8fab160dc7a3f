// Invalidate Extended Transport Header: 4 bytes, the R_Key to invalidate.
import { ld32, st32 } from "./be";

export const IETH_SIZE: u32 = 4;
export const IETH_RKEY: u32 = 0;

@inline export function ieth_rkey(p: usize): u32 { return ld32(p + IETH_RKEY); }
@inline export function ieth_set_rkey(p: usize, v: u32): void { st32(p + IETH_RKEY, v); }

export function ieth_build(p: usize, rkey: u32): void {
  ieth_set_rkey(p, rkey);
}
