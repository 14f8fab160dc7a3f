// ACK Extended Transport Header: 4 bytes (syndrome 8 bits, MSN 24 bits).
// Syndrome (IBA 9.7.5.2.9, rxe_hdr.h): bits 6:5 the type — 0 ACK (credits in
// 4:0), 1 RNR NAK (timer in 4:0), 3 NAK (code in 4:0).
import { ld8, ld24, st8, st24 } from "./be";

export const AETH_SIZE: u32 = 4;
export const AETH_SYNDROME: u32 = 0;
export const AETH_MSN: u32 = 1;

// syndrome types (bits 6:5)
export const AETH_TYPE_ACK: u32 = 0;
export const AETH_TYPE_RNR_NAK: u32 = 1;
export const AETH_TYPE_NAK: u32 = 3;

// NAK codes (bits 4:0 of a NAK)
export const NAK_PSN_SEQ: u32 = 0;
export const NAK_INVALID_REQ: u32 = 1;
export const NAK_REM_ACCESS: u32 = 2;
export const NAK_REM_OP: u32 = 3;

// whole syndromes
export const AETH_ACK_UNLIMITED: u32 = 0x1f; // ACK, no end-to-end credits (rxe's only ACK)
export const AETH_RNR_NAK: u32 = AETH_TYPE_RNR_NAK << 5; // | the min_rnr_timer code
export const AETH_NAK: u32 = AETH_TYPE_NAK << 5; // | a NAK code
export const AETH_NAK_PSN_SEQ_ERROR: u32 = AETH_NAK | NAK_PSN_SEQ;
export const AETH_NAK_INVALID_REQ: u32 = AETH_NAK | NAK_INVALID_REQ;
export const AETH_NAK_REM_ACC_ERR: u32 = AETH_NAK | NAK_REM_ACCESS;
export const AETH_NAK_REM_OP_ERR: u32 = AETH_NAK | NAK_REM_OP;

@inline export function aeth_syndrome(p: usize): u32 { return ld8(p + AETH_SYNDROME); }
@inline export function aeth_msn(p: usize): u32 { return ld24(p + AETH_MSN); }
@inline export function aeth_set_syndrome(p: usize, v: u32): void { st8(p + AETH_SYNDROME, v); }
@inline export function aeth_set_msn(p: usize, v: u32): void { st24(p + AETH_MSN, v); }
/** The syndrome's type: AETH_TYPE_ACK, AETH_TYPE_RNR_NAK or AETH_TYPE_NAK (2 is reserved). */
@inline export function aeth_type(syndrome: u32): u32 { return (syndrome >> 5) & 3; }
/** The syndrome's low 5 bits: credits, RNR timer code or NAK code, by type. */
@inline export function aeth_code(syndrome: u32): u32 { return syndrome & 0x1f; }
/** The RNR NAK syndrome for a min_rnr_timer code. */
@inline export function aeth_rnr_syndrome(timer: u32): u32 { return AETH_RNR_NAK | aeth_code(timer); }

export function aeth_build(p: usize, syndrome: u32, msn: u32): void {
  aeth_set_syndrome(p, syndrome);
  aeth_set_msn(p, msn);
}
