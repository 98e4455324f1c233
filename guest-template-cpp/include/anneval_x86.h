/* x86 SIMD intrinsics for kernels built for the WebAssembly sandbox.
 *
 * Kernels written the way GLASS and hnswlib are (AVX2 and FMA through
 * <immintrin.h>) compile for wasm32 through SIMDe, which turns each x86
 * intrinsic into simd128 code. SIMDe keeps fused multiply-add exact, and with
 * no fused instruction in simd128 it does that one lane at a time in scalar
 * code (about ten times slower); here every FMA-family intrinsic is a
 * multiply then an add instead, as a compiler contracting a*b+c would do,
 * which rounds twice where x86 rounds once.
 *
 * Native builds never see this file: they use the compiler's own headers.
 */
#ifndef ANNEVAL_X86_H
#define ANNEVAL_X86_H

#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx2.h>
#include <simde/x86/fma.h>

static inline simde__m128 anneval_fmadd_128ps(simde__m128 a, simde__m128 b, simde__m128 c) {
  return simde_mm_add_ps(simde_mm_mul_ps(a, b), c);
}
static inline simde__m128 anneval_fmsub_128ps(simde__m128 a, simde__m128 b, simde__m128 c) {
  return simde_mm_sub_ps(simde_mm_mul_ps(a, b), c);
}
static inline simde__m128 anneval_fnmadd_128ps(simde__m128 a, simde__m128 b, simde__m128 c) {
  return simde_mm_sub_ps(c, simde_mm_mul_ps(a, b));
}
static inline simde__m128d anneval_fmadd_128pd(simde__m128d a, simde__m128d b, simde__m128d c) {
  return simde_mm_add_pd(simde_mm_mul_pd(a, b), c);
}
static inline simde__m128d anneval_fmsub_128pd(simde__m128d a, simde__m128d b, simde__m128d c) {
  return simde_mm_sub_pd(simde_mm_mul_pd(a, b), c);
}
static inline simde__m128d anneval_fnmadd_128pd(simde__m128d a, simde__m128d b, simde__m128d c) {
  return simde_mm_sub_pd(c, simde_mm_mul_pd(a, b));
}
static inline simde__m256 anneval_fmadd_ps(simde__m256 a, simde__m256 b, simde__m256 c) {
  return simde_mm256_add_ps(simde_mm256_mul_ps(a, b), c);
}
static inline simde__m256 anneval_fmsub_ps(simde__m256 a, simde__m256 b, simde__m256 c) {
  return simde_mm256_sub_ps(simde_mm256_mul_ps(a, b), c);
}
static inline simde__m256 anneval_fnmadd_ps(simde__m256 a, simde__m256 b, simde__m256 c) {
  return simde_mm256_sub_ps(c, simde_mm256_mul_ps(a, b));
}
static inline simde__m256d anneval_fmadd_pd(simde__m256d a, simde__m256d b, simde__m256d c) {
  return simde_mm256_add_pd(simde_mm256_mul_pd(a, b), c);
}
static inline simde__m256d anneval_fmsub_pd(simde__m256d a, simde__m256d b, simde__m256d c) {
  return simde_mm256_sub_pd(simde_mm256_mul_pd(a, b), c);
}
static inline simde__m256d anneval_fnmadd_pd(simde__m256d a, simde__m256d b, simde__m256d c) {
  return simde_mm256_sub_pd(c, simde_mm256_mul_pd(a, b));
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
