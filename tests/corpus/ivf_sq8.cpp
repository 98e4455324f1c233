// IVF with 8-bit scalar-quantised codes and exact re-ranking, written the way
// faiss describes IndexIVFScalarQuantizer (QT_8bit_uniform) behind an
// IndexRefineFlat: a k-means coarse quantiser assigns each point to one of
// nlist lists; each list stores its points as one byte per dimension on a
// range shared by all dimensions; a query visits its nprobe nearest lists,
// ranks their points by the integer L2 distance between its own code and
// theirs (AVX2: widen to 16 bits, subtract, pmaddwd), and re-ranks the best
// candidates with float distances. For unit vectors (angular data) L2 orders
// points as cosine does.
//
// Parameters: nlist (default 4·√n), iterations (k-means, default 10).
// ef sets both the lists visited (ef / 4, at least 1) and the candidates
// re-ranked (at least 4·k).
#include "anneval.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <utility>
#include <vector>

namespace {

// Sum over d of (a[d] - b[d])^2 for byte codes, d a multiple of 32.
inline uint32_t code_l2(const uint8_t* a, const uint8_t* b, size_t d) {
  __m256i acc = _mm256_setzero_si256();
  for (size_t i = 0; i < d; i += 16) {
    __m256i x = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i)));
    __m256i y = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i)));
    __m256i diff = _mm256_sub_epi16(x, y);
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(diff, diff));
  }
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return static_cast<uint32_t>(_mm_cvtsi128_si32(s));
}

// Float L2 over d (a multiple of 8) with AVX and FMA.
inline float float_l2(const float* a, const float* b, size_t d) {
  __m256 acc = _mm256_setzero_ps();
  for (size_t i = 0; i < d; i += 8) {
    __m256 diff = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    acc = _mm256_fmadd_ps(diff, diff, acc);
  }
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  s = _mm_hadd_ps(s, s);
  s = _mm_hadd_ps(s, s);
  return _mm_cvtss_f32(s);
}

size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

}  // namespace

struct Index {
  uint32_t dim = 0;         // the data's dimension
  uint32_t fdim = 0;        // floats per stored vector (a multiple of 8)
  uint32_t cdim = 0;        // bytes per code (a multiple of 32)
  uint32_t nlist = 0;
  float lo = 0, scale = 1;  // code = round((x - lo) * scale), clamped to 0..255
  std::vector<float> centroids;   // nlist × fdim
  std::vector<uint32_t> offsets;  // nlist + 1 starts into ids / codes
  std::vector<uint32_t> ids;      // point ids, list by list
  std::vector<uint8_t> codes;     // cdim bytes per entry of ids
  std::vector<float> vectors;     // n × fdim, by point id, for re-ranking

  void encode(const float* x, uint8_t* code) const {
    for (uint32_t d = 0; d < dim; d++) {
      float v = std::nearbyint((x[d] - lo) * scale);
      code[d] = static_cast<uint8_t>(std::min(255.0f, std::max(0.0f, v)));
    }
    std::fill(code + dim, code + cdim, static_cast<uint8_t>(0));
  }

  static std::unique_ptr<Index> build(const float* base, size_t n, size_t dim, anneval::Metric,
                                      const anneval::Params& params) {
    auto ix = std::make_unique<Index>();
    ix->dim = static_cast<uint32_t>(dim);
    ix->fdim = static_cast<uint32_t>(round_up(dim, 8));
    ix->cdim = static_cast<uint32_t>(round_up(dim, 32));
    size_t nlist = params.size("nlist", std::max<size_t>(1, size_t(4 * std::sqrt(double(n)))));
    nlist = std::max<size_t>(1, std::min(nlist, n));
    ix->nlist = static_cast<uint32_t>(nlist);
    size_t iterations = params.size("iterations", 10);

    ix->vectors.assign(n * ix->fdim, 0.0f);
    float lo = base[0], hi = base[0];
    for (size_t i = 0; i < n; i++) {
      std::copy(base + i * dim, base + (i + 1) * dim, ix->vectors.begin() + i * ix->fdim);
      for (size_t d = 0; d < dim; d++) {
        lo = std::min(lo, base[i * dim + d]);
        hi = std::max(hi, base[i * dim + d]);
      }
    }
    ix->lo = lo;
    ix->scale = hi > lo ? 255.0f / (hi - lo) : 1.0f;

    // k-means (Lloyd) from nlist points spread over the set.
    const size_t fd = ix->fdim;
    ix->centroids.assign(nlist * fd, 0.0f);
    for (size_t c = 0; c < nlist; c++) {
      size_t p = c * n / nlist;
      std::copy(&ix->vectors[p * fd], &ix->vectors[p * fd] + fd, &ix->centroids[c * fd]);
    }
    std::vector<uint32_t> assign(n, 0);
    auto nearest_list = [&](const float* x) {
      uint32_t best = 0;
      float best_d = float_l2(x, &ix->centroids[0], fd);
      for (size_t c = 1; c < nlist; c++) {
        float d = float_l2(x, &ix->centroids[c * fd], fd);
        if (d < best_d) best_d = d, best = static_cast<uint32_t>(c);
      }
      return best;
    };
    for (size_t it = 0; it < iterations; it++) {
      for (size_t i = 0; i < n; i++) assign[i] = nearest_list(&ix->vectors[i * fd]);
      std::vector<float> sums(nlist * fd, 0.0f);
      std::vector<uint32_t> counts(nlist, 0);
      for (size_t i = 0; i < n; i++) {
        counts[assign[i]]++;
        for (size_t d = 0; d < fd; d++) sums[assign[i] * fd + d] += ix->vectors[i * fd + d];
      }
      for (size_t c = 0; c < nlist; c++)
        if (counts[c] > 0)
          for (size_t d = 0; d < fd; d++) ix->centroids[c * fd + d] = sums[c * fd + d] / counts[c];
    }
    for (size_t i = 0; i < n; i++) assign[i] = nearest_list(&ix->vectors[i * fd]);

    ix->offsets.assign(nlist + 1, 0);
    for (size_t i = 0; i < n; i++) ix->offsets[assign[i] + 1]++;
    for (size_t c = 0; c < nlist; c++) ix->offsets[c + 1] += ix->offsets[c];
    ix->ids.assign(n, 0);
    ix->codes.assign(n * ix->cdim, 0);
    std::vector<uint32_t> fill(ix->offsets.begin(), ix->offsets.end() - 1);
    for (size_t i = 0; i < n; i++) {
      uint32_t at = fill[assign[i]]++;
      ix->ids[at] = static_cast<uint32_t>(i);
      ix->encode(base + i * dim, &ix->codes[size_t(at) * ix->cdim]);
    }
    return ix;
  }

  void save(anneval::ByteWriter& w) const {
    w.u32(dim);
    w.u32(nlist);
    w.f32(lo);
    w.f32(scale);
    w.f32s(centroids);
    w.u32s(offsets);
    w.u32s(ids);
    // Codes as 32-bit words: one call, not one per byte.
    std::vector<uint32_t> words(codes.size() / 4);
    std::memcpy(words.data(), codes.data(), codes.size());
    w.u32s(words);
    w.f32s(vectors);
  }

  static std::unique_ptr<Index> load(anneval::ByteReader& r) {
    auto ix = std::make_unique<Index>();
    ix->dim = r.u32();
    ix->fdim = static_cast<uint32_t>(round_up(ix->dim, 8));
    ix->cdim = static_cast<uint32_t>(round_up(ix->dim, 32));
    ix->nlist = r.u32();
    ix->lo = r.f32();
    ix->scale = r.f32();
    ix->centroids = r.f32s();
    ix->offsets = r.u32s();
    ix->ids = r.u32s();
    std::vector<uint32_t> words = r.u32s();
    ix->codes.resize(words.size() * 4);
    std::memcpy(ix->codes.data(), words.data(), ix->codes.size());
    ix->vectors = r.f32s();
    anneval::check(ix->offsets.size() == size_t(ix->nlist) + 1, "saved index corrupt");
    anneval::check(ix->codes.size() == ix->ids.size() * ix->cdim, "saved index corrupt");
    return ix;
  }

  void search(const float* query, size_t k, size_t ef, std::vector<uint32_t>& out) {
    const size_t fd = fdim;
    std::vector<float> q(fd, 0.0f);
    std::copy(query, query + dim, q.begin());
    std::vector<uint8_t> qcode(cdim);
    encode(q.data(), qcode.data());

    size_t nprobe = std::min<size_t>(nlist, std::max<size_t>(1, ef / 4));
    std::vector<std::pair<float, uint32_t>> lists(nlist);
    for (uint32_t c = 0; c < nlist; c++) lists[c] = {float_l2(q.data(), &centroids[c * fd], fd), c};
    std::partial_sort(lists.begin(), lists.begin() + nprobe, lists.end());

    std::vector<std::pair<uint32_t, uint32_t>> scored;  // (code distance, id)
    // The nprobe nearest lists, and more while they hold fewer than k points.
    std::sort(lists.begin() + nprobe, lists.end());
    for (size_t l = 0; l < nlist && (l < nprobe || scored.size() < k); l++) {
      uint32_t c = lists[l].second;
      for (uint32_t e = offsets[c]; e < offsets[c + 1]; e++)
        scored.push_back({code_l2(qcode.data(), &codes[size_t(e) * cdim], cdim), ids[e]});
    }
    size_t keep = std::min(scored.size(), std::max(4 * k, ef));
    std::partial_sort(scored.begin(), scored.begin() + keep, scored.end());

    std::vector<std::pair<float, uint32_t>> refined(keep);
    for (size_t i = 0; i < keep; i++) {
      uint32_t id = scored[i].second;
      refined[i] = {float_l2(q.data(), &vectors[size_t(id) * fd], fd), id};
    }
    size_t answer = std::min(k, keep);
    std::partial_sort(refined.begin(), refined.begin() + answer, refined.end());
    for (size_t i = 0; i < answer; i++) out.push_back(refined[i].second);
  }
};
