/* Runs every probe of probes.h on deterministic random inputs. Natively
 * (clang -march=native) it prints "name trial output-hex" for each probe
 * this CPU has; built for wasm32 it exports the probes to tests/intrinsics.rs,
 * which calls them through wasmtime and compares. */
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define TRIALS 256
#define IN_BYTES 192
#define OUT_BYTES 64

static uint8_t in[IN_BYTES] __attribute__((aligned(64)));
static uint8_t out[OUT_BYTES] __attribute__((aligned(64)));

#define LPS(k) _mm_loadu_ps((const float *)(in + 16 * (k)))
#define L8PS(k) _mm256_loadu_ps((const float *)(in + 32 * (k)))
#define L16PS(k) _mm512_loadu_ps((const float *)(in + 64 * (k)))
#define LI(k) _mm_loadu_si128((const __m128i *)(in + 16 * (k)))
#define L8I(k) _mm256_loadu_si256((const __m256i *)(in + 32 * (k)))
#define L16I(k) _mm512_loadu_si512((const void *)(in + 64 * (k)))
#define LU32(k) (((const uint32_t *)in)[k])
#define LU64(k) (((const uint64_t *)in)[k])
#define SPS(k, v) _mm_storeu_ps((float *)(out + 16 * (k)), v)
#define S8PS(k, v) _mm256_storeu_ps((float *)(out + 32 * (k)), v)
#define S16PS(k, v) _mm512_storeu_ps((float *)(out + 64 * (k)), v)
#define SI(k, v) _mm_storeu_si128((__m128i *)(out + 16 * (k)), v)
#define S8I(k, v) _mm256_storeu_si256((__m256i *)(out + 32 * (k)), v)
#define S16I(k, v) _mm512_storeu_si512((void *)(out + 64 * (k)), v)
#define SF(k, v) (((float *)out)[k] = (v))
#define SU32(k, v) (((uint32_t *)out)[k] = (uint32_t)(v))
#define SU64(k, v) (((uint64_t *)out)[k] = (uint64_t)(v))

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Fills `in` for probe `index`'s trial: the same bytes on both engines. */
static void fill(char kind, uint32_t index, uint32_t trial) {
  uint64_t s = ((uint64_t)index << 32) | trial;
  for (int i = 0; i < IN_BYTES; i += 4) {
    uint64_t r = splitmix(&s);
    uint32_t bits = (uint32_t)r;
    if (kind == 'F') {
      /* Finite floats of mixed sign and magnitude, and exact zeros. */
      float f = ((float)(int32_t)(bits >> 8) / 8388608.0f) * (float)(1u << ((r >> 40) & 15));
      if (((r >> 44) & 31) == 0) f = ((r >> 49) & 1) ? -0.0f : 0.0f;
      memcpy(&bits, &f, 4);
    } else if (kind == 'H') {
      /* Halves of every class; a few lanes all-ones exponent. */
      bits = (uint32_t)r;
    } else if (kind == 'W') {
      /* Floats across a half's whole range and beyond it, with ties. */
      uint32_t exponent = 96 + (uint32_t)((r >> 32) % 64); /* 2^-31 .. 2^32 */
      uint32_t mantissa = bits & 0x7fffff;
      if (((r >> 40) & 3) == 0) mantissa = (mantissa & ~0x1fffu) | 0x1000u; /* a tie */
      if (((r >> 42) & 31) == 0) exponent = 255;                          /* inf, NaN */
      if (((r >> 47) & 31) == 0) exponent = 0;                            /* subnormal */
      bits = ((uint32_t)(r >> 63) << 31) | (exponent << 23) | mantissa;
    }
    memcpy(in + i, &bits, 4);
  }
}

#define PROBE(name, feature, kind, bound, statement) PROBE_IF_##feature(name, kind, bound, statement)
#include "features.h"

#define PROBE_BODY(name, kind, bound, statement) \
  __attribute__((noinline)) static void probe_##name(void) { statement; }
#define PROBE_ENTRY(name, kind, bound, statement) {#name, #kind[0], bound, probe_##name},

#define PROBE_DO(name, kind, bound, statement) PROBE_BODY(name, kind, bound, statement)
#include "probes.h"
#undef PROBE_DO

typedef struct {
  const char *name;
  char kind;
  int bound;
  void (*run)(void);
} probe;

#define PROBE_DO(name, kind, bound, statement) PROBE_ENTRY(name, kind, bound, statement)
static const probe PROBES[] = {
#include "probes.h"
};
#undef PROBE_DO
#define COUNT (sizeof(PROBES) / sizeof(PROBES[0]))

#if defined(__wasm__)
#define EXPORT(name) __attribute__((export_name(#name)))
EXPORT(probe_count) uint32_t probe_count(void) { return COUNT; }
EXPORT(probe_name) const char *probe_name(uint32_t i) { return PROBES[i].name; }
EXPORT(probe_bound) int32_t probe_bound(uint32_t i) { return PROBES[i].bound; }
EXPORT(probe_fill) void probe_fill(uint32_t i, uint32_t trial) { fill(PROBES[i].kind, i, trial); }
EXPORT(probe_run) void probe_run(uint32_t i) { memset(out, 0, OUT_BYTES); PROBES[i].run(); }
EXPORT(probe_output) const uint8_t *probe_output(void) { return out; }
EXPORT(probe_trials) uint32_t probe_trials(void) { return TRIALS; }
#else
int main(void) {
  for (uint32_t i = 0; i < COUNT; i++) {
    for (uint32_t t = 0; t < TRIALS; t++) {
      fill(PROBES[i].kind, i, t);
      memset(out, 0, OUT_BYTES);
      PROBES[i].run();
      printf("%s %u ", PROBES[i].name, t);
      for (int b = 0; b < OUT_BYTES; b++) printf("%02x", out[b]);
      printf("\n");
    }
  }
  return 0;
}
#endif
