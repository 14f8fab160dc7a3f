// Recovering an unseen IPv4 Identification from the ICRC.
//
// A host that receives through an ordinary UDP socket never sees the IP header,
// but the ICRC covers the IPv4 ID, and Linux rxe sends an unpredictable one. The
// CRC is affine in its input: with everything else fixed,
//   icrc(id) = icrc(0) XOR L(id)
// where L is linear in the 16 ID bits: L(id) = XOR of delta_i over the set bits,
// delta_i being the raw CRC of the message that is all zeros but for ID bit i.
// So the ID is the solution of a 32x16 system over GF(2); with rank 16 it is
// unique when it exists, and the 16 spare equations are a check that a corrupted
// packet fails with probability 1 - 2^-16.
import { crc32_raw } from "./crc32";
import { icrc_calc } from "./icrc";
import { IP4_ID, IP4_SIZE, UDP_SIZE } from "../wire/ip";

/** Zero bytes to run the CRC register over: the longest tail after the ID field. */
const ZERO_CAP: u32 = 16384;
const zeros = memory.data(ZERO_CAP, 16);
const idBytes = memory.data(8, 8);
const basis = memory.data(16 * 4, 16);
const pivots = memory.data(16 * 4, 16);
const combos = memory.data(16 * 4, 16);

/** The 16 columns: delta_i for each ID bit, given how many bytes follow the ID field. */
function column(bit: u32, tail: u32): u32 {
  // ID is big-endian on the wire: bit i of the value lives in byte 1 - (i >> 3).
  store<u16>(idBytes, 0);
  const one: u32 = 1 << (bit & 7);
  store<u8>(idBytes + 1 - (bit >> 3), <u8>one);
  return crc32_raw(crc32_raw(0, idBytes, 2), zeros, tail);
}

/**
 * The IPv4 ID that makes the ICRC of this packet equal `found` (the ICRC value
 * as read little-endian from the wire), or -1 when none does. `ip` is a 20-byte
 * IPv4 pseudo header (its ID field is overwritten), `udp` the UDP header, `bth`
 * the `n` covered bytes from the BTH on.
 */
export function recover_ipv4_id(ip: usize, udp: usize, bth: usize, n: u32, found: u32): i32 {
  const tail = (IP4_SIZE - IP4_ID - 2) + UDP_SIZE + n;
  if (tail > ZERO_CAP) return -1;
  store<u16>(ip + IP4_ID, 0);
  let target = icrc_calc(ip, false, udp, bth, n) ^ found;
  if (target == 0) return 0;
  // Gaussian elimination over GF(2), columns added one by one in reduced form.
  let rank = 0;
  for (let i: u32 = 0; i < 16; i++) {
    let v = column(i, tail);
    let m: u32 = 1 << i;
    for (let k = 0; k < rank; k++) {
      if (v & load<u32>(pivots + (<usize>k << 2))) {
        v ^= load<u32>(basis + (<usize>k << 2));
        m ^= load<u32>(combos + (<usize>k << 2));
      }
    }
    if (v == 0) continue;
    store<u32>(basis + (<usize>rank << 2), v);
    store<u32>(pivots + (<usize>rank << 2), v & (0 - v));
    store<u32>(combos + (<usize>rank << 2), m);
    rank++;
  }
  let id: u32 = 0;
  for (let k = 0; k < rank; k++) {
    if (target & load<u32>(pivots + (<usize>k << 2))) {
      target ^= load<u32>(basis + (<usize>k << 2));
      id ^= load<u32>(combos + (<usize>k << 2));
    }
  }
  if (target != 0) return -1;
  return <i32>id;
}
