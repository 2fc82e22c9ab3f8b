#ifndef CLOUPE_KERNELS_H
#define CLOUPE_KERNELS_H
#include <stddef.h>

/// Highest SIMD level the running CPU supports: 0 = baseline, 1 = AVX2+FMA, 2 = AVX-512F.
int loupe_cpu_level(void);

#endif
