// Global average pooling and its adjoint over whole (planes, size) buffers, parallel over
// planes. The sum uses several vector accumulators, so its rounding differs from a sequential
// float sum by a few ulp only (both are within float tolerance of the exact mean).
#include "CLoupeWindow.h"

#if defined(__x86_64__)
#include <immintrin.h>

static __attribute__((target("avx512f"))) float plane_sum_avx512(const float *x, ptrdiff_t size) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
    ptrdiff_t i = 0;
    for (; i + 64 <= size; i += 64) {
        a0 = _mm512_add_ps(a0, _mm512_loadu_ps(x + i));
        a1 = _mm512_add_ps(a1, _mm512_loadu_ps(x + i + 16));
        a2 = _mm512_add_ps(a2, _mm512_loadu_ps(x + i + 32));
        a3 = _mm512_add_ps(a3, _mm512_loadu_ps(x + i + 48));
    }
    for (; i < size; i += 16) {
        ptrdiff_t left = size - i;
        __mmask16 m = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
        a0 = _mm512_add_ps(a0, _mm512_maskz_loadu_ps(m, x + i));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

static __attribute__((target("avx512f"))) void plane_fill_avx512(float *x, ptrdiff_t size, float v) {
    __m512 vv = _mm512_set1_ps(v);
    ptrdiff_t i = 0;
    for (; i + 16 <= size; i += 16) _mm512_storeu_ps(x + i, vv);
    if (i < size) _mm512_mask_storeu_ps(x + i, (__mmask16)((1u << (size - i)) - 1u), vv);
}
#endif

static float plane_sum_portable(const float *x, ptrdiff_t size) {
    float a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    ptrdiff_t i = 0;
    for (; i + 8 <= size; i += 8)
        for (int k = 0; k < 8; k++) a[k] += x[i + k];
    float s = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
    for (; i < size; i++) s += x[i];
    return s;
}

typedef struct {
    const float *src;
    float *dst;
    ptrdiff_t planes, size, chunk;
    int level;
} gp_job;

static void avg_task(void *ctx, ptrdiff_t task) {
    const gp_job *j = ctx;
    ptrdiff_t p1 = (task + 1) * j->chunk < j->planes ? (task + 1) * j->chunk : j->planes;
    for (ptrdiff_t p = task * j->chunk; p < p1; p++) {
        const float *x = j->src + p * j->size;
#if defined(__x86_64__)
        float s = j->level >= 2 ? plane_sum_avx512(x, j->size) : plane_sum_portable(x, j->size);
#else
        float s = plane_sum_portable(x, j->size);
#endif
        j->dst[p] = s / (float)j->size;
    }
}

static void avg_grad_task(void *ctx, ptrdiff_t task) {
    const gp_job *j = ctx;
    ptrdiff_t p1 = (task + 1) * j->chunk < j->planes ? (task + 1) * j->chunk : j->planes;
    for (ptrdiff_t p = task * j->chunk; p < p1; p++) {
        float *gx = j->dst + p * j->size, v = j->src[p] / (float)j->size;
#if defined(__x86_64__)
        if (j->level >= 2) { plane_fill_avx512(gx, j->size, v); continue; }
#endif
        for (ptrdiff_t i = 0; i < j->size; i++) gx[i] = v;
    }
}

/// Splits `planes` into tasks of at least ~32K elements (below that the hand-off costs more).
static void run(gp_job *j, loupe_task_fn fn) {
    if (j->planes <= 0 || j->size <= 0) return;
    ptrdiff_t chunk = (32768 + j->size - 1) / j->size;
    ptrdiff_t cap = j->planes / (4 * loupe_threads());
    if (chunk > cap) chunk = cap;
    j->chunk = chunk < 1 ? 1 : chunk;
    ptrdiff_t tasks = (j->planes + j->chunk - 1) / j->chunk;
    if (j->planes * j->size < 65536) { for (ptrdiff_t t = 0; t < tasks; t++) fn(j, t); return; }
    loupe_parallel_for(tasks, fn, j);
}

void loupe_global_avgpool(const float *x, ptrdiff_t planes, ptrdiff_t size, float *y) {
    gp_job j = { x, y, planes, size, 1, loupe_window_level() };
    run(&j, avg_task);
}

void loupe_global_avgpool_grad(const float *gy, ptrdiff_t planes, ptrdiff_t size, float *gx) {
    gp_job j = { gy, gx, planes, size, 1, loupe_window_level() };
    run(&j, avg_grad_task);
}
