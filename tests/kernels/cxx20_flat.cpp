// An exact scan written in the C++20 that ANN codebases use: a concept
// constraining the distance, abbreviated function templates (`auto`
// parameters), std::span, designated initialisers, <bit>, ranges algorithms,
// the three-way comparison, consteval, and the base vectors in an anonymous
// mapping advised MADV_HUGEPAGE, as a graph index allocates its arena. It
// must compile as it is for both engines and answer alike.
#include "anneval.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <compare>
#include <concepts>
#include <cstring>
#include <memory>
#include <ranges>
#include <span>
#include <vector>

template <class F>
concept Distance = requires(F f, std::span<const float> a, std::span<const float> b) {
  { f(a, b) } -> std::convertible_to<float>;
};

struct Hit {
  float distance;
  uint32_t id;
  auto operator<=>(const Hit&) const = default;
};

consteval size_t lanes() { return std::bit_ceil(size_t(5)); }

float squared_l2(std::span<const float> a, std::span<const float> b) {
  float lane[lanes()] = {};
  size_t j = 0;
  for (; j + lanes() <= a.size(); j += lanes())
    for (size_t l = 0; l < lanes(); l++) {
      float d = a[j + l] - b[j + l];
      lane[l] += d * d;
    }
  float s = 0.0f;
  for (; j < a.size(); j++) s += (a[j] - b[j]) * (a[j] - b[j]);
  for (float x : lane) s += x;
  return s;
}

void nearest(std::span<const float> query, const auto& rows, size_t k, Distance auto distance,
             std::vector<uint32_t>& out) {
  std::vector<Hit> hits;
  hits.reserve(rows.count);
  for (uint32_t i = 0; i < rows.count; i++)
    hits.push_back(Hit{.distance = distance(query, rows.row(i)), .id = i});
  size_t take = std::min(k, hits.size());
  std::ranges::partial_sort(hits, hits.begin() + long(take));
  for (const Hit& h : hits | std::views::take(take)) out.push_back(h.id);
}

struct Rows {
  float* base = nullptr;
  size_t count = 0, dim = 0, bytes = 0;

  std::span<const float> row(size_t i) const { return {base + i * dim, dim}; }

  void allocate(size_t n, size_t d) {
    count = n;
    dim = d;
    bytes = std::max<size_t>(n * d * sizeof(float), 1);
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) anneval_fail("mmap failed");
    if (madvise(p, bytes, MADV_HUGEPAGE) != 0 && madvise(p, bytes, MADV_NORMAL) != 0)
      anneval_fail("madvise failed");
    base = static_cast<float*>(p);
  }

  ~Rows() {
    if (base != nullptr) munmap(base, bytes);
  }
};

struct Index {
  Rows rows;

  static std::unique_ptr<Index> build(const float* base, size_t n, size_t dim, anneval::Metric,
                                      const anneval::Params&) {
    auto index = std::make_unique<Index>();
    index->rows.allocate(n, dim);
    std::memcpy(index->rows.base, base, n * dim * sizeof(float));
    return index;
  }

  void save(anneval::ByteWriter& w) const {
    w.u64(rows.count);
    w.u64(rows.dim);
    w.write(rows.base, rows.count * rows.dim * sizeof(float));
  }

  static std::unique_ptr<Index> load(anneval::ByteReader& r) {
    auto index = std::make_unique<Index>();
    size_t n = r.u64(), dim = r.u64();
    if (dim == 0 || n > r.remaining() / 4 / dim) anneval_fail("corrupt index");
    index->rows.allocate(n, dim);
    r.read(index->rows.base, n * dim * sizeof(float));
    return index;
  }

  void search(const float* q, size_t k, size_t, std::vector<uint32_t>& out) {
    nearest(std::span<const float>(q, rows.dim), rows, k, squared_l2, out);
  }
};
