// fma_peak: measures this machine's peak fp32 FMA throughput, the "100 %" that
// Benchmarks/peers/bench_engine.py reports GEMM speeds against.
//
// A GEMM micro-kernel can at best keep every FMA unit busy every cycle. This loop does exactly
// that and nothing else: 16 independent accumulator chains (enough to cover 2 FMA pipes x
// 4-5 cycles latency) of vfmadd on full-width registers, no loads or stores. The clock the CPU
// actually runs at under this load (boost, not the nominal MHz a VM's /proc/cpuinfo shows) is
// thus part of the measurement. Best of 20 repeats, per thread count.
//
// Standalone on purpose (not a SwiftPM target): bench_engine.py compiles it with the system C
// compiler, so the measurement depends on nothing in Loupe.
//
//   cc -O2 -o /tmp/fma_peak Benchmarks/peers/fma_peak.c -lpthread && /tmp/fma_peak 2
//
// Prints `isa=avx512|avx2 threads=T gflops=<float>` for T = 1 .. argv[1].

#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CHAINS 16

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// Returns the sum of all lanes so the compiler cannot drop the loop.
__attribute__((target("avx512f,fma"), noinline))
static float loop_avx512(long iters) {
    __m512 acc[CHAINS];
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < iters; it++) {
        // CHAINS independent FMAs per iteration, kept in registers (the pragma makes compilers
        // that would not unroll on their own do so).
#pragma GCC unroll 16
        for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
    }
    __m512 s = acc[0];
    for (int i = 1; i < CHAINS; i++) s = _mm512_add_ps(s, acc[i]);
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"), noinline))
static float loop_avx2(long iters) {
    __m256 acc[CHAINS];
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm256_set1_ps((float)i);
    for (long it = 0; it < iters; it++) {
#pragma GCC unroll 16
        for (int i = 0; i < CHAINS; i++) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
    }
    __m256 s = acc[0];
    for (int i = 1; i < CHAINS; i++) s = _mm256_add_ps(s, acc[i]);
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0] + out[1] + out[2] + out[3] + out[4] + out[5] + out[6] + out[7];
}

static int use512;
static long iterations;
static volatile float sink;

static void *worker(void *arg) {
    (void)arg;
    sink = use512 ? loop_avx512(iterations) : loop_avx2(iterations);
    return NULL;
}

// Flops per second with `threads` threads each running the loop once.
static double run(int threads) {
    pthread_t tid[64];
    double t0 = now_s();
    for (int t = 1; t < threads; t++) pthread_create(&tid[t], NULL, worker, NULL);
    worker(NULL);
    for (int t = 1; t < threads; t++) pthread_join(tid[t], NULL);
    double dt = now_s() - t0;
    double lanes = use512 ? 16.0 : 8.0;
    return (double)threads * (double)iterations * CHAINS * lanes * 2.0 / dt;
}

int main(int argc, char **argv) {
    int maxThreads = argc > 1 ? atoi(argv[1]) : 1;
    if (maxThreads < 1) maxThreads = 1;
    if (maxThreads > 64) maxThreads = 64;
    __builtin_cpu_init();
    use512 = __builtin_cpu_supports("avx512f");
    if (!use512 && !__builtin_cpu_supports("fma")) {
        printf("isa=none\n");
        return 1;
    }
    // ~0.05 s per run at ~250 GFLOP/s per core; best of 20 runs, so that on a machine other
    // processes share, some run is likely to have had the cores to itself.
    iterations = use512 ? 12500000L : 25000000L;
    run(1);  // warm-up: lets the clock ramp up
    for (int t = 1; t <= maxThreads; t++) {
        double best = 0;
        for (int rep = 0; rep < 20; rep++) {
            double f = run(t);
            if (f > best) best = f;
        }
        printf("isa=%s threads=%d gflops=%.1f\n", use512 ? "avx512" : "avx2", t, best / 1e9);
    }
    return 0;
}
