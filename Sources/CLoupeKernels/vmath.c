// Vectorised element-wise math, broadcast arithmetic, softmax and row normalisation.
//
// The kernels are written once (vmath_body.h) and compiled for three widths with per-function
// target attributes, like gemm.c: no global -m flags, and the AVX code is only reached after the
// CPUID check in loupe_cpu_level(). Large problems are split over the persistent pool
// (loupe_parallel_for); the split points depend only on sizes, and every element's arithmetic is
// independent of the split, so results do not depend on the thread count.
#include "CLoupeVMath.h"
#include "CLoupeKernels.h"
#include <math.h>
#include <stdint.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#if defined(__x86_64__)
#define VW 16
#define VSUF avx512
#define VATTR __attribute__((target("avx512f,fma")))
#include "vmath_body.h"
#undef VW
#undef VSUF
#undef VATTR

#define VW 8
#define VSUF avx2
#define VATTR __attribute__((target("avx2,fma")))
#include "vmath_body.h"
#undef VW
#undef VSUF
#undef VATTR
#endif

#define VW 4
#define VSUF portable
#define VATTR
#include "vmath_body.h"
#undef VW
#undef VSUF
#undef VATTR

// MARK: - Dispatch

typedef struct {
    void (*unary)(int, const float *, float *, ptrdiff_t, float, float);
    void (*deriv)(int, const float *, const float *, float *, ptrdiff_t, float, float);
    void (*binary_row)(int, const float *, ptrdiff_t, const float *, ptrdiff_t, float *, ptrdiff_t);
    void (*softmax_rows)(const float *, float *, ptrdiff_t, ptrdiff_t, int);
    void (*softmax_cols)(const float *, float *, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, int);
    void (*softmax_back_rows)(const float *, const float *, float *, ptrdiff_t, ptrdiff_t, int);
    void (*softmax_back_cols)(const float *, const float *, float *, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, int);
    void (*normalize_row)(const float *, float *, ptrdiff_t, float, const float *, ptrdiff_t, const float *,
                          ptrdiff_t, float *, float *);
    void (*normalize_row_backward)(const float *, const float *, ptrdiff_t, float, float, const float *, ptrdiff_t,
                                   float, float, float *, float *, float *, float *);
} vmath_path;

#define PATH(S) { unary_range_##S, deriv_range_##S, binary_row_##S, softmax_rows_##S, softmax_cols_##S, \
                  softmax_back_rows_##S, softmax_back_cols_##S, normalize_row_##S, normalize_row_backward_##S }
static const vmath_path paths[3] = {
    PATH(portable),
#if defined(__x86_64__)
    PATH(avx2), PATH(avx512),
#else
    PATH(portable), PATH(portable),
#endif
};

static int forced_level = -1;
static int use_reference = 0;

void loupe_vmath_use_reference(int on) { use_reference = on != 0; }
int loupe_vmath_reference(void) { return use_reference; }

void loupe_vmath_force_level(int level) { forced_level = level; }

int loupe_vmath_level(void) {
    int cpu = loupe_cpu_level();
    if (forced_level >= 0 && forced_level <= cpu) return forced_level;
    return cpu;
}

static const vmath_path *path(void) { return &paths[loupe_vmath_level()]; }

/// Below this many elements a problem stays on the calling thread. One AVX-512 core streams
/// 256K floats (1 MiB, L2-resident) in ~20-60 µs, comparable to waking a sleeping worker; on
/// the shared 2-core machine, threads 1 vs 2 measured the same up to 1M elements (the worker
/// rarely got the other core in time), so only larger problems are split.
#define PARALLEL_MIN (1 << 18)
/// How many times a streaming pass's cost per element the transcendental functions take
/// (exponential, erf: 16-60 cycles per 16 floats on Zen 4, against a few for an add), so that
/// they split from PARALLEL_MIN / TRANSCENDENTAL_WEIGHT elements on. ViT-tiny's GELU (151K
/// floats, ~150 µs on one thread) and its softmax (116K, ~70 µs) stayed on one thread below
/// the streaming threshold while a worker spun idle beside them.
#define TRANSCENDENTAL_WEIGHT 8
/// Elements per task for streaming kernels: a few tasks per thread balance the load. `weight`
/// is the cost per element relative to a streaming pass (1, or TRANSCENDENTAL_WEIGHT).
static ptrdiff_t tasks_for_weighted(ptrdiff_t elements, ptrdiff_t weight) {
    int t = loupe_threads();
    ptrdiff_t work = elements * weight;
    if (t <= 1 || work < PARALLEL_MIN) return 1;
    ptrdiff_t tasks = 4 * (ptrdiff_t)t;
    ptrdiff_t most = work / (PARALLEL_MIN / 4);
    return tasks < most ? tasks : most;
}

static ptrdiff_t tasks_for(ptrdiff_t elements) { return tasks_for_weighted(elements, 1); }

/// Unary ops that are piecewise linear (a compare, a multiply) stream; the rest evaluate an
/// exponential or a polynomial of similar cost.
static ptrdiff_t unary_weight(int op) {
    switch (op) {
    case LOUPE_VU_RELU: case LOUPE_VU_LEAKY_RELU: case LOUPE_VU_CLIP: case LOUPE_VU_HARD_SIGMOID:
    case LOUPE_VU_HARD_SWISH: case LOUPE_VU_SHIFT_DIVIDE:
        return 1;
    default:
        return TRANSCENDENTAL_WEIGHT;
    }
}

/// The same for derivatives: only those that evaluate a transcendental function from x weigh more.
static ptrdiff_t deriv_weight(int op) {
    switch (op) {
    case LOUPE_VD_GELU: case LOUPE_VD_GELU_TANH: case LOUPE_VD_ERF: case LOUPE_VD_SILU:
        return TRANSCENDENTAL_WEIGHT;
    default:
        return 1;
    }
}

/// [lo, hi) of task i when `count` items are cut into `tasks` pieces, aligned to 64 items.
static void piece(ptrdiff_t count, ptrdiff_t tasks, ptrdiff_t i, ptrdiff_t *lo, ptrdiff_t *hi) {
    ptrdiff_t per = (count + tasks - 1) / tasks;
    if (count >= 64 * tasks) per = (per + 63) & ~(ptrdiff_t)63;
    *lo = i * per < count ? i * per : count;
    *hi = *lo + per < count ? *lo + per : count;
}

/// [lo, hi) of task i when `count` rows are cut into `tasks` near-equal runs. Rows are not
/// aligned like `piece`'s elements: 591 attention rows in 64-row units ran as 5 tasks of 8.
static void row_piece(ptrdiff_t count, ptrdiff_t tasks, ptrdiff_t i, ptrdiff_t *lo, ptrdiff_t *hi) {
    *lo = count * i / tasks;
    *hi = count * (i + 1) / tasks;
}

// MARK: - Unary and derivative

typedef struct {
    const vmath_path *p;
    int op;
    const float *x, *g;
    float *y;
    ptrdiff_t n, tasks;
    float p0, p1;
} unary_job;

static void unary_task(void *ctx, ptrdiff_t i) {
    const unary_job *j = ctx;
    ptrdiff_t lo, hi;
    piece(j->n, j->tasks, i, &lo, &hi);
    if (lo >= hi) return;
    if (j->g) j->p->deriv(j->op, j->x + lo, j->g + lo, j->y + lo, hi - lo, j->p0, j->p1);
    else j->p->unary(j->op, j->x + lo, j->y + lo, hi - lo, j->p0, j->p1);
}

void loupe_vunary(int op, const float *x, float *y, ptrdiff_t n, float p0, float p1) {
    if (n <= 0) return;
    unary_job j = { path(), op, x, NULL, y, n, tasks_for_weighted(n, unary_weight(op)), p0, p1 };
    if (j.tasks == 1) unary_task(&j, 0);
    else loupe_parallel_for(j.tasks, unary_task, &j);
}

void loupe_vunary_serial(int op, const float *x, float *y, ptrdiff_t n, float p0, float p1) {
    if (n > 0) path()->unary(op, x, y, n, p0, p1);
}

#if defined(__x86_64__)
/// v - v is exactly 0 for finite v and NaN for infinities and NaN: one sum tells, no branch.
__attribute__((target("avx512f")))
static int all_finite_avx512(const float *x, ptrdiff_t n) {
    __m512 acc = _mm512_setzero_ps();
    ptrdiff_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        acc = _mm512_add_ps(acc, _mm512_sub_ps(v, v));
    }
    if (i < n) {
        __m512 v = _mm512_maskz_loadu_ps((__mmask16)((1u << (n - i)) - 1), x + i);
        acc = _mm512_add_ps(acc, _mm512_sub_ps(v, v));
    }
    return _mm512_cmp_ps_mask(acc, acc, _CMP_UNORD_Q) == 0;
}
#endif

/// 16 interleaved lanes, each `x < acc ? x : acc` (min) or `x > acc ? x : acc` (max) as Swift's
/// min/max, folded pairwise at the end: one body for every CPU, so every path agrees.
#define EXTREMUM_BODY                                                                                \
    float acc[16];                                                                                   \
    for (int j = 0; j < 16; j++) acc[j] = want_max ? -INFINITY : INFINITY;                           \
    ptrdiff_t i = 0;                                                                                 \
    if (want_max) {                                                                                  \
        for (; i + 16 <= n; i += 16)                                                                 \
            for (int j = 0; j < 16; j++) acc[j] = x[i + j] > acc[j] ? x[i + j] : acc[j];             \
    } else {                                                                                         \
        for (; i + 16 <= n; i += 16)                                                                 \
            for (int j = 0; j < 16; j++) acc[j] = x[i + j] < acc[j] ? x[i + j] : acc[j];             \
    }                                                                                                \
    for (int w = 8; w >= 1; w /= 2)                                                                  \
        for (int j = 0; j < w; j++)                                                                  \
            acc[j] = want_max ? (acc[j + w] > acc[j] ? acc[j + w] : acc[j])                          \
                              : (acc[j + w] < acc[j] ? acc[j + w] : acc[j]);                         \
    float r = acc[0];                                                                                \
    for (; i < n; i++) r = want_max ? (x[i] > r ? x[i] : r) : (x[i] < r ? x[i] : r);                 \
    return r;

#if defined(__x86_64__)
__attribute__((target("avx512f")))
static float extremum_avx512(const float *x, ptrdiff_t n, int want_max) { EXTREMUM_BODY }
#endif
static float extremum_plain(const float *x, ptrdiff_t n, int want_max) { EXTREMUM_BODY }

float loupe_vextremum(const float *x, ptrdiff_t n, int want_max) {
#if defined(__x86_64__)
    if (loupe_vmath_level() >= 2) return extremum_avx512(x, n, want_max);
#endif
    return extremum_plain(x, n, want_max);
}

/// Output row r = top·(1 − f) + bottom·f with top/bottom rows y0[r]/y1[r] of `rows`; products and
/// sum as separate operations (no fused multiply-add), so every path rounds alike. Tracks the
/// extrema with `x < lo ? x : lo` / `x > hi ? x : hi` per lane (NaN never replaces them).
#define BLEND_BODY(...)                                                                                \
    float lo = INFINITY, hi = -INFINITY;                                                              \
    for (ptrdiff_t r = 0; r < height; r++) {                                                          \
        const float *t = rows + (ptrdiff_t)y0[r] * width, *b = rows + (ptrdiff_t)y1[r] * width;       \
        float *o = out + r * width;                                                                   \
        const float f = fy[r], g = 1 - f;                                                             \
        ptrdiff_t x = 0;                                                                              \
        __VA_ARGS__                                                                                   \
        for (; x < width; x++) {                                                                      \
            const float u = t[x] * g;                                                                 \
            const float v = b[x] * f;                                                                 \
            const float y = u + v;                                                                    \
            o[x] = y;                                                                                 \
            lo = y < lo ? y : lo;                                                                     \
            hi = y > hi ? y : hi;                                                                     \
        }                                                                                             \
    }                                                                                                 \
    lohi[0] = lo;                                                                                     \
    lohi[1] = hi;

#if defined(__x86_64__)
__attribute__((target("avx512f")))
static void blend_rows_avx512(const float *rows, ptrdiff_t width, const int32_t *y0, const int32_t *y1, const float *fy,
                              ptrdiff_t height, float *out, float *lohi) {
    __m512 vlo = _mm512_set1_ps(INFINITY), vhi = _mm512_set1_ps(-INFINITY);
    BLEND_BODY({
        const __m512 vg = _mm512_set1_ps(g), vf = _mm512_set1_ps(f);
        for (; x + 16 <= width; x += 16) {
            const __m512 y = _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(t + x), vg), _mm512_mul_ps(_mm512_loadu_ps(b + x), vf));
            _mm512_storeu_ps(o + x, y);
            vlo = _mm512_min_ps(y, vlo);
            vhi = _mm512_max_ps(y, vhi);
        }
    })
    const float vl = _mm512_reduce_min_ps(vlo), vh = _mm512_reduce_max_ps(vhi);
    lohi[0] = vl < lohi[0] ? vl : lohi[0];
    lohi[1] = vh > lohi[1] ? vh : lohi[1];
}
#endif

void loupe_blend_rows(const float *rows, ptrdiff_t width, const int32_t *y0, const int32_t *y1, const float *fy,
                      ptrdiff_t height, float *out, float *lohi) {
#if defined(__x86_64__)
    if (loupe_vmath_level() >= 2) { blend_rows_avx512(rows, width, y0, y1, fy, height, out, lohi); return; }
#endif
    BLEND_BODY()
}

int loupe_all_finite(const float *x, ptrdiff_t n) {
#if defined(__x86_64__)
    if (loupe_vmath_level() >= 2) return all_finite_avx512(x, n);
#endif
    for (ptrdiff_t i = 0; i < n; i++) if (!isfinite(x[i])) return 0;
    return 1;
}

void loupe_vderiv(int op, const float *v, const float *g, float *gx, ptrdiff_t n, float p0, float p1) {
    if (n <= 0) return;
    unary_job j = { path(), op, v, g, gx, n, tasks_for_weighted(n, deriv_weight(op)), p0, p1 };
    if (j.tasks == 1) unary_task(&j, 0);
    else loupe_parallel_for(j.tasks, unary_task, &j);
}

// MARK: - Binary

typedef struct {
    const vmath_path *p;
    int op;
    const float *a, *b;
    float *y;
    ptrdiff_t aRow, aInner, bRow, bInner, rows, n;
    ptrdiff_t tasks, piecesPerRow;
} binary_job;

static void binary_task(void *ctx, ptrdiff_t i) {
    const binary_job *j = ctx;
    if (j->piecesPerRow > 1) {
        // Few long rows: split each row.
        ptrdiff_t r = i / j->piecesPerRow, lo, hi;
        piece(j->n, j->piecesPerRow, i % j->piecesPerRow, &lo, &hi);
        if (lo >= hi) return;
        j->p->binary_row(j->op, j->a + r * j->aRow + lo * j->aInner, j->aInner, j->b + r * j->bRow + lo * j->bInner,
                         j->bInner, j->y + r * j->n + lo, hi - lo);
        return;
    }
    ptrdiff_t lo, hi;
    row_piece(j->rows, j->tasks, i, &lo, &hi);
    for (ptrdiff_t r = lo; r < hi; r++) {
        j->p->binary_row(j->op, j->a + r * j->aRow, j->aInner, j->b + r * j->bRow, j->bInner, j->y + r * j->n, j->n);
    }
}

void loupe_vbinary(int op, const float *a, ptrdiff_t aRow, ptrdiff_t aInner,
                   const float *b, ptrdiff_t bRow, ptrdiff_t bInner, float *y, ptrdiff_t rows, ptrdiff_t n) {
    if (rows <= 0 || n <= 0) return;
    binary_job j = { path(), op, a, b, y, aRow, aInner ? 1 : 0, bRow, bInner ? 1 : 0, rows, n, 1, 1 };
    ptrdiff_t tasks = tasks_for(rows * n);
    if (tasks > 1) {
        if (rows >= tasks) {
            j.tasks = tasks;
        } else {
            j.piecesPerRow = (tasks + rows - 1) / rows;
            j.tasks = rows * j.piecesPerRow;
        }
        loupe_parallel_for(j.tasks, binary_task, &j);
    } else {
        binary_task(&j, 0);
    }
}

// MARK: - Softmax

typedef struct {
    const vmath_path *p;
    const float *x, *g;
    float *y;
    ptrdiff_t outer, d, inner, tasks, piecesPerOuter;
    int lg;
} softmax_job;

static void softmax_task(void *ctx, ptrdiff_t i) {
    const softmax_job *j = ctx;
    ptrdiff_t block = j->d * j->inner;
    if (j->inner == 1) {
        ptrdiff_t lo, hi;
        row_piece(j->outer, j->tasks, i, &lo, &hi);
        if (lo >= hi) return;
        if (j->g) j->p->softmax_back_rows(j->x + lo * block, j->g + lo * block, j->y + lo * block, hi - lo, j->d, j->lg);
        else j->p->softmax_rows(j->x + lo * block, j->y + lo * block, hi - lo, j->d, j->lg);
        return;
    }
    // Strided axis: tasks are (outer block, range of inner columns).
    ptrdiff_t o = i / j->piecesPerOuter, lo, hi;
    piece(j->inner, j->piecesPerOuter, i % j->piecesPerOuter, &lo, &hi);
    if (lo >= hi) return;
    const float *x = j->x + o * block;
    float *y = j->y + o * block;
    if (j->g) j->p->softmax_back_cols(x, j->g + o * block, y, j->d, j->inner, lo, hi, j->lg);
    else j->p->softmax_cols(x, y, j->d, j->inner, lo, hi, j->lg);
}

static void softmax_run(const float *x, const float *g, float *y, ptrdiff_t outer, ptrdiff_t d, ptrdiff_t inner, int lg) {
    if (outer <= 0 || d <= 0 || inner <= 0) return;
    softmax_job j = { path(), x, g, y, outer, d, inner, 1, 1, lg };
    ptrdiff_t tasks = tasks_for_weighted(outer * d * inner, TRANSCENDENTAL_WEIGHT);
    if (inner == 1) {
        j.tasks = tasks < outer ? tasks : outer;
    } else {
        j.piecesPerOuter = outer >= tasks ? 1 : (tasks + outer - 1) / outer;
        if (j.piecesPerOuter > inner) j.piecesPerOuter = inner;
        j.tasks = outer * j.piecesPerOuter;
    }
    if (j.tasks == 1 || tasks == 1) {
        for (ptrdiff_t i = 0; i < j.tasks; i++) softmax_task(&j, i);
    } else {
        loupe_parallel_for(j.tasks, softmax_task, &j);
    }
}

void loupe_softmax(const float *x, float *y, ptrdiff_t outer, ptrdiff_t d, ptrdiff_t inner, int log) {
    softmax_run(x, NULL, y, outer, d, inner, log);
}

void loupe_softmax_backward(const float *y, const float *g, float *gx, ptrdiff_t outer, ptrdiff_t d,
                            ptrdiff_t inner, int log) {
    softmax_run(y, g, gx, outer, d, inner, log);
}

// MARK: - Normalisation

typedef struct {
    const vmath_path *p;
    const float *x;
    float *y;
    ptrdiff_t rows, d;
    float eps;
    const float *scale, *bias;
    ptrdiff_t sRow, sInner, bRow, bInner, tasks;
    float *mean, *inv;
} norm_job;

static void norm_task(void *ctx, ptrdiff_t i) {
    const norm_job *j = ctx;
    ptrdiff_t lo, hi;
    row_piece(j->rows, j->tasks, i, &lo, &hi);
    for (ptrdiff_t r = lo; r < hi; r++) {
        j->p->normalize_row(j->x + r * j->d, j->y ? j->y + r * j->d : NULL, j->d, j->eps,
                            j->scale ? j->scale + r * j->sRow : NULL, j->sInner,
                            j->bias ? j->bias + r * j->bRow : NULL, j->bInner,
                            j->mean ? j->mean + r : NULL, j->inv ? j->inv + r : NULL);
    }
}

void loupe_normalize_rows(const float *x, float *y, ptrdiff_t rows, ptrdiff_t d, float eps,
                          const float *scale, ptrdiff_t scaleRow, ptrdiff_t scaleInner,
                          const float *bias, ptrdiff_t biasRow, ptrdiff_t biasInner,
                          float *mean, float *invStd) {
    if (rows <= 0 || d <= 0) return;
    ptrdiff_t tasks = tasks_for(rows * d);
    if (tasks > rows) tasks = rows;
    norm_job j = { path(), x, y, rows, d, eps, scale, bias, scaleRow, scaleInner ? 1 : 0, biasRow, biasInner ? 1 : 0,
                   tasks, mean, invStd };
    if (tasks == 1) norm_task(&j, 0);
    else loupe_parallel_for(tasks, norm_task, &j);
}

void loupe_normalize_row_backward(const float *x, const float *g, ptrdiff_t d, float mean, float invStd,
                                  const float *scale, ptrdiff_t scaleInner, float gMean, float gInvStd,
                                  float *gx, float *gScaleAcc, float *gBiasAcc, float *sums) {
    if (d <= 0) {
        if (sums) { sums[0] = 0; sums[1] = 0; }
        return;
    }
    path()->normalize_row_backward(x, g, d, mean, invStd, scale, scaleInner ? 1 : 0, gMean, gInvStd, gx, gScaleAcc,
                                   gBiasAcc, sums);
}
