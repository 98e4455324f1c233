// The distance between a query and a stored row: a plain loop.
#pragma once

#include <cmath>

#include "flatscan/store.hpp"

namespace flatscan {

inline float distance(const Store& store, const float* query, uint32_t id) {
  const float* v = store.row(id);
  if (store.metric == anneval::Metric::Angular) {
    float dot = 0.0f, qq = 0.0f, vv = 0.0f;
    for (size_t j = 0; j < store.dim; j++) {
      dot += query[j] * v[j];
      qq += query[j] * query[j];
      vv += v[j] * v[j];
    }
    return 1.0f - dot / std::sqrt(qq * vv + 1e-30f);
  }
  float sum = 0.0f;
  for (size_t j = 0; j < store.dim; j++) {
    float d = query[j] - v[j];
    sum += d * d;
  }
  return sum;
}

}  // namespace flatscan
