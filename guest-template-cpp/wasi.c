/* The WASI surface of a C or C++ kernel, answered inside the module.
 *
 * wasi-libc and libc++ call WASI preview 1 through the functions
 * __imported_wasi_snapshot_preview1_*. Defining every one of them here means
 * the linked module imports none of them: the component's only import stays
 * anneval:kernel/host, like a Rust kernel's. What they answer reveals nothing
 * of the outside and is the same on every run:
 *
 * - stdout and stderr go, line by line, to the host's bounded log; stdin is
 *   empty; no other file descriptor exists (no preopened directories, so
 *   fopen and open fail);
 * - no arguments, no environment;
 * - every clock reads 0;
 * - "random" bytes come from a fixed-seed generator;
 * - exit ends the kernel with a message; everything else (paths, sockets,
 *   polling) fails with an error code.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "anneval.h"

#define EBADF 8
#define ENOTCAPABLE 76
#define ENOTSUP 58
#define ESPIPE 70

/* A line being written to stdout or stderr. */
static char line[1024];
static size_t line_len;

static void flush_line(void) {
  line[line_len] = '\0';
  anneval_log(line);
  line_len = 0;
}

int32_t __imported_wasi_snapshot_preview1_fd_write(int32_t fd, int32_t iovs, int32_t count,
                                                   int32_t written) {
  if (fd != 1 && fd != 2) return EBADF;
  const uint32_t *iov = (const uint32_t *)(uintptr_t)iovs;
  uint32_t total = 0;
  for (int32_t i = 0; i < count; i++) {
    const char *p = (const char *)(uintptr_t)iov[2 * i];
    uint32_t n = iov[2 * i + 1];
    for (uint32_t j = 0; j < n; j++) {
      if (p[j] == '\n') {
        flush_line();
      } else {
        line[line_len++] = p[j];
        if (line_len == sizeof line - 1) flush_line();
      }
    }
    total += n;
  }
  *(uint32_t *)(uintptr_t)written = total;
  return 0;
}

int32_t __imported_wasi_snapshot_preview1_fd_read(int32_t fd, int32_t iovs, int32_t count,
                                                  int32_t read) {
  (void)iovs;
  (void)count;
  if (fd != 0) return EBADF;
  *(uint32_t *)(uintptr_t)read = 0;
  return 0;
}

/* stdin, stdout and stderr are character devices with every right. */
int32_t __imported_wasi_snapshot_preview1_fd_fdstat_get(int32_t fd, int32_t stat) {
  if (fd < 0 || fd > 2) return EBADF;
  uint8_t *s = (uint8_t *)(uintptr_t)stat;
  memset(s, 0, 24);
  s[0] = 2; /* character device */
  memset(s + 8, 0xff, 16);
  return 0;
}

int32_t __imported_wasi_snapshot_preview1_fd_seek(int32_t fd, int64_t offset, int32_t whence,
                                                  int32_t pos) {
  (void)offset;
  (void)whence;
  (void)pos;
  return fd >= 0 && fd <= 2 ? ESPIPE : EBADF;
}

int32_t __imported_wasi_snapshot_preview1_fd_close(int32_t fd) {
  return fd >= 0 && fd <= 2 ? 0 : EBADF;
}

/* No preopened directories: the first query already answers "no such fd". */
int32_t __imported_wasi_snapshot_preview1_fd_prestat_get(int32_t fd, int32_t prestat) {
  (void)fd;
  (void)prestat;
  return EBADF;
}

static int32_t none(int32_t count, int32_t size) {
  *(uint32_t *)(uintptr_t)count = 0;
  *(uint32_t *)(uintptr_t)size = 0;
  return 0;
}

int32_t __imported_wasi_snapshot_preview1_args_sizes_get(int32_t count, int32_t size) {
  return none(count, size);
}
int32_t __imported_wasi_snapshot_preview1_environ_sizes_get(int32_t count, int32_t size) {
  return none(count, size);
}
int32_t __imported_wasi_snapshot_preview1_args_get(int32_t argv, int32_t buf) {
  (void)argv;
  (void)buf;
  return 0;
}
int32_t __imported_wasi_snapshot_preview1_environ_get(int32_t env, int32_t buf) {
  (void)env;
  (void)buf;
  return 0;
}

int32_t __imported_wasi_snapshot_preview1_clock_time_get(int32_t id, int64_t precision,
                                                         int32_t time) {
  (void)id;
  (void)precision;
  *(uint64_t *)(uintptr_t)time = 0;
  return 0;
}
int32_t __imported_wasi_snapshot_preview1_clock_res_get(int32_t id, int32_t resolution) {
  (void)id;
  *(uint64_t *)(uintptr_t)resolution = 1;
  return 0;
}

int32_t __imported_wasi_snapshot_preview1_random_get(int32_t buf, int32_t len) {
  static anneval_rng rng = {0x616e6e6576616c00ull};
  uint8_t *p = (uint8_t *)(uintptr_t)buf;
  for (int32_t i = 0; i < len; i++) p[i] = (uint8_t)anneval_rng_u64(&rng);
  return 0;
}

int32_t __imported_wasi_snapshot_preview1_sched_yield(void) { return 0; }

_Noreturn void __imported_wasi_snapshot_preview1_proc_exit(int32_t code) {
  char message[64];
  if (line_len) flush_line();
  /* No snprintf: exit may be called from anywhere, even inside stdio. */
  const char *prefix = "called exit(";
  size_t n = strlen(prefix);
  memcpy(message, prefix, n);
  uint32_t v = code < 0 ? (uint32_t)(-(int64_t)code) : (uint32_t)code;
  char digits[12];
  size_t d = 0;
  do {
    digits[d++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  if (code < 0) message[n++] = '-';
  while (d) message[n++] = digits[--d];
  memcpy(message + n, ")", 2);
  anneval_fail(message);
}

/* Everything else: files, paths and sockets do not exist. */
int32_t __imported_wasi_snapshot_preview1_fd_advise(int32_t a0, int64_t a1, int64_t a2, int32_t a3) {
  (void)a0; (void)a1; (void)a2; (void)a3; return EBADF;
}
int32_t __imported_wasi_snapshot_preview1_fd_allocate(int32_t a0, int64_t a1, int64_t a2) {
  (void)a0; (void)a1; (void)a2; return EBADF;
}
int32_t __imported_wasi_snapshot_preview1_fd_datasync(int32_t a0) {
  (void)a0; return EBADF;
}
int32_t __imported_wasi_snapshot_preview1_fd_fdstat_set_flags(int32_t a0, int32_t a1) {
  (void)a0; (void)a1; return EBADF;
}
int32_t __imported_wasi_snapshot_preview1_fd_fdstat_set_rights(int32_t a0, int64_t a1, int64_t a2) {
  (void)a0; (void)a1; (void)a2; return EBADF;
}
int32_t __imported_wasi_snapshot_preview1_fd_filestat_get(int32_t a0, int32_t a1) {
  (void)a0; (void)a1; return EBADF;
}
int32_t __imported_wasi_snapshot_preview1_fd_filestat_set_size(int32_t a0, int64_t a1) {
  (void)a0; (void)a1; return EBADF;
}
int32_t __imported_wasi_snapshot_preview1_fd_filestat_set_times(int32_t a0, int64_t a1, int64_t a2, int32_t a3) {
  (void)a0; (void)a1; (void)a2; (void)a3; return EBADF;
}
int32_t __imported_wasi_snapshot_preview1_fd_pread(int32_t a0, int32_t a1, int32_t a2, int64_t a3, int32_t a4) {
  (void)a0; (void)a1; (void)a2; (void)a3; (void)a4; return EBADF;
}
int32_t __imported_wasi_snapshot_preview1_fd_prestat_dir_name(int32_t a0, int32_t a1, int32_t a2) {
  (void)a0; (void)a1; (void)a2; return EBADF;
}
int32_t __imported_wasi_snapshot_preview1_fd_pwrite(int32_t a0, int32_t a1, int32_t a2, int64_t a3, int32_t a4) {
  (void)a0; (void)a1; (void)a2; (void)a3; (void)a4; return EBADF;
}
int32_t __imported_wasi_snapshot_preview1_fd_readdir(int32_t a0, int32_t a1, int32_t a2, int64_t a3, int32_t a4) {
  (void)a0; (void)a1; (void)a2; (void)a3; (void)a4; return EBADF;
}
int32_t __imported_wasi_snapshot_preview1_fd_renumber(int32_t a0, int32_t a1) {
  (void)a0; (void)a1; return EBADF;
}
int32_t __imported_wasi_snapshot_preview1_fd_sync(int32_t a0) {
  (void)a0; return EBADF;
}
int32_t __imported_wasi_snapshot_preview1_fd_tell(int32_t a0, int32_t a1) {
  (void)a0; (void)a1; return EBADF;
}
int32_t __imported_wasi_snapshot_preview1_path_create_directory(int32_t a0, int32_t a1, int32_t a2) {
  (void)a0; (void)a1; (void)a2; return ENOTCAPABLE;
}
int32_t __imported_wasi_snapshot_preview1_path_filestat_get(int32_t a0, int32_t a1, int32_t a2, int32_t a3, int32_t a4) {
  (void)a0; (void)a1; (void)a2; (void)a3; (void)a4; return ENOTCAPABLE;
}
int32_t __imported_wasi_snapshot_preview1_path_filestat_set_times(int32_t a0, int32_t a1, int32_t a2, int32_t a3, int64_t a4, int64_t a5, int32_t a6) {
  (void)a0; (void)a1; (void)a2; (void)a3; (void)a4; (void)a5; (void)a6; return ENOTCAPABLE;
}
int32_t __imported_wasi_snapshot_preview1_path_link(int32_t a0, int32_t a1, int32_t a2, int32_t a3, int32_t a4, int32_t a5, int32_t a6) {
  (void)a0; (void)a1; (void)a2; (void)a3; (void)a4; (void)a5; (void)a6; return ENOTCAPABLE;
}
int32_t __imported_wasi_snapshot_preview1_path_open(int32_t a0, int32_t a1, int32_t a2, int32_t a3, int32_t a4, int64_t a5, int64_t a6, int32_t a7, int32_t a8) {
  (void)a0; (void)a1; (void)a2; (void)a3; (void)a4; (void)a5; (void)a6; (void)a7; (void)a8; return ENOTCAPABLE;
}
int32_t __imported_wasi_snapshot_preview1_path_readlink(int32_t a0, int32_t a1, int32_t a2, int32_t a3, int32_t a4, int32_t a5) {
  (void)a0; (void)a1; (void)a2; (void)a3; (void)a4; (void)a5; return ENOTCAPABLE;
}
int32_t __imported_wasi_snapshot_preview1_path_remove_directory(int32_t a0, int32_t a1, int32_t a2) {
  (void)a0; (void)a1; (void)a2; return ENOTCAPABLE;
}
int32_t __imported_wasi_snapshot_preview1_path_rename(int32_t a0, int32_t a1, int32_t a2, int32_t a3, int32_t a4, int32_t a5) {
  (void)a0; (void)a1; (void)a2; (void)a3; (void)a4; (void)a5; return ENOTCAPABLE;
}
int32_t __imported_wasi_snapshot_preview1_path_symlink(int32_t a0, int32_t a1, int32_t a2, int32_t a3, int32_t a4) {
  (void)a0; (void)a1; (void)a2; (void)a3; (void)a4; return ENOTCAPABLE;
}
int32_t __imported_wasi_snapshot_preview1_path_unlink_file(int32_t a0, int32_t a1, int32_t a2) {
  (void)a0; (void)a1; (void)a2; return ENOTCAPABLE;
}
int32_t __imported_wasi_snapshot_preview1_poll_oneoff(int32_t a0, int32_t a1, int32_t a2, int32_t a3) {
  (void)a0; (void)a1; (void)a2; (void)a3; return ENOTSUP;
}
int32_t __imported_wasi_snapshot_preview1_sock_accept(int32_t a0, int32_t a1, int32_t a2) {
  (void)a0; (void)a1; (void)a2; return ENOTCAPABLE;
}
int32_t __imported_wasi_snapshot_preview1_sock_recv(int32_t a0, int32_t a1, int32_t a2, int32_t a3, int32_t a4, int32_t a5) {
  (void)a0; (void)a1; (void)a2; (void)a3; (void)a4; (void)a5; return ENOTCAPABLE;
}
int32_t __imported_wasi_snapshot_preview1_sock_send(int32_t a0, int32_t a1, int32_t a2, int32_t a3, int32_t a4) {
  (void)a0; (void)a1; (void)a2; (void)a3; (void)a4; return ENOTCAPABLE;
}
int32_t __imported_wasi_snapshot_preview1_sock_shutdown(int32_t a0, int32_t a1) {
  (void)a0; (void)a1; return ENOTCAPABLE;
}

/* Memory advice (<sys/mman.h>, see include/sys/mman.h): the sandbox's memory
 * has no pages to advise, so every hint succeeds and changes nothing. */
int madvise(void *addr, size_t len, int advice) {
  (void)addr;
  (void)len;
  (void)advice;
  return 0;
}

int posix_madvise(void *addr, size_t len, int advice) {
  (void)addr;
  (void)len;
  (void)advice;
  return 0;
}
