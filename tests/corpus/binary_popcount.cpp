// 1-bit codes with popcount and exact re-ranking, the scheme of binary
// embedding quantisation (and the first stage of RaBitQ, without its
// rotation or its error bound): each vector is kept as one bit per dimension,
// the sign of its difference from the data's mean; a query ranks every point
// by the Hamming distance between its bits and theirs (XOR and POPCNT over
// 64-bit words), then re-ranks the ef best with float distances (SSE and FMA).
#include "anneval.hpp"

#include <immintrin.h>

#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

namespace {

inline float float_l2(const float* a, const float* b, size_t d) {
  __m128 acc = _mm_setzero_ps();
  for (size_t i = 0; i < d; i += 4) {
    __m128 diff = _mm_sub_ps(_mm_loadu_ps(a + i), _mm_loadu_ps(b + i));
    acc = _mm_fmadd_ps(diff, diff, acc);
  }
  acc = _mm_add_ps(acc, _mm_movehl_ps(acc, acc));
  acc = _mm_add_ss(acc, _mm_shuffle_ps(acc, acc, 1));
  return _mm_cvtss_f32(acc);
}

}  // namespace

struct Index {
  uint32_t dim = 0, fdim = 0, words = 0, n = 0;
  std::vector<float> mean;      // fdim
  std::vector<uint64_t> bits;   // n × words
  std::vector<float> vectors;   // n × fdim

  void encode(const float* x, uint64_t* out) const {
    std::fill(out, out + words, 0ull);
    for (uint32_t d = 0; d < dim; d++)
      if (x[d] > mean[d]) out[d / 64] |= 1ull << (d % 64);
  }

  static std::unique_ptr<Index> build(const float* base, size_t n, size_t dim, anneval::Metric,
                                      const anneval::Params&) {
    auto ix = std::make_unique<Index>();
    ix->dim = static_cast<uint32_t>(dim);
    ix->fdim = static_cast<uint32_t>((dim + 3) / 4 * 4);
    ix->words = static_cast<uint32_t>((dim + 63) / 64);
    ix->n = static_cast<uint32_t>(n);
    ix->mean.assign(ix->fdim, 0.0f);
    ix->vectors.assign(n * ix->fdim, 0.0f);
    for (size_t i = 0; i < n; i++)
      for (size_t d = 0; d < dim; d++) {
        ix->vectors[i * ix->fdim + d] = base[i * dim + d];
        ix->mean[d] += base[i * dim + d] / static_cast<float>(n);
      }
    ix->bits.assign(n * ix->words, 0);
    for (size_t i = 0; i < n; i++) ix->encode(&ix->vectors[i * ix->fdim], &ix->bits[i * ix->words]);
    return ix;
  }

  void save(anneval::ByteWriter& w) const {
    w.u32(dim);
    w.u32(n);
    w.f32s(mean);
    std::vector<uint32_t> halves(bits.size() * 2);
    std::memcpy(halves.data(), bits.data(), bits.size() * 8);
    w.u32s(halves);
    w.f32s(vectors);
  }

  static std::unique_ptr<Index> load(anneval::ByteReader& r) {
    auto ix = std::make_unique<Index>();
    ix->dim = r.u32();
    ix->n = r.u32();
    ix->fdim = (ix->dim + 3) / 4 * 4;
    ix->words = (ix->dim + 63) / 64;
    ix->mean = r.f32s();
    std::vector<uint32_t> halves = r.u32s();
    anneval::check(halves.size() == size_t(ix->n) * ix->words * 2, "saved index corrupt");
    ix->bits.resize(halves.size() / 2);
    std::memcpy(ix->bits.data(), halves.data(), halves.size() * 4);
    ix->vectors = r.f32s();
    return ix;
  }

  void search(const float* query, size_t k, size_t ef, std::vector<uint32_t>& out) {
    std::vector<float> q(fdim, 0.0f);
    std::copy(query, query + dim, q.begin());
    std::vector<uint64_t> qbits(words);
    encode(q.data(), qbits.data());

    std::vector<std::pair<uint32_t, uint32_t>> scored(n);  // (Hamming distance, id)
    for (uint32_t i = 0; i < n; i++) {
      const uint64_t* b = &bits[size_t(i) * words];
      uint32_t h = 0;
      for (uint32_t w = 0; w < words; w++) h += static_cast<uint32_t>(_mm_popcnt_u64(b[w] ^ qbits[w]));
      scored[i] = {h, i};
    }
    size_t keep = std::min<size_t>(n, std::max(k, ef));
    std::partial_sort(scored.begin(), scored.begin() + keep, scored.end());

    std::vector<std::pair<float, uint32_t>> refined(keep);
    for (size_t i = 0; i < keep; i++) {
      uint32_t id = scored[i].second;
      refined[i] = {float_l2(q.data(), &vectors[size_t(id) * fdim], fdim), id};
    }
    size_t answer = std::min(k, keep);
    std::partial_sort(refined.begin(), refined.begin() + answer, refined.end());
    for (size_t i = 0; i < answer; i++) out.push_back(refined[i].second);
  }
};
