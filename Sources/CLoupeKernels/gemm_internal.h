// Pieces of the GEMM shared with the convolution driver (conv_gemm.c); not part of the module.
#ifndef CLOUPE_GEMM_INTERNAL_H
#define CLOUPE_GEMM_INTERNAL_H
#include <stddef.h>

/// Depth of one packed block (the k extent a micro-kernel call covers).
#ifndef KC
#define KC 256
/// When op(A) has one row or op(B) one column: the matrix-vector product (gemv.c), reading the
/// matrix in place, split over the pool when `threaded` and large. Returns 0 (nothing done) for
/// other shapes or K = 0.
int loupe_gemv_if_vector(int transA, int transB, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, float alpha, const float *A,
                         ptrdiff_t lda, const float *B, ptrdiff_t ldb, float beta, float *C, ptrdiff_t ldc, int threaded);

#endif

typedef void (*micro_kernel)(ptrdiff_t kc, const float *a, const float *b, float *c, ptrdiff_t ldc,
                             float alpha, float beta);

/// One micro-kernel with its register tile (mr x nr) and cache block sizes (mc x nc), and
/// optionally a kernel for a last panel of at most `short_rows` rows (same panel layout, rows
/// beyond short_rows ignored), so M = 64 with mr = 14 does not compute 6 rows of zeros.
/// A micro-kernel that also adds a bias per row (`bias` may be NULL) and applies ReLU (`relu`
/// non-zero) before it stores the tile: the conv epilogue without a second pass over C.
typedef void (*fused_micro_kernel)(ptrdiff_t kc, const float *a, const float *b, float *c, ptrdiff_t ldc,
                                   float alpha, float beta, const float *bias, ptrdiff_t relu);

typedef struct {
    int mr, nr, mc, nc;
    micro_kernel kernel;
    int short_rows;
    micro_kernel short_kernel;
    /// `kernel` with the epilogue fused in (full mr x nr tiles), or NULL.
    fused_micro_kernel fused_kernel;
} gemm_path;

/// Paths by level: 0 portable, 1 AVX2+FMA, 2 AVX-512F.
extern const gemm_path loupe_gemm_paths[3];

/// Packs op(A)[0..<mc, 0..<kc] (row stride rs, column stride cs) into mr-row panels, k-major
/// inside a panel, zero padded to a multiple of mr rows.
void loupe_pack_a_panels(const float *A, ptrdiff_t rs, ptrdiff_t cs, ptrdiff_t mc, ptrdiff_t kc, int mr, float *dst);

/// A 64-byte aligned scratch buffer of at least `floats` floats owned by the calling thread
/// (reused across calls), or NULL when out of memory.
float *loupe_thread_buffer(size_t floats);

/// C tile (mv x nv, row stride ldc) = tile (row stride ts) + beta * C, then, when `fused`,
/// + bias[i] per row (bias may be NULL) and ReLU when relu != 0. The partial-tile merge of both
/// GEMM drivers: AVX-512 for the 32-wide tiles of level 2, else portable.
void loupe_merge_tile(int level, float *c, ptrdiff_t ldc, const float *tile, ptrdiff_t ts, ptrdiff_t mv, ptrdiff_t nv,
                      float beta, int fused, const float *bias, int relu);

/// Threaded GEMM through a packed A: A packed once over the pool, then the conv driver's split
/// (columns, or rows with B packed once and shared), so no operand is packed twice. Returns 0
/// when memory for the panels cannot be had (the caller then takes the plain path).
int loupe_sgemm_via_packed(int transA, int transB, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, float alpha,
                           const float *A, ptrdiff_t lda, const float *B, ptrdiff_t ldb, float beta,
                           float *C, ptrdiff_t ldc);

/// When op(A) has one row or op(B) one column: the matrix-vector product (gemv.c), reading the
/// matrix in place, split over the pool when `threaded` and large. Returns 0 (nothing done) for
/// other shapes or K = 0.
int loupe_gemv_if_vector(int transA, int transB, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, float alpha, const float *A,
                         ptrdiff_t lda, const float *B, ptrdiff_t ldb, float beta, float *C, ptrdiff_t ldc, int threaded);

#endif
