// The packet-info record (rxe_pkt_info): what the receive path learned while
// validating a datagram, handed to the responder or the completer. Validated
// once; afterwards the engines use unchecked header accessors.
import { opcode_offset } from "../wire/opcode";

export const PKT_QP: usize = 0; // u32 QP record address
export const PKT_OPCODE: usize = 4; // u32
export const PKT_MASK: usize = 8; // u32 opcode_mask(opcode)
export const PKT_PSN: usize = 12; // u32
export const PKT_BTH: usize = 16; // u32 address of the BTH (in the RX buffer)
export const PKT_PAYLOAD: usize = 20; // u32 address of the payload
export const PKT_PAYLOAD_LEN: usize = 24; // u32 payload bytes without pad
export const PKT_ACKREQ: usize = 28; // u32
export const PKT_SE: usize = 32; // u32
export const PKT_SRC: usize = 36; // u32 address of the 16-byte source GID
export const PKT_SRC_PORT: usize = 40; // u32 UDP source port
export const PKT_IPV6: usize = 44; // u32 1 for IPv6
export const PKT_META: usize = 48; // u32 address of the rx meta record (IP facts, for the UD GRH)
export const PKT_LEN: usize = 52; // u32 whole datagram length (BTH .. ICRC)
export const PKT_SIZE: u32 = 64;

export const pktInfo: usize = memory.data(PKT_SIZE, 16);

@inline export function pktU32(pkt: usize, off: usize): u32 { return load<u32>(pkt + off); }

/** Address of extension header `hdr` (HDR_* index) in this packet; the opcode must have it. */
@inline export function pktHdr(pkt: usize, hdr: u32): usize {
  return <usize>load<u32>(pkt + PKT_BTH) + <usize>opcode_offset(load<u32>(pkt + PKT_OPCODE), hdr);
}
