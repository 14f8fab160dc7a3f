// Atomic ACK Extended Transport Header: 8 bytes, the original remote data.
import { ld64, st64 } from "./be";

export const ATMACK_SIZE: u32 = 8;
export const ATMACK_ORIG: u32 = 0;

@inline export function atmack_orig(p: usize): u64 { return ld64(p + ATMACK_ORIG); }
@inline export function atmack_set_orig(p: usize, v: u64): void { st64(p + ATMACK_ORIG, v); }

export function atmack_build(p: usize, orig: u64): void {
  atmack_set_orig(p, orig);
}
