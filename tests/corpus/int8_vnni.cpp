// A flat scan over int8 codes by their dot product with the query, written
// for AVX-512 VNNI (vpdpbusd: unsigned × signed bytes, four products summed
// into each 32-bit lane), with the AVX2 pmaddubsw/pmaddwd pair where the CPU
// has no VNNI, then exact re-ranking: the int8 inner-product scheme of
// vector libraries' "int8 quantisation" modes.
//
// Every coordinate is coded as round(x / step) in -127..127 with one step for
// the whole set. vpdpbusd needs one side unsigned, so the query is coded with
// an offset of 128 and its dot product corrected by 128 · (the code's sum),
// kept per point. The approximate squared distance is |b|² - 2 q·b (|q|² is
// the same for every point); the ef smallest are re-ranked with floats.
#include "anneval.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <utility>
#include <vector>

namespace {

// Sum over d (a multiple of 64) of q[i] * b[i], q unsigned, b signed.
inline int32_t dot_u8_i8(const uint8_t* q, const int8_t* b, size_t d) {
#if defined(__AVX512F__) && defined(__AVX512VNNI__) && defined(__AVX512BW__)
  __m512i acc = _mm512_setzero_si512();
  for (size_t i = 0; i < d; i += 64)
    acc = _mm512_dpbusd_epi32(acc, _mm512_loadu_si512(q + i), _mm512_loadu_si512(b + i));
  return _mm512_reduce_add_epi32(acc);
#else
  // pmaddubsw saturates a pair's sum at 16 bits, so pairs are summed in
  // 32 bits through pmaddwd right after.
  __m256i acc = _mm256_setzero_si256();
  const __m256i ones = _mm256_set1_epi16(1);
  for (size_t i = 0; i < d; i += 32) {
    __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + i));
    __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + i));
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(x, y), ones));
  }
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
#endif
}

}  // namespace

struct Index {
  uint32_t dim = 0, cdim = 0, n = 0;
  float step = 1;
  std::vector<int8_t> codes;      // n × cdim
  std::vector<int32_t> code_sums; // 128 · sum of each point's code
  std::vector<float> norms;       // |b|² of each point
  std::vector<float> vectors;     // n × dim, for re-ranking

  static std::unique_ptr<Index> build(const float* base, size_t n, size_t dim, anneval::Metric,
                                      const anneval::Params&) {
    auto ix = std::make_unique<Index>();
    ix->dim = static_cast<uint32_t>(dim);
    ix->cdim = static_cast<uint32_t>((dim + 63) / 64 * 64);
    ix->n = static_cast<uint32_t>(n);
    float top = 0;
    for (size_t i = 0; i < n * dim; i++) top = std::max(top, std::fabs(base[i]));
    ix->step = top > 0 ? top / 127.0f : 1.0f;
    ix->vectors.assign(base, base + n * dim);
    ix->codes.assign(n * ix->cdim, 0);
    ix->code_sums.assign(n, 0);
    ix->norms.assign(n, 0);
    for (size_t i = 0; i < n; i++) {
      int32_t sum = 0;
      for (size_t d = 0; d < dim; d++) {
        float x = base[i * dim + d];
        auto c = static_cast<int8_t>(std::max(-127.0f, std::min(127.0f, std::nearbyint(x / ix->step))));
        ix->codes[i * ix->cdim + d] = c;
        sum += c;
        ix->norms[i] += x * x;
      }
      ix->code_sums[i] = 128 * sum;
    }
    return ix;
  }

  void save(anneval::ByteWriter& w) const {
    w.u32(dim);
    w.u32(n);
    w.f32(step);
    std::vector<uint32_t> words(codes.size() / 4);
    std::memcpy(words.data(), codes.data(), codes.size());
    w.u32s(words);
    std::vector<uint32_t> sums(code_sums.begin(), code_sums.end());
    w.u32s(sums);
    w.f32s(norms);
    w.f32s(vectors);
  }

  static std::unique_ptr<Index> load(anneval::ByteReader& r) {
    auto ix = std::make_unique<Index>();
    ix->dim = r.u32();
    ix->n = r.u32();
    ix->cdim = (ix->dim + 63) / 64 * 64;
    ix->step = r.f32();
    std::vector<uint32_t> words = r.u32s();
    anneval::check(words.size() * 4 == size_t(ix->n) * ix->cdim, "saved index corrupt");
    ix->codes.resize(words.size() * 4);
    std::memcpy(ix->codes.data(), words.data(), ix->codes.size());
    std::vector<uint32_t> sums = r.u32s();
    ix->code_sums.assign(sums.begin(), sums.end());
    ix->norms = r.f32s();
    ix->vectors = r.f32s();
    return ix;
  }

  void search(const float* query, size_t k, size_t ef, std::vector<uint32_t>& out) {
    std::vector<uint8_t> q(cdim, 128);
    for (uint32_t d = 0; d < dim; d++) {
      float c = std::max(-127.0f, std::min(127.0f, std::nearbyint(query[d] / step)));
      q[d] = static_cast<uint8_t>(static_cast<int>(c) + 128);
    }
    const float step2 = step * step;
    std::vector<std::pair<float, uint32_t>> scored(n);
    for (uint32_t i = 0; i < n; i++) {
      int32_t dot = dot_u8_i8(q.data(), &codes[size_t(i) * cdim], cdim) - code_sums[i];
      scored[i] = {norms[i] - 2.0f * step2 * static_cast<float>(dot), i};
    }
    size_t keep = std::min<size_t>(n, std::max(k, ef));
    std::partial_sort(scored.begin(), scored.begin() + keep, scored.end());
    for (size_t i = 0; i < keep; i++) {
      uint32_t id = scored[i].second;
      scored[i].first = anneval::l2_sq(query, &vectors[size_t(id) * dim], dim);
    }
    size_t answer = std::min(k, keep);
    std::partial_sort(scored.begin(), scored.begin() + answer, scored.begin() + keep);
    for (size_t i = 0; i < answer; i++) out.push_back(scored[i].second);
  }
};
