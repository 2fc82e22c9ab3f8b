#ifndef CLOUPE_KERNELS_H
#define CLOUPE_KERNELS_H
#include <stddef.h>

/// Highest SIMD level the running CPU supports: 0 = baseline, 1 = AVX2+FMA, 2 = AVX-512F.
int loupe_cpu_level(void);

/// Householder tridiagonalisation of the symmetric row-major n x n matrix a (both triangles
/// must hold it), T = Q^T A Q with Q = H_0 H_1 ... H_{n-3}, H_k = I - beta[k] v_k v_k^T acting on
/// coordinates k+1 ..< n. On return d[n] and e[n-1] hold T's diagonal and subdiagonal, v_k sits in
/// column k of a from row k+1 down (beta[k] == 0: no reflector), and the rest of a is scratch.
/// beta needs n entries, work 3n + 8 doubles.
void loupe_sym_tridiagonalize(double *a, ptrdiff_t n, double *d, double *e, double *beta, double *work);

/// y = x - mean(x) per row of the rows x n matrix x, NaN counted as 0 (in the mean and in y);
/// the mean summed in double. x and y may be the same buffer.
void loupe_center_rows(const float *x, ptrdiff_t rows, ptrdiff_t n, float *y);

/// g (n x n, row-major) = Xc' Xc, Xc the rows x n matrix x with each row centred as loupe_center_rows
/// does; accumulated in float (rows split over the pool when large), both triangles equal.
/// scratch holds loupe_centered_gram_scratch(rows, n) floats.
void loupe_centered_gram(const float *x, ptrdiff_t rows, ptrdiff_t n, float *scratch, double *g);
ptrdiff_t loupe_centered_gram_scratch(ptrdiff_t rows, ptrdiff_t n);

// MARK: - Thread pool

/// Number of threads (including the caller) parallel kernels use. Defaults to the number of
/// online CPUs (or the LOUPE_THREADS environment variable), at most 64.
int loupe_threads(void);
/// Sets the thread count (clamped to 1...64). Takes effect on the next parallel call.
void loupe_set_threads(int n);

/// Tunes the C allocator once per process for large short-lived buffers (glibc: freed blocks
/// up to 256 MB are kept for reuse instead of being unmapped or trimmed). Set the environment
/// variable LOUPE_KEEP_MALLOC to leave the allocator as it is.
void loupe_tune_allocator(void);

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

// MARK: - Activations fused into convolutions

/// Activation applied to a convolution's output inside the kernel: LOUPE_ACT_NONE, LOUPE_ACT_RELU
/// (max(x, 0), NaN kept; in the GEMM epilogue), or LOUPE_ACT_UNARY + op for a parameterless
/// loupe_vunary op (SiLU, HardSwish, ...), applied to each block of output as soon as it is
/// final, while it is still in cache.
enum { LOUPE_ACT_NONE = 0, LOUPE_ACT_RELU = 1, LOUPE_ACT_UNARY = 16 };

// MARK: - Pre-packed A operand (constant weights)

/// An M x K matrix packed once into the GEMM micro-kernel's row panels, for operands that do not
/// change between calls (convolution and linear weights). Opaque; owned by the caller.
typedef struct loupe_packed_a loupe_packed_a;

/// Packs op(A) (M x K; A stored M x K with row stride lda, or K x M when transA). Returns NULL
/// for an empty matrix or when out of memory.
loupe_packed_a *loupe_packed_a_create(int transA, ptrdiff_t M, ptrdiff_t K, const float *A, ptrdiff_t lda);
void loupe_packed_a_destroy(loupe_packed_a *p);
/// Whether the panels fit the GEMM path in force now (a forced level changes the tile shape).
int loupe_packed_a_matches(const loupe_packed_a *p);
/// op(A)^T (K x M) packed from the same source, made on first use and kept (thread-safe), for
/// the adjoint GEMMs. The source must outlive `p`. NULL when out of memory or when the kept
/// copy was packed for another GEMM path than the one in force.
const loupe_packed_a *loupe_packed_a_transpose(loupe_packed_a *p);
/// For packed convolution weights W (M x C*kk, kk = kH*kW taps): the matrix (C x M*kk) of the
/// spatially flipped, channel-transposed kernel, made on first use and kept, with which the
/// input gradient of a stride-1 convolution is itself a convolution (of the output gradient).
/// NULL as for loupe_packed_a_transpose.
const loupe_packed_a *loupe_packed_a_conv_adjoint(loupe_packed_a *p, ptrdiff_t kk);

/// C (M x N, row stride ldc) = A * op(B) + beta * C, then + bias[i] on row i (bias may be NULL),
/// then the activation `act` (LOUPE_ACT_*). op(B) is K x N (B stored K x N with row stride ldb,
/// or N x K when transB). `threaded` = 0 keeps the call on this thread.
void loupe_sgemm_packed(const loupe_packed_a *a, int transB, ptrdiff_t N, const float *B, ptrdiff_t ldb,
                        float beta, const float *bias, int act, float *C, ptrdiff_t ldc, int threaded);

/// Whether loupe_conv2d_small_c takes a convolution of `c` input channels (groups 1) at SIMD
/// level `level`: AVX-512, at most 4 input channels and 64 taps (c*kH*kW), rows of 16 outputs or more.
int loupe_conv2d_small_c_suits(ptrdiff_t c, ptrdiff_t m, const loupe_window2d *g, int level);
/// Direct convolution for few input channels (a first layer on RGB): x (n, c, inH, inW), w (m, c,
/// kH, kW), bias (m) or NULL, y (n, m, outH, outW) overwritten, then the activation `act`
/// (LOUPE_ACT_*). No panel packing of the image. Returns 0, with nothing written, when out of memory.
int loupe_conv2d_small_c(const float *x, const float *w, const float *bias, ptrdiff_t n, ptrdiff_t c, ptrdiff_t m,
                         const loupe_window2d *g, int act, float *y);

/// A pointwise convolution of one image, y (M x N) = W x (K x N) + bias, then `act`, computed
/// as y^T = x^T W^T when the N pixels fill the GEMM's 14-row panels markedly better than its
/// 32-column ones (7x7 and 14x14 maps). Returns 0, with nothing written, when it would not pay.
int loupe_pointwise_transposed(const loupe_packed_a *w, const float *x, ptrdiff_t N, const float *bias, int act,
                               float *y, int threaded);
/// Whether loupe_pointwise_transposed takes N pixels with these weights.
int loupe_pointwise_transposed_suits(const loupe_packed_a *w, ptrdiff_t N);
/// loupe_pointwise_transposed of x * s, row k of x (input channel k) multiplied by rowScale[k]
/// as the operand is packed: the squeeze-excitation product folded in, never made.
int loupe_pointwise_transposed_scaled(const loupe_packed_a *w, const float *x, ptrdiff_t N, const float *rowScale,
                                      const float *bias, int act, float *y, int threaded);
/// A pointwise convolution on 1x1 maps for a batch of `rows` images (squeeze-excitation layers):
/// y (rows x M) = x (rows x K) W^T + bias, then `act`, over the weight's transposed panels (made
/// on first use and kept), so no call packs the weight. Returns 0, with nothing written, when
/// those panels cannot be had.
int loupe_pointwise_rows(const loupe_packed_a *w, const float *x, ptrdiff_t rows, const float *bias, int act, float *y,
                         int threaded);

/// loupe_sgemm_packed (transB = 0, beta = 0) with row k of B multiplied by rowScale[k] as it is
/// packed: C = A * diag(rowScale) * B + bias. A pointwise convolution of x * s, where s is one
/// scale per input channel (squeeze-excitation), without the pass that would multiply x.
void loupe_sgemm_packed_scaled(const loupe_packed_a *a, ptrdiff_t N, const float *B, ptrdiff_t ldb,
                               const float *rowScale, const float *bias, int act, float *C, ptrdiff_t ldc, int threaded);

/// A K x N right-hand operand packed once into the micro-kernel's column panels (constant MatMul
/// weights). Opaque; owned by the caller.
typedef struct loupe_packed_b loupe_packed_b;
/// Packs op(B) (K x N; B stored K x N with row stride ldb, or N x K when transB). NULL for an
/// empty matrix or when out of memory.
loupe_packed_b *loupe_packed_b_create(int transB, ptrdiff_t K, ptrdiff_t N, const float *B, ptrdiff_t ldb);
void loupe_packed_b_destroy(loupe_packed_b *p);
/// op(B)^T (N x K) packed the same way, made from `B` (the matrix `p` was created from, same
/// ldb) on first use and kept with `p` (published by compare-and-swap, so concurrent callers
/// are safe): the right operand of dA = dC * op(B)^T in a backward pass. NULL when out of memory.
const loupe_packed_b *loupe_packed_b_transposed(loupe_packed_b *p, const float *B, ptrdiff_t ldb);
/// Whether the panels fit the GEMM path in force now.
int loupe_packed_b_matches(const loupe_packed_b *p);
/// C (M x N, row stride ldc) = op(A) * B with B pre-packed (beta 0; op(A) is M x K, A stored M x K
/// with row stride lda, or K x M when transA), plus colBias[j] in every row when colBias is not
/// NULL (N floats). Returns 0, having written nothing, when `b` does not match the GEMM path in
/// force or memory for packing A is short.
int loupe_sgemm_packed_b(int transA, ptrdiff_t M, const float *A, ptrdiff_t lda, const loupe_packed_b *b, float *C,
                         ptrdiff_t ldc, const float *colBias, int threaded);

/// Convolution of one image and one group without an im2col buffer: y (M, outH*outW) =
/// W (M, C*kH*kW) * im2col(x), x being (C, inH, inW) with geometry g, then + bias[m] (bias may
/// be NULL) and the activation `act` (LOUPE_ACT_*). W must have been packed with K = C*kH*kW.
void loupe_conv2d_packed(const loupe_packed_a *w, const float *x, const loupe_window2d *g,
                         const float *bias, int act, float *y, int threaded);
// MARK: - Winograd F(4x4, 3x3) (winograd.c)

/// 3x3 weights transformed to the Winograd domain (36 values per channel pair) and packed in the
/// micro-kernel's panel layout. Opaque; AVX-512 GEMM path only.
typedef struct loupe_winograd loupe_winograd;

/// Transforms weights whose element (output o, input i, tap t = kh*3 + kw) is
/// w[o*so + i*si + t] (tap 8 - t when `flip`) for M outputs and C inputs, for F(tile x tile,
/// 3x3) with tile 4 (fast) or 2 (rounds like a direct sum, see winograd.c). NULL when out of
/// memory, for empty shapes, for a weight that is not finite everywhere, or when the GEMM path in
/// force is not AVX-512.
loupe_winograd *loupe_winograd_create(const float *w, ptrdiff_t M, ptrdiff_t C, ptrdiff_t so, ptrdiff_t si, int flip, int tile);
void loupe_winograd_destroy(loupe_winograd *p);
/// Whether `p` was made for the GEMM path in force.
int loupe_winograd_matches(const loupe_winograd *p);
/// Whether Winograd convolutions may run: the AVX-512 path is in force, this thread is not inside
/// loupe_winograd_direct_only(1) (unless the environment variable LOUPE_WINOGRAD=all), and
/// neither loupe_winograd_set_enabled(0) nor LOUPE_WINOGRAD=0 turned them off (the environment
/// is read once per process).
int loupe_winograd_available(void);
/// 1 / 0 forces Winograd on / off (still only on the AVX-512 path); -1 restores the default.
void loupe_winograd_set_enabled(int on);
/// Turns Winograd off (on != 0) or back on for the calling thread only; returns the previous
/// setting, to be restored. For forward passes recorded for a backward pass.
int loupe_winograd_direct_only(int on);
/// Whether a 3x3 stride-1 convolution of N images of this size is expected to run faster as
/// Winograd than directly (enough 4x4 output tiles, over the batch, to fill the 32-tile panels),
/// and loupe_winograd_available().
int loupe_winograd_suits(ptrdiff_t N, ptrdiff_t M, ptrdiff_t C, ptrdiff_t outH, ptrdiff_t outW);
/// The Winograd tile for this convolution on this thread: where loupe_winograd_suits, 4, or 2
/// when F(2x2, 3x3) does less GEMM work (its panels better filled: one image of 14x14 maps);
/// inside loupe_winograd_direct_only(1), 2 where F(2x2, 3x3) — whose rounding is that of a
/// direct sum — is expected to beat the direct convolution (unless LOUPE_WINOGRAD=direct or 0,
/// or loupe_winograd_set_enabled(0)); else 0.
int loupe_winograd_tile(ptrdiff_t N, ptrdiff_t M, ptrdiff_t C, ptrdiff_t outH, ptrdiff_t outW);
/// y (N, M, outH, outW) = 3x3 stride-1 undilated convolution of x (N, C, inH, inW) with geometry
/// g (any padding), + bias[m] (may be NULL), then the activation `act` (LOUPE_ACT_*). The images'
/// tiles share panels, so small maps fill them in a batch. Returns 0, having written nothing,
/// when the geometry is not 3x3/stride 1/dilation 1, `u` does not match, memory is short, or x
/// holds a NaN or infinity (whose spread over whole tiles would differ from a direct sum's).
int loupe_conv2d_winograd(const loupe_winograd *u, ptrdiff_t N, const float *x, const loupe_window2d *g, const float *bias,
                          int act, float *y, int threaded);
/// The Winograd form of packed 3x3 convolution weights W (M x C*9), made on first use and kept
/// (thread-safe): `kind` 0, F(4x4, 3x3) of W itself; 1, F(4x4, 3x3) of the flipped,
/// channel-transposed kernel whose convolution with the output gradient is a stride-1
/// convolution's input gradient; 2, F(2x2, 3x3) of W; 3, F(2x2, 3x3) of that flipped kernel.
/// NULL when unavailable (not 3x3, no source, out of memory, another GEMM path).
const loupe_winograd *loupe_packed_a_winograd(loupe_packed_a *p, int kind);

// Whole-tensor depthwise and global-pooling kernels (umbrella: the module exports only what this header includes).
#include "CLoupeWindow.h"
// Vector math, broadcast arithmetic, softmax, row normalisation (vmath.c). SwiftPM exports only
// this umbrella header, so the second header has to be reached from here.
#include "CLoupeVMath.h"

#endif
