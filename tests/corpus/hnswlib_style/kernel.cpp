// HNSW (Malkov & Yashunin, arXiv:1603.09320) structured the way the hnswlib
// library structures it: a class with one contiguous level-0 block holding,
// per element, the link count, the 2M level-0 links, the raw vector and the
// label (hnswlib's data_level0_memory_), a separate link list per element for
// the levels above 0 (linkLists_), levels drawn as floor(-ln(u) * mult) with
// mult = 1/ln(M), construction by insertion one point at a time
// (addPoint -> searchBaseLayer -> mutuallyConnectNewElement), the pruning
// heuristic (getNeighborsByHeuristic2), an epoch-tagged visited list, and
// std::priority_queue max-heaps for the result set and (with negated
// distances) for the candidate set.
//
// The distance functions are hnswlib's kind: x86 intrinsics with a 16-floats-
// per-step kernel at AVX-512, AVX or SSE width, a 4-floats-per-step SSE
// kernel, and "residual" variants that run the vector part and finish the
// tail in scalar code, picked once from the dimension as hnswlib's spaces do
// (L2Space for squared Euclidean, InnerProductSpace for 1 - dot on
// normalised vectors). Search prefetches the visited tag and the data of the
// next neighbour while it scores the current one, as hnswlib does.
//
//
// A bundle (scored as a folder), laid out the way hnswlib lays out its
// headers: hnswlib/hnswlib.h (types), space_l2.h (distances),
// visited_list.h (the visited list and heaps), and the index here.
//
// Parameters: m (16), ef_construction (200), seed (100).
#include "anneval.hpp"

#include "hnswlib/hnswlib.h"
#include "hnswlib/space_l2.h"
#include "hnswlib/visited_list.h"

struct Index {
  // Shape.
  size_t dim_ = 0;
  size_t data_size_ = 0;
  anneval::Metric metric_ = anneval::Metric::Euclidean;
  size_t M_ = 16, maxM_ = 16, maxM0_ = 32, ef_construction_ = 200;
  double mult_ = 0;
  size_t cur_element_count_ = 0;

  // Layout of one element in the level-0 block.
  size_t size_links_level0_ = 0;
  size_t size_links_per_element_ = 0;
  size_t size_data_per_element_ = 0;
  size_t offsetData_ = 0, label_offset_ = 0;

  // The level-0 block (kept in 32-bit words so that it saves in bulk).
  std::vector<uint32_t> level0_words_;
  char* data_level0_memory_ = nullptr;
  // Upper levels: element i's lists for levels 1..element_levels_[i].
  std::vector<std::vector<uint32_t>> linkLists_;
  std::vector<int> element_levels_;

  int maxlevel_ = -1;
  tableint enterpoint_node_ = 0;

  DISTFUNC fstdistfunc_ = nullptr;
  const void* dist_func_param_ = &dim_;

  VisitedList visited_;
  anneval::SplitMix64 level_generator_{100};

  // --- layout -------------------------------------------------------------
  void setup_layout(size_t n) {
    data_size_ = dim_ * sizeof(float);
    size_links_level0_ = maxM0_ * sizeof(tableint) + sizeof(linklistsizeint);
    size_links_per_element_ = maxM_ * sizeof(tableint) + sizeof(linklistsizeint);
    size_data_per_element_ = size_links_level0_ + data_size_ + sizeof(labeltype);
    offsetData_ = size_links_level0_;
    label_offset_ = size_links_level0_ + data_size_;
    fstdistfunc_ = pick_distance(metric_, dim_);
    dist_func_param_ = &dim_;
    visited_.init(n);
  }
  void attach_level0() { data_level0_memory_ = reinterpret_cast<char*>(level0_words_.data()); }

  char* getDataByInternalId(tableint id) const {
    return data_level0_memory_ + id * size_data_per_element_ + offsetData_;
  }
  linklistsizeint* get_linklist0(tableint id) const {
    return reinterpret_cast<linklistsizeint*>(data_level0_memory_ + id * size_data_per_element_);
  }
  linklistsizeint* get_linklist(tableint id, int level) const {
    const uint32_t* base = linkLists_[id].data();
    return const_cast<linklistsizeint*>(base + (level - 1) * (size_links_per_element_ / sizeof(uint32_t)));
  }
  linklistsizeint* get_linklist_at_level(tableint id, int level) const {
    return level == 0 ? get_linklist0(id) : get_linklist(id, level);
  }
  static unsigned short getListCount(const linklistsizeint* ll) {
    return *reinterpret_cast<const unsigned short*>(ll);
  }
  static void setListCount(linklistsizeint* ll, unsigned short n) {
    *reinterpret_cast<unsigned short*>(ll) = n;
  }
  labeltype getExternalLabel(tableint id) const {
    labeltype l;
    std::memcpy(&l, data_level0_memory_ + id * size_data_per_element_ + label_offset_, sizeof(l));
    return l;
  }
  void setExternalLabel(tableint id, labeltype l) {
    std::memcpy(data_level0_memory_ + id * size_data_per_element_ + label_offset_, &l, sizeof(l));
  }
  float dist(const void* a, const void* b) const { return fstdistfunc_(a, b, dist_func_param_); }

  int getRandomLevel(double reverse_size) {
    double u = 1.0 - level_generator_.next_f64();  // (0, 1]
    double r = -std::log(u) * reverse_size;
    return std::min(int(r), kMaxLevel);
  }

  // --- construction ---------------------------------------------------------
  // Beam search of width ef_construction_ at one level, from ep_id.
  MaxHeap searchBaseLayer(tableint ep_id, const void* data_point, int layer) {
    visited_.reset();
    vl_type tag = visited_.curV;
    vl_type* visited_array = visited_.mass.data();

    MaxHeap top_candidates, candidateSet;
    float d0 = dist(data_point, getDataByInternalId(ep_id));
    top_candidates.emplace(d0, ep_id);
    candidateSet.emplace(-d0, ep_id);
    float lowerBound = d0;
    visited_array[ep_id] = tag;

    while (!candidateSet.empty()) {
      std::pair<float, tableint> curr = candidateSet.top();
      if (-curr.first > lowerBound && top_candidates.size() == ef_construction_) break;
      candidateSet.pop();

      linklistsizeint* ll = get_linklist_at_level(curr.second, layer);
      size_t size = getListCount(ll);
      tableint* datal = reinterpret_cast<tableint*>(ll + 1);
      if (size > 0) {
        _mm_prefetch(reinterpret_cast<const char*>(visited_array + datal[0]), _MM_HINT_T0);
        _mm_prefetch(getDataByInternalId(datal[0]), _MM_HINT_T0);
      }
      for (size_t j = 0; j < size; j++) {
        tableint cand = datal[j];
        if (j + 1 < size) {
          _mm_prefetch(reinterpret_cast<const char*>(visited_array + datal[j + 1]), _MM_HINT_T0);
          _mm_prefetch(getDataByInternalId(datal[j + 1]), _MM_HINT_T0);
        }
        if (visited_array[cand] == tag) continue;
        visited_array[cand] = tag;
        float d1 = dist(data_point, getDataByInternalId(cand));
        if (top_candidates.size() < ef_construction_ || lowerBound > d1) {
          candidateSet.emplace(-d1, cand);
          _mm_prefetch(getDataByInternalId(candidateSet.top().second), _MM_HINT_T0);
          top_candidates.emplace(d1, cand);
          if (top_candidates.size() > ef_construction_) top_candidates.pop();
          lowerBound = top_candidates.top().first;
        }
      }
    }
    return top_candidates;
  }

  // Keeps at most M of the candidates: walking them nearest first, a
  // candidate survives unless some already kept one is nearer to it than
  // the base point is (the paper's algorithm 4 without extension).
  void getNeighborsByHeuristic2(MaxHeap& top_candidates, size_t M) {
    if (top_candidates.size() < M) return;
    MaxHeap queue_closest;
    while (!top_candidates.empty()) {
      queue_closest.emplace(-top_candidates.top().first, top_candidates.top().second);
      top_candidates.pop();
    }
    std::vector<std::pair<float, tableint>> kept;
    kept.reserve(M);
    while (!queue_closest.empty() && kept.size() < M) {
      float to_base = -queue_closest.top().first;
      tableint cand = queue_closest.top().second;
      queue_closest.pop();
      const char* cand_data = getDataByInternalId(cand);
      bool good = true;
      for (const auto& r : kept) {
        if (dist(cand_data, getDataByInternalId(r.second)) < to_base) {
          good = false;
          break;
        }
      }
      if (good) kept.emplace_back(to_base, cand);
    }
    for (const auto& r : kept) top_candidates.emplace(r.first, r.second);
  }

  // Links cur_c to the selected neighbours and back; returns the nearest of
  // them, the entry for the next level down.
  tableint mutuallyConnectNewElement(tableint cur_c, MaxHeap& top_candidates, int level) {
    size_t Mcurmax = level ? maxM_ : maxM0_;
    getNeighborsByHeuristic2(top_candidates, M_);

    std::vector<tableint> selected;
    selected.reserve(M_);
    while (!top_candidates.empty()) {
      selected.push_back(top_candidates.top().second);
      top_candidates.pop();
    }
    tableint next_closest_entry_point = selected.back();

    linklistsizeint* ll_cur = get_linklist_at_level(cur_c, level);
    setListCount(ll_cur, static_cast<unsigned short>(selected.size()));
    tableint* data = reinterpret_cast<tableint*>(ll_cur + 1);
    for (size_t i = 0; i < selected.size(); i++) data[i] = selected[i];

    const char* cur_data = getDataByInternalId(cur_c);
    for (tableint other : selected) {
      linklistsizeint* ll_other = get_linklist_at_level(other, level);
      size_t sz = getListCount(ll_other);
      tableint* odata = reinterpret_cast<tableint*>(ll_other + 1);
      if (sz < Mcurmax) {
        odata[sz] = cur_c;
        setListCount(ll_other, static_cast<unsigned short>(sz + 1));
        continue;
      }
      // Full: re-select among the old links and the new element.
      const char* other_data = getDataByInternalId(other);
      MaxHeap candidates;
      candidates.emplace(dist(cur_data, other_data), cur_c);
      for (size_t j = 0; j < sz; j++)
        candidates.emplace(dist(getDataByInternalId(odata[j]), other_data), odata[j]);
      getNeighborsByHeuristic2(candidates, Mcurmax);
      size_t indx = 0;
      while (!candidates.empty()) {
        odata[indx++] = candidates.top().second;
        candidates.pop();
      }
      setListCount(ll_other, static_cast<unsigned short>(indx));
    }
    return next_closest_entry_point;
  }

  void addPoint(const float* data_point, labeltype label) {
    tableint cur_c = static_cast<tableint>(cur_element_count_++);
    int curlevel = getRandomLevel(mult_);
    element_levels_[cur_c] = curlevel;

    char* slot = data_level0_memory_ + cur_c * size_data_per_element_;
    std::memset(slot, 0, size_links_level0_);
    std::memcpy(getDataByInternalId(cur_c), data_point, data_size_);
    setExternalLabel(cur_c, label);
    if (curlevel > 0) linkLists_[cur_c].assign(curlevel * size_links_per_element_ / sizeof(uint32_t), 0);

    if (maxlevel_ < 0) {  // the first element
      enterpoint_node_ = cur_c;
      maxlevel_ = curlevel;
      return;
    }

    const void* q = getDataByInternalId(cur_c);
    tableint currObj = enterpoint_node_;
    int maxlevelcopy = maxlevel_;
    if (curlevel < maxlevelcopy) {
      float curdist = dist(q, getDataByInternalId(currObj));
      for (int level = maxlevelcopy; level > curlevel; level--) {
        bool changed = true;
        while (changed) {
          changed = false;
          linklistsizeint* ll = get_linklist(currObj, level);
          size_t size = getListCount(ll);
          tableint* datal = reinterpret_cast<tableint*>(ll + 1);
          for (size_t i = 0; i < size; i++) {
            float d = dist(q, getDataByInternalId(datal[i]));
            if (d < curdist) {
              curdist = d;
              currObj = datal[i];
              changed = true;
            }
          }
        }
      }
    }
    for (int level = std::min(curlevel, maxlevelcopy); level >= 0; level--) {
      MaxHeap top_candidates = searchBaseLayer(currObj, q, level);
      currObj = mutuallyConnectNewElement(cur_c, top_candidates, level);
    }
    if (curlevel > maxlevelcopy) {
      enterpoint_node_ = cur_c;
      maxlevel_ = curlevel;
    }
  }

  // --- search ---------------------------------------------------------------
  MaxHeap searchBaseLayerST(tableint ep_id, const void* data_point, size_t ef) {
    visited_.reset();
    vl_type tag = visited_.curV;
    vl_type* visited_array = visited_.mass.data();

    MaxHeap top_candidates, candidate_set;
    float d0 = dist(data_point, getDataByInternalId(ep_id));
    float lowerBound = d0;
    top_candidates.emplace(d0, ep_id);
    candidate_set.emplace(-d0, ep_id);
    visited_array[ep_id] = tag;

    while (!candidate_set.empty()) {
      std::pair<float, tableint> current = candidate_set.top();
      if (-current.first > lowerBound && top_candidates.size() == ef) break;
      candidate_set.pop();

      linklistsizeint* ll = get_linklist0(current.second);
      size_t size = getListCount(ll);
      tableint* datal = reinterpret_cast<tableint*>(ll + 1);
      if (size > 0) {
        _mm_prefetch(reinterpret_cast<const char*>(visited_array + datal[0]), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(visited_array + datal[0] + 64), _MM_HINT_T0);
        _mm_prefetch(getDataByInternalId(datal[0]), _MM_HINT_T0);
        if (size > 1) _mm_prefetch(reinterpret_cast<const char*>(datal + 1), _MM_HINT_T0);
      }
      for (size_t j = 0; j < size; j++) {
        tableint cand = datal[j];
        if (j + 1 < size) {
          _mm_prefetch(reinterpret_cast<const char*>(visited_array + datal[j + 1]), _MM_HINT_T0);
          _mm_prefetch(getDataByInternalId(datal[j + 1]), _MM_HINT_T0);
        }
        if (visited_array[cand] == tag) continue;
        visited_array[cand] = tag;
        float d = dist(data_point, getDataByInternalId(cand));
        if (top_candidates.size() < ef || lowerBound > d) {
          candidate_set.emplace(-d, cand);
          _mm_prefetch(data_level0_memory_ + candidate_set.top().second * size_data_per_element_,
                       _MM_HINT_T0);
          top_candidates.emplace(d, cand);
          if (top_candidates.size() > ef) top_candidates.pop();
          lowerBound = top_candidates.top().first;
        }
      }
    }
    return top_candidates;
  }

  // --- the anneval contract -------------------------------------------------
  static std::unique_ptr<Index> build(const float* base, size_t n, size_t dim, anneval::Metric metric,
                                      const anneval::Params& params) {
    anneval::check(n > 0, "cannot index an empty base set");
    anneval::check(n < (size_t(1) << 31), "too many points");
    auto ix = std::make_unique<Index>();
    Index& h = *ix;
    h.dim_ = dim;
    h.metric_ = metric;
    h.M_ = std::max<size_t>(params.u64("m", 16), 2);
    anneval::check(h.M_ <= 16000, "m too large");
    h.maxM_ = h.M_;
    h.maxM0_ = h.M_ * 2;
    h.ef_construction_ = std::max<size_t>(params.u64("ef_construction", 200), h.M_);
    h.level_generator_ = anneval::SplitMix64(params.u64("seed", 100));
    h.mult_ = 1.0 / std::log(double(h.M_));
    h.setup_layout(n);
    h.level0_words_.assign(n * h.size_data_per_element_ / sizeof(uint32_t), 0);
    h.attach_level0();
    h.linkLists_.resize(n);
    h.element_levels_.assign(n, 0);
    for (size_t i = 0; i < n; i++) h.addPoint(base + i * dim, labeltype(i));
    return ix;
  }

  void save(anneval::ByteWriter& w) const {
    w.u32(kMagic);
    w.u32(kFormat);
    w.u8(uint8_t(metric_));
    for (size_t v : {dim_, M_, maxM_, maxM0_, ef_construction_, cur_element_count_}) w.u64(v);
    w.u32(uint32_t(maxlevel_));
    w.u32(enterpoint_node_);
    w.u32s(level0_words_);
    std::vector<uint32_t> levels(element_levels_.begin(), element_levels_.end());
    w.u32s(levels);
    std::vector<uint32_t> upper;
    for (const auto& l : linkLists_) upper.insert(upper.end(), l.begin(), l.end());
    w.u32s(upper);
  }

  static std::unique_ptr<Index> load(anneval::ByteReader& r) {
    anneval::check(r.u32() == kMagic, "not an hnswlib-style index");
    anneval::check(r.u32() == kFormat, "unknown index format");
    auto ix = std::make_unique<Index>();
    Index& h = *ix;
    uint8_t tag = r.u8();
    anneval::check(tag <= 1, "bad metric tag");
    h.metric_ = anneval::Metric(tag);
    size_t* fields[] = {&h.dim_, &h.M_, &h.maxM_, &h.maxM0_, &h.ef_construction_, &h.cur_element_count_};
    for (size_t* f : fields) *f = size_t(r.u64());
    h.maxlevel_ = int(r.u32());
    h.enterpoint_node_ = r.u32();
    h.mult_ = 1.0 / std::log(double(h.M_));
    size_t n = h.cur_element_count_;
    h.setup_layout(n);
    h.level0_words_ = r.u32s();
    anneval::check(h.level0_words_.size() * sizeof(uint32_t) == n * h.size_data_per_element_,
                   "level-0 block size");
    h.attach_level0();
    std::vector<uint32_t> levels = r.u32s();
    anneval::check(levels.size() == n, "level array size");
    h.element_levels_.assign(levels.begin(), levels.end());
    std::vector<uint32_t> upper = r.u32s();
    h.linkLists_.resize(n);
    size_t per = h.size_links_per_element_ / sizeof(uint32_t), at = 0;
    for (size_t i = 0; i < n; i++) {
      size_t len = size_t(h.element_levels_[i]) * per;
      anneval::check(at + len <= upper.size(), "upper link array size");
      h.linkLists_[i].assign(upper.begin() + at, upper.begin() + at + len);
      at += len;
    }
    anneval::check(at == upper.size(), "upper link array size");
    return ix;
  }

  void search(const float* query, size_t k, size_t ef, std::vector<uint32_t>& out) {
    if (cur_element_count_ == 0 || k == 0) return;
    tableint currObj = enterpoint_node_;
    float curdist = dist(query, getDataByInternalId(currObj));
    for (int level = maxlevel_; level > 0; level--) {
      bool changed = true;
      while (changed) {
        changed = false;
        linklistsizeint* ll = get_linklist(currObj, level);
        size_t size = getListCount(ll);
        tableint* datal = reinterpret_cast<tableint*>(ll + 1);
        for (size_t i = 0; i < size; i++) {
          float d = dist(query, getDataByInternalId(datal[i]));
          if (d < curdist) {
            curdist = d;
            currObj = datal[i];
            changed = true;
          }
        }
      }
    }
    MaxHeap top = searchBaseLayerST(currObj, query, std::max(ef, k));
    while (top.size() > k) top.pop();
    size_t base = out.size();
    out.resize(base + top.size());
    for (size_t i = top.size(); i-- > 0;) {
      out[base + i] = uint32_t(getExternalLabel(top.top().second));
      top.pop();
    }
  }
};
