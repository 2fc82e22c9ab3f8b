#ifndef CLOUPE_VMATH_H
#define CLOUPE_VMATH_H
#include <stddef.h>
#include <stdint.h>

// Vectorised element-wise math, softmax and row normalisation (vmath.c). One generic body
// (vmath_body.h, clang vector extensions) is compiled three times: 16 lanes with AVX-512F,
// 8 lanes with AVX2+FMA, 4 lanes portable; the widest the CPU supports is picked at run time.
// All three paths use the same algorithms, so they agree to rounding. Transcendentals are
// within a few ulp of the correctly rounded float result over the whole float range (the
// tests state the measured maxima), with IEEE behaviour at ±inf/NaN and gradual underflow.

/// Path used: -1 = automatic (from loupe_cpu_level), 0 = portable, 1 = AVX2+FMA, 2 = AVX-512F.
/// Forcing a level the CPU lacks falls back to automatic. For tests and benchmarks.
void loupe_vmath_force_level(int level);
/// The level the next call uses.
int loupe_vmath_level(void);

/// A switch the Swift callers read (not the kernels here): 1 = route element-wise ops, softmax
/// and normalisation to the previous scalar Swift loops, for in-process A/B timing and tests.
void loupe_vmath_use_reference(int on);
int loupe_vmath_reference(void);

/// Element-wise functions of one operand. p0/p1 are the op's parameters where it has any.
typedef enum {
    LOUPE_VU_EXP = 0,
    LOUPE_VU_SIGMOID = 1,
    LOUPE_VU_TANH = 2,
    LOUPE_VU_ERF = 3,
    /// x·Φ(x) with the exact normal CDF (ONNX Gelu approximate="none").
    LOUPE_VU_GELU = 4,
    /// 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))), evaluated as x·sigmoid(2·inner).
    LOUPE_VU_GELU_TANH = 5,
    /// x < 0 ? 0 : x (NaN kept, as torch.relu and the ReLU fused into Conv).
    LOUPE_VU_RELU = 6,
    /// x ≥ 0 ? x : p0·x.
    LOUPE_VU_LEAKY_RELU = 7,
    /// min(max(x, p0), p1) (NaN propagates).
    LOUPE_VU_CLIP = 8,
    /// max(0, min(1, p0·x + p1)) (NaN propagates).
    LOUPE_VU_HARD_SIGMOID = 9,
    /// x·max(0, min(1, x/6 + 1/2)).
    LOUPE_VU_HARD_SWISH = 10,
    /// x·sigmoid(x) (SiLU / Swish).
    LOUPE_VU_SILU = 11,
    /// x > 0 ? x : p0·(eˣ − 1) (expm1 accuracy near 0).
    LOUPE_VU_ELU = 12,
    /// p1·(x > 0 ? x : p0·(eˣ − 1)).
    LOUPE_VU_SELU = 13,
    /// (x − p0) / p1, subtract then divide (the min-max scaling of a heat map in one pass).
    LOUPE_VU_SHIFT_DIVIDE = 14,
} loupe_vunary_op;

/// y[i] = op(x[i]) for i in 0..<n. x and y may be the same buffer. Large n runs on the pool.
void loupe_vunary(int op, const float *x, float *y, ptrdiff_t n, float p0, float p1);
/// The same, always on the calling thread (for kernels that apply it to blocks they just wrote).
void loupe_vunary_serial(int op, const float *x, float *y, ptrdiff_t n, float p0, float p1);
/// min (want_max = 0) or max of x[0..<n] (±infinity when n = 0), NaN handled as Swift's
/// min/max on 16 interleaved lanes; the same result on every CPU path.
float loupe_vextremum(const float *x, ptrdiff_t n, int want_max);
/// The vertical pass of a separable bilinear resize: out row r (width floats) =
/// rows[y0[r]]·(1 − fy[r]) + rows[y1[r]]·fy[r], unfused; lohi receives the output's min and max
/// (NaN ignored; +inf, −inf when there is none).
void loupe_blend_rows(const float *rows, ptrdiff_t width, const int32_t *y0, const int32_t *y1, const float *fy,
                      ptrdiff_t height, float *out, float *lohi);
/// 1 when all n floats are finite, else 0 (input validation, Winograd's non-finite guard).
int loupe_all_finite(const float *x, ptrdiff_t n);

/// Element-wise derivatives: gx[i] = g[i]·f'(v[i]) where v is the op's output y for SIGMOID,
/// TANH, EXP, RELU (the executor keeps y) and the input x for the others.
typedef enum {
    LOUPE_VD_SIGMOID = 0,   // g·y·(1−y)
    LOUPE_VD_TANH = 1,      // g·(1−y²)
    LOUPE_VD_EXP = 2,       // g·y
    LOUPE_VD_RELU = 3,      // y > 0 ? g : 0
    LOUPE_VD_GELU = 4,      // g·(Φ(x) + x·φ(x))
    LOUPE_VD_GELU_TANH = 5, // g·d/dx of the tanh form
    LOUPE_VD_ERF = 6,       // g·2/√π·exp(−x²)
    LOUPE_VD_HARD_SWISH = 7,// x ≤ −3 ? 0 : (x < 3 ? g·(x/3 + 1/2) : g)
    LOUPE_VD_HARD_SIGMOID = 8, // 0 < p0·x + p1 < 1 ? g·p0 : 0
    LOUPE_VD_SILU = 9,      // g·σ(x)·(1 + x·σ(−x)), from x: the VJP of Mul(x, Sigmoid(x)) in one pass
} loupe_vderiv_op;

/// gx[i] = g[i]·f'(v[i]). Large n runs on the pool.
void loupe_vderiv(int op, const float *v, const float *g, float *gx, ptrdiff_t n, float p0, float p1);

/// Binary arithmetic. MIN/MAX propagate NaN from either operand.
typedef enum {
    LOUPE_VB_ADD = 0, LOUPE_VB_SUB = 1, LOUPE_VB_MUL = 2, LOUPE_VB_DIV = 3, LOUPE_VB_MIN = 4, LOUPE_VB_MAX = 5,
    /// ReLU(a + b) in one pass (a residual Add followed by Relu): s < 0 ? 0 : s, NaN kept.
    LOUPE_VB_ADD_RELU = 6,
} loupe_vbinary_op;

/// Two-level broadcast binary op: for r in 0..<rows, k in 0..<n:
///   y[r·n + k] = a[r·aRow + k·aInner] op b[r·bRow + k·bInner]
/// with aInner, bInner ∈ {0, 1}. Covers same-shape (rows 1), scalar, per-channel
/// ((N,C,H,W)·(N,C,1,1): bRow 1, bInner 0) and row-vector ((N,T,D)+(D): bRow 0, bInner 1)
/// broadcasts as contiguous vector loops. Large problems run on the pool.
void loupe_vbinary(int op, const float *a, ptrdiff_t aRow, ptrdiff_t aInner,
                   const float *b, ptrdiff_t bRow, ptrdiff_t bInner, float *y, ptrdiff_t rows, ptrdiff_t n);

/// Softmax (log = 0) or log-softmax (log = 1) over the middle axis of an (outer, d, inner)
/// layout, max-shifted. An all −inf slice gives NaN (0/0) like PyTorch. x and y must not alias.
void loupe_softmax(const float *x, float *y, ptrdiff_t outer, ptrdiff_t d, ptrdiff_t inner, int log);

/// VJP of loupe_softmax from its output y: softmax y·(g − Σ g·y), log-softmax g − exp(y)·Σ g.
void loupe_softmax_backward(const float *y, const float *g, float *gx, ptrdiff_t outer, ptrdiff_t d,
                            ptrdiff_t inner, int log);

/// Normalises `rows` contiguous rows of d elements: y = (x − μ)·r·scale + bias with
/// r = 1/√(var + eps) (biased variance, two passes). scale/bias element k of row `row` is
/// scale[row·scaleRow + k·scaleInner] (bias likewise; bias may be NULL). mean/invStd (may be
/// NULL) receive μ and r per row. y = NULL computes the moments only (scale/bias unused).
/// Large problems run on the pool.
void loupe_normalize_rows(const float *x, float *y, ptrdiff_t rows, ptrdiff_t d, float eps,
                          const float *scale, ptrdiff_t scaleRow, ptrdiff_t scaleInner,
                          const float *bias, ptrdiff_t biasRow, ptrdiff_t biasInner,
                          float *mean, float *invStd);

/// Backward of one normalised row y = x̂·s + b, x̂ = (x − μ)·r (see loupe_normalize_rows), with
/// optional cotangents gMean, gInvStd of μ and r themselves:
///   ĝ = g·s;  gx = r·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)) + gMean/d − gInvStd·r²·x̂/d.
/// scale element k is scale[k·scaleInner]. When non-NULL, gScaleAcc[k] += g·x̂ and
/// gBiasAcc[k] += g per element; sums (non-NULL) receives {Σ g, Σ g·x̂}.
void loupe_normalize_row_backward(const float *x, const float *g, ptrdiff_t d, float mean, float invStd,
                                  const float *scale, ptrdiff_t scaleInner, float gMean, float gInvStd,
                                  float *gx, float *gScaleAcc, float *gBiasAcc, float *sums);

/// Fake quantization, the value of a QuantizeLinear -> DequantizeLinear pair:
/// y = (clamp(rint(x / scale) + zero_point, lo, hi) - zero_point) * scale (half to even; NaN -> 0).
/// Vectorised, split over the pool for large n (quantize.c).
void loupe_fake_quantize(const float *x, float *y, ptrdiff_t n, float scale, float zero_point, float lo, float hi);
/// The quantized values shifted by the zero point, as floats: y = clamp(rint(x / scale) +
/// zero_point, lo, hi) - zero_point (NaN -> 0), the operand of an integer product.
void loupe_quantize_shifted(const float *x, float *y, ptrdiff_t n, float scale, float zero_point, float lo, float hi);
/// Its straight-through gradient: gx = g where lo <= rint(x / scale) + zero_point <= hi, else 0.
void loupe_fake_quantize_grad(const float *x, const float *g, float *gx, ptrdiff_t n, float scale, float zero_point,
                              float lo, float hi);

#endif
