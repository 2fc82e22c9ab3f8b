// The channel-blocked depthwise forward (depthwise_cblock.c), called by window_simd.c's
// loupe_depthwise_forward; not part of the module.
#ifndef CLOUPE_DEPTHWISE_CBLOCK_H
#define CLOUPE_DEPTHWISE_CBLOCK_H
#include <stddef.h>
#include "CLoupeWindow.h"

/// Whether the channel-blocked kernel takes this layer (n images of c channels) at SIMD level
/// `level`: AVX-512, one output channel per input channel, and a geometry where it measured
/// faster than the plane kernels.
int loupe_depthwise_cblock_suits(ptrdiff_t n, ptrdiff_t c, ptrdiff_t mult, const loupe_window2d *g, int level);
/// loupe_depthwise_forward's contract for mult = 1, on a layer the test above accepts.
void loupe_depthwise_forward_cblock(const float *x, const float *w, const float *bias, ptrdiff_t n, ptrdiff_t c,
                                    const loupe_window2d *g, int act, float *y);
#endif
