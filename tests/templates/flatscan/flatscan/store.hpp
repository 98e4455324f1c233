// The base vectors, row by row.
#pragma once

#include <cstdint>
#include <vector>

#include "anneval.hpp"

namespace flatscan {

struct Store {
  anneval::Metric metric = anneval::Metric::Euclidean;
  size_t n = 0, dim = 0;
  std::vector<float> data;

  const float* row(uint32_t id) const { return data.data() + size_t(id) * dim; }

  void assign(const float* base, size_t count, size_t d, anneval::Metric m) {
    metric = m;
    n = count;
    dim = d;
    data.assign(base, base + count * d);
  }

  void save(anneval::ByteWriter& w) const {
    w.u8(uint8_t(metric));
    w.u64(n);
    w.u64(dim);
    w.write(data.data(), data.size() * sizeof(float));
  }

  void load(anneval::ByteReader& r) {
    metric = anneval::Metric(r.u8());
    n = r.u64();
    dim = r.u64();
    if (dim == 0 || n > r.remaining() / sizeof(float) / dim) anneval::fail("corrupt store");
    data.resize(n * dim);
    r.read(data.data(), data.size() * sizeof(float));
  }
};

}  // namespace flatscan
