/* x86 SIMD intrinsics for kernels built for the WebAssembly sandbox.
 *
 * Kernels written the way GLASS and hnswlib are (AVX2 and FMA through
 * <immintrin.h>) compile for wasm32 through SIMDe, which turns each x86
 * intrinsic into simd128 code. SIMDe keeps fused multiply-add exact, and with
 * no fused instruction in simd128 it does that one lane at a time in scalar
 * code (about ten times slower). Here every FMA-family intrinsic is relaxed
 * SIMD's f32x4/f64x2 madd instead, which the sandbox runs fused: one rounding,
 * the same answer as x86's FMA (a build without relaxed SIMD falls back to a
 * multiply then an add, rounding twice).
 *
 * Native builds never see this file: they use the compiler's own headers.
 */
#ifndef ANNEVAL_X86_H
#define ANNEVAL_X86_H

/* The build defines the x86 feature macros this layer provides (so code that
 * dispatches on __AVX2__ takes its vector path); SIMDe must still translate
 * every intrinsic, never reach for the x86 instructions those macros name. */
#define SIMDE_X86_MMX_NO_NATIVE
#define SIMDE_X86_SSE_NO_NATIVE
#define SIMDE_X86_SSE2_NO_NATIVE
#define SIMDE_X86_SSE3_NO_NATIVE
#define SIMDE_X86_SSSE3_NO_NATIVE
#define SIMDE_X86_SSE4_1_NO_NATIVE
#define SIMDE_X86_SSE4_2_NO_NATIVE
#define SIMDE_X86_AVX_NO_NATIVE
#define SIMDE_X86_AVX2_NO_NATIVE
#define SIMDE_X86_FMA_NO_NATIVE
#define SIMDE_X86_F16C_NO_NATIVE
#define SIMDE_X86_AVX512F_NO_NATIVE
#define SIMDE_X86_AVX512BW_NO_NATIVE
#define SIMDE_X86_AVX512VL_NO_NATIVE
#define SIMDE_X86_AVX512DQ_NO_NATIVE
#define SIMDE_X86_AVX512CD_NO_NATIVE
#define SIMDE_X86_AVX512VNNI_NO_NATIVE
#define SIMDE_X86_AVX512BF16_NO_NATIVE
#define SIMDE_X86_AVX512BITALG_NO_NATIVE
#define SIMDE_X86_AVX512VPOPCNTDQ_NO_NATIVE
#define SIMDE_X86_AVX512VBMI_NO_NATIVE
#define SIMDE_X86_AVX512VBMI2_NO_NATIVE
#define SIMDE_X86_AVX512VP2INTERSECT_NO_NATIVE
#define SIMDE_X86_AVX5124VNNIW_NO_NATIVE
#define SIMDE_X86_GFNI_NO_NATIVE
#define SIMDE_X86_PCLMUL_NO_NATIVE
#define SIMDE_X86_VPCLMULQDQ_NO_NATIVE
#define SIMDE_X86_XOP_NO_NATIVE
#define SIMDE_X86_SVML_NO_NATIVE

/* Half precision as SIMDe's portable type: clang 16 has no _Float16 for wasm32. */
#define SIMDE_FLOAT16_API 1 /* SIMDE_FLOAT16_API_PORTABLE */

#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx2.h>
#include <simde/x86/fma.h>
#include <simde/x86/f16c.h>
#include <simde/x86/avx512.h>
#include <wasm_simd128.h>

/* a * b + c, rounded once (twice without relaxed SIMD). */
static inline simde__m128 anneval__madd_ps(simde__m128 a, simde__m128 b, simde__m128 c) {
#if defined(__wasm_relaxed_simd__)
  return simde__m128_from_wasm_v128((v128_t)__builtin_wasm_relaxed_madd_f32x4(
      (__f32x4)simde__m128_to_wasm_v128(a), (__f32x4)simde__m128_to_wasm_v128(b),
      (__f32x4)simde__m128_to_wasm_v128(c)));
#else
  return simde_mm_add_ps(simde_mm_mul_ps(a, b), c);
#endif
}
static inline simde__m128d anneval__madd_pd(simde__m128d a, simde__m128d b, simde__m128d c) {
#if defined(__wasm_relaxed_simd__)
  return simde__m128d_from_wasm_v128((v128_t)__builtin_wasm_relaxed_madd_f64x2(
      (__f64x2)simde__m128d_to_wasm_v128(a), (__f64x2)simde__m128d_to_wasm_v128(b),
      (__f64x2)simde__m128d_to_wasm_v128(c)));
#else
  return simde_mm_add_pd(simde_mm_mul_pd(a, b), c);
#endif
}
/* The 256-bit forms, one 128-bit half at a time. */
static inline simde__m256 anneval__madd_256ps(simde__m256 a, simde__m256 b, simde__m256 c) {
  simde__m256_private a_ = simde__m256_to_private(a), b_ = simde__m256_to_private(b),
                      c_ = simde__m256_to_private(c), r_;
  r_.m128[0] = anneval__madd_ps(a_.m128[0], b_.m128[0], c_.m128[0]);
  r_.m128[1] = anneval__madd_ps(a_.m128[1], b_.m128[1], c_.m128[1]);
  return simde__m256_from_private(r_);
}
static inline simde__m256d anneval__madd_256pd(simde__m256d a, simde__m256d b, simde__m256d c) {
  simde__m256d_private a_ = simde__m256d_to_private(a), b_ = simde__m256d_to_private(b),
                       c_ = simde__m256d_to_private(c), r_;
  r_.m128d[0] = anneval__madd_pd(a_.m128d[0], b_.m128d[0], c_.m128d[0]);
  r_.m128d[1] = anneval__madd_pd(a_.m128d[1], b_.m128d[1], c_.m128d[1]);
  return simde__m256d_from_private(r_);
}

/* The 512-bit forms, a quarter at a time. */
static inline simde__m512 anneval__madd_512ps(simde__m512 a, simde__m512 b, simde__m512 c) {
  simde__m512_private a_ = simde__m512_to_private(a), b_ = simde__m512_to_private(b),
                      c_ = simde__m512_to_private(c), r_;
  for (int i = 0; i < 4; i++) r_.m128[i] = anneval__madd_ps(a_.m128[i], b_.m128[i], c_.m128[i]);
  return simde__m512_from_private(r_);
}
static inline simde__m512 anneval_fmadd_512ps(simde__m512 a, simde__m512 b, simde__m512 c) {
  return anneval__madd_512ps(a, b, c);
}
static inline simde__m512 anneval_fmsub_512ps(simde__m512 a, simde__m512 b, simde__m512 c) {
  return anneval__madd_512ps(a, b, simde_mm512_xor_ps(c, simde_mm512_set1_ps(-0.0f)));
}
static inline simde__m512 anneval_fnmadd_512ps(simde__m512 a, simde__m512 b, simde__m512 c) {
  return anneval__madd_512ps(simde_mm512_xor_ps(a, simde_mm512_set1_ps(-0.0f)), b, c);
}

/* fmadd: a * b + c; fmsub: a * b - c; fnmadd: c - a * b. */
static inline simde__m128 anneval_fmadd_128ps(simde__m128 a, simde__m128 b, simde__m128 c) {
  return anneval__madd_ps(a, b, c);
}
static inline simde__m128 anneval_fmsub_128ps(simde__m128 a, simde__m128 b, simde__m128 c) {
  return anneval__madd_ps(a, b, simde_mm_xor_ps(c, simde_mm_set1_ps(-0.0f)));
}
static inline simde__m128 anneval_fnmadd_128ps(simde__m128 a, simde__m128 b, simde__m128 c) {
  return anneval__madd_ps(simde_mm_xor_ps(a, simde_mm_set1_ps(-0.0f)), b, c);
}
static inline simde__m128d anneval_fmadd_128pd(simde__m128d a, simde__m128d b, simde__m128d c) {
  return anneval__madd_pd(a, b, c);
}
static inline simde__m128d anneval_fmsub_128pd(simde__m128d a, simde__m128d b, simde__m128d c) {
  return anneval__madd_pd(a, b, simde_mm_xor_pd(c, simde_mm_set1_pd(-0.0)));
}
static inline simde__m128d anneval_fnmadd_128pd(simde__m128d a, simde__m128d b, simde__m128d c) {
  return anneval__madd_pd(simde_mm_xor_pd(a, simde_mm_set1_pd(-0.0)), b, c);
}
static inline simde__m256 anneval_fmadd_ps(simde__m256 a, simde__m256 b, simde__m256 c) {
  return anneval__madd_256ps(a, b, c);
}
static inline simde__m256 anneval_fmsub_ps(simde__m256 a, simde__m256 b, simde__m256 c) {
  return anneval__madd_256ps(a, b, simde_mm256_xor_ps(c, simde_mm256_set1_ps(-0.0f)));
}
static inline simde__m256 anneval_fnmadd_ps(simde__m256 a, simde__m256 b, simde__m256 c) {
  return anneval__madd_256ps(simde_mm256_xor_ps(a, simde_mm256_set1_ps(-0.0f)), b, c);
}
static inline simde__m256d anneval_fmadd_pd(simde__m256d a, simde__m256d b, simde__m256d c) {
  return anneval__madd_256pd(a, b, c);
}
static inline simde__m256d anneval_fmsub_pd(simde__m256d a, simde__m256d b, simde__m256d c) {
  return anneval__madd_256pd(a, b, simde_mm256_xor_pd(c, simde_mm256_set1_pd(-0.0)));
}
static inline simde__m256d anneval_fnmadd_pd(simde__m256d a, simde__m256d b, simde__m256d c) {
  return anneval__madd_256pd(simde_mm256_xor_pd(a, simde_mm256_set1_pd(-0.0)), b, c);
}

#undef _mm_fmadd_ps
#undef _mm_fmsub_ps
#undef _mm_fnmadd_ps
#undef _mm_fmadd_pd
#undef _mm_fmsub_pd
#undef _mm_fnmadd_pd
#undef _mm256_fmadd_ps
#undef _mm256_fmsub_ps
#undef _mm256_fnmadd_ps
#undef _mm256_fmadd_pd
#undef _mm256_fmsub_pd
#undef _mm256_fnmadd_pd
#undef _mm512_fmadd_ps
#undef _mm512_fmsub_ps
#undef _mm512_fnmadd_ps
#define _mm512_fmadd_ps(a, b, c) anneval_fmadd_512ps(a, b, c)
#define _mm512_fmsub_ps(a, b, c) anneval_fmsub_512ps(a, b, c)
#define _mm512_fnmadd_ps(a, b, c) anneval_fnmadd_512ps(a, b, c)
#define _mm_fmadd_ps(a, b, c) anneval_fmadd_128ps(a, b, c)
#define _mm_fmsub_ps(a, b, c) anneval_fmsub_128ps(a, b, c)
#define _mm_fnmadd_ps(a, b, c) anneval_fnmadd_128ps(a, b, c)
#define _mm_fmadd_pd(a, b, c) anneval_fmadd_128pd(a, b, c)
#define _mm_fmsub_pd(a, b, c) anneval_fmsub_128pd(a, b, c)
#define _mm_fnmadd_pd(a, b, c) anneval_fnmadd_128pd(a, b, c)
#define _mm256_fmadd_ps(a, b, c) anneval_fmadd_ps(a, b, c)
#define _mm256_fmsub_ps(a, b, c) anneval_fmsub_ps(a, b, c)
#define _mm256_fnmadd_ps(a, b, c) anneval_fnmadd_ps(a, b, c)
#define _mm256_fmadd_pd(a, b, c) anneval_fmadd_pd(a, b, c)
#define _mm256_fmsub_pd(a, b, c) anneval_fmsub_pd(a, b, c)
#define _mm256_fnmadd_pd(a, b, c) anneval_fnmadd_pd(a, b, c)

#include "anneval_x86_int.h"

#endif /* ANNEVAL_X86_H */
