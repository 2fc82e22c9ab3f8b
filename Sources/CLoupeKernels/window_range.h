// Shared by the sliding-window kernels (window.c, depthwise.c, window_simd.c, depthwise_cblock.c,
// conv_smallc.c); not part of the public module.
#ifndef CLOUPE_WINDOW_RANGE_H
#define CLOUPE_WINDOW_RANGE_H
#include <stddef.h>

/// Output columns [lo, hi) whose tap at input offset `off` (= k*dil - pad) lands inside [0, in).
static inline void valid_range(ptrdiff_t off, ptrdiff_t stride, ptrdiff_t in, ptrdiff_t out,
                               ptrdiff_t *lo, ptrdiff_t *hi) {
    // o*stride + off >= 0  <=>  o >= ceil(-off / stride)
    ptrdiff_t l = off >= 0 ? 0 : (-off + stride - 1) / stride;
    // o*stride + off <= in - 1  <=>  o <= floor((in - 1 - off) / stride)
    ptrdiff_t h = in - 1 - off < 0 ? 0 : (in - 1 - off) / stride + 1;
    if (h > out) h = out;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

/// Input extent (rows or columns, padding included) that `out` outputs of a window of `k` taps
/// read at this stride and dilation.
static inline ptrdiff_t window_extent(ptrdiff_t out, ptrdiff_t stride, ptrdiff_t k, ptrdiff_t dil) {
    return (out - 1) * stride + (k - 1) * dil + 1;
}

#endif
