// core_roundtrip: how far apart the machine's first two CPUs are, as the round trip of one cache
// line between two threads pinned to CPU 0 and CPU 1 (ns per round trip, median of RUNS runs).
//
// This project's 2-vCPU VM is sometimes placed with its two vCPUs sharing an L3 (~55 ns) and
// sometimes far apart (~325 ns) for tens of seconds at a time; in the far placement every byte a
// layer's one thread wrote and the other reads crosses slowly, and Loupe's two-thread forward
// passes slow by up to half while a one-thread pass does not (docs/kernels.md, "Threads").
// Benchmarks/peers/bench_engine.py runs this before and after its models section so each run
// records which placement it saw.
//
//   cc -O2 -o core_roundtrip core_roundtrip.c -lpthread && ./core_roundtrip [RUNS]
//
// RUNS (1-99, default 9): runs of 100 000 round trips; the median is printed. Prints `roundtrip_ns=<float>`; on a machine with one CPU, or where pinning fails,
// `roundtrip_ns=nan` and a reason on stderr.
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define ROUND_TRIPS 100000
#define MAX_RUNS 99

static _Atomic int flag __attribute__((aligned(64)));

static int pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static void *responder(void *arg) {
    (void)arg;
    pin(1);
    for (int i = 0; i < ROUND_TRIPS; i++) {
        while (atomic_load_explicit(&flag, memory_order_acquire) != 1) {}
        atomic_store_explicit(&flag, 0, memory_order_release);
    }
    return NULL;
}

static double one_run(void) {
    atomic_store(&flag, 0);
    pthread_t t;
    if (pthread_create(&t, NULL, responder, NULL) != 0) return -1;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < ROUND_TRIPS; i++) {
        atomic_store_explicit(&flag, 1, memory_order_release);
        while (atomic_load_explicit(&flag, memory_order_acquire) != 0) {}
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    pthread_join(t, NULL);
    return ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / ROUND_TRIPS;
}

static int by_value(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

int main(int argc, char **argv) {
    int runs = argc > 1 ? atoi(argv[1]) : 9;
    if (runs < 1 || runs > MAX_RUNS) runs = 9;
    if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
        fprintf(stderr, "core_roundtrip: fewer than two CPUs online\n");
        printf("roundtrip_ns=nan\n");
        return 0;
    }
    // Both CPUs must be allowed (the responder pins itself to CPU 1 and cannot report failure).
    if (pin(1) != 0 || pin(0) != 0) {
        fprintf(stderr, "core_roundtrip: cannot pin to CPUs 0 and 1\n");
        printf("roundtrip_ns=nan\n");
        return 0;
    }
    double t[MAX_RUNS];
    for (int r = 0; r < runs; r++) {
        t[r] = one_run();
        if (t[r] < 0) {
            fprintf(stderr, "core_roundtrip: cannot start a thread\n");
            printf("roundtrip_ns=nan\n");
            return 0;
        }
    }
    qsort(t, (size_t)runs, sizeof t[0], by_value);
    printf("roundtrip_ns=%.1f\n", t[runs / 2]);
    return 0;
}
