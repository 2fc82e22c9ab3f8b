// Fake quantization (a QuantizeLinear -> DequantizeLinear pair) and its straight-through
// gradient, vectorised and split over the pool: these passes run on every activation of a QDQ
// model (onnxruntime's quantize_static puts one after nearly every layer), where the scalar Swift
// loop took 41 % of a quantized resnet18's forward.
//
// y = (clamp(rint(x / s) + z, lo, hi) - z) * s, rounding half to even, NaN -> 0 (it quantizes to
// the zero point); the division, rounding, addition, clamp and product are the same IEEE
// operations in the same order as the scalar definition, so every path gives the same bits.
// Gradient: gx = g where lo <= rint(x / s) + z <= hi, else 0 (PyTorch's fake_quantize backward).
#include <math.h>
#include "CLoupeKernels.h"
#include "CLoupeVMath.h"
#if defined(__x86_64__)
#include <immintrin.h>
#include "lane_mask.h"
#endif

typedef struct {
    const float *x, *g;
    float *y;
    ptrdiff_t n, tasks;
    float s, z, lo, hi;
    int unscaled;   // y = q - z, without the product by s (an integer product's shifted operand)
} fq_job;

static void fq_range(const fq_job *j, ptrdiff_t t, ptrdiff_t *a, ptrdiff_t *b) {
    *a = j->n * t / j->tasks;
    *b = j->n * (t + 1) / j->tasks;
}

#if defined(__x86_64__)
__attribute__((target("avx512f"))) static void fq_avx512(const fq_job *j, ptrdiff_t a, ptrdiff_t b) {
    const __m512 s = _mm512_set1_ps(j->s), z = _mm512_set1_ps(j->z), lo = _mm512_set1_ps(j->lo), hi = _mm512_set1_ps(j->hi);
    for (ptrdiff_t i = a; i < b; i += 16) {
        const __mmask16 m = lanes16(b - i);
        const __m512 r = _mm512_add_ps(_mm512_roundscale_ps(_mm512_div_ps(_mm512_maskz_loadu_ps(m, j->x + i), s),
                                                            _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), z);
        if (j->g) {
            const __mmask16 in = _mm512_cmp_ps_mask(r, lo, _CMP_GE_OQ) & _mm512_cmp_ps_mask(r, hi, _CMP_LE_OQ);
            _mm512_mask_storeu_ps(j->y + i, m, _mm512_maskz_loadu_ps(m & in, j->g + i));
        } else {
            __m512 q = _mm512_min_ps(_mm512_max_ps(r, lo), hi);
            q = _mm512_mask_mov_ps(q, _mm512_cmp_ps_mask(r, r, _CMP_UNORD_Q), z);
            const __m512 d = _mm512_sub_ps(q, z);
            _mm512_mask_storeu_ps(j->y + i, m, j->unscaled ? d : _mm512_mul_ps(d, s));
        }
    }
}
#endif

static void fq_plain(const fq_job *j, ptrdiff_t a, ptrdiff_t b) {
    for (ptrdiff_t i = a; i < b; i++) {
        const float r = nearbyintf(j->x[i] / j->s) + j->z;
        if (j->g) {
            j->y[i] = r >= j->lo && r <= j->hi ? j->g[i] : 0.0f;
        } else {
            const float q = isnan(r) ? j->z : (r < j->lo ? j->lo : r > j->hi ? j->hi : r);
            j->y[i] = j->unscaled ? q - j->z : (q - j->z) * j->s;
        }
    }
}

static void fq_task(void *ctx, ptrdiff_t t) {
    const fq_job *j = ctx;
    ptrdiff_t a, b;
    fq_range(j, t, &a, &b);
#if defined(__x86_64__)
    if (loupe_vmath_level() >= 2) { fq_avx512(j, a, b); return; }
#endif
    fq_plain(j, a, b);
}

static void fq_run(fq_job *j) {
    if (j->n <= 0) return;
    const ptrdiff_t threads = loupe_threads();
    j->tasks = threads > 1 && j->n >= 32768 ? 4 * threads : 1;
    if (j->tasks == 1) fq_task(j, 0);
    else loupe_parallel_for(j->tasks, fq_task, j);
}

void loupe_fake_quantize(const float *x, float *y, ptrdiff_t n, float scale, float zero_point, float lo, float hi) {
    fq_job j = { x, NULL, y, n, 1, scale, zero_point, lo, hi, 0 };
    fq_run(&j);
}

void loupe_quantize_shifted(const float *x, float *y, ptrdiff_t n, float scale, float zero_point, float lo, float hi) {
    fq_job j = { x, NULL, y, n, 1, scale, zero_point, lo, hi, 1 };
    fq_run(&j);
}

void loupe_fake_quantize_grad(const float *x, const float *g, float *gx, ptrdiff_t n, float scale, float zero_point,
                              float lo, float hi) {
    fq_job j = { x, g, gx, n, 1, scale, zero_point, lo, hi, 0 };
    fq_run(&j);
}
