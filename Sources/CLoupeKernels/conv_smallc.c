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
#include <stdint.h>
#include "CLoupeKernels.h"
#include "gemm_internal.h" // loupe_thread_buffer
#include "window_range.h"
#include "row_split.h"
#include "CLoupeVMath.h"

#if defined(__x86_64__)
#include <immintrin.h>

/// Bounds of the per-task tables (on the stack): taps (c*kH*kW), kernel width, and the rows one
/// window spans; layers past them take the GEMM path.
#define SC_MAX_TAPS 160
#define SC_MAX_KW 16
#define SC_MAX_SPAN 32

typedef struct {
    const float *x, *wt, *bias;  // wt: [channel block][tap][16], zero past the last channel
    float *y;
    ptrdiff_t n, c, m, rows, chunk;  // rows = n * outH
    loupe_window2d g;
    ptrdiff_t phaseW, rowLen;        // a phase-split input row: strideW phases of phaseW floats
    ptrdiff_t span;                  // input rows one output row's window spans: (kH - 1) * dilH + 1
    int act;
} sc_job;

/// Input row `ih` of one channel (zeros when outside the image) as strideW phases: phase p,
/// column q holds input column q*strideW + p - padLeft (0 outside the row). Read straight from
/// the image (a padded copy and a memset per row took a quarter of the kernel's time). Only the
/// columns inside the image are written: the padding columns of `dst` must already be zero.
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
        if (sw == 2) continue;  // both phases are filled below, in one pass over the row
        const ptrdiff_t first = q0 * sw + p - g->padLeft;  // source column of d[q0]
        if (sw == 1) memcpy(d + q0, src + first, (size_t)(q1 - q0) * sizeof(float));
        else for (ptrdiff_t q = q0; q < q1; q++) d[q] = src[first + (q - q0) * sw];
    }
    if (sw == 2) split_row_s2_avx512(dst, pw, src, g->inW, g->padLeft);
}

/// f(x) = x * clamp(x/6 + 1/2, 0, 1) with vmath's operations in vmath's order (a division, not
/// a product by 1/6), so the fused result is bit-identical to the unfused HardSwish.
static inline __attribute__((target("avx512f"), always_inline)) __m512 sc_hard_swish(__m512 x) {
    const __m512 one = _mm512_set1_ps(1.0f), zero = _mm512_setzero_ps();
    __m512 t = _mm512_add_ps(_mm512_div_ps(x, _mm512_set1_ps(6.0f)), _mm512_set1_ps(0.5f));
    t = _mm512_mask_mov_ps(t, _mm512_cmp_ps_mask(t, one, _CMP_GT_OQ), one);
    t = _mm512_mask_mov_ps(t, _mm512_cmp_ps_mask(t, zero, _CMP_LT_OQ), zero);
    return _mm512_mul_ps(x, t);
}

/// 16 output channels x 16 output columns from ow, one FMA per tap per channel, then the
/// activation when it is ReLU or HardSwish (in registers), and the stores of the first mb
/// channels (y: channel 0's row, planes `plane` floats apart). The accumulators are local so
/// that they stay in registers (a __m512 may alias the weights).
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
    const int relu = j->act == LOUPE_ACT_RELU, hswish = j->act == LOUPE_ACT_UNARY + LOUPE_VU_HARD_SWISH;
    for (int i = 0; i < 16; i++) {
        __m512 v = acc[i];
        // v < 0 ? 0 : v keeps NaN, as torch.relu
        if (relu) v = _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ), zero);
        if (hswish) v = sc_hard_swish(v);
        // Channels past mb: an all-false mask stores nothing (and touches no memory).
        _mm512_mask_storeu_ps(y + (i < mb ? i : 0) * plane + ow, i < mb ? m : 0, v);
    }
}

/// Input rows stay in a ring of `span` row slots per channel: input row ih lives in slot
/// ih mod span, so consecutive output rows, whose windows overlap by (kH·dilH − strideH) rows,
/// fill only the rows they add (a 7x7 stride-2 layer: 2 of 7). The slots' padding columns are
/// zeroed once per task and never written after (sc_fill_row writes only the in-image columns,
/// or zeros), which also saves the two small memsets per row.
static __attribute__((target("avx512f,fma"))) void sc_task(void *ctx, ptrdiff_t task) {
    const sc_job *j = ctx;
    const loupe_window2d *g = &j->g;
    const ptrdiff_t taps = j->c * g->kH * g->kW, blocks = (j->m + 15) / 16, plane = g->outH * g->outW;
    const ptrdiff_t span = j->span, slots = j->c * span;
    float *rowsbuf = loupe_thread_buffer((size_t)(slots * j->rowLen + 16));
    if (!rowsbuf) return;
    memset(rowsbuf, 0, (size_t)(slots * j->rowLen + 16) * sizeof(float));
    // Where each tap's kw reads in a phase-split row: its phase, then its offset in it.
    ptrdiff_t kwOff[SC_MAX_KW], slotRow[SC_MAX_SPAN], xoff[SC_MAX_TAPS];
    for (ptrdiff_t kw = 0; kw < g->kW; kw++) {
        const ptrdiff_t col = kw * g->dilW;
        kwOff[kw] = (col % g->strideW) * j->phaseW + col / g->strideW;
    }
    ptrdiff_t img = -1;
    const ptrdiff_t r1 = (task + 1) * j->chunk < j->rows ? (task + 1) * j->chunk : j->rows;
    for (ptrdiff_t r = task * j->chunk; r < r1; r++) {
        const ptrdiff_t oh = r % g->outH;
        if (r / g->outH != img) {
            img = r / g->outH;
            for (ptrdiff_t s = 0; s < span; s++) slotRow[s] = PTRDIFF_MIN;
        }
        const float *ximg = j->x + img * j->c * g->inH * g->inW;
        // Each kh's input row into its slot (filled only when the slot holds another row), then
        // the taps' offsets in (c, kh, kw) order, as the weights.
        for (ptrdiff_t kh = 0; kh < g->kH; kh++) {
            const ptrdiff_t ih = oh * g->strideH + kh * g->dilH - g->padTop;
            const ptrdiff_t slot = ((ih % span) + span) % span;
            if (slotRow[slot] != ih) {
                for (ptrdiff_t c = 0; c < j->c; c++)
                    sc_fill_row(j, ximg + c * g->inH * g->inW, ih, rowsbuf + (c * span + slot) * j->rowLen);
                slotRow[slot] = ih;
            }
            for (ptrdiff_t c = 0; c < j->c; c++) {
                const ptrdiff_t rowAt = (c * span + slot) * j->rowLen, t0 = (c * g->kH + kh) * g->kW;
                for (ptrdiff_t kw = 0; kw < g->kW; kw++) xoff[t0 + kw] = rowAt + kwOff[kw];
            }
        }
        float *yrow = j->y + img * j->m * plane + oh * g->outW;
        for (ptrdiff_t b = 0; b < blocks; b++) {
            const ptrdiff_t m0 = b * 16, mb = j->m - m0 < 16 ? j->m - m0 : 16;
            const float *wt = j->wt + b * taps * 16;
            float bias16[16];
            for (int i = 0; i < 16; i++) bias16[i] = j->bias && i < mb ? j->bias[m0 + i] : 0.0f;
            for (ptrdiff_t ow = 0; ow < g->outW; ow += 16) sc_tile(j, rowsbuf, xoff, taps, wt, bias16, ow, mb, plane, yrow + m0 * plane);
            if (j->act >= LOUPE_ACT_UNARY && j->act != LOUPE_ACT_UNARY + LOUPE_VU_HARD_SWISH)
                for (ptrdiff_t i = 0; i < mb; i++)
                    loupe_vunary_serial(j->act - LOUPE_ACT_UNARY, yrow + (m0 + i) * plane, yrow + (m0 + i) * plane,
                                        g->outW, 0, 0);
        }
    }
}

int loupe_conv2d_small_c_suits(ptrdiff_t c, ptrdiff_t m, const loupe_window2d *g, int level) {
    (void)m;
    return level == 2 && c >= 1 && c <= 4 && c * g->kH * g->kW <= SC_MAX_TAPS && g->kW <= SC_MAX_KW &&
           (g->kH - 1) * g->dilH + 1 <= SC_MAX_SPAN && g->outW >= 16 && g->strideW <= 4;
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
    sc_job j = { x, wt, bias, y, n, c, m, n * g->outH, 1, *g, 0, 0, (g->kH - 1) * g->dilH + 1, act };
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
