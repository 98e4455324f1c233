// An exact scan written as multi-threaded ANN code is: OpenMP loops over the
// base and the queries, per-thread scratch sized by omp_get_max_threads(), a
// mutex guarding shared statistics, a reader-writer lock around the index,
// and the vectors saved as one block of raw bytes. With one thread it must
// answer exactly as the same code on the native engine.
#include "anneval.hpp"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <vector>

struct Index {
  size_t n = 0, dim = 0;
  std::vector<float> data, norms;
  std::vector<std::vector<std::pair<float, uint32_t>>> scratch;
  std::mutex stats_lock;
  std::shared_mutex index_lock;
  uint64_t searched = 0;

  void prepare() {
    norms.assign(n, 0.0f);
#pragma omp parallel for schedule(static)
    for (long i = 0; i < long(n); i++) {
      const float* v = &data[size_t(i) * dim];
      float s = 0.0f;
#pragma omp simd reduction(+ : s)
      for (size_t j = 0; j < dim; j++) s += v[j] * v[j];
      norms[size_t(i)] = s;
    }
    scratch.resize(size_t(omp_get_max_threads()) * std::max(1u, std::thread::hardware_concurrency()));
  }

  static std::unique_ptr<Index> build(const float* base, size_t n, size_t dim, anneval::Metric,
                                      const anneval::Params&) {
    auto index = std::make_unique<Index>();
    index->n = n;
    index->dim = dim;
    index->data.assign(base, base + n * dim);
    index->prepare();
    return index;
  }

  void save(anneval::ByteWriter& w) const {
    w.u64(n);
    w.u64(dim);
    w.write(data.data(), data.size() * sizeof(float));
  }

  static std::unique_ptr<Index> load(anneval::ByteReader& r) {
    auto index = std::make_unique<Index>();
    index->n = r.u64();
    index->dim = r.u64();
    if (index->dim == 0 || index->n > r.remaining() / 4 / index->dim) anneval_fail("corrupt index");
    index->data.resize(index->n * index->dim);
    r.read(index->data.data(), index->data.size() * sizeof(float));
    index->prepare();
    return index;
  }

  void search(const float* q, size_t k, size_t, std::vector<uint32_t>& out) {
    std::shared_lock<std::shared_mutex> reading(index_lock);
    auto& best = scratch[size_t(omp_get_thread_num())];
    best.clear();
    float qq = 0.0f;
#pragma omp simd reduction(+ : qq)
    for (size_t j = 0; j < dim; j++) qq += q[j] * q[j];
    for (size_t i = 0; i < n; i++) {
      const float* v = &data[i * dim];
      float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
      for (size_t j = 0; j < dim; j++) dot += q[j] * v[j];
      best.emplace_back(qq + norms[i] - 2.0f * dot, uint32_t(i));
    }
    size_t take = std::min(k, best.size());
    std::partial_sort(best.begin(), best.begin() + long(take), best.end());
    for (size_t i = 0; i < take; i++) out.push_back(best[i].second);
    std::lock_guard<std::mutex> counting(stats_lock);
    searched++;
  }
};
