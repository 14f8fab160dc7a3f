// Exports of assembly/wire: the "Wire" section of docs/ABI.md.
import {
  WIRE_BUF_CAP, REPR_SIZE, INFO_SIZE, parse_packet, parse_udp_payload, emit_packet, emit_ip_udp,
} from "./packet";
import { inet_sum, IP4_SIZE, UDP_SIZE } from "./ip";
import { R_IP_VERSION } from "../abi/wire";
import { opcode_valid, opcode_mask, opcode_length, opcode_offset, opcode_name, HDR_COUNT } from "./opcode";
import { psn_next, psn_distance, psn_order } from "./psn";

export function wire_abi_version(): u32 { return 1; }

const BUF = memory.data(<i32>WIRE_BUF_CAP, 16);
const PAYLOAD = memory.data(<i32>WIRE_BUF_CAP, 16);
const REPR = memory.data(<i32>REPR_SIZE, 16);
const INFO = memory.data(<i32>INFO_SIZE, 16);

export function wire_buf(): usize { return BUF; }
export function wire_buf_cap(): u32 { return WIRE_BUF_CAP; }
export function wire_repr(): usize { return REPR; }
export function wire_info(): usize { return INFO; }
/** Extension: a second 16384-byte buffer for a payload to emit (so emit never overlaps it). */
export function wire_payload_buf(): usize { return PAYLOAD; }

export function op_valid(op: u32): u32 { return opcode_valid(op) ? 1 : 0; }
export function op_mask(op: u32): u32 { return op < 256 ? opcode_mask(op) : 0; }
export function op_length(op: u32): u32 { return opcode_valid(op) ? opcode_length(op) : 0; }
export function op_offset(op: u32, hdr: u32): i32 {
  return opcode_valid(op) && hdr < HDR_COUNT ? opcode_offset(op, hdr) : -1;
}
export function op_name(op: u32): usize { return opcode_name(op < 256 ? op : 0xff); }

export function pkt_parse(ptr: usize, len: u32): u32 { return parse_packet(ptr, len, REPR, INFO); }
/** Extension: parse a bare UDP payload (BTH .. ICRC); the IP/UDP facts are read from the repr record. */
export function pkt_parse_udp(ptr: usize, len: u32): u32 { return parse_udp_payload(ptr, len, REPR, INFO); }
export function pkt_emit(out: usize, cap: u32): i32 { return emit_packet(REPR, out, cap); }
/**
 * Extension: the IP and UDP headers of a datagram of ulen bytes, from the repr's IP/UDP facts, into
 * out (48 bytes suffice); the UDP checksum computed when payload_sum >= 0 (wire_sum of the payload).
 * Returns the IP header length (20 or 40); 0 when ip_version is neither 4 nor 6 or ulen is out of range.
 */
export function pkt_ip_udp(out: usize, ulen: u32, payload_sum: i32): u32 {
  const v = load<u32>(REPR + R_IP_VERSION);
  if ((v != 4 && v != 6) || ulen < UDP_SIZE || ulen > (v == 4 ? 0xffff - IP4_SIZE : 0xffff)) return 0;
  return emit_ip_udp(REPR, out, ulen, payload_sum);
}
/** Extension: the Internet checksum's one's-complement sum of len bytes at ptr, continuing from acc (even-length pieces). */
export function wire_sum(ptr: usize, len: u32, acc: u32): u32 { return inet_sum(ptr, len, acc & 0xffff); }

const ERR_NAME_SIZE: u32 = 24;
const ERR_NAMES = memory.data(24 * 17, 8);
function def_err(i: u32, name: string): void {
  const p = ERR_NAMES + i * ERR_NAME_SIZE;
  for (let k = 0; k < name.length; k++) store<u8>(p + <usize>k, <u8>name.charCodeAt(k));
  store<u8>(p + <usize>name.length, 0);
}
function build_error_names(): void {
  def_err(0, "OK");
  def_err(1, "TRUNCATED");
  def_err(2, "BAD_IP_VERSION");
  def_err(3, "BAD_IP_HEADER");
  def_err(4, "NOT_UDP");
  def_err(5, "NOT_ROCE_PORT");
  def_err(6, "BAD_UDP_LENGTH");
  def_err(7, "TRUNCATED_BTH");
  def_err(8, "BAD_TVER");
  def_err(9, "UNKNOWN_OPCODE");
  def_err(10, "TRUNCATED_HEADERS");
  def_err(11, "BAD_PAYLOAD");
  def_err(12, "IP_FRAGMENT");
  def_err(13, "BUFFER_TOO_SMALL"); // emit -1
  def_err(14, "UNKNOWN_OPCODE"); // emit -2
  def_err(15, "BAD_PAYLOAD"); // emit -3
  def_err(16, "BAD_IP_VERSION"); // emit -4
}
build_error_names();

/** Name of a parse error (1..12) or of an emit error (-1..-4 passed as i32); "" when unknown. */
export function pkt_error_name(code: u32): usize {
  const c = <i32>code;
  let i: i32 = c >= 0 && c <= 12 ? c : c < 0 && c >= -4 ? 12 - c : -1;
  if (i < 0) return ERR_NAMES + 17 * ERR_NAME_SIZE - 1; // a NUL byte
  return ERR_NAMES + <u32>i * ERR_NAME_SIZE;
}

export function psn_add(a: u32, b: u32): u32 { return psn_next(a, b); }
export function psn_cmp(a: u32, b: u32): i32 { return psn_order(a, b); }
export function psn_diff(a: u32, b: u32): i32 { return psn_distance(a, b); }
