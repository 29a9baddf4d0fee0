#include "reference_ring.h"

#include <stdlib.h>
#include <string.h>

ref_ring *ref_ring_create(uint64_t min_capacity) {
    uint64_t capacity = 1;
    while (capacity < min_capacity) capacity <<= 1;
    ref_ring *ring = aligned_alloc(REF_RING_SIDE_STRIDE, sizeof(ref_ring));
    if (ring == NULL) return NULL;
    memset(ring, 0, sizeof *ring);
    ring->slots = aligned_alloc(64, capacity * sizeof(ref_record));
    if (ring->slots == NULL) {
        free(ring);
        return NULL;
    }
    atomic_init(&ring->head, 0);
    atomic_init(&ring->tail, 0);
    ring->capacity = capacity;
    ring->mask = capacity - 1;
    return ring;
}

void ref_ring_destroy(ref_ring *ring) {
    if (ring == NULL) return;
    free(ring->slots);
    free(ring);
}

void ref_ring_produce(ref_ring *ring, uint64_t count) {
    for (uint64_t seq = 0; seq < count;) {
        ref_record record;
        record.seq = seq;
        for (int k = 0; k < 7; k++) record.payload[k] = seq + (uint64_t)k;
        if (ref_ring_try_push(ring, &record)) seq++;
    }
}

uint64_t ref_ring_consume(ref_ring *ring, uint64_t count) {
    uint64_t broken = 0;
    for (uint64_t expected = 0; expected < count;) {
        ref_record record;
        if (!ref_ring_try_pop(ring, &record)) continue;
        if (record.seq != expected || record.payload[6] != expected + 6) broken++;
        expected++;
    }
    return broken;
}
