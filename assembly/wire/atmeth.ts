// Atomic Extended Transport Header: 28 bytes, packed (VA 8, R_Key 4, swap/add 8, compare 8).
import { ld32, ld64, st32, st64 } from "./be";

export const ATMETH_SIZE: u32 = 28;
export const ATMETH_VA: u32 = 0;
export const ATMETH_RKEY: u32 = 8;
export const ATMETH_SWAP_ADD: u32 = 12;
export const ATMETH_COMPARE: u32 = 20;

@inline export function atmeth_va(p: usize): u64 { return ld64(p + ATMETH_VA); }
@inline export function atmeth_rkey(p: usize): u32 { return ld32(p + ATMETH_RKEY); }
@inline export function atmeth_swap_add(p: usize): u64 { return ld64(p + ATMETH_SWAP_ADD); }
@inline export function atmeth_compare(p: usize): u64 { return ld64(p + ATMETH_COMPARE); }
@inline export function atmeth_set_va(p: usize, v: u64): void { st64(p + ATMETH_VA, v); }
@inline export function atmeth_set_rkey(p: usize, v: u32): void { st32(p + ATMETH_RKEY, v); }
@inline export function atmeth_set_swap_add(p: usize, v: u64): void { st64(p + ATMETH_SWAP_ADD, v); }
@inline export function atmeth_set_compare(p: usize, v: u64): void { st64(p + ATMETH_COMPARE, v); }

export function atmeth_build(p: usize, va: u64, rkey: u32, swap_add: u64, compare: u64): void {
  atmeth_set_va(p, va);
  atmeth_set_rkey(p, rkey);
  atmeth_set_swap_add(p, swap_add);
  atmeth_set_compare(p, compare);
}
