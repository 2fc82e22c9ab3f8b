// Stride-2 row moves of im2col and col2im at AVX-512 width: every second element of a row
// gathered into a contiguous one, and a contiguous row added into every second element. The
// scalar loops move one float per iteration; these move 16 with two loads, a permute and one or
// two stores. Not part of the public module.
#ifndef CLOUPE_ROW_STRIDE2_H
#define CLOUPE_ROW_STRIDE2_H
#include <stddef.h>
#if defined(__x86_64__)
#include <immintrin.h>
#include "lane_mask.h"

/// d[i] = s[2i] for i < n; reads s[0 ... 2n-2] only.
static inline __attribute__((target("avx512f"))) void gather_s2_avx512(float *d, const float *s, ptrdiff_t n) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    for (ptrdiff_t i = 0; i < n; i += 16) {
        const ptrdiff_t avail = 2 * (n - i) - 1; // readable elements from s + 2i
        const __m512 a = avail >= 16 ? _mm512_loadu_ps(s + 2 * i) : _mm512_maskz_loadu_ps(lanes16(avail), s + 2 * i);
        const __m512 b = avail >= 32 ? _mm512_loadu_ps(s + 2 * i + 16)
                                     : avail > 16 ? _mm512_maskz_loadu_ps(lanes16(avail - 16), s + 2 * i + 16) : _mm512_setzero_ps();
        const __m512 v = _mm512_permutex2var_ps(a, even, b);
        if (n - i >= 16) _mm512_storeu_ps(d + i, v);
        else _mm512_mask_storeu_ps(d + i, lanes16(n - i), v);
    }
}

/// d[2i] += s[i] for i < n; touches d[0 ... 2n-2] only, odd elements left as they are.
static inline __attribute__((target("avx512f"))) void scatter_add_s2_avx512(float *d, const float *s, ptrdiff_t n) {
    const __m512i lo = _mm512_setr_epi32(0, 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0);
    const __m512i hi = _mm512_setr_epi32(8, 0, 9, 0, 10, 0, 11, 0, 12, 0, 13, 0, 14, 0, 15, 0);
    const __mmask16 evenLanes = 0x5555;
    for (ptrdiff_t i = 0; i < n; i += 16) {
        const ptrdiff_t left = n - i, avail = 2 * left - 1; // writable elements from d + 2i
        const __m512 v = left >= 16 ? _mm512_loadu_ps(s + i) : _mm512_maskz_loadu_ps(lanes16(left), s + i);
        const __mmask16 k0 = avail >= 16 ? evenLanes : (__mmask16)(evenLanes & lanes16(avail));
        const __mmask16 k1 = avail >= 32 ? evenLanes : avail > 16 ? (__mmask16)(evenLanes & lanes16(avail - 16)) : 0;
        float *d0 = d + 2 * i, *d1 = d + 2 * i + 16;
        __m512 a = _mm512_maskz_loadu_ps(k0, d0);
        _mm512_mask_storeu_ps(d0, k0, _mm512_mask_add_ps(a, k0, a, _mm512_permutexvar_ps(lo, v)));
        if (k1) {
            __m512 b = _mm512_maskz_loadu_ps(k1, d1);
            _mm512_mask_storeu_ps(d1, k1, _mm512_mask_add_ps(b, k1, b, _mm512_permutexvar_ps(hi, v)));
        }
    }
}
#endif
#endif
