// Winograd F(4x4, 3x3) convolution (Lavin & Gray, "Fast Algorithms for Convolutional Neural
// Networks", CVPR 2016, eq. 8: Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A) for 3x3, stride-1, undilated
// convolutions on the AVX-512 path.
//
// A 4x4 block of outputs needs 36 multiplications per (input, output) channel pair instead of
// 144, so the GEMM work of a 3x3 convolution drops 4x; the price is an input transform (6x6
// patches of the image), an output transform, and weights 4x larger (36 values per channel pair
// instead of 9), which only pays while there are enough output tiles to reuse them.
//
// F(2x2, 3x3) (points 0, ±1, ∞; 16 multiplications for a 2x2 block instead of 36) runs through
// the same pipeline with 4x4 patches at a step of 2. Its transforms hold only 0, ±1 and ½, so
// it rounds about like a direct sum, where F(4x4)'s points ±2 amplify the frequency-domain
// rounding ~9x: forward passes recorded for a gradient, whose ReLU masks a rounding can flip,
// take F(2x2) (loupe_winograd_tile).
//
// Data flow, per band of 32-tile panels (about 4 MB of transformed input; the tiles of all
// images of the batch numbered one after another):
//   phase A, tasks over channels: V[ξ] (C x 32 per panel, the micro-kernel's B panel layout) =
//   Bᵀ d B of every 6x6 patch, read from "strips" (below) without gathers;
//   phase B, tasks over (panel, run of 14-row output-channel panels): for each row panel and
//   each of the 36 frequencies ξ, S[ξ] (14 x 32) = U[ξ] · V[ξ] on the GEMM micro-kernel (U
//   packed once per weight in its A panel layout), then Y = Aᵀ S A per tile with bias and the
//   activation, and the 4x4 blocks stored. S (64 KB) is read back right after it is written.
#include "CLoupeKernels.h"
#include "CLoupeVMath.h"
#include "gemm_internal.h"
#include "transpose16.h"
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { LANES = 32 };

struct loupe_winograd {
    int level;
    int m, n, xi; // output tile m x m, input patch n x n (n = m + 2), xi = n*n frequencies
    ptrdiff_t M, C, rowPanels;
    int mr;
    float *u; // U[ξ] rows of panel rp: u + (rp*xi + ξ)*C*mr, k-major (C x mr)
};

static int winograd_override = -1;
// Per thread: a forward pass whose values a backward pass will read rounds like a direct sum
// (direct convolutions or F(2x2), never F(4x4); loupe_winograd_tile).
static _Thread_local int direct_only = 0;

void loupe_winograd_set_enabled(int on) { winograd_override = on < 0 ? -1 : (on ? 1 : 0); }

int loupe_winograd_direct_only(int on) {
    int previous = direct_only;
    direct_only = on != 0;
    return previous;
}

/// LOUPE_WINOGRAD, read once: 0 off, 1 default, 2 "all" (recorded passes take F(4x4) too,
/// trading gradient fidelity at ReLU kinks for speed), 3 "direct" (recorded passes take no
/// Winograd, not even F(2x2)). Asked on every convolution, so not a getenv each time.
static int env_setting(void) {
    static _Atomic int cached = -1;
    int v = atomic_load_explicit(&cached, memory_order_relaxed);
    if (v < 0) {
        const char *e = getenv("LOUPE_WINOGRAD");
        v = e && e[0] == '0' ? 0 : e && strcmp(e, "all") == 0 ? 2 : e && strcmp(e, "direct") == 0 ? 3 : 1;
        atomic_store_explicit(&cached, v, memory_order_relaxed);
    }
    return v;
}

int loupe_winograd_available(void) {
    if (loupe_gemm_level() != 2) return 0;
    if (winograd_override >= 0) return winograd_override && !direct_only;
    const int env = env_setting();
    return env == 2 || ((env == 1 || env == 3) && !direct_only);
}

/// GEMM work of F(m x m, 3x3) over N images: (m+2)^2 * 32 per 32-tile panel, tiles counted with
/// the spare one per row, a part-filled last panel as a whole one.
static double gemm_work(ptrdiff_t N, ptrdiff_t outH, ptrdiff_t outW, int m) {
    ptrdiff_t T = N * ((outH + m - 1) / m) * ((outW + m - 1) / m + 1), panels = (T + LANES - 1) / LANES;
    return (double)((m + 2) * (m + 2) * LANES) * (double)panels;
}

/// Whether F(m x m, 3x3) of N images of this size is expected to beat the direct convolution: its
/// GEMM work (gemm_work) at most the direct 9 per output pixel. Measured for
/// m = 4 (loupe-bench conv, resnet18's layers): 14x14 maps, one panel at 0.65 of the direct work,
/// still run 1.6x faster; 7x7 maps (2.6) run 1.7x slower, so the cut is at 1.
static int work_fits(ptrdiff_t N, ptrdiff_t M, ptrdiff_t C, ptrdiff_t outH, ptrdiff_t outW, int m) {
    if (N < 1 || M < 8 || C < 8 || outH < m || outW < m) return 0;
    return gemm_work(N, outH, outW, m) <= 9.0 * (double)N * (double)(outH * outW);
}

int loupe_winograd_suits(ptrdiff_t N, ptrdiff_t M, ptrdiff_t C, ptrdiff_t outH, ptrdiff_t outW) {
    return loupe_winograd_available() && work_fits(N, M, C, outH, outW, 4);
}

int loupe_winograd_tile(ptrdiff_t N, ptrdiff_t M, ptrdiff_t C, ptrdiff_t outH, ptrdiff_t outW) {
    if (loupe_winograd_suits(N, M, C, outH, outW)) {
        // One image of 14x14 maps: F(4x4) fills one 32-tile panel with 20 tiles (36 x 32 products
        // per channel pair), F(2x2) two panels with 56 (2 x 16 x 32), and its transforms are
        // cheaper: 0.71 against 0.83 ms for resnet18's layer3 convolutions (loupe-bench conv).
        return gemm_work(N, outH, outW, 2) < gemm_work(N, outH, outW, 4) ? 2 : 4;
    }
    const int env = env_setting();
    if (!direct_only || loupe_gemm_level() != 2 || winograd_override == 0 || env == 0 || env == 3) return 0;
    return work_fits(N, M, C, outH, outW, 2) ? 2 : 0;
}

#if defined(__x86_64__)

// Interpolation points 0, ±1, ±2, ∞ (Lavin & Gray's F(4x4, 3x3) matrices).
static const double G4[6][3] = {
    {1.0 / 4, 0, 0},
    {-1.0 / 6, -1.0 / 6, -1.0 / 6},
    {-1.0 / 6, 1.0 / 6, -1.0 / 6},
    {1.0 / 24, 1.0 / 12, 1.0 / 6},
    {1.0 / 24, -1.0 / 12, 1.0 / 6},
    {0, 0, 1},
};

// Interpolation points 0, ±1, ∞ (F(2x2, 3x3)): only 0, ±1 and ½ in the transforms.
static const double G2[4][3] = {
    {1, 0, 0},
    {0.5, 0.5, 0.5},
    {0.5, -0.5, 0.5},
    {0, 0, 1},
};

loupe_winograd *loupe_winograd_create(const float *w, ptrdiff_t M, ptrdiff_t C, ptrdiff_t so, ptrdiff_t si, int flip, int tile) {
    if (!w || M <= 0 || C <= 0 || (tile != 2 && tile != 4) || loupe_gemm_level() != 2) return NULL;
    // A non-finite weight would turn all 36 transformed values NaN (inf - inf), where the direct
    // sum keeps an infinity: such weights stay on the direct path.
    for (ptrdiff_t o = 0; o < M; o++)
        for (ptrdiff_t i = 0; i < C; i++)
            for (int k = 0; k < 9; k++) {
                float v = w[o * so + i * si + k];
                if (v - v != 0.0f) return NULL;
            }
    const int mr = loupe_gemm_paths[2].mr;
    loupe_winograd *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->level = 2;
    p->m = tile;
    p->n = tile + 2;
    p->xi = p->n * p->n;
    p->M = M;
    p->C = C;
    p->mr = mr;
    p->rowPanels = (M + mr - 1) / mr;
    const int n = p->n, xi = p->xi;
    const double (*G)[3] = tile == 4 ? G4 : G2;
    size_t bytes = ((size_t)p->rowPanels * xi * (size_t)C * (size_t)mr * sizeof(float) + 63) & ~(size_t)63;
    p->u = aligned_alloc(64, bytes);
    if (!p->u) { free(p); return NULL; }
    memset(p->u, 0, bytes); // rows past M in the last panel
    for (ptrdiff_t o = 0; o < M; o++)
        for (ptrdiff_t i = 0; i < C; i++) {
            double g[3][3], t[6][3];
            for (int k = 0; k < 9; k++) g[k / 3][k % 3] = w[o * so + i * si + (flip ? 8 - k : k)];
            for (int a = 0; a < n; a++)
                for (int b = 0; b < 3; b++) t[a][b] = G[a][0] * g[0][b] + G[a][1] * g[1][b] + G[a][2] * g[2][b];
            float *dst = p->u + ((o / mr) * xi * C + i) * mr + o % mr;
            for (int a = 0; a < n; a++)
                for (int b = 0; b < n; b++)
                    dst[(a * n + b) * C * mr] = (float)(t[a][0] * G[b][0] + t[a][1] * G[b][1] + t[a][2] * G[b][2]);
        }
    return p;
}

#else

loupe_winograd *loupe_winograd_create(const float *w, ptrdiff_t M, ptrdiff_t C, ptrdiff_t so, ptrdiff_t si, int flip, int tile) {
    (void)w; (void)M; (void)C; (void)so; (void)si; (void)flip; (void)tile;
    return NULL;
}

#endif

void loupe_winograd_destroy(loupe_winograd *p) {
    if (!p) return;
    free(p->u);
    free(p);
}

int loupe_winograd_matches(const loupe_winograd *p) { return p && p->level == loupe_gemm_level(); }

#if defined(__x86_64__)

/// One convolution. Tiles are numbered on a grid with one spare tile per tile row (tw + 1
/// columns): tile L's patch row i then starts at element 4L of a "strip" holding the input rows
/// of every tile row back to back, so the 16 patches of 16 consecutive tiles are a stride-4
/// deinterleave of 64 contiguous floats. The spare tiles are computed and never stored; for
/// resnet's 56x56 and 28x28 maps they do not add a 32-tile panel.
typedef struct {
    const loupe_winograd *u;
    const float *x;
    loupe_window2d g;
    const float *bias;
    int act;                       // LOUPE_ACT_*
    float *y;
    ptrdiff_t N;                   // images: tile L is tile L % Tp of image L / Tp
    ptrdiff_t th, tw, tw1, Tp;     // real tile grid, padded row length (tw + 1), padded tiles per image
    ptrdiff_t band0, bandPanels;   // panels [band0, band0 + bandPanels) are in VT
    float *VT;                     // panel q of the band, frequency ξ, channel c: VT + (q*xi + ξ)*xi_stride(C) + c*32
    ptrdiff_t chanPerTask, groups, rpPerGroup;
} wino_job;

/// Bᵀ applied to six vectors (a column or a row of a 6x6 patch).
static inline __attribute__((target("avx512f,fma"), always_inline)) void bt6(const __m512 d[6], __m512 r[6]) {
    const __m512 four = _mm512_set1_ps(4.0f), five = _mm512_set1_ps(-5.0f), two = _mm512_set1_ps(2.0f);
    __m512 d42 = _mm512_sub_ps(d[4], d[2]);
    r[0] = _mm512_fmadd_ps(four, d[0], _mm512_fmadd_ps(five, d[2], d[4]));
    r[1] = _mm512_fnmadd_ps(four, _mm512_add_ps(d[1], d[2]), _mm512_add_ps(d[3], d[4]));
    r[2] = _mm512_fmadd_ps(four, _mm512_sub_ps(d[1], d[2]), _mm512_sub_ps(d[4], d[3]));
    r[3] = _mm512_fmadd_ps(two, _mm512_sub_ps(d[3], d[1]), d42);
    r[4] = _mm512_fmadd_ps(two, _mm512_sub_ps(d[1], d[3]), d42);
    r[5] = _mm512_fmadd_ps(four, d[1], _mm512_fmadd_ps(five, d[3], d[5]));
}

/// Aᵀ applied to six vectors.
static inline __attribute__((target("avx512f,fma"), always_inline)) void at6(const __m512 m[6], __m512 o[4]) {
    __m512 p12 = _mm512_add_ps(m[1], m[2]), m12 = _mm512_sub_ps(m[1], m[2]);
    __m512 p34 = _mm512_add_ps(m[3], m[4]), m34 = _mm512_sub_ps(m[3], m[4]);
    o[0] = _mm512_add_ps(_mm512_add_ps(m[0], p12), p34);
    o[1] = _mm512_fmadd_ps(_mm512_set1_ps(2.0f), m34, m12);
    o[2] = _mm512_fmadd_ps(_mm512_set1_ps(4.0f), p34, p12);
    o[3] = _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(8.0f), m34, m12), m[5]);
}

/// Floats of one strip for `tiles` tiles of step m: m per tile, one more tile (the last taps of
/// the last), and a vector of slack for the full-width loads past the end.
static ptrdiff_t strip_floats(ptrdiff_t tiles, int m) { return (m * tiles + m + 64 + 16 + 15) / 16 * 16; }

/// Floats from one frequency's B panel (C x 32) to the next: one cache line more than the panel,
/// so the 36 stores of a tile group do not all fall in one L1 set (panels of 8 KB would).
static ptrdiff_t xi_stride(ptrdiff_t C) { return C * LANES + 16; }

/// Strip i of channel c for padded tiles [L0, L0 + tiles + 1): element m(L - L0) + u is input
/// pixel (m·ty + i - padTop, m·tx + u - padLeft) of tile L = n*Tp + ty*tw1 + tx of image n, 0
/// outside the image (and past the last image); m is the tile step.
static void fill_strip(const wino_job *j, ptrdiff_t c, int i, ptrdiff_t L0, ptrdiff_t tiles, float *dst) {
    const ptrdiff_t H = j->g.inH, W = j->g.inW, end = L0 + tiles + 1, C = j->u->C;
    const int m = j->u->m;
    float *d = dst;
    for (ptrdiff_t L = L0; L < end;) {
        ptrdiff_t n = L / j->Tp, t = L % j->Tp, ty = t / j->tw1, tx = t % j->tw1;
        ptrdiff_t run = j->tw1 - tx < end - L ? j->tw1 - tx : end - L;
        ptrdiff_t r = m * ty + i - j->g.padTop, c0 = m * tx - j->g.padLeft, len = m * run;
        if (n >= j->N || r < 0 || r >= H) {
            memset(d, 0, (size_t)len * sizeof(float));
        } else {
            const float *row = j->x + ((n * C + c) * H + r) * W;
            ptrdiff_t lo = c0 < 0 ? -c0 : 0, hi = W - c0 < len ? W - c0 : len;
            if (hi < lo) hi = lo;
            if (lo > 0) memset(d, 0, (size_t)lo * sizeof(float));
            if (hi > lo) memcpy(d + lo, row + c0 + lo, (size_t)(hi - lo) * sizeof(float));
            if (len > hi) memset(d + hi, 0, (size_t)(len - hi) * sizeof(float));
        }
        d += len;
        L += run;
    }
    memset(d, 0, (size_t)(dst + strip_floats(tiles, m) - d) * sizeof(float));
}

/// d[j] lane l = p[4l + j] for j in 0..<6 (taps 4 and 5 are taps 0 and 1 of the next tile).
static inline __attribute__((target("avx512f"), always_inline)) void deinterleave6(const float *p, __m512 d[6]) {
    const __m512i pickA = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29);
    const __m512i pickB = _mm512_setr_epi32(2, 6, 10, 14, 18, 22, 26, 30, 3, 7, 11, 15, 19, 23, 27, 31);
    const __m512i lo = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
    const __m512i hi = _mm512_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    __m512 z0 = _mm512_loadu_ps(p), z1 = _mm512_loadu_ps(p + 16), z2 = _mm512_loadu_ps(p + 32), z3 = _mm512_loadu_ps(p + 48);
    __m512 a01 = _mm512_permutex2var_ps(z0, pickA, z1), b01 = _mm512_permutex2var_ps(z0, pickB, z1);
    __m512 a23 = _mm512_permutex2var_ps(z2, pickA, z3), b23 = _mm512_permutex2var_ps(z2, pickB, z3);
    d[0] = _mm512_permutex2var_ps(a01, lo, a23);
    d[1] = _mm512_permutex2var_ps(a01, hi, a23);
    d[2] = _mm512_permutex2var_ps(b01, lo, b23);
    d[3] = _mm512_permutex2var_ps(b01, hi, b23);
    d[4] = _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(_mm512_set1_ps(p[64])), _mm512_castps_si512(d[0]), 1));
    d[5] = _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(_mm512_set1_ps(p[65])), _mm512_castps_si512(d[1]), 1));
}

/// F(2x2, 3x3)'s Bᵀ applied to four vectors.
static inline __attribute__((target("avx512f"), always_inline)) void bt4(const __m512 d[4], __m512 r[4]) {
    r[0] = _mm512_sub_ps(d[0], d[2]);
    r[1] = _mm512_add_ps(d[1], d[2]);
    r[2] = _mm512_sub_ps(d[2], d[1]);
    r[3] = _mm512_sub_ps(d[1], d[3]);
}

/// F(2x2, 3x3)'s Aᵀ applied to four vectors.
static inline __attribute__((target("avx512f"), always_inline)) void at4(const __m512 m[4], __m512 o[2]) {
    o[0] = _mm512_add_ps(_mm512_add_ps(m[0], m[1]), m[2]);
    o[1] = _mm512_sub_ps(_mm512_sub_ps(m[1], m[2]), m[3]);
}

/// d[j] lane l = p[2l + j] for j in 0..<4 (taps 2 and 3 are taps 0 and 1 of the next tile).
static inline __attribute__((target("avx512f"), always_inline)) void deinterleave4(const float *p, __m512 d[4]) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    __m512 z0 = _mm512_loadu_ps(p), z1 = _mm512_loadu_ps(p + 16);
    d[0] = _mm512_permutex2var_ps(z0, even, z1);
    d[1] = _mm512_permutex2var_ps(z0, odd, z1);
    d[2] = _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(_mm512_set1_ps(p[32])), _mm512_castps_si512(d[0]), 1));
    d[3] = _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(_mm512_set1_ps(p[33])), _mm512_castps_si512(d[1]), 1));
}

/// Phase A, task t: VT = Bᵀ d B for the band's tiles and channels [t*chanPerTask, ...), for tiles
/// of m x m outputs (n x n patches, n = m + 2). Bᵀ is first applied across the n strips (rows of
/// the patches) in whole-strip vector passes; each of the n results is then deinterleaved into
/// per-tile columns and Bᵀ applied along them. Inlined once per m, so each keeps its constants.
static inline __attribute__((target("avx512f,fma"), always_inline)) void input_task_m(const wino_job *j, ptrdiff_t t, const int m) {
    const int n = m + 2;
    const ptrdiff_t C = j->u->C, tiles = j->bandPanels * LANES, L0 = j->band0 * LANES;
    const ptrdiff_t c0 = t * j->chanPerTask, c1 = c0 + j->chanPerTask < C ? c0 + j->chanPerTask : C;
    const ptrdiff_t sl = strip_floats(tiles, m), xs = xi_stride(C);
    float *strips = loupe_thread_buffer((size_t)(2 * n * sl));
    if (!strips) return;
    float *rows = strips + n * sl; // Bᵀ across the strips
    for (ptrdiff_t c = c0; c < c1; c++) {
        for (int i = 0; i < n; i++) fill_strip(j, c, i, L0, tiles, strips + i * sl);
        for (ptrdiff_t e = 0; e < sl; e += 16) {
            __m512 d[6], r[6];
            for (int i = 0; i < n; i++) d[i] = _mm512_load_ps(strips + i * sl + e);
            if (m == 4) bt6(d, r); else bt4(d, r);
            for (int a = 0; a < n; a++) _mm512_store_ps(rows + a * sl + e, r[a]);
        }
        for (ptrdiff_t l = 0; l < tiles; l += 16) {
            float *dst = j->VT + (l / LANES) * n * n * xs + c * LANES + l % LANES;
            for (int a = 0; a < n; a++) {
                __m512 d[6], v[6];
                if (m == 4) { deinterleave6(rows + a * sl + 4 * l, d); bt6(d, v); }
                else { deinterleave4(rows + a * sl + 2 * l, d); bt4(d, v); }
                for (int b = 0; b < n; b++) _mm512_store_ps(dst + (a * n + b) * xs, v[b]);
            }
        }
    }
}

__attribute__((target("avx512f,fma")))
static void input_task(void *ctx, ptrdiff_t t) {
    const wino_job *j = ctx;
    if (j->u->m == 2) input_task_m(j, t, 2);
    else input_task_m(j, t, 4);
}

/// o[a*m + b] (16 tiles per vector) = (Aᵀ S A)[a][b] + bias, then the activation (ReLU keeping
/// NaN, as torch.relu: only lanes below zero become 0; others through the vector-math kernels
/// while the block is in registers/L1), for the output-channel row whose frequency ξ is at
/// s + ξ*mr*LANES; tiles of m x m (n = m + 2). Inlined once per m.
static inline __attribute__((target("avx512f,fma"), always_inline)) void inverse_tile(const wino_job *j, const float *s,
                                                                                        float bias, const int m, __m512 *o) {
    const int n = m + 2, mr = j->u->mr;
    const __m512 zero = _mm512_setzero_ps(), b = _mm512_set1_ps(bias);
    __m512 t[4][6];
    for (int k = 0; k < n; k++) {
        __m512 v[6], q[4];
        for (int i = 0; i < n; i++) v[i] = _mm512_load_ps(s + (i * n + k) * mr * LANES);
        if (m == 4) at6(v, q); else at4(v, q);
        for (int a = 0; a < m; a++) t[a][k] = q[a];
    }
    for (int a = 0; a < m; a++) {
        __m512 q[4];
        if (m == 4) at6(t[a], q); else at4(t[a], q);
        for (int c = 0; c < m; c++) {
            __m512 v = _mm512_add_ps(q[c], b);
            if (j->act == LOUPE_ACT_RELU) v = _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ), zero);
            o[a * m + c] = v;
        }
    }
    if (j->act >= LOUPE_ACT_UNARY) {
        float blk[256] __attribute__((aligned(64)));
        for (int q = 0; q < m * m; q++) _mm512_store_ps(blk + 16 * q, o[q]);
        loupe_vunary_serial(j->act - LOUPE_ACT_UNARY, blk, blk, 16 * m * m, 0, 0);
        for (int q = 0; q < m * m; q++) o[q] = _mm512_load_ps(blk + 16 * q);
    }
}

/// Where tile L's m x m block starts in y for output channel o (its origin in oy, ox), or NULL for
/// the spare tile of a row, which is computed and never stored.
static inline float *tile_output(const wino_job *j, ptrdiff_t L, ptrdiff_t o, int m, ptrdiff_t *oy, ptrdiff_t *ox) {
    const ptrdiff_t n = L / j->Tp, tl = L % j->Tp, tx = tl % j->tw1;
    if (tx == j->tw) return NULL;
    *oy = (tl / j->tw1) * m;
    *ox = tx * m;
    return j->y + (n * j->u->M + o) * j->g.outH * j->g.outW + *oy * j->g.outW + *ox;
}

/// The F(2x2, 3x3) output transform, as output_transform4 with 2x2 blocks.
__attribute__((target("avx512f,fma")))
static void output_transform2(const wino_job *j, ptrdiff_t L0, ptrdiff_t i0, ptrdiff_t mv, const float *S) {
    const ptrdiff_t outH = j->g.outH, outW = j->g.outW;
    // Row 0 of 16 tiles' blocks as pairs (o0[l], o1[l]): lanes 0..15 then 16..31.
    const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    for (int h = 0; h < 2; h++) {
        const ptrdiff_t Tall = j->N * j->Tp;
        if (L0 + 16 * h >= Tall) break;
        ptrdiff_t lanes = Tall - (L0 + 16 * h) < 16 ? Tall - (L0 + 16 * h) : 16;
        for (ptrdiff_t r = 0; r < mv; r++) {
            __m512 o[4];
            inverse_tile(j, S + r * LANES + 16 * h, j->bias ? j->bias[i0 + r] : 0.0f, 2, o);
            float blk[64] __attribute__((aligned(64)));
            // blk: row 0 pairs of tiles 0..15, then row 1 pairs.
            _mm512_store_ps(blk, _mm512_permutex2var_ps(o[0], lo, o[1]));
            _mm512_store_ps(blk + 16, _mm512_permutex2var_ps(o[0], hi, o[1]));
            _mm512_store_ps(blk + 32, _mm512_permutex2var_ps(o[2], lo, o[3]));
            _mm512_store_ps(blk + 48, _mm512_permutex2var_ps(o[2], hi, o[3]));
            for (ptrdiff_t l = 0; l < lanes; l++) {
                ptrdiff_t oy, ox;
                float *yt = tile_output(j, L0 + 16 * h + l, i0 + r, 2, &oy, &ox);
                if (!yt) continue;
                if (oy + 2 <= outH && ox + 2 <= outW) {
                    memcpy(yt, blk + 2 * l, 2 * sizeof(float));
                    memcpy(yt + outW, blk + 32 + 2 * l, 2 * sizeof(float));
                } else {
                    for (ptrdiff_t a = 0; a < 2 && oy + a < outH; a++)
                        for (ptrdiff_t b = 0; b < 2 && ox + b < outW; b++) yt[a * outW + b] = blk[32 * a + 2 * l + b];
                }
            }
        }
    }
}

/// Y = Aᵀ S A for rows [0, mv) of the row panel at output channel i0 and the panel's tiles, then
/// bias and ReLU, and each tile's 4x4 block stored (clipped at the bottom and right edges).
__attribute__((target("avx512f,fma")))
static void output_transform4(const wino_job *j, ptrdiff_t L0, ptrdiff_t i0, ptrdiff_t mv, const float *S) {
    const ptrdiff_t outH = j->g.outH, outW = j->g.outW;
    for (int h = 0; h < 2; h++) {
        const ptrdiff_t Tall = j->N * j->Tp;
        if (L0 + 16 * h >= Tall) break;
        ptrdiff_t lanes = Tall - (L0 + 16 * h) < 16 ? Tall - (L0 + 16 * h) : 16;
        for (ptrdiff_t r = 0; r < mv; r++) {
            __m512 o[16], col[16];
            inverse_tile(j, S + r * LANES + 16 * h, j->bias ? j->bias[i0 + r] : 0.0f, 4, o);
            loupe_transpose16(o, col);
            for (ptrdiff_t l = 0; l < lanes; l++) {
                ptrdiff_t oy, ox;
                float *yt = tile_output(j, L0 + 16 * h + l, i0 + r, 4, &oy, &ox);
                if (!yt) continue;
                if (oy + 4 <= outH && ox + 4 <= outW) {
                    _mm_storeu_ps(yt, _mm512_castps512_ps128(col[l]));
                    _mm_storeu_ps(yt + outW, _mm512_extractf32x4_ps(col[l], 1));
                    _mm_storeu_ps(yt + 2 * outW, _mm512_extractf32x4_ps(col[l], 2));
                    _mm_storeu_ps(yt + 3 * outW, _mm512_extractf32x4_ps(col[l], 3));
                } else {
                    float blk[16];
                    _mm512_storeu_ps(blk, col[l]);
                    for (ptrdiff_t a = 0; a < 4 && oy + a < outH; a++)
                        for (ptrdiff_t b = 0; b < 4 && ox + b < outW; b++) yt[a * outW + b] = blk[a * 4 + b];
                }
            }
        }
    }
}

/// Phase B, task t: panel t / groups of the band, row panels of group t % groups: the 36
/// frequency GEMMs into S, then the output transform.
static void gemm_task(void *ctx, ptrdiff_t t) {
    const wino_job *j = ctx;
    const loupe_winograd *u = j->u;
    const gemm_path *path = &loupe_gemm_paths[2];
    const ptrdiff_t C = u->C, q = t / j->groups, L0 = (j->band0 + q) * LANES;
    const ptrdiff_t rp0 = (t % j->groups) * j->rpPerGroup;
    const ptrdiff_t rp1 = rp0 + j->rpPerGroup < u->rowPanels ? rp0 + j->rpPerGroup : u->rowPanels;
    const int nxi = u->xi;
    float *S = loupe_thread_buffer((size_t)nxi * (size_t)u->mr * LANES);
    if (!S) return;
    const ptrdiff_t xs = xi_stride(C);
    const float *V = j->VT + q * nxi * xs;
    for (ptrdiff_t rp = rp0; rp < rp1; rp++) {
        const ptrdiff_t i0 = rp * u->mr, mv = u->M - i0 < u->mr ? u->M - i0 : u->mr;
        micro_kernel kern = mv <= path->short_rows ? path->short_kernel : path->kernel;
        const float *a = u->u + rp * nxi * C * u->mr;
        for (int xi = 0; xi < nxi; xi++) kern(C, a + xi * C * u->mr, V + xi * xs, S + xi * u->mr * LANES, LANES, 1.0f, 0.0f);
        if (u->m == 2) output_transform2(j, L0, i0, mv, S);
        else output_transform4(j, L0, i0, mv, S);
    }
}

static void run_tasks(ptrdiff_t n, loupe_task_fn fn, void *ctx, int threaded) {
    if (threaded && n > 1) loupe_parallel_for(n, fn, ctx);
    else for (ptrdiff_t t = 0; t < n; t++) fn(ctx, t);
}

/// Transformed input of a band of panels: about 4 MB, so a large image or batch runs in bands.
#define BAND_FLOATS (1 << 20)

int loupe_conv2d_winograd(const loupe_winograd *u, ptrdiff_t N, const float *x, const loupe_window2d *g, const float *bias,
                          int act, float *y, int threaded) {
    if (N < 1 || !loupe_winograd_matches(u) || g->kH != 3 || g->kW != 3 || g->strideH != 1 || g->strideW != 1 || g->dilH != 1 ||
        g->dilW != 1)
        return 0;
    // A NaN or infinity would spread over its whole 4x4 tiles (and inf - inf makes NaN where the
    // direct sum gives an infinity): such inputs take the direct path, as PyTorch computes them.
    if (!loupe_all_finite(x, N * u->C * g->inH * g->inW)) return 0;
    wino_job j;
    memset(&j, 0, sizeof j);
    j.u = u;
    j.N = N;
    j.x = x;
    j.g = *g;
    j.bias = bias;
    j.act = act;
    j.y = y;
    const int m = u->m;
    j.th = (g->outH + m - 1) / m;
    j.tw = (g->outW + m - 1) / m;
    j.tw1 = j.tw + 1;
    j.Tp = j.th * j.tw1;
    const ptrdiff_t C = u->C, panels = (N * j.Tp + LANES - 1) / LANES;
    // Every band streams all of U (xi x M x C floats) once: at least 4 panels per band.
    ptrdiff_t perBand = BAND_FLOATS / (u->xi * xi_stride(C));
    if (perBand < 4) perBand = 4;
    if (perBand > panels) perBand = panels;
    j.VT = aligned_alloc(64, (size_t)perBand * u->xi * (size_t)xi_stride(C) * sizeof(float));
    if (!j.VT) return 0;
    const int threads = threaded ? loupe_threads() : 1;
    j.chanPerTask = threads > 1 ? (C + 4 * threads - 1) / (4 * threads) : C;
    for (j.band0 = 0; j.band0 < panels; j.band0 += perBand) {
        j.bandPanels = panels - j.band0 < perBand ? panels - j.band0 : perBand;
        // Few panels for the threads: split the output channels too.
        ptrdiff_t groups = 1;
        if (threads > 1 && j.bandPanels < 4 * threads) {
            groups = (4 * threads + j.bandPanels - 1) / j.bandPanels;
            if (groups > u->rowPanels) groups = u->rowPanels;
        }
        j.rpPerGroup = (u->rowPanels + groups - 1) / groups;
        j.groups = (u->rowPanels + j.rpPerGroup - 1) / j.rpPerGroup;
        run_tasks((C + j.chanPerTask - 1) / j.chanPerTask, input_task, &j, threads > 1);
        run_tasks(j.bandPanels * j.groups, gemm_task, &j, threads > 1);
    }
    free(j.VT);
    return 1;
}

#else

int loupe_conv2d_winograd(const loupe_winograd *u, ptrdiff_t N, const float *x, const loupe_window2d *g, const float *bias,
                          int act, float *y, int threaded) {
    (void)u; (void)N; (void)x; (void)g; (void)bias; (void)act; (void)y; (void)threaded;
    return 0;
}

#endif
