// RDMA Extended Transport Header: 16 bytes (VA 8, R_Key 4, DMA length 4).
import { ld32, ld64, st32, st64 } from "./be";

export const RETH_SIZE: u32 = 16;
export const RETH_VA: u32 = 0;
export const RETH_RKEY: u32 = 8;
export const RETH_LEN: u32 = 12;

@inline export function reth_va(p: usize): u64 { return ld64(p + RETH_VA); }
@inline export function reth_rkey(p: usize): u32 { return ld32(p + RETH_RKEY); }
@inline export function reth_len(p: usize): u32 { return ld32(p + RETH_LEN); }
@inline export function reth_set_va(p: usize, v: u64): void { st64(p + RETH_VA, v); }
@inline export function reth_set_rkey(p: usize, v: u32): void { st32(p + RETH_RKEY, v); }
@inline export function reth_set_len(p: usize, v: u32): void { st32(p + RETH_LEN, v); }

export function reth_build(p: usize, va: u64, rkey: u32, len: u32): void {
  reth_set_va(p, va);
  reth_set_rkey(p, rkey);
  reth_set_len(p, len);
}
