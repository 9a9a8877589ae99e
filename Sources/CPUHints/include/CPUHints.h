// Instructions Swift cannot spell, as static inline C functions (inlined into the Swift callers).
#ifndef CPU_HINTS_H
#define CPU_HINTS_H

/// Asks the CPU to start loading the cache line at `p` into all cache levels (a hint: no fault, no result).
static inline void cpu_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }

#endif
