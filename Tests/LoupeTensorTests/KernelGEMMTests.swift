import XCTest
import Dispatch
@testable import LoupeTensor

final class KernelGEMMTests: XCTestCase {
    override func tearDown() { Kernels.forceGEMMLevel(nil) }

    /// Every SIMD path the CPU has, against the triple loop, on shapes that leave partial tiles
    /// in every direction and cross the k-blocking boundary (k = 300 > 256; and m = 170, past one
    /// A block, where k = 1030 runs as three deep blocks of 344, 344 and 342); and the
    /// matrix-vector shapes (one row or one column: gemv.c), in both weight layouts, small and
    /// split over the pool, with x strided beyond the gathered-copy limit (k = 1100).
    func testGEMMMatchesReferenceOnAllPaths() throws {
        var rng = KernelRNG(seed: 1)
        let shapes = [(1, 1, 1), (3, 5, 7), (13, 31, 17), (17, 37, 300), (29, 65, 11), (2, 3, 0),
                      (1, 300, 37), (1, 1000, 512), (300, 1, 37), (777, 1, 200), (1, 17, 1100), (1, 270, 3),
                      (170, 19, 1030)]
        for level in 0...Kernels.cpuLevel {
            Kernels.forceGEMMLevel(level)
            XCTAssertEqual(Kernels.gemmLevel, level)
            for (m, n, k) in shapes {
                for (tA, tB) in [(false, false), (true, false), (false, true), (true, true)] {
                    let lda = (tA ? m : k) + 2, ldb = (tB ? k : n) + 1, ldc = n + 3
                    let a = rng.floats((tA ? k : m) * lda), b = rng.floats((tB ? n : k) * ldb)
                    for beta: Float in [0, 0.5] {
                        var c = rng.floats(m * ldc)
                        if beta == 0 { c[0] = .nan } // beta == 0 must not read C
                        var ref = c
                        ReferenceKernels.gemm(transA: tA, transB: tB, m: m, n: n, k: k, alpha: 1.5, a: a, lda: lda,
                                              b: b, ldb: ldb, beta: beta, c: &ref, ldc: ldc)
                        // Serial for the deep-block shape: split over threads, its row bands are
                        // shorter than one A block and take the shallow blocks.
                        a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
                            Kernels.gemm(transA: tA, transB: tB, m: m, n: n, k: k, alpha: 1.5, a: pa.baseAddress!, lda: lda,
                                         b: pb.baseAddress!, ldb: ldb, beta: beta, c: pc.baseAddress!, ldc: ldc,
                                         parallel: m < 170)
                        } } }
                        for i in 0..<m {
                            for j in 0..<ldc {
                                let (x, y) = (c[i * ldc + j], ref[i * ldc + j])
                                if j >= n { XCTAssertEqual(x.bitPattern, y.bitPattern, "padding column touched"); continue }
                                XCTAssertEqual(x, y, accuracy: 1e-4 * Float(k + 1), "level \(level) m\(m) n\(n) k\(k) tA\(tA) tB\(tB) beta\(beta) (\(i),\(j))")
                            }
                        }
                    }
                }
            }
        }
    }

    /// A problem big enough to take the threaded path, on one and two threads.
    func testThreadedGEMMMatchesSerial() throws {
        var rng = KernelRNG(seed: 2)
        let (m, n, k) = (97, 83, 71)
        let a = rng.floats(m * k), b = rng.floats(k * n)
        var ref = [Float](repeating: 0, count: m * n)
        ReferenceKernels.gemm(transA: false, transB: false, m: m, n: n, k: k, alpha: 1, a: a, lda: k, b: b, ldb: n,
                              beta: 0, c: &ref, ldc: n)
        let saved = Kernels.threads
        defer { Kernels.threads = saved }
        for t in [1, 2, 3] {
            Kernels.threads = t
            var c = [Float](repeating: 0, count: m * n)
            a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
                Kernels.gemm(m: m, n: n, k: k, a: pa.baseAddress!, lda: k, b: pb.baseAddress!, ldb: n, c: pc.baseAddress!, ldc: n)
            } } }
            for i in 0..<c.count { XCTAssertEqual(c[i], ref[i], accuracy: 1e-3, "threads \(t) at \(i)") }
        }
    }

    /// Problems past the size where the threaded GEMM packs each operand once (A over the pool,
    /// then columns split, or rows split with B packed once and shared): both splits, transposed
    /// operands, alpha and beta, against the serial GEMM.
    func testLargeThreadedGEMMPacksOnceAndMatchesSerial() throws {
        var rng = KernelRNG(seed: 3)
        let saved = Kernels.threads
        defer { Kernels.threads = saved }
        Kernels.threads = 2
        // wide (many column panels: column split) and tall with few columns (row split)
        // wide (column split), tall with few columns (row split), and M past the A sub-block
        // (336 rows) with the column split, and M large enough for one row band per thread
        for (m, n, k) in [(260, 300, 290), (700, 40, 600), (400, 330, 300), (600, 300, 200)] {
            for (tA, tB) in [(false, false), (true, true)] {
                let a = rng.floats(m * k), b = rng.floats(k * n)
                let c0 = rng.floats(m * n)
                var ref = c0, c = c0
                let lda = tA ? m : k, ldb = tB ? k : n
                a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in
                    ref.withUnsafeMutableBufferPointer { pc in
                        Kernels.gemm(transA: tA, transB: tB, m: m, n: n, k: k, alpha: 0.5, a: pa.baseAddress!, lda: lda,
                                     b: pb.baseAddress!, ldb: ldb, beta: 2, c: pc.baseAddress!, ldc: n, parallel: false)
                    }
                    c.withUnsafeMutableBufferPointer { pc in
                        Kernels.gemm(transA: tA, transB: tB, m: m, n: n, k: k, alpha: 0.5, a: pa.baseAddress!, lda: lda,
                                     b: pb.baseAddress!, ldb: ldb, beta: 2, c: pc.baseAddress!, ldc: n, parallel: true)
                    }
                } }
                var worst: Float = 0
                for i in 0..<c.count { worst = max(worst, abs(c[i] - ref[i])) }
                XCTAssertLessThan(worst, 1e-3, "m\(m) n\(n) k\(k) tA\(tA) tB\(tB)")
            }
        }
    }

    /// Many threads calling threaded GEMMs and nested parallel loops at once: one job holds the
    /// pool, the others run serially on their own threads; all results stay exact and nothing
    /// deadlocks.
    func testConcurrentCallersShareThePool() throws {
        var rng = KernelRNG(seed: 4)
        let (m, n, k) = (70, 66, 65)
        let a = rng.floats(m * k), b = rng.floats(k * n)
        var ref = [Float](repeating: 0, count: m * n)
        ReferenceKernels.gemm(transA: false, transB: false, m: m, n: n, k: k, alpha: 1, a: a, lda: k, b: b, ldb: n,
                              beta: 0, c: &ref, ldc: n)
        let callers = 6
        let expected = ref
        // Each caller writes only its own slot.
        nonisolated(unsafe) let worst = UnsafeMutablePointer<Float>.allocate(capacity: callers)
        defer { worst.deallocate() }
        worst.initialize(repeating: .infinity, count: callers)
        DispatchQueue.concurrentPerform(iterations: callers) { caller in
            var c = [Float](repeating: 0, count: m * n)
            for _ in 0..<3 {
                a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
                    Kernels.gemm(m: m, n: n, k: k, a: pa.baseAddress!, lda: k, b: pb.baseAddress!, ldb: n, c: pc.baseAddress!, ldc: n)
                } } }
                // a nested parallel loop inside a parallel loop runs serially, not into a deadlock
                Kernels.parallelFor(4) { _ in Kernels.parallelFor(3) { _ in } }
            }
            var e: Float = 0
            for i in 0..<c.count { e = max(e, abs(c[i] - expected[i])) }
            worst[caller] = e
        }
        for i in 0..<callers { XCTAssertLessThan(worst[i], 1e-3) }
    }

    func testParallelForVisitsEveryIndexOnce() {
        let n = 1000
        var hits = [Int](repeating: 0, count: n)
        hits.withUnsafeMutableBufferPointer { h in
            Kernels.parallelFor(n) { i in h[i] += 1 }
        }
        XCTAssertEqual(hits, [Int](repeating: 1, count: n))
    }

    /// The calling thread claims tasks from the front and the first worker from the back, so each
    /// runs one contiguous end of the range (the same end of every job, which keeps a layer's
    /// output on the core that reads it next): the caller's indices are a prefix.
    func testParallelForCallerRunsTheFrontEnd() {
        let n = 400
        var byCaller = [Bool](repeating: false, count: n)
        let caller = pthread_self()
        byCaller.withUnsafeMutableBufferPointer { h in
            Kernels.parallelFor(n) { i in
                h[i] = pthread_equal(pthread_self(), caller) != 0
                // Long enough that a worker joins before the caller is through.
                var x = 0.0
                for k in 0..<2000 { x += Double(k) }
                if x < 0 { h[i] = false }
            }
        }
        let prefix = byCaller.firstIndex(of: false) ?? n
        XCTAssertFalse(byCaller[prefix...].contains(true), "caller's tasks are not a prefix: \(byCaller.map { $0 ? 1 : 0 })")
    }

    func testMatMulHandComputed() throws {
        let a = try Tensor(shape: [2, 3], floats: [1, 2, 3, 4, 5, 6])
        let b = try Tensor(shape: [3, 2], floats: [7, 8, 9, 10, 11, 12])
        let c = try a.matmul(b)
        XCTAssertEqual(c.shape, [2, 2])
        XCTAssertEqual(try c.floats(), [58, 64, 139, 154])
        // 1-D operands: vector · matrix and matrix · vector drop the added dimension.
        let v = try Tensor(shape: [3], floats: [1, 0, -1])
        XCTAssertEqual(try v.matmul(b).shape, [2])
        XCTAssertEqual(try v.matmul(b).floats(), [-4, -4])
        XCTAssertEqual(try a.matmul(v).floats(), [-2, -2])
        XCTAssertEqual(try v.matmul(v).shape, [])
        XCTAssertEqual(try v.matmul(v).floats(), [2])
        XCTAssertThrowsError(try a.matmul(a))
    }

    /// Broadcast batch dimensions against per-batch reference products.
    func testBatchedBroadcastMatMul() throws {
        var rng = KernelRNG(seed: 3)
        let a = try rng.tensor([3, 1, 4, 5]), b = try rng.tensor([2, 5, 6])
        let c = try a.matmul(b)
        XCTAssertEqual(c.shape, [3, 2, 4, 6])
        let A = try a.floats(), B = try b.floats(), C = try c.floats()
        for i in 0..<3 { for j in 0..<2 {
            var ref = [Float](repeating: 0, count: 24)
            ReferenceKernels.gemm(transA: false, transB: false, m: 4, n: 6, k: 5, alpha: 1, a: Array(A[(i * 20)..<(i * 20 + 20)]), lda: 5,
                                  b: Array(B[(j * 30)..<(j * 30 + 30)]), ldb: 6, beta: 0, c: &ref, ldc: 6)
            for e in 0..<24 { XCTAssertEqual(C[(i * 2 + j) * 24 + e], ref[e], accuracy: 1e-5) }
        } }
        // transposed views agree with explicit transposes
        let t = try Kernels.matmul(b, b, transposeB: true)
        let u = try Kernels.matmul(b, b, transposeA: true)
        XCTAssertEqual(t.shape, [2, 5, 5])
        XCTAssertEqual(u.shape, [2, 6, 6])
        let tv = try t.floats()
        for bi in 0..<2 { for i in 0..<5 { for j in 0..<5 {
            var s: Float = 0
            for k in 0..<6 { s += B[bi * 30 + i * 6 + k] * B[bi * 30 + j * 6 + k] }
            XCTAssertEqual(tv[bi * 25 + i * 5 + j], s, accuracy: 1e-5)
        } } }
    }

    func testSumToShape() throws {
        let g = try Tensor(shape: [2, 3], floats: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(try Kernels.sumToShape(g, [3]).floats(), [5, 7, 9])
        XCTAssertEqual(try Kernels.sumToShape(g, [2, 1]).floats(), [6, 15])
        XCTAssertEqual(try Kernels.sumToShape(g, []).floats(), [21])
        XCTAssertThrowsError(try Kernels.sumToShape(g, [4]))
    }

    /// MatMul with its constant right operand pre-packed equals the plain product: a batch of
    /// rows (3-D left operand), tall (row bands over the pool) and wide (column bands) shapes,
    /// a K past one k block; a different tensor of the same shape, or another GEMM path, is
    /// not paired with the panels.
    func testPrepackedMatMulWeightsMatchThePlainProduct() throws {
        var rng = KernelRNG(seed: 31)
        defer { Kernels.forceGEMMLevel(nil) }
        for (aShape, n) in [([2, 37, 50], 70), ([300, 64], 45), ([20, 300], 500), ([1, 3, 1000], 33)] as [([Int], Int)] {
            let a = try rng.tensor(aShape), w = try rng.tensor([aShape.last!, n])
            let packed = try PackedMatMulWeights(weight: w)
            XCTAssertTrue(packed.matches(w))
            XCTAssertFalse(packed.matches(try rng.tensor(w.shape)))
            let plain = try Kernels.matmul(a, w)
            try assertKernelClose(try Kernels.matmul(a, w, packedB: packed), plain, "\(aShape) x \(n)")
            for level in 0..<Kernels.cpuLevel {
                Kernels.forceGEMMLevel(level)
                XCTAssertFalse(packed.matches(w), "level \(level)")
                try assertKernelClose(try Kernels.matmul(a, w, packedB: packed), plain, "\(aShape) x \(n) level \(level)")
            }
            Kernels.forceGEMMLevel(nil)
        }
    }

    /// A column bias with the product: inside the packed GEMM's tiles (many rows), and added after
    /// it where the packed path is not taken (one row: the matrix-vector product; no packed
    /// weights) — the same floats as the product followed by a broadcast add, on every path.
    func testMatMulColumnBiasEqualsProductPlusBias() throws {
        var rng = KernelRNG(seed: 9)
        let w = try Tensor(shape: [48, 40], floats: rng.floats(48 * 40)), b = try Tensor(shape: [40], floats: rng.floats(40))
        let packed = try PackedMatMulWeights(weight: w)
        for shape in [[1, 48], [3, 17, 48], [48]] {
            let a = try Tensor(shape: shape, floats: rng.floats(shape.reduce(1, *)))
            for p in [packed, nil] {
                let fused = try Kernels.matmul(a, w, packedB: p, columnBias: b)
                let plain = try Kernels.matmul(a, w, packedB: p)
                let want = try plain.floats(), bias = try b.floats()
                XCTAssertEqual(fused.shape, plain.shape)
                XCTAssertEqual(try fused.floats(), want.indices.map { want[$0] + bias[$0 % 40] }, "\(shape) packed \(p != nil)")
            }
        }
        XCTAssertThrowsError(try Kernels.matmul(try Tensor(shape: [2, 48], floats: rng.floats(96)), w,
                                                columnBias: try Tensor(shape: [39], floats: rng.floats(39))))
    }
}

