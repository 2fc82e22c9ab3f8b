// GEMM with a pre-packed A operand, and convolution as such a GEMM with the im2col matrix
// never materialised.
//
// A convolution's weights are constant for the life of a model, so they are packed into the
// micro-kernel's row panels once, at load, instead of on every call (the plain GEMM re-packs A
// per call and, when split over threads, once per thread). The B operand, the im2col matrix, is
// packed straight from the input image into one kc x nr panel at a time, right before the
// micro-kernel sweeps all of M over it, so the panel is still in L1 when it is read; there is no
// separate im2col pass and no column buffer. Bias and ReLU are applied to each C tile after its
// last k block, while the tile is in L1.
#include "CLoupeKernels.h"
#include "gemm_internal.h"
#include "transpose16.h"
#include "lane_mask.h"
#include "activate.h"
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

/// Depth of the k blocks of an M x K operand: K split into equal blocks of at most KC, so a
/// K of 576 runs as 3 x 192 rather than 256 + 256 + 64 (a short last block pays the C tile's
/// load and store for little arithmetic).
static ptrdiff_t k_step(ptrdiff_t K) {
    ptrdiff_t blocks = (K + KC - 1) / KC;
    return blocks <= 1 ? K : (K + blocks - 1) / blocks;
}

struct loupe_packed_b {
    int level;
    int transB;  // how B was read: stored K x N (0) or N x K (1)
    ptrdiff_t K, N, Npad;
    float *data; // pack_b_blocks layout: k block pc at data + pc*Npad, column panel j at + j*kc
    _Atomic(struct loupe_packed_b *) transposed; // op(B)^T, made on first use (a backward pass)
};

struct loupe_packed_a {
    int level;        // GEMM path the panels were laid out for
    ptrdiff_t M, K;
    ptrdiff_t Mpad;   // M rounded up to the path's mr
    float *data;      // k block at p0: data + p0*Mpad; its panel of rows i0: + i0*kc
    // The source (kept alive by the owner) and op(A)^T packed on first use, for adjoints.
    const float *src;
    ptrdiff_t lda;
    int transA;
    _Atomic(struct loupe_packed_a *) transposed;
    _Atomic(struct loupe_packed_a *) adjoint; // conv weights flipped for the input gradient
    _Atomic(loupe_winograd *) winograd[4];    // 3x3 weights in the Winograd domain: forward, adjoint, forward F(2x2), adjoint F(2x2)
    _Atomic(struct loupe_packed_b *) wt;      // op(A)^T as a packed B operand (conv_transposed)
    // An adjoint's flipped matrix is not kept (src is NULL): its forward weight (kept alive by the
    // owner of the forward panels, which owns this one) and tap count rebuild it when wt is made.
    const float *flipOf;
    ptrdiff_t flipLda, flipTaps;
};

typedef struct {
    loupe_packed_a *p;
    const float *A;
    ptrdiff_t rs, cs, step, panelsPerTask, panels;
    int mr;
} pack_a_job;

/// Packs k block t / tasksPerBlock, panels [..] of it: tasks cover (k block, run of panels).
static void pack_a_task(void *ctx, ptrdiff_t t) {
    const pack_a_job *j = ctx;
    ptrdiff_t tasksPerBlock = (j->panels + j->panelsPerTask - 1) / j->panelsPerTask;
    ptrdiff_t pc = (t / tasksPerBlock) * j->step, first = (t % tasksPerBlock) * j->panelsPerTask;
    ptrdiff_t kc = j->p->K - pc < j->step ? j->p->K - pc : j->step;
    ptrdiff_t i0 = first * j->mr, rows = j->panelsPerTask * j->mr;
    if (i0 + rows > j->p->M) rows = j->p->M - i0;
    loupe_pack_a_panels(j->A + pc * j->cs + i0 * j->rs, j->rs, j->cs, rows, kc, j->mr, j->p->data + pc * j->p->Mpad + i0 * kc);
}

static loupe_packed_a *create_packed(int transA, ptrdiff_t M, ptrdiff_t K, const float *A, ptrdiff_t lda, int parallel) {
    if (M <= 0 || K <= 0) return NULL;
    int level = loupe_gemm_level();
    const gemm_path *path = &loupe_gemm_paths[level];
    ptrdiff_t Mpad = (M + path->mr - 1) / path->mr * path->mr;
    size_t bytes = ((size_t)Mpad * (size_t)K * sizeof(float) + 63) & ~(size_t)63;
    loupe_packed_a *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->data = aligned_alloc(64, bytes);
    if (!p->data) { free(p); return NULL; }
    p->level = level;
    p->M = M;
    p->K = K;
    p->Mpad = Mpad;
    p->src = A;
    p->lda = lda;
    p->transA = transA;
    atomic_init(&p->transposed, NULL);
    atomic_init(&p->adjoint, NULL);
    atomic_init(&p->winograd[0], NULL);
    atomic_init(&p->winograd[1], NULL);
    atomic_init(&p->winograd[2], NULL);
    atomic_init(&p->winograd[3], NULL);
    atomic_init(&p->wt, NULL);
    pack_a_job j = {p, A, transA ? 1 : lda, transA ? lda : 1, k_step(K), 0, Mpad / path->mr, path->mr};
    ptrdiff_t blocks = (K + j.step - 1) / j.step;
    // Parallel: about four tasks per thread in all; serial: one task per k block.
    ptrdiff_t perBlock = parallel ? (4 * loupe_threads() + blocks - 1) / blocks : 1;
    if (perBlock < 1) perBlock = 1;
    j.panelsPerTask = (j.panels + perBlock - 1) / perBlock;
    ptrdiff_t tasks = blocks * ((j.panels + j.panelsPerTask - 1) / j.panelsPerTask);
    if (parallel) loupe_parallel_for(tasks, pack_a_task, &j);
    else for (ptrdiff_t t = 0; t < tasks; t++) pack_a_task(&j, t);
    return p;
}

loupe_packed_a *loupe_packed_a_create(int transA, ptrdiff_t M, ptrdiff_t K, const float *A, ptrdiff_t lda) {
    return create_packed(transA, M, K, A, lda, 0);
}

void loupe_packed_a_destroy(loupe_packed_a *p) {
    if (!p) return;
    loupe_packed_a_destroy(atomic_load(&p->transposed));
    loupe_packed_a_destroy(atomic_load(&p->adjoint));
    loupe_winograd_destroy(atomic_load(&p->winograd[0]));
    loupe_winograd_destroy(atomic_load(&p->winograd[1]));
    loupe_winograd_destroy(atomic_load(&p->winograd[2]));
    loupe_winograd_destroy(atomic_load(&p->winograd[3]));
    loupe_packed_b_destroy(atomic_load(&p->wt));
    free(p->data);
    free(p);
}

static const loupe_packed_a *publish(_Atomic(loupe_packed_a *) *slot, loupe_packed_a *made);

const loupe_packed_a *loupe_packed_a_transpose(loupe_packed_a *p) {
    if (!p || !p->src) return NULL;
    loupe_packed_a *t = atomic_load_explicit(&p->transposed, memory_order_acquire);
    if (t && t->level == loupe_gemm_level()) return t;
    if (t) return NULL; // packed for another path; the caller packs for this call
    loupe_packed_a *made = loupe_packed_a_create(!p->transA, p->K, p->M, p->src, p->lda);
    if (!made) return NULL;
    // Two threads may race to pack; the loser frees its copy and uses the winner's.
    return publish(&p->transposed, made);
}

int loupe_packed_a_matches(const loupe_packed_a *p) { return p && p->level == loupe_gemm_level(); }

/// Keeps `made` in `*slot` unless another thread got there first; returns what is kept if it
/// suits the GEMM path in force, else NULL.
static const loupe_packed_a *publish(_Atomic(loupe_packed_a *) *slot, loupe_packed_a *made) {
    loupe_packed_a *expected = NULL;
    if (!atomic_compare_exchange_strong_explicit(slot, &expected, made, memory_order_acq_rel, memory_order_acquire)) {
        loupe_packed_a_destroy(made);
        return expected->level == loupe_gemm_level() ? expected : NULL;
    }
    return made;
}

/// The flipped, channel-transposed kernel (C x M*kk, malloc'd; NULL when memory is short) of the
/// M x C*kk weight w (row stride lda): flipped[c][m*kk + t] = W[m][c][kk-1-t]. The input gradient
/// of a stride-1 convolution is a convolution of the output gradient with it.
static float *flipped_kernel(const float *w, ptrdiff_t lda, ptrdiff_t M, ptrdiff_t C, ptrdiff_t kk) {
    float *flipped = malloc((size_t)C * (size_t)M * (size_t)kk * sizeof(float));
    if (!flipped) return NULL;
    for (ptrdiff_t c = 0; c < C; c++)
        for (ptrdiff_t m = 0; m < M; m++) {
            const float *wm = w + m * lda + c * kk;
            float *d = flipped + c * M * kk + m * kk;
            for (ptrdiff_t q = 0; q < kk; q++) d[q] = wm[kk - 1 - q];
        }
    return flipped;
}

const loupe_packed_a *loupe_packed_a_conv_adjoint(loupe_packed_a *p, ptrdiff_t kk) {
    if (!p || !p->src || p->transA || kk <= 0 || p->K % kk) return NULL;
    loupe_packed_a *t = atomic_load_explicit(&p->adjoint, memory_order_acquire);
    if (t) return t->level == loupe_gemm_level() ? t : NULL;
    const ptrdiff_t M = p->M, C = p->K / kk;
    float *flipped = flipped_kernel(p->src, p->lda, M, C, kk);
    if (!flipped) return NULL;
    loupe_packed_a *made = loupe_packed_a_create(0, C, M * kk, flipped, M * kk);
    free(flipped);
    if (!made) return NULL;
    // The temporary is gone: no transpose of this one; its transposed-B panels (few-pixel maps)
    // are made from the forward weight when first asked for.
    made->src = NULL;
    made->flipOf = p->src;
    made->flipLda = p->lda;
    made->flipTaps = kk;
    return publish(&p->adjoint, made);
}

const loupe_winograd *loupe_packed_a_winograd(loupe_packed_a *p, int kind) {
    if (!p || !p->src || p->transA || p->K % 9 || kind < 0 || kind > 3) return NULL;
    const int adjoint = kind == 1 || kind == 3, tile = kind >= 2 ? 2 : 4;
    _Atomic(loupe_winograd *) *slot = &p->winograd[kind];
    loupe_winograd *t = atomic_load_explicit(slot, memory_order_acquire);
    if (t) return loupe_winograd_matches(t) ? t : NULL;
    const ptrdiff_t C = p->K / 9;
    // Forward: (o = m, i = c) at src[m*lda + c*9]; adjoint: (o = c, i = m), taps flipped.
    loupe_winograd *made = adjoint ? loupe_winograd_create(p->src, C, p->M, 9, p->lda, 1, tile)
                                   : loupe_winograd_create(p->src, p->M, C, p->lda, 9, 0, tile);
    if (!made) return NULL;
    loupe_winograd *expected = NULL;
    if (!atomic_compare_exchange_strong_explicit(slot, &expected, made, memory_order_acq_rel, memory_order_acquire)) {
        loupe_winograd_destroy(made);
        return loupe_winograd_matches(expected) ? expected : NULL;
    }
    return made;
}

// MARK: - B sources

/// Where B's panels come from: a strided matrix, or the implicit im2col matrix of an image.
typedef struct {
    int conv;
    // matrix: element (k, j) at B[k*rs + j*cs], times rowScale[k] when rowScale is set (a
    // squeeze-excitation scale folded into the pointwise convolution that reads it)
    const float *B;
    ptrdiff_t rs, cs;
    const float *rowScale;
    // conv: rows k = (c, kh, kw), columns j = output pixel (oh, ow)
    const float *x;
    loupe_window2d g;
} b_source;

/// Packs rows [p0, p0+kc) and columns [j0, j0+nv) of B into one kc x nr panel (zero padded).
#if defined(__x86_64__)
/// Contiguous rows into a 32-wide panel: two (masked) vector copies per row instead of a memcpy
/// call, and the same rows' next 32 columns prefetched (each row of a 1x1 convolution's input is
/// a separate stream, too many for the hardware prefetcher to follow).
__attribute__((target("avx512f")))
static void pack_rows32_avx512(const float *src, ptrdiff_t rs, ptrdiff_t kc, ptrdiff_t nv, int more,
                               const float *scale, float *dst) {
    const __mmask16 m0 = nv >= 16 ? 0xFFFF : (__mmask16)((1u << nv) - 1);
    const __mmask16 m1 = nv >= 32 ? 0xFFFF : nv <= 16 ? 0 : (__mmask16)((1u << (nv - 16)) - 1);
    for (ptrdiff_t k = 0; k < kc; k++) {
        const float *r = src + k * rs;
        if (more) _mm_prefetch((const char *)(r + 32), _MM_HINT_T0);
        __m512 a = _mm512_maskz_loadu_ps(m0, r), b = _mm512_maskz_loadu_ps(m1, r + 16);
        if (scale) {
            const __m512 f = _mm512_set1_ps(scale[k]);
            a = _mm512_mul_ps(a, f);
            b = _mm512_mul_ps(b, f);
        }
        _mm512_store_ps(dst + 32 * k, a);
        _mm512_store_ps(dst + 32 * k + 16, b);
    }
}
#endif

static void pack_matrix_panel(const b_source *s, ptrdiff_t p0, ptrdiff_t kc, ptrdiff_t j0, ptrdiff_t nv, int nr,
                              float *dst) {
    const float *src = s->B + p0 * s->rs + j0 * s->cs;
    const float *scale = s->rowScale ? s->rowScale + p0 : NULL;
#if defined(__x86_64__)
    // 64-byte aligned panels (the thread buffer, the shared buffer at 32-float steps).
    if (s->cs == 1 && nr == 32 && ((uintptr_t)dst & 63) == 0 && loupe_cpu_level() >= 2) {
        pack_rows32_avx512(src, s->rs, kc, nv, nv == 32, scale, dst);
        return;
    }
#endif
    if (s->cs == 1 && !scale) {
        for (ptrdiff_t k = 0; k < kc; k++) {
            float *d = dst + k * nr;
            memcpy(d, src + k * s->rs, (size_t)nv * sizeof(float));
            for (ptrdiff_t j = nv; j < nr; j++) d[j] = 0.0f;
        }
    } else {
        for (ptrdiff_t k = 0; k < kc; k++) {
            float *d = dst + k * nr;
            const float *r = src + k * s->rs;
            const float f = scale ? scale[k] : 1.0f;
            for (ptrdiff_t j = 0; j < nv; j++) d[j] = scale ? r[j * s->cs] * f : r[j * s->cs];
            for (ptrdiff_t j = nv; j < nr; j++) d[j] = 0.0f;
        }
    }
}

/// One run of a panel's columns that lies in a single output row: panel columns [jj, jj+len)
/// are output pixels (oh, ow..ow+len).
typedef struct { ptrdiff_t jj, oh, ow, len; } panel_segment;

/// Splits panel columns [j0, j0+nv) at output-row boundaries (at most nv segments).
static int panel_segments(const loupe_window2d *g, ptrdiff_t j0, ptrdiff_t nv, panel_segment *seg) {
    int n = 0;
    ptrdiff_t jj = 0, oh = j0 / g->outW, ow = j0 % g->outW;
    while (jj < nv) {
        ptrdiff_t len = nv - jj < g->outW - ow ? nv - jj : g->outW - ow;
        seg[n].jj = jj; seg[n].oh = oh; seg[n].ow = ow; seg[n].len = len;
        n++;
        jj += len;
        ow = 0;
        oh++;
    }
    return n;
}

/// Input columns of one segment and tap: iw = (ow + t)*strideW + offW for t in [0, len); the
/// range [lo, hi) of t for which iw lies inside the row.
static inline void segment_valid(ptrdiff_t ow, ptrdiff_t len, ptrdiff_t sw, ptrdiff_t offW, ptrdiff_t inW,
                                 ptrdiff_t *lo, ptrdiff_t *hi) {
    ptrdiff_t first = ow * sw + offW; // iw at t = 0
    ptrdiff_t l = first >= 0 ? 0 : (-first + sw - 1) / sw;
    ptrdiff_t h = inW - 1 - first < 0 ? 0 : (inW - 1 - first) / sw + 1;
    if (h > len) h = len;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

/// im2col straight into a panel, portable: the panel's columns split into output-row segments
/// once; within a segment and a tap the input addresses advance by strideW, so each piece is a
/// bounded copy plus zero padding.
static void pack_conv_panel(const b_source *s, ptrdiff_t p0, ptrdiff_t kc, ptrdiff_t j0, ptrdiff_t nv, int nr,
                            float *dst) {
    const loupe_window2d *g = &s->g;
    const ptrdiff_t kk = g->kH * g->kW, plane = g->inH * g->inW;
    panel_segment seg[32];
    const int nseg = panel_segments(g, j0, nv, seg);
    ptrdiff_t c = p0 / kk, r = p0 % kk;
    ptrdiff_t kh = r / g->kW, kw = r % g->kW;
    for (ptrdiff_t k = 0; k < kc; k++) {
        float *d = dst + k * nr;
        const float *xc = s->x + c * plane;
        const ptrdiff_t offH = kh * g->dilH - g->padTop, offW = kw * g->dilW - g->padLeft;
        for (int q = 0; q < nseg; q++) {
            float *ds = d + seg[q].jj;
            ptrdiff_t ih = seg[q].oh * g->strideH + offH, len = seg[q].len, lo = 0, hi = 0;
            if (ih >= 0 && ih < g->inH) segment_valid(seg[q].ow, len, g->strideW, offW, g->inW, &lo, &hi);
            const float *src = xc + ih * g->inW + seg[q].ow * g->strideW + offW;
            for (ptrdiff_t t = 0; t < lo; t++) ds[t] = 0.0f;
            if (g->strideW == 1) for (ptrdiff_t t = lo; t < hi; t++) ds[t] = src[t];
            else for (ptrdiff_t t = lo; t < hi; t++) ds[t] = src[t * g->strideW];
            for (ptrdiff_t t = hi; t < len; t++) ds[t] = 0.0f;
        }
        for (ptrdiff_t j = nv; j < nr; j++) d[j] = 0.0f;
        if (++kw == g->kW) {
            kw = 0;
            if (++kh == g->kH) { kh = 0; c++; }
        }
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

/// One 16-lane piece of a packed row for one tap: lanes [lane, lane+16) of the row get the
/// input at channel base + src (+ 2t for stride 2), loading only the `valid` lanes and writing
/// only the `store` lanes.
typedef struct {
    ptrdiff_t src;
    int lane;
    __mmask16 store, valid;     // stride 1: lane masks
    __mmask16 vlo, vhi;         // stride 2: masks of the 32 inputs after src
} tap_piece;

/// The same with AVX-512 masked loads (a masked-off lane is never read, so the rows' ends and
/// the padding need no branches). Taps outer, channels inner: which lanes of a row are valid
/// and where they come from depends on the tap and the panel only, so it is worked out once
/// per tap and replayed for every channel. strideW 2 loads twice the span and keeps the even
/// lanes with one two-source permute; other strides take the portable loop.
__attribute__((target("avx512f")))
static void pack_conv_panel_avx512(const b_source *s, ptrdiff_t p0, ptrdiff_t kc, ptrdiff_t j0, ptrdiff_t nv, int nr,
                                   float *dst) {
    const loupe_window2d *g = &s->g;
    if (g->strideW > 2 || nr != 32) { pack_conv_panel(s, p0, kc, j0, nv, nr, dst); return; }
    const ptrdiff_t kk = g->kH * g->kW, plane = g->inH * g->inW, sw = g->strideW;
    panel_segment seg[32];
    const int nseg = panel_segments(g, j0, nv, seg);
    const __m512i evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    tap_piece piece[64];
    for (ptrdiff_t t = 0; t < kk; t++) {
        const ptrdiff_t kh = t / g->kW, kw = t % g->kW;
        // rows k = c*kk + t inside [p0, p0 + kc)
        ptrdiff_t cFirst = p0 <= t ? 0 : (p0 - t + kk - 1) / kk;
        ptrdiff_t kFirst = cFirst * kk + t;
        if (kFirst >= p0 + kc) continue;
        const ptrdiff_t offH = kh * g->dilH - g->padTop, offW = kw * g->dilW - g->padLeft;
        int np = 0;
        for (int q = 0; q < nseg; q++) {
            const ptrdiff_t len = seg[q].len, ih = seg[q].oh * g->strideH + offH;
            ptrdiff_t lo = 0, hi = 0;
            if (ih >= 0 && ih < g->inH) segment_valid(seg[q].ow, len, sw, offW, g->inW, &lo, &hi);
            const ptrdiff_t src = ih * g->inW + seg[q].ow * sw + offW;
            for (ptrdiff_t t0 = 0; t0 < len; t0 += 16) {
                ptrdiff_t n = len - t0 < 16 ? len - t0 : 16;
                ptrdiff_t a = lo - t0 < 0 ? 0 : lo - t0, b = hi - t0 > n ? n : hi - t0;
                tap_piece *pc = &piece[np++];
                pc->src = src + t0 * sw;
                pc->lane = (int)(seg[q].jj + t0);
                pc->store = (__mmask16)((1u << n) - 1u);
                pc->valid = b > a ? (__mmask16)(((1u << b) - 1u) & ~((1u << a) - 1u)) : 0;
                // stride 2: lane i reads input 2i; inputs [2a, 2b-1) (the odd ones in between are
                // in bounds and dropped by the permute)
                unsigned long long span = b > a ? ((1ull << (2 * b - 1)) - 1ull) & ~((1ull << (2 * a)) - 1ull) : 0;
                pc->vlo = (__mmask16)(span & 0xFFFFu);
                pc->vhi = (__mmask16)(span >> 16);
            }
        }
        if (nv < nr) { // lanes past the last column: a piece that writes zeros
            for (ptrdiff_t t0 = nv; t0 < nr; t0 += 16) {
                ptrdiff_t n = nr - t0 < 16 ? nr - t0 : 16;
                tap_piece *pc = &piece[np++];
                pc->src = 0;
                pc->lane = (int)t0;
                pc->store = (__mmask16)((1u << n) - 1u);
                pc->valid = pc->vlo = pc->vhi = 0;
            }
        }
        // Pieces outer, channels inner: a piece's masks and offsets stay in registers while the
        // loop walks the channels (input + plane, panel row + kk).
        const ptrdiff_t rows = (p0 + kc - kFirst + kk - 1) / kk;
        const float *x0 = s->x + (kFirst / kk) * plane;
        float *d0 = dst + (kFirst - p0) * nr;
        const ptrdiff_t dstride = kk * nr;
        for (int i = 0; i < np; i++) {
            const tap_piece pc = piece[i];
            const float *xs = x0 + pc.src;
            float *d = d0 + pc.lane;
            if (pc.valid == 0 && pc.vlo == 0 && pc.vhi == 0) {
                for (ptrdiff_t r = 0; r < rows; r++, d += dstride) _mm512_mask_storeu_ps(d, pc.store, _mm512_setzero_ps());
            } else if (sw == 1) {
                if (pc.store == 0xFFFF) {
                    for (ptrdiff_t r = 0; r < rows; r++, xs += plane, d += dstride)
                        _mm512_storeu_ps(d, _mm512_maskz_loadu_ps(pc.valid, xs));
                } else {
                    for (ptrdiff_t r = 0; r < rows; r++, xs += plane, d += dstride)
                        _mm512_mask_storeu_ps(d, pc.store, _mm512_maskz_loadu_ps(pc.valid, xs));
                }
            } else {
                for (ptrdiff_t r = 0; r < rows; r++, xs += plane, d += dstride) {
                    __m512 l = _mm512_maskz_loadu_ps(pc.vlo, xs);
                    __m512 h = _mm512_maskz_loadu_ps(pc.vhi, xs + 16);
                    _mm512_mask_storeu_ps(d, pc.store, _mm512_permutex2var_ps(l, evens, h));
                }
            }
        }
    }
}
#endif

// MARK: - Driver

typedef struct {
    const loupe_packed_a *a;
    b_source src;
    ptrdiff_t N;
    float alpha, beta;
    float *C;
    ptrdiff_t ldc;
    const float *bias;  // per row of C, or NULL
    const float *colBias; // per column of C (a Linear layer's bias), or NULL; never with bias or act
    int act;          // LOUPE_ACT_*: ReLU in the epilogue, other activations per finished block
    // split
    int splitRows;
    ptrdiff_t chunk;
    const float *bpacked; // all of B packed up front (row split), or NULL
    ptrdiff_t Npad;       // N rounded up to nr, for bpacked
} packed_job;

/// Adds the row bias and applies ReLU (NaN kept, as torch.relu) to an mv x nv tile of C.
static void epilogue(float *c, ptrdiff_t ldc, ptrdiff_t mv, ptrdiff_t nv, const float *bias, int relu) {
    for (ptrdiff_t i = 0; i < mv; i++) {
        float *row = c + i * ldc;
        const float b = bias ? bias[i] : 0.0f;
        if (relu) {
            for (ptrdiff_t j = 0; j < nv; j++) { float v = row[j] + b; row[j] = v < 0.0f ? 0.0f : v; }
        } else if (bias) {
            for (ptrdiff_t j = 0; j < nv; j++) row[j] += b;
        }
    }
}

/// C tile (mv x nv, row stride ldc) = tile (row stride ts) + beta * C, then the epilogue when
/// `fused`; portable.
static void merge_tile(float *c, ptrdiff_t ldc, const float *tile, ptrdiff_t ts, ptrdiff_t mv, ptrdiff_t nv, float beta,
                       int fused, const float *bias, int relu) {
    for (ptrdiff_t i = 0; i < mv; i++)
        for (ptrdiff_t j = 0; j < nv; j++) {
            float *cij = c + i * ldc + j;
            float v = tile[i * ts + j];
            *cij = beta == 0.0f ? v : v + beta * *cij;
        }
    if (fused) epilogue(c, ldc, mv, nv, bias, relu);
}

#if defined(__x86_64__)
/// The same with AVX-512 for the 32-wide tiles of the AVX-512 path, 16 lanes at a time (masked at the right edge), bias and ReLU applied in
/// the same pass. Pointwise convolutions with few output channels and short K spend as long
/// here as in the micro-kernel, so the scalar loops cost up to a third of their time.
__attribute__((target("avx512f")))
static void merge_tile32_avx512(float *c, ptrdiff_t ldc, const float *tile, ptrdiff_t mv, ptrdiff_t nv, float beta,
                              int fused, const float *bias, int relu) {
    const __m512 vb = _mm512_set1_ps(beta), zero = _mm512_setzero_ps();
    for (ptrdiff_t i = 0; i < mv; i++) {
        float *row = c + i * ldc;
        const __m512 add = _mm512_set1_ps(fused && bias ? bias[i] : 0.0f);
        for (ptrdiff_t j = 0; j < nv; j += 16) {
            ptrdiff_t n = nv - j < 16 ? nv - j : 16;
            __mmask16 m = (__mmask16)((1u << n) - 1u);
            __m512 v = _mm512_maskz_loadu_ps(m, tile + i * 32 + j);
            if (beta != 0.0f) v = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m, row + j), v);
            if (fused) {
                v = _mm512_add_ps(v, add);
                // v < 0 ? 0 : v keeps NaN, as torch.relu
                if (relu) v = _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ), zero);
            }
            if (n == 16) _mm512_storeu_ps(row + j, v);
            else _mm512_mask_storeu_ps(row + j, m, v);
        }
    }
}

/// transpose_back on AVX-512: 16 x 16 blocks through registers, bias and ReLU on the way out.
__attribute__((target("avx512f")))
static void transpose_back_avx512(const float *yt, ptrdiff_t N, ptrdiff_t M, const float *bias, int relu, float *y) {
    const __m512 zero = _mm512_setzero_ps();
    for (ptrdiff_t n0 = 0; n0 < N; n0 += 16) {
        const ptrdiff_t nn = N - n0 < 16 ? N - n0 : 16;
        const __mmask16 nm = (__mmask16)(nn == 16 ? 0xFFFF : (1u << nn) - 1u);
        for (ptrdiff_t m0 = 0; m0 < M; m0 += 16) {
            const ptrdiff_t mm = M - m0 < 16 ? M - m0 : 16;
            const __mmask16 mmask = (__mmask16)(mm == 16 ? 0xFFFF : (1u << mm) - 1u);
            __m512 r[16], col[16];
            // Rows past N repeat the last one (their lanes are not stored).
            for (int i = 0; i < 16; i++) r[i] = _mm512_maskz_loadu_ps(mmask, yt + (n0 + (i < nn ? i : nn - 1)) * M + m0);
            loupe_transpose16(r, col);
            for (int j = 0; j < 16; j++) {
                if (j >= mm) break;
                __m512 v = _mm512_add_ps(col[j], _mm512_set1_ps(bias ? bias[m0 + j] : 0.0f));
                // v < 0 ? 0 : v keeps NaN, as torch.relu
                if (relu) v = _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ), zero);
                _mm512_mask_storeu_ps(y + (m0 + j) * N + n0, nm, v);
            }
        }
    }
}

/// add_column_bias on AVX-512: the bias row loaded once per 16 columns, every row added.
__attribute__((target("avx512f")))
static void column_bias_avx512(float *c, ptrdiff_t ldc, ptrdiff_t mv, ptrdiff_t nv, const float *colBias) {
    for (ptrdiff_t j = 0; j < nv; j += 16) {
        const __mmask16 m = lanes16(nv - j);
        const __m512 b = _mm512_maskz_loadu_ps(m, colBias + j);
        for (ptrdiff_t i = 0; i < mv; i++) {
            float *p = c + i * ldc + j;
            _mm512_mask_storeu_ps(p, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, p), b));
        }
    }
}

/// Bias and ReLU on a C tile in place, AVX-512.
__attribute__((target("avx512f")))
static void epilogue_avx512(float *c, ptrdiff_t ldc, ptrdiff_t mv, ptrdiff_t nv, const float *bias, int relu) {
    const __m512 zero = _mm512_setzero_ps();
    for (ptrdiff_t i = 0; i < mv; i++) {
        float *row = c + i * ldc;
        const __m512 add = _mm512_set1_ps(bias ? bias[i] : 0.0f);
        for (ptrdiff_t j = 0; j < nv; j += 16) {
            ptrdiff_t n = nv - j < 16 ? nv - j : 16;
            __mmask16 m = (__mmask16)((1u << n) - 1u);
            __m512 v = _mm512_add_ps(_mm512_maskz_loadu_ps(m, row + j), add);
            if (relu) v = _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ), zero);
            if (n == 16) _mm512_storeu_ps(row + j, v);
            else _mm512_mask_storeu_ps(row + j, m, v);
        }
    }
}
#endif

/// c[i][j] += colBias[j] on an mv x nv tile of C: a Linear layer's bias added while the tile
/// is in L1 instead of by a separate Add over the whole output.
static void add_column_bias(int level, float *c, ptrdiff_t ldc, ptrdiff_t mv, ptrdiff_t nv, const float *colBias) {
#if defined(__x86_64__)
    if (level == 2) { column_bias_avx512(c, ldc, mv, nv, colBias); return; }
#else
    (void)level;
#endif
    for (ptrdiff_t i = 0; i < mv; i++)
        for (ptrdiff_t j = 0; j < nv; j++) c[i * ldc + j] += colBias[j];
}

void loupe_merge_tile(int level, float *c, ptrdiff_t ldc, const float *tile, ptrdiff_t ts, ptrdiff_t mv, ptrdiff_t nv,
                      float beta, int fused, const float *bias, int relu) {
#if defined(__x86_64__)
    if (level == 2 && ts == 32) { merge_tile32_avx512(c, ldc, tile, mv, nv, beta, fused, bias, relu); return; }
#endif
    merge_tile(c, ldc, tile, ts, mv, nv, beta, fused, bias, relu);
}

typedef void (*panel_packer)(const b_source *, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, int, float *);

static panel_packer packer_for(const packed_job *job) {
#if defined(__x86_64__)
    if (job->src.conv && job->a->level == 2) return pack_conv_panel_avx512;
#endif
    return job->src.conv ? pack_conv_panel : pack_matrix_panel;
}

/// Rows [m0, m1) and columns [j0, j1) of C. B panels come from job->bpacked when set (k block
/// p0, panel of columns j: bpacked + p0*Npad + j*kc), else are packed here one at a time.
/// One MR x NR tile of C (rows from ir, columns from jr) over one k block: the micro-kernel,
/// through the tile buffer at the edges, then bias/ReLU after the last block.
static inline void run_tile(const packed_job *job, const gemm_path *path, ptrdiff_t kc, const float *ablock,
                            const float *bp, ptrdiff_t ir, ptrdiff_t jr, ptrdiff_t nv, float beta, int epi,
                            float *tile) {
    const loupe_packed_a *a = job->a;
    const int mr = path->mr, nr = path->nr;
    ptrdiff_t mv = a->M - ir < mr ? a->M - ir : mr;
    float *c = job->C + ir * job->ldc + jr;
    const float *ap = ablock + ir * kc;
    micro_kernel kern = mv <= path->short_rows ? path->short_kernel : path->kernel;
    const int rowsOut = mv <= path->short_rows ? path->short_rows : mr;
    const float *rowBias = job->bias ? job->bias + ir : NULL;
    if (mv == rowsOut && nv == nr) {
        if (epi && mv == mr && path->fused_kernel && !job->colBias) {
            path->fused_kernel(kc, ap, bp, c, job->ldc, job->alpha, beta, rowBias, job->act == LOUPE_ACT_RELU);
            return;
        }
        kern(kc, ap, bp, c, job->ldc, job->alpha, beta);
        if (epi && job->colBias) {
            add_column_bias(a->level, c, job->ldc, mv, nv, job->colBias + jr);
        } else if (epi) {
#if defined(__x86_64__)
            if (a->level == 2) epilogue_avx512(c, job->ldc, mv, nv, rowBias, job->act == LOUPE_ACT_RELU); else
#endif
            epilogue(c, job->ldc, mv, nv, rowBias, job->act == LOUPE_ACT_RELU);
        }
    } else {
        kern(kc, ap, bp, tile, nr, job->alpha, 0.0f);
        loupe_merge_tile(a->level, c, job->ldc, tile, nr, mv, nv, beta, epi, rowBias, job->act == LOUPE_ACT_RELU);
        if (epi && job->colBias) add_column_bias(a->level, c, job->ldc, mv, nv, job->colBias + jr);
    }
}

/// Rows per A sub-block when M is large: 336 x 256 floats (344 KB) of packed A stay in L2 while
/// the column panels of a B block sweep over them.
#define MC_BLOCK 336
/// Columns of a B block in that case: 256 x 384 floats (384 KB), packed once per (columns, k
/// block) and reused by every A sub-block.
#define NC_BLOCK 384

/// Rows [m0, m1) and columns [j0, j1) of C, in one of two orders:
/// - small M: each B panel is packed right before all rows sweep over it, while it is in L1
///   (or read from job->bpacked when set: k block p0, column panel j at bpacked + p0*Npad + j*kc);
/// - M past MC_BLOCK rows (plain GEMMs, 512-channel layers): the Goto/van de Geijn order, a B
///   block of NC_BLOCK columns packed once per k block and A walked in L2-sized sub-blocks.
///   Streaming all of a large packed A past every column panel runs from L3 at about half speed.
static void run_block(const packed_job *job, ptrdiff_t m0, ptrdiff_t m1, ptrdiff_t j0, ptrdiff_t j1) {
    const loupe_packed_a *a = job->a;
    const gemm_path *path = &loupe_gemm_paths[a->level];
    const int mr = path->mr, nr = path->nr;
    const ptrdiff_t K = a->K, step = k_step(K), rows = m1 - m0;
    // K <= 64 (a pointwise layer's few input channels: each tile is mostly its stores): the B
    // block is packed once and each row tile then sweeps all its panels, so its 14 rows of C are
    // written in runs of NC_BLOCK columns rather than 72-odd row streams advancing 32 columns at
    // a time. 16 -> 96 channels at 112x112, batch 16: 7.9-11.6 -> 4.5-5.8 ms; K = 96 and up
    // measured no gain.
    const int rowsOuter = !job->bpacked && K <= 64;
    const int blocked = !job->bpacked && (rows > MC_BLOCK || rowsOuter);
    float *pb = NULL;
    if (!job->bpacked) {
        pb = loupe_thread_buffer((size_t)KC * (size_t)(blocked ? NC_BLOCK : nr) + 16);
        if (!pb) return;
    }
    float tile[14 * 32];
    // Small M: columns per block so that the C block (rows x nc) stays in L2 across the k blocks.
    ptrdiff_t NC = blocked ? NC_BLOCK : (65536 / (rows > 0 ? rows : 1)) / nr * nr;
    if (NC < nr) NC = nr;
    const ptrdiff_t MC = blocked ? MC_BLOCK : rows;
    const panel_packer pack = packer_for(job);
    const int fused = job->bias != NULL || job->act == LOUPE_ACT_RELU || job->colBias != NULL;
    for (ptrdiff_t jc = j0; jc < j1; jc += NC) {
        ptrdiff_t jend = jc + NC < j1 ? jc + NC : j1;
        for (ptrdiff_t pc = 0; pc < K; pc += step) {
            ptrdiff_t kc = K - pc < step ? K - pc : step;
            const int epi = pc + kc == K && fused;
            const float beta = pc == 0 ? job->beta : 1.0f;
            const float *ablock = a->data + pc * a->Mpad;
            if (blocked)
                for (ptrdiff_t jr = jc; jr < jend; jr += nr)
                    pack(&job->src, pc, kc, jr, jend - jr < nr ? jend - jr : nr, nr, pb + (jr - jc) * kc);
            if (rowsOuter) {
                for (ptrdiff_t ir = m0; ir < m1; ir += mr)
                    for (ptrdiff_t jr = jc; jr < jend; jr += nr)
                        run_tile(job, path, kc, ablock, pb + (jr - jc) * kc, ir, jr, jend - jr < nr ? jend - jr : nr, beta, epi, tile);
                continue;
            }
            for (ptrdiff_t ic = m0; ic < m1; ic += MC) {
                ptrdiff_t iend = ic + MC < m1 ? ic + MC : m1;
                for (ptrdiff_t jr = jc; jr < jend; jr += nr) {
                    ptrdiff_t nv = jend - jr < nr ? jend - jr : nr;
                    const float *bp;
                    if (job->bpacked) {
                        bp = job->bpacked + pc * job->Npad + jr * kc;
                    } else if (blocked) {
                        bp = pb + (jr - jc) * kc;
                    } else {
                        pack(&job->src, pc, kc, jr, nv, nr, pb);
                        bp = pb;
                    }
                    for (ptrdiff_t ir = ic; ir < iend; ir += mr) run_tile(job, path, kc, ablock, bp, ir, jr, nv, beta, epi, tile);
                }
            }
        }
        // Rows [m0, m1) x columns [jc, jend) are final and still in L2: the activation now, not
        // as another pass over the whole output later.
        if (job->act >= LOUPE_ACT_UNARY)
            for (ptrdiff_t i = m0; i < m1; i++)
                loupe_vunary_serial(job->act - LOUPE_ACT_UNARY, job->C + i * job->ldc + jc, job->C + i * job->ldc + jc,
                                    jend - jc, 0, 0);
    }
}

static void packed_task(void *ctx, ptrdiff_t t) {
    const packed_job *job = ctx;
    ptrdiff_t lo = t * job->chunk;
    if (job->splitRows) {
        ptrdiff_t hi = lo + job->chunk < job->a->M ? lo + job->chunk : job->a->M;
        run_block(job, lo, hi, 0, job->N);
    } else {
        ptrdiff_t hi = lo + job->chunk < job->N ? lo + job->chunk : job->N;
        run_block(job, 0, job->a->M, lo, hi);
    }
}

/// Packs B panel t (k block, column panel) into the shared buffer.
static void pack_shared_task(void *ctx, ptrdiff_t t) {
    const packed_job *job = ctx;
    const int nr = loupe_gemm_paths[job->a->level].nr;
    const ptrdiff_t step = k_step(job->a->K);
    ptrdiff_t panels = job->Npad / nr, pc = (t / panels) * step, jr = (t % panels) * nr;
    ptrdiff_t kc = job->a->K - pc < step ? job->a->K - pc : step;
    ptrdiff_t nv = job->N - jr < nr ? job->N - jr : nr;
    packer_for(job)(&job->src, pc, kc, jr, nv, nr, (float *)job->bpacked + pc * job->Npad + jr * kc);
}

static void run_job(packed_job *job, int threaded) {
    const loupe_packed_a *a = job->a;
    if (job->N <= 0) return;
    const gemm_path *path = &loupe_gemm_paths[a->level];
    const int threads = loupe_threads();
    double flops = 2.0 * (double)a->M * (double)job->N * (double)a->K;
    if (!threaded || threads <= 1 || flops < 2.0 * 64 * 64 * 64) { run_block(job, 0, a->M, 0, job->N); return; }
    ptrdiff_t colPanels = (job->N + path->nr - 1) / path->nr, rowPanels = (a->M + path->mr - 1) / path->mr;
    // Split the columns when there are enough panels to balance the threads: nothing is packed
    // twice. Otherwise (late layers: few output pixels, many channels) split the rows, with B
    // packed once, up front, into a buffer every task reads.
    job->splitRows = colPanels < 4 * threads && rowPanels > colPanels;
    // Large M with many columns: one row band per thread, each packing its own B panels. A column
    // split would stream all of A through every task; B packing is cheap next to M/threads rows.
    if (!job->splitRows && a->M >= 256 * (ptrdiff_t)threads) {
        job->splitRows = 1;
        job->chunk = (rowPanels + threads - 1) / threads * path->mr;
        loupe_parallel_for((a->M + job->chunk - 1) / job->chunk, packed_task, job);
        return;
    }
    float *shared = NULL;
    if (job->splitRows) {
        job->Npad = colPanels * path->nr;
        shared = malloc((size_t)job->Npad * (size_t)a->K * sizeof(float));
        if (!shared) { run_block(job, 0, a->M, 0, job->N); return; }
        job->bpacked = shared;
        loupe_parallel_for(colPanels * ((a->K + k_step(a->K) - 1) / k_step(a->K)), pack_shared_task, job);
    }
    ptrdiff_t units = job->splitRows ? rowPanels : colPanels, unit = job->splitRows ? path->mr : path->nr;
    ptrdiff_t tasks = units < 4 * (ptrdiff_t)threads ? units : 4 * (ptrdiff_t)threads;
    if (tasks <= 1) {
        run_block(job, 0, a->M, 0, job->N);
    } else {
        job->chunk = (units + tasks - 1) / tasks * unit;
        tasks = ((job->splitRows ? a->M : job->N) + job->chunk - 1) / job->chunk;
        loupe_parallel_for(tasks, packed_task, job);
    }
    free(shared);
}

// MARK: - Few output pixels: the transposed product

/// Output pixels in the row panels of the transposed product (14-row tiles, a last panel of at
/// most 8 rows on the short kernel) against the 32-column panels of the plain one.
static double transposed_gain(ptrdiff_t N, const gemm_path *path) {
    ptrdiff_t plain = (N + path->nr - 1) / path->nr * path->nr;
    ptrdiff_t rem = N % path->mr, rows = N - rem + (rem == 0 ? 0 : rem <= path->short_rows ? path->short_rows : path->mr);
    return (double)plain / (double)rows;
}

/// All of op(B) (K x N, from `src`) as B panels: k block at pc (blocks of k_step(K)) at
/// dst + pc*Npad, its column panel j at + j*kc, zero padded to Npad columns.
static void pack_b_blocks(const b_source *src, ptrdiff_t K, ptrdiff_t N, ptrdiff_t Npad, int nr, float *dst) {
    const ptrdiff_t step = k_step(K);
    for (ptrdiff_t pc = 0; pc < K; pc += step) {
        ptrdiff_t kc = K - pc < step ? K - pc : step;
        for (ptrdiff_t j = 0; j < Npad; j += nr)
            pack_matrix_panel(src, pc, kc, j, N - j < nr ? (N - j > 0 ? N - j : 0) : nr, nr, dst + pc * Npad + j * kc);
    }
}

/// W^T (K x M) of packed weights as a packed B operand, made on first use and kept; NULL without
/// a source or memory.
static const loupe_packed_b *weight_transposed_b(loupe_packed_a *p) {
    loupe_packed_b *made = atomic_load_explicit(&p->wt, memory_order_acquire);
    if (made || p->transA) return made;
    if (p->src) {
        // op(B)[k][m] = W[m][k]: W read as an N x K matrix with transB.
        made = loupe_packed_b_create(1, p->K, p->M, p->src, p->lda);
    } else if (p->flipOf) {
        // An adjoint (M = C input channels, K = output channels * taps): its flipped matrix again.
        float *flipped = flipped_kernel(p->flipOf, p->flipLda, p->K / p->flipTaps, p->M, p->flipTaps);
        if (!flipped) return NULL;
        made = loupe_packed_b_create(1, p->K, p->M, flipped, p->K);
        free(flipped);
    }
    if (!made) return NULL;
    loupe_packed_b *expected = NULL;
    if (!atomic_compare_exchange_strong_explicit(&p->wt, &expected, made, memory_order_acq_rel, memory_order_acquire)) {
        loupe_packed_b_destroy(made);
        return expected;
    }
    return made;
}

typedef struct {
    const float *x;
    const loupe_window2d *g;
    float *col;
    ptrdiff_t C, N, perTask;
} im2col_job;

/// im2col of channels [t*perTask, ...) into their rows of col.
static void im2col_task(void *ctx, ptrdiff_t t) {
    const im2col_job *j = ctx;
    const ptrdiff_t c0 = t * j->perTask, c1 = c0 + j->perTask < j->C ? c0 + j->perTask : j->C;
    const ptrdiff_t kk = j->g->kH * j->g->kW;
    if (c1 > c0) loupe_im2col(j->x + c0 * j->g->inH * j->g->inW, c1 - c0, j->g, 0, j->g->outH, j->col + c0 * kk * j->N);
}

/// Least panel-fill gain (transposed_gain) for which the transposed product is taken.
#define TRANSPOSED_MIN_GAIN 1.15

/// y (M x N) = yt^T + bias per row, ReLU'd when `act` says so; yt is N x M (row stride M).
static void transpose_back(const float *yt, ptrdiff_t N, ptrdiff_t M, const float *bias, int act, float *y, int level) {
#if defined(__x86_64__)
    if (level == 2) { transpose_back_avx512(yt, N, M, bias, act == LOUPE_ACT_RELU, y); return; }
#else
    (void)level;
#endif
    for (ptrdiff_t m = 0; m < M; m++) {
        const float b = bias ? bias[m] : 0.0f;
        float *ym = y + m * N;
        for (ptrdiff_t n = 0; n < N; n++) {
            float v = yt[n * M + m] + b;
            ym[n] = act == LOUPE_ACT_RELU && v < 0.0f ? 0.0f : v;
        }
    }
}

static int sgemm_packed_b(int transA, ptrdiff_t M, const float *A, ptrdiff_t lda, const float *kScale,
                          const loupe_packed_b *b, float *C, ptrdiff_t ldc, const float *colBias, int threaded);

/// y = W * B computed as y^T = B^T * W^T, B (K x N, row stride N) read as a transposed A operand:
/// the N output pixels become the GEMM's rows (14-row panels), the output channels its columns,
/// with W^T's panels packed once per weight. Returns 0 (nothing written) when memory is short.
static int transposed_product(loupe_packed_a *w, const float *B, ptrdiff_t N, const float *rowScale, const float *bias,
                              int act, float *y, int threaded) {
    const loupe_packed_b *wt = weight_transposed_b(w);
    if (!wt || wt->level != w->level) return 0;
    const ptrdiff_t M = w->M;
    float *yt = malloc((size_t)N * (size_t)M * sizeof(float));
    if (!yt) return 0;
    if (!sgemm_packed_b(1, N, B, N, rowScale, wt, yt, M, NULL, threaded)) { free(yt); return 0; }
    transpose_back(yt, N, M, bias, act, y, w->level);
    if (act >= LOUPE_ACT_UNARY) loupe_vunary_serial(act - LOUPE_ACT_UNARY, y, y, M * N, 0, 0);
    free(yt);
    return 1;
}

/// y = W * im2col(x) as the transposed product when the output has few pixels (7x7 maps: 49
/// columns fill 32-wide panels to 77 %, 14-row panels to 98 %). Returns 0 (nothing written) when
/// it would not pay or memory is short.
static int conv_transposed(const loupe_packed_a *wc, const float *x, const loupe_window2d *g, const float *bias, int act,
                           float *y, int threaded) {
    loupe_packed_a *w = (loupe_packed_a *)wc; // only the lazily made, atomically published panels change
    const gemm_path *path = &loupe_gemm_paths[w->level];
    const ptrdiff_t N = g->outH * g->outW, M = w->M, K = w->K;
    if (N <= 0 || M < 2 * path->nr || transposed_gain(N, path) < TRANSPOSED_MIN_GAIN) return 0;
    float *col = malloc((size_t)K * (size_t)N * sizeof(float));
    if (!col) return 0;
    const int threads = threaded ? loupe_threads() : 1;
    im2col_job ij = {x, g, col, K / (g->kH * g->kW), N, 0};
    ij.perTask = threads > 1 ? (ij.C + 2 * threads - 1) / (2 * threads) : ij.C;
    ptrdiff_t itasks = (ij.C + ij.perTask - 1) / ij.perTask;
    if (itasks > 1) loupe_parallel_for(itasks, im2col_task, &ij);
    else im2col_task(&ij, 0);
    int done = transposed_product(w, col, N, NULL, bias, act, y, threaded);
    free(col);
    return done;
}

int loupe_pointwise_transposed_suits(const loupe_packed_a *w, ptrdiff_t N) {
    const gemm_path *path = &loupe_gemm_paths[w->level];
    // The same rule as the 3x3 case (loupe-bench conv, batch 1 and 16): 7x7 maps gain 12-20 %;
    // 14x14 maps (196 columns in 224, 196 rows in 196: gain 1.14) measured 7 % slower.
    return N > 0 && w->M >= 2 * path->nr && !w->transA && transposed_gain(N, path) >= TRANSPOSED_MIN_GAIN;
}

int loupe_pointwise_transposed(const loupe_packed_a *wc, const float *x, ptrdiff_t N, const float *bias, int act,
                               float *y, int threaded) {
    return loupe_pointwise_transposed_scaled(wc, x, N, NULL, bias, act, y, threaded);
}

int loupe_pointwise_transposed_scaled(const loupe_packed_a *wc, const float *x, ptrdiff_t N, const float *rowScale,
                                      const float *bias, int act, float *y, int threaded) {
    loupe_packed_a *w = (loupe_packed_a *)wc;
    if (!loupe_pointwise_transposed_suits(w, N)) return 0;
    return transposed_product(w, x, N, rowScale, bias, act, y, threaded);
}

int loupe_pointwise_rows(const loupe_packed_a *wc, const float *x, ptrdiff_t rows, const float *bias, int act, float *y,
                         int threaded) {
    loupe_packed_a *w = (loupe_packed_a *)wc;
    if (rows <= 0 || w->transA) return 0;
    const loupe_packed_b *wt = weight_transposed_b(w);
    if (!wt || wt->level != w->level) return 0;
    if (!loupe_sgemm_packed_b(0, rows, x, w->K, wt, y, w->M, bias, threaded)) return 0;
    loupe_activate_in_place(act, y, rows * w->M);
    return 1;
}

void loupe_conv2d_packed(const loupe_packed_a *w, const float *x, const loupe_window2d *g,
                         const float *bias, int act, float *y, int threaded) {
    if (conv_transposed(w, x, g, bias, act, y, threaded)) return;
    packed_job job;
    memset(&job, 0, sizeof job);
    job.a = w;
    job.src.conv = 1;
    job.src.x = x;
    job.src.g = *g;
    job.N = g->outH * g->outW;
    job.alpha = 1.0f;
    job.beta = 0.0f;
    job.C = y;
    job.ldc = job.N;
    job.bias = bias;
    job.act = act;
    run_job(&job, threaded);
}

/// A job multiplying packed A by op(B) (K x N; B stored K x N with row stride ldb, or N x K).
static packed_job matrix_job(const loupe_packed_a *a, int transB, ptrdiff_t N, const float *B, ptrdiff_t ldb,
                             float alpha, float beta, float *C, ptrdiff_t ldc) {
    packed_job job;
    memset(&job, 0, sizeof job);
    job.a = a;
    job.src.B = B;
    job.src.rs = transB ? 1 : ldb;
    job.src.cs = transB ? ldb : 1;
    job.N = N;
    job.alpha = alpha;
    job.beta = beta;
    job.C = C;
    job.ldc = ldc;
    return job;
}

void loupe_sgemm_packed(const loupe_packed_a *a, int transB, ptrdiff_t N, const float *B, ptrdiff_t ldb,
                        float beta, const float *bias, int act, float *C, ptrdiff_t ldc, int threaded) {
    packed_job job = matrix_job(a, transB, N, B, ldb, 1.0f, beta, C, ldc);
    job.bias = bias;
    job.act = act;
    run_job(&job, threaded);
}

void loupe_sgemm_packed_scaled(const loupe_packed_a *a, ptrdiff_t N, const float *B, ptrdiff_t ldb,
                               const float *rowScale, const float *bias, int act, float *C, ptrdiff_t ldc, int threaded) {
    packed_job job = matrix_job(a, 0, N, B, ldb, 1.0f, 0.0f, C, ldc);
    job.src.rowScale = rowScale;
    job.bias = bias;
    job.act = act;
    run_job(&job, threaded);
}

int loupe_sgemm_via_packed(int transA, int transB, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, float alpha,
                           const float *A, ptrdiff_t lda, const float *B, ptrdiff_t ldb, float beta,
                           float *C, ptrdiff_t ldc) {
    loupe_packed_a *a = create_packed(transA, M, K, A, lda, 1);
    if (!a) return 0;
    packed_job job = matrix_job(a, transB, N, B, ldb, alpha, beta, C, ldc);
    run_job(&job, 1);
    loupe_packed_a_destroy(a);
    return 1;
}

// MARK: - Pre-packed B operand (constant right-hand weights of MatMul)


loupe_packed_b *loupe_packed_b_create(int transB, ptrdiff_t K, ptrdiff_t N, const float *B, ptrdiff_t ldb) {
    if (K <= 0 || N <= 0 || !B) return NULL;
    const int level = loupe_gemm_level();
    const int nr = loupe_gemm_paths[level].nr;
    loupe_packed_b *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->level = level;
    p->transB = transB != 0;
    p->K = K;
    p->N = N;
    p->Npad = (N + nr - 1) / nr * nr;
    p->data = aligned_alloc(64, ((size_t)p->Npad * (size_t)K * sizeof(float) + 63) & ~(size_t)63);
    if (!p->data) { free(p); return NULL; }
    b_source src = {.conv = 0, .B = B, .rs = transB ? 1 : ldb, .cs = transB ? ldb : 1};
    pack_b_blocks(&src, K, N, p->Npad, nr, p->data);
    return p;
}

void loupe_packed_b_destroy(loupe_packed_b *p) {
    if (!p) return;
    loupe_packed_b_destroy(atomic_load(&p->transposed));
    free(p->data);
    free(p);
}

const loupe_packed_b *loupe_packed_b_transposed(loupe_packed_b *p, const float *B, ptrdiff_t ldb) {
    if (!p || !B) return NULL;
    loupe_packed_b *made = atomic_load_explicit(&p->transposed, memory_order_acquire);
    if (made) return made;
    // op(B)^T (N x K): the same storage read the other way round.
    made = loupe_packed_b_create(!p->transB, p->N, p->K, B, ldb);
    if (!made) return NULL;
    loupe_packed_b *expected = NULL;
    if (!atomic_compare_exchange_strong_explicit(&p->transposed, &expected, made, memory_order_acq_rel,
                                                 memory_order_acquire)) {
        loupe_packed_b_destroy(made);
        return expected;
    }
    return made;
}

int loupe_packed_b_matches(const loupe_packed_b *p) { return p && p->level == loupe_gemm_level(); }

/// Column k of packed A (op(A) is M x K) times scale[k], in place: what packing A * diag(scale)
/// would give, bit for bit (one product per element either way).
static void scale_packed_columns(loupe_packed_a *a, const float *scale) {
    const ptrdiff_t mr = loupe_gemm_paths[a->level].mr, step = k_step(a->K);
    for (ptrdiff_t pc = 0; pc < a->K; pc += step) {
        const ptrdiff_t kc = a->K - pc < step ? a->K - pc : step;
        for (ptrdiff_t i0 = 0; i0 < a->Mpad; i0 += mr) {
            float *panel = a->data + pc * a->Mpad + i0 * kc;
            for (ptrdiff_t k = 0; k < kc; k++) {
                const float f = scale[pc + k];
                float *col = panel + k * mr;
                for (ptrdiff_t i = 0; i < mr; i++) col[i] *= f;
            }
        }
    }
}

/// loupe_sgemm_packed_b with op(A) * diag(kScale) when kScale is not NULL.
static int sgemm_packed_b(int transA, ptrdiff_t M, const float *A, ptrdiff_t lda, const float *kScale,
                          const loupe_packed_b *b, float *C, ptrdiff_t ldc, const float *colBias, int threaded) {
    if (!loupe_packed_b_matches(b) || M <= 0) return M == 0;
    const gemm_path *path = &loupe_gemm_paths[b->level];
    const int threads = threaded ? loupe_threads() : 1;
    loupe_packed_a *a = create_packed(transA, M, b->K, A, lda, threads > 1);
    if (!a) return 0;
    if (kScale) scale_packed_columns(a, kScale);
    packed_job job;
    memset(&job, 0, sizeof job);
    job.a = a;
    job.N = b->N;
    job.alpha = 1.0f;
    job.C = C;
    job.ldc = ldc;
    job.bpacked = b->data;
    job.Npad = b->Npad;
    job.colBias = colBias;
    const ptrdiff_t rowPanels = (M + path->mr - 1) / path->mr, colPanels = b->Npad / path->nr;
    // Tall (many tokens): bands of rows, a few per thread, each with all of B (small, in L2).
    // Wide (few pixels or tokens): one band of columns per thread, since each reads all of A.
    job.splitRows = rowPanels >= colPanels;
    const ptrdiff_t units = job.splitRows ? rowPanels : colPanels, unit = job.splitRows ? path->mr : path->nr;
    const ptrdiff_t perThread = job.splitRows ? 4 : 1;
    ptrdiff_t tasks = threads > 1 ? (units < perThread * threads ? units : perThread * threads) : 1;
    // Row tasks round down (at least perThread * threads of them, the last one short), since
    // rounding up can leave a thread one whole chunk behind: ViT-tiny's 197 tokens are 14 full
    // panels and one of a single row, which in chunks of two ran as 8 panels against 7.
    job.chunk = (job.splitRows ? (units / tasks > 0 ? units / tasks : 1) : (units + tasks - 1) / tasks) * unit;
    tasks = ((job.splitRows ? M : b->N) + job.chunk - 1) / job.chunk;
    if (tasks > 1) loupe_parallel_for(tasks, packed_task, &job);
    else run_block(&job, 0, M, 0, b->N);
    loupe_packed_a_destroy(a);
    return 1;
}

int loupe_sgemm_packed_b(int transA, ptrdiff_t M, const float *A, ptrdiff_t lda, const loupe_packed_b *b, float *C,
                         ptrdiff_t ldc, const float *colBias, int threaded) {
    return sgemm_packed_b(transA, M, A, lda, NULL, b, C, ldc, colBias, threaded);
}

