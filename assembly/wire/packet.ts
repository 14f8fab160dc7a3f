// One RoCEv2 packet <-> its representation record (docs/ABI.md "Wire").
// parse validates once and fills the repr and info records; after a 0 status every
// offset in them lies inside the packet. emit builds IP + UDP + BTH + extension headers
// + payload + pad + ICRC from a repr record.
import { ld32 } from "./be";
import {
  BTH_SIZE, bth_opcode, bth_se, bth_migreq, bth_padcnt, bth_tver, bth_pkey, bth_fecn, bth_becn,
  bth_resv6, bth_qpn, bth_ackreq, bth_resv7, bth_psn, bth_set_opcode, bth_set_flags, bth_set_pkey,
  bth_set_cn, bth_set_qpn, bth_set_ack, bth_set_psn,
} from "./bth";
import { reth_va, reth_rkey, reth_len, reth_build } from "./reth";
import { aeth_syndrome, aeth_msn, aeth_build } from "./aeth";
import { atmeth_va, atmeth_rkey, atmeth_swap_add, atmeth_compare, atmeth_build } from "./atmeth";
import { atmack_orig, atmack_build } from "./atmack";
import { deth_qkey, deth_srcqp, deth_build } from "./deth";
import { immdt_data, immdt_build } from "./immdt";
import { ieth_rkey, ieth_build } from "./ieth";
import { feth_word, feth_set_word } from "./feth";
import {
  IP4_SIZE, IP6_SIZE, UDP_SIZE, IP_PROTO_UDP, ROCE_UDP_PORT, IP4_FLAG_MF, IP4_CSUM, IP4_SRC, IP4_DST, IP6_SRC, IP6_DST,
  ip_version, ip4_ihl, ip4_tos, ip4_len, ip4_id, ip4_flags, ip4_frag_off, ip4_ttl, ip4_proto, ip4_csum,
  ip6_tclass, ip6_flow, ip6_plen, ip6_next, ip6_hops, udp_sport, udp_dport, udp_len, udp_csum,
  ip4_build, ip6_build, udp_build, udp_set_csum, udp_checksum,
} from "./ip";
import {
  HDR_RETH, HDR_AETH, HDR_ATMETH, HDR_ATMACK, HDR_DETH, HDR_IMMDT, HDR_IETH, HDR_FETH, HDR_COUNT,
  M_RETH, M_AETH, M_ATMETH, M_ATMACK, M_DETH, M_IMMDT, M_IETH, M_FETH, M_PAYLOAD, M_ATOMIC_WRITE, M_CNP,
  CNP_RESERVED_SIZE, ATOMIC_WRITE_PAYLOAD, opcode_valid, opcode_mask, opcode_length, opcode_offset,
} from "./opcode";
import { ICRC_SIZE, icrc_calc, icrc_wire } from "../crc/icrc";
import {
  REPR_SIZE, INFO_SIZE, R_IP_VERSION, R_IP_HDR_LEN, R_SRC, R_DST, R_IP_ID, R_IP_FLAGS, R_FRAG_OFF, R_TTL, R_TOS,
  R_FLOW, R_IP_CSUM, R_SPORT, R_DPORT, R_UDP_LEN, R_UDP_CSUM, R_OPCODE, R_SE, R_MIGREQ, R_PADCNT, R_TVER, R_PKEY,
  R_FECN, R_BECN, R_RESV6, R_DESTQP, R_ACKREQ, R_RESV7, R_PSN, R_RETH_VA, R_RETH_RKEY, R_RETH_LEN, R_AETH_SYNDROME,
  R_AETH_MSN, R_ATM_VA, R_ATM_RKEY, R_ATM_SWAP_ADD, R_ATM_COMPARE, R_ATMACK_ORIG, R_DETH_QKEY, R_DETH_SRCQP, R_IMMDT,
  R_IETH_RKEY, R_FETH, R_PAYLOAD_PTR, R_PAYLOAD_LEN, R_ICRC, R_ICRC_EXPECTED, R_IP_TOTAL_LEN, R_IP_NEXT, I_STATUS,
  I_BTH_OFF, I_PAYLOAD_OFF, I_PAYLOAD_LEN, I_ICRC_OFF, I_HDR_OFF, I_PACKET_LEN, ERR_TRUNCATED, ERR_BAD_IP_VERSION,
  ERR_BAD_IP_HEADER, ERR_NOT_UDP, ERR_NOT_ROCE_PORT, ERR_BAD_UDP_LENGTH, ERR_TRUNCATED_BTH, ERR_BAD_TVER,
  ERR_UNKNOWN_OPCODE, ERR_TRUNCATED_HEADERS, ERR_BAD_PAYLOAD, ERR_IP_FRAGMENT,
} from "../abi/wire";

// ABI constants: generated from abi/schema.json into assembly/abi/wire.ts; re-exported for this file's importers.
export {
  WIRE_BUF_CAP, REPR_SIZE, INFO_SIZE, R_IP_VERSION, R_IP_HDR_LEN, R_SRC, R_DST, R_IP_ID, R_IP_FLAGS, R_FRAG_OFF,
  R_TTL, R_TOS, R_FLOW, R_IP_CSUM, R_SPORT, R_DPORT, R_UDP_LEN, R_UDP_CSUM, R_OPCODE, R_SE, R_MIGREQ, R_PADCNT,
  R_TVER, R_PKEY, R_FECN, R_BECN, R_RESV6, R_DESTQP, R_ACKREQ, R_RESV7, R_PSN, R_RETH_VA, R_RETH_RKEY, R_RETH_LEN,
  R_AETH_SYNDROME, R_AETH_MSN, R_ATM_VA, R_ATM_RKEY, R_ATM_SWAP_ADD, R_ATM_COMPARE, R_ATMACK_ORIG, R_DETH_QKEY,
  R_DETH_SRCQP, R_IMMDT, R_IETH_RKEY, R_FETH, R_PAYLOAD_PTR, R_PAYLOAD_LEN, R_ICRC, R_ICRC_EXPECTED, R_IP_TOTAL_LEN,
  R_IP_NEXT, I_STATUS, I_BTH_OFF, I_PAYLOAD_OFF, I_PAYLOAD_LEN, I_ICRC_OFF, I_HDR_OFF, I_PACKET_LEN, ERR_TRUNCATED,
  ERR_BAD_IP_VERSION, ERR_BAD_IP_HEADER, ERR_NOT_UDP, ERR_NOT_ROCE_PORT, ERR_BAD_UDP_LENGTH, ERR_TRUNCATED_BTH,
  ERR_BAD_TVER, ERR_UNKNOWN_OPCODE, ERR_TRUNCATED_HEADERS, ERR_BAD_PAYLOAD, ERR_IP_FRAGMENT,
} from "../abi/wire";

// emit errors
export const EMIT_BUFFER_TOO_SMALL: i32 = -1;
export const EMIT_UNKNOWN_OPCODE: i32 = -2;
export const EMIT_BAD_PAYLOAD: i32 = -3;
export const EMIT_BAD_IP_VERSION: i32 = -4;

@inline function rd(r: usize, off: u32): u32 { return load<u32>(r + off); }
@inline function wr(r: usize, off: u32, v: u32): void { store<u32>(r + off, v); }
@inline function rd64(r: usize, off: u32): u64 { return load<u64>(r + off); }
@inline function wr64(r: usize, off: u32, v: u64): void { store<u64>(r + off, v); }

function info_reset(inf: usize): void {
  memory.fill(inf, 0, INFO_SIZE);
  for (let h: u32 = 0; h < HDR_COUNT; h++) store<i32>(inf + I_HDR_OFF + (h << 2), -1);
}

// ---- parse ---------------------------------------------------------------------------

/** Fills the transport part of r/inf from the n bytes (BTH .. ICRC) at bth; `start` is the packet start. */
function parse_transport(bth: usize, n: u32, start: usize, r: usize, inf: usize): u32 {
  if (n < BTH_SIZE + ICRC_SIZE) return ERR_TRUNCATED_BTH;
  if (bth_tver(bth) != 0) return ERR_BAD_TVER;
  const op = bth_opcode(bth);
  if (!opcode_valid(op)) return ERR_UNKNOWN_OPCODE;
  const hl = opcode_length(op);
  if (n < hl + ICRC_SIZE) return ERR_TRUNCATED_HEADERS;
  const mask = opcode_mask(op);
  const rest = n - hl - ICRC_SIZE;
  const pad = bth_padcnt(bth);
  if (rest < pad) return ERR_BAD_PAYLOAD;
  if (!(mask & M_PAYLOAD) && rest != 0) return ERR_BAD_PAYLOAD;
  const plen = rest - pad;
  if ((mask & M_ATOMIC_WRITE) && plen != ATOMIC_WRITE_PAYLOAD) return ERR_BAD_PAYLOAD;

  wr(r, R_OPCODE, op);
  wr(r, R_SE, bth_se(bth));
  wr(r, R_MIGREQ, bth_migreq(bth));
  wr(r, R_PADCNT, pad);
  wr(r, R_TVER, 0);
  wr(r, R_PKEY, bth_pkey(bth));
  wr(r, R_FECN, bth_fecn(bth));
  wr(r, R_BECN, bth_becn(bth));
  wr(r, R_RESV6, bth_resv6(bth));
  wr(r, R_DESTQP, bth_qpn(bth));
  wr(r, R_ACKREQ, bth_ackreq(bth));
  wr(r, R_RESV7, bth_resv7(bth));
  wr(r, R_PSN, bth_psn(bth));
  if (mask & M_RETH) {
    const h = bth + opcode_offset(op, HDR_RETH);
    wr64(r, R_RETH_VA, reth_va(h));
    wr(r, R_RETH_RKEY, reth_rkey(h));
    wr(r, R_RETH_LEN, reth_len(h));
  }
  if (mask & M_AETH) {
    const h = bth + opcode_offset(op, HDR_AETH);
    wr(r, R_AETH_SYNDROME, aeth_syndrome(h));
    wr(r, R_AETH_MSN, aeth_msn(h));
  }
  if (mask & M_ATMETH) {
    const h = bth + opcode_offset(op, HDR_ATMETH);
    wr64(r, R_ATM_VA, atmeth_va(h));
    wr(r, R_ATM_RKEY, atmeth_rkey(h));
    wr64(r, R_ATM_SWAP_ADD, atmeth_swap_add(h));
    wr64(r, R_ATM_COMPARE, atmeth_compare(h));
  }
  if (mask & M_ATMACK) wr64(r, R_ATMACK_ORIG, atmack_orig(bth + opcode_offset(op, HDR_ATMACK)));
  if (mask & M_DETH) {
    const h = bth + opcode_offset(op, HDR_DETH);
    wr(r, R_DETH_QKEY, deth_qkey(h));
    wr(r, R_DETH_SRCQP, deth_srcqp(h));
  }
  if (mask & M_IMMDT) wr(r, R_IMMDT, immdt_data(bth + opcode_offset(op, HDR_IMMDT)));
  if (mask & M_IETH) wr(r, R_IETH_RKEY, ieth_rkey(bth + opcode_offset(op, HDR_IETH)));
  if (mask & M_FETH) wr(r, R_FETH, feth_word(bth + opcode_offset(op, HDR_FETH)));
  wr(r, R_PAYLOAD_PTR, <u32>(bth + hl));
  wr(r, R_PAYLOAD_LEN, plen);
  wr(r, R_ICRC, ld32(bth + n - ICRC_SIZE));

  const base = <u32>(bth - start);
  wr(inf, I_BTH_OFF, base);
  wr(inf, I_PAYLOAD_OFF, base + hl);
  wr(inf, I_PAYLOAD_LEN, plen);
  wr(inf, I_ICRC_OFF, base + n - ICRC_SIZE);
  for (let h: u32 = 0; h < HDR_COUNT; h++) {
    const o = opcode_offset(op, h);
    if (o >= 0) store<i32>(inf + I_HDR_OFF + (h << 2), <i32>base + o);
  }
  return 0;
}

/** Parses one IPv4/IPv6 RoCEv2 packet of at most len bytes at p into r and inf. */
export function parse_packet(p: usize, len: u32, r: usize, inf: usize): u32 {
  memory.fill(r, 0, REPR_SIZE);
  info_reset(inf);
  const st = parse_ip(p, len, r, inf);
  wr(inf, I_STATUS, st);
  return st;
}

function parse_ip(p: usize, len: u32, r: usize, inf: usize): u32 {
  if (len < 1) return ERR_TRUNCATED;
  const v = ip_version(p);
  let iplen: u32, total: u32;
  if (v == 4) {
    if (len < IP4_SIZE) return ERR_TRUNCATED;
    if (ip4_ihl(p) != 5) return ERR_BAD_IP_HEADER; // RoCEv2 carries no IPv4 options
    total = ip4_len(p);
    if (total < IP4_SIZE) return ERR_BAD_IP_HEADER;
    if (total > len) return ERR_TRUNCATED;
    if ((ip4_flags(p) & IP4_FLAG_MF) != 0 || ip4_frag_off(p) != 0) return ERR_IP_FRAGMENT;
    if (ip4_proto(p) != IP_PROTO_UDP) return ERR_NOT_UDP;
    iplen = IP4_SIZE;
    memory.copy(r + R_SRC, p + IP4_SRC, 4);
    memory.copy(r + R_DST, p + IP4_DST, 4);
    wr(r, R_IP_ID, ip4_id(p));
    wr(r, R_IP_FLAGS, ip4_flags(p));
    wr(r, R_FRAG_OFF, ip4_frag_off(p));
    wr(r, R_TTL, ip4_ttl(p));
    wr(r, R_TOS, ip4_tos(p));
    wr(r, R_IP_CSUM, ip4_csum(p));
    wr(r, R_IP_TOTAL_LEN, total);
    wr(r, R_IP_NEXT, IP_PROTO_UDP);
  } else if (v == 6) {
    if (len < IP6_SIZE) return ERR_TRUNCATED;
    total = IP6_SIZE + ip6_plen(p);
    if (total > len) return ERR_TRUNCATED;
    if (ip6_next(p) != IP_PROTO_UDP) return ERR_NOT_UDP;
    iplen = IP6_SIZE;
    memory.copy(r + R_SRC, p + IP6_SRC, 16);
    memory.copy(r + R_DST, p + IP6_DST, 16);
    wr(r, R_TTL, ip6_hops(p));
    wr(r, R_TOS, ip6_tclass(p));
    wr(r, R_FLOW, ip6_flow(p));
    wr(r, R_IP_TOTAL_LEN, ip6_plen(p));
    wr(r, R_IP_NEXT, IP_PROTO_UDP);
  } else {
    return ERR_BAD_IP_VERSION;
  }
  wr(r, R_IP_VERSION, v);
  wr(r, R_IP_HDR_LEN, iplen);
  wr(inf, I_PACKET_LEN, total);
  const ippay = total - iplen;
  if (ippay < UDP_SIZE) return ERR_BAD_UDP_LENGTH;
  const udp = p + iplen;
  if (udp_dport(udp) != ROCE_UDP_PORT) return ERR_NOT_ROCE_PORT;
  const ulen = udp_len(udp);
  if (ulen != ippay) return ERR_BAD_UDP_LENGTH;
  wr(r, R_SPORT, udp_sport(udp));
  wr(r, R_DPORT, ROCE_UDP_PORT);
  wr(r, R_UDP_LEN, ulen);
  wr(r, R_UDP_CSUM, udp_csum(udp));
  const bth = udp + UDP_SIZE;
  const n = ulen - UDP_SIZE;
  const st = parse_transport(bth, n, p, r, inf);
  if (st != 0) return st;
  wr(r, R_ICRC_EXPECTED, icrc_wire(icrc_calc(p, v == 6, udp, bth, n - ICRC_SIZE)));
  return 0;
}

const HDR_SCRATCH = memory.data(64, 16);

/**
 * Parses a bare UDP payload (BTH .. ICRC) of len bytes at p, received without its IP/UDP
 * headers. The caller has put the IP/UDP facts in r first: ip_version, src, dst, ip_id,
 * ip_flags, ip_frag_off, ttl, tos, flow_label, udp_sport, udp_dport, udp_checksum; the rest of
 * r and inf are filled here (lengths derived from len; info offsets count from p).
 */
export function parse_udp_payload(p: usize, len: u32, r: usize, inf: usize): u32 {
  info_reset(inf);
  memory.fill(r + R_OPCODE, 0, REPR_SIZE - R_OPCODE);
  const v = rd(r, R_IP_VERSION);
  let st: u32 = 0;
  if (v != 4 && v != 6) st = ERR_BAD_IP_VERSION;
  else if (len + UDP_SIZE > 0xffff) st = ERR_BAD_UDP_LENGTH;
  else st = parse_transport(p, len, p, r, inf);
  if (st == 0) {
    const ulen = len + UDP_SIZE;
    const iplen = write_ip_udp(r, HDR_SCRATCH, ulen);
    wr(r, R_IP_HDR_LEN, iplen);
    wr(r, R_UDP_LEN, ulen);
    wr(r, R_IP_NEXT, IP_PROTO_UDP);
    wr(r, R_IP_TOTAL_LEN, v == 4 ? iplen + ulen : ulen);
    wr(r, R_IP_CSUM, v == 4 ? <u32>bswap<u16>(load<u16>(HDR_SCRATCH + IP4_CSUM)) : 0);
    wr(inf, I_PACKET_LEN, len);
    wr(r, R_ICRC_EXPECTED, icrc_wire(icrc_calc(HDR_SCRATCH, v == 6, HDR_SCRATCH + iplen, p, len - ICRC_SIZE)));
  }
  wr(inf, I_STATUS, st);
  return st;
}

// ---- emit ----------------------------------------------------------------------------

/** Writes the IP and UDP headers for a UDP datagram of ulen bytes; returns the IP header length. */
function write_ip_udp(r: usize, out: usize, ulen: u32): u32 {
  if (rd(r, R_IP_VERSION) == 4) {
    ip4_build(out, rd(r, R_TOS), IP4_SIZE + ulen, rd(r, R_IP_ID), rd(r, R_IP_FLAGS), rd(r, R_FRAG_OFF),
              rd(r, R_TTL), r + R_SRC, r + R_DST);
    udp_build(out + IP4_SIZE, rd(r, R_SPORT), rd(r, R_DPORT), ulen, rd(r, R_UDP_CSUM));
    return IP4_SIZE;
  }
  ip6_build(out, rd(r, R_TOS), rd(r, R_FLOW), ulen, rd(r, R_TTL), r + R_SRC, r + R_DST);
  udp_build(out + IP6_SIZE, rd(r, R_SPORT), rd(r, R_DPORT), ulen, rd(r, R_UDP_CSUM));
  return IP6_SIZE;
}

/**
 * Writes the IP and UDP headers the repr's IP/UDP facts describe (ip_version, src, dst, ip_id,
 * ip_flags, ip_frag_off, ttl, tos, flow_label, udp_sport, udp_dport) for a UDP datagram of ulen
 * bytes into out; returns the IP header length. The UDP checksum is computed when payload_sum >= 0
 * (the inet_sum of the ulen - 8 payload bytes), else written as the repr's udp_checksum.
 */
export function emit_ip_udp(r: usize, out: usize, ulen: u32, payload_sum: i32): u32 {
  const iplen = write_ip_udp(r, out, ulen);
  if (payload_sum >= 0) udp_set_csum(out + iplen, udp_checksum(out, iplen == IP6_SIZE, out + iplen, ulen, <u32>payload_sum));
  return iplen;
}

/** Writes BTH + extension headers for r's opcode at bth (op must be valid). */
function write_transport_headers(r: usize, bth: usize, op: u32, pad: u32): void {
  const mask = opcode_mask(op);
  bth_set_opcode(bth, op);
  bth_set_flags(bth, rd(r, R_SE), rd(r, R_MIGREQ), pad, rd(r, R_TVER));
  bth_set_pkey(bth, rd(r, R_PKEY));
  bth_set_cn(bth, rd(r, R_FECN), rd(r, R_BECN), rd(r, R_RESV6));
  bth_set_qpn(bth, rd(r, R_DESTQP));
  bth_set_ack(bth, rd(r, R_ACKREQ), rd(r, R_RESV7));
  bth_set_psn(bth, rd(r, R_PSN));
  if (mask & M_RETH) reth_build(bth + opcode_offset(op, HDR_RETH), rd64(r, R_RETH_VA), rd(r, R_RETH_RKEY), rd(r, R_RETH_LEN));
  if (mask & M_AETH) aeth_build(bth + opcode_offset(op, HDR_AETH), rd(r, R_AETH_SYNDROME), rd(r, R_AETH_MSN));
  if (mask & M_ATMETH) {
    atmeth_build(bth + opcode_offset(op, HDR_ATMETH), rd64(r, R_ATM_VA), rd(r, R_ATM_RKEY),
                 rd64(r, R_ATM_SWAP_ADD), rd64(r, R_ATM_COMPARE));
  }
  if (mask & M_ATMACK) atmack_build(bth + opcode_offset(op, HDR_ATMACK), rd64(r, R_ATMACK_ORIG));
  if (mask & M_DETH) deth_build(bth + opcode_offset(op, HDR_DETH), rd(r, R_DETH_QKEY), rd(r, R_DETH_SRCQP));
  if (mask & M_IMMDT) immdt_build(bth + opcode_offset(op, HDR_IMMDT), rd(r, R_IMMDT));
  if (mask & M_IETH) ieth_build(bth + opcode_offset(op, HDR_IETH), rd(r, R_IETH_RKEY));
  if (mask & M_FETH) feth_set_word(bth + opcode_offset(op, HDR_FETH), rd(r, R_FETH));
  if (mask & M_CNP) memory.fill(bth + BTH_SIZE, 0, CNP_RESERVED_SIZE);
}

/** Builds the packet described by r into out (cap bytes); returns its length or an EMIT_ error. */
export function emit_packet(r: usize, out: usize, cap: u32): i32 {
  const v = rd(r, R_IP_VERSION);
  if (v != 4 && v != 6) return EMIT_BAD_IP_VERSION;
  const op = rd(r, R_OPCODE);
  if (!opcode_valid(op)) return EMIT_UNKNOWN_OPCODE;
  const mask = opcode_mask(op);
  const plen = rd(r, R_PAYLOAD_LEN);
  if (!(mask & M_PAYLOAD) && plen != 0) return EMIT_BAD_PAYLOAD;
  if ((mask & M_ATOMIC_WRITE) && plen != ATOMIC_WRITE_PAYLOAD) return EMIT_BAD_PAYLOAD;
  if (plen > 0xffff) return EMIT_BAD_PAYLOAD;
  const hl = opcode_length(op);
  const pad = (0 - plen) & 3;
  const iplen = v == 4 ? IP4_SIZE : IP6_SIZE;
  const n = hl + plen + pad; // ICRC coverage after the BTH start
  const ulen = UDP_SIZE + n + ICRC_SIZE;
  const total = iplen + ulen;
  if (ulen > 0xffff || (v == 4 && total > 0xffff)) return EMIT_BAD_PAYLOAD;
  if (total > cap) return EMIT_BUFFER_TOO_SMALL;
  const bth = out + iplen + UDP_SIZE;
  // Payload first: it may sit where the headers go (e.g. emitting over a parsed buffer).
  if (plen) memory.copy(bth + hl, <usize>rd(r, R_PAYLOAD_PTR), plen);
  memory.fill(bth + hl + plen, 0, pad);
  write_ip_udp(r, out, ulen);
  write_transport_headers(r, bth, op, pad);
  const icrc = icrc_calc(out, v == 6, out + iplen, bth, n);
  store<u32>(bth + n, icrc); // little-endian: least-significant byte first on the wire
  wr(r, R_IP_HDR_LEN, iplen);
  wr(r, R_IP_CSUM, v == 4 ? (<u32>bswap<u16>(load<u16>(out + IP4_CSUM))) : 0);
  wr(r, R_UDP_LEN, ulen);
  wr(r, R_PADCNT, pad);
  wr(r, R_ICRC, icrc_wire(icrc));
  wr(r, R_ICRC_EXPECTED, icrc_wire(icrc));
  wr(r, R_IP_TOTAL_LEN, v == 4 ? total : ulen);
  wr(r, R_IP_NEXT, IP_PROTO_UDP);
  return <i32>total;
}

/** The ICRC value a full IPv4/IPv6 packet of len bytes (ICRC last) should carry; 0 if too short. */
export function icrc_of_packet(p: usize, len: u32): u32 {
  if (len < 1) return 0;
  const v6 = ip_version(p) == 6;
  const iplen = v6 ? IP6_SIZE : IP4_SIZE;
  if (len < iplen + UDP_SIZE + BTH_SIZE + ICRC_SIZE) return 0;
  return icrc_calc(p, v6, p + iplen, p + iplen + UDP_SIZE, len - iplen - UDP_SIZE - ICRC_SIZE);
}
