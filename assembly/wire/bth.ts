// Base Transport Header (IBA 9.2): 12 bytes, present in every RoCEv2 packet.
//   0 opcode | 1 SE:1 M:1 PadCnt:2 TVer:4 | 2-3 P_Key
//   4 FECN:1 BECN:1 resv6:6 | 5-7 DestQP | 8 AckReq:1 resv7:7 | 9-11 PSN
import { ld8, ld16, ld24, st8, st16, st24 } from "./be";

export const BTH_SIZE: u32 = 12;
export const BTH_OPCODE: u32 = 0;
export const BTH_FLAGS: u32 = 1;
export const BTH_PKEY: u32 = 2;
export const BTH_CN: u32 = 4; // FECN, BECN, resv6; masked (all ones) in the ICRC
export const BTH_QPN: u32 = 5;
export const BTH_ACK: u32 = 8;
export const BTH_PSN: u32 = 9;

@inline export function bth_opcode(p: usize): u32 { return ld8(p + BTH_OPCODE); }
@inline export function bth_se(p: usize): u32 { return ld8(p + BTH_FLAGS) >> 7; }
@inline export function bth_migreq(p: usize): u32 { return (ld8(p + BTH_FLAGS) >> 6) & 1; }
@inline export function bth_padcnt(p: usize): u32 { return (ld8(p + BTH_FLAGS) >> 4) & 3; }
@inline export function bth_tver(p: usize): u32 { return ld8(p + BTH_FLAGS) & 15; }
@inline export function bth_pkey(p: usize): u32 { return ld16(p + BTH_PKEY); }
@inline export function bth_fecn(p: usize): u32 { return ld8(p + BTH_CN) >> 7; }
@inline export function bth_becn(p: usize): u32 { return (ld8(p + BTH_CN) >> 6) & 1; }
@inline export function bth_resv6(p: usize): u32 { return ld8(p + BTH_CN) & 0x3f; }
@inline export function bth_qpn(p: usize): u32 { return ld24(p + BTH_QPN); }
@inline export function bth_ackreq(p: usize): u32 { return ld8(p + BTH_ACK) >> 7; }
@inline export function bth_resv7(p: usize): u32 { return ld8(p + BTH_ACK) & 0x7f; }
@inline export function bth_psn(p: usize): u32 { return ld24(p + BTH_PSN); }

@inline export function bth_set_opcode(p: usize, v: u32): void { st8(p + BTH_OPCODE, v); }
@inline export function bth_set_flags(p: usize, se: u32, migreq: u32, padcnt: u32, tver: u32): void {
  st8(p + BTH_FLAGS, ((se & 1) << 7) | ((migreq & 1) << 6) | ((padcnt & 3) << 4) | (tver & 15));
}
@inline export function bth_set_padcnt(p: usize, v: u32): void {
  st8(p + BTH_FLAGS, (ld8(p + BTH_FLAGS) & 0xcf) | ((v & 3) << 4));
}
@inline export function bth_set_pkey(p: usize, v: u32): void { st16(p + BTH_PKEY, v); }
@inline export function bth_set_cn(p: usize, fecn: u32, becn: u32, resv6: u32): void {
  st8(p + BTH_CN, ((fecn & 1) << 7) | ((becn & 1) << 6) | (resv6 & 0x3f));
}
@inline export function bth_set_qpn(p: usize, v: u32): void { st24(p + BTH_QPN, v); }
@inline export function bth_set_ack(p: usize, ackreq: u32, resv7: u32): void {
  st8(p + BTH_ACK, ((ackreq & 1) << 7) | (resv7 & 0x7f));
}
@inline export function bth_set_psn(p: usize, v: u32): void { st24(p + BTH_PSN, v); }

/** Writes a whole BTH; reserved fields (resv6, resv7) are zero and TVer is 0. */
export function bth_build(p: usize, opcode: u32, se: u32, migreq: u32, padcnt: u32, pkey: u32,
                          fecn: u32, becn: u32, qpn: u32, ackreq: u32, psn: u32): void {
  bth_set_opcode(p, opcode);
  bth_set_flags(p, se, migreq, padcnt, 0);
  bth_set_pkey(p, pkey);
  bth_set_cn(p, fecn, becn, 0);
  bth_set_qpn(p, qpn);
  bth_set_ack(p, ackreq, 0);
  bth_set_psn(p, psn);
}
