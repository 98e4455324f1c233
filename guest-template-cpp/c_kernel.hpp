// Presents a C kernel (kernel.c, the contract at the bottom of anneval.h) as
// the `Index` the glue drives. Used by the drivers of C candidates only.
#include <memory>
#include <string>
#include <vector>

#include "anneval.hpp"

struct Index {
  struct kernel* raw = nullptr;

  explicit Index(struct kernel* k) : raw(k) {}
  Index(const Index&) = delete;
  Index& operator=(const Index&) = delete;
  ~Index() {
    if (raw) kernel_free(raw);
  }

  static std::unique_ptr<Index> wrap(struct kernel* k, const char* what) {
    if (!k) anneval_fail(what);
    return std::make_unique<Index>(k);
  }

  static std::unique_ptr<Index> build(const float* base, size_t n, size_t dim,
                                      anneval::Metric metric, const anneval::Params& params) {
    return wrap(kernel_build(base, n, dim, static_cast<anneval_metric>(metric), params.raw()),
                "kernel_build returned NULL");
  }

  void save(anneval::ByteWriter& out) const { kernel_save(raw, out.raw()); }

  static std::unique_ptr<Index> load(anneval::ByteReader& in) {
    return wrap(kernel_load(in.raw()), "kernel_load returned NULL");
  }

  void search(const float* query, size_t k, size_t ef, std::vector<uint32_t>& out) {
    size_t at = out.size();
    out.resize(at + k);
    size_t found = kernel_search(raw, query, k, ef, out.data() + at);
    if (found > k) {
      std::string m = "kernel_search returned " + std::to_string(found) + " for k = " +
                      std::to_string(k);
      anneval_fail(m.c_str());
    }
    out.resize(at + found);
  }
};
