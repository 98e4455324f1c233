/* anneval's SDK for C kernels, and the core the C++ SDK (anneval.hpp) builds on.
 *
 * A C candidate is one file, kernel.c, that includes this header and defines
 * the five functions of the contract at the bottom. Everything here compiles
 * to WebAssembly simd128 with relaxed-SIMD fused multiply-add for the sandbox
 * (which runs it as one rounding, as x86's FMA does) and, from the same
 * source, to AVX-512 or AVX2 with FMA for the native engine (clang -O3
 * -march=native on such a CPU). Quantised codes and half-precision vectors
 * are in anneval_quant.h, which this header includes.
 */
#ifndef ANNEVAL_H
#define ANNEVAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__wasm_simd128__)
#include <wasm_simd128.h>
#elif defined(__AVX2__)
#include <immintrin.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* How distances are measured. For angular data the host hands the kernel
 * unit-normalised vectors, so 1 - dot(a, b) is the cosine distance. */
typedef enum anneval_metric { ANNEVAL_EUCLIDEAN = 0, ANNEVAL_ANGULAR = 1 } anneval_metric;

/* Marks a missing result: a query answered with fewer than k ids is padded
 * with it, and the host reports it as invalid output. */
#define ANNEVAL_NO_ID UINT32_MAX

/* Floats handled per unrolled loop iteration on every target: vectors whose
 * length is a multiple of this never reach the scalar tail. */
#define ANNEVAL_BLOCK 16

/* Rounds dim up to a whole number of SIMD blocks; zero padding changes
 * neither the squared distance nor the dot product. */
static inline size_t anneval_padded_dim(size_t dim) {
  return (dim + ANNEVAL_BLOCK - 1) / ANNEVAL_BLOCK * ANNEVAL_BLOCK;
}

#if defined(__wasm_simd128__)
/* acc + a * b, lane by lane: fused (one rounding) with relaxed SIMD, which the
 * sandbox runs deterministically; a multiply then an add without it. */
static inline v128_t anneval__madd(v128_t acc, v128_t a, v128_t b) {
#if defined(__wasm_relaxed_simd__)
  return (v128_t)__builtin_wasm_relaxed_madd_f32x4((__f32x4)a, (__f32x4)b, (__f32x4)acc);
#else
  return wasm_f32x4_add(acc, wasm_f32x4_mul(a, b));
#endif
}

/* The sum of four accumulators' lanes, pairwise. */
static inline float anneval__sum4(v128_t s0, v128_t s1, v128_t s2, v128_t s3) {
  v128_t s = wasm_f32x4_add(wasm_f32x4_add(s0, s1), wasm_f32x4_add(s2, s3));
  return (wasm_f32x4_extract_lane(s, 0) + wasm_f32x4_extract_lane(s, 1)) +
         (wasm_f32x4_extract_lane(s, 2) + wasm_f32x4_extract_lane(s, 3));
}
#elif defined(__AVX2__) && defined(__FMA__)
/* The sum of two accumulators' lanes. */
static inline float anneval__sum2(__m256 s0, __m256 s1) {
  __m256 s = _mm256_add_ps(s0, s1);
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
  return _mm_cvtss_f32(h);
}
#endif

/* Squared Euclidean distance between a and b (n floats each). */
static inline float anneval_l2_sq(const float *a, const float *b, size_t n) {
  size_t i = 0;
  float sum = 0.0f;
#if defined(__wasm_simd128__)
  v128_t s0 = wasm_f32x4_splat(0), s1 = s0, s2 = s0, s3 = s0;
  for (; i + 16 <= n; i += 16) {
    v128_t d0 = wasm_f32x4_sub(wasm_v128_load(a + i), wasm_v128_load(b + i));
    v128_t d1 = wasm_f32x4_sub(wasm_v128_load(a + i + 4), wasm_v128_load(b + i + 4));
    v128_t d2 = wasm_f32x4_sub(wasm_v128_load(a + i + 8), wasm_v128_load(b + i + 8));
    v128_t d3 = wasm_f32x4_sub(wasm_v128_load(a + i + 12), wasm_v128_load(b + i + 12));
    s0 = anneval__madd(s0, d0, d0);
    s1 = anneval__madd(s1, d1, d1);
    s2 = anneval__madd(s2, d2, d2);
    s3 = anneval__madd(s3, d3, d3);
  }
  sum = anneval__sum4(s0, s1, s2, s3);
#elif defined(__AVX512F__)
  __m512 s0 = _mm512_setzero_ps(), s1 = s0;
  for (; i + 32 <= n; i += 32) {
    __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
    __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
    s0 = _mm512_fmadd_ps(d0, d0, s0);
    s1 = _mm512_fmadd_ps(d1, d1, s1);
  }
  if (i + 16 <= n) {
    __m512 d = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
    s0 = _mm512_fmadd_ps(d, d, s0);
    i += 16;
  }
  sum = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
#elif defined(__AVX2__) && defined(__FMA__)
  __m256 s0 = _mm256_setzero_ps(), s1 = s0;
  for (; i + 16 <= n; i += 16) {
    __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
    s0 = _mm256_fmadd_ps(d0, d0, s0);
    s1 = _mm256_fmadd_ps(d1, d1, s1);
  }
  sum = anneval__sum2(s0, s1);
#endif
  for (; i < n; i++) {
    float d = a[i] - b[i];
    sum += d * d;
  }
  return sum;
}

/* Dot product of a and b (n floats each). */
static inline float anneval_dot(const float *a, const float *b, size_t n) {
  size_t i = 0;
  float sum = 0.0f;
#if defined(__wasm_simd128__)
  v128_t s0 = wasm_f32x4_splat(0), s1 = s0, s2 = s0, s3 = s0;
  for (; i + 16 <= n; i += 16) {
    s0 = anneval__madd(s0, wasm_v128_load(a + i), wasm_v128_load(b + i));
    s1 = anneval__madd(s1, wasm_v128_load(a + i + 4), wasm_v128_load(b + i + 4));
    s2 = anneval__madd(s2, wasm_v128_load(a + i + 8), wasm_v128_load(b + i + 8));
    s3 = anneval__madd(s3, wasm_v128_load(a + i + 12), wasm_v128_load(b + i + 12));
  }
  sum = anneval__sum4(s0, s1, s2, s3);
#elif defined(__AVX512F__)
  __m512 s0 = _mm512_setzero_ps(), s1 = s0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
  }
  if (i + 16 <= n) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    i += 16;
  }
  sum = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
#elif defined(__AVX2__) && defined(__FMA__)
  __m256 s0 = _mm256_setzero_ps(), s1 = s0;
  for (; i + 16 <= n; i += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
  }
  sum = anneval__sum2(s0, s1);
#endif
  for (; i < n; i++) sum += a[i] * b[i];
  return sum;
}

/* The kernel-side distance, smaller is nearer; orders points exactly as the
 * true metric does. */
static inline float anneval_distance(anneval_metric metric, const float *a, const float *b,
                                     size_t n) {
  return metric == ANNEVAL_ANGULAR ? 1.0f - anneval_dot(a, b, n) : anneval_l2_sq(a, b, n);
}

/* Asks for the cache line at p ahead of its use, so that the wait for memory
 * overlaps other work; any address is fine (nothing faults, nothing is seen).
 * Natively this is x86's prefetcht0. WebAssembly has no prefetch instruction:
 * there it is a one-byte volatile load whose value nothing uses, clamped into
 * the linear memory so it never traps. The CPU sends the request and goes on,
 * but the load retires only when its line arrives: issue prefetches in a burst
 * ahead of the work (the vectors of a whole neighbour list before the first
 * distance), not one per step of a loop. */
static inline void anneval_prefetch(const void *p) {
#if defined(__x86_64__)
  __builtin_prefetch(p, 0, 3);
#elif defined(__wasm__)
  uintptr_t end = (uintptr_t)__builtin_wasm_memory_size(0) * 65536u;
  uintptr_t addr = (uintptr_t)p < end ? (uintptr_t)p : end - 1;
  (void)*(volatile const unsigned char *)addr;
#else
  (void)p;
#endif
}

/* In the sandbox, code that prefetches with the compiler's builtin (as
 * hnswlib and GLASS do) gets this prefetch too: clang drops the builtin for
 * WebAssembly, which would make tuned prefetching look worthless. */
#if defined(__wasm__) && !defined(__builtin_prefetch)
#define __builtin_prefetch(p, ...) anneval_prefetch(p)
#endif

#include "anneval_quant.h"

/* A deterministic random number generator (SplitMix64): the same seed gives
 * the same sequence on both engines. */
typedef struct anneval_rng { uint64_t state; } anneval_rng;

static inline anneval_rng anneval_rng_new(uint64_t seed) {
  anneval_rng r = {seed};
  return r;
}

static inline uint64_t anneval_rng_u64(anneval_rng *r) {
  uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static inline double anneval_rng_f64(anneval_rng *r) {
  return (double)(anneval_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* Uniform in [0, n); n must be positive. */
static inline uint64_t anneval_rng_below(anneval_rng *r, uint64_t n) {
  return (uint64_t)(((unsigned __int128)anneval_rng_u64(r) * n) >> 64);
}

/* Writes one line to the evaluation's diagnostic log (bounded by the host).
 * In a native build it goes to standard error. */
void anneval_log(const char *message);

/* Logs "kernel failed: <message>" and stops the kernel; the host reports it
 * as a trap with this message. */
__attribute__((noreturn)) void anneval_fail(const char *message);

/* The --param key=value map. The getters return the default when the key is
 * absent and fail (naming the parameter) when the value does not parse. */
typedef struct anneval_params anneval_params;
const char *anneval_param_str(const anneval_params *p, const char *key, const char *dflt);
uint64_t anneval_param_u64(const anneval_params *p, const char *key, uint64_t dflt);
double anneval_param_f64(const anneval_params *p, const char *key, double dflt);
int anneval_param_bool(const anneval_params *p, const char *key, int dflt);

/* Save and load: a growing byte buffer and a bounds-checked reader, both
 * little-endian. Arrays are written as a u64 count, then the values. A read
 * past the end fails with a message naming what was read. */
typedef struct anneval_writer anneval_writer;
void anneval_write(anneval_writer *w, const void *bytes, size_t len);
void anneval_write_u8(anneval_writer *w, uint8_t v);
void anneval_write_u32(anneval_writer *w, uint32_t v);
void anneval_write_u64(anneval_writer *w, uint64_t v);
void anneval_write_f32(anneval_writer *w, float v);
void anneval_write_u32s(anneval_writer *w, const uint32_t *v, size_t n);
void anneval_write_f32s(anneval_writer *w, const float *v, size_t n);

typedef struct anneval_reader anneval_reader;
/* Reads the next `len` bytes into `out` (what anneval_write wrote). */
void anneval_read(anneval_reader *r, void *out, size_t len);
uint8_t anneval_read_u8(anneval_reader *r);
uint32_t anneval_read_u32(anneval_reader *r);
uint64_t anneval_read_u64(anneval_reader *r);
float anneval_read_f32(anneval_reader *r);
/* Reads an array written by anneval_write_u32s/f32s into a new malloc'ed
 * block (the kernel frees it); its length goes to *n. */
uint32_t *anneval_read_u32s(anneval_reader *r, size_t *n);
float *anneval_read_f32s(anneval_reader *r, size_t *n);
/* Bytes left to read. */
size_t anneval_read_remaining(const anneval_reader *r);

/* The contract of a C kernel (kernel.c); `struct kernel` is the kernel's own.
 *
 * kernel_build:  builds an index over n points of dim floats each (row-major).
 * kernel_save:   writes the index as bytes the host keeps.
 * kernel_load:   restores an index from those bytes (untimed, before every
 *                timed pass, so nothing survives from one pass to the next).
 * kernel_search: writes at most k ids of the points nearest to query to out
 *                and returns how many it wrote; ef is the search effort the
 *                host sweeps.
 * kernel_free:   releases an index.
 */
struct kernel;
struct kernel *kernel_build(const float *base, size_t n, size_t dim, anneval_metric metric,
                            const anneval_params *params);
void kernel_save(const struct kernel *index, anneval_writer *out);
struct kernel *kernel_load(anneval_reader *in);
size_t kernel_search(struct kernel *index, const float *query, size_t k, size_t ef,
                     uint32_t *out);
void kernel_free(struct kernel *index);

#ifdef __cplusplus
}
#endif

#endif /* ANNEVAL_H */
