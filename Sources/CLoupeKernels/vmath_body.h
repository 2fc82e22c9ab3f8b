// Generic body of vmath.c, included once per SIMD width. The includer defines
//   VW      lanes (16, 8, 4)
//   VSUF    name suffix (avx512, avx2, portable)
//   VATTR   function attributes (the target(...) of the width)
// and everything here is written with clang vector extensions, so one source gives the
// AVX-512F, AVX2+FMA and portable variants with identical arithmetic.
//
// Accuracy (float32, against double-precision references, see VectorMathTests):
//   exp      Cody–Waite reduction x = n·ln2 + r, degree-6 polynomial for e^r on |r| ≤ ln2/2,
//            2^n applied in two exact half-steps so gradual underflow rounds once.
//   sigmoid  e = exp(−|x|); (x ≥ 0 ? 1 : e)/(1 + e): no cancellation, no overflow.
//   tanh     odd polynomial x + x·u·P(u), u = x², for |x| < 0.625; 1 − 2/(e^{2|x|} + 1) above.
//   erf      x·P(x²) for |x| < 1; 1 − e^{−x²}·R(1/|x|) above, where R ≈ erfcx is a polynomial in
//            1/|x| on two intervals (|x| in [1, 2.5], [2.5, 10.5]) and x² is split exactly with an
//            FMA so e^{−x²} keeps full relative accuracy in the tail.
// The polynomial coefficients were fitted for this file (weighted least squares on Chebyshev
// nodes against scipy's erf/erfcx/tanh in double, then rounded to float and re-checked).

#define VCAT2(a, b) a##_##b
#define VCAT(a, b) VCAT2(a, b)
#define VF VCAT(vf, VSUF)
#define VI VCAT(vi, VSUF)
#define FN(name) VCAT(name, VSUF)

typedef float VF __attribute__((ext_vector_type(VW)));
typedef int VI __attribute__((ext_vector_type(VW)));

static inline VATTR VF FN(vload)(const float *p) { VF v; __builtin_memcpy(&v, p, sizeof v); return v; }
static inline VATTR void FN(vstore)(float *p, VF v) { __builtin_memcpy(p, &v, sizeof v); }
/// m ? a : b per lane (m is a comparison result: all ones or all zeros).
static inline VATTR VF FN(vsel)(VI m, VF a, VF b) { return (VF)(((VI)a & m) | ((VI)b & ~m)); }
static inline VATTR VF FN(vfma)(VF a, VF b, VF c) { return __builtin_elementwise_fma(a, b, c); }
static inline VATTR VF FN(vabs)(VF x) { return (VF)((VI)x & 0x7fffffff); }
/// |magnitude| with the sign bit of `sign`.
static inline VATTR VF FN(vcopysign)(VF magnitude, VF sign) {
    return (VF)(((VI)magnitude & 0x7fffffff) | ((VI)sign & (int)0x80000000));
}
static inline VATTR float FN(hsum)(VF v) {
    float s = 0;
    for (int i = 0; i < VW; i++) s += v[i];
    return s;
}
static inline VATTR float FN(hmax)(VF v) {
    float m = v[0];
    for (int i = 1; i < VW; i++) m = v[i] > m ? v[i] : m;
    return m;
}

/// eʳ − 1 = r + r²·P(r) for x = n·ln2 + r, |r| ≤ ln2/2 (Cody–Waite, ln2 split in two), of an
/// x already clamped to where n fits an exponent; n is returned in *ni. The shared core of
/// vexp, vexpm1 and vsilu, which differ only in their clamps and in how they apply 2ⁿ.
static inline VATTR VF FN(vexpm1_reduced)(VF xc, VI *ni) {
    // Round to nearest by adding 1.5·2²³: the low mantissa bits of t then hold n.
    const VF magic = 12582912.0f;
    VF t = FN(vfma)(xc, (VF)1.44269504088896341f, magic);
    VF n = t - magic;
    VF r = FN(vfma)(n, (VF)(-0.693359375f), xc);
    r = FN(vfma)(n, (VF)2.12194440e-4f, r);
    VF p = FN(vfma)((VF)1.9875691500e-4f, r, (VF)1.3981999507e-3f);
    p = FN(vfma)(p, r, (VF)8.3334519073e-3f);
    p = FN(vfma)(p, r, (VF)4.1665795894e-2f);
    p = FN(vfma)(p, r, (VF)1.6666665459e-1f);
    p = FN(vfma)(p, r, (VF)5.0000001201e-1f);
    *ni = (VI)t - (VI)magic;
    return FN(vfma)(p, r * r, r);
}

static inline VATTR VF FN(vexp)(VF x) {
    // Clamping keeps n in [−150, 128]; beyond the clamps the result is already 0 or +inf
    // (e^−104 is below half the smallest subnormal, e^88.8 above FLT_MAX). NaN passes through
    // both selects (comparisons with NaN are false) and poisons the polynomial.
    VF xc = FN(vsel)(x < -104.0f, (VF)(-104.0f), x);
    xc = FN(vsel)(xc > 88.8f, (VF)(88.8f), xc);
    VI ni;
    VF p = FN(vexpm1_reduced)(xc, &ni) + 1.0f;
    // 2ⁿ as two normal powers of two: p·2^⌊n/2⌋ is exact, the second product rounds once
    // (into the subnormal range when n < −126).
    VI half = ni >> 1;
    VF s1 = (VF)((half + 127) << 23);
    VF s2 = (VF)((ni - half + 127) << 23);
    return (p * s1) * s2;
}

/// eˣ − 1 without cancellation near 0: with x = n·ln2 + r (as in vexp), eʳ − 1 = r + r²·P(r) is
/// kept apart from the 1, and 2ⁿ·(eʳ − 1) + (2ⁿ − 1) recombines them in one FMA.
static inline VATTR VF FN(vexpm1)(VF x) {
    VF xc = FN(vsel)(x < -18.0f, (VF)(-18.0f), x); // e^−18 is below half an ulp of 1
    xc = FN(vsel)(xc > 88.8f, (VF)(88.8f), xc);
    VI ni;
    VF q = FN(vexpm1_reduced)(xc, &ni);
    VI top = ni == 128;
    VF s = (VF)(((ni - (top & 1)) + 127) << 23); // 2ⁿ, or 2¹²⁷ when n = 128 (doubled below)
    VF y = FN(vfma)(q, s, s - 1.0f);
    y = FN(vsel)(top, ((q + 1.0f) * s) * 2.0f, y);
    y = FN(vsel)(ni == 0, q, y);
    return FN(vsel)(x < -18.0f, (VF)(-1.0f), y);
}

static inline VATTR VF FN(vsigmoid)(VF x) {
    VF e = FN(vexp)(-FN(vabs)(x));
    return FN(vsel)(x >= 0.0f, (VF)1.0f, e) / (1.0f + e);
}

#if VW == 16
/// 2^(j/32) rounded to float, j = 0..<32: the AVX-512 SiLU's exponential table.
static const float FN(exp2_32nds)[32] = {
    1.000000000e+00f, 1.021897197e+00f, 1.044273734e+00f, 1.067140460e+00f,
    1.090507746e+00f, 1.114386797e+00f, 1.138788581e+00f, 1.163724899e+00f,
    1.189207077e+00f, 1.215247393e+00f, 1.241857767e+00f, 1.269050956e+00f,
    1.296839595e+00f, 1.325236678e+00f, 1.354255557e+00f, 1.383909941e+00f,
    1.414213538e+00f, 1.445180774e+00f, 1.476826191e+00f, 1.509164453e+00f,
    1.542210817e+00f, 1.575980902e+00f, 1.610490322e+00f, 1.645755529e+00f,
    1.681792855e+00f, 1.718619347e+00f, 1.756252170e+00f, 1.794709086e+00f,
    1.834008098e+00f, 1.874167681e+00f, 1.915206552e+00f, 1.957144141e+00f
};
#endif

/// x·σ(x) as x / (1 + e^−x), PyTorch's formula. The exponent is clamped to [−87.3, 89]: there
/// e^−x needs one power-of-two scaling instead of vexp's two half-steps for gradual underflow,
/// and nothing is lost. Above x = 87.3, 1 + e^−x rounds to 1. At n = 128 (x ≤ −88.7) the scale's
/// bits are +inf, so e^−x = inf and the result is −0 where the true one is under 1e−36 in
/// magnitude, and silu(−inf) = −inf/inf = NaN as in PyTorch. SiLU follows every expand and
/// depthwise convolution of EfficientNet, where it was an eighth of the forward's samples.
///
/// The AVX-512 path reduces further: e^a = 2^n · 2^(j/32) · e^r with k = 32n + j the nearest
/// integer to a·32/ln2 and |r| ≤ ln2/64, so e^r needs a degree-3 polynomial (truncation
/// 6e−10) and 2^(j/32) is one two-register table lookup (vpermt2ps on k's low five bits): about a
/// third fewer floating-point operations than the shared degree-7 chain, on a unit that runs one
/// 512-bit FMA per cycle (Zen 4). All paths stay within a few ulp of Double (`testSiLUAccuracy`).
static inline VATTR VF FN(vsilu)(VF x) {
#if VW == 16
    // a = −x clamped to [−87.3, 89], kept as xc = −a = x clamped to [−89, 87.3] by max and min
    // (which return their second operand, x, when it is NaN), the negation folded into the FMAs
    // below: two operations where the compare-and-select form took five, the same values bit
    // for bit (14.7 against 16.3 cycles per 16 floats on Zen 4).
    VF xc = (VF)_mm512_min_ps(_mm512_set1_ps(87.3f), _mm512_max_ps(_mm512_set1_ps(-89.0f), (__m512)x));
    const VF magic = 12582912.0f;
    VF t = (VF)_mm512_fnmadd_ps((__m512)xc, _mm512_set1_ps(46.1662413084468283f), (__m512)magic);   // a·32/ln2 + magic
    VF k = t - magic;
    // ln2/32 in two parts; k·(0.693359375/32) is exact (9 + 13 significant bits). r = a − k·c₁.
    VF r = (VF)_mm512_fnmsub_ps((__m512)k, _mm512_set1_ps(0.02166748046875f), (__m512)xc);
    r = FN(vfma)(k, (VF)6.63107625e-06f, r);
    VF p = FN(vfma)(FN(vfma)(FN(vfma)(r, (VF)0.166666672f, (VF)0.5f), r, (VF)1.0f), r, (VF)1.0f);
    VI ki = (VI)t - (VI)magic;
    const __m512 table = _mm512_permutex2var_ps(_mm512_loadu_ps(FN(exp2_32nds)), (__m512i)ki,
                                                _mm512_loadu_ps(FN(exp2_32nds) + 16));
    // 2^n with n = floor(k / 32); at n = 128 its bits are +inf, as on the other paths.
    VF e = (p * (VF)table) * (VF)(((ki >> 5) + 127) << 23);
#else
    VF a = FN(vsel)(x > 87.3f, (VF)(-87.3f), -x);   // NaN fails both tests and stays NaN
    a = FN(vsel)(a > 89.0f, (VF)89.0f, a);
    VI ni;
    VF e = (FN(vexpm1_reduced)(a, &ni) + 1.0f) * (VF)((ni + 127) << 23);
#endif
    return x / (1.0f + e);
}

static inline VATTR VF FN(vtanh)(VF x) {
    VF a = FN(vabs)(x);
    VF u = x * x;
    VF p = FN(vfma)((VF)(-0.005652355030179024f), u, (VF)0.020583488047122955f);
    p = FN(vfma)(p, u, (VF)(-0.053718484938144684f));
    p = FN(vfma)(p, u, (VF)0.13331091403961182f);
    p = FN(vfma)(p, u, (VF)(-0.3333325982093811f));
    VF small = FN(vcopysign)(FN(vfma)(x * u, p, x), x); // keeps tanh(−0) = −0
    VF e = FN(vexp)(a + a);
    VF big = FN(vcopysign)(1.0f - 2.0f / (e + 1.0f), x);
    return FN(vsel)(a < 0.625f, small, big);
}

/// erfc(a)·e^{a²} for a ≥ 1 (clamped to [1, 10.5]) as a polynomial in w = 1/a: for a < 2.5 in
/// w − 0.7 (centred, so the float Horner evaluation is well conditioned), above in w itself
/// (there R ≈ w/√π is dominated by the linear term). Coefficients are chosen per lane.
static inline VATTR VF FN(verfcx_tail)(VF a) {
    VF w = 1.0f / a;
    VI near = a < 2.5f;
    VF t = w - FN(vsel)(near, (VF)0.7f, (VF)0.0f); // exact (Sterbenz) on the near interval
#define C(lo, hi) FN(vsel)(near, (VF)(lo), (VF)(hi))
    VF p = C(0.005766985472291708f, -0.1705024242401123f);
    p = FN(vfma)(p, t, C(-0.02040974237024784f, 0.7081151604652405f));
    p = FN(vfma)(p, t, C(0.031199296936392784f, -1.1137615442276f));
    p = FN(vfma)(p, t, C(-0.03048825077712536f, 0.7944942116737366f));
    p = FN(vfma)(p, t, C(0.008968274109065533f, -0.07707049697637558f));
    p = FN(vfma)(p, t, C(0.048461515456438065f, -0.2718362510204315f));
    p = FN(vfma)(p, t, C(-0.16193830966949463f, -0.0008515843073837459f));
    p = FN(vfma)(p, t, C(0.357195645570755f, 0.5642296671867371f));
    p = FN(vfma)(p, t, C(0.3336736559867859f, -8.157887236848183e-07f));
#undef C
    return p;
}

/// e^{−a²} for a ≥ 0 with a² split exactly (hi + lo) so the tail keeps its relative accuracy.
static inline VATTR VF FN(vexp_neg_square)(VF a) {
    VF hi = a * a;
    VF lo = FN(vfma)(a, a, -hi);
    VF e = FN(vexp)(-hi);
    return FN(vfma)(-e, lo, e);
}

/// x·P(x²) ≈ erf(x) for |x| < 1.
static inline VATTR VF FN(verf_small)(VF x) {
    VF u = x * x;
    VF p = FN(vfma)((VF)(-0.0005711573758162558f), u, (VF)0.0049400366842746735f);
    p = FN(vfma)(p, u, (VF)(-0.0267343632876873f));
    p = FN(vfma)(p, u, (VF)0.11281221359968185f);
    p = FN(vfma)(p, u, (VF)(-0.3761252164840698f));
    p = FN(vfma)(p, u, (VF)1.128379225730896f); // 2/√π rounded, so erf(x) ≈ (2/√π)·x is exact near 0
    return x * p;
}

/// erfc(|x|) for |x| ≥ 1 (lanes below 1 are computed at 1 and must be discarded by the caller).
static inline VATTR VF FN(verfc_abs_tail)(VF x) {
    VF a = FN(vabs)(x);
    a = FN(vsel)(a > 10.5f, (VF)10.5f, a);
    a = FN(vsel)(a < 1.0f, (VF)1.0f, a);
    return FN(vexp_neg_square)(a) * FN(verfcx_tail)(a);
}

static inline VATTR VF FN(verf)(VF x) {
    VF big = FN(vcopysign)(1.0f - FN(verfc_abs_tail)(x), x);
    return FN(vsel)(FN(vabs)(x) < 1.0f, FN(verf_small)(x), big);
}

/// Φ(x) = (1 + erf(x/√2))/2 without cancellation for negative x: erfc(|z|)/2 there.
static inline VATTR VF FN(vnormal_cdf)(VF x) {
    VF z = x * 0.7071067811865476f;
    VF a = FN(vabs)(z);
    VF small = 0.5f + 0.5f * FN(verf_small)(z);
    // e^{−z²} from x² (exact split) halved, not from z², which carries z's rounding.
    VF ac = FN(vsel)(a > 10.5f, (VF)10.5f, a);
    ac = FN(vsel)(ac < 1.0f, (VF)1.0f, ac);
    VF ax = FN(vsel)(a > 10.5f, (VF)14.849242404917497f, FN(vabs)(x)); // |x| ≤ 10.5·√2: ±inf stay finite here
    VF hi = ax * ax;
    VF lo = FN(vfma)(ax, ax, -hi);
    VF e = FN(vexp)(-0.5f * hi);
    e = FN(vfma)(-e, 0.5f * lo, e);
    VF halfErfc = 0.5f * e * FN(verfcx_tail)(ac);
    // z beyond the clamp: e^{−z²} is 0 there anyway (x² ≥ 220).
    VF big = FN(vsel)(x < 0.0f, halfErfc, 1.0f - halfErfc);
    return FN(vsel)(a < 1.0f, small, big);
}

static inline VATTR VF FN(vgelu)(VF x) { return x * FN(vnormal_cdf)(x); }

static inline VATTR VF FN(vgelu_tanh_inner2)(VF x) {
    // 2·√(2/π)·(x + 0.044715·x³)
    return 1.5957691216057308f * FN(vfma)(0.044715f * x * x, x, x);
}

static inline VATTR VF FN(vclip)(VF x, float lo, float hi) {
    // Swift.max(x, lo) then Swift.min(·, hi), ties and NaN included.
    VF t = FN(vsel)((VF)lo >= x, (VF)lo, x);
    return FN(vsel)((VF)hi < t, (VF)hi, t);
}

static inline VATTR VF FN(vhard_sigmoid)(VF x, float alpha, float beta) {
    VF t = FN(vfma)((VF)alpha, x, (VF)beta);
    t = FN(vsel)(t > 1.0f, (VF)1.0f, t);
    return FN(vsel)(t < 0.0f, (VF)0.0f, t);
}

static inline VATTR VF FN(vhard_swish)(VF x) {
    VF t = x / 6.0f + 0.5f;
    t = FN(vsel)(t > 1.0f, (VF)1.0f, t);
    t = FN(vsel)(t < 0.0f, (VF)0.0f, t);
    return x * t;
}

/// One op over a contiguous range. The switch sits outside the loops: every case is its own
/// loop with the element function inlined (the compiler specialises on the constant op).
#define VLOOP(EXPR)                                                        \
    do {                                                                   \
        ptrdiff_t i = 0;                                                   \
        for (; i + VW <= n; i += VW) {                                     \
            VF x = FN(vload)(src + i);                                     \
            FN(vstore)(dst + i, EXPR);                                     \
        }                                                                  \
        if (i < n) {                                                       \
            float buf[VW] = {0};                                           \
            for (ptrdiff_t k = 0; k < n - i; k++) buf[k] = src[i + k];     \
            VF x = FN(vload)(buf);                                         \
            FN(vstore)(buf, EXPR);                                         \
            for (ptrdiff_t k = 0; k < n - i; k++) dst[i + k] = buf[k];     \
        }                                                                  \
    } while (0)

static VATTR void FN(unary_range)(int op, const float *src, float *dst, ptrdiff_t n, float p0, float p1) {
    switch (op) {
    case LOUPE_VU_EXP: VLOOP(FN(vexp)(x)); break;
    case LOUPE_VU_SIGMOID: VLOOP(FN(vsigmoid)(x)); break;
    case LOUPE_VU_TANH: VLOOP(FN(vtanh)(x)); break;
    case LOUPE_VU_ERF: VLOOP(FN(verf)(x)); break;
    case LOUPE_VU_GELU: VLOOP(FN(vgelu)(x)); break;
    case LOUPE_VU_GELU_TANH: VLOOP(x * FN(vsigmoid)(FN(vgelu_tanh_inner2)(x))); break;
    case LOUPE_VU_RELU: VLOOP(FN(vsel)(x < 0.0f, (VF)0.0f, x)); break;
    case LOUPE_VU_SILU: VLOOP(FN(vsilu)(x)); break;
    case LOUPE_VU_LEAKY_RELU: VLOOP(FN(vsel)(x >= 0.0f, x, p0 * x)); break;
    case LOUPE_VU_CLIP: VLOOP(FN(vclip)(x, p0, p1)); break;
    case LOUPE_VU_HARD_SIGMOID: VLOOP(FN(vhard_sigmoid)(x, p0, p1)); break;
    case LOUPE_VU_HARD_SWISH: VLOOP(FN(vhard_swish)(x)); break;
    case LOUPE_VU_ELU: VLOOP(FN(vsel)(x > 0.0f, x, p0 * FN(vexpm1)(x))); break;
    case LOUPE_VU_SELU: VLOOP(p1 * FN(vsel)(x > 0.0f, x, p0 * FN(vexpm1)(x))); break;
    case LOUPE_VU_SHIFT_DIVIDE: VLOOP((x - p0) / p1); break;
    default: VLOOP(x); break;
    }
}
#undef VLOOP

#define VLOOP2(EXPR)                                                       \
    do {                                                                   \
        ptrdiff_t i = 0;                                                   \
        for (; i + VW <= n; i += VW) {                                     \
            VF v = FN(vload)(vs + i), g = FN(vload)(gs + i);               \
            FN(vstore)(dst + i, EXPR);                                     \
        }                                                                  \
        if (i < n) {                                                       \
            float bv[VW] = {0}, bg[VW] = {0};                              \
            for (ptrdiff_t k = 0; k < n - i; k++) { bv[k] = vs[i + k]; bg[k] = gs[i + k]; } \
            VF v = FN(vload)(bv), g = FN(vload)(bg);                       \
            FN(vstore)(bv, EXPR);                                          \
            for (ptrdiff_t k = 0; k < n - i; k++) dst[i + k] = bv[k];      \
        }                                                                  \
    } while (0)

static VATTR void FN(deriv_range)(int op, const float *vs, const float *gs, float *dst, ptrdiff_t n, float p0, float p1) {
    switch (op) {
    case LOUPE_VD_SIGMOID: VLOOP2(g * v * (1.0f - v)); break;
    case LOUPE_VD_TANH: VLOOP2(g * (1.0f - v * v)); break;
    case LOUPE_VD_EXP: VLOOP2(g * v); break;
    case LOUPE_VD_RELU: VLOOP2(FN(vsel)(v > 0.0f, g, (VF)0.0f)); break;
    case LOUPE_VD_GELU:
        // Φ(x) + x·φ(x), φ(x) = e^{−x²/2}/√(2π).
        VLOOP2(g * FN(vfma)(v * 0.3989422804014327f, FN(vexp)(-0.5f * v * v), FN(vnormal_cdf)(v)));
        break;
    case LOUPE_VD_GELU_TANH:
        // y = x·σ(2u): dy/dx = σ + x·2u'·σ(1 − σ), u' = √(2/π)(1 + 3·0.044715x²).
        // σ(1 − σ) = e/(1 + e)² with e = exp(−|2u|): no cancellation where σ → 1.
        VLOOP2(({
            VF u2 = FN(vgelu_tanh_inner2)(v);
            VF e = FN(vexp)(-FN(vabs)(u2)), den = 1.0f + e;
            VF s = FN(vsel)(u2 >= 0.0f, (VF)1.0f, e) / den;
            VF du2 = 1.5957691216057308f * FN(vfma)(0.134145f * v, v, (VF)1.0f);
            g * FN(vfma)(v * du2, e / (den * den), s);
        }));
        break;
    case LOUPE_VD_ERF: VLOOP2(g * 1.1283791670955126f * FN(vexp_neg_square)(FN(vabs)(v))); break;
    case LOUPE_VD_HARD_SWISH:
        VLOOP2(FN(vsel)(v <= -3.0f, (VF)0.0f, FN(vsel)(v < 3.0f, g * (v / 3.0f + 0.5f), g)));
        break;
    case LOUPE_VD_HARD_SIGMOID:
        VLOOP2(({
            VF t = FN(vfma)((VF)p0, v, (VF)p1);
            FN(vsel)((t > 0.0f) & (t < 1.0f), g * p0, (VF)0.0f);
        }));
        break;
    case LOUPE_VD_SILU:
        // σ(x) and 1 − σ(x) = σ(−x) from one e = exp(−|x|) and one reciprocal, so neither
        // cancels where σ → 1: x·σ(−x) stays accurate for large x.
        VLOOP2(({
            VF e = FN(vexp)(-FN(vabs)(v)), r = 1.0f / (1.0f + e);
            VI pos = v >= 0.0f;
            VF s = FN(vsel)(pos, (VF)1.0f, e) * r, sm = FN(vsel)(pos, e, (VF)1.0f) * r;
            g * FN(vfma)(v * sm, s, s);
        }));
        break;
    default: VLOOP2(((void)v, g)); break;
    }
    (void)p1;
}
#undef VLOOP2

/// One row of the two-level broadcast (see loupe_vbinary); aInner/bInner are 0 or 1.
#define VBIN_LOOP(A_AT, B_AT, OPEXPR)                                      \
    do {                                                                   \
        ptrdiff_t i = 0;                                                   \
        for (; i + VW <= n; i += VW) {                                     \
            VF x = A_AT, y = B_AT;                                         \
            FN(vstore)(dst + i, OPEXPR);                                   \
        }                                                                  \
        for (; i < n; i++) {                                               \
            float xs = a[aInner ? i : 0], ys = b[bInner ? i : 0];          \
            VF x = xs, y = ys;                                             \
            VF r = OPEXPR;                                                 \
            dst[i] = r[0];                                                 \
        }                                                                  \
    } while (0)

#define VBIN_OPS(A_AT, B_AT)                                                                        \
    switch (op) {                                                                                   \
    case LOUPE_VB_ADD: VBIN_LOOP(A_AT, B_AT, x + y); break;                                         \
    case LOUPE_VB_SUB: VBIN_LOOP(A_AT, B_AT, x - y); break;                                         \
    case LOUPE_VB_MUL: VBIN_LOOP(A_AT, B_AT, x * y); break;                                         \
    case LOUPE_VB_DIV: VBIN_LOOP(A_AT, B_AT, x / y); break;                                         \
    case LOUPE_VB_MIN: VBIN_LOOP(A_AT, B_AT, FN(vsel)((x < y) | (x != x), x, y)); break;            \
    case LOUPE_VB_MAX: VBIN_LOOP(A_AT, B_AT, FN(vsel)((x > y) | (x != x), x, y)); break;            \
    case LOUPE_VB_ADD_RELU: VBIN_LOOP(A_AT, B_AT, FN(vsel)(x + y < 0.0f, (VF)0.0f, x + y)); break;   \
    default: break;                                                                                 \
    }

static VATTR void FN(binary_row)(int op, const float *a, ptrdiff_t aInner, const float *b, ptrdiff_t bInner,
                                 float *dst, ptrdiff_t n) {
    if (aInner && bInner) {
        VBIN_OPS(FN(vload)(a + i), FN(vload)(b + i))
    } else if (aInner) {
        const VF bv = b[0];
        VBIN_OPS(FN(vload)(a + i), bv)
    } else if (bInner) {
        const VF av = a[0];
        VBIN_OPS(av, FN(vload)(b + i))
    } else {
        const VF av = a[0], bv = b[0];
        VBIN_OPS(av, bv)
    }
}
#undef VBIN_OPS
#undef VBIN_LOOP

// MARK: - Softmax

/// Softmax of `rows` contiguous rows of d elements.
static VATTR void FN(softmax_rows)(const float *x, float *y, ptrdiff_t rows, ptrdiff_t d, int lg) {
    for (ptrdiff_t r = 0; r < rows; r++) {
        const float *xr = x + r * d;
        float *yr = y + r * d;
        VF mv = -__builtin_inff();
        ptrdiff_t k = 0;
        for (; k + VW <= d; k += VW) {
            VF v = FN(vload)(xr + k);
            mv = FN(vsel)(v > mv, v, mv);
        }
        float m = FN(hmax)(mv);
        for (; k < d; k++) m = xr[k] > m ? xr[k] : m;
        if (m == -__builtin_inff()) m = 0; // all −inf: 0/0 = NaN below, as PyTorch
        VF sv = 0.0f;
        k = 0;
        for (; k + VW <= d; k += VW) {
            VF e = FN(vexp)(FN(vload)(xr + k) - m);
            if (!lg) FN(vstore)(yr + k, e);
            sv += e;
        }
        float s = FN(hsum)(sv);
        for (; k < d; k++) {
            float e = FN(vexp)((VF)(xr[k] - m))[0];
            if (!lg) yr[k] = e;
            s += e;
        }
        if (lg) {
            float ls = m + logf(s);
            k = 0;
            for (; k + VW <= d; k += VW) FN(vstore)(yr + k, FN(vload)(xr + k) - ls);
            for (; k < d; k++) yr[k] = xr[k] - ls;
        } else {
            float inv = 1.0f / s;
            k = 0;
            for (; k + VW <= d; k += VW) FN(vstore)(yr + k, FN(vload)(yr + k) * inv);
            for (; k < d; k++) yr[k] *= inv;
        }
    }
}

/// Softmax along a strided axis: columns j0..<j1 of one (d, inner) block, VW columns at a time
/// (contiguous loads along `inner`), the remainder one column at a time.
static VATTR void FN(softmax_cols)(const float *x, float *y, ptrdiff_t d, ptrdiff_t inner, ptrdiff_t j0, ptrdiff_t j1, int lg) {
    ptrdiff_t j = j0;
    for (; j + VW <= j1; j += VW) {
        VF m = -__builtin_inff();
        for (ptrdiff_t k = 0; k < d; k++) { VF v = FN(vload)(x + k * inner + j); m = FN(vsel)(v > m, v, m); }
        m = FN(vsel)(m == -__builtin_inff(), (VF)0.0f, m);
        VF s = 0.0f;
        for (ptrdiff_t k = 0; k < d; k++) {
            VF e = FN(vexp)(FN(vload)(x + k * inner + j) - m);
            if (!lg) FN(vstore)(y + k * inner + j, e);
            s += e;
        }
        if (lg) {
            VF ls = s;
            for (int l = 0; l < VW; l++) ls[l] = m[l] + logf(s[l]);
            for (ptrdiff_t k = 0; k < d; k++) FN(vstore)(y + k * inner + j, FN(vload)(x + k * inner + j) - ls);
        } else {
            VF inv = 1.0f / s;
            for (ptrdiff_t k = 0; k < d; k++) FN(vstore)(y + k * inner + j, FN(vload)(y + k * inner + j) * inv);
        }
    }
    for (; j < j1; j++) {
        float m = -__builtin_inff();
        for (ptrdiff_t k = 0; k < d; k++) m = x[k * inner + j] > m ? x[k * inner + j] : m;
        if (m == -__builtin_inff()) m = 0;
        float s = 0;
        for (ptrdiff_t k = 0; k < d; k++) {
            float e = FN(vexp)((VF)(x[k * inner + j] - m))[0];
            if (!lg) y[k * inner + j] = e;
            s += e;
        }
        if (lg) {
            float ls = m + logf(s);
            for (ptrdiff_t k = 0; k < d; k++) y[k * inner + j] = x[k * inner + j] - ls;
        } else {
            float inv = 1.0f / s;
            for (ptrdiff_t k = 0; k < d; k++) y[k * inner + j] *= inv;
        }
    }
}

static VATTR void FN(softmax_back_rows)(const float *y, const float *g, float *gx, ptrdiff_t rows, ptrdiff_t d, int lg) {
    for (ptrdiff_t r = 0; r < rows; r++) {
        const float *yr = y + r * d, *gr = g + r * d;
        float *o = gx + r * d;
        VF sv = 0.0f;
        ptrdiff_t k = 0;
        if (lg) {
            for (; k + VW <= d; k += VW) sv += FN(vload)(gr + k);
        } else {
            for (; k + VW <= d; k += VW) sv = FN(vfma)(FN(vload)(gr + k), FN(vload)(yr + k), sv);
        }
        float s = FN(hsum)(sv);
        for (; k < d; k++) s += lg ? gr[k] : gr[k] * yr[k];
        k = 0;
        if (lg) {
            for (; k + VW <= d; k += VW)
                FN(vstore)(o + k, FN(vfma)(-FN(vexp)(FN(vload)(yr + k)), (VF)s, FN(vload)(gr + k)));
            for (; k < d; k++) o[k] = gr[k] - FN(vexp)((VF)yr[k])[0] * s;
        } else {
            for (; k + VW <= d; k += VW) FN(vstore)(o + k, FN(vload)(yr + k) * (FN(vload)(gr + k) - s));
            for (; k < d; k++) o[k] = yr[k] * (gr[k] - s);
        }
    }
}

static VATTR void FN(softmax_back_cols)(const float *y, const float *g, float *gx, ptrdiff_t d, ptrdiff_t inner,
                                        ptrdiff_t j0, ptrdiff_t j1, int lg) {
    ptrdiff_t j = j0;
    for (; j + VW <= j1; j += VW) {
        VF s = 0.0f;
        for (ptrdiff_t k = 0; k < d; k++) {
            VF gv = FN(vload)(g + k * inner + j);
            s = lg ? s + gv : FN(vfma)(gv, FN(vload)(y + k * inner + j), s);
        }
        for (ptrdiff_t k = 0; k < d; k++) {
            VF yv = FN(vload)(y + k * inner + j), gv = FN(vload)(g + k * inner + j);
            FN(vstore)(gx + k * inner + j, lg ? FN(vfma)(-FN(vexp)(yv), s, gv) : yv * (gv - s));
        }
    }
    for (; j < j1; j++) {
        float s = 0;
        for (ptrdiff_t k = 0; k < d; k++) s += lg ? g[k * inner + j] : g[k * inner + j] * y[k * inner + j];
        for (ptrdiff_t k = 0; k < d; k++) {
            ptrdiff_t q = k * inner + j;
            gx[q] = lg ? g[q] - FN(vexp)((VF)y[q])[0] * s : y[q] * (g[q] - s);
        }
    }
}

// MARK: - Row normalisation

static VATTR void FN(normalize_row)(const float *x, float *y, ptrdiff_t d, float eps, const float *scale,
                                    ptrdiff_t sInner, const float *bias, ptrdiff_t bInner, float *meanOut, float *invOut) {
    VF sv = 0.0f;
    ptrdiff_t k = 0;
    for (; k + VW <= d; k += VW) sv += FN(vload)(x + k);
    double s = FN(hsum)(sv);
    for (; k < d; k++) s += x[k];
    float mean = (float)(s / (double)d);
    VF qv = 0.0f;
    k = 0;
    for (; k + VW <= d; k += VW) { VF t = FN(vload)(x + k) - mean; qv = FN(vfma)(t, t, qv); }
    double q = FN(hsum)(qv);
    for (; k < d; k++) { float t = x[k] - mean; q += (double)t * t; }
    float inv = (float)(1.0 / sqrt(q / (double)d + (double)eps));
    if (meanOut) *meanOut = mean;
    if (invOut) *invOut = inv;
    if (!y) return; // moments only
    k = 0;
    for (; k + VW <= d; k += VW) {
        VF s_ = sInner ? FN(vload)(scale + k) : (VF)scale[0];
        VF b_ = bias ? (bInner ? FN(vload)(bias + k) : (VF)bias[0]) : (VF)0.0f;
        FN(vstore)(y + k, FN(vfma)((FN(vload)(x + k) - mean) * inv, s_, b_));
    }
    for (; k < d; k++) {
        float s_ = scale[sInner ? k : 0], b_ = bias ? bias[bInner ? k : 0] : 0.0f;
        y[k] = (x[k] - mean) * inv * s_ + b_;
    }
}

static VATTR void FN(normalize_row_backward)(const float *x, const float *g, ptrdiff_t d, float mean, float r,
                                             const float *scale, ptrdiff_t sInner, float gMean, float gInv,
                                             float *gx, float *gScaleAcc, float *gBiasAcc, float *sums) {
    VF sgh = 0.0f, sghx = 0.0f, sg = 0.0f, sgx = 0.0f;
    ptrdiff_t k = 0;
    for (; k + VW <= d; k += VW) {
        VF xh = (FN(vload)(x + k) - mean) * r, gv = FN(vload)(g + k);
        VF gh = gv * (sInner ? FN(vload)(scale + k) : (VF)scale[0]);
        sgh += gh; sghx = FN(vfma)(gh, xh, sghx);
        sg += gv; sgx = FN(vfma)(gv, xh, sgx);
        if (gScaleAcc) FN(vstore)(gScaleAcc + k, FN(vfma)(gv, xh, FN(vload)(gScaleAcc + k)));
        if (gBiasAcc) FN(vstore)(gBiasAcc + k, FN(vload)(gBiasAcc + k) + gv);
    }
    float tgh = FN(hsum)(sgh), tghx = FN(hsum)(sghx), tg = FN(hsum)(sg), tgx = FN(hsum)(sgx);
    for (; k < d; k++) {
        float xh = (x[k] - mean) * r, gv = g[k], gh = gv * scale[sInner ? k : 0];
        tgh += gh; tghx += gh * xh; tg += gv; tgx += gv * xh;
        if (gScaleAcc) gScaleAcc[k] += gv * xh;
        if (gBiasAcc) gBiasAcc[k] += gv;
    }
    if (sums) { sums[0] = tg; sums[1] = tgx; }
    float nd = (float)d, mg = tgh / nd, mgx = tghx / nd;
    float c0 = gMean / nd, c1 = gInv * r * r / nd;
    k = 0;
    for (; k + VW <= d; k += VW) {
        VF xh = (FN(vload)(x + k) - mean) * r;
        VF gh = FN(vload)(g + k) * (sInner ? FN(vload)(scale + k) : (VF)scale[0]);
        FN(vstore)(gx + k, r * (gh - mg - xh * mgx) + c0 - c1 * xh);
    }
    for (; k < d; k++) {
        float xh = (x[k] - mean) * r, gh = g[k] * scale[sInner ? k : 0];
        gx[k] = r * (gh - mg - xh * mgx) + c0 - c1 * xh;
    }
}

#undef VF
#undef VI
#undef FN
#undef VCAT
#undef VCAT2
