/*
 * The RoCEv2 ICRC as a function of the IPv4 Identification. The ICRC is a CRC-32, which is
 * affine in its input: with every other byte of the packet fixed,
 *   icrc(id) = icrc(0) XOR L_n(id)
 * where L_n is linear in the 16 ID bits and depends only on n, the number of covered bytes
 * after the ID field (so only on the datagram's length). UDP GSO gives segment i of a send
 * the ID i (docs/PERFORMANCE.md, "Native datapath"), so the datapath moves a segment's ICRC
 * from the ID it was computed for to the one the kernel will use by XORing L_n(from ^ to).
 * assembly/crc/ipid.ts uses the same property the other way, to solve an unseen ID.
 */
#ifndef SOFTROCE_ICRC_ID_H
#define SOFTROCE_ICRC_ID_H
#include <stdint.h>

/* L_n for each of the 16 ID bits (column b: the ID with only bit b set), for one datagram length. */
typedef struct {
  uint32_t key; /* 1 + the UDP payload length (BTH .. ICRC) these columns are for; 0 = empty */
  uint32_t col[16];
} icrc_id_columns;

/* Per-length columns, direct-mapped: runs of equal-size datagrams hit one entry. Nothing is allocated. */
#define ICRC_ID_CACHE 64
typedef struct {
  icrc_id_columns entry[ICRC_ID_CACHE];
} icrc_id_cache;

/* The 16 columns for a datagram whose UDP payload (BTH .. ICRC) is udp_len bytes. */
void icrc_id_columns_for(uint32_t udp_len, icrc_id_columns *out);

/* What to XOR into the ICRC value of a udp_len-byte RoCEv2 UDP payload to move it from ID a to ID b. */
uint32_t icrc_id_delta(icrc_id_cache *cache, uint32_t udp_len, uint16_t a, uint16_t b);

#endif
