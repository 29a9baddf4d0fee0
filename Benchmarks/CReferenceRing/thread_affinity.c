// sched_setaffinity needs _GNU_SOURCE, which Swift's Glibc module does not define; the benchmark calls it from here.
#define _GNU_SOURCE
#include <sched.h>
#include <unistd.h>

#include "reference_ring.h"

int ref_pin_current_thread(int cpu) {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < 2) return 0;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu % cpus, &set);
    return sched_setaffinity(0, sizeof set, &set);
}
