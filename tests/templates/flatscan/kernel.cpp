// The entry point of the flatscan codebase: anneval's Index over
// flatscan::Store and flatscan::search.
#include "anneval.hpp"

#include <memory>
#include <vector>

#include "flatscan/search.hpp"
#include "flatscan/store.hpp"

struct Index {
  flatscan::Store store;

  static std::unique_ptr<Index> build(const float* base, size_t n, size_t dim,
                                      anneval::Metric metric, const anneval::Params&) {
    auto index = std::make_unique<Index>();
    index->store.assign(base, n, dim, metric);
    return index;
  }

  void save(anneval::ByteWriter& w) const { store.save(w); }

  static std::unique_ptr<Index> load(anneval::ByteReader& r) {
    auto index = std::make_unique<Index>();
    index->store.load(r);
    return index;
  }

  void search(const float* query, size_t k, size_t, std::vector<uint32_t>& out) {
    flatscan::search(store, query, k, out);
  }
};
