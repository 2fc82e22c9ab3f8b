#ifndef CLOUPE_KERNELS_H
#define CLOUPE_KERNELS_H
#include <stddef.h>

/// Highest SIMD level the running CPU supports: 0 = baseline, 1 = AVX2+FMA, 2 = AVX-512F.
int loupe_cpu_level(void);

// MARK: - Thread pool

/// Number of threads (including the caller) parallel kernels use. Defaults to the number of
/// online CPUs, at most 64.
int loupe_threads(void);
/// Sets the thread count (clamped to 1...64). Takes effect on the next parallel call.
void loupe_set_threads(int n);

/// A unit of parallel work: `fn(ctx, i)` for one task index `i`.
typedef void (*loupe_task_fn)(void *ctx, ptrdiff_t i);

/// Runs `fn(ctx, i)` for every i in 0..<n, spread over the persistent pool. The caller takes
/// part. If the pool is busy (another thread's job, or a nested call from inside a task) the
/// tasks run serially on the calling thread, so nested use can never deadlock.
void loupe_parallel_for(ptrdiff_t n, loupe_task_fn fn, void *ctx);

// MARK: - GEMM

/// Path the GEMM dispatcher uses: -1 = automatic (from loupe_cpu_level), 0 = portable,
/// 1 = AVX2+FMA, 2 = AVX-512F. Forcing a level the CPU lacks falls back to automatic.
void loupe_gemm_force_level(int level);
/// The level actually used by the next call.
int loupe_gemm_level(void);

/// Row-major single precision GEMM: C = alpha * op(A) * op(B) + beta * C, where op(A) is M x K
/// (A is M x K with leading dimension lda, or K x M when transA), op(B) is K x N, C is M x N
/// with leading dimension ldc. beta == 0 overwrites C without reading it (NaN in C is
/// discarded). Large problems use the thread pool.
void loupe_sgemm(int transA, int transB, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K,
                 float alpha, const float *A, ptrdiff_t lda,
                 const float *B, ptrdiff_t ldb,
                 float beta, float *C, ptrdiff_t ldc);

/// Same, always on the calling thread (used by callers that parallelise at a higher level).
void loupe_sgemm_serial(int transA, int transB, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K,
                        float alpha, const float *A, ptrdiff_t lda,
                        const float *B, ptrdiff_t ldb,
                        float beta, float *C, ptrdiff_t ldc);

// MARK: - Convolution helpers (one image, one group)

/// Geometry of a 2-D sliding window over one channel plane.
typedef struct {
    ptrdiff_t inH, inW;       ///< input plane
    ptrdiff_t outH, outW;     ///< output plane
    ptrdiff_t kH, kW;         ///< window
    ptrdiff_t strideH, strideW;
    ptrdiff_t padTop, padLeft; ///< begin paddings (end paddings are implied by outH/outW)
    ptrdiff_t dilH, dilW;
} loupe_window2d;

/// im2col restricted to output rows [oh0, oh1): x is (C, inH, inW); col is
/// (C*kH*kW, (oh1-oh0)*outW), row-major; padded taps are 0.
void loupe_im2col(const float *x, ptrdiff_t channels, const loupe_window2d *g, ptrdiff_t oh0, ptrdiff_t oh1,
                  float *col);
/// col2im for output rows [oh0, oh1): the adjoint of loupe_im2col, *accumulating* into x.
void loupe_col2im(const float *col, ptrdiff_t channels, const loupe_window2d *g, ptrdiff_t oh0, ptrdiff_t oh1,
                  float *x);

/// Depthwise convolution of one plane: y (outH, outW) = sum_taps w * x (+ bias), ignoring pads.
void loupe_depthwise_plane(const float *x, const float *w, float bias, const loupe_window2d *g, float *y);
/// Adjoint wrt input of one depthwise plane, accumulating into gx (inH, inW).
void loupe_depthwise_plane_grad_input(const float *gy, const float *w, const loupe_window2d *g, float *gx);
/// Adjoint wrt weight of one depthwise plane, accumulating into gw (kH, kW).
void loupe_depthwise_plane_grad_weight(const float *gy, const float *x, const loupe_window2d *g, float *gw);

// MARK: - Pooling (one plane)

/// Max pooling of one plane. Windows with no valid tap produce -infinity. If argmax is not
/// NULL it receives the flat input index (into the plane) of each maximum, or -1.
void loupe_maxpool_plane(const float *x, const loupe_window2d *g, float *y, ptrdiff_t *argmax);
/// Average pooling of one plane. countIncludePad: divide by the number of taps inside the
/// padded input (ONNX count_include_pad=1; taps beyond the padding, from ceil_mode, are not
/// counted), else by the number of taps inside the unpadded input.
/// padBottom/padRight are the end pads.
void loupe_avgpool_plane(const float *x, const loupe_window2d *g, ptrdiff_t padBottom, ptrdiff_t padRight,
                         int countIncludePad, float *y);
/// Adjoint of loupe_avgpool_plane, accumulating into gx.
void loupe_avgpool_plane_grad(const float *gy, const loupe_window2d *g, ptrdiff_t padBottom, ptrdiff_t padRight,
                              int countIncludePad, float *gx);

// Vector math, broadcast arithmetic, softmax, row normalisation (vmath.c). SwiftPM exports only
// this umbrella header, so the second header has to be reached from here.
#include "CLoupeVMath.h"

#endif
