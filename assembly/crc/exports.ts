// Exports of assembly/crc: CRC-32 and the RoCEv2 ICRC (docs/ABI.md "Wire").
import { crc32_update } from "./crc32";
import { icrc_wire } from "./icrc";
import { icrc_of_packet } from "../wire/packet";

export function crc_abi_version(): u32 { return 1; }

export function crc32(ptr: usize, len: u32, prev: u32): u32 { return crc32_update(prev, ptr, len); }

export function icrc_packet(ptr: usize, len: u32): u32 { return icrc_wire(icrc_of_packet(ptr, len)); }
