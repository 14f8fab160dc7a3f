// Immediate Data Extended Transport Header: 4 opaque bytes, kept in wire order.
import { ld32, st32 } from "./be";

export const IMMDT_SIZE: u32 = 4;
export const IMMDT_DATA: u32 = 0;

@inline export function immdt_data(p: usize): u32 { return ld32(p + IMMDT_DATA); }
@inline export function immdt_set_data(p: usize, v: u32): void { st32(p + IMMDT_DATA, v); }

export function immdt_build(p: usize, data: u32): void {
  immdt_set_data(p, data);
}
