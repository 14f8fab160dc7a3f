// Datagram Extended Transport Header: 8 bytes (Q_Key 4, reserved 1, source QP 3).
import { ld24, ld32, st8, st24, st32 } from "./be";

export const DETH_SIZE: u32 = 8;
export const DETH_QKEY: u32 = 0;
export const DETH_RESV: u32 = 4;
export const DETH_SRCQP: u32 = 5;

@inline export function deth_qkey(p: usize): u32 { return ld32(p + DETH_QKEY); }
@inline export function deth_srcqp(p: usize): u32 { return ld24(p + DETH_SRCQP); }
@inline export function deth_set_qkey(p: usize, v: u32): void { st32(p + DETH_QKEY, v); }
@inline export function deth_set_srcqp(p: usize, v: u32): void { st8(p + DETH_RESV, 0); st24(p + DETH_SRCQP, v); }

export function deth_build(p: usize, qkey: u32, srcqp: u32): void {
  deth_set_qkey(p, qkey);
  deth_set_srcqp(p, srcqp);
}
