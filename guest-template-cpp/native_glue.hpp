// The glue of the native engine: the kernel compiled for this CPU, serving
// one request over standard input and output. The protocol is the Rust
// runner's (guest-template/src/native.rs), little-endian throughout:
//
// - build: 'B', dim u32, metric u8, the parameters (count u32, then for each
//   key and value a u32 length and UTF-8 bytes), the base vectors (count u64,
//   then f32s). Answer: 0, the saved index (length u64, bytes).
// - search: 'S', the saved index (length u64, bytes), dim u32, k u32, ef u32.
//   The runner loads the index and answers 'R'; the host starts its clock and
//   sends 'G' and the queries (count u64, then f32s), so no query exists in
//   the process before the clock runs; the answer is 0, then the ids (count
//   u64, then u32s).
//
// A kernel-reported error answers 1, a length u32 and the message. A failure
// ends the process with its message on standard error. Answers go out on a
// copy of standard output made before any kernel code runs; standard output
// then points at standard error, so what a kernel prints is a diagnostic.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <unistd.h>

#include "runtime.hpp"

void anneval_runtime::stop() {
  fflush(stderr);
  _exit(101);
}

extern "C" void anneval_log(const char* message) { fprintf(stderr, "%s\n", message); }

namespace anneval_native {

inline void read_exact(void* p, size_t n) {
  if (n && fread(p, 1, n, stdin) != n) {
    fprintf(stderr, "native runner: the request ended early\n");
    exit(3);
  }
}
inline uint8_t u8() {
  uint8_t v;
  read_exact(&v, 1);
  return v;
}
inline uint32_t u32() {
  uint32_t v;
  read_exact(&v, 4);
  return v;
}
inline uint64_t u64() {
  uint64_t v;
  read_exact(&v, 8);
  return v;
}
inline std::string str() {
  std::string s(u32(), '\0');
  read_exact(s.data(), s.size());
  return s;
}
template <typename T>
std::vector<T> array() {
  std::vector<T> v(static_cast<size_t>(u64()));
  read_exact(v.data(), v.size() * sizeof(T));
  return v;
}
// The answers' channel (see above).
inline FILE*& answers() {
  static FILE* out = nullptr;
  return out;
}
inline void write(const void* p, size_t n) { fwrite(p, 1, n, answers()); }
inline void failure(const std::string& m) {
  uint8_t one = 1;
  uint32_t len = static_cast<uint32_t>(m.size());
  write(&one, 1);
  write(&len, 4);
  write(m.data(), m.size());
}

inline int serve() {
  static char in_buf[1 << 20], out_buf[1 << 20];
  int fd = dup(1);
  if (fd < 0 || dup2(2, 1) < 0 || !(answers() = fdopen(fd, "wb"))) {
    fprintf(stderr, "native runner: could not set up the answers' channel\n");
    return 3;
  }
  setvbuf(stdin, in_buf, _IOFBF, sizeof in_buf);
  setvbuf(answers(), out_buf, _IOFBF, sizeof out_buf);
  uint8_t zero = 0;
  switch (u8()) {
    case 'B': {
      uint32_t dim = u32();
      auto metric = static_cast<anneval::Metric>(u8());
      anneval_params raw;
      for (uint32_t i = u32(); i > 0; i--) {
        std::string key = str();
        raw.pairs.emplace_back(key, str());
      }
      std::vector<float> base = array<float>();
      if (dim == 0) anneval_fail("dimension must be positive");
      anneval::Params params(&raw);
      std::unique_ptr<Index> index = Index::build(base.data(), base.size() / dim, dim, metric, params);
      if (!index) anneval_fail("Index::build returned no index");
      std::vector<float>().swap(base);
      anneval_writer w;
      anneval::ByteWriter out(&w);
      index->save(out);
      uint64_t len = w.len;
      write(&zero, 1);
      write(&len, 8);
      write(w.data, w.len);
      break;
    }
    case 'S': {
      std::vector<uint8_t> bytes(static_cast<size_t>(u64()));
      read_exact(bytes.data(), bytes.size());
      std::unique_ptr<Index> index;
      {
        anneval_reader raw{bytes.data(), bytes.size(), 0};
        anneval::ByteReader in(&raw);
        index = Index::load(in);
      }
      if (!index) anneval_fail("Index::load returned no index");
      uint32_t dim = u32(), k = u32(), ef = u32();
      uint8_t ready = 'R';
      write(&ready, 1);
      fflush(answers());
      bool go = u8() == 'G';
      std::vector<float> queries = go ? array<float>() : std::vector<float>();
      if (!go) {
        failure("the host did not say go");
      } else if (dim == 0 || queries.size() % dim != 0) {
        failure("query floats do not divide into rows of dim");
      } else {
        std::vector<uint32_t> ids;
        std::string error = anneval_runtime::search_all(*index, queries.data(),
                                                        queries.size() / dim, dim, k, ef, ids);
        if (!error.empty()) {
          failure(error);
        } else {
          uint64_t n = ids.size();
          write(&zero, 1);
          write(&n, 8);
          write(ids.data(), ids.size() * 4);
        }
      }
      break;
    }
    default:
      failure("unknown request");
  }
  fflush(stdout);
  fflush(answers());
  return 0;
}

}  // namespace anneval_native

int main() { return anneval_native::serve(); }
