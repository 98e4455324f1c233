// A quantised proximity graph searched the way GLASS (zilliztech/pyglass,
// the graph library CRINN optimised) searches one: a flat graph with a fixed
// number R of neighbour slots per node (empty slots hold -1), walked with a
// sorted linear candidate pool over 4-bit codes, and the pool's survivors
// re-ranked with half-precision copies of the vectors.
//
// Build: HNSW's insertion (Malkov & Yashunin, algorithms 1 and 4) at level 0
// only, as GLASS's HNSW builder keeps only hnswlib's bottom layer: each point,
// in a shuffled order, is searched for with a candidate list of L entries
// from the point nearest the centroid (NSG's navigating node), keeps R/2
// neighbours chosen by the heuristic (a candidate is kept only if it is
// nearer to the point than to every one already kept; NSG's rule too), and
// is linked back from each of them, a full list being cut back to R by the
// same rule. Every build distance is the
// integer L2 between 8-bit codes (SQ8, per-dimension min/max: like GLASS's
// integer SQ kernels it measures in codes, so each dimension counts in units
// of its own range; the fp16 re-ranking restores the true order).
//
// Search: the query is coded on the 4-bit grid at 8 times its resolution
// (0..120 against 8 · code), so the walk's distance Σ (q - 8c)² stays exact in
// bytes: nibbles unpacked with and/shift, |q - 8c| squared and pair-summed by
// pmaddubsw, widened by pmaddwd. Neighbours' codes are prefetched a few ahead
// of their distances, as GLASS's searcher does. The whole pool (max(ef, k)
// entries) is then re-ranked with F16C and FMA against fp16 copies. For
// angular data the vectors arrive unit-normalised and L2 ranks as cosine.
//
// Parameters: R (graph degree, default 32), L (candidate list of the build,
// default 200), seed (insertion order, default 7).
#include "anneval.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <numeric>
#include <utility>
#include <vector>

namespace {

constexpr uint32_t MAGIC = 0x53534c47;  // "GLSS"
constexpr uint32_t VERSION = 1;
constexpr uint32_t EMPTY = 0xffffffffu;  // an unused neighbour slot
constexpr int PREFETCH_AHEAD = 4;        // neighbours' codes requested ahead

inline size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

inline void prefetch_lines(const void* p, size_t bytes) {
  const char* c = static_cast<const char*>(p);
  for (size_t off = 0; off < bytes; off += 64) _mm_prefetch(c + off, _MM_HINT_T0);
}

#if defined(__AVX2__)
inline int32_t hsum_epi32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}
#endif

// Σ (a[i] - b[i])² over 8-bit codes; d is a multiple of 32.
inline int32_t sq8_l2(const uint8_t* a, const uint8_t* b, size_t d) {
#if defined(__AVX2__)
  __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
  for (size_t i = 0; i < d; i += 32) {
    __m256i a0 = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i)));
    __m256i b0 = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i)));
    __m256i a1 = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i + 16)));
    __m256i b1 = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i + 16)));
    __m256i d0 = _mm256_sub_epi16(a0, b0), d1 = _mm256_sub_epi16(a1, b1);
    acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(d0, d0));
    acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(d1, d1));
  }
  return hsum_epi32(_mm256_add_epi32(acc0, acc1));
#else
  int32_t s = 0;
  for (size_t i = 0; i < d; i++) {
    int32_t t = int32_t(a[i]) - int32_t(b[i]);
    s += t * t;
  }
  return s;
#endif
}

// Σ (q[j] - 8 c[j])² where c holds 4-bit codes two to a byte (dimension 2i in
// the low nibble of byte i, 2i + 1 in the high one) and the query's 0..120
// values are split the same way: q_lo[i] is dimension 2i, q_hi[i] 2i + 1.
// nbytes is a multiple of 32.
inline int32_t sq4_l2(const uint8_t* q_lo, const uint8_t* q_hi, const uint8_t* c, size_t nbytes) {
#if defined(__AVX2__)
  const __m256i nibble = _mm256_set1_epi8(0x0f);
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i acc = _mm256_setzero_si256();
  for (size_t i = 0; i < nbytes; i += 32) {
    __m256i packed = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + i));
    // Nibbles to bytes, times 8: a byte of at most 15 shifted by 3 stays in
    // its byte of the 16-bit lane.
    __m256i lo = _mm256_slli_epi16(_mm256_and_si256(packed, nibble), 3);
    __m256i hi = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(packed, 4), nibble), 3);
    __m256i ql = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q_lo + i));
    __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q_hi + i));
    // Both sides lie in 0..120, so the byte difference cannot wrap, and a
    // pair of squares (at most 2 · 120²) fits pmaddubsw's 16 bits.
    __m256i dl = _mm256_abs_epi8(_mm256_sub_epi8(ql, lo));
    __m256i dh = _mm256_abs_epi8(_mm256_sub_epi8(qh, hi));
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(dl, dl), ones));
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(dh, dh), ones));
  }
  return hsum_epi32(acc);
#else
  int32_t s = 0;
  for (size_t i = 0; i < nbytes; i++) {
    int32_t l = int32_t(q_lo[i]) - 8 * int32_t(c[i] & 15);
    int32_t h = int32_t(q_hi[i]) - 8 * int32_t(c[i] >> 4);
    s += l * l + h * h;
  }
  return s;
#endif
}

// Σ (q[i] - h[i])² against half-precision values; d is a multiple of 4.
inline float f16_l2(const float* q, const uint16_t* h, size_t d) {
#if defined(__AVX2__) && defined(__F16C__) && defined(__FMA__)
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    __m256 x0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + i)));
    __m256 x1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + i + 8)));
    __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(q + i), x0);
    __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(q + i + 8), x1);
    acc0 = _mm256_fmadd_ps(d0, d0, acc0);
    acc1 = _mm256_fmadd_ps(d1, d1, acc1);
  }
  if (i + 8 <= d) {
    __m256 x0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + i)));
    __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(q + i), x0);
    acc0 = _mm256_fmadd_ps(d0, d0, acc0);
    i += 8;
  }
  __m256 acc = _mm256_add_ps(acc0, acc1);
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  if (i < d) {  // the last four
    __m128 x = _mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(h + i)));
    __m128 t = _mm_sub_ps(_mm_loadu_ps(q + i), x);
    s = _mm_fmadd_ps(t, t, s);
  }
  s = _mm_hadd_ps(s, s);
  s = _mm_hadd_ps(s, s);
  return _mm_cvtss_f32(s);
#else
  float s = 0;
  for (size_t i = 0; i < d; i++) {
    float t = q[i] - anneval::f32_from_f16(h[i]);
    s += t * t;
  }
  return s;
#endif
}

// d floats (a multiple of 4) to half precision, rounding to nearest.
inline void to_f16(const float* x, uint16_t* out, size_t d) {
#if defined(__F16C__)
  size_t i = 0;
  for (; i + 8 <= d; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
  if (i < d)
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out + i),
                     _mm_cvtps_ph(_mm_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
#else
  for (size_t i = 0; i < d; i++) out[i] = anneval::f16_from_f32(x[i]);
#endif
}

// GLASS's linear pool: one sorted array of (id, distance) of fixed capacity,
// inserted into by binary search and a move, with a cursor at the nearest
// entry not yet expanded; an expanded entry's id carries the top bit.
struct LinearPool {
  struct Entry {
    uint32_t id;
    int32_t dist;
  };
  static constexpr uint32_t CHECKED = 1u << 31;
  std::vector<Entry> data;
  size_t size = 0, cursor = 0, capacity = 0;

  void reset(size_t cap) {
    capacity = std::max<size_t>(cap, 1);
    if (data.size() < capacity + 1) data.resize(capacity + 1);
    size = cursor = 0;
  }
  bool insert(uint32_t id, int32_t dist) {
    if (size == capacity && dist >= data[size - 1].dist) return false;
    size_t lo = 0, hi = size;
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      if (data[mid].dist > dist) hi = mid; else lo = mid + 1;
    }
    std::memmove(&data[lo + 1], &data[lo], (size - lo) * sizeof(Entry));
    data[lo] = {id, dist};
    if (size < capacity) size++;
    if (lo < cursor) cursor = lo;
    return true;
  }
  bool has_next() const { return cursor < size; }
  uint32_t pop() {
    size_t at = cursor;
    data[at].id |= CHECKED;
    while (cursor < size && (data[cursor].id & CHECKED)) cursor++;
    return data[at].id & ~CHECKED;
  }
  uint32_t id(size_t i) const { return data[i].id & ~CHECKED; }
  int32_t dist(size_t i) const { return data[i].dist; }
};

struct Bitset {
  std::vector<uint64_t> words;
  void reset(size_t n) {
    words.assign((n + 63) / 64, 0);
  }
  void clear() { std::fill(words.begin(), words.end(), 0); }
  bool get(uint32_t i) const { return (words[i >> 6] >> (i & 63)) & 1; }
  void set(uint32_t i) { words[i >> 6] |= uint64_t(1) << (i & 63); }
};

std::vector<uint32_t> bytes_to_words(const void* p, size_t nbytes) {
  std::vector<uint32_t> w(nbytes / 4);
  std::memcpy(w.data(), p, w.size() * 4);
  return w;
}

}  // namespace

struct Index {
  uint32_t dim = 0, n = 0, R = 0, entry = 0;
  anneval::Metric metric = anneval::Metric::Euclidean;
  size_t dp8 = 0;  // bytes of an SQ8 code (dimension padded to 32)
  size_t nb4 = 0;  // bytes of a packed SQ4 code (dimension padded to 64, halved)
  size_t df = 0;   // halves of an fp16 copy (dimension padded to 4)
  std::vector<float> mins, difs;     // per-dimension range of both quantisers
  std::vector<uint32_t> graph;       // n × R neighbour ids, EMPTY-terminated
  std::vector<uint8_t> sq4;          // n × nb4
  std::vector<uint16_t> f16;         // n × df
  std::vector<uint8_t> sq8;          // n × dp8, during the build only

  // Working memory, reused across searches.
  LinearPool pool;
  Bitset visited;
  std::vector<uint32_t> edges;
  std::vector<uint8_t> q_lo, q_hi;
  std::vector<float> qf;
  std::vector<std::pair<float, uint32_t>> ranked;

  void set_sizes() {
    dp8 = round_up(dim, 32);
    nb4 = round_up(dim, 64) / 2;
    df = round_up(dim, 4);
  }
  void prepare_scratch() {
    visited.reset(n);
    edges.resize(R);
    q_lo.assign(nb4, 0);
    q_hi.assign(nb4, 0);
    qf.assign(df, 0.0f);
  }

  // Where x falls in dimension j's range, clipped to [0, 1].
  float unit(float x, size_t j) const {
    if (difs[j] <= 0) return 0.0f;
    float t = (x - mins[j]) / difs[j];
    return std::min(1.0f, std::max(0.0f, t));
  }
  const uint32_t* links(uint32_t u) const { return graph.data() + size_t(u) * R; }
  uint32_t* links(uint32_t u) { return graph.data() + size_t(u) * R; }
  const uint8_t* code8(uint32_t u) const { return sq8.data() + size_t(u) * dp8; }
  const uint8_t* code4(uint32_t u) const { return sq4.data() + size_t(u) * nb4; }
  const uint16_t* half(uint32_t u) const { return f16.data() + size_t(u) * df; }

  // Best-first walk from the entry (GLASS's search loop): expand the nearest
  // unexpanded pool entry; gather its unvisited neighbours, marking them;
  // request the first few codes, then each code PREFETCH_AHEAD ahead of its
  // distance; offer every distance to the pool.
  template <typename Dist>
  void walk(size_t cap, size_t code_bytes, const uint8_t* codes, size_t stride, Dist dist) {
    pool.reset(cap);
    visited.clear();
    visited.set(entry);
    pool.insert(entry, dist(entry));
    while (pool.has_next()) {
      uint32_t u = pool.pop();
      const uint32_t* adj = links(u);
      size_t m = 0;
      for (size_t i = 0; i < R && adj[i] != EMPTY; i++) {
        uint32_t v = adj[i];
        if (visited.get(v)) continue;
        visited.set(v);
        edges[m++] = v;
      }
      if (pool.has_next()) prefetch_lines(links(pool.data[pool.cursor].id & ~LinearPool::CHECKED), size_t(R) * 4);
      for (size_t i = 0; i < m && i < size_t(PREFETCH_AHEAD); i++)
        prefetch_lines(codes + size_t(edges[i]) * stride, code_bytes);
      for (size_t i = 0; i < m; i++) {
        if (i + PREFETCH_AHEAD < m)
          prefetch_lines(codes + size_t(edges[i + PREFETCH_AHEAD]) * stride, code_bytes);
        pool.insert(edges[i], dist(edges[i]));
      }
    }
  }

  // The heuristic: walk the candidates nearest first and keep one only when
  // it is nearer to the base than to every candidate kept so far.
  void prune(std::vector<LinearPool::Entry>& cands, size_t max, std::vector<uint32_t>& kept) const {
    std::sort(cands.begin(), cands.end(), [](const LinearPool::Entry& a, const LinearPool::Entry& b) {
      return a.dist < b.dist || (a.dist == b.dist && a.id < b.id);
    });
    kept.clear();
    for (const auto& c : cands) {
      if (kept.size() == max) break;
      const uint8_t* cc = code8(c.id);
      bool keep = true;
      for (uint32_t r : kept)
        if (sq8_l2(cc, code8(r), dp8) <= c.dist) {
          keep = false;
          break;
        }
      if (keep) kept.push_back(c.id);
    }
  }

  void set_links(uint32_t u, const std::vector<uint32_t>& ids) {
    uint32_t* adj = links(u);
    size_t i = 0;
    for (; i < ids.size() && i < R; i++) adj[i] = ids[i];
    for (; i < R; i++) adj[i] = EMPTY;
  }

  void insert(uint32_t p, size_t L, size_t M, std::vector<LinearPool::Entry>& cands,
              std::vector<uint32_t>& kept) {
    const uint8_t* pc = code8(p);
    walk(L, dp8, sq8.data(), dp8, [&](uint32_t v) { return sq8_l2(pc, code8(v), dp8); });
    cands.clear();
    for (size_t i = 0; i < pool.size; i++)
      if (pool.id(i) != p) cands.push_back({pool.id(i), pool.dist(i)});
    prune(cands, M, kept);
    std::vector<uint32_t> chosen = kept;
    set_links(p, chosen);
    for (uint32_t s : chosen) {
      uint32_t* adj = links(s);
      size_t deg = 0;
      while (deg < R && adj[deg] != EMPTY) deg++;
      if (deg < R) {
        adj[deg] = p;
        continue;
      }
      // Full: cut the list plus p back to R by the heuristic, from s.
      const uint8_t* sc = code8(s);
      cands.clear();
      for (size_t i = 0; i < R; i++) cands.push_back({adj[i], sq8_l2(sc, code8(adj[i]), dp8)});
      cands.push_back({p, sq8_l2(sc, pc, dp8)});
      prune(cands, R, kept);
      set_links(s, kept);
    }
  }

  static std::unique_ptr<Index> build(const float* base, size_t n, size_t dim, anneval::Metric metric,
                                      const anneval::Params& params) {
    anneval::check(n > 0, "cannot index an empty base set");
    anneval::check(n < (size_t(1) << 31), "too many points for 31-bit ids");
    auto ix = std::make_unique<Index>();
    Index& x = *ix;
    x.dim = uint32_t(dim);
    x.n = uint32_t(n);
    x.metric = metric;
    x.R = uint32_t(std::max<size_t>(params.size("R", 32), 2));
    size_t L = std::max<size_t>(params.size("L", 200), x.R);
    anneval::SplitMix64 rng(params.u64("seed", 7));
    x.set_sizes();

    // Per-dimension range (the padding's range is empty: its codes stay 0).
    x.mins.assign(dim, 0.0f);
    x.difs.assign(dim, 0.0f);
    std::vector<float> maxs(dim);
    for (size_t j = 0; j < dim; j++) x.mins[j] = maxs[j] = base[j];
    for (size_t i = 1; i < n; i++)
      for (size_t j = 0; j < dim; j++) {
        float v = base[i * dim + j];
        x.mins[j] = std::min(x.mins[j], v);
        maxs[j] = std::max(maxs[j], v);
      }
    for (size_t j = 0; j < dim; j++) x.difs[j] = maxs[j] - x.mins[j];

    x.sq8.assign(n * x.dp8, 0);
    x.sq4.assign(n * x.nb4, 0);
    x.f16.assign(n * x.df, 0);
    std::vector<float> row(x.df, 0.0f);
    std::vector<double> mean(dim, 0.0);
    for (size_t i = 0; i < n; i++) {
      const float* v = base + i * dim;
      uint8_t* c8 = &x.sq8[i * x.dp8];
      uint8_t* c4 = &x.sq4[i * x.nb4];
      for (size_t j = 0; j < dim; j++) {
        float t = x.unit(v[j], j);
        c8[j] = uint8_t(std::lrint(t * 255.0f));
        uint8_t q = uint8_t(std::lrint(t * 15.0f));
        c4[j / 2] |= (j & 1) ? uint8_t(q << 4) : q;
        mean[j] += v[j];
      }
      std::copy(v, v + dim, row.begin());
      to_f16(row.data(), &x.f16[i * x.df], x.df);
    }

    // The entry: the point whose code is nearest the centroid's, as NSG picks
    // its navigating node.
    std::vector<uint8_t> mean_code(x.dp8, 0);
    for (size_t j = 0; j < dim; j++)
      mean_code[j] = uint8_t(std::lrint(x.unit(float(mean[j] / double(n)), j) * 255.0f));
    int32_t best = sq8_l2(mean_code.data(), x.code8(0), x.dp8);
    for (uint32_t i = 1; i < n; i++) {
      int32_t d = sq8_l2(mean_code.data(), x.code8(i), x.dp8);
      if (d < best) best = d, x.entry = i;
    }

    x.graph.assign(n * x.R, EMPTY);
    x.prepare_scratch();
    std::vector<uint32_t> order(n);
    std::iota(order.begin(), order.end(), 0u);
    for (size_t i = n; i > 1; i--) std::swap(order[i - 1], order[rng.below(i)]);
    size_t M = std::max<size_t>(x.R / 2, 1);
    std::vector<LinearPool::Entry> cands;
    std::vector<uint32_t> kept;
    for (uint32_t p : order)
      if (p != x.entry) x.insert(p, L, M, cands, kept);
    std::vector<uint8_t>().swap(x.sq8);
    return ix;
  }

  void save(anneval::ByteWriter& w) const {
    w.u32(MAGIC);
    w.u32(VERSION);
    w.u8(uint8_t(metric));
    w.u32(dim);
    w.u32(n);
    w.u32(R);
    w.u32(entry);
    w.f32s(mins);
    w.f32s(difs);
    w.u32s(graph);
    w.u32s(bytes_to_words(sq4.data(), sq4.size()));
    w.u32s(bytes_to_words(f16.data(), f16.size() * 2));
  }

  static std::unique_ptr<Index> load(anneval::ByteReader& r) {
    anneval::check(r.u32() == MAGIC, "not a GLASS SQ graph index");
    anneval::check(r.u32() == VERSION, "unknown index version");
    auto ix = std::make_unique<Index>();
    Index& x = *ix;
    uint8_t tag = r.u8();
    anneval::check(tag <= 1, "unknown metric tag");
    x.metric = anneval::Metric(tag);
    x.dim = r.u32();
    x.n = r.u32();
    x.R = r.u32();
    x.entry = r.u32();
    x.set_sizes();
    x.mins = r.f32s();
    x.difs = r.f32s();
    x.graph = r.u32s();
    std::vector<uint32_t> w4 = r.u32s();
    std::vector<uint32_t> wf = r.u32s();
    anneval::check(x.mins.size() == x.dim && x.difs.size() == x.dim, "range arrays size");
    anneval::check(x.graph.size() == size_t(x.n) * x.R, "graph size");
    anneval::check(w4.size() * 4 == size_t(x.n) * x.nb4, "sq4 codes size");
    anneval::check(wf.size() * 2 == size_t(x.n) * x.df, "fp16 vectors size");
    anneval::check(x.entry < x.n, "entry point");
    x.sq4.resize(w4.size() * 4);
    std::memcpy(x.sq4.data(), w4.data(), x.sq4.size());
    x.f16.resize(wf.size() * 2);
    std::memcpy(x.f16.data(), wf.data(), x.f16.size() * 2);
    x.prepare_scratch();
    return ix;
  }

  void search(const float* query, size_t k, size_t ef, std::vector<uint32_t>& out) {
    if (k == 0) return;
    // The query on the 4-bit grid at 8 times its resolution, split by nibble.
    std::fill(q_lo.begin(), q_lo.end(), 0);
    std::fill(q_hi.begin(), q_hi.end(), 0);
    for (size_t j = 0; j < dim; j++) {
      uint8_t q = uint8_t(std::lrint(unit(query[j], j) * 120.0f));
      if (j & 1) q_hi[j / 2] = q; else q_lo[j / 2] = q;
    }
    std::copy(query, query + dim, qf.begin());

    size_t cap = std::min<size_t>(std::max(ef, k), n);
    const uint8_t* ql = q_lo.data();
    const uint8_t* qh = q_hi.data();
    walk(cap, nb4, sq4.data(), nb4, [&](uint32_t v) { return sq4_l2(ql, qh, code4(v), nb4); });

    // Re-rank the whole pool with the fp16 copies.
    ranked.clear();
    for (size_t i = 0; i < pool.size; i++) {
      if (i + 1 < pool.size) prefetch_lines(half(pool.id(i + 1)), df * 2);
      uint32_t id = pool.id(i);
      ranked.push_back({f16_l2(qf.data(), half(id), df), id});
    }
    size_t answer = std::min(k, ranked.size());
    std::partial_sort(ranked.begin(), ranked.begin() + answer, ranked.end());
    for (size_t i = 0; i < answer; i++) out.push_back(ranked[i].second);
  }
};
