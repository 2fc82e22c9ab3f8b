// Sliding-window helpers for convolution and pooling, one channel plane at a time. Callers
// parallelise over (batch, channel) planes. For each output column the valid input taps form a
// contiguous range, computed once per kernel column, so the inner loops carry no bounds checks.
#include <stdlib.h>
#include "CLoupeKernels.h"
#include "CLoupeWindow.h"
#include "window_range.h"
#include "row_stride2.h"
#include <math.h>
#include <string.h>


void loupe_im2col(const float *x, ptrdiff_t channels, const loupe_window2d *g, ptrdiff_t oh0, ptrdiff_t oh1,
                  float *col) {
    const ptrdiff_t width = (oh1 - oh0) * g->outW;
#if defined(__x86_64__)
    const int s2 = g->strideW == 2 && loupe_window_level() >= 2;
#endif
    for (ptrdiff_t c = 0; c < channels; c++) {
        const float *xc = x + c * g->inH * g->inW;
        for (ptrdiff_t kh = 0; kh < g->kH; kh++)
            for (ptrdiff_t kw = 0; kw < g->kW; kw++) {
                float *dst = col + ((c * g->kH + kh) * g->kW + kw) * width;
                ptrdiff_t offW = kw * g->dilW - g->padLeft, lo, hi;
                valid_range(offW, g->strideW, g->inW, g->outW, &lo, &hi);
                for (ptrdiff_t oh = oh0; oh < oh1; oh++) {
                    float *d = dst + (oh - oh0) * g->outW;
                    ptrdiff_t ih = oh * g->strideH - g->padTop + kh * g->dilH;
                    if (ih < 0 || ih >= g->inH) { memset(d, 0, (size_t)g->outW * sizeof(float)); continue; }
                    const float *s = xc + ih * g->inW + offW;
                    for (ptrdiff_t ow = 0; ow < lo; ow++) d[ow] = 0.0f;
                    if (g->strideW == 1) memcpy(d + lo, s + lo, (size_t)(hi - lo) * sizeof(float));
#if defined(__x86_64__)
                    else if (s2) gather_s2_avx512(d + lo, s + 2 * lo, hi - lo);
#endif
                    else for (ptrdiff_t ow = lo; ow < hi; ow++) d[ow] = s[ow * g->strideW];
                    for (ptrdiff_t ow = hi; ow < g->outW; ow++) d[ow] = 0.0f;
                }
            }
    }
}

void loupe_col2im(const float *col, ptrdiff_t channels, const loupe_window2d *g, ptrdiff_t oh0, ptrdiff_t oh1,
                  float *x) {
    const ptrdiff_t width = (oh1 - oh0) * g->outW;
#if defined(__x86_64__)
    const int s2 = g->strideW == 2 && loupe_window_level() >= 2;
#endif
    for (ptrdiff_t c = 0; c < channels; c++) {
        float *xc = x + c * g->inH * g->inW;
        for (ptrdiff_t kh = 0; kh < g->kH; kh++)
            for (ptrdiff_t kw = 0; kw < g->kW; kw++) {
                const float *src = col + ((c * g->kH + kh) * g->kW + kw) * width;
                ptrdiff_t offW = kw * g->dilW - g->padLeft, lo, hi;
                valid_range(offW, g->strideW, g->inW, g->outW, &lo, &hi);
                for (ptrdiff_t oh = oh0; oh < oh1; oh++) {
                    ptrdiff_t ih = oh * g->strideH - g->padTop + kh * g->dilH;
                    if (ih < 0 || ih >= g->inH) continue;
                    const float *s = src + (oh - oh0) * g->outW;
                    float *d = xc + ih * g->inW + offW;
#if defined(__x86_64__)
                    if (s2 && hi > lo) { scatter_add_s2_avx512(d + 2 * lo, s + lo, hi - lo); continue; }
#endif
                    for (ptrdiff_t ow = lo; ow < hi; ow++) d[ow * g->strideW] += s[ow];
                }
            }
    }
}

/// NaN-propagating max (PyTorch semantics): a NaN operand wins and stays. Written as a compare
/// and select so the row loop below vectorises.
static inline float max_nan(float a, float b) { return (b > a || b != b) ? b : a; }

/// Forward-only max pooling, separable: the column maximum over the window's rows into one
/// scratch row (contiguous, vectorised), then the maximum across each window of that row.
static void maxpool_plane_values(const float *x, const loupe_window2d *g, float *y) {
    float stackRow[1024];
    float *row = g->inW <= 1024 ? stackRow : (float *)malloc((size_t)g->inW * sizeof(float));
    if (!row) return;
    for (ptrdiff_t oh = 0; oh < g->outH; oh++) {
        for (ptrdiff_t iw = 0; iw < g->inW; iw++) row[iw] = -INFINITY;
        for (ptrdiff_t kh = 0; kh < g->kH; kh++) {
            ptrdiff_t ih = oh * g->strideH - g->padTop + kh * g->dilH;
            if (ih < 0 || ih >= g->inH) continue;
            const float *src = x + ih * g->inW;
            for (ptrdiff_t iw = 0; iw < g->inW; iw++) row[iw] = max_nan(row[iw], src[iw]);
        }
        for (ptrdiff_t ow = 0; ow < g->outW; ow++) {
            float best = -INFINITY;
            for (ptrdiff_t kw = 0; kw < g->kW; kw++) {
                ptrdiff_t iw = ow * g->strideW - g->padLeft + kw * g->dilW;
                if (iw >= 0 && iw < g->inW) best = max_nan(best, row[iw]);
            }
            y[oh * g->outW + ow] = best;
        }
    }
    if (row != stackRow) free(row);
}

void loupe_maxpool_plane(const float *x, const loupe_window2d *g, float *y, ptrdiff_t *argmax) {
    if (!argmax) { maxpool_plane_values(x, g, y); return; }
    for (ptrdiff_t oh = 0; oh < g->outH; oh++)
        for (ptrdiff_t ow = 0; ow < g->outW; ow++) {
            float best = -INFINITY;
            ptrdiff_t at = -1;
            for (ptrdiff_t kh = 0; kh < g->kH; kh++) {
                ptrdiff_t ih = oh * g->strideH - g->padTop + kh * g->dilH;
                if (ih < 0 || ih >= g->inH) continue;
                for (ptrdiff_t kw = 0; kw < g->kW; kw++) {
                    ptrdiff_t iw = ow * g->strideW - g->padLeft + kw * g->dilW;
                    if (iw < 0 || iw >= g->inW) continue;
                    float v = x[ih * g->inW + iw];
                    // NaN propagates (as in PyTorch): a NaN tap wins and stays.
                    if (v > best || (v != v && best == best) || at < 0) { best = v; at = ih * g->inW + iw; }
                }
            }
            y[oh * g->outW + ow] = best;
            if (argmax) argmax[oh * g->outW + ow] = at;
        }
}

void loupe_maxpool_plane_grad(const float *x, const float *gy, const loupe_window2d *g, float *gx) {
    for (ptrdiff_t oh = 0; oh < g->outH; oh++) {
        const ptrdiff_t ih0 = oh * g->strideH - g->padTop;
        for (ptrdiff_t ow = 0; ow < g->outW; ow++) {
            const ptrdiff_t iw0 = ow * g->strideW - g->padLeft;
            float best = -INFINITY;
            ptrdiff_t at = -1;
            for (ptrdiff_t kh = 0; kh < g->kH; kh++) {
                ptrdiff_t ih = ih0 + kh * g->dilH;
                if (ih < 0 || ih >= g->inH) continue;
                const float *row = x + ih * g->inW;
                for (ptrdiff_t kw = 0; kw < g->kW; kw++) {
                    ptrdiff_t iw = iw0 + kw * g->dilW;
                    if (iw < 0 || iw >= g->inW) continue;
                    float v = row[iw];
                    // Same tie and NaN rules as loupe_maxpool_plane: first maximum, a NaN wins and stays.
                    if (v > best || (v != v && best == best) || at < 0) { best = v; at = ih * g->inW + iw; }
                }
            }
            if (at >= 0) gx[at] += gy[oh * g->outW + ow];
        }
    }
}

/// Taps of a window along one axis: within [0, in) and within the padded range [-padB, in+padE).
static inline void tap_counts(ptrdiff_t start, ptrdiff_t k, ptrdiff_t dil, ptrdiff_t in, ptrdiff_t padB,
                              ptrdiff_t padE, ptrdiff_t *inside, ptrdiff_t *padded) {
    ptrdiff_t a = 0, b = 0;
    for (ptrdiff_t t = 0; t < k; t++) {
        ptrdiff_t i = start + t * dil;
        if (i >= 0 && i < in) a++;
        if (i >= -padB && i < in + padE) b++;
    }
    *inside = a;
    *padded = b;
}

static inline float avg_divisor(const loupe_window2d *g, ptrdiff_t oh, ptrdiff_t ow, ptrdiff_t padBottom,
                                ptrdiff_t padRight, int countIncludePad) {
    ptrdiff_t ih0 = oh * g->strideH - g->padTop, iw0 = ow * g->strideW - g->padLeft;
    ptrdiff_t inH, padH, inW, padW;
    tap_counts(ih0, g->kH, g->dilH, g->inH, g->padTop, padBottom, &inH, &padH);
    tap_counts(iw0, g->kW, g->dilW, g->inW, g->padLeft, padRight, &inW, &padW);
    ptrdiff_t n = countIncludePad ? padH * padW : inH * inW;
    return n > 0 ? (float)n : 1.0f;
}

void loupe_avgpool_plane(const float *x, const loupe_window2d *g, ptrdiff_t padBottom, ptrdiff_t padRight,
                         int countIncludePad, float *y) {
    for (ptrdiff_t oh = 0; oh < g->outH; oh++)
        for (ptrdiff_t ow = 0; ow < g->outW; ow++) {
            float s = 0.0f;
            for (ptrdiff_t kh = 0; kh < g->kH; kh++) {
                ptrdiff_t ih = oh * g->strideH - g->padTop + kh * g->dilH;
                if (ih < 0 || ih >= g->inH) continue;
                for (ptrdiff_t kw = 0; kw < g->kW; kw++) {
                    ptrdiff_t iw = ow * g->strideW - g->padLeft + kw * g->dilW;
                    if (iw < 0 || iw >= g->inW) continue;
                    s += x[ih * g->inW + iw];
                }
            }
            y[oh * g->outW + ow] = s / avg_divisor(g, oh, ow, padBottom, padRight, countIncludePad);
        }
}

void loupe_avgpool_plane_grad(const float *gy, const loupe_window2d *g, ptrdiff_t padBottom, ptrdiff_t padRight,
                              int countIncludePad, float *gx) {
    for (ptrdiff_t oh = 0; oh < g->outH; oh++)
        for (ptrdiff_t ow = 0; ow < g->outW; ow++) {
            float v = gy[oh * g->outW + ow] / avg_divisor(g, oh, ow, padBottom, padRight, countIncludePad);
            for (ptrdiff_t kh = 0; kh < g->kH; kh++) {
                ptrdiff_t ih = oh * g->strideH - g->padTop + kh * g->dilH;
                if (ih < 0 || ih >= g->inH) continue;
                for (ptrdiff_t kw = 0; kw < g->kW; kw++) {
                    ptrdiff_t iw = ow * g->strideW - g->padLeft + kw * g->dilW;
                    if (iw < 0 || iw >= g->inW) continue;
                    gx[ih * g->inW + iw] += v;
                }
            }
        }
}
