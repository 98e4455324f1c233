// anneval's SDK for C++ kernels: what every kernel needs and should not
// rewrite, in the shape of the Rust template's SDK.
//
// A C++ candidate is one file, kernel.cpp, that includes this header and
// defines `struct Index` with
//
//   static std::unique_ptr<Index> build(const float* base, size_t n, size_t dim,
//                                       anneval::Metric metric, const anneval::Params& params);
//   void save(anneval::ByteWriter& out) const;
//   static std::unique_ptr<Index> load(anneval::ByteReader& in);
//   void search(const float* query, size_t k, size_t ef, std::vector<uint32_t>& out);
//
// and optionally, to share work across the queries of a batch,
//
//   void search_batch(const float* queries, size_t count, size_t dim, size_t k, size_t ef,
//                     std::vector<uint32_t>& out);   // exactly k ids per query
//
// The host calls build once and keeps the saved bytes; before every timed
// pass it restores a fresh Index with load (untimed), so nothing an index
// remembers survives from one pass to the next. search appends at most k ids;
// the glue pads a short answer with NO_ID, which the host reports as invalid.
//
// Distances come from one source (anneval.h) that compiles to WebAssembly
// simd128 in the sandbox and to AVX-512 or AVX2 with FMA natively; so do the
// quantised ones (anneval_quant.h: 8- and 4-bit codes, half precision). Code written against
// x86 intrinsics (<immintrin.h>) also builds for the sandbox, through a
// translation layer, but the SDK's functions are the portable way.
#ifndef ANNEVAL_HPP
#define ANNEVAL_HPP

#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "anneval.h"

namespace anneval {

enum class Metric : uint8_t { Euclidean = ANNEVAL_EUCLIDEAN, Angular = ANNEVAL_ANGULAR };

constexpr uint32_t NO_ID = ANNEVAL_NO_ID;
constexpr size_t BLOCK = ANNEVAL_BLOCK;

inline size_t padded_dim(size_t dim) { return anneval_padded_dim(dim); }
inline float l2_sq(const float* a, const float* b, size_t n) { return anneval_l2_sq(a, b, n); }
inline float dot(const float* a, const float* b, size_t n) { return anneval_dot(a, b, n); }
inline void prefetch(const void* p) { anneval_prefetch(p); }

// Quantised codes and half-precision vectors (anneval_quant.h): exact integer
// distances between 8-bit and packed 4-bit codes, float distances to halves.
inline uint32_t l2_sq_u8(const uint8_t* a, const uint8_t* b, size_t n) { return anneval_l2_sq_u8(a, b, n); }
inline int32_t dot_i8(const int8_t* a, const int8_t* b, size_t n) { return anneval_dot_i8(a, b, n); }
inline uint32_t l2_sq_u4(const uint8_t* a, const uint8_t* b, size_t nbytes) {
  return anneval_l2_sq_u4(a, b, nbytes);
}
inline void pack_u4(const uint8_t* codes, size_t n, uint8_t* out) { anneval_pack_u4(codes, n, out); }
inline uint16_t f16_from_f32(float x) { return anneval_f16_from_f32(x); }
inline float f32_from_f16(uint16_t h) { return anneval_f32_from_f16(h); }
inline float l2_sq_f16(const float* a, const uint16_t* b, size_t n) { return anneval_l2_sq_f16(a, b, n); }
inline float dot_f16(const float* a, const uint16_t* b, size_t n) { return anneval_dot_f16(a, b, n); }

// A uniform scalar quantiser (see anneval_sq in anneval_quant.h).
struct ScalarQuantizer {
  anneval_sq q;
  static ScalarQuantizer fit(const float* v, size_t n, unsigned bits) { return {anneval_sq_fit(v, n, bits)}; }
  uint8_t code(float x) const { return anneval_sq_code(&q, x); }
  float value(uint8_t c) const { return anneval_sq_value(&q, c); }
  float step() const { return q.step; }
};

// The kernel-side distance: smaller is nearer.
inline float distance(Metric metric, const float* a, const float* b, size_t n) {
  return anneval_distance(static_cast<anneval_metric>(metric), a, b, n);
}

// Writes one line to the evaluation's diagnostic log (bounded by the host).
inline void log(const std::string& message) { anneval_log(message.c_str()); }

// Logs "kernel failed: <message>" and stops the kernel; the host reports a
// trap with this message. (Exceptions cannot be caught in the sandbox: a
// `throw` also ends the kernel, with the exception's type and message.)
[[noreturn]] inline void fail(const std::string& message) { anneval_fail(message.c_str()); }

// Checks a condition the kernel relies on; fails with `what` when it is false.
inline void check(bool condition, const char* what) {
  if (!condition) anneval_fail(what);
}

// The --param key=value map, with typed getters and defaults. A value that
// does not parse fails, naming the parameter.
class Params {
 public:
  explicit Params(const anneval_params* raw) : raw_(raw) {}
  std::string str(const char* key, const char* dflt) const {
    return anneval_param_str(raw_, key, dflt);
  }
  size_t size(const char* key, size_t dflt) const {
    return static_cast<size_t>(anneval_param_u64(raw_, key, dflt));
  }
  uint64_t u64(const char* key, uint64_t dflt) const { return anneval_param_u64(raw_, key, dflt); }
  double f64(const char* key, double dflt) const { return anneval_param_f64(raw_, key, dflt); }
  bool boolean(const char* key, bool dflt) const {
    return anneval_param_bool(raw_, key, dflt) != 0;
  }
  const anneval_params* raw() const { return raw_; }

 private:
  const anneval_params* raw_;
};

// Appends little-endian values to the saved index.
class ByteWriter {
 public:
  explicit ByteWriter(anneval_writer* raw) : raw_(raw) {}
  void u8(uint8_t v) { anneval_write_u8(raw_, v); }
  void u32(uint32_t v) { anneval_write_u32(raw_, v); }
  void u64(uint64_t v) { anneval_write_u64(raw_, v); }
  void f32(float v) { anneval_write_f32(raw_, v); }
  // The count, then the values.
  void u32s(const std::vector<uint32_t>& v) { anneval_write_u32s(raw_, v.data(), v.size()); }
  void f32s(const std::vector<float>& v) { anneval_write_f32s(raw_, v.data(), v.size()); }
  void bytes(const std::vector<uint8_t>& v) {
    anneval_write_u64(raw_, v.size());
    anneval_write(raw_, v.data(), v.size());
  }
  // `len` raw bytes, no count (read them back with ByteReader::read).
  void write(const void* data, size_t len) { anneval_write(raw_, data, len); }
  anneval_writer* raw() { return raw_; }

 private:
  anneval_writer* raw_;
};

// Reads what ByteWriter wrote; reading past the end fails with a message.
class ByteReader {
 public:
  explicit ByteReader(anneval_reader* raw) : raw_(raw) {}
  uint8_t u8() { return anneval_read_u8(raw_); }
  uint32_t u32() { return anneval_read_u32(raw_); }
  uint64_t u64() { return anneval_read_u64(raw_); }
  float f32() { return anneval_read_f32(raw_); }
  std::vector<uint32_t> u32s() { return array<uint32_t>(anneval_read_u32s); }
  std::vector<float> f32s() { return array<float>(anneval_read_f32s); }
  std::vector<uint8_t> bytes() {
    uint64_t n = anneval_read_u64(raw_);
    if (n > anneval_read_remaining(raw_)) anneval_fail("saved index corrupt: byte array too long");
    std::vector<uint8_t> v(static_cast<size_t>(n));
    anneval_read(raw_, v.data(), v.size());
    return v;
  }
  // The next `len` raw bytes, in one call (what ByteWriter::write wrote).
  void read(void* out, size_t len) { anneval_read(raw_, out, len); }
  size_t remaining() const { return anneval_read_remaining(raw_); }
  anneval_reader* raw() { return raw_; }

 private:
  template <typename T, typename F>
  std::vector<T> array(F read) {
    size_t n = 0;
    T* p = read(raw_, &n);
    std::vector<T> v(p, p + n);
    free(p);
    return v;
  }
  anneval_reader* raw_;
};

// A deterministic random number generator (SplitMix64).
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : raw_(anneval_rng_new(seed)) {}
  uint64_t next_u64() { return anneval_rng_u64(&raw_); }
  // Uniform in [0, 1).
  double next_f64() { return anneval_rng_f64(&raw_); }
  // Uniform in [0, n); n must be positive.
  uint64_t below(uint64_t n) { return anneval_rng_below(&raw_, n); }

 private:
  anneval_rng raw_;
};

// An epoch-stamped visited set: clearing it between searches is one
// increment, not a pass over every point.
class VisitedSet {
 public:
  explicit VisitedSet(size_t points = 0) : stamps_(points, 0) {}
  void clear() {
    if (++epoch_ == 0) {
      std::fill(stamps_.begin(), stamps_.end(), 0);
      epoch_ = 1;
    }
  }
  // Marks id; true when it was not marked since the last clear.
  bool insert(uint32_t id) {
    uint16_t& slot = stamps_[id];
    bool fresh = slot != epoch_;
    slot = epoch_;
    return fresh;
  }
  bool contains(uint32_t id) const { return stamps_[id] == epoch_; }
  const uint16_t* slot_ptr(uint32_t id) const { return stamps_.data() + id; }
  size_t capacity() const { return stamps_.size(); }

 private:
  std::vector<uint16_t> stamps_;
  uint16_t epoch_ = 1;
};

struct Neighbor {
  uint32_t id;
  float dist;
};

// A sorted, fixed-capacity candidate pool for best-first graph search: one
// array is both the queue and the result set, sorted by distance, with a
// cursor at the nearest entry not yet expanded. Ids must be below 2^31.
class CandidatePool {
 public:
  explicit CandidatePool(size_t capacity = 1) { reset(capacity); }
  void reset(size_t capacity) {
    capacity_ = capacity < 1 ? 1 : capacity;
    items_.clear();
    items_.reserve(capacity_ + 1);
    cursor_ = 0;
  }
  size_t size() const { return items_.size(); }
  bool full() const { return items_.size() == capacity_; }
  // The distance a point must beat to enter a full pool.
  float bound() const { return full() ? items_.back().dist : __builtin_inff(); }
  // Adds a point unless the pool is full of nearer ones; true when added.
  bool insert(uint32_t id, float dist) {
    if (dist >= bound()) return false;
    if (full()) items_.pop_back();
    size_t lo = 0, hi = items_.size();
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      if (items_[mid].dist <= dist) lo = mid + 1; else hi = mid;
    }
    items_.insert(items_.begin() + static_cast<ptrdiff_t>(lo), Neighbor{id, dist});
    if (lo < cursor_) cursor_ = lo;
    return true;
  }
  bool has_next() const { return cursor_ < items_.size(); }
  // The nearest entry not yet expanded, marked expanded.
  Neighbor pop_next() {
    Neighbor n = items_[cursor_];
    items_[cursor_].id |= EXPANDED;
    while (++cursor_ < items_.size() && (items_[cursor_].id & EXPANDED)) {
    }
    return n;
  }
  // The id pop_next would return (NO_ID when none).
  uint32_t peek_next() const { return has_next() ? items_[cursor_].id & ~EXPANDED : NO_ID; }
  Neighbor get(size_t i) const { return Neighbor{items_[i].id & ~EXPANDED, items_[i].dist}; }

 private:
  static constexpr uint32_t EXPANDED = 1u << 31;
  std::vector<Neighbor> items_;
  size_t capacity_ = 1;
  size_t cursor_ = 0;
};

}  // namespace anneval

#endif  // ANNEVAL_HPP
