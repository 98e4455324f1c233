// The C++ reference kernel: HNSW (Malkov & Yashunin, 2016), written for speed;
// the same algorithm and layout as the Rust reference (guest-template/src/kernel.rs).
//
// This file is the one a C++ candidate replaces. It shows the shape of a kernel:
// `struct Index` with build, save, load and search, using the SDK (anneval.hpp)
// for distances, the visited set and the candidate pool.
//
// Layout: vectors zero-padded to whole SIMD blocks in one flat array; level-0
// adjacency flat (1 + 2m slots per point: count, then ids); upper levels
// (1 + m slots per level) in a second flat array reached by an offset per
// point. Search: greedy descent through the upper levels, then best-first
// search at level 0 with a sorted fixed-size pool of max(ef, k) entries.
//
// Parameters: m (default 16), ef_construction (default 200), seed (default
// 100) for the level draw.
#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "anneval.hpp"

using anneval::CandidatePool;
using anneval::Neighbor;
using anneval::VisitedSet;

namespace {

constexpr uint32_t MAGIC = 0x57534e48;  // "HNSW", little-endian
constexpr uint32_t FORMAT = 1;
// Levels above this are never drawn in practice (p < m^-16); capping keeps a
// pathological seed from allocating absurd upper layers.
constexpr size_t MAX_LEVEL = 16;

}  // namespace

struct Index {
  size_t dim = 0, stride = 0, m = 0, ef_construction = 0, n = 0, max_level = 0;
  anneval::Metric metric = anneval::Metric::Euclidean;
  std::vector<float> vectors;
  std::vector<uint32_t> links0;
  std::vector<uint8_t> levels;
  std::vector<uint32_t> upper_offsets;
  std::vector<uint32_t> upper;
  uint32_t entry = 0;

  // Working memory of one search, reused across queries.
  VisitedSet visited;
  CandidatePool pool;
  std::vector<uint32_t> fresh;
  std::vector<float> padded;

  const float* vector(uint32_t id) const { return vectors.data() + size_t(id) * stride; }
  float distance_to(const float* query, uint32_t id) const {
    return anneval::distance(metric, query, vector(id), stride);
  }
  size_t slots0() const { return 1 + 2 * m; }
  size_t slots_upper() const { return 1 + m; }
  size_t max_neighbors(size_t level) const { return level == 0 ? 2 * m : m; }

  // Where id's adjacency at level starts: the count, then the ids.
  uint32_t* adjacency(uint32_t id, size_t level) {
    return level == 0 ? links0.data() + size_t(id) * slots0()
                      : upper.data() + upper_offsets[id] + (level - 1) * slots_upper();
  }
  const uint32_t* adjacency(uint32_t id, size_t level) const {
    return const_cast<Index*>(this)->adjacency(id, level);
  }

  void set_neighbors(uint32_t id, size_t level, const std::vector<Neighbor>& kept) {
    uint32_t* adj = adjacency(id, level);
    adj[0] = uint32_t(kept.size());
    for (size_t i = 0; i < kept.size(); i++) adj[1 + i] = kept[i].id;
  }

  // Greedy walk at one level: move to the nearest neighbour until none is nearer.
  Neighbor greedy(const float* query, Neighbor cur, size_t level) const {
    for (bool moved = true; moved;) {
      moved = false;
      const uint32_t* adj = adjacency(cur.id, level);
      for (uint32_t i = 1; i <= adj[0]; i++) {
        float d = distance_to(query, adj[i]);
        if (d < cur.dist) {
          cur = Neighbor{adj[i], d};
          moved = true;
        }
      }
    }
    return cur;
  }

  // Best-first search at one level from entry; the best ef points end up in
  // the pool, nearest first. The unvisited neighbours of a node are gathered
  // first, the first cache line of each one's vector requested as it is found
  // and the next node's adjacency before this one's distances run, so that
  // all those misses are in flight together (one line per vector keeps the
  // burst small: in WebAssembly a prefetch is a load that must retire).
  void search_level(const float* query, Neighbor start, size_t level, size_t ef) {
    visited.clear();
    pool.reset(ef);
    visited.insert(start.id);
    pool.insert(start.id, start.dist);
    while (pool.has_next()) {
      uint32_t cur = pool.pop_next().id;
      fresh.clear();
      const uint32_t* adj = adjacency(cur, level);
      for (uint32_t i = 1; i <= adj[0]; i++) {
        if (visited.insert(adj[i])) {
          fresh.push_back(adj[i]);
          anneval::prefetch(vector(adj[i]));
        }
      }
      uint32_t next = pool.peek_next();
      if (next != anneval::NO_ID) anneval::prefetch(adjacency(next, level));
      for (uint32_t id : fresh) pool.insert(id, distance_to(query, id));
    }
  }

  // The heuristic of the HNSW paper (algorithm 4): keep a candidate only if it
  // is nearer to the base point than to every point already kept.
  std::vector<Neighbor> select_neighbors(const std::vector<Neighbor>& sorted, size_t max) const {
    if (sorted.size() <= max) return sorted;
    std::vector<Neighbor> kept;
    kept.reserve(max);
    for (const Neighbor& cand : sorted) {
      if (kept.size() == max) break;
      const float* cv = vector(cand.id);
      bool keep = std::all_of(kept.begin(), kept.end(),
                              [&](const Neighbor& r) { return distance_to(cv, r.id) > cand.dist; });
      if (keep) kept.push_back(cand);
    }
    return kept;
  }

  // Adds `added` to node's links at level, pruning with the heuristic when full.
  void link(uint32_t node, uint32_t added, size_t level) {
    size_t max = max_neighbors(level);
    uint32_t* adj = adjacency(node, level);
    if (adj[0] < max) {
      adj[1 + adj[0]] = added;
      adj[0]++;
      return;
    }
    const float* base = vector(node);
    std::vector<Neighbor> candidates;
    candidates.reserve(adj[0] + 1);
    for (uint32_t i = 1; i <= adj[0]; i++) candidates.push_back({adj[i], distance_to(base, adj[i])});
    candidates.push_back({added, distance_to(base, added)});
    std::sort(candidates.begin(), candidates.end(),
              [](const Neighbor& a, const Neighbor& b) { return a.dist < b.dist; });
    set_neighbors(node, level, select_neighbors(candidates, max));
  }

  void insert(uint32_t id) {
    std::copy(vector(id), vector(id) + stride, padded.begin());
    const float* query = padded.data();
    size_t level = levels[id];
    Neighbor cur{entry, distance_to(query, entry)};
    for (size_t l = max_level; l > level; l--) cur = greedy(query, cur, l);
    std::vector<Neighbor> candidates;
    for (size_t l = std::min(level, max_level) + 1; l-- > 0;) {
      search_level(query, cur, l, ef_construction);
      candidates.clear();
      for (size_t i = 0; i < pool.size(); i++) candidates.push_back(pool.get(i));
      std::vector<Neighbor> selected = select_neighbors(candidates, m);
      set_neighbors(id, l, selected);
      for (const Neighbor& nb : selected) link(nb.id, id, l);
      cur = candidates[0];
    }
    if (level > max_level) {
      max_level = level;
      entry = id;
    }
  }

  void prepare_scratch() {
    visited = VisitedSet(n);
    padded.assign(stride, 0.0f);
  }

  static std::unique_ptr<Index> build(const float* base, size_t n, size_t dim,
                                      anneval::Metric metric, const anneval::Params& params) {
    anneval::check(n > 0, "cannot index an empty base set");
    anneval::check(n < (size_t(1) << 31), "too many points for 31-bit ids");
    auto index = std::make_unique<Index>();
    Index& x = *index;
    x.dim = dim;
    x.stride = anneval::padded_dim(dim);
    x.metric = metric;
    x.n = n;
    x.m = std::max<size_t>(params.size("m", 16), 2);
    x.ef_construction = std::max(params.size("ef_construction", 200), x.m);
    anneval::SplitMix64 rng(params.u64("seed", 100));

    x.vectors.assign(n * x.stride, 0.0f);
    for (size_t i = 0; i < n; i++) std::copy(base + i * dim, base + (i + 1) * dim, &x.vectors[i * x.stride]);

    // Level draw as in the paper: floor(-ln(U) / ln(m)).
    double level_mult = 1.0 / std::log(double(x.m));
    x.levels.resize(n);
    size_t upper_len = 0;
    x.upper_offsets.resize(n);
    for (size_t i = 0; i < n; i++) {
      double u = 1.0 - rng.next_f64();  // in (0, 1]
      x.levels[i] = uint8_t(std::min(size_t(-std::log(u) * level_mult), MAX_LEVEL));
      x.upper_offsets[i] = uint32_t(upper_len);
      upper_len += x.levels[i] * (1 + x.m);
    }
    anneval::check(upper_len < UINT32_MAX, "upper levels too large");
    x.links0.assign(n * x.slots0(), 0);
    x.upper.assign(upper_len, 0);
    x.max_level = x.levels[0];
    x.entry = 0;
    x.prepare_scratch();
    for (uint32_t id = 1; id < n; id++) x.insert(id);
    return index;
  }

  void save(anneval::ByteWriter& w) const {
    w.u32(MAGIC);
    w.u32(FORMAT);
    w.u8(uint8_t(metric));
    for (size_t v : {dim, stride, m, ef_construction, n, max_level}) w.u64(v);
    w.u32(entry);
    w.f32s(vectors);
    w.u32s(links0);
    w.bytes(levels);
    w.u32s(upper_offsets);
    w.u32s(upper);
  }

  static std::unique_ptr<Index> load(anneval::ByteReader& r) {
    anneval::check(r.u32() == MAGIC, "not an HNSW index");
    anneval::check(r.u32() == FORMAT, "unknown HNSW index format");
    auto index = std::make_unique<Index>();
    Index& x = *index;
    uint8_t tag = r.u8();
    anneval::check(tag <= 1, "unknown metric tag in saved index");
    x.metric = anneval::Metric(tag);
    size_t* header[] = {&x.dim, &x.stride, &x.m, &x.ef_construction, &x.n, &x.max_level};
    for (size_t* v : header) *v = size_t(r.u64());
    x.entry = r.u32();
    x.vectors = r.f32s();
    x.links0 = r.u32s();
    x.levels = r.bytes();
    x.upper_offsets = r.u32s();
    x.upper = r.u32s();
    anneval::check(x.vectors.size() == x.n * x.stride, "vector array size");
    anneval::check(x.links0.size() == x.n * x.slots0(), "level-0 array size");
    x.prepare_scratch();
    return index;
  }

  void search(const float* query, size_t k, size_t ef, std::vector<uint32_t>& out) {
    std::copy(query, query + dim, padded.begin());
    const float* q = padded.data();
    Neighbor cur{entry, distance_to(q, entry)};
    for (size_t level = max_level; level >= 1; level--) cur = greedy(q, cur, level);
    // ef below k is treated as k: the pool must hold k answers.
    search_level(q, cur, 0, std::max(ef, k));
    for (size_t i = 0; i < pool.size() && i < k; i++) out.push_back(pool.get(i).id);
  }
};
