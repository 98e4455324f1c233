// IVF with 4-bit product quantisation scanned "fast-scan" style (André,
// Kermarrec & Le Scouarnec, VLDB 2015; faiss's IndexIVFPQFastScan), then exact
// re-ranking.
//
// Build: a k-means coarse quantiser (nlist lists) assigns each point to a
// list; the residual x - centroid is cut into M sub-vectors (the dimension
// zero-padded to M·dsub), each coded with one of 16 centroids (4 bits)
// trained by a few Lloyd iterations on a sample of residuals. Each list keeps
// its codes in blocks of 32 points, transposed: for sub-quantiser m one
// 16-byte row holds point j's code in the low nibble of byte j and point
// j+16's in the high nibble, so one register load brings the codes of 32
// points for one sub-quantiser (two sub-quantisers per 256-bit load).
//
// Search: the nprobe nearest lists are visited. For each, the float table
// |(q - c)_m - C_m[j]|² (M × 16) is formed as a query term (-2 q·y, once per
// query) plus a list term (|y|² + 2 c·y, precomputed as faiss's IVFPQ does)
// plus |q - c|², and quantised to bytes with one scale and a per-table offset
// (the offsets sum to a bias). The scan looks the tables up in-register with
// pshufb (_mm256_shuffle_epi8, or _mm_shuffle_epi8 on SSSE3; a scalar loop
// otherwise), widens the byte results to 16 bits (even/odd bytes separately)
// and sums them with saturating 16-bit adds. The 32 sums of a block are
// compared in SIMD against the bound of a reservoir of the best R candidates
// (faiss's ReservoirTopN: filled to 2R, then cut back to R); only the points
// that beat it are looked at one by one, and a list whose bias exceeds the
// bound is skipped. Finally the R candidates are re-ranked with exact float
// distances. Angular data arrives unit-normalised, so L2 orders the
// candidates as cosine does; the re-rank uses the metric's own distance.
//
// Parameters: m (sub-quantisers, default ceil(dim / 2)), nlist (default
// sqrt(n) / 3: fast-scan wants long lists), iterations (k-means, default 8),
// sample (training points, default 8192), seed (default 7), probe_div
// (nprobe = max(ef, k) / probe_div, default 24), rerank (candidates re-ranked
// = max(k, rerank · max(ef, k)), default 0.5).
#include "anneval.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

namespace {

constexpr uint32_t MAGIC = 0x53465150;  // "PQFS"
constexpr uint32_t FORMAT = 1;
constexpr size_t KSUB = 16;   // centroids per sub-quantiser (4 bits)
constexpr size_t BBS = 32;    // points per code block

inline float sq_dist(const float* a, const float* b, size_t d) {
  if (d >= 16) return anneval::l2_sq(a, b, d);
  float s = 0;
  for (size_t i = 0; i < d; i++) {
    float t = a[i] - b[i];
    s += t * t;
  }
  return s;
}

// Index of the nearest of k centroids (rows of d floats).
inline uint32_t nearest(const float* x, const float* cent, size_t k, size_t d, float* best_out = nullptr) {
  uint32_t best = 0;
  float bd = sq_dist(x, cent, d);
  for (size_t c = 1; c < k; c++) {
    float dd = sq_dist(x, cent + c * d, d);
    if (dd < bd) bd = dd, best = uint32_t(c);
  }
  if (best_out) *best_out = bd;
  return best;
}

// Lloyd's k-means on n rows of d floats; k centroids out. Initial centroids
// are distinct rows drawn at random; an empty cluster takes a random row.
void kmeans(const float* x, size_t n, size_t d, size_t k, size_t iters, anneval::SplitMix64& rng,
            std::vector<float>& cent) {
  cent.assign(k * d, 0.0f);
  std::vector<uint32_t> perm(n);
  for (size_t i = 0; i < n; i++) perm[i] = uint32_t(i);
  for (size_t i = 0; i < std::min(n, k); i++) std::swap(perm[i], perm[i + rng.below(n - i)]);
  for (size_t c = 0; c < k; c++) std::copy(x + perm[c % n] * d, x + perm[c % n] * d + d, &cent[c * d]);
  if (n <= k) return;
  std::vector<uint32_t> assign(n);
  std::vector<double> sums(k * d);
  std::vector<uint32_t> counts(k);
  for (size_t it = 0; it < iters; it++) {
    for (size_t i = 0; i < n; i++) assign[i] = nearest(x + i * d, cent.data(), k, d);
    std::fill(sums.begin(), sums.end(), 0.0);
    std::fill(counts.begin(), counts.end(), 0u);
    for (size_t i = 0; i < n; i++) {
      counts[assign[i]]++;
      const float* xi = x + i * d;
      double* s = &sums[assign[i] * d];
      for (size_t j = 0; j < d; j++) s[j] += xi[j];
    }
    for (size_t c = 0; c < k; c++) {
      if (counts[c] == 0) {
        size_t r = rng.below(n);
        std::copy(x + r * d, x + r * d + d, &cent[c * d]);
        continue;
      }
      for (size_t j = 0; j < d; j++) cent[c * d + j] = float(sums[c * d + j] / counts[c]);
    }
  }
}

// The 32 16-bit sums of one block, in the order
//   out[0..8)   points 0, 2, ..., 14      out[8..16)  points 1, 3, ..., 15
//   out[16..24) points 16, 18, ..., 30    out[24..32) points 17, 19, ..., 31
// (the even and odd bytes of a pshufb result are widened separately), and the
// mask of those at most thr (bit b for out[b]).
inline uint32_t point_of(uint32_t b) { return (b >> 4) * 16 + ((b & 7) << 1) + ((b >> 3) & 1); }

#if defined(__AVX2__) || defined(__SSSE3__)
inline uint32_t block_mask(const __m128i s[4], uint16_t thr, uint16_t* out) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), s[0]);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 8), s[1]);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16), s[2]);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 24), s[3]);
  const __m128i t = _mm_set1_epi16(short(thr));
  const __m128i z = _mm_setzero_si128();
  // x <= thr exactly when the saturating x - thr is zero.
  __m128i le0 = _mm_cmpeq_epi16(_mm_subs_epu16(s[0], t), z);
  __m128i le1 = _mm_cmpeq_epi16(_mm_subs_epu16(s[1], t), z);
  __m128i le2 = _mm_cmpeq_epi16(_mm_subs_epu16(s[2], t), z);
  __m128i le3 = _mm_cmpeq_epi16(_mm_subs_epu16(s[3], t), z);
  uint32_t lo = uint32_t(_mm_movemask_epi8(_mm_packs_epi16(le0, le1)));
  uint32_t hi = uint32_t(_mm_movemask_epi8(_mm_packs_epi16(le2, le3)));
  return lo | (hi << 16);
}
#endif

// codes: one block (mp rows of 16 bytes); lut: mp tables of 16 bytes; mp even.
inline uint32_t scan_block(const uint8_t* codes, const uint8_t* lut, size_t mp, uint16_t thr,
                           uint16_t* out) {
#if defined(__AVX2__)
  const __m256i nib = _mm256_set1_epi8(0x0f);
  const __m256i low = _mm256_set1_epi16(0x00ff);
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  // Lane 0 holds sub-quantiser m, lane 1 sub-quantiser m + 1.
  for (size_t m = 0; m < mp; m += 2) {
    __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + m * 16));
    __m256i t = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(lut + m * 16));
    __m256i dl = _mm256_shuffle_epi8(t, _mm256_and_si256(c, nib));
    __m256i dh = _mm256_shuffle_epi8(t, _mm256_and_si256(_mm256_srli_epi16(c, 4), nib));
    a0 = _mm256_adds_epu16(a0, _mm256_and_si256(dl, low));
    a1 = _mm256_adds_epu16(a1, _mm256_srli_epi16(dl, 8));
    a2 = _mm256_adds_epu16(a2, _mm256_and_si256(dh, low));
    a3 = _mm256_adds_epu16(a3, _mm256_srli_epi16(dh, 8));
  }
  __m128i s[4] = {
      _mm_adds_epu16(_mm256_castsi256_si128(a0), _mm256_extracti128_si256(a0, 1)),
      _mm_adds_epu16(_mm256_castsi256_si128(a1), _mm256_extracti128_si256(a1, 1)),
      _mm_adds_epu16(_mm256_castsi256_si128(a2), _mm256_extracti128_si256(a2, 1)),
      _mm_adds_epu16(_mm256_castsi256_si128(a3), _mm256_extracti128_si256(a3, 1)),
  };
  return block_mask(s, thr, out);
#elif defined(__SSSE3__)
  const __m128i nib = _mm_set1_epi8(0x0f);
  const __m128i low = _mm_set1_epi16(0x00ff);
  __m128i s[4] = {_mm_setzero_si128(), _mm_setzero_si128(), _mm_setzero_si128(), _mm_setzero_si128()};
  for (size_t m = 0; m < mp; m++) {
    __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + m * 16));
    __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(lut + m * 16));
    __m128i dl = _mm_shuffle_epi8(t, _mm_and_si128(c, nib));
    __m128i dh = _mm_shuffle_epi8(t, _mm_and_si128(_mm_srli_epi16(c, 4), nib));
    s[0] = _mm_adds_epu16(s[0], _mm_and_si128(dl, low));
    s[1] = _mm_adds_epu16(s[1], _mm_srli_epi16(dl, 8));
    s[2] = _mm_adds_epu16(s[2], _mm_and_si128(dh, low));
    s[3] = _mm_adds_epu16(s[3], _mm_srli_epi16(dh, 8));
  }
  return block_mask(s, thr, out);
#else
  uint32_t mask = 0;
  for (uint32_t b = 0; b < BBS; b++) {
    uint32_t p = point_of(b), acc = 0;
    for (size_t m = 0; m < mp; m++) {
      uint8_t byte = codes[m * 16 + (p & 15)];
      acc += lut[m * 16 + (p < 16 ? (byte & 15) : (byte >> 4))];
    }
    out[b] = uint16_t(std::min<uint32_t>(acc, 65535));
    if (out[b] <= thr) mask |= 1u << b;
  }
  return mask;
#endif
}

}  // namespace

struct Index {
  uint32_t dim = 0, n = 0;
  uint32_t M = 0, mp = 0, dsub = 0, dpad = 0;  // mp: M rounded up to even; dpad = mp · dsub
  uint32_t stride = 0;                         // floats per stored vector
  uint32_t nlist = 0, probe_div = 24;
  float rerank = 0.5f;  // candidates re-ranked per unit of ef
  anneval::Metric metric = anneval::Metric::Euclidean;
  std::vector<float> centroids;    // nlist × dpad
  std::vector<float> codebooks;    // mp × dsub × 16 (per sub-quantiser, dimension-major)
  std::vector<uint32_t> blocks;    // nlist + 1 starts, in blocks
  std::vector<uint32_t> ids;       // 32 per block; NO_ID pads a list's last block
  std::vector<uint8_t> codes;      // mp · 16 bytes per block
  std::vector<float> vectors;      // n × stride, for re-ranking

  std::vector<float> ltab;         // nlist × M × 16, from centroids and codebooks

  // Per-query scratch.
  std::vector<float> q, qs, qterm, ftab, mins;
  std::vector<uint8_t> qtab;
  std::vector<std::pair<float, uint32_t>> lists, pool;
  size_t cap = 1;
  float bound = 0;

  size_t block_bytes() const { return size_t(mp) * 16; }

  void prepare_scratch() {
    precompute_list_tables();
    q.assign(dpad, 0.0f);
    qs.assign(stride, 0.0f);
    qterm.assign(size_t(M) * KSUB, 0.0f);
    ftab.assign(size_t(M) * KSUB, 0.0f);
    mins.assign(M, 0.0f);
    qtab.assign(size_t(mp) * KSUB, 0);
    lists.resize(nlist);
  }

  // The 16 squared distances from sub-vector r to sub-quantiser m's
  // centroids (stored dimension-major, so the inner loop runs over the 16).
  void sub_table(size_t m, const float* r, float* t) const {
    const float* book = &codebooks[m * dsub * KSUB];
    for (size_t j = 0; j < KSUB; j++) t[j] = 0.0f;
    for (size_t d = 0; d < dsub; d++) {
      const float rd = r[d];
      const float* col = book + d * KSUB;
      for (size_t j = 0; j < KSUB; j++) {
        float e = rd - col[j];
        t[j] += e * e;
      }
    }
  }

  // The 4-bit codes of residual r (dpad floats).
  void encode(const float* r, uint8_t* code) const {
    float t[KSUB];
    for (size_t m = 0; m < mp; m++) {
      sub_table(m, r + m * dsub, t);
      code[m] = uint8_t(std::min_element(t, t + KSUB) - t);
    }
  }

  static std::unique_ptr<Index> build(const float* base, size_t n, size_t dim, anneval::Metric metric,
                                      const anneval::Params& params) {
    anneval::check(n > 0, "cannot index an empty base set");
    anneval::check(n < (size_t(1) << 31), "too many points");
    auto ix = std::make_unique<Index>();
    Index& x = *ix;
    x.dim = uint32_t(dim);
    x.n = uint32_t(n);
    x.metric = metric;
    size_t M = std::max<size_t>(1, std::min(params.size("m", (dim + 1) / 2), dim));
    x.M = uint32_t(M);
    x.dsub = uint32_t((dim + M - 1) / M);
    x.mp = uint32_t((M + 1) / 2 * 2);
    x.dpad = x.mp * x.dsub;
    x.stride = uint32_t(anneval::padded_dim(dim));
    size_t nlist = params.size("nlist", size_t(std::sqrt(double(n)) / 3.0 + 0.5));
    nlist = std::max<size_t>(1, std::min(nlist, n));
    x.nlist = uint32_t(nlist);
    x.probe_div = uint32_t(std::max<size_t>(1, params.size("probe_div", 24)));
    x.rerank = float(std::max(0.0, params.f64("rerank", 0.5)));
    size_t iters = params.size("iterations", 8);
    size_t sample = std::max<size_t>(1, params.size("sample", 8192));
    anneval::SplitMix64 rng(params.u64("seed", 7));
    const size_t dp = x.dpad;

    x.vectors.assign(n * x.stride, 0.0f);
    std::vector<float> padded(n * dp, 0.0f);
    for (size_t i = 0; i < n; i++) {
      std::copy(base + i * dim, base + (i + 1) * dim, &x.vectors[i * x.stride]);
      std::copy(base + i * dim, base + (i + 1) * dim, &padded[i * dp]);
    }

    // The training sample: distinct points drawn at random.
    std::vector<uint32_t> perm(n);
    for (size_t i = 0; i < n; i++) perm[i] = uint32_t(i);
    size_t ns = std::min(n, sample);
    for (size_t i = 0; i < ns; i++) std::swap(perm[i], perm[i + rng.below(n - i)]);
    std::vector<float> train(ns * dp);
    for (size_t i = 0; i < ns; i++) std::copy(&padded[perm[i] * dp], &padded[perm[i] * dp] + dp, &train[i * dp]);

    // Coarse quantiser, then every point's list.
    kmeans(train.data(), ns, dp, nlist, iters, rng, x.centroids);
    std::vector<uint32_t> assign(n);
    for (size_t i = 0; i < n; i++) assign[i] = nearest(&padded[i * dp], x.centroids.data(), nlist, dp);

    // Residuals of the sample, one sub-space at a time, for the codebooks.
    std::vector<float> sub(ns * x.dsub);
    std::vector<float> book;
    x.codebooks.assign(size_t(x.mp) * KSUB * x.dsub, 0.0f);
    for (size_t m = 0; m < M; m++) {
      for (size_t i = 0; i < ns; i++) {
        const float* p = &padded[perm[i] * dp + m * x.dsub];
        const float* c = &x.centroids[assign[perm[i]] * dp + m * x.dsub];
        for (size_t j = 0; j < x.dsub; j++) sub[i * x.dsub + j] = p[j] - c[j];
      }
      kmeans(sub.data(), ns, x.dsub, KSUB, iters, rng, book);
      for (size_t j = 0; j < KSUB; j++)
        for (size_t d = 0; d < x.dsub; d++) x.codebooks[(m * x.dsub + d) * KSUB + j] = book[j * x.dsub + d];
    }

    // Lists, block by block, the codes transposed.
    std::vector<uint32_t> count(nlist, 0);
    for (size_t i = 0; i < n; i++) count[assign[i]]++;
    x.blocks.assign(nlist + 1, 0);
    for (size_t c = 0; c < nlist; c++) x.blocks[c + 1] = x.blocks[c] + uint32_t((count[c] + BBS - 1) / BBS);
    size_t nblocks = x.blocks[nlist];
    x.ids.assign(nblocks * BBS, anneval::NO_ID);
    x.codes.assign(nblocks * x.block_bytes(), 0);
    std::vector<uint32_t> fill(nlist, 0);
    std::vector<float> r(dp);
    std::vector<uint8_t> code(x.mp);
    for (size_t i = 0; i < n; i++) {
      uint32_t c = assign[i];
      size_t slot = size_t(x.blocks[c]) * BBS + fill[c]++;
      x.ids[slot] = uint32_t(i);
      for (size_t j = 0; j < dp; j++) r[j] = padded[i * dp + j] - x.centroids[c * dp + j];
      x.encode(r.data(), code.data());
      uint8_t* blk = &x.codes[(slot / BBS) * x.block_bytes()];
      size_t j = slot % BBS;
      for (size_t m = 0; m < x.mp; m++) {
        uint8_t& byte = blk[m * 16 + (j & 15)];
        byte = uint8_t(j < 16 ? (byte & 0xf0) | code[m] : (byte & 0x0f) | (code[m] << 4));
      }
    }
    x.prepare_scratch();
    return ix;
  }

  void save(anneval::ByteWriter& w) const {
    w.u32(MAGIC);
    w.u32(FORMAT);
    w.u8(uint8_t(metric));
    for (uint32_t v : {dim, n, M, mp, dsub, dpad, stride, nlist, probe_div}) w.u32(v);
    w.f32(rerank);
    w.f32s(centroids);
    w.f32s(codebooks);
    w.u32s(blocks);
    w.u32s(ids);
    std::vector<uint32_t> words(codes.size() / 4);  // block_bytes is a multiple of 32
    std::memcpy(words.data(), codes.data(), codes.size());
    w.u32s(words);
    w.f32s(vectors);
  }

  static std::unique_ptr<Index> load(anneval::ByteReader& r) {
    anneval::check(r.u32() == MAGIC, "not a PQ fast-scan index");
    anneval::check(r.u32() == FORMAT, "unknown PQ fast-scan format");
    auto ix = std::make_unique<Index>();
    Index& x = *ix;
    uint8_t tag = r.u8();
    anneval::check(tag <= 1, "unknown metric tag");
    x.metric = anneval::Metric(tag);
    for (uint32_t* v : {&x.dim, &x.n, &x.M, &x.mp, &x.dsub, &x.dpad, &x.stride, &x.nlist, &x.probe_div})
      *v = r.u32();
    x.rerank = r.f32();
    x.centroids = r.f32s();
    x.codebooks = r.f32s();
    x.blocks = r.u32s();
    x.ids = r.u32s();
    std::vector<uint32_t> words = r.u32s();
    x.codes.resize(words.size() * 4);
    std::memcpy(x.codes.data(), words.data(), x.codes.size());
    x.vectors = r.f32s();
    anneval::check(x.blocks.size() == size_t(x.nlist) + 1, "saved index corrupt: lists");
    anneval::check(x.ids.size() == size_t(x.blocks.back()) * BBS, "saved index corrupt: ids");
    anneval::check(x.codes.size() == size_t(x.blocks.back()) * x.block_bytes(), "saved index corrupt: codes");
    anneval::check(x.vectors.size() == size_t(x.n) * x.stride, "saved index corrupt: vectors");
    x.prepare_scratch();
    return ix;
  }

  // The term of the per-list tables that depends on the list only:
  // |y|² + 2 c·y for each centroid y of each sub-quantiser and list c (with
  // |q - c - y|² = |q - c|² - 2 q·y + (|y|² + 2 c·y), as faiss's IVFPQ
  // precomputed tables), so a visited list costs one addition per entry.
  void precompute_list_tables() {
    ltab.assign(size_t(nlist) * M * KSUB, 0.0f);
    for (size_t c = 0; c < nlist; c++)
      for (size_t m = 0; m < M; m++) {
        float* t = &ltab[(c * M + m) * KSUB];
        const float* cm = &centroids[c * dpad + m * dsub];
        for (size_t d = 0; d < dsub; d++) {
          const float* col = &codebooks[(m * dsub + d) * KSUB];
          for (size_t j = 0; j < KSUB; j++) t[j] += col[j] * (col[j] + 2.0f * cm[d]);
        }
      }
  }

  // Scans list c (at squared distance coarse from the query) into the reservoir.
  void scan_list(uint32_t c, float coarse) {
    // The float tables, their minima (summed into the bias) and spans.
    const float* lt = &ltab[size_t(c) * M * KSUB];
    float bias = coarse, max_span = 0, sum_span = 0;
    for (size_t m = 0; m < M; m++) {
      float* t = &ftab[m * KSUB];
      float lo, hi;
#if defined(__AVX2__) || defined(__SSSE3__)
      __m128 vmin = _mm_set1_ps(__builtin_inff()), vmax = _mm_set1_ps(-__builtin_inff());
      for (size_t j = 0; j < KSUB; j += 4) {
        __m128 v = _mm_add_ps(_mm_loadu_ps(&qterm[m * KSUB + j]), _mm_loadu_ps(lt + m * KSUB + j));
        _mm_storeu_ps(t + j, v);
        vmin = _mm_min_ps(vmin, v);
        vmax = _mm_max_ps(vmax, v);
      }
      vmin = _mm_min_ps(vmin, _mm_shuffle_ps(vmin, vmin, _MM_SHUFFLE(1, 0, 3, 2)));
      vmin = _mm_min_ps(vmin, _mm_shuffle_ps(vmin, vmin, _MM_SHUFFLE(2, 3, 0, 1)));
      vmax = _mm_max_ps(vmax, _mm_shuffle_ps(vmax, vmax, _MM_SHUFFLE(1, 0, 3, 2)));
      vmax = _mm_max_ps(vmax, _mm_shuffle_ps(vmax, vmax, _MM_SHUFFLE(2, 3, 0, 1)));
      lo = _mm_cvtss_f32(vmin);
      hi = _mm_cvtss_f32(vmax);
#else
      lo = __builtin_inff(), hi = -__builtin_inff();
      for (size_t j = 0; j < KSUB; j++) {
        t[j] = qterm[m * KSUB + j] + lt[m * KSUB + j];
        lo = std::min(lo, t[j]);
        hi = std::max(hi, t[j]);
      }
#endif
      mins[m] = lo;
      bias += lo;
      max_span = std::max(max_span, hi - lo);
      sum_span += hi - lo;
    }
    if (bias >= bound) return;  // no point of this list can enter
    // One scale for every table: each entry a byte, the 16-bit sums unsaturated.
    float scale = 1.0f;
    if (max_span > 0) scale = std::min(255.0f / max_span, float(65535 - 2 * mp) / sum_span);
    const float inv = 1.0f / scale;
    for (size_t m = 0; m < M; m++) {
      const float* t = &ftab[m * KSUB];
#if defined(__AVX2__) || defined(__SSSE3__)
      const __m128 lo = _mm_set1_ps(mins[m]), sc = _mm_set1_ps(scale), half = _mm_set1_ps(0.5f);
      __m128i w[4];
      for (size_t j = 0; j < 4; j++)
        w[j] = _mm_cvttps_epi32(_mm_add_ps(_mm_mul_ps(_mm_sub_ps(_mm_loadu_ps(t + 4 * j), lo), sc), half));
      __m128i b = _mm_packus_epi16(_mm_packs_epi32(w[0], w[1]), _mm_packs_epi32(w[2], w[3]));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(&qtab[m * KSUB]), b);
#else
      for (size_t j = 0; j < KSUB; j++)
        qtab[m * KSUB + j] = uint8_t(std::min(255.0f, (t[j] - mins[m]) * scale + 0.5f));
#endif
    }

    // Points pass the SIMD test when their 16-bit sum is at most this.
    auto threshold = [&]() -> uint16_t {
      float t = (bound - bias) * scale;
      if (!(t < 65535.0f)) return 65535;  // also an infinite bound
      return uint16_t(std::max(0.0f, std::floor(t)));
    };
    uint16_t thr = threshold();
    alignas(16) uint16_t sums[BBS];
    for (uint32_t b = blocks[c]; b < blocks[c + 1]; b++) {
      uint32_t mask = scan_block(&codes[size_t(b) * block_bytes()], qtab.data(), mp, thr, sums);
      const uint32_t* bid = &ids[size_t(b) * BBS];
      while (mask) {
        uint32_t bit = uint32_t(__builtin_ctz(mask));
        mask &= mask - 1;
        uint32_t id = bid[point_of(bit)];
        float est = float(sums[bit]) * inv + bias;
        if (id == anneval::NO_ID || est >= bound) continue;
        pool.push_back({est, id});
        if (pool.size() == 2 * cap) {
          shrink_pool();
          thr = threshold();
        }
      }
    }
  }

  // Keeps the cap best of the pool (faiss's reservoir: amortised O(1) per
  // insertion); the worst kept becomes the bound.
  void shrink_pool() {
    std::nth_element(pool.begin(), pool.begin() + (cap - 1), pool.end());
    pool.resize(cap);
    bound = pool[cap - 1].first;
  }

  void search(const float* query, size_t k, size_t ef, std::vector<uint32_t>& out) {
    if (k == 0) return;
    std::copy(query, query + dim, q.begin());
    std::copy(query, query + dim, qs.begin());
    size_t want = std::max(ef, k);
    size_t nprobe = std::min<size_t>(nlist, std::max<size_t>(1, (want + probe_div - 1) / probe_div));
    cap = std::max(k, size_t(float(want) * rerank));
    pool.clear();
    bound = __builtin_inff();

    // The query's term of the tables: -2 q·y.
    for (size_t m = 0; m < M; m++) {
      float* t = &qterm[m * KSUB];
#if defined(__AVX2__) || defined(__SSSE3__)
      __m128 t0 = _mm_setzero_ps(), t1 = t0, t2 = t0, t3 = t0;
      for (size_t d = 0; d < dsub; d++) {
        const __m128 qd = _mm_set1_ps(-2.0f * q[m * dsub + d]);
        const float* col = &codebooks[(m * dsub + d) * KSUB];
        t0 = _mm_add_ps(t0, _mm_mul_ps(qd, _mm_loadu_ps(col)));
        t1 = _mm_add_ps(t1, _mm_mul_ps(qd, _mm_loadu_ps(col + 4)));
        t2 = _mm_add_ps(t2, _mm_mul_ps(qd, _mm_loadu_ps(col + 8)));
        t3 = _mm_add_ps(t3, _mm_mul_ps(qd, _mm_loadu_ps(col + 12)));
      }
      _mm_storeu_ps(t, t0);
      _mm_storeu_ps(t + 4, t1);
      _mm_storeu_ps(t + 8, t2);
      _mm_storeu_ps(t + 12, t3);
#else
      for (size_t j = 0; j < KSUB; j++) t[j] = 0.0f;
      for (size_t d = 0; d < dsub; d++) {
        const float qd = -2.0f * q[m * dsub + d];
        const float* col = &codebooks[(m * dsub + d) * KSUB];
        for (size_t j = 0; j < KSUB; j++) t[j] += qd * col[j];
      }
#endif
    }
    for (uint32_t c = 0; c < nlist; c++) lists[c] = {sq_dist(q.data(), &centroids[size_t(c) * dpad], dpad), c};
    // The nprobe nearest lists, nearest first (the bound tightens sooner), and
    // more while they hold fewer than k points.
    std::nth_element(lists.begin(), lists.begin() + (nprobe - 1), lists.end());
    std::sort(lists.begin(), lists.begin() + nprobe);
    for (size_t l = 0; l < nlist && (l < nprobe || pool.size() < k); l++) {
      if (l == nprobe) std::sort(lists.begin() + nprobe, lists.end());
      scan_list(lists[l].second, lists[l].first);
    }
    if (pool.size() > cap) shrink_pool();

    for (auto& h : pool) h.first = anneval::distance(metric, qs.data(), &vectors[size_t(h.second) * stride], stride);
    size_t answer = std::min(k, pool.size());
    std::partial_sort(pool.begin(), pool.begin() + answer, pool.end());
    for (size_t i = 0; i < answer; i++) out.push_back(pool[i].second);
  }
};
