/* The intrinsics quantised ANN kernels live on, in simd128 where SIMDe (0.8.2)
 * has a scalar loop per lane or nothing: the 8- and 16-bit dot products
 * (SSSE3/AVX2 maddubs, SSE2/AVX2 madd, AVX-512 VNNI dpbusd), the sum of
 * absolute byte differences, the F16C and AVX-512 half-precision
 * conversions, the bit counts, and prefetch. Every one gives x86's
 * exact answer, bit for bit (tests/intrinsics.rs checks each against the CPU
 * on random inputs); each 256- or 512-bit form is its 128-bit form on each
 * half or quarter.
 *
 * Included by anneval_x86.h, after SIMDe.
 */
#ifndef ANNEVAL_X86_INT_H
#define ANNEVAL_X86_INT_H

#define ANNEVAL__V(x) simde__m128i_to_wasm_v128(x)
#define ANNEVAL__I(x) simde__m128i_from_wasm_v128(x)

/* Lifts a 128-bit operation on simde__m128i to the 256- and 512-bit types. */
#define ANNEVAL__LIFT3(name, op)                                                          \
  static inline simde__m256i name##_256(simde__m256i s, simde__m256i a, simde__m256i b) { \
    simde__m256i_private s_ = simde__m256i_to_private(s), a_ = simde__m256i_to_private(a), \
                         b_ = simde__m256i_to_private(b), r_;                              \
    for (int i = 0; i < 2; i++) r_.m128i[i] = op(s_.m128i[i], a_.m128i[i], b_.m128i[i]);  \
    return simde__m256i_from_private(r_);                                                  \
  }                                                                                        \
  static inline simde__m512i name##_512(simde__m512i s, simde__m512i a, simde__m512i b) { \
    simde__m512i_private s_ = simde__m512i_to_private(s), a_ = simde__m512i_to_private(a), \
                         b_ = simde__m512i_to_private(b), r_;                              \
    for (int i = 0; i < 4; i++) r_.m128i[i] = op(s_.m128i[i], a_.m128i[i], b_.m128i[i]);  \
    return simde__m512i_from_private(r_);                                                  \
  }
#define ANNEVAL__LIFT2(name, op)                                                 \
  static inline simde__m256i name##_256(simde__m256i a, simde__m256i b) {        \
    simde__m256i_private a_ = simde__m256i_to_private(a),                        \
                         b_ = simde__m256i_to_private(b), r_;                    \
    for (int i = 0; i < 2; i++) r_.m128i[i] = op(a_.m128i[i], b_.m128i[i]);      \
    return simde__m256i_from_private(r_);                                        \
  }                                                                              \
  static inline simde__m512i name##_512(simde__m512i a, simde__m512i b) {        \
    simde__m512i_private a_ = simde__m512i_to_private(a),                        \
                         b_ = simde__m512i_to_private(b), r_;                    \
    for (int i = 0; i < 4; i++) r_.m128i[i] = op(a_.m128i[i], b_.m128i[i]);      \
    return simde__m512i_from_private(r_);                                        \
  }

/* The unsigned bytes of a at even and odd positions, widened to 16 bits. */
static inline v128_t anneval__u8_even(v128_t a) { return wasm_v128_and(a, wasm_i16x8_splat(0xff)); }
static inline v128_t anneval__u8_odd(v128_t a) { return wasm_u16x8_shr(a, 8); }
/* The signed bytes of b at even and odd positions, widened to 16 bits. */
static inline v128_t anneval__i8_even(v128_t b) { return wasm_i16x8_shr(wasm_i16x8_shl(b, 8), 8); }
static inline v128_t anneval__i8_odd(v128_t b) { return wasm_i16x8_shr(b, 8); }

/* pmaddwd: pairs of 16-bit products summed into 32 bits (wrapping, as x86). */
static inline simde__m128i anneval_madd_epi16(simde__m128i a, simde__m128i b) {
  return ANNEVAL__I(wasm_i32x4_dot_i16x8(ANNEVAL__V(a), ANNEVAL__V(b)));
}

/* pmaddubsw: unsigned bytes of a times signed bytes of b, adjacent pairs
 * summed with signed saturation to 16 bits. Each product fits in 16 bits. */
static inline simde__m128i anneval_maddubs_epi16(simde__m128i a, simde__m128i b) {
  v128_t a_ = ANNEVAL__V(a), b_ = ANNEVAL__V(b);
  v128_t even = wasm_i16x8_mul(anneval__u8_even(a_), anneval__i8_even(b_));
  v128_t odd = wasm_i16x8_mul(anneval__u8_odd(a_), anneval__i8_odd(b_));
  return ANNEVAL__I(wasm_i16x8_add_sat(even, odd));
}

/* vpdpbusd: src plus, in each 32-bit lane, the four products of unsigned
 * bytes of a and signed bytes of b (wrapping). */
static inline simde__m128i anneval_dpbusd_epi32(simde__m128i src, simde__m128i a, simde__m128i b) {
  v128_t a_ = ANNEVAL__V(a), b_ = ANNEVAL__V(b);
  v128_t even = wasm_i32x4_dot_i16x8(anneval__u8_even(a_), anneval__i8_even(b_));
  v128_t odd = wasm_i32x4_dot_i16x8(anneval__u8_odd(a_), anneval__i8_odd(b_));
  return ANNEVAL__I(wasm_i32x4_add(ANNEVAL__V(src), wasm_i32x4_add(even, odd)));
}

/* vpdpwssd: src plus, in each 32-bit lane, the two 16-bit products (wrapping). */
static inline simde__m128i anneval_dpwssd_epi32(simde__m128i src, simde__m128i a, simde__m128i b) {
  return ANNEVAL__I(
      wasm_i32x4_add(ANNEVAL__V(src), wasm_i32x4_dot_i16x8(ANNEVAL__V(a), ANNEVAL__V(b))));
}

/* psadbw: in each 64-bit lane, the sum of the eight absolute differences of
 * unsigned bytes (the L1 distance of 8-bit codes). */
static inline simde__m128i anneval_sad_epu8(simde__m128i a, simde__m128i b) {
  v128_t a_ = ANNEVAL__V(a), b_ = ANNEVAL__V(b);
  v128_t diff = wasm_v128_or(wasm_u8x16_sub_sat(a_, b_), wasm_u8x16_sub_sat(b_, a_));
  v128_t sums = wasm_u32x4_extadd_pairwise_u16x8(wasm_u16x8_extadd_pairwise_u8x16(diff));
  return ANNEVAL__I(wasm_i64x2_add(wasm_u64x2_shr(sums, 32),
                                   wasm_v128_and(sums, wasm_i64x2_splat(0xffffffff))));
}

ANNEVAL__LIFT2(anneval_sad_epu8, anneval_sad_epu8)
ANNEVAL__LIFT2(anneval_madd_epi16, anneval_madd_epi16)
ANNEVAL__LIFT2(anneval_maddubs_epi16, anneval_maddubs_epi16)
ANNEVAL__LIFT3(anneval_dpbusd_epi32, anneval_dpbusd_epi32)
ANNEVAL__LIFT3(anneval_dpwssd_epi32, anneval_dpwssd_epi32)

/* Half to single precision, exactly as vcvtph2ps: four halves (in the low 16
 * bits of each 32-bit lane) to four floats. Normal and subnormal halves are
 * their bits moved into a float and scaled by 2^112 (exact); infinities and
 * NaNs get the all-ones exponent, a NaN its payload and the quiet bit. */
static inline v128_t anneval__halves_to_floats(v128_t h) {
  v128_t sign = wasm_i32x4_shl(wasm_v128_and(h, wasm_i32x4_splat(0x8000)), 16);
  v128_t magnitude = wasm_v128_and(h, wasm_i32x4_splat(0x7fff));
  v128_t moved = wasm_i32x4_shl(magnitude, 13);
  v128_t finite = wasm_f32x4_mul(moved, wasm_f32x4_splat(0x1p112f));
  v128_t special = wasm_v128_or(moved, wasm_i32x4_splat(0x7f800000));
  v128_t is_nan = wasm_i32x4_gt(magnitude, wasm_i32x4_splat(0x7c00));
  special = wasm_v128_or(special, wasm_v128_and(is_nan, wasm_i32x4_splat(0x00400000)));
  v128_t is_special = wasm_i32x4_gt(magnitude, wasm_i32x4_splat(0x7bff));
  return wasm_v128_or(sign, wasm_v128_bitselect(special, finite, is_special));
}

/* Single to half precision rounded to nearest, ties to even, exactly as
 * vcvtps2ph with rounding 0: one 32-bit lane each, in its low 16 bits. The
 * three cases (F. Giesen's branch-free conversion): infinity or NaN (NaNs
 * quiet, payload's top bits kept); a half subnormal, which a float addition of
 * 0.5 rounds into place; a normal, rebiased with a carry that rounds ties to
 * even. Overflow rounds to infinity as x86 does. */
static inline v128_t anneval__floats_to_halves(v128_t f) {
  v128_t sign = wasm_v128_and(f, wasm_i32x4_splat((int32_t)0x80000000u));
  v128_t u = wasm_v128_xor(f, sign);
  v128_t is_nan = wasm_i32x4_gt(u, wasm_i32x4_splat(0x7f800000));
  v128_t nan = wasm_v128_or(wasm_i32x4_splat(0x7e00),
                            wasm_v128_and(wasm_u32x4_shr(u, 13), wasm_i32x4_splat(0x3ff)));
  v128_t huge = wasm_v128_bitselect(nan, wasm_i32x4_splat(0x7c00), is_nan);
  v128_t small = wasm_i32x4_sub(wasm_f32x4_add(u, wasm_f32x4_splat(0.5f)), wasm_f32x4_splat(0.5f));
  v128_t odd = wasm_v128_and(wasm_u32x4_shr(u, 13), wasm_i32x4_splat(1));
  v128_t normal = wasm_u32x4_shr(
      wasm_i32x4_add(wasm_i32x4_add(u, wasm_i32x4_splat((int32_t)0xc8000fffu)), odd), 13);
  v128_t is_huge = wasm_i32x4_gt(u, wasm_i32x4_splat(0x477fffff));
  v128_t is_small = wasm_i32x4_lt(u, wasm_i32x4_splat(0x38800000));
  v128_t half = wasm_v128_bitselect(huge, wasm_v128_bitselect(small, normal, is_small), is_huge);
  return wasm_v128_or(half, wasm_u32x4_shr(sign, 16));
}

#ifndef _MM_FROUND_NO_EXC
#define _MM_FROUND_NO_EXC SIMDE_MM_FROUND_NO_EXC
#endif
#ifndef _MM_FROUND_RAISE_EXC
#define _MM_FROUND_RAISE_EXC SIMDE_MM_FROUND_RAISE_EXC
#endif

/* The rounding argument of a conversion to half precision: only round to
 * nearest has a fast form (the only one ANN code uses). */
#define ANNEVAL__NEAREST(r) (((r) & 3) == 0 || ((r) & 4) != 0)
#define ANNEVAL__ROUNDING_CHECK                                                          \
  __attribute__((diagnose_if(!ANNEVAL__NEAREST(rounding),                              \
                             "anneval: in the sandbox a conversion to half precision " \
                             "rounds to nearest only; pass _MM_FROUND_TO_NEAREST_INT", \
                             "error")))

static inline simde__m128 anneval_cvtph_ps(simde__m128i a) {
  return simde__m128_from_wasm_v128(anneval__halves_to_floats(wasm_u32x4_extend_low_u16x8(ANNEVAL__V(a))));
}
static inline simde__m256 anneval_cvtph_ps_256(simde__m128i a) {
  simde__m256_private r_;
  r_.m128[0] = anneval_cvtph_ps(a);
  r_.m128[1] = simde__m128_from_wasm_v128(
      anneval__halves_to_floats(wasm_u32x4_extend_high_u16x8(ANNEVAL__V(a))));
  return simde__m256_from_private(r_);
}
static inline simde__m512 anneval_cvtph_ps_512(simde__m256i a) {
  simde__m256i_private a_ = simde__m256i_to_private(a);
  simde__m512_private r_;
  for (int i = 0; i < 2; i++) r_.m256[i] = anneval_cvtph_ps_256(a_.m128i[i]);
  return simde__m512_from_private(r_);
}

static inline simde__m128i anneval_cvtps_ph(simde__m128 a, const int rounding) ANNEVAL__ROUNDING_CHECK {
  (void)rounding;
  v128_t h = anneval__floats_to_halves(simde__m128_to_wasm_v128(a));
  return ANNEVAL__I(wasm_u16x8_narrow_i32x4(h, wasm_i32x4_splat(0)));
}
static inline simde__m128i anneval_cvtps_ph_256(simde__m256 a, const int rounding) ANNEVAL__ROUNDING_CHECK {
  (void)rounding;
  simde__m256_private a_ = simde__m256_to_private(a);
  return ANNEVAL__I(wasm_u16x8_narrow_i32x4(anneval__floats_to_halves(simde__m128_to_wasm_v128(a_.m128[0])),
                                            anneval__floats_to_halves(simde__m128_to_wasm_v128(a_.m128[1]))));
}
static inline simde__m256i anneval_cvtps_ph_512(simde__m512 a, const int rounding) ANNEVAL__ROUNDING_CHECK {
  simde__m512_private a_ = simde__m512_to_private(a);
  simde__m256i_private r_;
  for (int i = 0; i < 2; i++) r_.m128i[i] = anneval_cvtps_ph_256(a_.m256[i], rounding);
  return simde__m256i_from_private(r_);
}

/* Eight 32-bit integers to floats, rounded to nearest as x86 does. */
static inline simde__m256 anneval_cvtepi32_ps_256(simde__m256i a) {
  simde__m256i_private a_ = simde__m256i_to_private(a);
  simde__m256_private r_;
  for (int i = 0; i < 2; i++)
    r_.m128[i] = simde__m128_from_wasm_v128(wasm_f32x4_convert_i32x4(ANNEVAL__V(a_.m128i[i])));
  return simde__m256_from_private(r_);
}

/* The AVX-512 sum of sixteen 32-bit integers (wrapping). */
static inline int anneval_reduce_add_epi32_512(simde__m512i a) {
  simde__m512i_private a_ = simde__m512i_to_private(a);
  v128_t x = wasm_i32x4_add(wasm_i32x4_add(ANNEVAL__V(a_.m128i[0]), ANNEVAL__V(a_.m128i[2])),
                            wasm_i32x4_add(ANNEVAL__V(a_.m128i[1]), ANNEVAL__V(a_.m128i[3])));
  x = wasm_i32x4_add(x, wasm_i32x4_shuffle(x, x, 2, 3, 2, 3));
  x = wasm_i32x4_add(x, wasm_i32x4_shuffle(x, x, 1, 1, 1, 1));
  return wasm_i32x4_extract_lane(x, 0);
}

/* POPCNT, LZCNT and BMI's counts: one WebAssembly instruction each. */
static inline int anneval_popcnt_u32(uint32_t x) { return __builtin_popcount(x); }
static inline long long anneval_popcnt_u64(uint64_t x) { return __builtin_popcountll(x); }
static inline unsigned anneval_lzcnt_u32(uint32_t x) { return x ? (unsigned)__builtin_clz(x) : 32u; }
static inline uint64_t anneval_lzcnt_u64(uint64_t x) { return x ? (uint64_t)__builtin_clzll(x) : 64u; }
static inline unsigned anneval_tzcnt_u32(uint32_t x) { return x ? (unsigned)__builtin_ctz(x) : 32u; }
static inline uint64_t anneval_tzcnt_u64(uint64_t x) { return x ? (uint64_t)__builtin_ctzll(x) : 64u; }
static inline uint32_t anneval_blsr_u32(uint32_t x) { return x & (x - 1); }
static inline uint64_t anneval_blsr_u64(uint64_t x) { return x & (x - 1); }

/* The AVX-512 sum of sixteen floats, in the order x86 compilers add them:
 * the two 256-bit halves, then the 128-bit halves, then pairs. */
static inline float anneval_reduce_add_ps_512(simde__m512 a) {
  simde__m512_private a_ = simde__m512_to_private(a);
  v128_t q0 = simde__m128_to_wasm_v128(a_.m128[0]), q1 = simde__m128_to_wasm_v128(a_.m128[1]),
         q2 = simde__m128_to_wasm_v128(a_.m128[2]), q3 = simde__m128_to_wasm_v128(a_.m128[3]);
  v128_t x = wasm_f32x4_add(wasm_f32x4_add(q0, q2), wasm_f32x4_add(q1, q3));
  x = wasm_f32x4_add(x, wasm_i32x4_shuffle(x, x, 2, 3, 2, 3));
  x = wasm_f32x4_add(x, wasm_i32x4_shuffle(x, x, 1, 1, 1, 1));
  return wasm_f32x4_extract_lane(x, 0);
}

/* Prefetch is the SDK's (see anneval.h): WebAssembly has no prefetch
 * instruction, and a hint that does nothing would make tuned prefetching
 * look worthless in the sandbox. */
static inline void anneval__prefetch(const void *p) {
  uintptr_t end = (uintptr_t)__builtin_wasm_memory_size(0) * 65536u;
  uintptr_t addr = (uintptr_t)p < end ? (uintptr_t)p : end - 1;
  (void)*(volatile const unsigned char *)addr;
}

#undef _mm_sad_epu8
#undef _mm256_sad_epu8
#undef _mm512_sad_epu8
#undef _mm256_cvtepi32_ps
#undef _mm_madd_epi16
#undef _mm256_madd_epi16
#undef _mm512_madd_epi16
#undef _mm_maddubs_epi16
#undef _mm256_maddubs_epi16
#undef _mm512_maddubs_epi16
#undef _mm_dpbusd_epi32
#undef _mm256_dpbusd_epi32
#undef _mm512_dpbusd_epi32
#undef _mm_dpwssd_epi32
#undef _mm256_dpwssd_epi32
#undef _mm512_dpwssd_epi32
#undef _mm_cvtph_ps
#undef _mm256_cvtph_ps
#undef _mm512_cvtph_ps
#undef _mm_cvtps_ph
#undef _mm256_cvtps_ph
#undef _mm512_cvtps_ph
#undef _mm_prefetch
#undef _mm_popcnt_u32
#undef _mm_popcnt_u64
#undef _mm512_reduce_add_ps
#undef _mm512_reduce_add_epi32
#define _mm_sad_epu8(a, b) anneval_sad_epu8(a, b)
#define _mm256_sad_epu8(a, b) anneval_sad_epu8_256(a, b)
#define _mm512_sad_epu8(a, b) anneval_sad_epu8_512(a, b)
#define _mm256_cvtepi32_ps(a) anneval_cvtepi32_ps_256(a)
#define _mm_madd_epi16(a, b) anneval_madd_epi16(a, b)
#define _mm256_madd_epi16(a, b) anneval_madd_epi16_256(a, b)
#define _mm512_madd_epi16(a, b) anneval_madd_epi16_512(a, b)
#define _mm_maddubs_epi16(a, b) anneval_maddubs_epi16(a, b)
#define _mm256_maddubs_epi16(a, b) anneval_maddubs_epi16_256(a, b)
#define _mm512_maddubs_epi16(a, b) anneval_maddubs_epi16_512(a, b)
#define _mm_dpbusd_epi32(s, a, b) anneval_dpbusd_epi32(s, a, b)
#define _mm256_dpbusd_epi32(s, a, b) anneval_dpbusd_epi32_256(s, a, b)
#define _mm512_dpbusd_epi32(s, a, b) anneval_dpbusd_epi32_512(s, a, b)
#define _mm_dpwssd_epi32(s, a, b) anneval_dpwssd_epi32(s, a, b)
#define _mm256_dpwssd_epi32(s, a, b) anneval_dpwssd_epi32_256(s, a, b)
#define _mm512_dpwssd_epi32(s, a, b) anneval_dpwssd_epi32_512(s, a, b)
#define _mm_cvtph_ps(a) anneval_cvtph_ps(a)
#define _mm256_cvtph_ps(a) anneval_cvtph_ps_256(a)
#define _mm512_cvtph_ps(a) anneval_cvtph_ps_512(a)
#define _mm_cvtps_ph(a, r) anneval_cvtps_ph(a, r)
#define _mm256_cvtps_ph(a, r) anneval_cvtps_ph_256(a, r)
#define _mm512_cvtps_ph(a, r) anneval_cvtps_ph_512(a, r)
#define _mm_popcnt_u32(x) anneval_popcnt_u32(x)
#define _mm_popcnt_u64(x) anneval_popcnt_u64(x)
#define _popcnt32(x) anneval_popcnt_u32(x)
#define _popcnt64(x) anneval_popcnt_u64(x)
#define _lzcnt_u32(x) anneval_lzcnt_u32(x)
#define _lzcnt_u64(x) anneval_lzcnt_u64(x)
#define _tzcnt_u32(x) anneval_tzcnt_u32(x)
#define _tzcnt_u64(x) anneval_tzcnt_u64(x)
#define _blsr_u32(x) anneval_blsr_u32(x)
#define _blsr_u64(x) anneval_blsr_u64(x)
#define _mm512_reduce_add_ps(a) anneval_reduce_add_ps_512(a)
#define _mm512_reduce_add_epi32(a) anneval_reduce_add_epi32_512(a)
#define _mm_prefetch(p, hint) anneval__prefetch((const void *)(p))
#ifndef __builtin_prefetch
#define __builtin_prefetch(p, ...) anneval__prefetch((const void *)(p))
#endif

#endif /* ANNEVAL_X86_INT_H */
