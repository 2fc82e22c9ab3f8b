// Direct convolution for layers with few input channels (a network's first layer, on RGB), AVX-512.
//
// As a GEMM such a layer has K = C*kH*kW of only 27 (3x3 on RGB), so packing each column panel
// of the image (a strided gather of 27 x 32 values) costs about as much as the multiply-adds
// on it, and 16 or 24 output channels fill 14-row panels badly. Here 16 output channels x 16
// output columns are 16 accumulators; each tap is one contiguous load of 16 inputs (strided
// rows are first split into phases, as the depthwise kernels do) and 16 FMAs with the weights
// broadcast from memory: no packing of the image at all.
#include <stdlib.h>
#include <string.h>
#include "CLoupeKernels.h"
#include "gemm_internal.h" // loupe_thread_buffer
#include "window_range.h"
#include "row_split.h"
#include "CLoupeVMath.h"

#if defined(__x86_64__)
#include <immintrin.h>

typedef struct {
    const float *x, *wt, *bias;  // wt: [channel block][tap][16], zero past the last channel
    float *y;
    ptrdiff_t n, c, m, rows, chunk;  // rows = n * outH
    loupe_window2d g;
    ptrdiff_t phaseW, rowLen;        // a phase-split input row: strideW phases of phaseW floats
    int act;
} sc_job;

/// Input row `ih` of one channel (zeros when outside the image) as strideW phases: phase p,
/// column q holds input column q*strideW + p - padLeft (0 outside the row). Read straight from
/// the image (a padded copy and a memset per row took a quarter of the kernel's time).
static __attribute__((target("avx512f"))) void sc_fill_row(const sc_job *j, const float *xc, ptrdiff_t ih, float *dst) {
    const loupe_window2d *g = &j->g;
    const ptrdiff_t sw = g->strideW, pw = j->phaseW;
    if (ih < 0 || ih >= g->inH) { memset(dst, 0, (size_t)j->rowLen * sizeof(float)); return; }
    const float *src = xc + ih * g->inW;
    for (ptrdiff_t p = 0; p < sw; p++) {
        float *d = dst + p * pw;
        // Columns q with 0 <= q*sw + p - padLeft < inW.
        ptrdiff_t q0 = g->padLeft - p > 0 ? (g->padLeft - p + sw - 1) / sw : 0;
        ptrdiff_t q1 = (g->inW + g->padLeft - p + sw - 1) / sw;
        if (q1 > pw) q1 = pw;
        if (q0 > q1) q0 = q1;
        memset(d, 0, (size_t)q0 * sizeof(float));
        memset(d + q1, 0, (size_t)(pw - q1) * sizeof(float));
        if (sw == 2) continue;  // both phases are filled below, in one pass over the row
        const ptrdiff_t first = q0 * sw + p - g->padLeft;  // source column of d[q0]
        if (sw == 1) memcpy(d + q0, src + first, (size_t)(q1 - q0) * sizeof(float));
        else for (ptrdiff_t q = q0; q < q1; q++) d[q] = src[first + (q - q0) * sw];
    }
    if (sw == 2) split_row_s2_avx512(dst, pw, src, g->inW, g->padLeft);
}

/// 16 output channels x 16 output columns from ow, one FMA per tap per channel, then ReLU and
/// the stores of the first mb channels (y: channel 0's row, planes `plane` floats apart). The
/// accumulators are local so that they stay in registers (a __m512 may alias the weights).
static inline __attribute__((target("avx512f,fma"), always_inline))
void sc_tile(const sc_job *j, const float *rowsbuf, const ptrdiff_t *xoff, ptrdiff_t taps, const float *wt, const float *bias16,
             ptrdiff_t ow, ptrdiff_t mb, ptrdiff_t plane, float *y) {
    const loupe_window2d *g = &j->g;
    __m512 acc[16];
    for (int i = 0; i < 16; i++) acc[i] = _mm512_set1_ps(bias16[i]);
    const float *base = rowsbuf + ow;
    for (ptrdiff_t t = 0; t < taps; t++) {
        const __m512 xv = _mm512_loadu_ps(base + xoff[t]);
        const float *w = wt + t * 16;
        for (int i = 0; i < 16; i++) acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(w[i]), xv, acc[i]);
    }
    const __mmask16 m = lanes16(g->outW - ow);
    const __m512 zero = _mm512_setzero_ps();
    const int relu = j->act == LOUPE_ACT_RELU;
    for (int i = 0; i < 16; i++) {
        __m512 v = acc[i];
        // v < 0 ? 0 : v keeps NaN, as torch.relu
        if (relu) v = _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ), zero);
        // Channels past mb: an all-false mask stores nothing (and touches no memory).
        _mm512_mask_storeu_ps(y + (i < mb ? i : 0) * plane + ow, i < mb ? m : 0, v);
    }
}

static __attribute__((target("avx512f,fma"))) void sc_task(void *ctx, ptrdiff_t task) {
    const sc_job *j = ctx;
    const loupe_window2d *g = &j->g;
    const ptrdiff_t taps = j->c * g->kH * g->kW, blocks = (j->m + 15) / 16, plane = g->outH * g->outW;
    float *rowsbuf = loupe_thread_buffer((size_t)(j->c * g->kH * j->rowLen + 16));
    if (!rowsbuf) return;
    // Where each tap (c, kh, kw) reads in the phase-split rows: row (c, kh), then kw's phase and
    // its offset in it.
    ptrdiff_t xoff[160];
    for (ptrdiff_t c = 0, t = 0; c < j->c; c++)
        for (ptrdiff_t kh = 0; kh < g->kH; kh++)
            for (ptrdiff_t kw = 0; kw < g->kW; kw++, t++) {
                const ptrdiff_t col = kw * g->dilW;
                xoff[t] = (c * g->kH + kh) * j->rowLen + (col % g->strideW) * j->phaseW + col / g->strideW;
            }
    const ptrdiff_t r1 = (task + 1) * j->chunk < j->rows ? (task + 1) * j->chunk : j->rows;
    for (ptrdiff_t r = task * j->chunk; r < r1; r++) {
        const ptrdiff_t img = r / g->outH, oh = r % g->outH;
        const float *ximg = j->x + img * j->c * g->inH * g->inW;
        for (ptrdiff_t c = 0; c < j->c; c++)
            for (ptrdiff_t kh = 0; kh < g->kH; kh++)
                sc_fill_row(j, ximg + c * g->inH * g->inW, oh * g->strideH + kh * g->dilH - g->padTop,
                            rowsbuf + (c * g->kH + kh) * j->rowLen);
        float *yrow = j->y + img * j->m * plane + oh * g->outW;
        for (ptrdiff_t b = 0; b < blocks; b++) {
            const ptrdiff_t m0 = b * 16, mb = j->m - m0 < 16 ? j->m - m0 : 16;
            const float *wt = j->wt + b * taps * 16;
            float bias16[16];
            for (int i = 0; i < 16; i++) bias16[i] = j->bias && i < mb ? j->bias[m0 + i] : 0.0f;
            for (ptrdiff_t ow = 0; ow < g->outW; ow += 16) sc_tile(j, rowsbuf, xoff, taps, wt, bias16, ow, mb, plane, yrow + m0 * plane);
            if (j->act >= LOUPE_ACT_UNARY)
                for (ptrdiff_t i = 0; i < mb; i++)
                    loupe_vunary_serial(j->act - LOUPE_ACT_UNARY, yrow + (m0 + i) * plane, yrow + (m0 + i) * plane,
                                        g->outW, 0, 0);
        }
    }
}

int loupe_conv2d_small_c_suits(ptrdiff_t c, ptrdiff_t m, const loupe_window2d *g, int level) {
    (void)m;
    return level == 2 && c >= 1 && c <= 4 && c * g->kH * g->kW <= 160 && g->outW >= 16 && g->strideW <= 4;
}

int loupe_conv2d_small_c(const float *x, const float *w, const float *bias, ptrdiff_t n, ptrdiff_t c, ptrdiff_t m,
                         const loupe_window2d *g, int act, float *y) {
    const ptrdiff_t taps = c * g->kH * g->kW, blocks = (m + 15) / 16;
    if (n <= 0 || m <= 0 || g->outH <= 0 || g->outW <= 0) return 1;
    float *wt = aligned_alloc(64, (size_t)(blocks * taps * 16) * sizeof(float));
    if (!wt) return 0;
    // Weights as [channel block][tap][16 output channels], taps in (c, kh, kw) order.
    for (ptrdiff_t b = 0; b < blocks; b++)
        for (ptrdiff_t t = 0; t < taps; t++)
            for (ptrdiff_t i = 0; i < 16; i++)
                wt[(b * taps + t) * 16 + i] = b * 16 + i < m ? w[(b * 16 + i) * taps + t] : 0.0f;
    sc_job j = { x, wt, bias, y, n, c, m, n * g->outH, 1, *g, 0, 0, act };
    const ptrdiff_t width = window_extent(g->outW, g->strideW, g->kW, g->dilW);
    // Phases padded so that a 16-wide load from any tap's start stays inside the row.
    j.phaseW = (width + g->strideW - 1) / g->strideW + 16;
    j.rowLen = j.phaseW * g->strideW;
    const ptrdiff_t threads = loupe_threads();
    j.chunk = j.rows / (4 * threads);
    if (j.chunk < 1) j.chunk = 1;
    loupe_parallel_for((j.rows + j.chunk - 1) / j.chunk, sc_task, &j);
    free(wt);
    return 1;
}

#else
int loupe_conv2d_small_c_suits(ptrdiff_t c, ptrdiff_t m, const loupe_window2d *g, int level) {
    (void)c; (void)m; (void)g; (void)level;
    return 0;
}
int loupe_conv2d_small_c(const float *x, const float *w, const float *bias, ptrdiff_t n, ptrdiff_t c, ptrdiff_t m,
                         const loupe_window2d *g, int act, float *y) {
    (void)x; (void)w; (void)bias; (void)n; (void)c; (void)m; (void)g; (void)act; (void)y;
    return 0;
}
#endif
