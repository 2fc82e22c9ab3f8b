import CLoupeKernels

/// Fast numeric kernels (GEMM, convolution, pooling, normalisation) on raw buffers and tensors.
///
/// The arithmetic-heavy loops live in the C target `CLoupeKernels`, which picks an AVX-512F,
/// AVX2+FMA or portable micro-kernel at run time (see docs/kernels.md). Every kernel here has a
/// slow twin in ``ReferenceKernels`` that the tests compare it with.
public enum Kernels {
    /// SIMD level of the CPU: 0 = portable, 1 = AVX2+FMA, 2 = AVX-512F.
    public static var cpuLevel: Int { Int(loupe_cpu_level()) }

    /// SIMD level the GEMM currently uses (``cpuLevel`` unless forced lower for testing).
    public static var gemmLevel: Int { Int(loupe_gemm_level()) }

    /// Forces the GEMM onto a lower path (0, 1, 2), or back to automatic with nil. Levels above
    /// what the CPU supports are ignored. Meant for tests and benchmarks; not thread-safe
    /// against concurrent GEMM calls.
    public static func forceGEMMLevel(_ level: Int?) { loupe_gemm_force_level(Int32(level ?? -1)) }

    /// Threads (including the caller) that parallel kernels use; defaults to the online CPUs.
    public static var threads: Int {
        get { Int(loupe_threads()) }
        set { loupe_set_threads(Int32(clamping: newValue)) }
    }

    /// Keeps large freed buffers for reuse rather than returning them to the OS (glibc), so a
    /// steady stream of forward passes does not fault in and zero fresh pages each time. Called
    /// when a model is compiled; `LOUPE_KEEP_MALLOC=1` in the environment opts out.
    public static func tuneAllocator() { loupe_tune_allocator() }

    /// Runs `body(i)` for every `i` in `0..<count` on the persistent thread pool; returns when all
    /// are done. `body` runs concurrently on several threads, so iterations must write disjoint
    /// memory. Nested calls (from inside `body`) run serially on the calling thread.
    public static func parallelFor(_ count: Int, _ body: (Int) -> Void) {
        guard count > 0 else { return }
        if count == 1 { body(0); return }
        withoutActuallyEscaping(body) { escapable in
            var fn = escapable
            withUnsafeMutablePointer(to: &fn) { ptr in
                loupe_parallel_for(count, { ctx, i in
                    guard let ctx else { return }
                    ctx.assumingMemoryBound(to: ((Int) -> Void).self).pointee(i)
                }, UnsafeMutableRawPointer(ptr))
            }
        }
    }

    /// Row-major single precision GEMM: `C = alpha · op(A) · op(B) + beta · C` (BLAS `sgemm`
    /// semantics in row-major order).
    ///
    /// - Parameters:
    ///   - transA: op(A) = Aᵀ; A is then stored k × m.
    ///   - m, n, k: op(A) is m × k, op(B) is k × n, C is m × n.
    ///   - lda, ldb, ldc: row strides (elements) of A, B, C as stored.
    ///   - beta: 0 overwrites C without reading it.
    ///   - parallel: false keeps the call on this thread (the caller parallelises itself).
    public static func gemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
                            a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                            beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, parallel: Bool = true) {
        precondition(m >= 0 && n >= 0 && k >= 0, "gemm: negative size")
        precondition(lda >= (transA ? m : k) && ldb >= (transB ? k : n) && ldc >= n, "gemm: leading dimension too small")
        if parallel {
            loupe_sgemm(transA ? 1 : 0, transB ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        } else {
            loupe_sgemm_serial(transA ? 1 : 0, transB ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        }
    }
}
