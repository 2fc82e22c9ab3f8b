#ifndef CLOUPE_WINDOW_H
#define CLOUPE_WINDOW_H
#include <stddef.h>
#include "CLoupeKernels.h"

// Whole-tensor depthwise convolution and global pooling kernels (AVX-512F, AVX2+FMA or
// portable, chosen at run time), parallel over channel planes on the shared thread pool.

/// Path the window kernels use: -1 = automatic (from loupe_cpu_level), 0 = portable,
/// 1 = AVX2+FMA, 2 = AVX-512F. Forcing a level the CPU lacks falls back to automatic.
void loupe_window_force_level(int level);
/// The level actually used by the next call.
int loupe_window_level(void);

/// Depthwise convolution (group == C, `mult` output channels per input channel):
/// x (n, c, inH, inW), w (c*mult, 1, kH, kW), bias (c*mult) or NULL, y (n, c*mult, outH, outW)
/// is overwritten, then the activation `act` (LOUPE_ACT_* of CLoupeKernels.h) is applied to each
/// plane right after it is computed. Geometry as in loupe_window2d (end pads implied by outH/outW).
void loupe_depthwise_forward(const float *x, const float *w, const float *bias, ptrdiff_t n, ptrdiff_t c,
                             ptrdiff_t mult, const loupe_window2d *g, int act, float *y);
/// Which depthwise forward kernel runs: -1 = automatic (by plane size), 0 = the plane-at-a-time
/// kernels only, 1 = the 16-channel-blocked kernel wherever it can run (AVX-512, mult 1), for
/// tests. LOUPE_DEPTHWISE=plane in the environment also keeps the plane kernels (A/B timing).
void loupe_depthwise_force_path(int path);
/// Adjoint of loupe_depthwise_forward wrt x, *accumulating* into gx (n, c, inH, inW).
void loupe_depthwise_backward_input(const float *gy, const float *w, ptrdiff_t n, ptrdiff_t c, ptrdiff_t mult,
                                    const loupe_window2d *g, float *gx);
/// Adjoint of loupe_depthwise_forward wrt w, *accumulating* into gw (c*mult, 1, kH, kW), summed over images.
void loupe_depthwise_backward_weight(const float *gy, const float *x, ptrdiff_t n, ptrdiff_t c, ptrdiff_t mult,
                                     const loupe_window2d *g, float *gw);

/// Average pooling over `planes` planes (x: planes x inH x inW, y: planes x outH x outW), as
/// loupe_avgpool_plane (same divisor rules), vectorised and parallel over planes.
void loupe_avgpool_forward(const float *x, ptrdiff_t planes, const loupe_window2d *g, ptrdiff_t padBottom,
                           ptrdiff_t padRight, int countIncludePad, float *y);
/// Its adjoint, *accumulating* into gx (planes x inH x inW).
void loupe_avgpool_backward(const float *gy, ptrdiff_t planes, const loupe_window2d *g, ptrdiff_t padBottom,
                            ptrdiff_t padRight, int countIncludePad, float *gx);

/// Global average pooling: y[p] = mean of x[p*size ..< (p+1)*size] for each of `planes` planes.
void loupe_global_avgpool(const float *x, ptrdiff_t planes, ptrdiff_t size, float *y);
/// Its adjoint: gx[p*size + i] = gy[p] / size (overwrites gx).
void loupe_global_avgpool_grad(const float *gy, ptrdiff_t planes, ptrdiff_t size, float *gx);

/// Max-pooling adjoint of one plane without scratch memory: each output's cotangent goes to
/// the first input position attaining its maximum (NaN wins, as in loupe_maxpool_plane),
/// accumulating into gx (inH, inW).
void loupe_maxpool_plane_grad(const float *x, const float *gy, const loupe_window2d *g, float *gx);
/// Max pooling over `planes` planes (x: planes x inH x inW, y: planes x outH x outW), as
/// loupe_maxpool_plane without arg-max: NaN propagates, windows without a valid tap give -infinity.
void loupe_maxpool_forward(const float *x, ptrdiff_t planes, const loupe_window2d *g, float *y);
/// Max-pooling adjoint over `planes` planes (x, gx: planes x inH x inW; gy: planes x outH x outW),
/// same routing rule as loupe_maxpool_plane_grad; gx is written whole (it need not be zeroed:
/// each plane is zeroed in cache just before its routing); vectorised arg-max search, parallel
/// over planes.
void loupe_maxpool_backward(const float *x, const float *gy, ptrdiff_t planes, const loupe_window2d *g, float *gx);

#endif
