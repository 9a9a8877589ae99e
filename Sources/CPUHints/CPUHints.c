// The functions are static inline in include/CPUHints.h; this file makes the C target non-empty.
#include "CPUHints.h"
