// A fused activation applied in place to finished outputs, shared by the depthwise kernels
// (window_simd.c, depthwise_cblock.c) and the pointwise GEMM paths (conv_gemm.c); not part of the
// public module.
#ifndef CLOUPE_ACTIVATE_H
#define CLOUPE_ACTIVATE_H
#include <stddef.h>

/// The fused activation `act` (LOUPE_ACT_*) in place on n contiguous outputs (ReLU keeps NaN, as
/// torch.relu; other activations through the vector-math kernels). Defined in window_simd.c.
void loupe_activate_in_place(int act, float *y, ptrdiff_t n);
#endif
