// A stride-2 input row split into its two column phases, shared by the depthwise plane kernels
// (window_simd.c) and the few-channel direct convolution (conv_smallc.c); not part of the public
// module.
#ifndef CLOUPE_ROW_SPLIT_H
#define CLOUPE_ROW_SPLIT_H
#include <stddef.h>
#if defined(__x86_64__)
#include <immintrin.h>
#include "lane_mask.h"

/// One input row split into its two stride-2 phases in one pass: column c goes to phase
/// (c + padLeft) % 2 at index (c + padLeft) / 2. Each 32 columns are two loads, two permutes and
/// two stores; copy_strided would read the row once per phase, 16 outputs at a time.
static inline __attribute__((target("avx512f"))) void split_row_s2_avx512(float *phases, ptrdiff_t phaseW, const float *src,
                                                                     ptrdiff_t inW, ptrdiff_t padLeft) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    const ptrdiff_t pe = padLeft & 1, po = pe ^ 1;
    float *de = phases + pe * phaseW + padLeft / 2, *dO = phases + po * phaseW + (padLeft + 1) / 2;
    // Destination lanes past the phase row are dropped (columns a right-trimmed window never reads).
    const ptrdiff_t ne = (inW + 1) / 2, no = inW / 2;
    const ptrdiff_t roomE = phaseW - padLeft / 2, roomO = phaseW - (padLeft + 1) / 2;
    const ptrdiff_t lastE = ne < roomE ? ne : roomE, lastO = no < roomO ? no : roomO;
    for (ptrdiff_t c = 0, k = 0; c < inW; c += 32, k += 16) {
        const ptrdiff_t left = inW - c;
        const __m512 a = left >= 16 ? _mm512_loadu_ps(src + c) : _mm512_maskz_loadu_ps(lanes16(left), src + c);
        const __m512 b = left >= 32 ? _mm512_loadu_ps(src + c + 16)
                                    : left > 16 ? _mm512_maskz_loadu_ps(lanes16(left - 16), src + c + 16) : _mm512_setzero_ps();
        if (lastE - k >= 16) _mm512_storeu_ps(de + k, _mm512_permutex2var_ps(a, even, b));
        else if (lastE > k) _mm512_mask_storeu_ps(de + k, lanes16(lastE - k), _mm512_permutex2var_ps(a, even, b));
        if (lastO - k >= 16) _mm512_storeu_ps(dO + k, _mm512_permutex2var_ps(a, odd, b));
        else if (lastO > k) _mm512_mask_storeu_ps(dO + k, lanes16(lastO - k), _mm512_permutex2var_ps(a, odd, b));
    }
}
#endif
#endif
