#include "reference_ring.h"
