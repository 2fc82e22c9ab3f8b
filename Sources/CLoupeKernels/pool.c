// Persistent thread pool for data-parallel kernels.
//
// Workers are started lazily and never exit. After a job they spin for a short while (a
// following GEMM or conv usually arrives within microseconds in a forward pass) and then sleep
// on a condition variable, so an idle process costs no CPU. One job runs at a time; a caller
// that finds the pool busy (another thread's job, or a nested call from inside a task) runs its
// tasks serially instead of waiting, which rules out deadlock.
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE   // sched_getcpu, CPU_* and pthread_setaffinity_np
#endif
#include "CLoupeKernels.h"
#include <stdlib.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>
#if defined(__linux__)
#include <sched.h>
#endif

#define LOUPE_MAX_THREADS 64
#define LOUPE_SPIN_ITERATIONS 20000

static pthread_mutex_t busy_lock = PTHREAD_MUTEX_INITIALIZER;   // one job at a time
static pthread_mutex_t sleep_lock = PTHREAD_MUTEX_INITIALIZER;  // guards the wake-up condition
static pthread_cond_t wake_cond = PTHREAD_COND_INITIALIZER;

static atomic_ulong generation;   // bumped once per job
// Bit 31: the current job is closed to late joiners; low bits: workers inside it. A worker that
// wakes after the caller closed the job skips it, so the caller never waits on a worker that
// the OS has not scheduled yet (the other core is often busy with another process).
#define JOB_CLOSED 0x80000000u
static atomic_uint job_state = JOB_CLOSED;
// Unclaimed tasks [lo, hi): lo in the low 32 bits, hi in the high 32. The caller claims from the
// front and the first worker from the back, so each runs the same end of every job: an image's
// left pixel columns (say) are produced and then read by one core, layer after layer, instead of
// crossing to the other core's cache about half the time. On this project's VM the two vCPUs
// sometimes sit far apart (a cache line's round trip 55 -> 325 ns), and then that traffic
// decided the speed.
static _Atomic unsigned long long open_tasks;
static loupe_task_fn job_fn;
static void *job_ctx;
static int job_participants;      // workers with index < this take tasks

static int started_workers;       // guarded by busy_lock
static atomic_int thread_setting; // 0 = not yet initialised

static _Thread_local int inside_task;
// Generation current when each worker was created: a worker must not mistake the job that
// its creator is about to publish for one it has already done.
static unsigned long start_generation[LOUPE_MAX_THREADS];

// The CPU the caller ran on when it published the current job (-1: unknown). Linux often wakes a
// sleeping worker on the CPU of the thread that woke it, even with the other CPU idle; the two
// then time-share one CPU (the worker spinning through the caller's slices) until the load
// balancer parts them, ~10 ms later on this project's VM: the first forwards after an idle
// moment ran at a third of their speed (perf sched trace in docs/kernels.md, "Worker placement").
static atomic_int caller_cpu = -1;

static int current_cpu(void) {
#if defined(__linux__)
    return sched_getcpu();
#else
    return -1;
#endif
}

/// Moves the calling worker off `cpu` (onto any other CPU it may run on) and lets it run
/// anywhere again: the first call migrates it at once, the second does not move it back.
static void move_off_cpu(int cpu) {
#if defined(__linux__)
    cpu_set_t allowed, others;
    if (cpu < 0 || pthread_getaffinity_np(pthread_self(), sizeof allowed, &allowed) != 0) return;
    others = allowed;
    CPU_CLR(cpu, &others);
    if (CPU_COUNT(&others) == 0) return;
    if (pthread_setaffinity_np(pthread_self(), sizeof others, &others) == 0)
        pthread_setaffinity_np(pthread_self(), sizeof allowed, &allowed);
#else
    (void)cpu;
#endif
}

/// A worker on the CPU its caller last published from shares that CPU with it: move away.
static void part_from_caller(void) {
    const int c = atomic_load_explicit(&caller_cpu, memory_order_relaxed);
    if (c >= 0 && current_cpu() == c) move_off_cpu(c);
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

int loupe_threads(void) {
    int t = atomic_load(&thread_setting);
    if (t == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        // LOUPE_THREADS overrides the CPU count (like OMP_NUM_THREADS for the peers).
        const char *env = getenv("LOUPE_THREADS");
        if (env && *env) {
            char *end = NULL;
            long v = strtol(env, &end, 10);
            if (end && *end == '\0' && v >= 1) n = v;
        }
        t = n < 1 ? 1 : (n > LOUPE_MAX_THREADS ? LOUPE_MAX_THREADS : (int)n);
        atomic_store(&thread_setting, t);
    }
    return t;
}

void loupe_set_threads(int n) {
    if (n < 1) n = 1;
    if (n > LOUPE_MAX_THREADS) n = LOUPE_MAX_THREADS;
    atomic_store(&thread_setting, n);
}

static void run_tasks(int fromBack) {
    unsigned long long r = atomic_load_explicit(&open_tasks, memory_order_relaxed);
    for (;;) {
        const unsigned long long lo = r & 0xFFFFFFFFull, hi = r >> 32;
        if (lo >= hi) break;
        const unsigned long long next = fromBack ? ((hi - 1) << 32 | lo) : (hi << 32 | (lo + 1));
        if (!atomic_compare_exchange_weak_explicit(&open_tasks, &r, next, memory_order_relaxed, memory_order_relaxed)) continue;
        job_fn(job_ctx, (ptrdiff_t)(fromBack ? hi - 1 : lo));
        r = atomic_load_explicit(&open_tasks, memory_order_relaxed);
    }
}

static void *worker_main(void *arg) {
    int index = (int)(ptrdiff_t)arg;
    inside_task = 1; // nested parallel_for from a task runs serially
    unsigned long seen = start_generation[index];
    for (;;) {
        unsigned long g;
        int spins = 0;
        while ((g = atomic_load_explicit(&generation, memory_order_acquire)) == seen) {
            if (++spins < LOUPE_SPIN_ITERATIONS) {
                // Spinning where the caller runs would hold the CPU it needs: every few µs, check.
                if ((spins & 255) == 0) part_from_caller();
                cpu_relax();
                continue;
            }
            pthread_mutex_lock(&sleep_lock);
            while ((g = atomic_load_explicit(&generation, memory_order_acquire)) == seen)
                pthread_cond_wait(&wake_cond, &sleep_lock);
            pthread_mutex_unlock(&sleep_lock);
            part_from_caller();
            break;
        }
        seen = g;
        unsigned st = atomic_load_explicit(&job_state, memory_order_acquire);
        int joined = 0;
        while (!(st & JOB_CLOSED)) {
            if (atomic_compare_exchange_weak_explicit(&job_state, &st, st + 1, memory_order_acq_rel,
                                                      memory_order_acquire)) { joined = 1; break; }
        }
        if (!joined) continue;
        if (index < job_participants) run_tasks(index == 0);
        atomic_fetch_sub_explicit(&job_state, 1, memory_order_release);
    }
    return NULL;
}

void loupe_parallel_for(ptrdiff_t n, loupe_task_fn fn, void *ctx) {
    if (n <= 0) return;
    int threads = loupe_threads();
    if (n == 1 || threads <= 1 || inside_task || n > 0xFFFFFFFFll || pthread_mutex_trylock(&busy_lock) != 0) {
        for (ptrdiff_t i = 0; i < n; i++) fn(ctx, i);
        return;
    }
    while (started_workers < threads - 1) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        start_generation[started_workers] = atomic_load(&generation);
        int rc = pthread_create(&t, &attr, worker_main, (void *)(ptrdiff_t)started_workers);
        pthread_attr_destroy(&attr);
        if (rc != 0) break;
        started_workers++;
    }
    atomic_store_explicit(&caller_cpu, current_cpu(), memory_order_relaxed);
    job_fn = fn;
    job_ctx = ctx;
    job_participants = threads - 1;
    atomic_store_explicit(&open_tasks, (unsigned long long)n << 32, memory_order_relaxed);
    atomic_store_explicit(&job_state, 0, memory_order_release);
    atomic_fetch_add_explicit(&generation, 1, memory_order_release);
    pthread_mutex_lock(&sleep_lock);
    pthread_cond_broadcast(&wake_cond);
    pthread_mutex_unlock(&sleep_lock);

    inside_task = 1;
    run_tasks(0);
    inside_task = 0;
    atomic_fetch_or_explicit(&job_state, JOB_CLOSED, memory_order_acq_rel);
    while ((atomic_load_explicit(&job_state, memory_order_acquire) & ~JOB_CLOSED) != 0) cpu_relax();
    pthread_mutex_unlock(&busy_lock);
}

#if defined(__GLIBC__)
#include <malloc.h>
#endif

void loupe_tune_allocator(void) {
#if defined(__GLIBC__)
    static atomic_int done;
    if (atomic_exchange(&done, 1)) return;
    // Activations are large and short-lived: with glibc's defaults every one above the (adaptive)
    // mmap threshold is mapped and unmapped, or trimmed off the heap top, and its pages are
    // faulted in and zeroed again on the next call, a few percent of a forward pass. Keep freed
    // memory for reuse instead; peak resident memory is unchanged.
    if (!getenv("LOUPE_KEEP_MALLOC")) {
        mallopt(M_MMAP_THRESHOLD, 256 << 20);
        mallopt(M_TRIM_THRESHOLD, 1 << 30);
    }
#endif
}
