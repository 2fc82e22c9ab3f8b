// Eigen-CAM's principal axis: centring the activation rows, and the Householder reduction of
// their small Gram matrix to tridiagonal form, the O(n^3) part of the top eigenpair
// (SymmetricEigen.swift does the O(n^2) rest).
//
// Tridiagonalisation: Golub & Van Loan, Matrix Computations 4th ed., Algorithm 8.3.1, reading and
// updating only the lower triangle (half the flops of the full update); the inner loops are
// vectorised at AVX-512 width here, where the Swift code is built for baseline x86-64 (SSE2).
// Both kernels follow the vector-math level (Kernels.forceVectorMathLevel), so tests reach the
// portable path too.
#include "CLoupeKernels.h"
#include "CLoupeVMath.h"
#include <math.h>
#if defined(__x86_64__)
#include <immintrin.h>
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
/// The same with 8-double vectors and a masked last vector per row: the triangle's rows are
/// short (at most Eigen-CAM's 48), so unmasked remainder loops would cost as much as the body.
__attribute__((target("avx512f")))
static void sym_update_avx512(double *b0, ptrdiff_t n, ptrdiff_t m, const double *v, double *p, double *w, double bt) {
    for (ptrdiff_t i = 0; i < m; i++) p[i] = 0;
    for (ptrdiff_t i = 0; i < m; i++) {
        const double *row = b0 + i * n;
        const __m512d vi = _mm512_set1_pd(v[i]);
        __m512d dot = _mm512_setzero_pd();
        for (ptrdiff_t j = 0; j < i; j += 8) {
            const __mmask8 k = i - j >= 8 ? (__mmask8)0xFF : (__mmask8)((1u << (i - j)) - 1);
            // Lanes past the triangle add 0 and store back what they read: an unmasked
            // store, which later loads of p can forward from (a masked one stalls them).
            const __m512d r = _mm512_maskz_loadu_pd(k, row + j);
            _mm512_storeu_pd(p + j, _mm512_fmadd_pd(vi, r, _mm512_loadu_pd(p + j)));
            dot = _mm512_fmadd_pd(r, _mm512_maskz_loadu_pd(k, v + j), dot);
        }
        // Kept apart from p: a scalar store into p would stall the next row's vector loads.
        w[i] = _mm512_reduce_add_pd(dot) + row[i] * v[i];
    }
    for (ptrdiff_t i = 0; i < m; i++) p[i] += w[i];
    finish_w(m, v, p, w, bt);
    for (ptrdiff_t i = 0; i < m; i++) {
        double *row = b0 + i * n;
        const __m512d vi = _mm512_set1_pd(v[i]), wi = _mm512_set1_pd(w[i]);
        for (ptrdiff_t j = 0; j <= i; j += 8) {
            const __mmask8 k = i + 1 - j >= 8 ? (__mmask8)0xFF : (__mmask8)((1u << (i + 1 - j)) - 1);
            const __m512d t = _mm512_fmadd_pd(wi, _mm512_maskz_loadu_pd(k, v + j), _mm512_mul_pd(vi, _mm512_maskz_loadu_pd(k, w + j)));
            _mm512_mask_storeu_pd(row + j, k, _mm512_sub_pd(_mm512_maskz_loadu_pd(k, row + j), t));
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
            const __mmask16 in = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
            __m512 v = _mm512_maskz_loadu_ps(in, s + i);
            v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, v, _CMP_ORD_Q), v);
            lo = _mm512_add_pd(lo, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
            hi = _mm512_add_pd(hi, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
        }
        const __m512 mean = _mm512_set1_ps((float)(_mm512_reduce_add_pd(_mm512_add_pd(lo, hi)) / (double)n));
        for (ptrdiff_t i = 0; i < n; i += 16) {
            const __mmask16 in = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
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
