// A reference single-producer single-consumer ring in C11 atomics, the yardstick for the Swift EventRing.
//
// Same design as EventRing: power-of-two slots indexed with a mask, free-running 64-bit indices, the producer's
// index and the consumer's index on their own cache lines (128 bytes apart, as x86 prefetches lines in pairs), each
// next to that side's cached copy of the other index; acquire loads and release stores only.
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REF_RING_SIDE_STRIDE 128

/// One 64-byte record: a sequence number and seven payload words.
typedef struct ref_record {
    uint64_t seq;
    uint64_t payload[7];
} ref_record;

typedef struct ref_ring {
    _Alignas(REF_RING_SIDE_STRIDE) _Atomic(uint64_t) head;  // written by the producer
    uint64_t cached_tail;                                   // the producer's copy of tail
    _Alignas(REF_RING_SIDE_STRIDE) _Atomic(uint64_t) tail;  // written by the consumer
    uint64_t cached_head;                                   // the consumer's copy of head
    _Alignas(REF_RING_SIDE_STRIDE) uint64_t mask;           // read-only after creation
    uint64_t capacity;
    ref_record *slots;
} ref_ring;

/// Creates a ring of at least `min_capacity` records (rounded up to a power of two); NULL when out of memory.
ref_ring *ref_ring_create(uint64_t min_capacity);
void ref_ring_destroy(ref_ring *ring);

/// Producer thread only: copies `*record` in; false when full.
static inline bool ref_ring_try_push(ref_ring *ring, const ref_record *record) {
    uint64_t head = atomic_load_explicit(&ring->head, memory_order_relaxed);
    if (head - ring->cached_tail == ring->capacity) {
        ring->cached_tail = atomic_load_explicit(&ring->tail, memory_order_acquire);
        if (head - ring->cached_tail == ring->capacity) return false;
    }
    ring->slots[head & ring->mask] = *record;
    atomic_store_explicit(&ring->head, head + 1, memory_order_release);
    return true;
}

/// Consumer thread only: copies the oldest record out; false when empty.
static inline bool ref_ring_try_pop(ref_ring *ring, ref_record *out) {
    uint64_t tail = atomic_load_explicit(&ring->tail, memory_order_relaxed);
    if (tail == ring->cached_head) {
        ring->cached_head = atomic_load_explicit(&ring->head, memory_order_acquire);
        if (tail == ring->cached_head) return false;
    }
    *out = ring->slots[tail & ring->mask];
    atomic_store_explicit(&ring->tail, tail + 1, memory_order_release);
    return true;
}

/// The benchmark's producer loop: pushes records 0..<count, each with seq and payload[k] = seq + k, retrying when full.
void ref_ring_produce(ref_ring *ring, uint64_t count);

/// The benchmark's consumer loop: pops `count` records, checks each seq is the next expected and its payload intact.
/// Returns the number of records that were out of order or damaged (0 when the ring works).
uint64_t ref_ring_consume(ref_ring *ring, uint64_t count);

/// The number of malloc-family calls (malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign) made by any
/// thread of this process so far; counted by wrappers around glibc's allocator (see malloc_counter.c).
uint64_t ref_allocation_count(void);

/// Pins the calling thread to `cpu` (modulo the online CPUs) with sched_setaffinity; 0 on success or one CPU.
int ref_pin_current_thread(int cpu);
