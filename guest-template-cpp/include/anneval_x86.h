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

#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx2.h>
#include <simde/x86/fma.h>

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

#endif /* ANNEVAL_X86_H */
