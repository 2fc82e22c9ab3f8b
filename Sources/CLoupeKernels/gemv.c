// Matrix-vector products: GEMMs with one row (a classifier head at batch 1: x (1 x K) times a
// K x N weight) or one column. The blocked GEMM would pack the whole weight into panels and run
// a 14-row register tile on a single row; here the weight is read once, in place, at memory
// speed, in one of two shapes:
// - "axpy" (the weight's rows run along the outputs): 256 outputs held in 16 registers while
//   every k adds x[k] times 256 contiguous weights;
// - "dot" (the weight's rows run along k, as ONNX Gemm with transB = 1 stores them): four
//   outputs at a time, each a dot product of x with a contiguous row.
#include "CLoupeKernels.h"
#include "gemm_internal.h"
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

/// y[j*incy] = alpha * sum_k x[k*incx] * B[k*rs + j*cs] + beta * y[j*incy] for j in [j0, j1).
typedef struct {
    ptrdiff_t N, K;
    float alpha, beta;
    const float *x; ptrdiff_t incx;
    const float *B; ptrdiff_t rs, cs;
    float *y; ptrdiff_t incy;
    int level;
    ptrdiff_t chunk;
} gemv_problem;

static inline void store_out(const gemv_problem *p, ptrdiff_t j, float s) {
    float *y = p->y + j * p->incy;
    *y = p->alpha * s + (p->beta == 0.0f ? 0.0f : p->beta * *y);
}

static void gemv_portable(const gemv_problem *p, ptrdiff_t j0, ptrdiff_t j1) {
    for (ptrdiff_t j = j0; j < j1; j++) {
        float s = 0;
        const float *b = p->B + j * p->cs;
        for (ptrdiff_t k = 0; k < p->K; k++) s += p->x[k * p->incx] * b[k * p->rs];
        store_out(p, j, s);
    }
}

#if defined(__x86_64__)
/// Outputs contiguous in B (cs == 1): blocks of 256 outputs in 16 accumulators over all k.
__attribute__((target("avx512f,fma")))
static void gemv_axpy_avx512(const gemv_problem *p, ptrdiff_t j0, ptrdiff_t j1) {
    for (ptrdiff_t jb = j0; jb < j1; jb += 256) {
        ptrdiff_t n = j1 - jb < 256 ? j1 - jb : 256, full = n / 16;
        __mmask16 tail = (__mmask16)((1u << (n % 16)) - 1);
        __m512 acc[17];
        for (int v = 0; v < 17; v++) acc[v] = _mm512_setzero_ps();
        const float *b = p->B + jb;
        for (ptrdiff_t k = 0; k < p->K; k++, b += p->rs) {
            __m512 xk = _mm512_set1_ps(p->x[k * p->incx]);
            for (ptrdiff_t v = 0; v < full; v++) acc[v] = _mm512_fmadd_ps(xk, _mm512_loadu_ps(b + 16 * v), acc[v]);
            if (tail) acc[full] = _mm512_fmadd_ps(xk, _mm512_maskz_loadu_ps(tail, b + 16 * full), acc[full]);
        }
        float out[272];
        for (ptrdiff_t v = 0; v <= full && v < 17; v++) _mm512_storeu_ps(out + 16 * v, acc[v]);
        for (ptrdiff_t j = 0; j < n; j++) store_out(p, jb + j, out[j]);
    }
}

/// k contiguous in B (rs == 1): four outputs at a time, each a dot product of x with a row.
__attribute__((target("avx512f,fma")))
static void gemv_dot_avx512(const gemv_problem *p, ptrdiff_t j0, ptrdiff_t j1) {
    const ptrdiff_t K = p->K, full = K / 16;
    const __mmask16 tail = (__mmask16)((1u << (K % 16)) - 1);
    // x gathered once when strided, so the inner loop reads it contiguously.
    float xs[1024];
    const float *x = p->x;
    if (p->incx != 1) {
        if (K > 1024) { gemv_portable(p, j0, j1); return; }
        for (ptrdiff_t k = 0; k < K; k++) xs[k] = p->x[k * p->incx];
        x = xs;
    }
    // One row at a time, four accumulators over k: the weight is read as one contiguous stream
    // (rows are adjacent), which the hardware prefetchers follow; four rows at once were four
    // streams 4 KB apart and read a memory-resident weight at half the speed.
    for (ptrdiff_t j = j0; j < j1; j++) {
        const float *b = p->B + j * p->cs;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        ptrdiff_t v = 0;
        for (; v + 4 <= full; v += 4) {
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + 16 * v), _mm512_loadu_ps(b + 16 * v), a0);
            a1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + 16 * v + 16), _mm512_loadu_ps(b + 16 * v + 16), a1);
            a2 = _mm512_fmadd_ps(_mm512_loadu_ps(x + 16 * v + 32), _mm512_loadu_ps(b + 16 * v + 32), a2);
            a3 = _mm512_fmadd_ps(_mm512_loadu_ps(x + 16 * v + 48), _mm512_loadu_ps(b + 16 * v + 48), a3);
        }
        for (; v < full; v++) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + 16 * v), _mm512_loadu_ps(b + 16 * v), a0);
        if (tail) a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, x + 16 * full), _mm512_maskz_loadu_ps(tail, b + 16 * full), a1);
        store_out(p, j, _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3))));
    }
}
#endif

static void gemv_range(const gemv_problem *p, ptrdiff_t j0, ptrdiff_t j1) {
#if defined(__x86_64__)
    if (p->level == 2 && p->cs == 1) { gemv_axpy_avx512(p, j0, j1); return; }
    if (p->level == 2 && p->rs == 1) { gemv_dot_avx512(p, j0, j1); return; }
#endif
    gemv_portable(p, j0, j1);
}

static void gemv_task(void *ctx, ptrdiff_t t) {
    const gemv_problem *p = ctx;
    ptrdiff_t j0 = t * p->chunk, j1 = j0 + p->chunk < p->N ? j0 + p->chunk : p->N;
    gemv_range(p, j0, j1);
}

int loupe_gemv_if_vector(int transA, int transB, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, float alpha, const float *A,
                         ptrdiff_t lda, const float *B, ptrdiff_t ldb, float beta, float *C, ptrdiff_t ldc, int threaded) {
    if (K <= 0 || (M != 1 && N != 1)) return 0;
    // op(A)[i][k] = A[i*rsA + k*csA], op(B)[k][j] = B[k*rsB + j*csB].
    const ptrdiff_t rsA = transA ? 1 : lda, csA = transA ? lda : 1, rsB = transB ? 1 : ldb, csB = transB ? ldb : 1;
    gemv_problem p;
    memset(&p, 0, sizeof p);
    p.K = K;
    p.alpha = alpha;
    p.beta = beta;
    p.level = loupe_gemm_level();
    if (M == 1) { // C row = x (row of op(A)) times op(B)
        p.N = N; p.x = A; p.incx = csA; p.B = B; p.rs = rsB; p.cs = csB; p.y = C; p.incy = 1;
    } else {      // C column = op(A) times x (column of op(B)): element (k, i) of the "matrix" is op(A)[i][k]
        p.N = M; p.x = B; p.incx = rsB; p.B = A; p.rs = csA; p.cs = rsA; p.y = C; p.incy = ldc;
    }
    const int threads = threaded ? loupe_threads() : 1;
    // Split the outputs when the weight is large enough to pay for waking the pool.
    if (threads > 1 && p.N * K >= (1 << 16) && p.N >= 32) {
        ptrdiff_t tasks = 4 * (ptrdiff_t)threads;
        p.chunk = ((p.N + tasks - 1) / tasks + 15) / 16 * 16;
        loupe_parallel_for((p.N + p.chunk - 1) / p.chunk, gemv_task, &p);
    } else {
        gemv_range(&p, 0, p.N);
    }
    return 1;
}
