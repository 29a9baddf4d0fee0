// Counts every malloc-family call of the benchmark process, so the benchmark can report allocations per event.
//
// The executable defines malloc and friends, which the dynamic linker resolves ahead of glibc's for every library in
// the process (the Swift runtime included); each wrapper bumps one relaxed atomic counter and forwards to glibc's
// real allocator through its exported __libc_* entry points. glibc only (the benchmark runs on Linux).
#include "reference_ring.h"

#include <errno.h>
#include <stddef.h>

#if defined(__GLIBC__)
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *pointer, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);

static _Atomic(uint64_t) allocation_count;

static inline void count_one(void) { atomic_fetch_add_explicit(&allocation_count, 1, memory_order_relaxed); }

void *malloc(size_t size) {
    count_one();
    return __libc_malloc(size);
}

void *calloc(size_t count, size_t size) {
    count_one();
    return __libc_calloc(count, size);
}

void *realloc(void *pointer, size_t size) {
    count_one();
    return __libc_realloc(pointer, size);
}

void *memalign(size_t alignment, size_t size) {
    count_one();
    return __libc_memalign(alignment, size);
}

void *aligned_alloc(size_t alignment, size_t size) {
    count_one();
    return __libc_memalign(alignment, size);
}

int posix_memalign(void **out, size_t alignment, size_t size) {
    count_one();
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0) return EINVAL;
    void *pointer = __libc_memalign(alignment, size);
    if (pointer == NULL) return ENOMEM;
    *out = pointer;
    return 0;
}

uint64_t ref_allocation_count(void) { return atomic_load_explicit(&allocation_count, memory_order_relaxed); }
#else
uint64_t ref_allocation_count(void) { return 0; }
#endif
