// The one lane-mask helper of the AVX-512 kernels (window_simd.c, depthwise_cblock.c,
// conv_smallc.c, principal_axis.c, row_split.h); not part of the public module.
#ifndef CLOUPE_LANE_MASK_H
#define CLOUPE_LANE_MASK_H
#include <stddef.h>
#if defined(__x86_64__)
#include <immintrin.h>

/// The first n of 16 lanes: all for n >= 16, none for n <= 0.
static inline __attribute__((target("avx512f"))) __mmask16 lanes16(ptrdiff_t n) {
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1u);
}
#endif
#endif
