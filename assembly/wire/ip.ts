// IPv4 (no options), IPv6 (no extension headers) and UDP headers as RoCEv2 uses them,
// plus the IPv4 header checksum.
import { ld8, ld16, ld32, st8, st16, st32 } from "./be";

export const IP_PROTO_UDP: u32 = 17;
export const ROCE_UDP_PORT: u32 = 4791;

// IPv4: 0 ver:4 ihl:4 | 1 tos | 2-3 total length | 4-5 id | 6-7 flags:3 frag:13
//       8 ttl | 9 protocol | 10-11 checksum | 12-15 src | 16-19 dst
export const IP4_SIZE: u32 = 20;
export const IP4_VER_IHL: u32 = 0;
export const IP4_TOS: u32 = 1;
export const IP4_LEN: u32 = 2;
export const IP4_ID: u32 = 4;
export const IP4_FRAG: u32 = 6;
export const IP4_TTL: u32 = 8;
export const IP4_PROTO: u32 = 9;
export const IP4_CSUM: u32 = 10;
export const IP4_SRC: u32 = 12;
export const IP4_DST: u32 = 16;
export const IP4_FLAG_MF: u32 = 1;
export const IP4_FLAG_DF: u32 = 2;

@inline export function ip_version(p: usize): u32 { return ld8(p) >> 4; }
@inline export function ip4_ihl(p: usize): u32 { return ld8(p + IP4_VER_IHL) & 15; }
@inline export function ip4_tos(p: usize): u32 { return ld8(p + IP4_TOS); }
@inline export function ip4_len(p: usize): u32 { return ld16(p + IP4_LEN); }
@inline export function ip4_id(p: usize): u32 { return ld16(p + IP4_ID); }
@inline export function ip4_flags(p: usize): u32 { return ld16(p + IP4_FRAG) >> 13; }
@inline export function ip4_frag_off(p: usize): u32 { return ld16(p + IP4_FRAG) & 0x1fff; }
@inline export function ip4_ttl(p: usize): u32 { return ld8(p + IP4_TTL); }
@inline export function ip4_proto(p: usize): u32 { return ld8(p + IP4_PROTO); }
@inline export function ip4_csum(p: usize): u32 { return ld16(p + IP4_CSUM); }
@inline export function ip4_src(p: usize): u32 { return ld32(p + IP4_SRC); }
@inline export function ip4_dst(p: usize): u32 { return ld32(p + IP4_DST); }

@inline export function ip4_set_tos(p: usize, v: u32): void { st8(p + IP4_TOS, v); }
@inline export function ip4_set_len(p: usize, v: u32): void { st16(p + IP4_LEN, v); }
@inline export function ip4_set_id(p: usize, v: u32): void { st16(p + IP4_ID, v); }
@inline export function ip4_set_frag(p: usize, flags: u32, off: u32): void { st16(p + IP4_FRAG, ((flags & 7) << 13) | (off & 0x1fff)); }
@inline export function ip4_set_ttl(p: usize, v: u32): void { st8(p + IP4_TTL, v); }
@inline export function ip4_set_csum(p: usize, v: u32): void { st16(p + IP4_CSUM, v); }
@inline export function ip4_set_src(p: usize, v: u32): void { st32(p + IP4_SRC, v); }
@inline export function ip4_set_dst(p: usize, v: u32): void { st32(p + IP4_DST, v); }

/**
 * The Internet checksum's one's-complement sum: `acc` plus the `len` bytes at p read as big-endian
 * 16-bit words (an odd last byte padded with a zero byte), folded to 16 bits. Sum a long buffer in
 * pieces of even length by passing each result on as `acc`.
 */
export function inet_sum(p: usize, len: u32, acc: u32): u32 {
  let sum: u64 = acc;
  let i: u32 = 0;
  for (; i + 1 < len; i += 2) sum += ld16(p + i);
  if (i < len) sum += ld8(p + i) << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return <u32>sum;
}

/** One's-complement checksum of an IPv4 header of `len` bytes (checksum field included as stored). */
export function ip4_checksum(p: usize, len: u32): u32 {
  return ~inet_sum(p, len, 0) & 0xffff;
}

/** Writes a 20-byte IPv4 header (IHL 5) carrying UDP, checksum included; src/dst point at 4 bytes each. */
export function ip4_build(p: usize, tos: u32, total_len: u32, id: u32, flags: u32, frag_off: u32,
                          ttl: u32, src: usize, dst: usize): void {
  st8(p + IP4_VER_IHL, 0x45);
  ip4_set_tos(p, tos);
  ip4_set_len(p, total_len);
  ip4_set_id(p, id);
  ip4_set_frag(p, flags, frag_off);
  ip4_set_ttl(p, ttl);
  st8(p + IP4_PROTO, IP_PROTO_UDP);
  ip4_set_csum(p, 0);
  memory.copy(p + IP4_SRC, src, 4);
  memory.copy(p + IP4_DST, dst, 4);
  ip4_set_csum(p, ip4_checksum(p, IP4_SIZE));
}

// IPv6: 0-3 ver:4 tclass:8 flow:20 | 4-5 payload length | 6 next header | 7 hop limit
//       8-23 src | 24-39 dst
export const IP6_SIZE: u32 = 40;
export const IP6_VTF: u32 = 0;
export const IP6_PLEN: u32 = 4;
export const IP6_NEXT: u32 = 6;
export const IP6_HOPS: u32 = 7;
export const IP6_SRC: u32 = 8;
export const IP6_DST: u32 = 24;

@inline export function ip6_tclass(p: usize): u32 { return (ld32(p + IP6_VTF) >> 20) & 0xff; }
@inline export function ip6_flow(p: usize): u32 { return ld32(p + IP6_VTF) & 0xfffff; }
@inline export function ip6_plen(p: usize): u32 { return ld16(p + IP6_PLEN); }
@inline export function ip6_next(p: usize): u32 { return ld8(p + IP6_NEXT); }
@inline export function ip6_hops(p: usize): u32 { return ld8(p + IP6_HOPS); }
@inline export function ip6_set_vtf(p: usize, tclass: u32, flow: u32): void {
  st32(p + IP6_VTF, (6 << 28) | ((tclass & 0xff) << 20) | (flow & 0xfffff));
}
@inline export function ip6_set_plen(p: usize, v: u32): void { st16(p + IP6_PLEN, v); }
@inline export function ip6_set_hops(p: usize, v: u32): void { st8(p + IP6_HOPS, v); }

/** Writes a 40-byte IPv6 header whose next header is UDP; src/dst point at 16 bytes each. */
export function ip6_build(p: usize, tclass: u32, flow: u32, payload_len: u32, hops: u32, src: usize, dst: usize): void {
  ip6_set_vtf(p, tclass, flow);
  ip6_set_plen(p, payload_len);
  st8(p + IP6_NEXT, IP_PROTO_UDP);
  ip6_set_hops(p, hops);
  memory.copy(p + IP6_SRC, src, 16);
  memory.copy(p + IP6_DST, dst, 16);
}

// UDP: 0-1 source port | 2-3 destination port | 4-5 length | 6-7 checksum
export const UDP_SIZE: u32 = 8;
export const UDP_SPORT: u32 = 0;
export const UDP_DPORT: u32 = 2;
export const UDP_LEN: u32 = 4;
export const UDP_CSUM: u32 = 6;

@inline export function udp_sport(p: usize): u32 { return ld16(p + UDP_SPORT); }
@inline export function udp_dport(p: usize): u32 { return ld16(p + UDP_DPORT); }
@inline export function udp_len(p: usize): u32 { return ld16(p + UDP_LEN); }
@inline export function udp_csum(p: usize): u32 { return ld16(p + UDP_CSUM); }

@inline export function udp_set_csum(p: usize, v: u32): void { st16(p + UDP_CSUM, v); }

export function udp_build(p: usize, sport: u32, dport: u32, len: u32, csum: u32): void {
  st16(p + UDP_SPORT, sport);
  st16(p + UDP_DPORT, dport);
  st16(p + UDP_LEN, len);
  st16(p + UDP_CSUM, csum);
}

/**
 * The UDP checksum (RFC 768; RFC 8200 for IPv6) of the datagram whose IP header is at ip and UDP
 * header at udp, ulen bytes long: pseudo-header (addresses, protocol, length), the UDP header with
 * its checksum field counted as 0, and `payload_sum`, the inet_sum of the ulen - 8 payload bytes.
 * A result of 0 is sent as 0xffff (0 means "no checksum").
 */
export function udp_checksum(ip: usize, v6: bool, udp: usize, ulen: u32, payload_sum: u32): u32 {
  let acc = v6 ? inet_sum(ip + IP6_SRC, 32, 0) : inet_sum(ip + IP4_SRC, 8, 0);
  acc = inet_sum(udp, UDP_CSUM, acc + IP_PROTO_UDP + ulen);
  acc = inet_sum(udp + UDP_CSUM + 2, UDP_SIZE - UDP_CSUM - 2, acc + payload_sum);
  const ck = ~acc & 0xffff;
  return ck ? ck : 0xffff;
}
