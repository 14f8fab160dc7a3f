// RoCEv2 invariant CRC, as Linux rxe (rxe_icrc.c) computes it: CRC-32 over
//   8 x 0xFF (the masked LRH) || IP header (variant fields masked to ones)
//   || UDP header (checksum masked) || BTH (byte 4: FECN/BECN/resv6 masked)
//   || remaining transport headers || payload || pad.
// The IP/UDP/BTH headers are copied into a small pseudo header and masked there;
// the payload is read in place. The value goes on the wire least-significant byte first.
import { crc32_raw } from "./crc32";
import { BTH_SIZE, BTH_CN } from "../wire/bth";
import { IP4_SIZE, IP4_TOS, IP4_TTL, IP4_CSUM, IP6_SIZE, IP6_VTF, IP6_HOPS, UDP_SIZE, UDP_CSUM } from "../wire/ip";

export const ICRC_SIZE: u32 = 4;
/** Raw CRC register after 8 bytes of 0xFF from the all-ones start (rxe's seed). */
export const ICRC_SEED: u32 = 0xdebb20e3;

const PSEUDO = memory.data(64, 16);

/**
 * The ICRC value (little-endian on the wire) of a RoCEv2 packet whose IP header is at `ip`
 * (IPv4 20 bytes when !v6, IPv6 40 bytes), UDP header at `udp`, and whose `n` bytes from the
 * BTH at `bth` (BTH, extension headers, payload, pad; no ICRC) are covered.
 */
export function icrc_calc(ip: usize, v6: bool, udp: usize, bth: usize, n: u32): u32 {
  const iplen = v6 ? IP6_SIZE : IP4_SIZE;
  memory.copy(PSEUDO, ip, iplen);
  if (v6) {
    // version stays; traffic class and flow label become ones
    store<u8>(PSEUDO + IP6_VTF, load<u8>(PSEUDO + IP6_VTF) | 0x0f);
    store<u8>(PSEUDO + IP6_VTF + 1, 0xff);
    store<u16>(PSEUDO + IP6_VTF + 2, 0xffff);
    store<u8>(PSEUDO + IP6_HOPS, 0xff);
  } else {
    store<u8>(PSEUDO + IP4_TOS, 0xff);
    store<u8>(PSEUDO + IP4_TTL, 0xff);
    store<u16>(PSEUDO + IP4_CSUM, 0xffff);
  }
  const u = PSEUDO + iplen;
  memory.copy(u, udp, UDP_SIZE);
  store<u16>(u + UDP_CSUM, 0xffff);
  const b = u + UDP_SIZE;
  memory.copy(b, bth, BTH_SIZE);
  store<u8>(b + BTH_CN, 0xff);
  let crc = crc32_raw(ICRC_SEED, PSEUDO, iplen + UDP_SIZE + BTH_SIZE);
  crc = crc32_raw(crc, bth + BTH_SIZE, n - BTH_SIZE);
  return ~crc;
}

/** The 4 ICRC bytes of `value` as they appear on the wire, read big-endian. */
@inline export function icrc_wire(value: u32): u32 { return bswap<u32>(value); }
