// hnswlib's visited list and the heaps of a search.
#pragma once

#include "hnswlib.h"

namespace {

// ---------------------------------------------------------------------------
// hnswlib's VisitedList: a tag per element; a new search bumps the tag and
// clears the array only when the tag wraps.
struct VisitedList {
  vl_type curV = 0;
  std::vector<vl_type> mass;
  void init(size_t n) {
    mass.assign(n, 0);
    curV = 0;
  }
  void reset() {
    if (++curV == 0) {
      std::fill(mass.begin(), mass.end(), vl_type(0));
      ++curV;
    }
  }
};

struct CompareByFirst {
  bool operator()(const std::pair<float, tableint>& a, const std::pair<float, tableint>& b) const {
    return a.first < b.first;
  }
};

typedef std::priority_queue<std::pair<float, tableint>, std::vector<std::pair<float, tableint>>,
                            CompareByFirst>
    MaxHeap;

}  // namespace
