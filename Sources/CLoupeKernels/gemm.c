// Single precision GEMM after Goto & van de Geijn, "Anatomy of High-Performance Matrix
// Multiplication" (TOMS 2008): B is packed into kc x NR column panels (an L3-sized block), A
// into MR x kc row panels (an L2-sized block), and a register-tiled micro-kernel computes one
// MR x NR tile of C from one panel of each.
//
// Three micro-kernels, picked at run time from loupe_cpu_level(): AVX-512F (14 x 32 tile: 28 zmm
// accumulators), AVX2+FMA (6 x 16: 12 ymm accumulators) and portable C vector extensions. The
// SIMD ones are inline assembly inside functions with per-function target attributes, so the
// file compiles with default flags (no -mavx512f, no unsafeFlags in Package.swift) and a binary
// built here never executes AVX instructions on a CPU that lacks them: they are reached only
// through the dispatch table after the CPUID check.
#include "CLoupeKernels.h"
#include "gemm_internal.h"
#include "transpose16.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

// MARK: - Micro-kernels

#if defined(__x86_64__)
/// AVX-512F 14 x 32 tile (28 zmm accumulators), in inline assembly. SwiftPM compiles C targets at -O0 in debug builds,
/// where the intrinsics version spills its accumulators to the stack on every step (about 50x
/// slower); assembly runs at full speed whatever the optimisation level, so debug builds and
/// tests get a fast GEMM too. Zero accumulators, kc rank-1 updates (two B vectors, fourteen
/// broadcast A values), scale by alpha when alpha != 1, add beta * C when beta != 0, add the
/// row's bias when `bias` is set, ReLU when `relu`, store. The bias and ReLU belong here rather
/// than in a pass over the stored tile: that pass doubled the tile's stores, which on Zen 4
/// (512-bit stores split in two) cost pointwise convolutions with short K about a tenth of
/// their time (mobilenet_v3_small).
__attribute__((target("avx512f,fma")))
static void kernel_avx512_14x32_fused(ptrdiff_t kc, const float *restrict a, const float *restrict b,
                                      float *restrict c, ptrdiff_t ldc, float alpha, float beta,
                                      const float *restrict bias, ptrdiff_t relu) {
    ptrdiff_t ldcb = ldc * (ptrdiff_t)sizeof(float);
    ptrdiff_t useBeta = beta != 0.0f, useAlpha = alpha != 1.0f;
    float *cp;
    __asm__ volatile(
        "vpxord %%zmm0, %%zmm0, %%zmm0\n\t"
        "vpxord %%zmm1, %%zmm1, %%zmm1\n\t"
        "vpxord %%zmm2, %%zmm2, %%zmm2\n\t"
        "vpxord %%zmm3, %%zmm3, %%zmm3\n\t"
        "vpxord %%zmm4, %%zmm4, %%zmm4\n\t"
        "vpxord %%zmm5, %%zmm5, %%zmm5\n\t"
        "vpxord %%zmm6, %%zmm6, %%zmm6\n\t"
        "vpxord %%zmm7, %%zmm7, %%zmm7\n\t"
        "vpxord %%zmm8, %%zmm8, %%zmm8\n\t"
        "vpxord %%zmm9, %%zmm9, %%zmm9\n\t"
        "vpxord %%zmm10, %%zmm10, %%zmm10\n\t"
        "vpxord %%zmm11, %%zmm11, %%zmm11\n\t"
        "vpxord %%zmm12, %%zmm12, %%zmm12\n\t"
        "vpxord %%zmm13, %%zmm13, %%zmm13\n\t"
        "vpxord %%zmm14, %%zmm14, %%zmm14\n\t"
        "vpxord %%zmm15, %%zmm15, %%zmm15\n\t"
        "vpxord %%zmm16, %%zmm16, %%zmm16\n\t"
        "vpxord %%zmm17, %%zmm17, %%zmm17\n\t"
        "vpxord %%zmm18, %%zmm18, %%zmm18\n\t"
        "vpxord %%zmm19, %%zmm19, %%zmm19\n\t"
        "vpxord %%zmm20, %%zmm20, %%zmm20\n\t"
        "vpxord %%zmm21, %%zmm21, %%zmm21\n\t"
        "vpxord %%zmm22, %%zmm22, %%zmm22\n\t"
        "vpxord %%zmm23, %%zmm23, %%zmm23\n\t"
        "vpxord %%zmm24, %%zmm24, %%zmm24\n\t"
        "vpxord %%zmm25, %%zmm25, %%zmm25\n\t"
        "vpxord %%zmm26, %%zmm26, %%zmm26\n\t"
        "vpxord %%zmm27, %%zmm27, %%zmm27\n\t"
        // Fetch the C tile's 28 lines now: they are read (beta) and written only after the k
        // loop, and C rows are far apart, so without this each store waits on a miss.
        "mov %[c], %[cp]\n\t"
        "prefetcht0 (%[cp])\n\t"
        "prefetcht0 64(%[cp])\n\t"
        "add %[ldcb], %[cp]\n\t"
        "prefetcht0 (%[cp])\n\t"
        "prefetcht0 64(%[cp])\n\t"
        "add %[ldcb], %[cp]\n\t"
        "prefetcht0 (%[cp])\n\t"
        "prefetcht0 64(%[cp])\n\t"
        "add %[ldcb], %[cp]\n\t"
        "prefetcht0 (%[cp])\n\t"
        "prefetcht0 64(%[cp])\n\t"
        "add %[ldcb], %[cp]\n\t"
        "prefetcht0 (%[cp])\n\t"
        "prefetcht0 64(%[cp])\n\t"
        "add %[ldcb], %[cp]\n\t"
        "prefetcht0 (%[cp])\n\t"
        "prefetcht0 64(%[cp])\n\t"
        "add %[ldcb], %[cp]\n\t"
        "prefetcht0 (%[cp])\n\t"
        "prefetcht0 64(%[cp])\n\t"
        "add %[ldcb], %[cp]\n\t"
        "prefetcht0 (%[cp])\n\t"
        "prefetcht0 64(%[cp])\n\t"
        "add %[ldcb], %[cp]\n\t"
        "prefetcht0 (%[cp])\n\t"
        "prefetcht0 64(%[cp])\n\t"
        "add %[ldcb], %[cp]\n\t"
        "prefetcht0 (%[cp])\n\t"
        "prefetcht0 64(%[cp])\n\t"
        "add %[ldcb], %[cp]\n\t"
        "prefetcht0 (%[cp])\n\t"
        "prefetcht0 64(%[cp])\n\t"
        "add %[ldcb], %[cp]\n\t"
        "prefetcht0 (%[cp])\n\t"
        "prefetcht0 64(%[cp])\n\t"
        "add %[ldcb], %[cp]\n\t"
        "prefetcht0 (%[cp])\n\t"
        "prefetcht0 64(%[cp])\n\t"
        "add %[ldcb], %[cp]\n\t"
        "prefetcht0 (%[cp])\n\t"
        "prefetcht0 64(%[cp])\n\t"
        "add %[ldcb], %[cp]\n\t"
        "test %[kc], %[kc]\n\t"
        "jz 2f\n\t"
        "1:\n\t"
        "vmovups (%[b]), %%zmm28\n\t"
        "vmovups 64(%[b]), %%zmm29\n\t"
        "vbroadcastss 0(%[a]), %%zmm30\n\t"
        "vfmadd231ps %%zmm28, %%zmm30, %%zmm0\n\t"
        "vfmadd231ps %%zmm29, %%zmm30, %%zmm1\n\t"
        "vbroadcastss 4(%[a]), %%zmm31\n\t"
        "vfmadd231ps %%zmm28, %%zmm31, %%zmm2\n\t"
        "vfmadd231ps %%zmm29, %%zmm31, %%zmm3\n\t"
        "vbroadcastss 8(%[a]), %%zmm30\n\t"
        "vfmadd231ps %%zmm28, %%zmm30, %%zmm4\n\t"
        "vfmadd231ps %%zmm29, %%zmm30, %%zmm5\n\t"
        "vbroadcastss 12(%[a]), %%zmm31\n\t"
        "vfmadd231ps %%zmm28, %%zmm31, %%zmm6\n\t"
        "vfmadd231ps %%zmm29, %%zmm31, %%zmm7\n\t"
        "vbroadcastss 16(%[a]), %%zmm30\n\t"
        "vfmadd231ps %%zmm28, %%zmm30, %%zmm8\n\t"
        "vfmadd231ps %%zmm29, %%zmm30, %%zmm9\n\t"
        "vbroadcastss 20(%[a]), %%zmm31\n\t"
        "vfmadd231ps %%zmm28, %%zmm31, %%zmm10\n\t"
        "vfmadd231ps %%zmm29, %%zmm31, %%zmm11\n\t"
        "vbroadcastss 24(%[a]), %%zmm30\n\t"
        "vfmadd231ps %%zmm28, %%zmm30, %%zmm12\n\t"
        "vfmadd231ps %%zmm29, %%zmm30, %%zmm13\n\t"
        "vbroadcastss 28(%[a]), %%zmm31\n\t"
        "vfmadd231ps %%zmm28, %%zmm31, %%zmm14\n\t"
        "vfmadd231ps %%zmm29, %%zmm31, %%zmm15\n\t"
        "vbroadcastss 32(%[a]), %%zmm30\n\t"
        "vfmadd231ps %%zmm28, %%zmm30, %%zmm16\n\t"
        "vfmadd231ps %%zmm29, %%zmm30, %%zmm17\n\t"
        "vbroadcastss 36(%[a]), %%zmm31\n\t"
        "vfmadd231ps %%zmm28, %%zmm31, %%zmm18\n\t"
        "vfmadd231ps %%zmm29, %%zmm31, %%zmm19\n\t"
        "vbroadcastss 40(%[a]), %%zmm30\n\t"
        "vfmadd231ps %%zmm28, %%zmm30, %%zmm20\n\t"
        "vfmadd231ps %%zmm29, %%zmm30, %%zmm21\n\t"
        "vbroadcastss 44(%[a]), %%zmm31\n\t"
        "vfmadd231ps %%zmm28, %%zmm31, %%zmm22\n\t"
        "vfmadd231ps %%zmm29, %%zmm31, %%zmm23\n\t"
        "vbroadcastss 48(%[a]), %%zmm30\n\t"
        "vfmadd231ps %%zmm28, %%zmm30, %%zmm24\n\t"
        "vfmadd231ps %%zmm29, %%zmm30, %%zmm25\n\t"
        "vbroadcastss 52(%[a]), %%zmm31\n\t"
        "vfmadd231ps %%zmm28, %%zmm31, %%zmm26\n\t"
        "vfmadd231ps %%zmm29, %%zmm31, %%zmm27\n\t"
        "add $56, %[a]\n\t"
        "add $128, %[b]\n\t"
        "dec %[kc]\n\t"
        "jnz 1b\n\t"
        "2:\n\t"
        "test %[useAlpha], %[useAlpha]\n\t"
        "jz 4f\n\t"
        "vbroadcastss %[alpha], %%zmm30\n\t"
        "vmulps %%zmm30, %%zmm0, %%zmm0\n\t"
        "vmulps %%zmm30, %%zmm1, %%zmm1\n\t"
        "vmulps %%zmm30, %%zmm2, %%zmm2\n\t"
        "vmulps %%zmm30, %%zmm3, %%zmm3\n\t"
        "vmulps %%zmm30, %%zmm4, %%zmm4\n\t"
        "vmulps %%zmm30, %%zmm5, %%zmm5\n\t"
        "vmulps %%zmm30, %%zmm6, %%zmm6\n\t"
        "vmulps %%zmm30, %%zmm7, %%zmm7\n\t"
        "vmulps %%zmm30, %%zmm8, %%zmm8\n\t"
        "vmulps %%zmm30, %%zmm9, %%zmm9\n\t"
        "vmulps %%zmm30, %%zmm10, %%zmm10\n\t"
        "vmulps %%zmm30, %%zmm11, %%zmm11\n\t"
        "vmulps %%zmm30, %%zmm12, %%zmm12\n\t"
        "vmulps %%zmm30, %%zmm13, %%zmm13\n\t"
        "vmulps %%zmm30, %%zmm14, %%zmm14\n\t"
        "vmulps %%zmm30, %%zmm15, %%zmm15\n\t"
        "vmulps %%zmm30, %%zmm16, %%zmm16\n\t"
        "vmulps %%zmm30, %%zmm17, %%zmm17\n\t"
        "vmulps %%zmm30, %%zmm18, %%zmm18\n\t"
        "vmulps %%zmm30, %%zmm19, %%zmm19\n\t"
        "vmulps %%zmm30, %%zmm20, %%zmm20\n\t"
        "vmulps %%zmm30, %%zmm21, %%zmm21\n\t"
        "vmulps %%zmm30, %%zmm22, %%zmm22\n\t"
        "vmulps %%zmm30, %%zmm23, %%zmm23\n\t"
        "vmulps %%zmm30, %%zmm24, %%zmm24\n\t"
        "vmulps %%zmm30, %%zmm25, %%zmm25\n\t"
        "vmulps %%zmm30, %%zmm26, %%zmm26\n\t"
        "vmulps %%zmm30, %%zmm27, %%zmm27\n\t"
        "4:\n\t"
        "test %[useBeta], %[useBeta]\n\t"
        "jz 3f\n\t"
        "vbroadcastss %[beta], %%zmm31\n\t"
        "mov %[c], %[cp]\n\t"
        "vfmadd231ps (%[cp]), %%zmm31, %%zmm0\n\t"
        "vfmadd231ps 64(%[cp]), %%zmm31, %%zmm1\n\t"
        "add %[ldcb], %[cp]\n\t"
        "vfmadd231ps (%[cp]), %%zmm31, %%zmm2\n\t"
        "vfmadd231ps 64(%[cp]), %%zmm31, %%zmm3\n\t"
        "add %[ldcb], %[cp]\n\t"
        "vfmadd231ps (%[cp]), %%zmm31, %%zmm4\n\t"
        "vfmadd231ps 64(%[cp]), %%zmm31, %%zmm5\n\t"
        "add %[ldcb], %[cp]\n\t"
        "vfmadd231ps (%[cp]), %%zmm31, %%zmm6\n\t"
        "vfmadd231ps 64(%[cp]), %%zmm31, %%zmm7\n\t"
        "add %[ldcb], %[cp]\n\t"
        "vfmadd231ps (%[cp]), %%zmm31, %%zmm8\n\t"
        "vfmadd231ps 64(%[cp]), %%zmm31, %%zmm9\n\t"
        "add %[ldcb], %[cp]\n\t"
        "vfmadd231ps (%[cp]), %%zmm31, %%zmm10\n\t"
        "vfmadd231ps 64(%[cp]), %%zmm31, %%zmm11\n\t"
        "add %[ldcb], %[cp]\n\t"
        "vfmadd231ps (%[cp]), %%zmm31, %%zmm12\n\t"
        "vfmadd231ps 64(%[cp]), %%zmm31, %%zmm13\n\t"
        "add %[ldcb], %[cp]\n\t"
        "vfmadd231ps (%[cp]), %%zmm31, %%zmm14\n\t"
        "vfmadd231ps 64(%[cp]), %%zmm31, %%zmm15\n\t"
        "add %[ldcb], %[cp]\n\t"
        "vfmadd231ps (%[cp]), %%zmm31, %%zmm16\n\t"
        "vfmadd231ps 64(%[cp]), %%zmm31, %%zmm17\n\t"
        "add %[ldcb], %[cp]\n\t"
        "vfmadd231ps (%[cp]), %%zmm31, %%zmm18\n\t"
        "vfmadd231ps 64(%[cp]), %%zmm31, %%zmm19\n\t"
        "add %[ldcb], %[cp]\n\t"
        "vfmadd231ps (%[cp]), %%zmm31, %%zmm20\n\t"
        "vfmadd231ps 64(%[cp]), %%zmm31, %%zmm21\n\t"
        "add %[ldcb], %[cp]\n\t"
        "vfmadd231ps (%[cp]), %%zmm31, %%zmm22\n\t"
        "vfmadd231ps 64(%[cp]), %%zmm31, %%zmm23\n\t"
        "add %[ldcb], %[cp]\n\t"
        "vfmadd231ps (%[cp]), %%zmm31, %%zmm24\n\t"
        "vfmadd231ps 64(%[cp]), %%zmm31, %%zmm25\n\t"
        "add %[ldcb], %[cp]\n\t"
        "vfmadd231ps (%[cp]), %%zmm31, %%zmm26\n\t"
        "vfmadd231ps 64(%[cp]), %%zmm31, %%zmm27\n\t"
        "add %[ldcb], %[cp]\n\t"
        "3:\n\t"
        // Bias (one value per row) and ReLU (v < 0 ? 0 : v, which keeps NaN: vmaxps returns its
        // second source when either is NaN) while the tile is still in registers.
        "test %[bias], %[bias]\n\t"
        "jz 5f\n\t"
        "vbroadcastss 0(%[bias]), %%zmm30\n\t"
        "vaddps %%zmm30, %%zmm0, %%zmm0\n\t"
        "vaddps %%zmm30, %%zmm1, %%zmm1\n\t"
        "vbroadcastss 4(%[bias]), %%zmm30\n\t"
        "vaddps %%zmm30, %%zmm2, %%zmm2\n\t"
        "vaddps %%zmm30, %%zmm3, %%zmm3\n\t"
        "vbroadcastss 8(%[bias]), %%zmm30\n\t"
        "vaddps %%zmm30, %%zmm4, %%zmm4\n\t"
        "vaddps %%zmm30, %%zmm5, %%zmm5\n\t"
        "vbroadcastss 12(%[bias]), %%zmm30\n\t"
        "vaddps %%zmm30, %%zmm6, %%zmm6\n\t"
        "vaddps %%zmm30, %%zmm7, %%zmm7\n\t"
        "vbroadcastss 16(%[bias]), %%zmm30\n\t"
        "vaddps %%zmm30, %%zmm8, %%zmm8\n\t"
        "vaddps %%zmm30, %%zmm9, %%zmm9\n\t"
        "vbroadcastss 20(%[bias]), %%zmm30\n\t"
        "vaddps %%zmm30, %%zmm10, %%zmm10\n\t"
        "vaddps %%zmm30, %%zmm11, %%zmm11\n\t"
        "vbroadcastss 24(%[bias]), %%zmm30\n\t"
        "vaddps %%zmm30, %%zmm12, %%zmm12\n\t"
        "vaddps %%zmm30, %%zmm13, %%zmm13\n\t"
        "vbroadcastss 28(%[bias]), %%zmm30\n\t"
        "vaddps %%zmm30, %%zmm14, %%zmm14\n\t"
        "vaddps %%zmm30, %%zmm15, %%zmm15\n\t"
        "vbroadcastss 32(%[bias]), %%zmm30\n\t"
        "vaddps %%zmm30, %%zmm16, %%zmm16\n\t"
        "vaddps %%zmm30, %%zmm17, %%zmm17\n\t"
        "vbroadcastss 36(%[bias]), %%zmm30\n\t"
        "vaddps %%zmm30, %%zmm18, %%zmm18\n\t"
        "vaddps %%zmm30, %%zmm19, %%zmm19\n\t"
        "vbroadcastss 40(%[bias]), %%zmm30\n\t"
        "vaddps %%zmm30, %%zmm20, %%zmm20\n\t"
        "vaddps %%zmm30, %%zmm21, %%zmm21\n\t"
        "vbroadcastss 44(%[bias]), %%zmm30\n\t"
        "vaddps %%zmm30, %%zmm22, %%zmm22\n\t"
        "vaddps %%zmm30, %%zmm23, %%zmm23\n\t"
        "vbroadcastss 48(%[bias]), %%zmm30\n\t"
        "vaddps %%zmm30, %%zmm24, %%zmm24\n\t"
        "vaddps %%zmm30, %%zmm25, %%zmm25\n\t"
        "vbroadcastss 52(%[bias]), %%zmm30\n\t"
        "vaddps %%zmm30, %%zmm26, %%zmm26\n\t"
        "vaddps %%zmm30, %%zmm27, %%zmm27\n\t"
        "5:\n\t"
        "test %[relu], %[relu]\n\t"
        "jz 6f\n\t"
        "vpxord %%zmm31, %%zmm31, %%zmm31\n\t"
        "vmaxps %%zmm0, %%zmm31, %%zmm0\n\t"
        "vmaxps %%zmm1, %%zmm31, %%zmm1\n\t"
        "vmaxps %%zmm2, %%zmm31, %%zmm2\n\t"
        "vmaxps %%zmm3, %%zmm31, %%zmm3\n\t"
        "vmaxps %%zmm4, %%zmm31, %%zmm4\n\t"
        "vmaxps %%zmm5, %%zmm31, %%zmm5\n\t"
        "vmaxps %%zmm6, %%zmm31, %%zmm6\n\t"
        "vmaxps %%zmm7, %%zmm31, %%zmm7\n\t"
        "vmaxps %%zmm8, %%zmm31, %%zmm8\n\t"
        "vmaxps %%zmm9, %%zmm31, %%zmm9\n\t"
        "vmaxps %%zmm10, %%zmm31, %%zmm10\n\t"
        "vmaxps %%zmm11, %%zmm31, %%zmm11\n\t"
        "vmaxps %%zmm12, %%zmm31, %%zmm12\n\t"
        "vmaxps %%zmm13, %%zmm31, %%zmm13\n\t"
        "vmaxps %%zmm14, %%zmm31, %%zmm14\n\t"
        "vmaxps %%zmm15, %%zmm31, %%zmm15\n\t"
        "vmaxps %%zmm16, %%zmm31, %%zmm16\n\t"
        "vmaxps %%zmm17, %%zmm31, %%zmm17\n\t"
        "vmaxps %%zmm18, %%zmm31, %%zmm18\n\t"
        "vmaxps %%zmm19, %%zmm31, %%zmm19\n\t"
        "vmaxps %%zmm20, %%zmm31, %%zmm20\n\t"
        "vmaxps %%zmm21, %%zmm31, %%zmm21\n\t"
        "vmaxps %%zmm22, %%zmm31, %%zmm22\n\t"
        "vmaxps %%zmm23, %%zmm31, %%zmm23\n\t"
        "vmaxps %%zmm24, %%zmm31, %%zmm24\n\t"
        "vmaxps %%zmm25, %%zmm31, %%zmm25\n\t"
        "vmaxps %%zmm26, %%zmm31, %%zmm26\n\t"
        "vmaxps %%zmm27, %%zmm31, %%zmm27\n\t"
        "6:\n\t"
        "mov %[c], %[cp]\n\t"
        "vmovups %%zmm0, (%[cp])\n\t"
        "vmovups %%zmm1, 64(%[cp])\n\t"
        "add %[ldcb], %[cp]\n\t"
        "vmovups %%zmm2, (%[cp])\n\t"
        "vmovups %%zmm3, 64(%[cp])\n\t"
        "add %[ldcb], %[cp]\n\t"
        "vmovups %%zmm4, (%[cp])\n\t"
        "vmovups %%zmm5, 64(%[cp])\n\t"
        "add %[ldcb], %[cp]\n\t"
        "vmovups %%zmm6, (%[cp])\n\t"
        "vmovups %%zmm7, 64(%[cp])\n\t"
        "add %[ldcb], %[cp]\n\t"
        "vmovups %%zmm8, (%[cp])\n\t"
        "vmovups %%zmm9, 64(%[cp])\n\t"
        "add %[ldcb], %[cp]\n\t"
        "vmovups %%zmm10, (%[cp])\n\t"
        "vmovups %%zmm11, 64(%[cp])\n\t"
        "add %[ldcb], %[cp]\n\t"
        "vmovups %%zmm12, (%[cp])\n\t"
        "vmovups %%zmm13, 64(%[cp])\n\t"
        "add %[ldcb], %[cp]\n\t"
        "vmovups %%zmm14, (%[cp])\n\t"
        "vmovups %%zmm15, 64(%[cp])\n\t"
        "add %[ldcb], %[cp]\n\t"
        "vmovups %%zmm16, (%[cp])\n\t"
        "vmovups %%zmm17, 64(%[cp])\n\t"
        "add %[ldcb], %[cp]\n\t"
        "vmovups %%zmm18, (%[cp])\n\t"
        "vmovups %%zmm19, 64(%[cp])\n\t"
        "add %[ldcb], %[cp]\n\t"
        "vmovups %%zmm20, (%[cp])\n\t"
        "vmovups %%zmm21, 64(%[cp])\n\t"
        "add %[ldcb], %[cp]\n\t"
        "vmovups %%zmm22, (%[cp])\n\t"
        "vmovups %%zmm23, 64(%[cp])\n\t"
        "add %[ldcb], %[cp]\n\t"
        "vmovups %%zmm24, (%[cp])\n\t"
        "vmovups %%zmm25, 64(%[cp])\n\t"
        "add %[ldcb], %[cp]\n\t"
        "vmovups %%zmm26, (%[cp])\n\t"
        "vmovups %%zmm27, 64(%[cp])\n\t"
        "add %[ldcb], %[cp]\n\t"
        "vzeroupper\n\t"
        : [kc] "+r"(kc), [a] "+r"(a), [b] "+r"(b), [cp] "=&r"(cp)
        : [c] "r"(c), [ldcb] "r"(ldcb), [alpha] "m"(alpha), [beta] "m"(beta), [useBeta] "r"(useBeta),
          [useAlpha] "r"(useAlpha), [bias] "r"(bias), [relu] "r"(relu)
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31", "memory", "cc");
}

/// The plain micro-kernel: the fused one with no bias and no ReLU.
__attribute__((target("avx512f,fma")))
static void kernel_avx512_14x32_asm(ptrdiff_t kc, const float *restrict a, const float *restrict b,
                                    float *restrict c, ptrdiff_t ldc, float alpha, float beta) {
    kernel_avx512_14x32_fused(kc, a, b, c, ldc, alpha, beta, NULL, 0);
}


/// AVX2+FMA 6 x 16 tile (12 ymm accumulators), in inline assembly for the same reason as the
/// AVX-512 kernel.
__attribute__((target("avx2,fma")))
static void kernel_avx2_6x16_asm(ptrdiff_t kc, const float *restrict a, const float *restrict b,
                                 float *restrict c, ptrdiff_t ldc, float alpha, float beta) {
    ptrdiff_t ldcb = ldc * (ptrdiff_t)sizeof(float);
    ptrdiff_t useBeta = beta != 0.0f;
    float *cp;
    __asm__ volatile(
        "vxorps %%ymm0, %%ymm0, %%ymm0\n\t"
        "vxorps %%ymm1, %%ymm1, %%ymm1\n\t"
        "vxorps %%ymm2, %%ymm2, %%ymm2\n\t"
        "vxorps %%ymm3, %%ymm3, %%ymm3\n\t"
        "vxorps %%ymm4, %%ymm4, %%ymm4\n\t"
        "vxorps %%ymm5, %%ymm5, %%ymm5\n\t"
        "vxorps %%ymm6, %%ymm6, %%ymm6\n\t"
        "vxorps %%ymm7, %%ymm7, %%ymm7\n\t"
        "vxorps %%ymm8, %%ymm8, %%ymm8\n\t"
        "vxorps %%ymm9, %%ymm9, %%ymm9\n\t"
        "vxorps %%ymm10, %%ymm10, %%ymm10\n\t"
        "vxorps %%ymm11, %%ymm11, %%ymm11\n\t"
        "test %[kc], %[kc]\n\t"
        "jz 2f\n\t"
        "1:\n\t"
        "vmovups (%[b]), %%ymm12\n\t"
        "vmovups 32(%[b]), %%ymm13\n\t"
        "vbroadcastss 0(%[a]), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %%ymm0\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %%ymm1\n\t"
        "vbroadcastss 4(%[a]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %%ymm2\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %%ymm3\n\t"
        "vbroadcastss 8(%[a]), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %%ymm4\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %%ymm5\n\t"
        "vbroadcastss 12(%[a]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %%ymm6\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %%ymm7\n\t"
        "vbroadcastss 16(%[a]), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %%ymm8\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %%ymm9\n\t"
        "vbroadcastss 20(%[a]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %%ymm10\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %%ymm11\n\t"
        "add $24, %[a]\n\t"
        "add $64, %[b]\n\t"
        "dec %[kc]\n\t"
        "jnz 1b\n\t"
        "2:\n\t"
        "vbroadcastss %[alpha], %%ymm14\n\t"
        "vmulps %%ymm14, %%ymm0, %%ymm0\n\t"
        "vmulps %%ymm14, %%ymm1, %%ymm1\n\t"
        "vmulps %%ymm14, %%ymm2, %%ymm2\n\t"
        "vmulps %%ymm14, %%ymm3, %%ymm3\n\t"
        "vmulps %%ymm14, %%ymm4, %%ymm4\n\t"
        "vmulps %%ymm14, %%ymm5, %%ymm5\n\t"
        "vmulps %%ymm14, %%ymm6, %%ymm6\n\t"
        "vmulps %%ymm14, %%ymm7, %%ymm7\n\t"
        "vmulps %%ymm14, %%ymm8, %%ymm8\n\t"
        "vmulps %%ymm14, %%ymm9, %%ymm9\n\t"
        "vmulps %%ymm14, %%ymm10, %%ymm10\n\t"
        "vmulps %%ymm14, %%ymm11, %%ymm11\n\t"
        "test %[useBeta], %[useBeta]\n\t"
        "jz 3f\n\t"
        "vbroadcastss %[beta], %%ymm15\n\t"
        "mov %[c], %[cp]\n\t"
        "vfmadd231ps (%[cp]), %%ymm15, %%ymm0\n\t"
        "vfmadd231ps 32(%[cp]), %%ymm15, %%ymm1\n\t"
        "add %[ldcb], %[cp]\n\t"
        "vfmadd231ps (%[cp]), %%ymm15, %%ymm2\n\t"
        "vfmadd231ps 32(%[cp]), %%ymm15, %%ymm3\n\t"
        "add %[ldcb], %[cp]\n\t"
        "vfmadd231ps (%[cp]), %%ymm15, %%ymm4\n\t"
        "vfmadd231ps 32(%[cp]), %%ymm15, %%ymm5\n\t"
        "add %[ldcb], %[cp]\n\t"
        "vfmadd231ps (%[cp]), %%ymm15, %%ymm6\n\t"
        "vfmadd231ps 32(%[cp]), %%ymm15, %%ymm7\n\t"
        "add %[ldcb], %[cp]\n\t"
        "vfmadd231ps (%[cp]), %%ymm15, %%ymm8\n\t"
        "vfmadd231ps 32(%[cp]), %%ymm15, %%ymm9\n\t"
        "add %[ldcb], %[cp]\n\t"
        "vfmadd231ps (%[cp]), %%ymm15, %%ymm10\n\t"
        "vfmadd231ps 32(%[cp]), %%ymm15, %%ymm11\n\t"
        "add %[ldcb], %[cp]\n\t"
        "3:\n\t"
        "mov %[c], %[cp]\n\t"
        "vmovups %%ymm0, (%[cp])\n\t"
        "vmovups %%ymm1, 32(%[cp])\n\t"
        "add %[ldcb], %[cp]\n\t"
        "vmovups %%ymm2, (%[cp])\n\t"
        "vmovups %%ymm3, 32(%[cp])\n\t"
        "add %[ldcb], %[cp]\n\t"
        "vmovups %%ymm4, (%[cp])\n\t"
        "vmovups %%ymm5, 32(%[cp])\n\t"
        "add %[ldcb], %[cp]\n\t"
        "vmovups %%ymm6, (%[cp])\n\t"
        "vmovups %%ymm7, 32(%[cp])\n\t"
        "add %[ldcb], %[cp]\n\t"
        "vmovups %%ymm8, (%[cp])\n\t"
        "vmovups %%ymm9, 32(%[cp])\n\t"
        "add %[ldcb], %[cp]\n\t"
        "vmovups %%ymm10, (%[cp])\n\t"
        "vmovups %%ymm11, 32(%[cp])\n\t"
        "add %[ldcb], %[cp]\n\t"
        "vzeroupper\n\t"
        : [kc] "+r"(kc), [a] "+r"(a), [b] "+r"(b), [cp] "=&r"(cp)
        : [c] "r"(c), [ldcb] "r"(ldcb), [alpha] "m"(alpha), [beta] "m"(beta), [useBeta] "r"(useBeta)
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "memory", "cc");
}

#endif

#if defined(__x86_64__)
/// AVX-512F 8 x 32 tile over a 14-row panel (the first 8 rows), for a last panel of at most 8
/// rows: 16 zmm accumulators. Intrinsics (the loop is short-lived compared with the main kernel).
__attribute__((target("avx512f,fma")))
static void kernel_avx512_8x32_of14(ptrdiff_t kc, const float *restrict a, const float *restrict b,
                                    float *restrict c, ptrdiff_t ldc, float alpha, float beta) {
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    __m512 c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;
    for (ptrdiff_t k = 0; k < kc; k++) {
        const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
        __m512 x;
        x = _mm512_set1_ps(a[0]); c00 = _mm512_fmadd_ps(x, b0, c00); c01 = _mm512_fmadd_ps(x, b1, c01);
        x = _mm512_set1_ps(a[1]); c10 = _mm512_fmadd_ps(x, b0, c10); c11 = _mm512_fmadd_ps(x, b1, c11);
        x = _mm512_set1_ps(a[2]); c20 = _mm512_fmadd_ps(x, b0, c20); c21 = _mm512_fmadd_ps(x, b1, c21);
        x = _mm512_set1_ps(a[3]); c30 = _mm512_fmadd_ps(x, b0, c30); c31 = _mm512_fmadd_ps(x, b1, c31);
        x = _mm512_set1_ps(a[4]); c40 = _mm512_fmadd_ps(x, b0, c40); c41 = _mm512_fmadd_ps(x, b1, c41);
        x = _mm512_set1_ps(a[5]); c50 = _mm512_fmadd_ps(x, b0, c50); c51 = _mm512_fmadd_ps(x, b1, c51);
        x = _mm512_set1_ps(a[6]); c60 = _mm512_fmadd_ps(x, b0, c60); c61 = _mm512_fmadd_ps(x, b1, c61);
        x = _mm512_set1_ps(a[7]); c70 = _mm512_fmadd_ps(x, b0, c70); c71 = _mm512_fmadd_ps(x, b1, c71);
        a += 14;
        b += 32;
    }
    __m512 acc[16] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71};
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    for (int i = 0; i < 8; i++) {
        float *row = c + i * ldc;
        __m512 r0 = _mm512_mul_ps(acc[2 * i], va), r1 = _mm512_mul_ps(acc[2 * i + 1], va);
        if (beta != 0.0f) {
            r0 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(row), r0);
            r1 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(row + 16), r1);
        }
        _mm512_storeu_ps(row, r0);
        _mm512_storeu_ps(row + 16, r1);
    }
}
#endif

/// Portable 6 x 8 tile written with clang/GCC vector extensions: 12 four-wide accumulators fit
/// the 16 registers of baseline x86-64 (SSE2) and of NEON, without any target attribute.
typedef float v4f __attribute__((vector_size(16), aligned(4)));

static void kernel_portable_6x8(ptrdiff_t kc, const float *restrict a, const float *restrict b,
                                float *restrict c, ptrdiff_t ldc, float alpha, float beta) {
    enum { MR = 6 };
    v4f acc[MR][2];
    for (int i = 0; i < MR; i++) { acc[i][0] = (v4f){0, 0, 0, 0}; acc[i][1] = (v4f){0, 0, 0, 0}; }
    for (ptrdiff_t k = 0; k < kc; k++) {
        v4f b0, b1;
        memcpy(&b0, b, sizeof b0);
        memcpy(&b1, b + 4, sizeof b1);
        for (int i = 0; i < MR; i++) {
            v4f ai = (v4f){a[i], a[i], a[i], a[i]};
            acc[i][0] += ai * b0;
            acc[i][1] += ai * b1;
        }
        a += MR;
        b += 8;
    }
    for (int i = 0; i < MR; i++)
        for (int v = 0; v < 2; v++) {
            float *p = c + i * ldc + v * 4;
            v4f r = acc[i][v] * alpha;
            if (beta != 0.0f) {
                v4f old;
                memcpy(&old, p, sizeof old);
                r += old * beta;
            }
            memcpy(p, &r, sizeof r);
        }
}

const gemm_path loupe_gemm_paths[3] = {
    {6, 8, 6 * 24, 8 * 64, kernel_portable_6x8},
#if defined(__x86_64__)
    {6, 16, 6 * 24, 16 * 32, kernel_avx2_6x16_asm},
    {14, 32, 14 * 12, 32 * 16, kernel_avx512_14x32_asm, 8, kernel_avx512_8x32_of14, kernel_avx512_14x32_fused},
#else
    {6, 8, 6 * 24, 8 * 64, kernel_portable_6x8},
    {6, 8, 6 * 24, 8 * 64, kernel_portable_6x8},
#endif
};

static int forced_level = -1;
static int detected_level = -1;

void loupe_gemm_force_level(int level) { forced_level = level; }

int loupe_gemm_level(void) {
    if (detected_level < 0) detected_level = loupe_cpu_level();
    if (forced_level >= 0 && forced_level <= detected_level) return forced_level;
    return detected_level;
}

// MARK: - Packing

#if defined(__x86_64__)
/// One full 14-row panel of a row-major A, 16 k at a time: 14 row loads, an in-register 16 x 16
/// transpose (32-bit, 64-bit, then two 128-bit lane shuffles), 16 stores of 14 floats. About a
/// third of the scalar copy's cost; a gather per k is no faster than scalar moves here.
__attribute__((target("avx512f")))
static void pack_a_panel14_avx512(const float *src, ptrdiff_t rs, ptrdiff_t kc, float *dst) {
    ptrdiff_t k = 0;
    for (; k + 16 <= kc; k += 16) {
        __m512 r[16], col[16];
        for (int i = 0; i < 14; i++) r[i] = _mm512_loadu_ps(src + i * rs + k);
        r[14] = r[15] = _mm512_setzero_ps();
        loupe_transpose16(r, col);
        // In k order, each full store's two extra lanes are overwritten by the next one; the last
        // is masked so it stays inside the panel.
        for (int j = 0; j < 15; j++) _mm512_storeu_ps(dst + (k + j) * 14, col[j]);
        _mm512_mask_storeu_ps(dst + (k + 15) * 14, 0x3FFF, col[15]);
    }
    for (; k < kc; k++)
        for (int i = 0; i < 14; i++) dst[k * 14 + i] = src[i * rs + k];
}
#endif

#if defined(__x86_64__)
/// A 14-row panel whose k-th column is contiguous (a transposed source, k stride cs): one masked
/// 14-lane load and store per k, zero filled past `rows`.
__attribute__((target("avx512f")))
static void pack_a_panel14_contiguous_avx512(const float *src, ptrdiff_t cs, ptrdiff_t rows, ptrdiff_t kc, float *dst) {
    const __mmask16 load = (__mmask16)((1u << rows) - 1u);
    for (ptrdiff_t k = 0; k < kc; k++)
        _mm512_mask_storeu_ps(dst + k * 14, 0x3FFF, _mm512_maskz_loadu_ps(load, src + k * cs));
}
#endif

/// Packs op(A)[i0..<i0+mc, p0..<p0+kc] into MR-row panels, k-major inside a panel, zero padded.
void loupe_pack_a_panels(const float *A, ptrdiff_t rs, ptrdiff_t cs, ptrdiff_t mc, ptrdiff_t kc, int mr, float *dst) {
    for (ptrdiff_t ip = 0; ip < mc; ip += mr) {
        ptrdiff_t rows = mc - ip < mr ? mc - ip : mr;
        const float *src = A + ip * rs;
#if defined(__x86_64__)
        if (cs == 1 && rows == 14 && mr == 14 && loupe_gemm_level() == 2) {
            pack_a_panel14_avx512(src, rs, kc, dst);
            dst += mr * kc;
            continue;
        }
        if (rs == 1 && mr == 14 && loupe_gemm_level() == 2) {
            // Transposed source: each k's rows are contiguous; lanes past `rows` load as zeros.
            pack_a_panel14_contiguous_avx512(src, cs, rows, kc, dst);
            dst += mr * kc;
            continue;
        }
#endif
        if (cs == 1 && rows == mr) {
            // k outer: mr read streams (each row walked in order) and contiguous writes; the
            // row-by-row order scattered every write mr floats apart and stalled on stores.
            for (ptrdiff_t k = 0; k < kc; k++) {
                float *d = dst + k * mr;
                for (ptrdiff_t i = 0; i < mr; i++) d[i] = src[i * rs + k];
            }
        } else if (cs == 1) {
            for (ptrdiff_t i = 0; i < rows; i++) {
                const float *row = src + i * rs;
                for (ptrdiff_t k = 0; k < kc; k++) dst[k * mr + i] = row[k];
            }
        } else {
            for (ptrdiff_t k = 0; k < kc; k++) {
                const float *col = src + k * cs;
                for (ptrdiff_t i = 0; i < rows; i++) dst[k * mr + i] = col[i * rs];
            }
        }
        if (rows < mr)
            for (ptrdiff_t k = 0; k < kc; k++)
                for (ptrdiff_t i = rows; i < mr; i++) dst[k * mr + i] = 0.0f;
        dst += mr * kc;
    }
}

/// Packs op(B)[p0..<p0+kc, j0..<j0+nc] into NR-column panels, k-major inside a panel, zero padded.
static void pack_b(const float *B, ptrdiff_t rs, ptrdiff_t cs, ptrdiff_t kc, ptrdiff_t nc, int nr, float *dst) {
    for (ptrdiff_t jp = 0; jp < nc; jp += nr) {
        ptrdiff_t cols = nc - jp < nr ? nc - jp : nr;
        const float *src = B + jp * cs;
        if (cs == 1) {
            for (ptrdiff_t k = 0; k < kc; k++) {
                const float *row = src + k * rs;
                float *d = dst + k * nr;
                memcpy(d, row, (size_t)cols * sizeof(float));
                for (ptrdiff_t j = cols; j < nr; j++) d[j] = 0.0f;
            }
        } else {
            for (ptrdiff_t j = 0; j < cols; j++) {
                const float *col = src + j * cs;
                for (ptrdiff_t k = 0; k < kc; k++) dst[k * nr + j] = col[k * rs];
            }
            if (cols < nr)
                for (ptrdiff_t k = 0; k < kc; k++)
                    for (ptrdiff_t j = cols; j < nr; j++) dst[k * nr + j] = 0.0f;
        }
        dst += nr * kc;
    }
}

// MARK: - Per-thread packing buffers

static pthread_key_t buffer_key;
static pthread_once_t buffer_once = PTHREAD_ONCE_INIT;

typedef struct {
    float *data;
    size_t capacity; // floats
} pack_buffer;

static void free_buffer(void *p) {
    pack_buffer *b = p;
    free(b->data);
    free(b);
}

static void make_key(void) { pthread_key_create(&buffer_key, free_buffer); }

float *loupe_thread_buffer(size_t floats) {
    pthread_once(&buffer_once, make_key);
    pack_buffer *b = pthread_getspecific(buffer_key);
    if (!b) {
        b = calloc(1, sizeof(pack_buffer));
        if (!b) return NULL;
        pthread_setspecific(buffer_key, b);
    }
    if (b->capacity < floats) {
        free(b->data);
        size_t bytes = (floats * sizeof(float) + 63) & ~(size_t)63;
        b->data = aligned_alloc(64, bytes);
        b->capacity = b->data ? floats : 0;
    }
    return b->data;
}

// MARK: - Blocked driver

typedef struct {
    ptrdiff_t M, N, K;
    float alpha, beta;
    const float *A; ptrdiff_t rsA, csA;
    const float *B; ptrdiff_t rsB, csB;
    float *C; ptrdiff_t ldc;
} gemm_problem;

static void scale_c(const gemm_problem *p) {
    for (ptrdiff_t i = 0; i < p->M; i++) {
        float *row = p->C + i * p->ldc;
        if (p->beta == 0.0f) memset(row, 0, (size_t)p->N * sizeof(float));
        else if (p->beta != 1.0f) for (ptrdiff_t j = 0; j < p->N; j++) row[j] *= p->beta;
    }
}

/// Deepest k block of the plain GEMM. Deeper than the convolution driver's KC: a 14 x 32 C tile
/// is loaded and stored once per block, and the packed A block (mc x 512, 344 KB) and B block
/// (512 x nc, 1 MB, most of it in L2 while each A panel sweeps it) still suit Zen 4's 1 MB L2.
/// 1024^3 on one thread: 94-100 -> 103-105 GFLOP/s against 256; 2048^3 98-100 -> 103-106.
#define PLAIN_KC 512

static void gemm_blocked(const gemm_problem *p, const gemm_path *path) {
    if (p->M <= 0 || p->N <= 0) return;
    if (p->K <= 0 || p->alpha == 0.0f) { scale_c(p); return; }
    const int mr = path->mr, nr = path->nr;
    ptrdiff_t mcMax = p->M < path->mc ? (p->M + mr - 1) / mr * mr : path->mc;
    ptrdiff_t ncMax = p->N < path->nc ? (p->N + nr - 1) / nr * nr : path->nc;
    // Equal k blocks (K = 768 as 2 x 384, not 512 + 256): a short last block pays the C tiles'
    // loads and stores for little arithmetic.
    // Fewer rows than one A block: each B panel serves only a few row panels, and a deeper one
    // no longer stays near L1 (64 x 3136 x 576 measured 5-10 % slower at 512).
    const ptrdiff_t kcLimit = p->M >= path->mc ? PLAIN_KC : KC;
    ptrdiff_t kBlocks = (p->K + kcLimit - 1) / kcLimit;
    ptrdiff_t kcMax = (p->K + kBlocks - 1) / kBlocks;
    float *buf = loupe_thread_buffer((size_t)(mcMax + ncMax) * (size_t)kcMax + 16);
    if (!buf) { // out of memory for packing: the portable triple loop needs none
        for (ptrdiff_t i = 0; i < p->M; i++)
            for (ptrdiff_t j = 0; j < p->N; j++) {
                float s = 0;
                for (ptrdiff_t k = 0; k < p->K; k++)
                    s += p->A[i * p->rsA + k * p->csA] * p->B[k * p->rsB + j * p->csB];
                float *c = p->C + i * p->ldc + j;
                *c = p->alpha * s + (p->beta == 0.0f ? 0.0f : p->beta * *c);
            }
        return;
    }
    float *pa = buf, *pb = buf + mcMax * kcMax;
    float tile[14 * 32];

    for (ptrdiff_t jc = 0; jc < p->N; jc += path->nc) {
        ptrdiff_t nc = p->N - jc < path->nc ? p->N - jc : path->nc;
        for (ptrdiff_t pc = 0; pc < p->K; pc += kcMax) {
            ptrdiff_t kc = p->K - pc < kcMax ? p->K - pc : kcMax;
            float beta = pc == 0 ? p->beta : 1.0f;
            pack_b(p->B + pc * p->rsB + jc * p->csB, p->rsB, p->csB, kc, nc, nr, pb);
            for (ptrdiff_t ic = 0; ic < p->M; ic += path->mc) {
                ptrdiff_t mc = p->M - ic < path->mc ? p->M - ic : path->mc;
                loupe_pack_a_panels(p->A + ic * p->rsA + pc * p->csA, p->rsA, p->csA, mc, kc, mr, pa);
                for (ptrdiff_t jr = 0; jr < nc; jr += nr) {
                    ptrdiff_t nv = nc - jr < nr ? nc - jr : nr;
                    const float *bp = pb + jr * kc;
                    for (ptrdiff_t ir = 0; ir < mc; ir += mr) {
                        ptrdiff_t mv = mc - ir < mr ? mc - ir : mr;
                        const float *ap = pa + ir * kc;
                        float *c = p->C + (ic + ir) * p->ldc + jc + jr;
                        micro_kernel kern = mv <= path->short_rows ? path->short_kernel : path->kernel;
                        int rowsOut = mv <= path->short_rows ? path->short_rows : mr;
                        if (mv == rowsOut && nv == nr) {
                            kern(kc, ap, bp, c, p->ldc, p->alpha, beta);
                        } else {
                            kern(kc, ap, bp, tile, nr, p->alpha, 0.0f);
                            loupe_merge_tile((int)(path - loupe_gemm_paths), c, p->ldc, tile, nr, mv, nv, beta, 0, NULL, 0);
                        }
                    }
                }
            }
        }
    }
}

// MARK: - Entry points

static gemm_problem make_problem(int transA, int transB, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, float alpha,
                                 const float *A, ptrdiff_t lda, const float *B, ptrdiff_t ldb, float beta,
                                 float *C, ptrdiff_t ldc) {
    gemm_problem p = {M, N, K, alpha, beta, A, transA ? 1 : lda, transA ? lda : 1,
                      B, transB ? 1 : ldb, transB ? ldb : 1, C, ldc};
    return p;
}

void loupe_sgemm_serial(int transA, int transB, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, float alpha,
                        const float *A, ptrdiff_t lda, const float *B, ptrdiff_t ldb, float beta,
                        float *C, ptrdiff_t ldc) {
    if (loupe_gemv_if_vector(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, 0)) return;
    gemm_problem p = make_problem(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    gemm_blocked(&p, &loupe_gemm_paths[loupe_gemm_level()]);
}

typedef struct {
    gemm_problem whole;
    const gemm_path *path;
    int splitRows;      // split along M (else N)
    ptrdiff_t chunk;    // rows or columns per task
} gemm_split;

static void gemm_task(void *ctx, ptrdiff_t t) {
    const gemm_split *s = ctx;
    gemm_problem p = s->whole;
    ptrdiff_t lo = t * s->chunk;
    if (s->splitRows) {
        ptrdiff_t hi = lo + s->chunk < p.M ? lo + s->chunk : p.M;
        p.A += lo * p.rsA;
        p.C += lo * p.ldc;
        p.M = hi - lo;
    } else {
        ptrdiff_t hi = lo + s->chunk < p.N ? lo + s->chunk : p.N;
        p.B += lo * p.csB;
        p.C += lo;
        p.N = hi - lo;
    }
    gemm_blocked(&p, s->path);
}

void loupe_sgemm(int transA, int transB, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, float alpha,
                 const float *A, ptrdiff_t lda, const float *B, ptrdiff_t ldb, float beta,
                 float *C, ptrdiff_t ldc) {
    if (loupe_gemv_if_vector(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, 1)) return;
    gemm_problem p = make_problem(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    const gemm_path *path = &loupe_gemm_paths[loupe_gemm_level()];
    int threads = loupe_threads();
    double flops = 2.0 * (double)M * (double)N * (double)K;
    // Below ~64^3 multiply-adds the wake-up of a second thread costs more than it saves.
    if (threads <= 1 || flops < 2.0 * 64 * 64 * 64) { gemm_blocked(&p, path); return; }
    ptrdiff_t rowPanels = (M + path->mr - 1) / path->mr, colPanels = (N + path->nr - 1) / path->nr;
    // Many rows and columns: one row band per thread, each the whole serial GEMM (its own rows of
    // A packed once, all of B packed per band, which costs each thread what it costs one thread
    // alone) at the plain path's deep k blocks. Two threads, alternating A/B against the shared
    // packed-A driver with its 256-deep blocks: 1024^3 159-194 -> 188-207 GFLOP/s, 2048^3
    // 171-194 -> 188-205.
    if (flops >= 2.0 * 256 * 256 * 256 && M >= 256 * (ptrdiff_t)threads && colPanels >= 4 * (ptrdiff_t)threads) {
        gemm_split rows = {p, path, 1, (rowPanels + threads - 1) / threads * path->mr};
        loupe_parallel_for((M + rows.chunk - 1) / rows.chunk, gemm_task, &rows);
        return;
    }
    // Large problems: pack each operand once for all threads (the split below re-packs B, or A,
    // in every task).
    if (K > 0 && alpha != 0.0f && flops >= 2.0 * 256 * 256 * 256 &&
        loupe_sgemm_via_packed(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)) return;
    gemm_split s;
    s.whole = p;
    s.path = path;
    s.splitRows = M >= N;
    ptrdiff_t extent = s.splitRows ? M : N, unit = s.splitRows ? path->mr : path->nr;
    ptrdiff_t units = (extent + unit - 1) / unit;
    // Several tasks per thread, handed out dynamically: if one thread is descheduled, the others
    // take over its share. Each task packs its own panels; with >= 2 micro-tiles per task the
    // repeated packing stays a few percent of the arithmetic.
    ptrdiff_t tasks = units / 2 < 4 * (ptrdiff_t)threads ? units / 2 : 4 * (ptrdiff_t)threads;
    if (tasks <= 1) { gemm_blocked(&p, path); return; }
    s.chunk = (units + tasks - 1) / tasks * unit;
    tasks = (extent + s.chunk - 1) / s.chunk;
    loupe_parallel_for(tasks, gemm_task, &s);
}
