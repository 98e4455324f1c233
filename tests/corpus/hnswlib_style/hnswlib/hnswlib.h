// hnswlib's common definitions: the id, link and tag types, the distance
// function's type and the index file's constants.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <queue>
#include <utility>
#include <vector>

namespace {

typedef uint32_t tableint;         // internal id
typedef uint32_t linklistsizeint;  // the header word of a link list; its low 16 bits are the count
typedef uint64_t labeltype;        // the external label stored after each vector
typedef uint16_t vl_type;          // visited-list tag
typedef float (*DISTFUNC)(const void*, const void*, const void*);

constexpr uint32_t kMagic = 0x4c534e48;  // "HNSL"
constexpr uint32_t kFormat = 1;
constexpr int kMaxLevel = 16;

}  // namespace
