/* OpenMP as it is with one thread, on both engines.
 *
 * anneval measures a kernel on one thread, so a kernel written for OpenMP
 * compiles and answers exactly as it would with OMP_NUM_THREADS=1: every
 * `#pragma omp` but `simd` is ignored (clang runs with -fopenmp-simd, which
 * honours `omp simd` and defines no _OPENMP), a parallel region runs once on
 * thread 0, and the runtime calls below answer as the one thread of a team
 * of one. Locks are held by the only thread, so taking one never waits. */
#ifndef ANNEVAL_OMP_H
#define ANNEVAL_OMP_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct { int held; } omp_lock_t;
typedef struct { int depth; } omp_nest_lock_t;
typedef enum omp_sched_t {
    omp_sched_static = 1,
    omp_sched_dynamic = 2,
    omp_sched_guided = 3,
    omp_sched_auto = 4
} omp_sched_t;

static inline int omp_get_num_threads(void) { return 1; }
static inline int omp_get_max_threads(void) { return 1; }
static inline int omp_get_thread_num(void) { return 0; }
static inline int omp_get_num_procs(void) { return 1; }
static inline int omp_get_thread_limit(void) { return 1; }
static inline int omp_in_parallel(void) { return 0; }
static inline int omp_get_level(void) { return 0; }
static inline int omp_get_active_level(void) { return 0; }
static inline int omp_get_ancestor_thread_num(int level) { return level == 0 ? 0 : -1; }
static inline int omp_get_team_size(int level) { return level == 0 ? 1 : -1; }
static inline int omp_get_dynamic(void) { return 0; }
static inline int omp_get_nested(void) { return 0; }
static inline int omp_get_max_active_levels(void) { return 1; }
static inline void omp_set_num_threads(int n) { (void)n; }
static inline void omp_set_dynamic(int on) { (void)on; }
static inline void omp_set_nested(int on) { (void)on; }
static inline void omp_set_max_active_levels(int n) { (void)n; }
static inline void omp_set_schedule(omp_sched_t kind, int chunk) { (void)kind; (void)chunk; }
static inline void omp_get_schedule(omp_sched_t *kind, int *chunk) { *kind = omp_sched_static; *chunk = 0; }

static inline void omp_init_lock(omp_lock_t *l) { l->held = 0; }
static inline void omp_destroy_lock(omp_lock_t *l) { l->held = 0; }
static inline void omp_set_lock(omp_lock_t *l) { l->held = 1; }
static inline void omp_unset_lock(omp_lock_t *l) { l->held = 0; }
static inline int omp_test_lock(omp_lock_t *l) { return l->held ? 0 : (l->held = 1); }
static inline void omp_init_nest_lock(omp_nest_lock_t *l) { l->depth = 0; }
static inline void omp_destroy_nest_lock(omp_nest_lock_t *l) { l->depth = 0; }
static inline void omp_set_nest_lock(omp_nest_lock_t *l) { l->depth++; }
static inline void omp_unset_nest_lock(omp_nest_lock_t *l) { l->depth--; }
static inline int omp_test_nest_lock(omp_nest_lock_t *l) { return ++l->depth; }

#ifdef __cplusplus
}
#endif

#endif
