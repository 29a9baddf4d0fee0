#include <stddef.h>
#include <stdint.h>

/// libFuzzer's driver (compiler-rt, linked by -sanitize=fuzzer): runs `callback` on generated inputs with the
/// usual libFuzzer command line. Each target's main calls it through FuzzSupport.fuzz.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
