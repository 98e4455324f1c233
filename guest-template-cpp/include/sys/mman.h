/* <sys/mman.h> in the sandbox. WASI has no virtual memory to map or advise,
 * so wasi-libc hides this header behind _WASI_EMULATED_MMAN; the template
 * turns the emulation on for every kernel. An anonymous mmap is zeroed heap
 * memory and munmap frees it (wasi-libc's libwasi-emulated-mman); a mapping
 * of a file fails, as every file does in the sandbox. madvise and
 * posix_madvise are hints the sandbox has nothing to apply to: they succeed
 * and change nothing (wasi.c), which is what MADV_HUGEPAGE, MADV_WILLNEED or
 * MADV_SEQUENTIAL promise. Natively the C library's own header serves the
 * same code.
 */
#ifndef ANNEVAL_SYS_MMAN_H
#define ANNEVAL_SYS_MMAN_H

#ifndef _WASI_EMULATED_MMAN
#define _WASI_EMULATED_MMAN
#endif
#include_next <sys/mman.h>

#endif
