// The distance with the SDK's vector code.
#pragma once

#include "flatscan/store.hpp"

namespace flatscan {

inline float distance(const Store& store, const float* query, uint32_t id) {
  return anneval::distance(store.metric, query, store.row(id), store.dim);
}

}  // namespace flatscan
