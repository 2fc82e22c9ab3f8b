// Depthwise convolution, max pooling and their adjoints over whole NCHW tensors, vectorised
// along output rows.
//
// Every plane is first copied into a zero-padded scratch plane, so the inner loops carry no
// bounds checks at all (the padding costs one cheap copy, against kH*kW multiply-adds per
// output). A horizontal stride s is handled by splitting each scratch row into s phases (the
// columns j with j % s == p stored contiguously), so that every tap of a strided window reads a
// contiguous run of its phase: one unit-stride correlation kernel then serves all strides and
// dilations, described by a list of taps (scratch offset, weight).
//
// The input adjoint is the same correlation over the zero-padded output gradient with the
// kernel flipped; for strides > 1 it is split by input phase (each phase sees only the taps
// that land on it, so no work is spent on the zeros a zero-inserted gradient would carry). The
// weight adjoint is one dot product per tap between the output gradient and the shifted
// scratch plane. The max-pool adjoint (end
// of file) reuses the scratch layout to find 16 window arg-maxima at once, and max pooling
// itself the same way.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "CLoupeWindow.h"
#include "CLoupeKernels.h" // LOUPE_ACT_*, loupe_vunary_serial
#include "depthwise_cblock.h"
#include "activate.h"
#include "lane_mask.h"
#include "row_split.h"
#include "window_range.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define DW_X86 1
#endif

static int forced_level = -1, detected_level = -1;

void loupe_window_force_level(int level) { forced_level = level; }

int loupe_window_level(void) {
    if (detected_level < 0) detected_level = loupe_cpu_level();
    if (forced_level >= 0 && forced_level <= detected_level) return forced_level;
    return detected_level;
}

/// A correlation problem on a scratch plane: y[oh][ow] = init + sum_t wt[t] * S[oh*rowStep + off[t] + ow].
typedef struct {
    const float *S;
    const ptrdiff_t *off;
    const float *wt;
    int taps;
    ptrdiff_t rowStep, outH, outW;
    // Optional: the next plane to stream from DRAM into L2 while this one computes (large
    // planes at large batch would otherwise wait on memory between two compute phases).
    const float *prefetch;
    ptrdiff_t prefetchFloats;
} dw_corr;

/// One whole-tensor job, shared by the parallel tasks.
typedef struct {
    const float *x, *w, *bias, *gy;
    float *y;
    ptrdiff_t n, c, mult, chunk, planes;
    loupe_window2d g;
    int level;
    // Average pooling: one weight set (all ones) for every plane, and per-axis tap counts whose
    // product divides each output (NULL for convolution).
    int sharedWeights;
    const ptrdiff_t *cntH, *cntW;
    int act; // depthwise forward: LOUPE_ACT_* applied to each plane once computed
} dw_job;

/// Divisor of average-pooling output (oh, ow): the product of the per-axis tap counts, 1 when empty.
static inline float avg_div(const dw_job *j, ptrdiff_t oh, ptrdiff_t ow) {
    ptrdiff_t n = j->cntH[oh] * j->cntW[ow];
    return n > 0 ? (float)n : 1.0f;
}

static inline const float *job_weights(const dw_job *j, ptrdiff_t oc) {
    return j->w + (j->sharedWeights ? 0 : oc * j->g.kH * j->g.kW);
}

// MARK: - Portable kernels

static void corr_portable(const dw_corr *c, float init, int accumulate, float *y) {
    for (ptrdiff_t oh = 0; oh < c->outH; oh++) {
        float *yr = y + oh * c->outW;
        if (!accumulate) for (ptrdiff_t ow = 0; ow < c->outW; ow++) yr[ow] = init;
        const float *sr = c->S + oh * c->rowStep;
        for (int t = 0; t < c->taps; t++) {
            const float wv = c->wt[t];
            const float *s = sr + c->off[t];
            for (ptrdiff_t ow = 0; ow < c->outW; ow++) yr[ow] += wv * s[ow];
        }
    }
}

static void wgrad_portable(const dw_corr *c, const float *gy, float *gw) {
    for (int t = 0; t < c->taps; t++) {
        float acc = 0.0f;
        for (ptrdiff_t oh = 0; oh < c->outH; oh++) {
            const float *s = c->S + oh * c->rowStep + c->off[t], *g = gy + oh * c->outW;
            for (ptrdiff_t ow = 0; ow < c->outW; ow++) acc += g[ow] * s[ow];
        }
        gw[t] += acc;
    }
}

/// dst[k] = src[k * stride] for k < count.
static void copy_strided_portable(float *dst, const float *src, ptrdiff_t count, ptrdiff_t stride) {
    for (ptrdiff_t k = 0; k < count; k++) dst[k] = src[k * stride];
}

#ifdef DW_X86
// MARK: - AVX-512F kernels

#define DW_ROWS 8

/// R output rows at once: R independent accumulator chains hide the FMA latency, and the tap
/// weight is broadcast once for all of them.
/// Masked loads and stores only where needed: on this AMD core a masked load that misses the
/// cache is much slower than a plain one (in-process A/B on batch-16 planes: ~2x).
static inline __attribute__((target("avx512f"), always_inline)) __m512 load16(__mmask16 m, int full, const float *p) {
    return full ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(m, p);
}
static inline __attribute__((target("avx512f"), always_inline)) void store16(__mmask16 m, int full, float *p, __m512 v) {
    if (full) _mm512_storeu_ps(p, v); else _mm512_mask_storeu_ps(p, m, v);
}

static inline __attribute__((target("avx512f,fma"), always_inline))
void corr_chunk_avx512(const dw_corr *c, const float *S, float *yb, ptrdiff_t ow, float init, int accumulate,
                       const int R, const int full) {
    const __mmask16 m = lanes16(c->outW - ow);
    __m512 acc[DW_ROWS];
    for (int r = 0; r < R; r++)
        acc[r] = accumulate ? load16(m, full, yb + r * c->outW + ow) : _mm512_set1_ps(init);
    for (int t = 0; t < c->taps; t++) {
        const __m512 wv = _mm512_set1_ps(c->wt[t]);
        const float *p = S + c->off[t] + ow;
        for (int r = 0; r < R; r++) acc[r] = _mm512_fmadd_ps(wv, load16(m, full, p + r * c->rowStep), acc[r]);
    }
    for (int r = 0; r < R; r++) store16(m, full, yb + r * c->outW + ow, acc[r]);
}

static inline __attribute__((target("avx512f,fma"), always_inline))
void corr_rows_avx512(const dw_corr *c, ptrdiff_t oh, float init, int accumulate, float *y, const int R) {
    const float *S = c->S + oh * c->rowStep;
    float *yb = y + oh * c->outW;
    ptrdiff_t ow = 0;
    for (; ow + 16 <= c->outW; ow += 16) corr_chunk_avx512(c, S, yb, ow, init, accumulate, R, 1);
    if (ow < c->outW) corr_chunk_avx512(c, S, yb, ow, init, accumulate, R, 0);
}

/// Rows of at most 8 outputs (7x7 planes): two rows share one vector, lanes 0-7 row r and
/// lanes 8-15 row r+1 (loaded through a merge-masked second load), P pairs at once.
static inline __attribute__((target("avx512f,fma"), always_inline))
void corr_pairs_avx512(const dw_corr *c, ptrdiff_t oh, float init, int accumulate, float *y, const int P) {
    const __mmask16 lo = (__mmask16)((1u << c->outW) - 1u), hi = (__mmask16)(lo << 8);
    const float *S = c->S + oh * c->rowStep;
    float *yb = y + oh * c->outW;
    __m512 acc[4];
    for (int q = 0; q < P; q++) {
        float *y0 = yb + 2 * q * c->outW, *y1 = y0 + c->outW - 8;
        acc[q] = accumulate ? _mm512_mask_loadu_ps(_mm512_maskz_loadu_ps(lo, y0), hi, y1) : _mm512_set1_ps(init);
    }
    for (int t = 0; t < c->taps; t++) {
        const __m512 wv = _mm512_set1_ps(c->wt[t]);
        const float *p = S + c->off[t];
        for (int q = 0; q < P; q++) {
            const float *r0 = p + 2 * q * c->rowStep;
            __m512 v = _mm512_mask_loadu_ps(_mm512_maskz_loadu_ps(lo, r0), hi, r0 + c->rowStep - 8);
            acc[q] = _mm512_fmadd_ps(wv, v, acc[q]);
        }
    }
    for (int q = 0; q < P; q++) {
        float *y0 = yb + 2 * q * c->outW;
        _mm512_mask_storeu_ps(y0, lo, acc[q]);
        _mm512_mask_storeu_ps(y0 + c->outW - 8, hi, acc[q]);
    }
}

static __attribute__((target("avx512f,fma"))) void corr_avx512(const dw_corr *c, float init, int accumulate, float *y) {
    ptrdiff_t oh = 0;
    if (c->outW <= 8 && !c->prefetch) {
        for (; oh + 8 <= c->outH; oh += 8) corr_pairs_avx512(c, oh, init, accumulate, y, 4);
        switch ((c->outH - oh) / 2) {
        case 3: corr_pairs_avx512(c, oh, init, accumulate, y, 3); oh += 6; break;
        case 2: corr_pairs_avx512(c, oh, init, accumulate, y, 2); oh += 4; break;
        case 1: corr_pairs_avx512(c, oh, init, accumulate, y, 1); oh += 2; break;
        default: break;
        }
        if (oh < c->outH) corr_rows_avx512(c, oh, init, accumulate, y, 1);
        return;
    }
    // Prefetch a share of the next plane per block of rows: 64-byte lines spread over the blocks.
    const ptrdiff_t blocks = c->outH / DW_ROWS;
    const ptrdiff_t perBlock = c->prefetch && blocks > 0 ? (c->prefetchFloats / 16 + blocks - 1) / blocks : 0;
    const char *pf = (const char *)c->prefetch, *pfEnd = pf + c->prefetchFloats * (ptrdiff_t)sizeof(float);
    for (; oh + DW_ROWS <= c->outH; oh += DW_ROWS) {
        for (ptrdiff_t i = 0; i < perBlock && pf < pfEnd; i++, pf += 64) _mm_prefetch(pf, _MM_HINT_T1);
        corr_rows_avx512(c, oh, init, accumulate, y, 8);
    }
    switch (c->outH - oh) {
    case 7: corr_rows_avx512(c, oh, init, accumulate, y, 7); break;
    case 6: corr_rows_avx512(c, oh, init, accumulate, y, 6); break;
    case 5: corr_rows_avx512(c, oh, init, accumulate, y, 5); break;
    case 4: corr_rows_avx512(c, oh, init, accumulate, y, 4); break;
    case 3: corr_rows_avx512(c, oh, init, accumulate, y, 3); break;
    case 2: corr_rows_avx512(c, oh, init, accumulate, y, 2); break;
    case 1: corr_rows_avx512(c, oh, init, accumulate, y, 1); break;
    default: break;
    }
}

/// Padded-copy bytes above which a forward plane is copied and correlated in bands of rows.
#define DW_BAND_BYTES (16 * 1024)

/// Widest output rows the in-place correlation takes (wider planes keep the padded copy): the
/// bound of its per-chunk mask table, far above any depthwise layer measured.
#define INPLACE_MAX_W 512

/// Stride-1, undilated correlation read straight from the input plane x (inH x inW), with the
/// padding as masked-off lanes and skipped rows instead of a zero-padded copy:
/// y[oh][ow] = init + sum wt[kh*kW + kw] * x[oh - padTop + kh][ow - padLeft + kw] (0 outside).
/// R rows of 16 outputs share each weight broadcast, as on the padded copy. `checked` blocks
/// (top and bottom) skip the rows a window leaves; `masked` chunks (left and right) mask the
/// lanes whose columns lie outside the plane. Lanes outside a row are never touched (AVX-512
/// suppresses their faults), so an address may lie left of the row, even of the plane: it is
/// formed as an integer.
static inline __attribute__((target("avx512f,fma"), always_inline))
void corr_inplace_block_avx512(const float *x, const loupe_window2d *g, const float *wt, float init, float *y,
                               ptrdiff_t oh, ptrdiff_t ow, const __mmask16 *mk, const int R, const int checked,
                               const int masked) {
    __m512 acc[DW_ROWS];
    for (int r = 0; r < R; r++) acc[r] = _mm512_set1_ps(init);
    const ptrdiff_t kH = g->kH, kW = g->kW, inW = g->inW, inH = g->inH;
    const uintptr_t base = (uintptr_t)x + (uintptr_t)((ow - g->padLeft) * (ptrdiff_t)sizeof(float));
    for (ptrdiff_t kh = 0; kh < kH; kh++) {
        const ptrdiff_t ih0 = oh - g->padTop + kh;
        for (ptrdiff_t kw = 0; kw < kW; kw++) {
            const __m512 wv = _mm512_set1_ps(wt[kh * kW + kw]);
            const __mmask16 m = masked ? mk[kw] : (__mmask16)0xFFFF;
            for (int r = 0; r < R; r++) {
                const ptrdiff_t ih = ih0 + r;
                if (checked && (ih < 0 || ih >= inH)) continue;
                const float *p = (const float *)(base + (uintptr_t)((ih * inW + kw) * (ptrdiff_t)sizeof(float)));
                const __m512 v = masked ? _mm512_maskz_loadu_ps(m, p) : _mm512_loadu_ps(p);
                acc[r] = _mm512_fmadd_ps(wv, v, acc[r]);
            }
        }
    }
    const ptrdiff_t lanes = g->outW - ow < 16 ? g->outW - ow : 16;
    const __mmask16 out = (__mmask16)(lanes == 16 ? 0xFFFF : (1u << lanes) - 1u);
    for (int r = 0; r < R; r++) _mm512_mask_storeu_ps(y + (oh + r) * g->outW + ow, out, acc[r]);
}

/// One row block at every column chunk, the interior chunks on plain loads.
static inline __attribute__((target("avx512f,fma"), always_inline))
void corr_inplace_rows_avx512(const float *x, const loupe_window2d *g, const float *wt, float init, float *y,
                              ptrdiff_t oh, const __mmask16 *masks, const int *interior, const int R, const int checked) {
    for (ptrdiff_t ow = 0, q = 0; ow < g->outW; ow += 16, q++) {
        if (interior[q]) corr_inplace_block_avx512(x, g, wt, init, y, oh, ow, NULL, R, checked, 0);
        else corr_inplace_block_avx512(x, g, wt, init, y, oh, ow, masks + q * 16, R, checked, 1);
    }
}

static __attribute__((target("avx512f,fma"))) void corr_inplace_avx512(const float *x, const loupe_window2d *g,
                                                                        const float *wt, float init, float *y,
                                                                        const float *next, ptrdiff_t nextFloats) {
    // Per 16-output chunk q and tap column kw: the lanes whose input column lies in [0, inW),
    // a contiguous run [lo, hi); the chunk is interior when every tap column is whole.
    enum { MAXQ = INPLACE_MAX_W / 16 };
    __mmask16 masks[MAXQ * 16];
    int interior[MAXQ];
    const ptrdiff_t chunks = (g->outW + 15) / 16;
    for (ptrdiff_t q = 0; q < chunks; q++) {
        const ptrdiff_t ow = 16 * q, lanes = g->outW - ow < 16 ? g->outW - ow : 16;
        interior[q] = lanes == 16;
        for (ptrdiff_t kw = 0; kw < g->kW; kw++) {
            const ptrdiff_t c0 = ow - g->padLeft + kw;
            ptrdiff_t lo = c0 < 0 ? -c0 : 0, hi = g->inW - c0 < lanes ? g->inW - c0 : lanes;
            if (lo > 16) lo = 16;
            if (hi < lo) hi = lo;
            masks[q * 16 + kw] = (__mmask16)(((1u << (hi - lo)) - 1u) << lo);
            if (!(lo == 0 && hi == 16)) interior[q] = 0;
        }
    }
    // Rows whose windows all lie inside the plane: [top, bottom).
    ptrdiff_t top = g->padTop, bottom = g->inH + g->padTop - g->kH + 1;
    if (top > g->outH) top = g->outH;
    if (bottom < top) bottom = top;
    if (bottom > g->outH) bottom = g->outH;
    // Blocks of 8 rows (8 independent accumulator chains), checked only where a block reaches a
    // row whose windows leave the plane. The task's next input plane streams into L2 a share per
    // block (as on the padded copy's path): large planes at large batch would otherwise wait on
    // memory between planes.
    const ptrdiff_t blocks = g->outH / DW_ROWS;
    const ptrdiff_t perBlock = next && blocks > 0 ? (nextFloats / 16 + blocks - 1) / blocks : 0;
    const char *pf = (const char *)next, *pfEnd = pf + nextFloats * (ptrdiff_t)sizeof(float);
    ptrdiff_t oh = 0;
    for (; oh + DW_ROWS <= g->outH; oh += DW_ROWS) {
        for (ptrdiff_t i = 0; i < perBlock && pf < pfEnd; i++, pf += 64) _mm_prefetch(pf, _MM_HINT_T1);
        if (oh < top || oh + DW_ROWS > bottom) corr_inplace_rows_avx512(x, g, wt, init, y, oh, masks, interior, DW_ROWS, 1);
        else corr_inplace_rows_avx512(x, g, wt, init, y, oh, masks, interior, DW_ROWS, 0);
    }
    switch (g->outH - oh) {
    case 7: corr_inplace_rows_avx512(x, g, wt, init, y, oh, masks, interior, 7, 1); break;
    case 6: corr_inplace_rows_avx512(x, g, wt, init, y, oh, masks, interior, 6, 1); break;
    case 5: corr_inplace_rows_avx512(x, g, wt, init, y, oh, masks, interior, 5, 1); break;
    case 4: corr_inplace_rows_avx512(x, g, wt, init, y, oh, masks, interior, 4, 1); break;
    case 3: corr_inplace_rows_avx512(x, g, wt, init, y, oh, masks, interior, 3, 1); break;
    case 2: corr_inplace_rows_avx512(x, g, wt, init, y, oh, masks, interior, 2, 1); break;
    case 1: corr_inplace_rows_avx512(x, g, wt, init, y, oh, masks, interior, 1, 1); break;
    default: break;
    }
}

/// B taps at once: the output-gradient vector is loaded once and feeds B accumulators.
static inline __attribute__((target("avx512f,fma"), always_inline))
void wgrad_taps_avx512(const dw_corr *c, int t0, const float *gy, float *gw, const int B) {
    __m512 acc[8];
    for (int b = 0; b < B; b++) acc[b] = _mm512_setzero_ps();
    ptrdiff_t oh = 0;
    if (c->outW <= 8) {  // two rows per vector, as in corr_pairs_avx512
        const __mmask16 lo = (__mmask16)((1u << c->outW) - 1u), hi = (__mmask16)(lo << 8);
        for (; oh + 2 <= c->outH; oh += 2) {
            const float *s = c->S + oh * c->rowStep, *g = gy + oh * c->outW;
            const __m512 gv = _mm512_mask_loadu_ps(_mm512_maskz_loadu_ps(lo, g), hi, g + c->outW - 8);
            for (int b = 0; b < B; b++) {
                const float *r0 = s + c->off[t0 + b];
                __m512 v = _mm512_mask_loadu_ps(_mm512_maskz_loadu_ps(lo, r0), hi, r0 + c->rowStep - 8);
                acc[b] = _mm512_fmadd_ps(gv, v, acc[b]);
            }
        }
    }
    for (; oh < c->outH; oh++) {
        const float *s = c->S + oh * c->rowStep, *g = gy + oh * c->outW;
        ptrdiff_t ow = 0;
        for (; ow + 16 <= c->outW; ow += 16) {
            const __m512 gv = _mm512_loadu_ps(g + ow);
            for (int b = 0; b < B; b++) acc[b] = _mm512_fmadd_ps(gv, _mm512_loadu_ps(s + c->off[t0 + b] + ow), acc[b]);
        }
        if (ow < c->outW) {
            const __mmask16 m = lanes16(c->outW - ow);
            const __m512 gv = _mm512_maskz_loadu_ps(m, g + ow);
            for (int b = 0; b < B; b++)
                acc[b] = _mm512_fmadd_ps(gv, _mm512_maskz_loadu_ps(m, s + c->off[t0 + b] + ow), acc[b]);
        }
    }
    for (int b = 0; b < B; b++) gw[t0 + b] += _mm512_reduce_add_ps(acc[b]);
}

static __attribute__((target("avx512f,fma"))) void wgrad_avx512(const dw_corr *c, const float *gy, float *gw) {
    int t = 0;
    for (; t + 8 <= c->taps; t += 8) wgrad_taps_avx512(c, t, gy, gw, 8);
    for (; t + 4 <= c->taps; t += 4) wgrad_taps_avx512(c, t, gy, gw, 4);
    for (; t < c->taps; t++) wgrad_taps_avx512(c, t, gy, gw, 1);
}

/// Strided copy dst[k] = src[k*stride], reading nothing at or past `limit`. Loads are plain
/// wherever a full vector stays below `limit` (a masked load that misses cache is slow on this
/// core, and short rows would otherwise be all masked); only the stores are masked. Stride 2:
/// two loads and one two-source permute per 16 results.
static __attribute__((target("avx512f"))) void copy_strided_avx512(float *dst, const float *src, ptrdiff_t count,
                                                                     ptrdiff_t stride, const float *limit) {
    ptrdiff_t k = 0;
    if (stride == 1) {
        for (; k < count; k += 16) {
            const ptrdiff_t n = count - k < 16 ? count - k : 16;
            const __mmask16 m = lanes16(n);
            __m512 v = src + k + 16 <= limit ? _mm512_loadu_ps(src + k) : _mm512_maskz_loadu_ps(m, src + k);
            if (n == 16) _mm512_storeu_ps(dst + k, v); else _mm512_mask_storeu_ps(dst + k, m, v);
        }
        return;
    }
    if (stride == 2) {
        const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        for (; k < count; k += 16) {
            const ptrdiff_t n = count - k < 16 ? count - k : 16, used = 2 * n - 1;  // src elements read
            const float *p = src + 2 * k;
            __m512 a = p + 16 <= limit ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(lanes16(used < 16 ? used : 16), p);
            __m512 b = _mm512_setzero_ps();
            if (used > 16) b = p + 32 <= limit ? _mm512_loadu_ps(p + 16) : _mm512_maskz_loadu_ps(lanes16(used - 16), p + 16);
            __m512 v = _mm512_permutex2var_ps(a, even, b);
            if (n == 16) _mm512_storeu_ps(dst + k, v); else _mm512_mask_storeu_ps(dst + k, lanes16(n), v);
        }
        return;
    }
    for (; k < count; k++) dst[k] = src[k * stride];
}

/// dst[k] += src[k] for k < count.
static __attribute__((target("avx512f"))) void add_row_avx512(float *dst, const float *src, ptrdiff_t count) {
    ptrdiff_t k = 0;
    for (; k + 16 <= count; k += 16) _mm512_storeu_ps(dst + k, _mm512_add_ps(_mm512_loadu_ps(dst + k), _mm512_loadu_ps(src + k)));
    if (k < count) {
        const __mmask16 m = lanes16(count - k);
        _mm512_mask_storeu_ps(dst + k, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, dst + k), _mm512_maskz_loadu_ps(m, src + k)));
    }
}

/// Interleaves two phase rows: out[2j] = a[j], out[2j+1] = b[j] for j < n.
static __attribute__((target("avx512f"))) void interleave2_avx512(float *out, const float *a, const float *b, ptrdiff_t n) {
    const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    for (ptrdiff_t j = 0; j < n; j += 16) {
        const ptrdiff_t left = n - j;
        const __mmask16 m = lanes16(left);
        __m512 va = _mm512_maskz_loadu_ps(m, a + j), vb = _mm512_maskz_loadu_ps(m, b + j);
        _mm512_mask_storeu_ps(out + 2 * j, lanes16(2 * left), _mm512_permutex2var_ps(va, lo, vb));
        if (left > 8) _mm512_mask_storeu_ps(out + 2 * j + 16, lanes16(2 * left - 16), _mm512_permutex2var_ps(va, hi, vb));
    }
}

// MARK: - AVX2+FMA kernels

static const int mask_table8[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

static inline __attribute__((target("avx2,fma"))) __m256i tail8(ptrdiff_t left) {
    return _mm256_loadu_si256((const __m256i *)(mask_table8 + 8 - (left >= 8 ? 8 : left)));
}

static inline __attribute__((target("avx2,fma"), always_inline))
void corr_rows_avx2(const dw_corr *c, ptrdiff_t oh, float init, int accumulate, float *y, const int R) {
    const float *S = c->S + oh * c->rowStep;
    float *yb = y + oh * c->outW;
    for (ptrdiff_t ow = 0; ow < c->outW; ow += 8) {
        const __m256i m = tail8(c->outW - ow);
        __m256 acc[DW_ROWS];
        for (int r = 0; r < R; r++)
            acc[r] = accumulate ? _mm256_maskload_ps(yb + r * c->outW + ow, m) : _mm256_set1_ps(init);
        for (int t = 0; t < c->taps; t++) {
            const __m256 wv = _mm256_set1_ps(c->wt[t]);
            const float *p = S + c->off[t] + ow;
            for (int r = 0; r < R; r++)
                acc[r] = _mm256_fmadd_ps(wv, _mm256_maskload_ps(p + r * c->rowStep, m), acc[r]);
        }
        for (int r = 0; r < R; r++) _mm256_maskstore_ps(yb + r * c->outW + ow, m, acc[r]);
    }
}

static __attribute__((target("avx2,fma"))) void corr_avx2(const dw_corr *c, float init, int accumulate, float *y) {
    ptrdiff_t oh = 0;
    for (; oh + 4 <= c->outH; oh += 4) corr_rows_avx2(c, oh, init, accumulate, y, 4);
    switch (c->outH - oh) {
    case 3: corr_rows_avx2(c, oh, init, accumulate, y, 3); break;
    case 2: corr_rows_avx2(c, oh, init, accumulate, y, 2); break;
    case 1: corr_rows_avx2(c, oh, init, accumulate, y, 1); break;
    default: break;
    }
}

static inline __attribute__((target("avx2,fma"))) float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

static inline __attribute__((target("avx2,fma"), always_inline))
void wgrad_taps_avx2(const dw_corr *c, int t0, const float *gy, float *gw, const int B) {
    __m256 acc[8];
    for (int b = 0; b < B; b++) acc[b] = _mm256_setzero_ps();
    for (ptrdiff_t oh = 0; oh < c->outH; oh++) {
        const float *s = c->S + oh * c->rowStep, *g = gy + oh * c->outW;
        for (ptrdiff_t ow = 0; ow < c->outW; ow += 8) {
            const __m256i m = tail8(c->outW - ow);
            const __m256 gv = _mm256_maskload_ps(g + ow, m);
            for (int b = 0; b < B; b++)
                acc[b] = _mm256_fmadd_ps(gv, _mm256_maskload_ps(s + c->off[t0 + b] + ow, m), acc[b]);
        }
    }
    for (int b = 0; b < B; b++) gw[t0 + b] += hsum256(acc[b]);
}

static __attribute__((target("avx2,fma"))) void wgrad_avx2(const dw_corr *c, const float *gy, float *gw) {
    int t = 0;
    for (; t + 8 <= c->taps; t += 8) wgrad_taps_avx2(c, t, gy, gw, 8);
    for (; t + 4 <= c->taps; t += 4) wgrad_taps_avx2(c, t, gy, gw, 4);
    for (; t < c->taps; t++) wgrad_taps_avx2(c, t, gy, gw, 1);
}
#endif

// MARK: - Dispatch

static void corr(const dw_corr *c, float init, int accumulate, float *y, int level) {
#ifdef DW_X86
    if (level >= 2) { corr_avx512(c, init, accumulate, y); return; }
    if (level == 1) { corr_avx2(c, init, accumulate, y); return; }
#endif
    (void)level;
    corr_portable(c, init, accumulate, y);
}

static void wgrad(const dw_corr *c, const float *gy, float *gw, int level) {
#ifdef DW_X86
    if (level >= 2) { wgrad_avx512(c, gy, gw); return; }
    if (level == 1) { wgrad_avx2(c, gy, gw); return; }
#endif
    (void)level;
    wgrad_portable(c, gy, gw);
}

/// dst[k] = src[k*stride] for k < count; `limit` bounds what may be read (see copy_strided_avx512).
static void copy_strided(float *dst, const float *src, ptrdiff_t count, ptrdiff_t stride, const float *limit, int level) {
    if (count <= 0) return;
#ifdef DW_X86
    if (level >= 2) { copy_strided_avx512(dst, src, count, stride, limit); return; }
#else
    (void)limit;
#endif
    if (stride == 1) { memcpy(dst, src, (size_t)count * sizeof(float)); return; }
    (void)level;
    copy_strided_portable(dst, src, count, stride);
}

// MARK: - Scratch planes

/// The phase-split padded copy of one input plane, read by the forward pass and the weight adjoint.
typedef struct {
    ptrdiff_t rows, phaseW, rs;  // rows, columns per phase, row stride (= strideW * phaseW)
} dw_layout;

static dw_layout input_layout(const loupe_window2d *g) {
    dw_layout L;
    L.rows = window_extent(g->outH, g->strideH, g->kH, g->dilH);
    ptrdiff_t width = window_extent(g->outW, g->strideW, g->kW, g->dilW);
    L.phaseW = (width + g->strideW - 1) / g->strideW;
    L.rs = L.phaseW * g->strideW;
    return L;
}

/// Taps of the forward correlation on the input layout.
static void input_taps(const loupe_window2d *g, const dw_layout *L, ptrdiff_t *off) {
    for (ptrdiff_t kh = 0; kh < g->kH; kh++)
        for (ptrdiff_t kw = 0; kw < g->kW; kw++) {
            ptrdiff_t col = kw * g->dilW;
            off[kh * g->kW + kw] = kh * g->dilH * L->rs + (col % g->strideW) * L->phaseW + col / g->strideW;
        }
}

/// floor(a / b) for b > 0.
static inline ptrdiff_t floor_div(ptrdiff_t a, ptrdiff_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

/// Scratch row i - r0 holds padded row i (input row i - padTop) for i in [r0, r1); column j of
/// phase p holds input column j*strideW + p - padLeft; everything outside the input is 0. Only
/// the input's footprint is written: the caller zeroes the scratch once, and the padding columns
/// stay zero for every plane. Rows of a band that fall in the top or bottom padding are cleared
/// here (an earlier band may have left input there).
static void fill_input_rows(const float *x, const loupe_window2d *g, const dw_layout *L, float *S, int level,
                            ptrdiff_t r0, ptrdiff_t r1) {
    const ptrdiff_t sw = g->strideW;
    ptrdiff_t i0 = g->padTop > r0 ? g->padTop : r0, i1 = g->padTop + g->inH < r1 ? g->padTop + g->inH : r1;
    if (r0 > 0 || r1 < L->rows)
        for (ptrdiff_t i = r0; i < r1; i++)
            if (i < i0 || i >= i1) memset(S + (i - r0) * L->rs, 0, (size_t)L->rs * sizeof(float));
#ifdef DW_X86
    if (sw == 2 && level >= 2 && g->padLeft >= 0) {
        for (ptrdiff_t i = i0; i < i1; i++)
            split_row_s2_avx512(S + (i - r0) * L->rs, L->phaseW, x + (i - g->padTop) * g->inW, g->inW, g->padLeft);
        return;
    }
#endif
    for (ptrdiff_t p = 0; p < sw; p++) {
        // j*sw + p - padLeft in [0, inW)
        ptrdiff_t lo = floor_div(g->padLeft - p + sw - 1, sw), hi = floor_div(g->inW - 1 + g->padLeft - p, sw) + 1;
        if (lo < 0) lo = 0;
        if (hi > L->phaseW) hi = L->phaseW;
        if (hi <= lo) continue;
        const float *src = x + lo * sw + p - g->padLeft + (i0 - g->padTop) * g->inW;
        float *d = S + (i0 - r0) * L->rs + p * L->phaseW + lo;
        const float *limit = x + g->inH * g->inW;
        for (ptrdiff_t i = i0; i < i1; i++, src += g->inW, d += L->rs) copy_strided(d, src, hi - lo, sw, limit, level);
    }
}

static void fill_input(const float *x, const loupe_window2d *g, const dw_layout *L, float *S, int level) {
    fill_input_rows(x, g, L, S, level, 0, L->rows);
}

/// The zero-inserted output gradient read by the input adjoint: gy[oh][ow] sits at row
/// A + oh*strideH, column B + ow*strideW with A = (kH-1)*dilH, B = (kW-1)*dilW, so that
/// gx[ih][iw] = sum_taps w[kH-1-a][kW-1-b] * S[ih + padTop + a*dilH][iw + padLeft + b*dilW].
typedef struct { ptrdiff_t rows, cols; } dw_grad_layout;

static dw_grad_layout grad_layout(const loupe_window2d *g) {
    dw_grad_layout L = { g->inH + g->padTop + (g->kH - 1) * g->dilH, g->inW + g->padLeft + (g->kW - 1) * g->dilW };
    return L;
}

static void grad_taps(const loupe_window2d *g, const dw_grad_layout *L, const float *w, ptrdiff_t *off, float *wt) {
    for (ptrdiff_t a = 0; a < g->kH; a++)
        for (ptrdiff_t b = 0; b < g->kW; b++) {
            ptrdiff_t t = a * g->kW + b;
            off[t] = (g->padTop + a * g->dilH) * L->cols + g->padLeft + b * g->dilW;
            wt[t] = w[(g->kH - 1 - a) * g->kW + (g->kW - 1 - b)];
        }
}

/// Writes only the gradient positions: the caller zeroes the scratch once per task, and the
/// positions in between stay zero for every plane.
static void fill_grad(const float *gy, const loupe_window2d *g, const dw_grad_layout *L, float *S, int level,
                      const dw_job *avg) {
    const ptrdiff_t A = (g->kH - 1) * g->dilH, B = (g->kW - 1) * g->dilW;
    // Outputs whose window starts beyond the input (only possible with large end pads) reach no input.
    ptrdiff_t outW = g->outW;
    if (B + (outW - 1) * g->strideW >= L->cols) outW = (L->cols - 1 - B) / g->strideW + 1;
    for (ptrdiff_t oh = 0; oh < g->outH; oh++) {
        ptrdiff_t q = A + oh * g->strideH;
        if (q >= L->rows) break;
        float *d = S + q * L->cols + B;
        const float *s = gy + oh * g->outW;
        if (g->strideW == 1) copy_strided(d, s, outW, 1, gy + g->outH * g->outW, level);
        else for (ptrdiff_t ow = 0; ow < outW; ow++) d[ow * g->strideW] = s[ow];
        if (avg) for (ptrdiff_t ow = 0; ow < outW; ow++) d[ow * g->strideW] /= avg_div(avg, oh, ow);
    }
}

// MARK: - Parallel drivers

/// Per-thread scratch that grows and is never freed: a malloc/free per task costs page faults
/// whenever libc trims the heap between tasks. Bounded by the largest plane seen (a few hundred KB).
static _Thread_local void *scratch_buf;
static _Thread_local size_t scratch_cap;

/// Scratch of at least `floats` floats plus `taps` offsets and `taps` weights (64-byte aligned).
static float *thread_scratch(size_t floats, ptrdiff_t taps, ptrdiff_t **off, float **wt) {
    size_t fl = (floats + 15) & ~(size_t)15;
    size_t bytes = fl * sizeof(float) + (size_t)taps * (sizeof(ptrdiff_t) + sizeof(float)) + 64;
    if (bytes > scratch_cap) {
        free(scratch_buf);
        scratch_cap = 0;
        scratch_buf = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
        if (!scratch_buf) return NULL;
        scratch_cap = (bytes + 63) & ~(size_t)63;
    }
    float *S = scratch_buf;
    *off = (ptrdiff_t *)(S + fl);
    if (wt) *wt = (float *)(*off + taps);
    return S;
}

/// Planes per task: enough work per task to amortise the hand-off, yet several tasks per thread.
static ptrdiff_t planes_per_task(ptrdiff_t planes, ptrdiff_t workPerPlane) {
    ptrdiff_t threads = loupe_threads();
    ptrdiff_t chunk = (16384 + workPerPlane - 1) / (workPerPlane > 0 ? workPerPlane : 1);
    ptrdiff_t cap = planes / (4 * threads);
    if (chunk > cap) chunk = cap;
    // Two planes at least when there are plenty, so each task can prefetch its next plane.
    if (chunk < 2 && planes >= 16 * threads) chunk = 2;
    return chunk < 1 ? 1 : chunk;
}


/// The fused activation on output planes while they are in cache (ReLU keeps NaN, as torch.relu).
#ifdef DW_X86
static __attribute__((target("avx512f"))) void relu_avx512(float *y, ptrdiff_t n) {
    const __m512 zero = _mm512_setzero_ps();
    for (ptrdiff_t i = 0; i < n; i += 16) {
        const __mmask16 m = lanes16(n - i);
        // max(0, v) returns v when v is NaN: NaN kept.
        _mm512_mask_storeu_ps(y + i, m, _mm512_max_ps(zero, _mm512_maskz_loadu_ps(m, y + i)));
    }
}
#endif

void loupe_activate_in_place(int act, float *y, ptrdiff_t n) {
    if (act == LOUPE_ACT_RELU) {
#ifdef DW_X86
        if (loupe_window_level() >= 2) { relu_avx512(y, n); return; }
#endif
        for (ptrdiff_t i = 0; i < n; i++) y[i] = y[i] < 0.0f ? 0.0f : y[i];
    } else if (act >= LOUPE_ACT_UNARY) {
        loupe_vunary_serial(act - LOUPE_ACT_UNARY, y, y, n, 0, 0);
    }
}

static void forward_task(void *ctx, ptrdiff_t task) {
    const dw_job *j = ctx;
    const loupe_window2d *g = &j->g;
    const ptrdiff_t taps = g->kH * g->kW, m = j->c * j->mult, size = g->inH * g->inW;
    ptrdiff_t p1 = (task + 1) * j->chunk < j->planes ? (task + 1) * j->chunk : j->planes;
    // Stride 1, undilated, more than 16 outputs wide: the input is read in place, no copy.
    // Measured (loupe-bench conv, docs/kernels.md): batch 16, 28x28 and 56x56 planes 10-20 %
    // faster; 14x14 ones (one masked chunk per row, the padded copy in L1 anyway) ~8 % slower.
    // 112x112 and wider, 3x3: batch 1 +10-45 % (the copy was most of a memory-bound plane),
    // batch 16 within noise; 5x5 within 3 % either way.
    int inplace = 0;
#ifdef DW_X86
    inplace = j->level >= 2 && !j->cntH && g->strideH == 1 && g->strideW == 1 && g->dilH == 1 && g->dilW == 1 &&
              g->outW > 16 && g->outW <= INPLACE_MAX_W && g->kW <= 16;
#endif
    dw_layout L = input_layout(g);
    ptrdiff_t *off = NULL;
    float *S = NULL;
    dw_corr c = { NULL, NULL, NULL, (int)taps, g->strideH * L.rs, g->outH, g->outW, NULL, 0 };
    // Planes whose padded copy outgrows L1 (112x112: 50 KB) run in bands of output rows whose
    // copy stays within DW_BAND_BYTES; measured (loupe-bench conv, batch 1) at 112x112, 3x3:
    // see docs/kernels.md. One input plane feeding several outputs (mult > 1) keeps the whole copy.
    ptrdiff_t bandOut = g->outH;
    if (!inplace && j->mult == 1 && L.rows * L.rs * (ptrdiff_t)sizeof(float) > DW_BAND_BYTES) {
        const ptrdiff_t fit = (DW_BAND_BYTES / (L.rs * (ptrdiff_t)sizeof(float)) - (g->kH - 1) * g->dilH - 1) / g->strideH + 1;
        bandOut = fit >= 2 * DW_ROWS ? fit / DW_ROWS * DW_ROWS : fit >= DW_ROWS ? DW_ROWS : 1;
        if (bandOut > g->outH) bandOut = g->outH;
    }
    if (!inplace) {
        const ptrdiff_t scratchRows = bandOut < g->outH ? window_extent(bandOut, g->strideH, g->kH, g->dilH) : L.rows;
        S = thread_scratch((size_t)(scratchRows * L.rs), taps, &off, NULL);
        if (!S) return;
        memset(S, 0, (size_t)(scratchRows * L.rs) * sizeof(float));
        input_taps(g, &L, off);
        c.S = S;
        c.off = off;
    }
    ptrdiff_t filled = -1;
    for (ptrdiff_t t = task * j->chunk; t < p1; t++) {
        ptrdiff_t img = t / m, oc = t % m, xp = img * j->c + oc / j->mult;
        const float *wt = job_weights(j, oc), *xplane = j->x + xp * size;
        const float init = j->bias ? j->bias[oc] : 0.0f;
        // The next input plane of this task, when it is a different one and big enough to miss cache.
        ptrdiff_t nextXp = t + 1 < p1 ? ((t + 1) / m) * j->c + ((t + 1) % m) / j->mult : -1;
        const float *next = nextXp >= 0 && nextXp != xp && size >= 2048 ? j->x + nextXp * size : NULL;
        float *yp = j->y + t * g->outH * g->outW;
#ifdef DW_X86
        if (inplace) {
            corr_inplace_avx512(xplane, g, wt, init, yp, next, size);
        } else
#endif
        if (bandOut < g->outH) {
            // Band by band: each band's rows are copied while the previous band's are still in
            // L1, so the plane is read once and the copy costs L1 writes only.
            for (ptrdiff_t oh0 = 0; oh0 < g->outH; oh0 += bandOut) {
                const ptrdiff_t oh1 = oh0 + bandOut < g->outH ? oh0 + bandOut : g->outH;
                const ptrdiff_t r0 = oh0 * g->strideH, r1 = r0 + window_extent(oh1 - oh0, g->strideH, g->kH, g->dilH);
                fill_input_rows(xplane, g, &L, S, j->level, r0, r1);
                // No software prefetch of the next plane here: band by band the input streams in
                // order, and the prefetches measured as stalls (up to a quarter of the
                // correlation's time) for no gain.
                dw_corr band = c;
                band.wt = wt;
                band.outH = oh1 - oh0;
                band.prefetch = NULL;
                corr(&band, init, 0, yp + oh0 * g->outW, j->level);
            }
            filled = -1;
        } else
        {
            if (xp != filled) { fill_input(xplane, g, &L, S, j->level); filled = xp; }
            c.wt = wt;
            c.prefetch = next;
            c.prefetchFloats = size;
            corr(&c, init, 0, yp, j->level);
        }
        if (j->act != LOUPE_ACT_NONE) loupe_activate_in_place(j->act, yp, g->outH * g->outW);
        if (j->cntH)
            for (ptrdiff_t oh = 0; oh < g->outH; oh++)
                for (ptrdiff_t ow = 0; ow < g->outW; ow++) yp[oh * g->outW + ow] /= avg_div(j, oh, ow);
    }
}

void loupe_depthwise_forward(const float *x, const float *w, const float *bias, ptrdiff_t n, ptrdiff_t c,
                             ptrdiff_t mult, const loupe_window2d *g, int act, float *y) {
    dw_job j = { x, w, bias, NULL, y, n, c, mult, 1, n * c * mult, *g, loupe_window_level(), 0, NULL, NULL, act };
    if (j.planes <= 0 || g->outH <= 0 || g->outW <= 0) return;
    if (loupe_depthwise_cblock_suits(n, c, mult, g, j.level)) {
        loupe_depthwise_forward_cblock(x, w, bias, n, c, g, act, y);
        return;
    }
    j.chunk = planes_per_task(j.planes, g->outH * g->outW * g->kH * g->kW);
    loupe_parallel_for((j.planes + j.chunk - 1) / j.chunk, forward_task, &j);
}

static void backward_input_task(void *ctx, ptrdiff_t task) {
    const dw_job *j = ctx;
    const loupe_window2d *g = &j->g;
    const ptrdiff_t taps = g->kH * g->kW, m = j->c * j->mult;
    dw_grad_layout L = grad_layout(g);
    ptrdiff_t *off;
    float *wt;
    float *S = thread_scratch((size_t)(L.rows * L.cols), taps, &off, &wt);
    if (!S) return;
    memset(S, 0, (size_t)(L.rows * L.cols) * sizeof(float));
    dw_corr c = { S, off, wt, (int)taps, L.cols, g->inH, g->inW, NULL, 0 };
    ptrdiff_t p1 = (task + 1) * j->chunk < j->planes ? (task + 1) * j->chunk : j->planes;
    for (ptrdiff_t t = task * j->chunk; t < p1; t++) {  // t = img * c + channel
        ptrdiff_t img = t / j->c, ch = t % j->c;
        for (ptrdiff_t k = 0; k < j->mult; k++) {
            ptrdiff_t oc = ch * j->mult + k;
            fill_grad(j->gy + (img * m + oc) * g->outH * g->outW, g, &L, S, j->level, j->cntH ? j : NULL);
            grad_taps(g, &L, job_weights(j, oc), off, wt);
            corr(&c, 0.0f, 1, j->y + t * g->inH * g->inW, j->level);
        }
    }
}

/// Input adjoint for strides > 1, by output phase: the input positions with
/// (ih + padTop) % strideH == a and (iw + padLeft) % strideW == b receive only the taps with
/// kh*dilH % strideH == a and kw*dilW % strideW == b, and over that sub-grid (U, V) they form a
/// unit-stride correlation of the padded output gradient: no multiply-adds on the zeros that a
/// zero-inserted gradient would carry. The strideW phases of one row are then interleaved back.
typedef struct {
    ptrdiff_t un, vn;        // sub-grid rows/columns covering the input: ceil((in + pad) / stride)
    ptrdiff_t ph, pw;        // top/left zero padding of the gradient scratch: max tap shift
    ptrdiff_t gr, gc;        // gradient scratch rows/columns
} dw_phase_layout;

static dw_phase_layout phase_layout(const loupe_window2d *g) {
    dw_phase_layout L;
    L.un = (g->inH + g->padTop + g->strideH - 1) / g->strideH;
    L.vn = (g->inW + g->padLeft + g->strideW - 1) / g->strideW;
    L.ph = (g->kH - 1) * g->dilH / g->strideH;
    L.pw = (g->kW - 1) * g->dilW / g->strideW;
    L.gr = L.un + L.ph;
    L.gc = L.vn + L.pw;
    return L;
}

static void backward_input_phased_task(void *ctx, ptrdiff_t task) {
    const dw_job *j = ctx;
    const loupe_window2d *g = &j->g;
    const ptrdiff_t taps = g->kH * g->kW, m = j->c * j->mult, sh = g->strideH, sw = g->strideW;
    dw_phase_layout L = phase_layout(g);
    const size_t gsize = (size_t)(L.gr * L.gc), tsize = (size_t)(L.un * L.vn);
    // gradient scratch; one output buffer per phase (a, b); one interleaved row
    ptrdiff_t *off;
    float *wt;
    float *G = thread_scratch(gsize + tsize * (size_t)(sh * sw) + (size_t)(sw * L.vn) + 16, taps, &off, &wt);
    if (!G) return;
    float *tmp = G + gsize, *row = tmp + tsize * (size_t)(sh * sw);
    memset(G, 0, gsize * sizeof(float));
    // Gradient rows/columns beyond the scratch reach no input (only with end pads past the input).
    const ptrdiff_t rows = g->outH < L.un ? g->outH : L.un, cols = g->outW < L.vn ? g->outW : L.vn;
    ptrdiff_t p1 = (task + 1) * j->chunk < j->planes ? (task + 1) * j->chunk : j->planes;
    for (ptrdiff_t t = task * j->chunk; t < p1; t++) {  // t = img * c + channel
        ptrdiff_t img = t / j->c, ch = t % j->c;
        for (ptrdiff_t k = 0; k < j->mult; k++) {
            ptrdiff_t oc = ch * j->mult + k;
            const float *gy = j->gy + (img * m + oc) * g->outH * g->outW;
            for (ptrdiff_t oh = 0; oh < rows; oh++) {
                float *d = G + (L.ph + oh) * L.gc + L.pw;
                copy_strided(d, gy + oh * g->outW, cols, 1, gy + g->outH * g->outW, j->level);
                if (j->cntH) for (ptrdiff_t ow = 0; ow < cols; ow++) d[ow] /= avg_div(j, oh, ow);
            }
            for (ptrdiff_t a = 0; a < sh; a++)
                for (ptrdiff_t b = 0; b < sw; b++) {
                    int n = 0;
                    for (ptrdiff_t kh = 0; kh < g->kH; kh++) {
                        if ((kh * g->dilH) % sh != a) continue;
                        ptrdiff_t qh = (kh * g->dilH - a) / sh;
                        for (ptrdiff_t kw = 0; kw < g->kW; kw++) {
                            if ((kw * g->dilW) % sw != b) continue;
                            off[n] = (L.ph - qh) * L.gc + (L.pw - (kw * g->dilW - b) / sw);
                            wt[n++] = job_weights(j, oc)[kh * g->kW + kw];
                        }
                    }
                    dw_corr c = { G, off, wt, n, L.gc, L.un, L.vn, NULL, 0 };
                    corr(&c, 0.0f, k > 0, tmp + (size_t)(a * sw + b) * tsize, j->level);
                }
        }
        // Input row ih = a + sh*U - padTop: interleave its sw phases, then add columns iw + padLeft.
        float *gx = j->y + t * g->inH * g->inW;
        for (ptrdiff_t a = 0; a < sh; a++) {
            const float *ta = tmp + (size_t)(a * sw) * tsize;
            for (ptrdiff_t U = 0; U < L.un; U++) {
                ptrdiff_t ih = a + sh * U - g->padTop;
                if (ih < 0 || ih >= g->inH) continue;
                float *d = gx + ih * g->inW;
#ifdef DW_X86
                if (j->level >= 2 && sw <= 2) {
                    if (sw == 2) {
                        interleave2_avx512(row, ta + U * L.vn, ta + tsize + U * L.vn, L.vn);
                        add_row_avx512(d, row + g->padLeft, g->inW);
                    } else {
                        add_row_avx512(d, ta + U * L.vn + g->padLeft, g->inW);
                    }
                    continue;
                }
#endif
                (void)row;
                for (ptrdiff_t b = 0; b < sw; b++) {  // iw = b + sw*V - padLeft in [0, inW)
                    ptrdiff_t v0 = floor_div(g->padLeft - b + sw - 1, sw), v1 = floor_div(g->inW - 1 + g->padLeft - b, sw) + 1;
                    if (v0 < 0) v0 = 0;
                    if (v1 > L.vn) v1 = L.vn;
                    const float *src = ta + (size_t)b * tsize + U * L.vn;
                    for (ptrdiff_t V = v0; V < v1; V++) d[b + V * sw - g->padLeft] += src[V];
                }
            }
        }
    }
}

void loupe_depthwise_backward_input(const float *gy, const float *w, ptrdiff_t n, ptrdiff_t c, ptrdiff_t mult,
                                    const loupe_window2d *g, float *gx) {
    dw_job j = { NULL, w, NULL, gy, gx, n, c, mult, 1, n * c, *g, loupe_window_level() };
    if (j.planes <= 0 || mult <= 0 || g->outH <= 0 || g->outW <= 0) return;
    j.chunk = planes_per_task(j.planes, mult * g->inH * g->inW * g->kH * g->kW);
    loupe_parallel_for((j.planes + j.chunk - 1) / j.chunk,
                       g->strideW > 1 || g->strideH > 1 ? backward_input_phased_task : backward_input_task, &j);
}

static void backward_weight_task(void *ctx, ptrdiff_t task) {
    const dw_job *j = ctx;
    const loupe_window2d *g = &j->g;
    const ptrdiff_t taps = g->kH * g->kW, m = j->c * j->mult;
    dw_layout L = input_layout(g);
    ptrdiff_t *off;
    float *S = thread_scratch((size_t)(L.rows * L.rs), taps, &off, NULL);
    if (!S) return;
    memset(S, 0, (size_t)(L.rows * L.rs) * sizeof(float));
    input_taps(g, &L, off);
    dw_corr c = { S, off, NULL, (int)taps, g->strideH * L.rs, g->outH, g->outW, NULL, 0 };
    ptrdiff_t p1 = (task + 1) * j->chunk < j->planes ? (task + 1) * j->chunk : j->planes;
    for (ptrdiff_t oc = task * j->chunk; oc < p1; oc++)
        for (ptrdiff_t img = 0; img < j->n; img++) {
            fill_input(j->x + (img * j->c + oc / j->mult) * g->inH * g->inW, g, &L, S, j->level);
            wgrad(&c, j->gy + (img * m + oc) * g->outH * g->outW, j->y + oc * taps, j->level);
        }
}

void loupe_depthwise_backward_weight(const float *gy, const float *x, ptrdiff_t n, ptrdiff_t c, ptrdiff_t mult,
                                     const loupe_window2d *g, float *gw) {
    dw_job j = { x, NULL, NULL, gy, gw, n, c, mult, 1, c * mult, *g, loupe_window_level() };
    if (j.planes <= 0 || n <= 0 || g->outH <= 0 || g->outW <= 0) return;
    j.chunk = planes_per_task(j.planes, n * g->outH * g->outW * g->kH * g->kW);
    loupe_parallel_for((j.planes + j.chunk - 1) / j.chunk, backward_weight_task, &j);
}

// MARK: - Max-pool adjoint
//
// The same phase-split scratch, padded with -infinity instead of 0, lets the arg-max of 16
// windows be found with one vector compare per tap. Padding can never win (it equals the
// starting -infinity and the comparison is strict), so a selected tap is always a real input
// position; windows with no finite maximum (all -infinity, or entirely in the padding) fall back
// to the scalar rule of loupe_maxpool_plane.

/// Routes gy[oh][ow] of one output to its window's first maximum (scalar rule).
static void maxpool_route_one(const float *x, const loupe_window2d *g, ptrdiff_t oh, ptrdiff_t ow, float gyv, float *gx) {
    float best = -INFINITY;
    ptrdiff_t at = -1;
    for (ptrdiff_t kh = 0; kh < g->kH; kh++) {
        ptrdiff_t ih = oh * g->strideH - g->padTop + kh * g->dilH;
        if (ih < 0 || ih >= g->inH) continue;
        for (ptrdiff_t kw = 0; kw < g->kW; kw++) {
            ptrdiff_t iw = ow * g->strideW - g->padLeft + kw * g->dilW;
            if (iw < 0 || iw >= g->inW) continue;
            float v = x[ih * g->inW + iw];
            if (v > best || (v != v && best == best) || at < 0) { best = v; at = ih * g->inW + iw; }
        }
    }
    if (at >= 0) gx[at] += gyv;
}

#ifdef DW_X86
static __attribute__((target("avx512f"))) void maxpool_grad_avx512(const float *x, const float *gy, const loupe_window2d *g,
                                                                     const dw_corr *c, float *gx) {
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    int32_t idx[16];
    // Each tap's offset from its window's corner in the plane: no division per routed value.
    enum { TAB = 64 };
    ptrdiff_t tapAt[TAB];
    const int tabled = c->taps <= TAB;
    for (int t = 0; tabled && t < c->taps; t++) tapAt[t] = (t / g->kW) * g->dilH * g->inW + (t % g->kW) * g->dilW;
    for (ptrdiff_t oh = 0; oh < c->outH; oh++) {
        const float *sr = c->S + oh * c->rowStep;
        const float *gr = gy + oh * c->outW;
        const ptrdiff_t rowAt = (oh * g->strideH - g->padTop) * g->inW - g->padLeft;
        for (ptrdiff_t ow = 0; ow < c->outW; ow += 16) {
            const ptrdiff_t left = c->outW - ow;
            const __mmask16 m = lanes16(left);
            __m512 best = ninf;
            __m512i at = _mm512_set1_epi32(-1);
            for (int t = 0; t < c->taps; t++) {
                __m512 v = _mm512_mask_loadu_ps(ninf, m, sr + c->off[t] + ow);
                __mmask16 k = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ) |
                              (_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) & _mm512_cmp_ps_mask(best, best, _CMP_ORD_Q));
                best = _mm512_mask_blend_ps(k, best, v);
                at = _mm512_mask_blend_epi32(k, at, _mm512_set1_epi32(t));
            }
            _mm512_storeu_si512(idx, at);
            const ptrdiff_t n = left < 16 ? left : 16;
            for (ptrdiff_t l = 0; l < n; l++) {
                const ptrdiff_t o = ow + l;
                const int t = idx[l];
                if (t < 0) { maxpool_route_one(x, g, oh, o, gr[o], gx); continue; }
                if (tabled) { gx[rowAt + o * g->strideW + tapAt[t]] += gr[o]; continue; }
                const ptrdiff_t ih = oh * g->strideH - g->padTop + (t / g->kW) * g->dilH;
                const ptrdiff_t iw = o * g->strideW - g->padLeft + (t % g->kW) * g->dilW;
                gx[ih * g->inW + iw] += gr[o];
            }
        }
    }
}
#endif

// MARK: - Max-pool forward

#ifdef DW_X86
/// NaN-propagating maximum over each window (a NaN tap wins and stays), 16 windows at a time.
static __attribute__((target("avx512f"))) void maxpool_avx512(const dw_corr *c, float *y) {
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    for (ptrdiff_t oh = 0; oh < c->outH; oh++) {
        const float *sr = c->S + oh * c->rowStep;
        for (ptrdiff_t ow = 0; ow < c->outW; ow += 16) {
            const __mmask16 m = lanes16(c->outW - ow);
            __m512 best = ninf;
            for (int t = 0; t < c->taps; t++) {
                __m512 v = _mm512_maskz_loadu_ps(m, sr + c->off[t] + ow);
                __mmask16 k = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
                best = _mm512_mask_blend_ps(k, best, v);
            }
            _mm512_mask_storeu_ps(y + oh * c->outW + ow, m, best);
        }
    }
}
#endif

/// Max pooling of a chunk of planes: forward (j->gy NULL; y from x) or adjoint (j->gy set; the
/// gradient routed to each window's first maximum, into j->y). On AVX-512 every plane is first
/// copied into a -inf padded scratch, so each window is a straight run of taps.
static void maxpool_task(void *ctx, ptrdiff_t task) {
    const dw_job *j = ctx;
    const loupe_window2d *g = &j->g;
    const ptrdiff_t plane = g->inH * g->inW, oplane = g->outH * g->outW;
    const int backward = j->gy != NULL;
    ptrdiff_t p1 = (task + 1) * j->chunk < j->planes ? (task + 1) * j->chunk : j->planes;
#ifdef DW_X86
    if (j->level >= 2) {
        const ptrdiff_t taps = g->kH * g->kW;
        dw_layout L = input_layout(g);
        const size_t size = (size_t)(L.rows * L.rs);
        ptrdiff_t *off;
        float *S = thread_scratch(size, taps, &off, NULL);
        if (S) {
            for (size_t i = 0; i < size; i++) S[i] = -INFINITY;
            input_taps(g, &L, off);
            dw_corr c = { S, off, NULL, (int)taps, g->strideH * L.rs, g->outH, g->outW, NULL, 0 };
            for (ptrdiff_t t = task * j->chunk; t < p1; t++) {
                fill_input(j->x + t * plane, g, &L, S, j->level);
                if (backward) {
                    // Zeroed here, just before the routing, so the plane is written in cache
                    // instead of once more from memory by the caller.
                    memset(j->y + t * plane, 0, (size_t)plane * sizeof(float));
                    maxpool_grad_avx512(j->x + t * plane, j->gy + t * oplane, g, &c, j->y + t * plane);
                } else {
                    maxpool_avx512(&c, j->y + t * oplane);
                }
            }
            return;
        }
    }
#endif
    for (ptrdiff_t t = task * j->chunk; t < p1; t++) {
        if (backward) {
            memset(j->y + t * plane, 0, (size_t)plane * sizeof(float));
            loupe_maxpool_plane_grad(j->x + t * plane, j->gy + t * oplane, g, j->y + t * plane);
        } else {
            loupe_maxpool_plane(j->x + t * plane, g, j->y + t * oplane, NULL);
        }
    }
}

/// Both max-pool entry points: gy NULL for the forward pass.
static void maxpool_run(const float *x, const float *gy, ptrdiff_t planes, const loupe_window2d *g, float *out) {
    dw_job j = { x, NULL, NULL, gy, out, 1, planes, 1, 1, planes, *g, loupe_window_level() };
    if (planes <= 0) return;
    if (g->outH <= 0 || g->outW <= 0) {
        // No window: nothing routed, the adjoint is zero.
        if (gy) memset(out, 0, (size_t)(planes * g->inH * g->inW) * sizeof(float));
        return;
    }
    j.chunk = planes_per_task(planes, g->outH * g->outW * g->kH * g->kW);
    loupe_parallel_for((planes + j.chunk - 1) / j.chunk, maxpool_task, &j);
}

void loupe_maxpool_forward(const float *x, ptrdiff_t planes, const loupe_window2d *g, float *y) {
    maxpool_run(x, NULL, planes, g, y);
}

void loupe_maxpool_backward(const float *x, const float *gy, ptrdiff_t planes, const loupe_window2d *g, float *gx) {
    maxpool_run(x, gy, planes, g, gx);
}

// MARK: - Average pooling
//
// A depthwise correlation with all-one weights, then a division by the tap count; the count
// factorises into a row count times a column count, so two short tables give every divisor.

/// Per-axis tap counts: taps inside [0, in), or inside the padded [-padB, in + padE) when
/// `includePad` (ONNX count_include_pad; taps past the end padding, from ceil mode, never count).
static void axis_counts(ptrdiff_t out, ptrdiff_t stride, ptrdiff_t k, ptrdiff_t dil, ptrdiff_t in, ptrdiff_t padB,
                        ptrdiff_t padE, int includePad, ptrdiff_t *cnt) {
    for (ptrdiff_t o = 0; o < out; o++) {
        ptrdiff_t n = 0;
        for (ptrdiff_t t = 0; t < k; t++) {
            ptrdiff_t i = o * stride - padB + t * dil;
            n += includePad ? (i >= -padB && i < in + padE) : (i >= 0 && i < in);
        }
        cnt[o] = n;
    }
}

/// Sets up an average-pooling job (weights and count tables in one allocation); NULL on failure.
static void *avg_job(dw_job *j, const loupe_window2d *g, ptrdiff_t padBottom, ptrdiff_t padRight, int countIncludePad) {
    const ptrdiff_t taps = g->kH * g->kW;
    void *mem = malloc((size_t)(g->outH + g->outW) * sizeof(ptrdiff_t) + (size_t)taps * sizeof(float));
    if (!mem) return NULL;
    ptrdiff_t *cntH = mem, *cntW = cntH + g->outH;
    float *ones = (float *)(cntW + g->outW);
    for (ptrdiff_t t = 0; t < taps; t++) ones[t] = 1.0f;
    axis_counts(g->outH, g->strideH, g->kH, g->dilH, g->inH, g->padTop, padBottom, countIncludePad, cntH);
    axis_counts(g->outW, g->strideW, g->kW, g->dilW, g->inW, g->padLeft, padRight, countIncludePad, cntW);
    j->w = ones;
    j->sharedWeights = 1;
    j->cntH = cntH;
    j->cntW = cntW;
    return mem;
}

void loupe_avgpool_forward(const float *x, ptrdiff_t planes, const loupe_window2d *g, ptrdiff_t padBottom,
                           ptrdiff_t padRight, int countIncludePad, float *y) {
    dw_job j = { x, NULL, NULL, NULL, y, 1, planes, 1, 1, planes, *g, loupe_window_level(), 0, NULL, NULL };
    if (planes <= 0 || g->outH <= 0 || g->outW <= 0) return;
    void *mem = avg_job(&j, g, padBottom, padRight, countIncludePad);
    if (!mem) {  // no memory for two small tables: the per-plane kernel needs none
        for (ptrdiff_t t = 0; t < planes; t++)
            loupe_avgpool_plane(x + t * g->inH * g->inW, g, padBottom, padRight, countIncludePad, y + t * g->outH * g->outW);
        return;
    }
    j.chunk = planes_per_task(planes, g->outH * g->outW * g->kH * g->kW);
    loupe_parallel_for((planes + j.chunk - 1) / j.chunk, forward_task, &j);
    free(mem);
}

void loupe_avgpool_backward(const float *gy, ptrdiff_t planes, const loupe_window2d *g, ptrdiff_t padBottom,
                            ptrdiff_t padRight, int countIncludePad, float *gx) {
    dw_job j = { NULL, NULL, NULL, gy, gx, 1, planes, 1, 1, planes, *g, loupe_window_level(), 0, NULL, NULL };
    if (planes <= 0 || g->outH <= 0 || g->outW <= 0) return;
    void *mem = avg_job(&j, g, padBottom, padRight, countIncludePad);
    if (!mem) {
        for (ptrdiff_t t = 0; t < planes; t++)
            loupe_avgpool_plane_grad(gy + t * g->outH * g->outW, g, padBottom, padRight, countIncludePad, gx + t * g->inH * g->inW);
        return;
    }
    j.chunk = planes_per_task(planes, g->inH * g->inW * g->kH * g->kW);
    loupe_parallel_for((planes + j.chunk - 1) / j.chunk,
                       g->strideW > 1 || g->strideH > 1 ? backward_input_phased_task : backward_input_task, &j);
    free(mem);
}
