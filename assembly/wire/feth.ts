// Flush Extended Transport Header: 4 bytes; bits 3:0 placement type, 5:4 selectivity level.
import { ld32, st32 } from "./be";

export const FETH_SIZE: u32 = 4;
export const FETH_WORD: u32 = 0;

export const FETH_PLT_GLOBAL: u32 = 1; // global visibility
export const FETH_PLT_PERSISTENT: u32 = 2; // persistence
export const FETH_SEL_REGION: u32 = 0; // selectivity level 0: the memory region range
export const FETH_SEL_MR: u32 = 1; // selectivity level 1: the whole region

@inline export function feth_word(p: usize): u32 { return ld32(p + FETH_WORD); }
@inline export function feth_set_word(p: usize, v: u32): void { st32(p + FETH_WORD, v); }
@inline export function feth_placement(word: u32): u32 { return word & 15; }
@inline export function feth_selectivity(word: u32): u32 { return (word >> 4) & 3; }
@inline export function feth_pack(placement: u32, selectivity: u32): u32 { return ((selectivity & 3) << 4) | (placement & 15); }

export function feth_build(p: usize, placement: u32, selectivity: u32): void {
  feth_set_word(p, feth_pack(placement, selectivity));
}
