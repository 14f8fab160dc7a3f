// Exports of assembly/crc: CRC-32 and the RoCEv2 ICRC (docs/ABI.md "Wire").
import { crc32_update } from "./crc32";
import { icrc_wire } from "./icrc";
import { icrc_of_packet } from "../wire/packet";
import { idStat, recover_ipv4_id } from "./ipid";
import { ICRC_SIZE } from "./icrc";
import { ip_version, IP4_SIZE, UDP_SIZE } from "../wire/ip";
import { BTH_SIZE } from "../wire/bth";

export function crc_abi_version(): u32 { return 1; }

export function crc32(ptr: usize, len: u32, prev: u32): u32 { return crc32_update(prev, ptr, len); }

export function icrc_packet(ptr: usize, len: u32): u32 { return icrc_wire(icrc_of_packet(ptr, len)); }

/**
 * For a full IPv4 RoCEv2 packet of `len` bytes (the ICRC its last 4), the IP ID
 * its ICRC was computed with, solved from the ICRC alone (the packet's own ID
 * field is ignored and left zeroed); -1 when no ID explains it. See ipid.ts.
 */
export function icrc_recover_ipv4_id(ptr: usize, len: u32): i32 {
  if (len < IP4_SIZE + UDP_SIZE + BTH_SIZE + ICRC_SIZE || ip_version(ptr) != 4) return -1;
  const n = len - IP4_SIZE - UDP_SIZE - ICRC_SIZE;
  return recover_ipv4_id(ptr, ptr + IP4_SIZE, ptr + IP4_SIZE + UDP_SIZE, n, load<u32>(ptr + len - ICRC_SIZE));
}

/**
 * The ID solver's counters (ipid.ts IdStat): 0 solved, 1 unsolvable, 2 out of sequence,
 * 3 weak taken, 4 weak dropped; 0 past the last.
 */
export function icrc_id_stat(i: u32): u32 { return idStat(i); }
