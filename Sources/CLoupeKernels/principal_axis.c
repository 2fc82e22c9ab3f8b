// Eigen-CAM's principal axis: centring the activation rows, and the Householder reduction of
// their small Gram matrix to tridiagonal form, the O(n^3) part of the top eigenpair
// (SymmetricEigen.swift does the O(n^2) rest).
//
// Tridiagonalisation: Golub & Van Loan, Matrix Computations 4th ed., Algorithm 8.3.1. The portable
// path reads and updates only the lower triangle (half the flops); the AVX-512 path updates the
// whole block, which on these short rows costs less than the triangle's per-row work. The Swift
// code is built for baseline x86-64 (SSE2), so these loops live here.
// Both kernels follow the vector-math level (Kernels.forceVectorMathLevel), so tests reach the
// portable path too.
#include "CLoupeKernels.h"
#include "CLoupeVMath.h"
#include <math.h>
#if defined(__x86_64__)
#include <immintrin.h>
#include "lane_mask.h"
#endif

/// p = B v from the lower triangle of the m x m block B (row stride n), then the rank-2 update
/// B -= v w' + w v' of its lower triangle with w = bt p - (bt^2/2)(p.v) v.
typedef void (*sym_update_fn)(double *b0, ptrdiff_t n, ptrdiff_t m, const double *v, double *p, double *w, double bt);

static void finish_w(ptrdiff_t m, const double *v, double *p, double *w, double bt) {
    double pv = 0;
    for (ptrdiff_t i = 0; i < m; i++) { p[i] *= bt; pv += p[i] * v[i]; }
    const double half = bt * pv / 2;
    for (ptrdiff_t i = 0; i < m; i++) w[i] = p[i] - half * v[i];
}

static void sym_update_plain(double *b0, ptrdiff_t n, ptrdiff_t m, const double *v, double *p, double *w, double bt) {
    for (ptrdiff_t i = 0; i < m; i++) p[i] = 0;
    for (ptrdiff_t i = 0; i < m; i++) {
        const double *row = b0 + i * n;
        const double vi = v[i];
        double dot = 0;
        for (ptrdiff_t j = 0; j < i; j++) { p[j] += vi * row[j]; dot += row[j] * v[j]; }
        p[i] += dot + row[i] * vi;
    }
    finish_w(m, v, p, w, bt);
    for (ptrdiff_t i = 0; i < m; i++) {
        const double vi = v[i], wi = w[i];
        double *row = b0 + i * n;
        for (ptrdiff_t j = 0; j <= i; j++) row[j] -= vi * w[j] + wi * v[j];
    }
}

#if defined(__x86_64__)
/// The same on the whole block (both triangles kept), at AVX-512 width. B v is summed as
/// sum_i v_i B[i,:] with up to 48 columns of p held in registers through all m rows: every row is
/// whole vectors and one tail mask, with no horizontal sum or store per row. Rows are at most
/// Eigen-CAM's 48 long, so per-row overhead, not flops, is what the lower-triangle loop paid for.
#define SYM_CHUNK 6

/// Masks of the SYM_CHUNK vectors of 8 from vector c0 of an nv-vector row: full, `tail` on the
/// last vector, none past it.
static inline void sym_chunk_masks(ptrdiff_t c0, ptrdiff_t nv, __mmask8 tail, __mmask8 *k) {
    for (int u = 0; u < SYM_CHUNK; u++) k[u] = c0 + u < nv - 1 ? (__mmask8)0xFF : c0 + u == nv - 1 ? tail : 0;
}

__attribute__((target("avx512f")))
static void sym_update_avx512(double *b0, ptrdiff_t n, ptrdiff_t m, const double *v, double *p, double *w, double bt) {
    const ptrdiff_t nv = (m + 7) / 8;
    const __mmask8 tail = (m & 7) ? (__mmask8)((1u << (m & 7)) - 1) : (__mmask8)0xFF;
    for (ptrdiff_t c0 = 0; c0 < nv; c0 += SYM_CHUNK) {
        __m512d acc[SYM_CHUNK];
        __mmask8 k[SYM_CHUNK];
        sym_chunk_masks(c0, nv, tail, k);
        for (int u = 0; u < SYM_CHUNK; u++) acc[u] = _mm512_setzero_pd();
        for (ptrdiff_t i = 0; i < m; i++) {
            const double *row = b0 + i * n + 8 * c0;
            const __m512d vi = _mm512_set1_pd(v[i]);
            for (int u = 0; u < SYM_CHUNK; u++)
                if (k[u]) acc[u] = _mm512_fmadd_pd(vi, _mm512_maskz_loadu_pd(k[u], row + 8 * u), acc[u]);
        }
        for (int u = 0; u < SYM_CHUNK; u++)
            if (k[u]) _mm512_mask_storeu_pd(p + 8 * (c0 + u), k[u], acc[u]);
    }
    finish_w(m, v, p, w, bt);
    // B -= v w' + w v', the chunk's columns of v and w held in registers down all the rows.
    for (ptrdiff_t c0 = 0; c0 < nv; c0 += SYM_CHUNK) {
        __m512d vc[SYM_CHUNK], wc[SYM_CHUNK];
        __mmask8 k[SYM_CHUNK];
        sym_chunk_masks(c0, nv, tail, k);
        for (int u = 0; u < SYM_CHUNK; u++) {
            vc[u] = _mm512_maskz_loadu_pd(k[u], v + 8 * (c0 + u));
            wc[u] = _mm512_maskz_loadu_pd(k[u], w + 8 * (c0 + u));
        }
        for (ptrdiff_t i = 0; i < m; i++) {
            double *row = b0 + i * n + 8 * c0;
            const __m512d vi = _mm512_set1_pd(v[i]), wi = _mm512_set1_pd(w[i]);
            for (int u = 0; u < SYM_CHUNK; u++) {
                if (!k[u]) continue;
                __m512d r = _mm512_maskz_loadu_pd(k[u], row + 8 * u);
                r = _mm512_fnmadd_pd(vi, wc[u], r);
                _mm512_mask_storeu_pd(row + 8 * u, k[u], _mm512_fnmadd_pd(wi, vc[u], r));
            }
        }
    }
}
#endif

void loupe_sym_tridiagonalize(double *a, ptrdiff_t n, double *d, double *e, double *beta, double *work) {
    if (n <= 0) return;
    // p may be read and written up to 7 entries past its n: 8 spare before w.
    double *v = work, *p = work + n, *w = work + 2 * n + 8;
    sym_update_fn update = sym_update_plain;
#if defined(__x86_64__)
    if (loupe_vmath_level() >= 2) update = sym_update_avx512;
#endif
    for (ptrdiff_t k = 0; k + 2 < n; k++) {
        const ptrdiff_t m = n - k - 1;
        double *col = a + (k + 1) * n + k; // column k below the diagonal, stride n
        double norm2 = 0;
        for (ptrdiff_t i = 0; i < m; i++) norm2 += col[i * n] * col[i * n];
        beta[k] = 0;
        e[k] = col[0];
        const double norm = sqrt(norm2);
        if (norm == 0) continue;
        const double alpha = col[0] > 0 ? -norm : norm;
        for (ptrdiff_t i = 0; i < m; i++) v[i] = col[i * n];
        v[0] -= alpha;
        double vv = 0;
        for (ptrdiff_t i = 0; i < m; i++) vv += v[i] * v[i];
        if (vv == 0) continue;
        const double bt = 2 / vv;
        // B <- H B H on the trailing block B = a[k+1..., k+1...].
        update(a + (k + 1) * n + k + 1, n, m, v, p, w, bt);
        e[k] = alpha;
        beta[k] = bt;
        for (ptrdiff_t i = 0; i < m; i++) col[i * n] = v[i];
    }
    for (ptrdiff_t k = 0; k < n; k++) d[k] = a[k * n + k];
    // The last subdiagonal entries had no reflector to compute them.
    if (n >= 2) e[n - 2] = a[(n - 1) * n + n - 2];
}

#if defined(__x86_64__)
__attribute__((target("avx512f")))
static void center_rows_avx512(const float *x, ptrdiff_t rows, ptrdiff_t n, float *y) {
    for (ptrdiff_t r = 0; r < rows; r++) {
        const float *s = x + r * n;
        float *d = y + r * n;
        __m512d lo = _mm512_setzero_pd(), hi = _mm512_setzero_pd();
        for (ptrdiff_t i = 0; i < n; i += 16) {
            const __mmask16 in = lanes16(n - i);
            __m512 v = _mm512_maskz_loadu_ps(in, s + i);
            v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, v, _CMP_ORD_Q), v);
            lo = _mm512_add_pd(lo, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
            hi = _mm512_add_pd(hi, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
        }
        const __m512 mean = _mm512_set1_ps((float)(_mm512_reduce_add_pd(_mm512_add_pd(lo, hi)) / (double)n));
        for (ptrdiff_t i = 0; i < n; i += 16) {
            const __mmask16 in = lanes16(n - i);
            __m512 v = _mm512_maskz_loadu_ps(in, s + i);
            v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, v, _CMP_ORD_Q), v);
            _mm512_mask_storeu_ps(d + i, in, _mm512_sub_ps(v, mean));
        }
    }
}
#endif

void loupe_center_rows(const float *x, ptrdiff_t rows, ptrdiff_t n, float *y) {
    if (rows <= 0 || n <= 0) return;
#if defined(__x86_64__)
    if (loupe_vmath_level() >= 2) { center_rows_avx512(x, rows, n, y); return; }
#endif
    for (ptrdiff_t r = 0; r < rows; r++) {
        const float *s = x + r * n;
        double sum = 0;
        for (ptrdiff_t i = 0; i < n; i++) sum += isnan(s[i]) ? 0.0 : (double)s[i];
        const float mean = (float)(sum / (double)n);
        for (ptrdiff_t i = 0; i < n; i++) y[r * n + i] = (isnan(s[i]) ? 0.0f : s[i]) - mean;
    }
}

// The Gram matrix Xc' Xc of rows-by-n centred rows (n x n: Eigen-CAM's h*w x h*w when channels
// outnumber positions). Each output row block of G_ROWS keeps G_ROWS x V vectors of 16 columns in
// registers through all the rows of Xc, one rank-1 update per row: V loads and G_ROWS broadcasts
// feed G_ROWS*V FMAs. Only the lower triangle is accumulated (G is symmetric), then mirrored, so
// the two triangles are equal exactly and half the flops are skipped. Large inputs split their
// rows (channels) across the pool, each part centred and multiplied on its own core and the
// partial Grams summed: Eigen-CAM runs this right after a forward pass, with the pool awake.
#define G_ROWS 6

static void gram_store(float *g, ptrdiff_t n, ptrdiff_t p, ptrdiff_t q0, ptrdiff_t qn, const float *acc) {
    for (ptrdiff_t j = 0; j < qn && q0 + j <= p; j++) g[p * n + q0 + j] = acc[j];
}

#if defined(__x86_64__)
__attribute__((target("avx512f"), always_inline))
static inline void gram_block_avx512(const float *xc, ptrdiff_t rows, ptrdiff_t n, ptrdiff_t p0, ptrdiff_t pr,
                                     ptrdiff_t q0, ptrdiff_t qn, const int V, float *g) {
    __m512 acc[G_ROWS][4];
    __mmask16 k[4];
    for (int v = 0; v < 4; v++) {
        const ptrdiff_t left = qn - 16 * v;
        k[v] = lanes16(left);
        for (int i = 0; i < G_ROWS; i++) acc[i][v] = _mm512_setzero_ps();
    }
    // Rows past the block's last are computed from its last row and never stored.
    ptrdiff_t at[G_ROWS];
    for (int i = 0; i < G_ROWS; i++) at[i] = p0 + (i < pr ? i : pr - 1);
    for (ptrdiff_t r = 0; r < rows; r++) {
        const float *row = xc + r * n;
        __m512 c[4];
        for (int v = 0; v < V; v++) c[v] = _mm512_maskz_loadu_ps(k[v], row + q0 + 16 * v);
        for (int i = 0; i < G_ROWS; i++) {
            const __m512 b = _mm512_set1_ps(row[at[i]]);
            for (int v = 0; v < V; v++) acc[i][v] = _mm512_fmadd_ps(b, c[v], acc[i][v]);
        }
    }
    float tmp[64];
    for (int i = 0; i < pr; i++) {
        for (int v = 0; v < V; v++) _mm512_storeu_ps(tmp + 16 * v, acc[i][v]);
        gram_store(g, n, p0 + i, q0, qn, tmp);
    }
}

__attribute__((target("avx512f")))
static void gram_lower_avx512(const float *xc, ptrdiff_t rows, ptrdiff_t n, float *g) {
    for (ptrdiff_t p0 = 0; p0 < n; p0 += G_ROWS) {
        const ptrdiff_t pr = n - p0 < G_ROWS ? n - p0 : G_ROWS;
        const ptrdiff_t qend = p0 + pr;   // the block's rows reach column qend - 1
        for (ptrdiff_t q0 = 0; q0 < qend; q0 += 64) {
            const ptrdiff_t qn = qend - q0 < 64 ? qend - q0 : 64;
            // The vector count as a constant, so each variant keeps its accumulators in registers.
            switch ((qn + 15) / 16) {
            case 1: gram_block_avx512(xc, rows, n, p0, pr, q0, qn, 1, g); break;
            case 2: gram_block_avx512(xc, rows, n, p0, pr, q0, qn, 2, g); break;
            case 3: gram_block_avx512(xc, rows, n, p0, pr, q0, qn, 3, g); break;
            default: gram_block_avx512(xc, rows, n, p0, pr, q0, qn, 4, g); break;
            }
        }
    }
}
#endif

/// g (n x n floats, lower triangle) = Xc' Xc of rows already centred.
static void gram_lower(const float *xc, ptrdiff_t rows, ptrdiff_t n, float *g) {
#if defined(__x86_64__)
    if (loupe_vmath_level() >= 2) { gram_lower_avx512(xc, rows, n, g); return; }
#endif
    float acc[64];
    for (ptrdiff_t p = 0; p < n; p++) {
        for (ptrdiff_t q0 = 0; q0 <= p; q0 += 64) {
            const ptrdiff_t qn = p + 1 - q0 < 64 ? p + 1 - q0 : 64;
            for (ptrdiff_t j = 0; j < qn; j++) acc[j] = 0;
            for (ptrdiff_t r = 0; r < rows; r++) {
                const float *row = xc + r * n;
                const float b = row[p];
                for (ptrdiff_t j = 0; j < qn; j++) acc[j] += b * row[q0 + j];
            }
            gram_store(g, n, p, q0, qn, acc);
        }
    }
}

typedef struct {
    const float *x;
    float *centred, *partial;
    ptrdiff_t rows, n, parts;
} gram_job;

static void gram_task(void *ctx, ptrdiff_t t) {
    const gram_job *j = ctx;
    const ptrdiff_t lo = j->rows * t / j->parts, hi = j->rows * (t + 1) / j->parts;
    loupe_center_rows(j->x + lo * j->n, hi - lo, j->n, j->centred + lo * j->n);
    gram_lower(j->centred + lo * j->n, hi - lo, j->n, j->partial + t * j->n * j->n);
}

static ptrdiff_t gram_parts(ptrdiff_t rows, ptrdiff_t n) {
    if (rows * n < 8192) return 1;
    const ptrdiff_t t = loupe_threads(), most = rows / 64 > 1 ? rows / 64 : 1;
    return t < most ? t : most;
}

ptrdiff_t loupe_centered_gram_scratch(ptrdiff_t rows, ptrdiff_t n) {
    if (rows <= 0 || n <= 0) return 1;
    return rows * n + gram_parts(rows, n) * n * n;
}

void loupe_centered_gram(const float *x, ptrdiff_t rows, ptrdiff_t n, float *scratch, double *g) {
    if (n <= 0) return;
    if (rows <= 0) { for (ptrdiff_t i = 0; i < n * n; i++) g[i] = 0; return; }
    gram_job j = { x, scratch, scratch + rows * n, rows, n, gram_parts(rows, n) };
    if (j.parts == 1) gram_task(&j, 0);
    else loupe_parallel_for(j.parts, gram_task, &j);
    // Partial Grams summed row by row (contiguous, vectorised), then the upper triangle mirrored.
    for (ptrdiff_t p = 0; p < n; p++) {
        const float *a = j.partial + p * n;
        double *gp = g + p * n;
        for (ptrdiff_t q = 0; q <= p; q++) gp[q] = (double)a[q];
        for (ptrdiff_t t = 1; t < j.parts; t++) {
            const float *b = a + t * n * n;
            for (ptrdiff_t q = 0; q <= p; q++) gp[q] = (double)((float)gp[q] + b[q]);
        }
    }
    for (ptrdiff_t p = 0; p < n; p++)
        for (ptrdiff_t q = 0; q < p; q++) g[q * n + p] = g[p * n + q];
}
