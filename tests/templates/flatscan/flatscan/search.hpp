// The k nearest rows to a query, by an exact scan.
#pragma once

#include <algorithm>
#include <utility>
#include <vector>

#include "distance.hpp"
#include "store.hpp"

namespace flatscan {

inline void search(const Store& store, const float* query, size_t k, std::vector<uint32_t>& out) {
  std::vector<std::pair<float, uint32_t>> hits;
  hits.reserve(store.n);
  for (uint32_t id = 0; id < store.n; id++) hits.emplace_back(distance(store, query, id), id);
  size_t take = std::min(k, hits.size());
  std::partial_sort(hits.begin(), hits.begin() + long(take), hits.end());
  for (size_t i = 0; i < take; i++) out.push_back(hits[i].second);
}

}  // namespace flatscan
