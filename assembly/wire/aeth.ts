// ACK Extended Transport Header: 4 bytes (syndrome 8 bits, MSN 24 bits).
// Syndrome: bits 6:5 = 0 ACK (credits in 4:0), 1 RNR NAK (timer in 4:0), 3 NAK (code in 4:0).
import { ld8, ld24, st8, st24 } from "./be";

export const AETH_SIZE: u32 = 4;
export const AETH_SYNDROME: u32 = 0;
export const AETH_MSN: u32 = 1;

export const AETH_TYPE_ACK: u32 = 0;
export const AETH_TYPE_RNR_NAK: u32 = 1;
export const AETH_TYPE_NAK: u32 = 3;

@inline export function aeth_syndrome(p: usize): u32 { return ld8(p + AETH_SYNDROME); }
@inline export function aeth_msn(p: usize): u32 { return ld24(p + AETH_MSN); }
@inline export function aeth_set_syndrome(p: usize, v: u32): void { st8(p + AETH_SYNDROME, v); }
@inline export function aeth_set_msn(p: usize, v: u32): void { st24(p + AETH_MSN, v); }
@inline export function aeth_type(syndrome: u32): u32 { return (syndrome >> 5) & 3; }
@inline export function aeth_value(syndrome: u32): u32 { return syndrome & 0x1f; }

export function aeth_build(p: usize, syndrome: u32, msn: u32): void {
  aeth_set_syndrome(p, syndrome);
  aeth_set_msn(p, msn);
}
