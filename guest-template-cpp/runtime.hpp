// The part of the SDK both engines share: parameters, the byte writer and
// reader, and failing with a message. Included once, by the glue of either
// engine, after the kernel; not for kernels to include.
#ifndef ANNEVAL_RUNTIME_HPP
#define ANNEVAL_RUNTIME_HPP

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "anneval.hpp"

struct anneval_params {
  std::vector<std::pair<std::string, std::string>> pairs;
};

struct anneval_writer {
  uint8_t* data = nullptr;
  size_t len = 0;
  size_t cap = 0;
};

struct anneval_reader {
  const uint8_t* data;
  size_t len;
  size_t pos;
};

namespace anneval_runtime {

// Ends the kernel; each engine's glue defines it.
[[noreturn]] void stop();

inline std::string trimmed(const char* raw) {
  std::string s(raw);
  size_t a = s.find_first_not_of(" \t\r\n");
  size_t b = s.find_last_not_of(" \t\r\n");
  return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
}

[[noreturn]] inline void bad_param(const char* key, const char* kind, const char* raw) {
  std::string m = std::string("parameter ") + key + ": expected " + kind + ", got \"" + raw + "\"";
  anneval_fail(m.c_str());
}

inline void reserve(anneval_writer* w, size_t more) {
  if (w->len + more <= w->cap) return;
  size_t cap = w->cap ? w->cap : 4096;
  while (cap < w->len + more) cap *= 2;
  auto* grown = static_cast<uint8_t*>(realloc(w->data, cap));
  if (!grown) anneval_fail("out of memory growing the saved index");
  w->data = grown;
  w->cap = cap;
}

inline const uint8_t* take(anneval_reader* r, size_t n, const char* what) {
  if (n > r->len - r->pos) {
    std::string m = std::string("saved index truncated: reading ") + what + " needs " +
                    std::to_string(n) + " bytes at offset " + std::to_string(r->pos) + ", " +
                    std::to_string(r->len - r->pos) + " left";
    anneval_fail(m.c_str());
  }
  const uint8_t* p = r->data + r->pos;
  r->pos += n;
  return p;
}

template <typename T>
T* read_array(anneval_reader* r, size_t* n, const char* what) {
  uint64_t count = anneval_read_u64(r);
  if (count > (r->len - r->pos) / sizeof(T)) {
    std::string m = std::string("saved index corrupt: ") + what + " claims " +
                    std::to_string(count) + " elements, more than the bytes left";
    anneval_fail(m.c_str());
  }
  size_t bytes = static_cast<size_t>(count) * sizeof(T);
  T* out = static_cast<T*>(malloc(bytes ? bytes : 1));
  if (!out) anneval_fail("out of memory reading the saved index");
  memcpy(out, take(r, bytes, what), bytes);
  *n = static_cast<size_t>(count);
  return out;
}

}  // namespace anneval_runtime

extern "C" {

void anneval_fail(const char* message) {
  std::string line = std::string("kernel failed: ") + message;
  anneval_log(line.c_str());
  anneval_runtime::stop();
}

const char* anneval_param_str(const anneval_params* p, const char* key, const char* dflt) {
  for (auto it = p->pairs.rbegin(); it != p->pairs.rend(); ++it) {
    if (it->first == key) return it->second.c_str();
  }
  return dflt;
}

uint64_t anneval_param_u64(const anneval_params* p, const char* key, uint64_t dflt) {
  const char* raw = anneval_param_str(p, key, nullptr);
  if (!raw) return dflt;
  std::string s = anneval_runtime::trimmed(raw);
  char* end = nullptr;
  errno = 0;
  unsigned long long v = strtoull(s.c_str(), &end, 10);
  if (s.empty() || s[0] == '-' || *end != '\0' || errno != 0) {
    anneval_runtime::bad_param(key, "a non-negative integer", raw);
  }
  return v;
}

double anneval_param_f64(const anneval_params* p, const char* key, double dflt) {
  const char* raw = anneval_param_str(p, key, nullptr);
  if (!raw) return dflt;
  std::string s = anneval_runtime::trimmed(raw);
  char* end = nullptr;
  double v = strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0') anneval_runtime::bad_param(key, "a number", raw);
  return v;
}

int anneval_param_bool(const anneval_params* p, const char* key, int dflt) {
  const char* raw = anneval_param_str(p, key, nullptr);
  if (!raw) return dflt;
  std::string s = anneval_runtime::trimmed(raw);
  if (s == "true" || s == "1" || s == "yes" || s == "on") return 1;
  if (s == "false" || s == "0" || s == "no" || s == "off") return 0;
  anneval_runtime::bad_param(key, "true or false", raw);
}

void anneval_write(anneval_writer* w, const void* bytes, size_t len) {
  anneval_runtime::reserve(w, len);
  if (len) memcpy(w->data + w->len, bytes, len);
  w->len += len;
}
void anneval_write_u8(anneval_writer* w, uint8_t v) { anneval_write(w, &v, 1); }
void anneval_write_u32(anneval_writer* w, uint32_t v) { anneval_write(w, &v, 4); }
void anneval_write_u64(anneval_writer* w, uint64_t v) { anneval_write(w, &v, 8); }
void anneval_write_f32(anneval_writer* w, float v) { anneval_write(w, &v, 4); }
void anneval_write_u32s(anneval_writer* w, const uint32_t* v, size_t n) {
  anneval_write_u64(w, n);
  anneval_write(w, v, n * 4);
}
void anneval_write_f32s(anneval_writer* w, const float* v, size_t n) {
  anneval_write_u64(w, n);
  anneval_write(w, v, n * 4);
}

void anneval_read(anneval_reader* r, void* out, size_t len) {
  if (len > 0) memcpy(out, anneval_runtime::take(r, len, "bytes"), len);
}
uint8_t anneval_read_u8(anneval_reader* r) { return *anneval_runtime::take(r, 1, "u8"); }
uint32_t anneval_read_u32(anneval_reader* r) {
  uint32_t v;
  memcpy(&v, anneval_runtime::take(r, 4, "u32"), 4);
  return v;
}
uint64_t anneval_read_u64(anneval_reader* r) {
  uint64_t v;
  memcpy(&v, anneval_runtime::take(r, 8, "u64"), 8);
  return v;
}
float anneval_read_f32(anneval_reader* r) {
  float v;
  memcpy(&v, anneval_runtime::take(r, 4, "f32"), 4);
  return v;
}
uint32_t* anneval_read_u32s(anneval_reader* r, size_t* n) {
  return anneval_runtime::read_array<uint32_t>(r, n, "u32 array");
}
float* anneval_read_f32s(anneval_reader* r, size_t* n) {
  return anneval_runtime::read_array<float>(r, n, "f32 array");
}
size_t anneval_read_remaining(const anneval_reader* r) { return r->len - r->pos; }

}  // extern "C"

namespace anneval_runtime {

// Whether Index has the optional batch search.
template <typename T, typename = void>
struct has_search_batch : std::false_type {};
template <typename T>
struct has_search_batch<T, std::void_t<decltype(std::declval<T&>().search_batch(
                               std::declval<const float*>(), size_t{}, size_t{}, size_t{},
                               size_t{}, std::declval<std::vector<uint32_t>&>()))>>
    : std::true_type {};

// Answers `count` queries with exactly k ids each (padded with NO_ID).
// Returns an error message, or an empty string.
template <typename Index>
std::string search_all(Index& index, const float* queries, size_t count, size_t dim, size_t k,
                       size_t ef, std::vector<uint32_t>& out) {
  out.clear();
  out.reserve(count * k);
  if constexpr (has_search_batch<Index>::value) {
    index.search_batch(queries, count, dim, k, ef, out);
    if (out.size() != count * k) {
      return "search_batch returned " + std::to_string(out.size()) + " ids for " +
             std::to_string(count) + " queries of k = " + std::to_string(k);
    }
    return std::string();
  } else {
    std::vector<uint32_t> ids;
    ids.reserve(k);
    for (size_t i = 0; i < count; i++) {
      ids.clear();
      index.search(queries + i * dim, k, ef, ids);
      if (ids.size() > k) {
        return "query " + std::to_string(i) + ": search returned " + std::to_string(ids.size()) +
               " ids for k = " + std::to_string(k);
      }
      out.insert(out.end(), ids.begin(), ids.end());
      out.insert(out.end(), k - ids.size(), anneval::NO_ID);
    }
    return std::string();
  }
}

}  // namespace anneval_runtime

#endif  // ANNEVAL_RUNTIME_HPP
