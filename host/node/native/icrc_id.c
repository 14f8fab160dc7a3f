/* See icrc_id.h. The arithmetic is over GF(2)[x] modulo the CRC-32 polynomial, in the
 * reflected bit order CRC-32 uses (bit 31 of a word is the coefficient of x^0). */
#include "icrc_id.h"

#define CRC32_POLY_REFLECTED 0xedb88320u
/* IPv4 header bytes after the 2-byte ID field, then the UDP header: covered by the ICRC
 * before the UDP payload. The 4 ICRC bytes at the payload's end are not covered. */
#define IP4_AFTER_ID 14u
#define UDP_HEADER 8u
#define ICRC_BYTES 4u

/* a * b mod P. */
static uint32_t gf2_mulmod(uint32_t a, uint32_t b) {
  uint32_t product = 0;
  for (uint32_t term = 0x80000000u; term != 0; term >>= 1) {
    if (a & term) product ^= b;
    b = (b & 1u) ? (b >> 1) ^ CRC32_POLY_REFLECTED : b >> 1;
  }
  return product;
}

/* x^(8 * bytes) mod P: what running the CRC register over `bytes` zero bytes multiplies it by. */
static uint32_t zero_bytes_operator(uint32_t bytes) {
  uint32_t result = 0x80000000u; /* x^0 */
  uint32_t square = 0x00800000u; /* x^8: one byte */
  while (bytes != 0) {
    if (bytes & 1u) result = gf2_mulmod(result, square);
    square = gf2_mulmod(square, square);
    bytes >>= 1;
  }
  return result;
}

/* The raw CRC register (no pre- or post-inversion) after the two ID bytes, big-endian, from 0. */
static uint32_t id_register(uint16_t id) {
  uint32_t reg = 0;
  const uint8_t bytes[2] = {(uint8_t)(id >> 8), (uint8_t)id};
  for (int i = 0; i < 2; i++) {
    reg ^= bytes[i];
    for (int k = 0; k < 8; k++) reg = (reg & 1u) ? (reg >> 1) ^ CRC32_POLY_REFLECTED : reg >> 1;
  }
  return reg;
}

void icrc_id_columns_for(uint32_t udp_len, icrc_id_columns *out) {
  uint32_t covered_after = IP4_AFTER_ID + UDP_HEADER + (udp_len >= ICRC_BYTES ? udp_len - ICRC_BYTES : 0);
  uint32_t shift = zero_bytes_operator(covered_after);
  out->key = udp_len + 1;
  for (int bit = 0; bit < 16; bit++) out->col[bit] = gf2_mulmod(id_register((uint16_t)(1u << bit)), shift);
}

uint32_t icrc_id_delta(icrc_id_cache *cache, uint32_t udp_len, uint16_t a, uint16_t b) {
  uint32_t diff = (uint32_t)(a ^ b);
  if (diff == 0) return 0;
  icrc_id_columns *c = &cache->entry[udp_len % ICRC_ID_CACHE];
  if (c->key != udp_len + 1) icrc_id_columns_for(udp_len, c);
  uint32_t delta = 0;
  for (int bit = 0; diff != 0; bit++, diff >>= 1)
    if (diff & 1u) delta ^= c->col[bit];
  return delta;
}
