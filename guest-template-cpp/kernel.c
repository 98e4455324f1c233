/* The C reference kernel: a navigable small-world graph, HNSW's bottom layer
 * on its own (Malkov & Yashunin, 2016), in plain C against anneval.h.
 *
 * This file is the one a C candidate replaces. It shows the shape of a C
 * kernel: `struct kernel` and the five functions of the contract at the end
 * of anneval.h. Each point keeps up to 2m links chosen with the paper's
 * heuristic; a search starts from a fixed entry point and runs best-first
 * with a sorted pool of max(ef, k) entries. Without HNSW's upper layers the
 * entry is far from most queries, so this is slower than the C++ reference;
 * it is the simplest correct graph kernel, a starting point for C.
 *
 * Parameters: m (default 16), ef_construction (default 200).
 */
#include <stdlib.h>
#include <string.h>

#include "anneval.h"

#define MAGIC 0x47534e4eu /* "NNSG", little-endian */

typedef struct {
  uint32_t id;
  float dist;
} neighbor;

struct kernel {
  size_t dim, stride, n, m, ef_construction;
  anneval_metric metric;
  float *vectors;      /* n * stride, zero-padded */
  uint32_t *links;     /* n * (1 + 2m): count, then ids */
  uint32_t entry;
  /* Working memory of one search. */
  uint32_t *visited;   /* epoch stamps */
  uint32_t epoch;
  neighbor *pool;      /* sorted, capacity + 1 */
  size_t pool_cap;
  float *padded;
};

static void *checked(void *p) {
  if (!p) anneval_fail("out of memory");
  return p;
}

static const float *vec(const struct kernel *x, uint32_t id) {
  return x->vectors + (size_t)id * x->stride;
}

static float dist(const struct kernel *x, const float *q, uint32_t id) {
  return anneval_distance(x->metric, q, vec(x, id), x->stride);
}

static uint32_t *adj(const struct kernel *x, uint32_t id) {
  return x->links + (size_t)id * (1 + 2 * x->m);
}

static void scratch(struct kernel *x, size_t capacity) {
  if (capacity + 1 > x->pool_cap) {
    x->pool_cap = capacity + 1;
    free(x->pool);
    x->pool = checked(malloc(x->pool_cap * sizeof(neighbor)));
  }
}

/* Best-first search from the entry; returns how many points the pool holds,
 * nearest first. The top bit of an id marks it expanded. */
static size_t search_graph(struct kernel *x, const float *q, size_t ef) {
  const uint32_t expanded = 1u << 31;
  scratch(x, ef);
  if (++x->epoch == 0) {
    memset(x->visited, 0, x->n * sizeof(uint32_t));
    x->epoch = 1;
  }
  size_t len = 1, cursor = 0;
  x->pool[0].id = x->entry;
  x->pool[0].dist = dist(x, q, x->entry);
  x->visited[x->entry] = x->epoch;
  while (cursor < len) {
    uint32_t cur = x->pool[cursor].id;
    x->pool[cursor].id |= expanded;
    const uint32_t *a = adj(x, cur);
    size_t next = len;
    for (uint32_t i = 1; i <= a[0]; i++) {
      uint32_t nb = a[i];
      if (x->visited[nb] == x->epoch) continue;
      x->visited[nb] = x->epoch;
      float d = dist(x, q, nb);
      if (len == ef && d >= x->pool[len - 1].dist) continue;
      size_t pos = len;
      while (pos > 0 && x->pool[pos - 1].dist > d) pos--;
      memmove(&x->pool[pos + 1], &x->pool[pos], (len - pos) * sizeof(neighbor));
      x->pool[pos].id = nb;
      x->pool[pos].dist = d;
      if (len < ef) len++;
      if (pos < next) next = pos;
    }
    /* Continue from the nearest entry not yet expanded. */
    cursor = next < cursor ? next : cursor;
    while (cursor < len && (x->pool[cursor].id & expanded)) cursor++;
  }
  for (size_t i = 0; i < len; i++) x->pool[i].id &= ~expanded;
  return len;
}

/* The paper's heuristic: keep a candidate only if it is nearer to the base
 * point than to every point already kept. `c` is sorted, nearest first. */
static size_t select_links(const struct kernel *x, const neighbor *c, size_t count, size_t max,
                           uint32_t *out) {
  size_t kept = 0;
  for (size_t i = 0; i < count && kept < max; i++) {
    int keep = 1;
    for (size_t j = 0; j < kept && keep; j++) {
      if (dist(x, vec(x, c[i].id), out[j]) <= c[i].dist) keep = 0;
    }
    if (keep) out[kept++] = c[i].id;
  }
  return kept;
}

static int by_dist(const void *a, const void *b) {
  float da = ((const neighbor *)a)->dist, db = ((const neighbor *)b)->dist;
  return (da > db) - (da < db);
}

static void add_link(struct kernel *x, uint32_t node, uint32_t added) {
  uint32_t *a = adj(x, node);
  size_t max = 2 * x->m;
  if (a[0] < max) {
    a[1 + a[0]++] = added;
    return;
  }
  neighbor c[2 * 64 + 1];
  size_t count = 0;
  for (uint32_t i = 1; i <= a[0]; i++) c[count++] = (neighbor){a[i], dist(x, vec(x, node), a[i])};
  c[count++] = (neighbor){added, dist(x, vec(x, node), added)};
  qsort(c, count, sizeof(neighbor), by_dist);
  a[0] = (uint32_t)select_links(x, c, count, max, a + 1);
}

static struct kernel *alloc_kernel(size_t n, size_t dim, size_t m) {
  struct kernel *x = checked(calloc(1, sizeof *x));
  x->n = n;
  x->dim = dim;
  x->stride = anneval_padded_dim(dim);
  x->m = m;
  x->vectors = checked(calloc(n * x->stride, sizeof(float)));
  x->links = checked(calloc(n * (1 + 2 * m), sizeof(uint32_t)));
  x->visited = checked(calloc(n, sizeof(uint32_t)));
  x->padded = checked(calloc(x->stride, sizeof(float)));
  return x;
}

struct kernel *kernel_build(const float *base, size_t n, size_t dim, anneval_metric metric,
                            const anneval_params *params) {
  if (n == 0) anneval_fail("cannot index an empty base set");
  size_t m = (size_t)anneval_param_u64(params, "m", 16);
  if (m < 2 || m > 64) anneval_fail("parameter m: expected 2 to 64");
  struct kernel *x = alloc_kernel(n, dim, m);
  x->metric = metric;
  x->ef_construction = (size_t)anneval_param_u64(params, "ef_construction", 200);
  if (x->ef_construction < m) x->ef_construction = m;
  for (size_t i = 0; i < n; i++) memcpy(x->vectors + i * x->stride, base + i * dim, dim * 4);
  uint32_t *selected = checked(malloc(m * sizeof(uint32_t)));
  for (uint32_t id = 1; id < n; id++) {
    size_t found = search_graph(x, vec(x, id), x->ef_construction);
    size_t kept = select_links(x, x->pool, found, m, selected);
    uint32_t *a = adj(x, id);
    a[0] = (uint32_t)kept;
    memcpy(a + 1, selected, kept * sizeof(uint32_t));
    for (size_t i = 0; i < kept; i++) add_link(x, selected[i], id);
  }
  free(selected);
  return x;
}

void kernel_save(const struct kernel *x, anneval_writer *w) {
  anneval_write_u32(w, MAGIC);
  anneval_write_u8(w, (uint8_t)x->metric);
  anneval_write_u64(w, x->n);
  anneval_write_u64(w, x->dim);
  anneval_write_u64(w, x->m);
  anneval_write_u32(w, x->entry);
  anneval_write_f32s(w, x->vectors, x->n * x->stride);
  anneval_write_u32s(w, x->links, x->n * (1 + 2 * x->m));
}

struct kernel *kernel_load(anneval_reader *r) {
  if (anneval_read_u32(r) != MAGIC) anneval_fail("not a graph index");
  uint8_t metric = anneval_read_u8(r);
  size_t n = (size_t)anneval_read_u64(r), dim = (size_t)anneval_read_u64(r);
  size_t m = (size_t)anneval_read_u64(r);
  if (metric > 1 || m < 2 || m > 64) anneval_fail("saved index corrupt: header");
  uint32_t entry = anneval_read_u32(r);
  size_t nv = 0, nl = 0;
  float *vectors = anneval_read_f32s(r, &nv);
  uint32_t *links = anneval_read_u32s(r, &nl);
  if (nv != n * anneval_padded_dim(dim) || nl != n * (1 + 2 * m) || entry >= n) {
    anneval_fail("saved index corrupt: array sizes");
  }
  struct kernel *x = checked(calloc(1, sizeof *x));
  x->n = n;
  x->dim = dim;
  x->stride = anneval_padded_dim(dim);
  x->m = m;
  x->metric = (anneval_metric)metric;
  x->entry = entry;
  x->vectors = vectors;
  x->links = links;
  x->visited = checked(calloc(n, sizeof(uint32_t)));
  x->padded = checked(calloc(x->stride, sizeof(float)));
  return x;
}

size_t kernel_search(struct kernel *x, const float *query, size_t k, size_t ef, uint32_t *out) {
  memcpy(x->padded, query, x->dim * sizeof(float));
  size_t found = search_graph(x, x->padded, ef > k ? ef : k);
  size_t count = found < k ? found : k;
  for (size_t i = 0; i < count; i++) out[i] = x->pool[i].id;
  return count;
}

void kernel_free(struct kernel *x) {
  free(x->vectors);
  free(x->links);
  free(x->visited);
  free(x->pool);
  free(x->padded);
  free(x);
}
