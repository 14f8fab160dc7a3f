/*
 * CRC-32 (zlib's polynomial, reflected) and the RoCEv2 ICRC for the native datapath's ICRC
 * offload. On x86-64 with PCLMULQDQ (checked at run time) runs of 64 bytes or more are folded with
 * carry-less multiplication, 64 bytes a step; everything else (and every other CPU) uses a
 * slicing-by-8 table. The offload is on only where the fast path is (crc32_clmul_available, read by
 * host/node/native-link.ts icrcOffloadChoice): a C table CRC is no faster than the wasm core's SIMD
 * braid, so without PCLMULQDQ the core keeps its own ICRC. SOFTROCE_CRC_CLMUL=0 in the environment
 * makes any CPU one without (icrc.c clmul_probe), so that path is tested too.
 *
 * The ICRC is the one Linux rxe computes (rxe_icrc.c; assembly/crc/icrc.ts is the core's copy):
 *   CRC-32 over 8 x 0xff || IP header (IPv4: TOS, TTL, checksum as ones; IPv6: traffic class,
 *   flow label, hop limit as ones) || UDP header (checksum as ones) || BTH (byte 4 as ones)
 *   || the rest of the UDP payload but its last 4 bytes (the ICRC itself),
 * written least-significant byte first. The IP and UDP headers are rebuilt from the datagram's
 * facts (addresses, ports, lengths, IPv4 ID, DF) exactly as the core's writePseudo builds them.
 */
#ifndef SOFTROCE_ICRC_H
#define SOFTROCE_ICRC_H
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* The raw CRC register (no pre- or post-inversion) after `n` bytes at p, from `crc`. */
uint32_t crc32_raw(uint32_t crc, const uint8_t *p, size_t n);

/* 1 when this CPU runs the carry-less-multiplication CRC (x86-64 with PCLMULQDQ). */
int crc32_clmul_available(void);
/* 1 when it also runs the 256-bit one (AVX2 and VPCLMULQDQ), used for runs of 256 bytes or more. */
int crc32_vclmul_available(void);
/* Set to 1 to keep to the 128-bit path (tests and bench/crc.mjs compare the two). */
extern int crc32_no_vclmul;

/* The facts the ICRC covers besides the UDP payload; addresses are GIDs (IPv4 as ::ffff:a.b.c.d). */
typedef struct {
  int v6;
  const uint8_t *src, *dst; /* 16 bytes each */
  uint16_t sport, dport;
  uint16_t ip_id; /* IPv4 only; the datagram goes with DF set */
} icrc_facts;

/* Bytes of a RoCEv2 UDP payload the ICRC needs at least: a BTH and the ICRC. */
#define ICRC_MIN_PAYLOAD 16u

/*
 * The ICRC value (as the core's icrc_calc returns it: the u32 read little-endian from the wire) of
 * the RoCEv2 UDP payload made of the gather pieces `iov` (udp_payload bytes in all, BTH first, the
 * ICRC last). udp_payload must be at least ICRC_MIN_PAYLOAD and at most the pieces' total.
 */
uint32_t icrc_compute(const icrc_facts *f, const struct iovec *iov, unsigned niov, uint32_t udp_payload);

/* Writes `value` into the payload's last 4 bytes (least-significant byte first), across pieces. */
void icrc_store(const struct iovec *iov, unsigned niov, uint32_t udp_payload, uint32_t value);

#endif
