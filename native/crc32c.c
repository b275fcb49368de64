/*
 * Raw CRC32C (Castagnoli, reflected; the caller's register value in, the register out: no inversions)
 * with the SSE4.2 crc32 instruction, for src/stream/crc32c.ts (loaded with koffi).
 *
 * One crc32 instruction chain is bound by the instruction's latency (3 cycles per 8 bytes) while the
 * CPU can start one per cycle. So a long input is cut into chunks of three equal consecutive blocks
 * A|B|C whose CRCs are computed together by three independent chains, then joined:
 *   crc(A|B|C) = shift(crc(A), 2 L) ^ shift(crc(B), L) ^ crc(C)      (B and C started from 0)
 * where shift(c, n) = c * x^(8 n) mod P is "append n zero bytes". With PCLMULQDQ that is one 32x32
 * carry-less multiply by a constant k = x^(8 n - 33) mod P and one crc32 over the 64-bit product
 * (the product of two reflected 32-bit values is the reflected 64-bit value of a*b*x, and crc32 of a
 * 64-bit value d from 0 is d * x^32 mod P, so the total factor is x^(8 n - 33 + 1 + 32) = x^(8 n)).
 *
 * Build (scripts/build-native.sh): gcc -O2 -msse4.2 -mpclmul -shared -fPIC -o native/build/crc32c.so
 * Callers must check btrfs_ts_crc32c_supported() first: the library itself is built for any x86-64.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <nmmintrin.h>
#include <wmmintrin.h>

/* The CRC32C polynomial, bit-reflected (bit 31 is the coefficient of x^0). */
#define POLY 0x82f63b78u
/* Block sizes of the three-chain loops: a long one for the bulk, a short one for what is left. */
#define LONG_BLOCK 8192
#define SHORT_BLOCK 256

/* a * b mod P for reflected 32-bit polynomials (plain shifts: only used to make the constants). */
static uint32_t gf_mulmod(uint32_t a, uint32_t b) {
  uint32_t product = 0;
  for (int i = 0; i < 32; i++) {
    if (a & 0x80000000u) product ^= b; /* coefficient of x^i in a */
    a <<= 1;
    b = (b >> 1) ^ ((b & 1) ? POLY : 0); /* b *= x */
  }
  return product;
}

/* x^n mod P, reflected, by square and multiply. */
static uint32_t x_pow_mod(uint64_t n) {
  uint32_t result = 0x80000000u; /* 1 */
  uint32_t square = 0x40000000u; /* x */
  while (n) {
    if (n & 1) result = gf_mulmod(result, square);
    square = gf_mulmod(square, square);
    n >>= 1;
  }
  return result;
}

/* The multiplier that makes shift() append `bytes` zero bytes. */
static uint32_t shift_constant(uint64_t bytes) {
  return x_pow_mod(8 * bytes - 33);
}

static uint32_t k_long1, k_long2, k_short1, k_short2;

__attribute__((constructor)) static void init_constants(void) {
  k_long1 = shift_constant(LONG_BLOCK);
  k_long2 = shift_constant(2 * LONG_BLOCK);
  k_short1 = shift_constant(SHORT_BLOCK);
  k_short2 = shift_constant(2 * SHORT_BLOCK);
}

/* crc * x^(8 n) mod P, k being shift_constant(n). */
static inline uint32_t shift(uint32_t crc, uint32_t k) {
  __m128i product = _mm_clmulepi64_si128(_mm_cvtsi32_si128((int)crc), _mm_cvtsi32_si128((int)k), 0);
  return (uint32_t)_mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(product));
}

static inline uint64_t load64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

/* One chunk of three blocks of `block` bytes at p, continuing crc. */
static inline uint32_t three_blocks(uint32_t crc, const uint8_t *p, size_t block, uint32_t k1, uint32_t k2) {
  uint64_t c0 = crc, c1 = 0, c2 = 0;
  const uint8_t *end = p + block;
  do {
    c0 = _mm_crc32_u64(c0, load64(p));
    c1 = _mm_crc32_u64(c1, load64(p + block));
    c2 = _mm_crc32_u64(c2, load64(p + 2 * block));
    p += 8;
  } while (p < end);
  return shift((uint32_t)c0, k2) ^ shift((uint32_t)c1, k1) ^ (uint32_t)c2;
}

/* 1 when this CPU has the instructions the library uses (SSE4.2 crc32 and PCLMULQDQ). */
int btrfs_ts_crc32c_supported(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("pclmul");
}

/* The raw CRC32C register after `len` bytes at `buf`, starting from `crc`. */
uint32_t btrfs_ts_crc32c(uint32_t crc, const uint8_t *buf, size_t len) {
  const uint8_t *p = buf;
  size_t n = len;
  /* Whole words from an 8-byte boundary on (unaligned loads work, but cost more across lines). */
  while (n > 0 && ((uintptr_t)p & 7) != 0) {
    crc = _mm_crc32_u8(crc, *p++);
    n--;
  }
  for (; n >= 3 * LONG_BLOCK; p += 3 * LONG_BLOCK, n -= 3 * LONG_BLOCK)
    crc = three_blocks(crc, p, LONG_BLOCK, k_long1, k_long2);
  for (; n >= 3 * SHORT_BLOCK; p += 3 * SHORT_BLOCK, n -= 3 * SHORT_BLOCK)
    crc = three_blocks(crc, p, SHORT_BLOCK, k_short1, k_short2);
  uint64_t c = crc;
  for (; n >= 8; p += 8, n -= 8) c = _mm_crc32_u64(c, load64(p));
  crc = (uint32_t)c;
  for (; n > 0; n--) crc = _mm_crc32_u8(crc, *p++);
  return crc;
}
