// adjtimex(2) and its STA_* flags: the kernel's view of whether the host clock is synchronised.
#include <sys/timex.h>
