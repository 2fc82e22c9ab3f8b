// The passes over whole tensors that a Winograd sign guard needs (WinogradSignGuard.swift): the
// maximum |x| of every tile's input patch, the search for outputs within their tile's error
// bound of zero, and the exact (float64) value of the few outputs found. The guard runs only
// beside Winograd, which runs only on the AVX-512 path; the scalar loops keep other CPUs correct.
#include "CLoupeKernels.h"
#include <math.h>
#include <stdlib.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

// Inputs reach the guard only when finite (Winograd takes no NaN), so a plain compare-select max
// (one vmaxps) is exact here; fmaxf's NaN rule would keep the loops scalar.
static inline float max_f(float a, float b) { return a > b ? a : b; }

void loupe_sign_guard_patch_max(const float *x, ptrdiff_t h, ptrdiff_t w, ptrdiff_t padTop, ptrdiff_t padLeft,
                                ptrdiff_t tilesH, ptrdiff_t tilesW, float *colMax, float *out) {
    for (ptrdiff_t ty = 0; ty < tilesH; ty++) {
        ptrdiff_t r0 = 4 * ty - padTop, r1 = r0 + 6;
        if (r0 < 0) r0 = 0;
        if (r1 > h) r1 = h;
        for (ptrdiff_t i = 0; i < w; i++) colMax[i] = 0.0f;
        for (ptrdiff_t r = r0; r < r1; r++) {
            const float *row = x + r * w;
            for (ptrdiff_t i = 0; i < w; i++) colMax[i] = max_f(colMax[i], fabsf(row[i]));
        }
        for (ptrdiff_t tx = 0; tx < tilesW; tx++) {
            ptrdiff_t c0 = 4 * tx - padLeft, c1 = c0 + 6;
            if (c0 < 0) c0 = 0;
            if (c1 > w) c1 = w;
            float v = 0.0f;
            for (ptrdiff_t i = c0; i < c1; i++) v = max_f(v, colMax[i]);
            out[ty * tilesW + tx] = v;
        }
    }
}

static ptrdiff_t scan_scalar(const float *r, ptrdiff_t oy, ptrdiff_t x0, ptrdiff_t x1, ptrdiff_t ow, const float *t,
                             ptrdiff_t *found, ptrdiff_t count, ptrdiff_t capacity) {
    for (ptrdiff_t i = x0; i < x1; i++) {
        if (fabsf(r[i]) < t[i / 4]) {
            if (count < capacity) found[count] = oy * ow + i;
            count++;
        }
    }
    return count;
}

#if defined(__x86_64__)
static __attribute__((target("avx512f"))) ptrdiff_t scan_avx512(const float *v, ptrdiff_t oh, ptrdiff_t ow, const float *tol,
                                                                 ptrdiff_t tilesW, ptrdiff_t *found, ptrdiff_t capacity) {
    // Lane i of a 16-output block takes the bound of tile i/4 of the block's four.
    const __m512i spread = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    ptrdiff_t count = 0;
    for (ptrdiff_t oy = 0; oy < oh; oy++) {
        const float *r = v + oy * ow, *t = tol + (oy / 4) * tilesW;
        for (ptrdiff_t x0 = 0; x0 < ow; x0 += 16) {
            const ptrdiff_t left = ow - x0, tiles = tilesW - x0 / 4;
            const __mmask16 m = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
            const __mmask16 tm = tiles >= 4 ? (__mmask16)0xF : (__mmask16)((1u << tiles) - 1u);
            const __m512 b = _mm512_permutexvar_ps(spread, _mm512_maskz_loadu_ps(tm, t + x0 / 4));
            const __m512 a = _mm512_abs_ps(_mm512_maskz_loadu_ps(m, r + x0));
            if (_mm512_mask_cmp_ps_mask(m, a, b, _CMP_LT_OQ))
                count = scan_scalar(r, oy, x0, x0 + (left >= 16 ? 16 : left), ow, t, found, count, capacity);
        }
    }
    return count;
}
#endif

ptrdiff_t loupe_sign_guard_scan(const float *v, ptrdiff_t oh, ptrdiff_t ow, const float *tol, ptrdiff_t tilesW,
                                ptrdiff_t *found, ptrdiff_t capacity) {
#if defined(__x86_64__)
    if (loupe_gemm_level() == 2) return scan_avx512(v, oh, ow, tol, tilesW, found, capacity);
#endif
    ptrdiff_t count = 0;
    for (ptrdiff_t oy = 0; oy < oh; oy++)
        count = scan_scalar(v + oy * ow, oy, 0, ow, ow, tol + (oy / 4) * tilesW, found, count, capacity);
    return count;
}

double loupe_sign_guard_exact(const float *x, const float *w, ptrdiff_t C, ptrdiff_t h, ptrdiff_t wd, ptrdiff_t padTop,
                              ptrdiff_t padLeft, ptrdiff_t oy, ptrdiff_t ox) {
    // Four partial sums: the additions of consecutive channels do not wait on each other.
    double acc[4] = {0, 0, 0, 0};
    const ptrdiff_t plane = h * wd;
    for (ptrdiff_t kh = 0; kh < 3; kh++) {
        const ptrdiff_t iy = oy - padTop + kh;
        if (iy < 0 || iy >= h) continue;
        for (ptrdiff_t kw = 0; kw < 3; kw++) {
            const ptrdiff_t ix = ox - padLeft + kw;
            if (ix < 0 || ix >= wd) continue;
            const float *xp = x + iy * wd + ix, *wp = w + kh * 3 + kw;
            for (ptrdiff_t c = 0; c < C; c++) acc[c & 3] += (double)wp[c * 9] * (double)xp[c * plane];
        }
    }
    return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}
