// The glue between the WIT world (wit/kernel.wit, through the C bindings
// anneval generates from it: wit.h) and the kernel's `Index`, for the
// WebAssembly engine. Included after the kernel by wasm_main.cpp; not for
// kernels to include.
//
// Ownership follows the canonical ABI: lists the host passes in were
// allocated through cabi_realloc and are freed here; lists returned are
// malloc'ed and freed by the post-return function; an error string is
// heap-made.
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <typeinfo>
#include <vector>

#include <cxxabi.h>

#include "runtime.hpp"
#include "wit.h"

void anneval_runtime::stop() { __builtin_trap(); }

extern "C" void anneval_log(const char* message) {
  wit_string_t s;
  s.ptr = reinterpret_cast<uint8_t*>(const_cast<char*>(message));
  s.len = strlen(message);
  anneval_kernel_host_log(&s);
}

// ---- C++ runtime support the sandbox's libc++ lacks -------------------------

// No unwinding exists in this toolchain, so a throw cannot be caught: it ends
// the kernel, keeping the exception's type (and message, for the standard
// exceptions, which derive from std::exception without adjustment).
extern "C" void* __cxa_allocate_exception(size_t size) noexcept {
  void* p = malloc(size);
  if (!p) anneval_fail("out of memory allocating an exception");
  return p;
}

extern "C" void __cxa_throw(void* object, std::type_info* type, void (*)(void*)) {
  const char* mangled = type->name();
  int status = 0;
  char* demangled = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  std::string name = status == 0 && demangled ? demangled : mangled;
  static const char* const standard[] = {
      "St9exception",       "St13runtime_error",  "St11logic_error",
      "St12out_of_range",   "St16invalid_argument", "St12length_error",
      "St12domain_error",   "St11range_error",    "St14overflow_error",
      "St15underflow_error", "St9bad_alloc",      "St20bad_array_new_length"};
  std::string what;
  for (const char* s : standard) {
    if (strcmp(mangled, s) == 0) what = static_cast<std::exception*>(object)->what();
  }
  std::string m = "threw " + name + (what.empty() ? "" : ": " + what) +
                  " (C++ exceptions cannot be caught in the sandbox; a throw ends the kernel)";
  anneval_fail(m.c_str());
}

// operator new fails with a message instead of returning null, which in
// WebAssembly is a writable address.
void* operator new(size_t size) {
  void* p = malloc(size ? size : 1);
  if (!p) {
    std::string m = "out of memory: operator new of " + std::to_string(size) + " bytes";
    anneval_fail(m.c_str());
  }
  return p;
}
void* operator new[](size_t size) { return operator new(size); }
void operator delete(void* p) noexcept { free(p); }
void operator delete[](void* p) noexcept { free(p); }
void operator delete(void* p, size_t) noexcept { free(p); }
void operator delete[](void* p, size_t) noexcept { free(p); }

// ---- the WIT exports ---------------------------------------------------------

struct exports_anneval_kernel_index_searcher_t {
  std::unique_ptr<Index> index;
  std::vector<uint32_t> ids;
};

static anneval::Metric from_wit(exports_anneval_kernel_index_metric_t m) {
  return m == EXPORTS_ANNEVAL_KERNEL_INDEX_METRIC_ANGULAR ? anneval::Metric::Angular
                                                          : anneval::Metric::Euclidean;
}

extern "C" void exports_anneval_kernel_index_build(wit_list_f32_t* base, uint32_t dim,
                                                   exports_anneval_kernel_index_metric_t metric,
                                                   wit_list_tuple2_string_string_t* params,
                                                   wit_list_u8_t* ret) {
  anneval_params raw;
  for (size_t i = 0; i < params->len; i++) {
    auto& kv = params->ptr[i];
    raw.pairs.emplace_back(std::string(reinterpret_cast<char*>(kv.f0.ptr), kv.f0.len),
                           std::string(reinterpret_cast<char*>(kv.f1.ptr), kv.f1.len));
  }
  wit_list_tuple2_string_string_free(params);
  if (dim == 0) anneval_fail("dimension must be positive");
  size_t n = base->len / dim;
  std::unique_ptr<Index> index;
  {
    anneval::Params p(&raw);
    index = Index::build(base->ptr, n, dim, from_wit(metric), p);
  }
  wit_list_f32_free(base);
  if (!index) anneval_fail("Index::build returned no index");
  anneval_writer w;
  anneval::ByteWriter out(&w);
  index->save(out);
  index.reset();
  ret->ptr = w.data ? w.data : static_cast<uint8_t*>(malloc(1));
  ret->len = w.len;
}

extern "C" exports_anneval_kernel_index_own_searcher_t
exports_anneval_kernel_index_constructor_searcher(wit_list_u8_t* bytes) {
  auto* s = new exports_anneval_kernel_index_searcher_t();
  {
    anneval_reader raw{bytes->ptr, bytes->len, 0};
    anneval::ByteReader in(&raw);
    s->index = Index::load(in);
  }
  wit_list_u8_free(bytes);
  if (!s->index) anneval_fail("Index::load returned no index");
  return exports_anneval_kernel_index_searcher_new(s);
}

extern "C" void exports_anneval_kernel_index_searcher_destructor(
    exports_anneval_kernel_index_searcher_t* s) {
  delete s;
}

extern "C" bool exports_anneval_kernel_index_method_searcher_search_batch(
    exports_anneval_kernel_index_borrow_searcher_t s, wit_list_f32_t* queries, uint32_t dim,
    uint32_t k, uint32_t ef, wit_list_u32_t* ret, wit_string_t* err) {
  std::string error;
  if (dim == 0 || queries->len % dim != 0) {
    error = std::to_string(queries->len) + " query floats do not divide into rows of " +
            std::to_string(dim);
  } else {
    error = anneval_runtime::search_all(*s->index, queries->ptr, queries->len / dim, dim, k, ef,
                                        s->ids);
  }
  wit_list_f32_free(queries);
  if (!error.empty()) {
    wit_string_dup(err, error.c_str());
    return false;
  }
  size_t bytes = s->ids.size() * sizeof(uint32_t);
  ret->ptr = static_cast<uint32_t*>(malloc(bytes ? bytes : 1));
  if (!ret->ptr) anneval_fail("out of memory returning the answers");
  if (bytes) memcpy(ret->ptr, s->ids.data(), bytes);
  ret->len = s->ids.size();
  return true;
}
