// The distances, as hnswlib's space_l2.h and space_ip.h write them.
#pragma once

#include "hnswlib.h"

namespace {

// ---------------------------------------------------------------------------
// Distances, in the manner of hnswlib's space_l2.h and space_ip.h: every
// function takes two vectors and a pointer to the dimension.

inline size_t dim_of(const void* p) { return *static_cast<const size_t*>(p); }

float L2Sqr(const void* a, const void* b, const void* qty_ptr) {
  const float* x = static_cast<const float*>(a);
  const float* y = static_cast<const float*>(b);
  size_t qty = dim_of(qty_ptr);
  float acc = 0;
  for (size_t i = 0; i < qty; i++) {
    float t = x[i] - y[i];
    acc += t * t;
  }
  return acc;
}

float InnerProduct(const void* a, const void* b, const void* qty_ptr) {
  const float* x = static_cast<const float*>(a);
  const float* y = static_cast<const float*>(b);
  size_t qty = dim_of(qty_ptr);
  float acc = 0;
  for (size_t i = 0; i < qty; i++) acc += x[i] * y[i];
  return acc;
}

#if defined(__SSE__)
inline float hsum128(__m128 v) {
  __m128 hi = _mm_movehl_ps(v, v);
  __m128 s = _mm_add_ps(v, hi);
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 0x55));
  return _mm_cvtss_f32(s);
}
#endif

#if defined(__AVX512F__)
// 16 floats per step in one 512-bit register.
float L2Sqr16AVX512(const void* a, const void* b, const void* qty_ptr) {
  const float* x = static_cast<const float*>(a);
  const float* y = static_cast<const float*>(b);
  const float* stop = x + (dim_of(qty_ptr) >> 4 << 4);
  __m512 acc = _mm512_setzero_ps();
  while (x < stop) {
    __m512 d = _mm512_sub_ps(_mm512_loadu_ps(x), _mm512_loadu_ps(y));
    acc = _mm512_add_ps(acc, _mm512_mul_ps(d, d));
    x += 16;
    y += 16;
  }
  return _mm512_reduce_add_ps(acc);
}

float IP16AVX512(const void* a, const void* b, const void* qty_ptr) {
  const float* x = static_cast<const float*>(a);
  const float* y = static_cast<const float*>(b);
  const float* stop = x + (dim_of(qty_ptr) >> 4 << 4);
  __m512 acc = _mm512_setzero_ps();
  while (x < stop) {
    acc = _mm512_add_ps(acc, _mm512_mul_ps(_mm512_loadu_ps(x), _mm512_loadu_ps(y)));
    x += 16;
    y += 16;
  }
  return _mm512_reduce_add_ps(acc);
}
#endif

#if defined(__AVX__)
inline float hsum256(__m256 v) {
  return hsum128(_mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1)));
}

// 16 floats per step as two 256-bit halves.
float L2Sqr16AVX(const void* a, const void* b, const void* qty_ptr) {
  const float* x = static_cast<const float*>(a);
  const float* y = static_cast<const float*>(b);
  const float* stop = x + (dim_of(qty_ptr) >> 4 << 4);
  __m256 acc = _mm256_setzero_ps();
  while (x < stop) {
    __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x), _mm256_loadu_ps(y));
    acc = _mm256_add_ps(acc, _mm256_mul_ps(d0, d0));
    __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(x + 8), _mm256_loadu_ps(y + 8));
    acc = _mm256_add_ps(acc, _mm256_mul_ps(d1, d1));
    x += 16;
    y += 16;
  }
  return hsum256(acc);
}

float IP16AVX(const void* a, const void* b, const void* qty_ptr) {
  const float* x = static_cast<const float*>(a);
  const float* y = static_cast<const float*>(b);
  const float* stop = x + (dim_of(qty_ptr) >> 4 << 4);
  __m256 acc = _mm256_setzero_ps();
  while (x < stop) {
    acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_loadu_ps(x), _mm256_loadu_ps(y)));
    acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_loadu_ps(x + 8), _mm256_loadu_ps(y + 8)));
    x += 16;
    y += 16;
  }
  return hsum256(acc);
}
#endif

#if defined(__SSE__)
// 16 floats per step as four 128-bit quarters.
float L2Sqr16SSE(const void* a, const void* b, const void* qty_ptr) {
  const float* x = static_cast<const float*>(a);
  const float* y = static_cast<const float*>(b);
  const float* stop = x + (dim_of(qty_ptr) >> 4 << 4);
  __m128 acc = _mm_setzero_ps();
  while (x < stop) {
    for (int q = 0; q < 16; q += 4) {
      __m128 d = _mm_sub_ps(_mm_loadu_ps(x + q), _mm_loadu_ps(y + q));
      acc = _mm_add_ps(acc, _mm_mul_ps(d, d));
    }
    x += 16;
    y += 16;
  }
  return hsum128(acc);
}

float IP16SSE(const void* a, const void* b, const void* qty_ptr) {
  const float* x = static_cast<const float*>(a);
  const float* y = static_cast<const float*>(b);
  const float* stop = x + (dim_of(qty_ptr) >> 4 << 4);
  __m128 acc = _mm_setzero_ps();
  while (x < stop) {
    for (int q = 0; q < 16; q += 4) acc = _mm_add_ps(acc, _mm_mul_ps(_mm_loadu_ps(x + q), _mm_loadu_ps(y + q)));
    x += 16;
    y += 16;
  }
  return hsum128(acc);
}

// 4 floats per step, for dimensions that are a multiple of 4 but not of 16.
float L2Sqr4SSE(const void* a, const void* b, const void* qty_ptr) {
  const float* x = static_cast<const float*>(a);
  const float* y = static_cast<const float*>(b);
  const float* stop = x + (dim_of(qty_ptr) >> 2 << 2);
  __m128 acc = _mm_setzero_ps();
  while (x < stop) {
    __m128 d = _mm_sub_ps(_mm_loadu_ps(x), _mm_loadu_ps(y));
    acc = _mm_add_ps(acc, _mm_mul_ps(d, d));
    x += 4;
    y += 4;
  }
  return hsum128(acc);
}

float IP4SSE(const void* a, const void* b, const void* qty_ptr) {
  const float* x = static_cast<const float*>(a);
  const float* y = static_cast<const float*>(b);
  const float* stop = x + (dim_of(qty_ptr) >> 2 << 2);
  __m128 acc = _mm_setzero_ps();
  while (x < stop) {
    acc = _mm_add_ps(acc, _mm_mul_ps(_mm_loadu_ps(x), _mm_loadu_ps(y)));
    x += 4;
    y += 4;
  }
  return hsum128(acc);
}
#endif

// The widest 16-per-step kernel this build has (hnswlib picks it at start-up).
#if defined(__AVX512F__)
DISTFUNC L2Sqr16 = L2Sqr16AVX512;
DISTFUNC IP16 = IP16AVX512;
#elif defined(__AVX__)
DISTFUNC L2Sqr16 = L2Sqr16AVX;
DISTFUNC IP16 = IP16AVX;
#elif defined(__SSE__)
DISTFUNC L2Sqr16 = L2Sqr16SSE;
DISTFUNC IP16 = IP16SSE;
#endif

#if defined(__SSE__)
// Vector part over the largest multiple of 16 (or 4), scalar for the rest.
float L2Sqr16Residuals(const void* a, const void* b, const void* qty_ptr) {
  size_t qty = dim_of(qty_ptr), head = qty >> 4 << 4, tail = qty - head;
  const float* x = static_cast<const float*>(a);
  const float* y = static_cast<const float*>(b);
  return L2Sqr16(x, y, &head) + L2Sqr(x + head, y + head, &tail);
}

float L2Sqr4Residuals(const void* a, const void* b, const void* qty_ptr) {
  size_t qty = dim_of(qty_ptr), head = qty >> 2 << 2, tail = qty - head;
  const float* x = static_cast<const float*>(a);
  const float* y = static_cast<const float*>(b);
  return L2Sqr4SSE(x, y, &head) + L2Sqr(x + head, y + head, &tail);
}

float IP16Residuals(const void* a, const void* b, const void* qty_ptr) {
  size_t qty = dim_of(qty_ptr), head = qty >> 4 << 4, tail = qty - head;
  const float* x = static_cast<const float*>(a);
  const float* y = static_cast<const float*>(b);
  return IP16(x, y, &head) + InnerProduct(x + head, y + head, &tail);
}

float IP4Residuals(const void* a, const void* b, const void* qty_ptr) {
  size_t qty = dim_of(qty_ptr), head = qty >> 2 << 2, tail = qty - head;
  const float* x = static_cast<const float*>(a);
  const float* y = static_cast<const float*>(b);
  return IP4SSE(x, y, &head) + InnerProduct(x + head, y + head, &tail);
}
#endif

// Inner-product "distances": 1 - <x, y>, one wrapper per kernel.
template <DISTFUNC* F>
float IPDistance(const void* a, const void* b, const void* q) {
  return 1.0f - (*F)(a, b, q);
}
template <float (*F)(const void*, const void*, const void*)>
float IPDistanceFixed(const void* a, const void* b, const void* q) {
  return 1.0f - F(a, b, q);
}

// The choice hnswlib's L2Space / InnerProductSpace constructors make.
DISTFUNC pick_distance(anneval::Metric metric, size_t dim) {
  bool l2 = metric == anneval::Metric::Euclidean;
#if defined(__SSE__)
  if (dim % 16 == 0) return l2 ? L2Sqr16 : IPDistance<&IP16>;
  if (dim % 4 == 0) return l2 ? L2Sqr4SSE : IPDistanceFixed<IP4SSE>;
  if (dim > 16) return l2 ? L2Sqr16Residuals : IPDistanceFixed<IP16Residuals>;
  if (dim > 4) return l2 ? L2Sqr4Residuals : IPDistanceFixed<IP4Residuals>;
#endif
  return l2 ? L2Sqr : IPDistanceFixed<InnerProduct>;
}

}  // namespace
