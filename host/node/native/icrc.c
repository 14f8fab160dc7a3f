/* See icrc.h. */
#include "icrc.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define CRC32_POLY_REFLECTED 0xedb88320u
/* The raw register after 8 bytes of 0xff from the all-ones start: the masked LRH rxe prepends. */
#define ICRC_SEED 0xdebb20e3u
#define IP4_HEADER 20u
#define IP6_HEADER 40u
#define UDP_HEADER 8u
#define BTH_BYTES 12u
#define BTH_MASKED_BYTE 4u /* FECN, BECN, resv6 */
#define ICRC_BYTES 4u
#define IP_PROTO_UDP 17u
#define IP4_DF_FRAG_WORD 0x4000u /* flags DF, fragment offset 0 */

/* ---- slicing-by-8 */

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c & 1u) ? (c >> 1) ^ CRC32_POLY_REFLECTED : c >> 1;
    table[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; i++)
    for (int k = 1; k < 8; k++) table[k][i] = (table[k - 1][i] >> 8) ^ table[0][table[k - 1][i] & 0xffu];
}

static inline uint32_t le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t crc32_table(uint32_t crc, const uint8_t *p, size_t n) {
  while (n >= 8) {
    uint32_t a = crc ^ le32(p), b = le32(p + 4);
    crc = table[7][a & 0xff] ^ table[6][(a >> 8) & 0xff] ^ table[5][(a >> 16) & 0xff] ^ table[4][a >> 24] ^
          table[3][b & 0xff] ^ table[2][(b >> 8) & 0xff] ^ table[1][(b >> 16) & 0xff] ^ table[0][b >> 24];
    p += 8;
    n -= 8;
  }
  while (n--) crc = table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return crc;
}

/* ---- carry-less multiplication (x86-64, PCLMULQDQ)
 * Four 128-bit accumulators fold 64 bytes a step: a block B at distance D bits ahead of the data
 * that follows is congruent (mod P, in the CRC's bit-reflected domain) to lo(B) * K1 ^ hi(B) * K2
 * with K1 = x^(D+32) mod P and K2 = x^(D-32) mod P, each reflected and shifted left one bit
 * (the reflected product comes out one bit short). D = 512 in the main loop, 128 to fold the four
 * accumulators into one and for the last whole 16-byte blocks. The register left over is then
 * ordinary data: the table finishes it and the tail (the constants are those of Intel's "Fast CRC
 * Computation for Generic Polynomials Using PCLMULQDQ" for the reflected CRC-32; the tests compare
 * every length 0..600 and random runs against the table). */
#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#define K_512_LO 0x154442bd4ull /* x^(512+32) */
#define K_512_HI 0x1c6e41596ull /* x^(512-32) */
#define K_128_LO 0x1751997d0ull /* x^(128+32) */
#define K_128_HI 0x0ccaa009eull /* x^(128-32) */

__attribute__((target("pclmul,sse4.1"))) static inline __m128i fold(__m128i x, __m128i k, __m128i next) {
  return _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11)), next);
}

/* Both folds end here: the remaining 16-byte blocks folded into x, then x and the last n < 16 bytes
 * through the table. */
__attribute__((target("pclmul,sse4.1"))) static uint32_t fold_finish(__m128i x, const uint8_t *p, size_t n) {
  const __m128i k128 = _mm_set_epi64x((long long)K_128_HI, (long long)K_128_LO);
  while (n >= 16) {
    x = fold(x, k128, _mm_loadu_si128((const __m128i *)p));
    p += 16;
    n -= 16;
  }
  uint8_t rest[16];
  _mm_storeu_si128((__m128i *)rest, x);
  return crc32_table(crc32_table(0, rest, 16), p, n);
}

__attribute__((target("pclmul,sse4.1"))) static uint32_t crc32_clmul(uint32_t crc, const uint8_t *p, size_t n) {
  const __m128i k512 = _mm_set_epi64x((long long)K_512_HI, (long long)K_512_LO);
  const __m128i k128 = _mm_set_epi64x((long long)K_128_HI, (long long)K_128_LO);
  __m128i x0 = _mm_xor_si128(_mm_loadu_si128((const __m128i *)p), _mm_cvtsi32_si128((int)crc));
  __m128i x1 = _mm_loadu_si128((const __m128i *)(p + 16));
  __m128i x2 = _mm_loadu_si128((const __m128i *)(p + 32));
  __m128i x3 = _mm_loadu_si128((const __m128i *)(p + 48));
  p += 64;
  n -= 64;
  while (n >= 64) {
    x0 = fold(x0, k512, _mm_loadu_si128((const __m128i *)p));
    x1 = fold(x1, k512, _mm_loadu_si128((const __m128i *)(p + 16)));
    x2 = fold(x2, k512, _mm_loadu_si128((const __m128i *)(p + 32)));
    x3 = fold(x3, k512, _mm_loadu_si128((const __m128i *)(p + 48)));
    p += 64;
    n -= 64;
  }
  __m128i x = fold(fold(fold(x0, k128, x1), k128, x2), k128, x3);
  return fold_finish(x, p, n);
}

/* The same with 256-bit VPCLMULQDQ (AVX2): each instruction multiplies in both 128-bit lanes, so
 * four ymm accumulators fold 128 bytes a step (distance 1024 bits), then fold into one (256), then
 * its two lanes into one xmm (128), and the 128-bit path's tail finishes. Where a 256-bit
 * carry-less multiply issues as fast as a 128-bit one this doubles the rate. n >= 256. */
#define K_1024_LO 0x1e88ef372ull /* x^(1024+32) */
#define K_1024_HI 0x14a7fe880ull /* x^(1024-32) */
#define K_256_LO 0x0f1da05aaull  /* x^(256+32) */
#define K_256_HI 0x15a546366ull  /* x^(256-32) */

__attribute__((target("avx2,vpclmulqdq,pclmul,sse4.1"))) static inline __m256i fold256(__m256i x, __m256i k, __m256i next) {
  return _mm256_xor_si256(_mm256_xor_si256(_mm256_clmulepi64_epi128(x, k, 0x00), _mm256_clmulepi64_epi128(x, k, 0x11)), next);
}

__attribute__((target("avx2,vpclmulqdq,pclmul,sse4.1"))) static uint32_t crc32_vclmul(uint32_t crc, const uint8_t *p, size_t n) {
  const __m256i k1024 = _mm256_set_epi64x((long long)K_1024_HI, (long long)K_1024_LO, (long long)K_1024_HI, (long long)K_1024_LO);
  const __m256i k256 = _mm256_set_epi64x((long long)K_256_HI, (long long)K_256_LO, (long long)K_256_HI, (long long)K_256_LO);
  const __m128i k128 = _mm_set_epi64x((long long)K_128_HI, (long long)K_128_LO);
  __m256i y0 = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)p), _mm256_setr_epi32((int)crc, 0, 0, 0, 0, 0, 0, 0));
  __m256i y1 = _mm256_loadu_si256((const __m256i *)(p + 32));
  __m256i y2 = _mm256_loadu_si256((const __m256i *)(p + 64));
  __m256i y3 = _mm256_loadu_si256((const __m256i *)(p + 96));
  p += 128;
  n -= 128;
  while (n >= 128) {
    y0 = fold256(y0, k1024, _mm256_loadu_si256((const __m256i *)p));
    y1 = fold256(y1, k1024, _mm256_loadu_si256((const __m256i *)(p + 32)));
    y2 = fold256(y2, k1024, _mm256_loadu_si256((const __m256i *)(p + 64)));
    y3 = fold256(y3, k1024, _mm256_loadu_si256((const __m256i *)(p + 96)));
    p += 128;
    n -= 128;
  }
  __m256i y = fold256(fold256(fold256(y0, k256, y1), k256, y2), k256, y3);
  __m128i x = fold(_mm256_castsi256_si128(y), k128, _mm256_extracti128_si256(y, 1));
  return fold_finish(x, p, n);
}

static int clmul_cpu, vclmul_cpu;
/* SOFTROCE_CRC_CLMUL=0 takes this CPU for one without PCLMULQDQ: the table CRC everywhere and the
 * offload off, the path such a CPU runs (the tests run it so; read once, at the first CRC) */
static void clmul_probe(void) {
  unsigned a, b, c, d;
  const char *env = getenv("SOFTROCE_CRC_CLMUL");
  clmul_cpu = !(env && strcmp(env, "0") == 0) && __get_cpuid(1, &a, &b, &c, &d) && (c & bit_PCLMUL) && (c & bit_SSE4_1);
  /* AVX2 and VPCLMULQDQ, and the OS saving the ymm registers (libgcc's check covers XGETBV) */
  __builtin_cpu_init();
  vclmul_cpu = clmul_cpu && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("vpclmulqdq");
}
#endif

static void crc_init(void) {
  table_init();
#if defined(__x86_64__)
  clmul_probe();
#endif
}

/* Tests and the bench: 1 turns the 256-bit path off (to compare it with the 128-bit one). */
int crc32_no_vclmul;

int crc32_vclmul_available(void) {
  pthread_once(&table_once, crc_init);
#if defined(__x86_64__)
  return vclmul_cpu;
#else
  return 0;
#endif
}

int crc32_clmul_available(void) {
  pthread_once(&table_once, crc_init);
#if defined(__x86_64__)
  return clmul_cpu;
#else
  return 0;
#endif
}

uint32_t crc32_raw(uint32_t crc, const uint8_t *p, size_t n) {
  pthread_once(&table_once, crc_init);
#if defined(__x86_64__)
  if (n >= 256 && vclmul_cpu && !crc32_no_vclmul) return crc32_vclmul(crc, p, n);
  if (n >= 64 && clmul_cpu) return crc32_clmul(crc, p, n);
#endif
  return crc32_table(crc, p, n);
}

/* ---- the ICRC */

static inline void put16be(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

/* The covered IP + UDP headers (variant fields as ones) followed by the masked BTH; returns its length. */
static uint32_t pseudo_headers(const icrc_facts *f, uint32_t udp_payload, const uint8_t bth[BTH_BYTES], uint8_t *out) {
  uint32_t udp_len = UDP_HEADER + udp_payload;
  uint8_t *u;
  if (f->v6) {
    out[0] = 0x6f; /* version 6; traffic class and flow label as ones */
    out[1] = out[2] = out[3] = 0xff;
    put16be(out + 4, udp_len);
    out[6] = IP_PROTO_UDP;
    out[7] = 0xff; /* hop limit */
    memcpy(out + 8, f->src, 16);
    memcpy(out + 24, f->dst, 16);
    u = out + IP6_HEADER;
  } else {
    out[0] = 0x45;
    out[1] = 0xff; /* TOS */
    put16be(out + 2, IP4_HEADER + udp_len);
    put16be(out + 4, f->ip_id);
    put16be(out + 6, IP4_DF_FRAG_WORD);
    out[8] = 0xff; /* TTL */
    out[9] = IP_PROTO_UDP;
    out[10] = out[11] = 0xff; /* header checksum */
    memcpy(out + 12, f->src + 12, 4);
    memcpy(out + 16, f->dst + 12, 4);
    u = out + IP4_HEADER;
  }
  put16be(u, f->sport);
  put16be(u + 2, f->dport);
  put16be(u + 4, udp_len);
  u[6] = u[7] = 0xff; /* UDP checksum */
  memcpy(u + UDP_HEADER, bth, BTH_BYTES);
  u[UDP_HEADER + BTH_MASKED_BYTE] = 0xff;
  return (uint32_t)(u + UDP_HEADER + BTH_BYTES - out);
}

uint32_t icrc_compute(const icrc_facts *f, const struct iovec *iov, unsigned niov, uint32_t udp_payload) {
  uint8_t bth[BTH_BYTES];
  uint32_t got = 0;
  for (unsigned i = 0; i < niov && got < BTH_BYTES; i++) {
    uint32_t take = (uint32_t)iov[i].iov_len < BTH_BYTES - got ? (uint32_t)iov[i].iov_len : BTH_BYTES - got;
    memcpy(bth + got, iov[i].iov_base, take);
    got += take;
  }
  uint8_t pseudo[IP6_HEADER + UDP_HEADER + BTH_BYTES];
  uint32_t crc = crc32_raw(ICRC_SEED, pseudo, pseudo_headers(f, udp_payload, bth, pseudo));
  /* the rest of the payload after the BTH, up to the ICRC */
  uint32_t skip = BTH_BYTES, left = udp_payload - BTH_BYTES - ICRC_BYTES;
  for (unsigned i = 0; i < niov && left; i++) {
    uint32_t len = (uint32_t)iov[i].iov_len;
    if (skip >= len) {
      skip -= len;
      continue;
    }
    uint32_t take = len - skip < left ? len - skip : left;
    crc = crc32_raw(crc, (const uint8_t *)iov[i].iov_base + skip, take);
    skip = 0;
    left -= take;
  }
  return ~crc;
}

void icrc_store(const struct iovec *iov, unsigned niov, uint32_t udp_payload, uint32_t value) {
  uint32_t at = udp_payload - ICRC_BYTES; /* offset of the ICRC's first byte */
  int k = 0;
  for (unsigned i = 0; i < niov && k < 4; i++) {
    uint32_t len = (uint32_t)iov[i].iov_len;
    for (; at < len && k < 4; at++, k++) ((uint8_t *)iov[i].iov_base)[at] = (uint8_t)(value >> (8 * k));
    at -= len;
  }
}
