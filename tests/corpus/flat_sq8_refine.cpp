// An exhaustive scan over 8-bit scalar codes with half-precision re-ranking,
// on the C++ SDK's quantisers: faiss's `IndexRefine(IndexScalarQuantizer(
// QT_8bit_uniform))` as its documentation describes it. Every point's vector
// is kept twice: as one 8-bit code per dimension on a grid spanning the whole
// base, and as halves. A query is coded on the same grid; the scan computes
// exact integer distances to every point's codes, keeps the best ef * 2, and
// orders those by the float query's distance to their halves.
//
// Before building, the kernel checks the SDK's quantised distances against
// plain integer arithmetic on every length up to 100 and every half's round
// trip, on whichever engine runs it, and fails naming the first difference.

#include "anneval.hpp"

#include <algorithm>
#include <cmath>
#include <string>

namespace {

void check_sdk() {
  anneval::SplitMix64 rng(42);
  for (size_t n = 0; n < 100; n++) {
    std::vector<uint8_t> a(n), b(n);
    for (size_t i = 0; i < n; i++) a[i] = (uint8_t)rng.next_u64(), b[i] = (uint8_t)rng.next_u64();
    uint32_t l2 = 0, l4 = 0;
    int32_t ip = 0;
    for (size_t i = 0; i < n; i++) {
      int d = a[i] - b[i], lo = (a[i] & 15) - (b[i] & 15), hi = (a[i] >> 4) - (b[i] >> 4);
      l2 += d * d;
      l4 += lo * lo + hi * hi;
      ip += (int8_t)a[i] * (int8_t)b[i];
    }
    auto fail = [n](const char* what) { anneval::fail(std::string(what) + " at length " + std::to_string(n)); };
    if (anneval::l2_sq_u8(a.data(), b.data(), n) != l2) fail("l2_sq_u8");
    if (anneval::l2_sq_u4(a.data(), b.data(), n) != l4) fail("l2_sq_u4");
    if (anneval::dot_i8((const int8_t*)a.data(), (const int8_t*)b.data(), n) != ip) fail("dot_i8");
    std::vector<float> q(n), v(n);
    std::vector<uint16_t> h(n);
    for (size_t i = 0; i < n; i++) {
      q[i] = (float)rng.next_f64() - 0.5f;
      h[i] = anneval::f16_from_f32((float)rng.next_f64() - 0.5f);
      v[i] = anneval::f32_from_f16(h[i]);
    }
    float got = anneval::l2_sq_f16(q.data(), h.data(), n), want = anneval::l2_sq(q.data(), v.data(), n);
    if (std::fabs(got - want) > 1e-5f * (1.0f + want)) fail("l2_sq_f16");
  }
  for (uint32_t h = 0; h <= 0xffff; h++) {
    float x = anneval::f32_from_f16((uint16_t)h);
    if (x == x && anneval::f16_from_f32(x) != h) anneval::fail("half " + std::to_string(h) + " does not round-trip");
  }
}

}  // namespace

struct Index {
  size_t dim = 0;
  anneval::Metric metric = anneval::Metric::Euclidean;
  anneval::ScalarQuantizer quantizer{};
  std::vector<uint8_t> codes;
  std::vector<uint16_t> halves;

  size_t size() const { return dim ? codes.size() / dim : 0; }

  static std::unique_ptr<Index> build(const float* base, size_t n, size_t dim, anneval::Metric metric,
                                      const anneval::Params&) {
    check_sdk();
    auto index = std::make_unique<Index>();
    index->dim = dim;
    index->metric = metric;
    index->quantizer = anneval::ScalarQuantizer::fit(base, n * dim, 8);
    index->codes.resize(n * dim);
    index->halves.resize(n * dim);
    for (size_t i = 0; i < n * dim; i++) {
      index->codes[i] = index->quantizer.code(base[i]);
      index->halves[i] = anneval::f16_from_f32(base[i]);
    }
    return index;
  }

  void save(anneval::ByteWriter& w) const {
    w.u64(dim);
    w.u8((uint8_t)metric);
    w.f32(quantizer.q.lo);
    w.f32(quantizer.q.step);
    w.u32(quantizer.q.levels);
    w.bytes(codes);
    std::vector<uint8_t> raw(halves.size() * 2);
    std::memcpy(raw.data(), halves.data(), raw.size());
    w.bytes(raw);
  }

  static std::unique_ptr<Index> load(anneval::ByteReader& r) {
    auto index = std::make_unique<Index>();
    index->dim = r.u64();
    index->metric = (anneval::Metric)r.u8();
    index->quantizer.q.lo = r.f32();
    index->quantizer.q.step = r.f32();
    index->quantizer.q.levels = r.u32();
    index->codes = r.bytes();
    std::vector<uint8_t> raw = r.bytes();
    index->halves.resize(raw.size() / 2);
    std::memcpy(index->halves.data(), raw.data(), index->halves.size() * 2);
    return index;
  }

  void search(const float* query, size_t k, size_t ef, std::vector<uint32_t>& out) {
    std::vector<uint8_t> q(dim);
    for (size_t i = 0; i < dim; i++) q[i] = quantizer.code(query[i]);
    size_t n = size(), keep = std::min(n, std::max(ef * 2, k));
    std::vector<std::pair<uint32_t, uint32_t>> scanned(n);
    for (size_t p = 0; p < n; p++) scanned[p] = {anneval::l2_sq_u8(q.data(), &codes[p * dim], dim), (uint32_t)p};
    std::nth_element(scanned.begin(), scanned.begin() + (keep ? keep - 1 : 0), scanned.end());
    std::vector<std::pair<float, uint32_t>> refined(keep);
    for (size_t i = 0; i < keep; i++) {
      const uint16_t* h = &halves[scanned[i].second * dim];
      float d = metric == anneval::Metric::Angular ? 1.0f - anneval::dot_f16(query, h, dim)
                                                   : anneval::l2_sq_f16(query, h, dim);
      refined[i] = {d, scanned[i].second};
    }
    std::sort(refined.begin(), refined.end());
    for (size_t i = 0; i < std::min(k, keep); i++) out.push_back(refined[i].second);
  }
};
