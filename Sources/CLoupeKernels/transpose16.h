// In-register 16 x 16 transpose of 32-bit lanes, shared by A-panel packing (gemm.c) and the
// Winograd output transform (winograd.c). Not part of the module.
#ifndef CLOUPE_TRANSPOSE16_H
#define CLOUPE_TRANSPOSE16_H
#if defined(__x86_64__)
#include <immintrin.h>

/// col[j] lane i = r[i] lane j, for i, j in 0..<16: unpacks at 32 then 64 bits, then two rounds
/// of 128-bit lane shuffles (64 shuffles in all, no memory round trip).
static inline __attribute__((target("avx512f"), always_inline)) void loupe_transpose16(const __m512 r[16], __m512 col[16]) {
    __m512 t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
        __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
        u[4 * i + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        u[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        u[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        u[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    // u[4i + j], 128-bit lane c: column 4c + j of rows 4i..4i+3.
    for (int j = 0; j < 4; j++) {
        __m512 a = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x88), b = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xDD);
        __m512 c = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x88), d = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xDD);
        col[j] = _mm512_shuffle_f32x4(a, c, 0x88);
        col[8 + j] = _mm512_shuffle_f32x4(a, c, 0xDD);
        col[4 + j] = _mm512_shuffle_f32x4(b, d, 0x88);
        col[12 + j] = _mm512_shuffle_f32x4(b, d, 0xDD);
    }
}
#endif
#endif
