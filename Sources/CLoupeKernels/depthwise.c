// Depthwise convolution (one input channel per group), one channel plane at a time: a direct
// sliding-window kernel, since K = kH*kW is far too small for im2col + GEMM to pay off.
#include "CLoupeKernels.h"
#include "window_range.h"

void loupe_depthwise_plane(const float *x, const float *w, float bias, const loupe_window2d *g, float *y) {
    for (ptrdiff_t oh = 0; oh < g->outH; oh++) {
        float *yr = y + oh * g->outW;
        for (ptrdiff_t ow = 0; ow < g->outW; ow++) yr[ow] = bias;
        for (ptrdiff_t kh = 0; kh < g->kH; kh++) {
            ptrdiff_t ih = oh * g->strideH - g->padTop + kh * g->dilH;
            if (ih < 0 || ih >= g->inH) continue;
            for (ptrdiff_t kw = 0; kw < g->kW; kw++) {
                ptrdiff_t offW = kw * g->dilW - g->padLeft, lo, hi;
                valid_range(offW, g->strideW, g->inW, g->outW, &lo, &hi);
                const float wv = w[kh * g->kW + kw];
                const float *s = x + ih * g->inW + offW;
                if (g->strideW == 1) for (ptrdiff_t ow = lo; ow < hi; ow++) yr[ow] += wv * s[ow];
                else for (ptrdiff_t ow = lo; ow < hi; ow++) yr[ow] += wv * s[ow * g->strideW];
            }
        }
    }
}

void loupe_depthwise_plane_grad_input(const float *gy, const float *w, const loupe_window2d *g, float *gx) {
    for (ptrdiff_t oh = 0; oh < g->outH; oh++) {
        const float *gr = gy + oh * g->outW;
        for (ptrdiff_t kh = 0; kh < g->kH; kh++) {
            ptrdiff_t ih = oh * g->strideH - g->padTop + kh * g->dilH;
            if (ih < 0 || ih >= g->inH) continue;
            for (ptrdiff_t kw = 0; kw < g->kW; kw++) {
                ptrdiff_t offW = kw * g->dilW - g->padLeft, lo, hi;
                valid_range(offW, g->strideW, g->inW, g->outW, &lo, &hi);
                const float wv = w[kh * g->kW + kw];
                float *d = gx + ih * g->inW + offW;
                for (ptrdiff_t ow = lo; ow < hi; ow++) d[ow * g->strideW] += wv * gr[ow];
            }
        }
    }
}

void loupe_depthwise_plane_grad_weight(const float *gy, const float *x, const loupe_window2d *g, float *gw) {
    for (ptrdiff_t kh = 0; kh < g->kH; kh++)
        for (ptrdiff_t kw = 0; kw < g->kW; kw++) {
            ptrdiff_t offW = kw * g->dilW - g->padLeft, lo, hi;
            valid_range(offW, g->strideW, g->inW, g->outW, &lo, &hi);
            float acc = 0.0f;
            for (ptrdiff_t oh = 0; oh < g->outH; oh++) {
                ptrdiff_t ih = oh * g->strideH - g->padTop + kh * g->dilH;
                if (ih < 0 || ih >= g->inH) continue;
                const float *gr = gy + oh * g->outW;
                const float *s = x + ih * g->inW + offW;
                for (ptrdiff_t ow = lo; ow < hi; ow++) acc += gr[ow] * s[ow * g->strideW];
            }
            gw[kh * g->kW + kw] += acc;
        }
}

