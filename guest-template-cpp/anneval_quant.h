/* anneval's quantised vectors, for C and C++ kernels (anneval.h includes it).
 *
 * 8-bit (unsigned and signed) and 4-bit integer codes with exact integer
 * distances, a uniform scalar quantiser that makes them from floats, and IEEE
 * half-precision storage with float distances for re-ranking. The integer
 * distances are exact, so both engines return the same value bit for bit. In
 * the sandbox codes widen to 16 bits and meet in i32x4.dot_i16x8 (16 codes a
 * step); natively the same widening meets in vpmaddwd, 32 codes a step with
 * AVX-512 BW, 16 with AVX2. Half-precision values become floats with
 * vcvtph2ps natively (16 a step with AVX-512, 8 with F16C) and with four
 * integer operations and a multiply in the sandbox; either way exactly.
 */
#ifndef ANNEVAL_QUANT_H
#define ANNEVAL_QUANT_H

#ifndef ANNEVAL_H
#error "include anneval.h, which includes this header"
#endif

#ifdef __cplusplus
extern "C" {
#endif

static inline uint32_t anneval__bits(float x) {
  uint32_t b;
  memcpy(&b, &x, 4);
  return b;
}

static inline float anneval__float(uint32_t b) {
  float x;
  memcpy(&x, &b, 4);
  return x;
}

/* The float an IEEE half-precision value (its bits) stands for; exact. */
static inline float anneval_f32_from_f16(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16, em = (uint32_t)(h & 0x7fffu) << 13;
  if ((h & 0x7c00u) == 0x7c00u) return anneval__float(sign | em | 0x7f800000u);
  /* Normal and subnormal halves alike: the bits in float's places, scaled by
   * 2^112, the difference of the exponent biases. */
  return anneval__float(sign | anneval__bits(anneval__float(em) * anneval__float(0x77800000u)));
}

/* The half nearest to x, ties to even, as IEEE 754 and x86's vcvtps2ph round;
 * beyond the largest half is infinity, NaN stays NaN. */
static inline uint16_t anneval_f16_from_f32(float x) {
  uint32_t bits = anneval__bits(x), abs = bits & 0x7fffffffu;
  uint16_t sign = (uint16_t)((bits >> 16) & 0x8000u);
  if (abs > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((abs >> 13) & 0x3ffu));
  if (abs >= 0x47800000u) return (uint16_t)(sign | 0x7c00u);
  if (abs < 0x38800000u) {
    /* A subnormal half or zero: adding 0.5 makes the float's own rounding
     * round at the half's last place, 2^-24. */
    float r = anneval__float(abs) + 0.5f;
    return (uint16_t)(sign | (anneval__bits(r) - 0x3f000000u));
  }
  uint32_t odd = (abs >> 13) & 1u;
  return (uint16_t)(sign | ((abs + 0x0fffu + odd - (112u << 23)) >> 13));
}

#if defined(__wasm_simd128__)
/* |a - b| of unsigned bytes. */
static inline v128_t anneval__absdiff_u8(v128_t a, v128_t b) {
  return wasm_v128_or(wasm_u8x16_sub_sat(a, b), wasm_u8x16_sub_sat(b, a));
}
/* Sums of squares of unsigned bytes, four 32-bit partial sums. */
static inline v128_t anneval__squares_u8(v128_t d) {
  v128_t lo = wasm_u16x8_extend_low_u8x16(d), hi = wasm_u16x8_extend_high_u8x16(d);
  return wasm_i32x4_add(wasm_i32x4_dot_i16x8(lo, lo), wasm_i32x4_dot_i16x8(hi, hi));
}
static inline int32_t anneval__sum_i32x4(v128_t v) {
  return (int32_t)((uint32_t)wasm_i32x4_extract_lane(v, 0) + (uint32_t)wasm_i32x4_extract_lane(v, 1) +
                   (uint32_t)wasm_i32x4_extract_lane(v, 2) + (uint32_t)wasm_i32x4_extract_lane(v, 3));
}
/* Four halves from p as floats. */
static inline v128_t anneval__load_f16x4(const uint16_t *p) {
  v128_t h = wasm_u32x4_extend_low_u16x8(wasm_v128_load64_zero(p));
  v128_t em = wasm_i32x4_shl(wasm_v128_and(h, wasm_i32x4_splat(0x7fff)), 13);
  v128_t finite = wasm_f32x4_mul(em, wasm_f32x4_splat(0x1p112f));
  v128_t special = wasm_i32x4_eq(wasm_v128_and(h, wasm_i32x4_splat(0x7c00)), wasm_i32x4_splat(0x7c00));
  v128_t mag = wasm_v128_bitselect(wasm_v128_or(em, wasm_i32x4_splat(0x7f800000)), finite, special);
  return wasm_v128_or(mag, wasm_i32x4_shl(wasm_v128_and(h, wasm_i32x4_splat(0x8000)), 16));
}
#elif defined(__AVX2__)
static inline int32_t anneval__sum_epi32_256(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}
#endif

/* Squared Euclidean distance between two vectors of n 8-bit codes. */
static inline uint32_t anneval_l2_sq_u8(const uint8_t *a, const uint8_t *b, size_t n) {
  size_t i = 0;
  uint32_t sum = 0;
#if defined(__wasm_simd128__)
  v128_t acc = wasm_i32x4_splat(0);
  for (; i + 16 <= n; i += 16)
    acc = wasm_i32x4_add(acc, anneval__squares_u8(anneval__absdiff_u8(wasm_v128_load(a + i),
                                                                     wasm_v128_load(b + i))));
  sum = (uint32_t)anneval__sum_i32x4(acc);
#elif defined(__AVX512BW__)
  __m512i acc = _mm512_setzero_si512();
  for (; i + 32 <= n; i += 32) {
    __m512i d = _mm512_sub_epi16(_mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(a + i))),
                                 _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(b + i))));
    acc = _mm512_add_epi32(acc, _mm512_madd_epi16(d, d));
  }
  sum = (uint32_t)_mm512_reduce_add_epi32(acc);
#elif defined(__AVX2__)
  __m256i acc = _mm256_setzero_si256();
  for (; i + 16 <= n; i += 16) {
    __m256i d = _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(a + i))),
                                 _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(b + i))));
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(d, d));
  }
  sum = (uint32_t)anneval__sum_epi32_256(acc);
#endif
  for (; i < n; i++) {
    int32_t d = (int32_t)a[i] - (int32_t)b[i];
    sum += (uint32_t)(d * d);
  }
  return sum;
}

/* Inner product of two vectors of n signed 8-bit codes. */
static inline int32_t anneval_dot_i8(const int8_t *a, const int8_t *b, size_t n) {
  size_t i = 0;
  int32_t sum = 0;
#if defined(__wasm_simd128__)
  v128_t acc = wasm_i32x4_splat(0);
  for (; i + 16 <= n; i += 16) {
    v128_t x = wasm_v128_load(a + i), y = wasm_v128_load(b + i);
    acc = wasm_i32x4_add(acc, wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(x),
                                                   wasm_i16x8_extend_low_i8x16(y)));
    acc = wasm_i32x4_add(acc, wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(x),
                                                   wasm_i16x8_extend_high_i8x16(y)));
  }
  sum = anneval__sum_i32x4(acc);
#elif defined(__AVX512BW__)
  __m512i acc = _mm512_setzero_si512();
  for (; i + 32 <= n; i += 32)
    acc = _mm512_add_epi32(
        acc, _mm512_madd_epi16(_mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(a + i))),
                               _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(b + i)))));
  sum = _mm512_reduce_add_epi32(acc);
#elif defined(__AVX2__)
  __m256i acc = _mm256_setzero_si256();
  for (; i + 16 <= n; i += 16)
    acc = _mm256_add_epi32(
        acc, _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(a + i))),
                               _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b + i)))));
  sum = anneval__sum_epi32_256(acc);
#endif
  for (; i < n; i++) sum += (int32_t)a[i] * (int32_t)b[i];
  return sum;
}

/* Squared Euclidean distance between two vectors of 4-bit codes packed by
 * anneval_pack_u4 into nbytes bytes each (two codes a byte). */
static inline uint32_t anneval_l2_sq_u4(const uint8_t *a, const uint8_t *b, size_t nbytes) {
  size_t i = 0;
  uint32_t sum = 0;
#if defined(__wasm_simd128__)
  v128_t mask = wasm_u8x16_splat(15), acc = wasm_i32x4_splat(0);
  for (; i + 16 <= nbytes; i += 16) {
    v128_t x = wasm_v128_load(a + i), y = wasm_v128_load(b + i);
    v128_t lo = anneval__absdiff_u8(wasm_v128_and(x, mask), wasm_v128_and(y, mask));
    v128_t hi = anneval__absdiff_u8(wasm_u8x16_shr(x, 4), wasm_u8x16_shr(y, 4));
    acc = wasm_i32x4_add(acc, wasm_i32x4_add(anneval__squares_u8(lo), anneval__squares_u8(hi)));
  }
  sum = (uint32_t)anneval__sum_i32x4(acc);
#elif defined(__AVX512BW__)
  __m256i mask = _mm256_set1_epi8(15);
  __m512i acc = _mm512_setzero_si512();
  for (; i + 32 <= nbytes; i += 32) {
    __m256i x = _mm256_loadu_si256((const __m256i *)(a + i));
    __m256i y = _mm256_loadu_si256((const __m256i *)(b + i));
    __m512i dl = _mm512_sub_epi16(_mm512_cvtepu8_epi16(_mm256_and_si256(x, mask)),
                                  _mm512_cvtepu8_epi16(_mm256_and_si256(y, mask)));
    __m512i dh = _mm512_sub_epi16(_mm512_cvtepu8_epi16(_mm256_and_si256(_mm256_srli_epi16(x, 4), mask)),
                                  _mm512_cvtepu8_epi16(_mm256_and_si256(_mm256_srli_epi16(y, 4), mask)));
    acc = _mm512_add_epi32(acc, _mm512_add_epi32(_mm512_madd_epi16(dl, dl), _mm512_madd_epi16(dh, dh)));
  }
  sum = (uint32_t)_mm512_reduce_add_epi32(acc);
#elif defined(__AVX2__)
  __m128i mask = _mm_set1_epi8(15);
  __m256i acc = _mm256_setzero_si256();
  for (; i + 16 <= nbytes; i += 16) {
    __m128i x = _mm_loadu_si128((const __m128i *)(a + i)), y = _mm_loadu_si128((const __m128i *)(b + i));
    __m256i dl = _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_and_si128(x, mask)),
                                  _mm256_cvtepu8_epi16(_mm_and_si128(y, mask)));
    __m256i dh = _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(x, 4), mask)),
                                  _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(y, 4), mask)));
    acc = _mm256_add_epi32(acc, _mm256_add_epi32(_mm256_madd_epi16(dl, dl), _mm256_madd_epi16(dh, dh)));
  }
  sum = (uint32_t)anneval__sum_epi32_256(acc);
#endif
  for (; i < nbytes; i++) {
    int32_t lo = (int32_t)(a[i] & 15) - (int32_t)(b[i] & 15);
    int32_t hi = (int32_t)(a[i] >> 4) - (int32_t)(b[i] >> 4);
    sum += (uint32_t)(lo * lo + hi * hi);
  }
  return sum;
}

/* Packs n 4-bit codes (each below 16) two to a byte, the first in the low
 * half, into out ((n + 1) / 2 bytes); an odd count is padded with a zero code,
 * which adds nothing to a distance between two packed vectors. */
static inline void anneval_pack_u4(const uint8_t *codes, size_t n, uint8_t *out) {
  for (size_t i = 0; i < n; i += 2)
    out[i / 2] = (uint8_t)((codes[i] & 15) | (i + 1 < n ? (codes[i + 1] & 15) << 4 : 0));
}

/* The float distances between floats and halves: re-ranking a kernel that
 * keeps its vectors in half the memory. `SQ` selects squared difference (1)
 * or product (0). */
static inline float anneval__f16_reduce(const float *a, const uint16_t *b, size_t n, int sq) {
  size_t i = 0;
  float sum = 0.0f;
#if defined(__wasm_simd128__)
  v128_t s0 = wasm_f32x4_splat(0), s1 = s0, s2 = s0, s3 = s0;
  for (; i + 16 <= n; i += 16) {
    v128_t x0 = wasm_v128_load(a + i), y0 = anneval__load_f16x4(b + i);
    v128_t x1 = wasm_v128_load(a + i + 4), y1 = anneval__load_f16x4(b + i + 4);
    v128_t x2 = wasm_v128_load(a + i + 8), y2 = anneval__load_f16x4(b + i + 8);
    v128_t x3 = wasm_v128_load(a + i + 12), y3 = anneval__load_f16x4(b + i + 12);
    if (sq) {
      x0 = wasm_f32x4_sub(x0, y0), y0 = x0;
      x1 = wasm_f32x4_sub(x1, y1), y1 = x1;
      x2 = wasm_f32x4_sub(x2, y2), y2 = x2;
      x3 = wasm_f32x4_sub(x3, y3), y3 = x3;
    }
    s0 = anneval__madd(s0, x0, y0);
    s1 = anneval__madd(s1, x1, y1);
    s2 = anneval__madd(s2, x2, y2);
    s3 = anneval__madd(s3, x3, y3);
  }
  sum = anneval__sum4(s0, s1, s2, s3);
#elif defined(__AVX512F__)
  __m512 s = _mm512_setzero_ps();
  for (; i + 16 <= n; i += 16) {
    __m512 x = _mm512_loadu_ps(a + i), y = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(b + i)));
    if (sq) x = _mm512_sub_ps(x, y), y = x;
    s = _mm512_fmadd_ps(x, y, s);
  }
  sum = _mm512_reduce_add_ps(s);
#elif defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
  __m256 s0 = _mm256_setzero_ps(), s1 = s0;
  for (; i + 16 <= n; i += 16) {
    __m256 x0 = _mm256_loadu_ps(a + i), y0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b + i)));
    __m256 x1 = _mm256_loadu_ps(a + i + 8),
           y1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b + i + 8)));
    if (sq) x0 = _mm256_sub_ps(x0, y0), y0 = x0, x1 = _mm256_sub_ps(x1, y1), y1 = x1;
    s0 = _mm256_fmadd_ps(x0, y0, s0);
    s1 = _mm256_fmadd_ps(x1, y1, s1);
  }
  sum = anneval__sum2(s0, s1);
#endif
  for (; i < n; i++) {
    float x = a[i], y = anneval_f32_from_f16(b[i]);
    sum += sq ? (x - y) * (x - y) : x * y;
  }
  return sum;
}

/* Squared Euclidean distance between n floats and n halves. */
static inline float anneval_l2_sq_f16(const float *a, const uint16_t *b, size_t n) {
  return anneval__f16_reduce(a, b, n, 1);
}

/* Inner product of n floats and n halves. */
static inline float anneval_dot_f16(const float *a, const uint16_t *b, size_t n) {
  return anneval__f16_reduce(a, b, n, 0);
}

/* A uniform scalar quantiser: `levels` evenly spaced values from `lo` in steps
 * of `step`. As every dimension shares the grid, the squared distance between
 * two code vectors times step^2 approximates that of the vectors. */
typedef struct anneval_sq {
  float lo, step;
  uint32_t levels;
} anneval_sq;

/* The grid of `bits`-bit codes (1 to 8) spanning the n values v. */
static inline anneval_sq anneval_sq_fit(const float *v, size_t n, unsigned bits) {
  float lo = n ? v[0] : 0.0f, hi = lo;
  for (size_t i = 1; i < n; i++) {
    lo = v[i] < lo ? v[i] : lo;
    hi = v[i] > hi ? v[i] : hi;
  }
  anneval_sq q;
  q.levels = 1u << (bits < 1 ? 1 : bits > 8 ? 8 : bits);
  q.lo = lo;
  q.step = hi > lo ? (hi - lo) / (float)(q.levels - 1) : 1.0f;
  return q;
}

/* The code nearest to x (values beyond the grid take its end codes). */
static inline uint8_t anneval_sq_code(const anneval_sq *q, float x) {
  float c = __builtin_roundf((x - q->lo) / q->step), top = (float)(q->levels - 1);
  if (!(c > 0.0f)) return 0; /* below the grid, or NaN */
  return (uint8_t)(c > top ? top : c);
}

/* The value code c stands for. */
static inline float anneval_sq_value(const anneval_sq *q, uint8_t c) { return q->lo + (float)c * q->step; }

#ifdef __cplusplus
}
#endif

#endif /* ANNEVAL_QUANT_H */
