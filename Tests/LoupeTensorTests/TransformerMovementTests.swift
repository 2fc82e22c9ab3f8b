import XCTest
@testable import LoupeTensor

/// The data-movement fast paths a transformer export leans on (head split/merge permutations,
/// Kᵀ, q/k/v gathers, token slices, batched attention products), each against a slow
/// coordinate-walking reference on odd shapes, serial and with the parallel split forced.
final class TransformerMovementTests: XCTestCase {
    /// Runs `body` once with the default thresholds and once with every copy split over the pool.
    private func bothSchedules(_ body: () throws -> Void) rethrows {
        try body()
        let (c, t) = (Movement.parallelCopyThreshold, Movement.parallelTransposeThreshold)
        Movement.parallelCopyThreshold = 1
        Movement.parallelTransposeThreshold = 1
        defer { Movement.parallelCopyThreshold = c; Movement.parallelTransposeThreshold = t }
        try body()
    }

    private func ramp(_ shape: [Int]) throws -> Tensor {
        let n = shape.reduce(1, *)
        return try Tensor(shape: shape, floats: (0 ..< n).map { Float($0) * 0.5 - 3 })
    }

    /// Output element o reads the input at the coordinates permuted back.
    private func referencePermute(_ x: [Float], shape: [Int], perm: [Int]) -> [Float] {
        let outShape = perm.map { shape[$0] }
        let inStrides = Shape.strides(shape), outStrides = Shape.strides(outShape)
        return (0 ..< x.count).map { o in
            var rem = o, src = 0
            for d in 0 ..< outShape.count {
                src += (rem / outStrides[d]) * inStrides[perm[d]]
                rem %= outStrides[d]
            }
            return x[src]
        }
    }

    func testAttentionPermutationsMatchReference() throws {
        // (B, T, H, D) with T = 11 and D = 9 leave ragged 8×8 blocks on both transpose axes.
        let cases: [([Int], [Int])] = [
            ([2, 11, 3, 9], [0, 2, 1, 3]),     // head split (B,T,H,D) -> (B,H,T,D)
            ([2, 3, 11, 9], [0, 2, 1, 3]),     // head merge
            ([2, 3, 11, 9], [0, 1, 3, 2]),     // Kᵀ: batched last-two swap
            ([2, 3, 11, 9], [2, 0, 1, 3]),     // torch MHA (B,H,T,D) -> (T,B,H,D)
            ([1, 11, 2, 3, 9], [3, 1, 2, 0, 4]),  // torch MHA q/k/v unbind
            ([11, 2, 9], [1, 0, 2]),           // (T,B,D) <-> (B,T,D)
            ([2, 17, 19], [0, 2, 1]),          // NCHW tokens, 8×8 blocks plus edges
            ([19, 33], [1, 0]),                // 2-D, crossing a 32-wide tile
            ([3, 4, 5], [2, 1, 0]),            // general fallback (no fast path)
            ([2, 1, 5, 1, 3], [4, 3, 2, 1, 0]),
        ]
        try bothSchedules {
            for (shape, perm) in cases {
                let x = try ramp(shape)
                let y = try x.permuted(perm)
                XCTAssertEqual(y.shape, perm.map { shape[$0] })
                XCTAssertEqual(try y.floats(), referencePermute(try x.floats(), shape: shape, perm: perm), "\(shape) \(perm)")
                // The pre-fast-path implementation agrees too.
                XCTAssertEqual(try y.floats(), Movement.permuteReference(try x.floats(), shape: shape, perm: perm))
            }
        }
    }

    func testIntAndBoolTransposesUseTheGenericPath() throws {
        let shape = [2, 9, 10]
        let ints = try Tensor(shape: shape, ints: (0 ..< 180).map { Int64($0 * 7 % 11) })
        let y = try ints.permuted([0, 2, 1])
        let ref = referencePermute((0 ..< 180).map { Float($0 * 7 % 11) }, shape: shape, perm: [0, 2, 1])
        XCTAssertEqual(try y.ints(), ref.map { Int64($0) })
        let bools = try Tensor(shape: [3, 10], bools: (0 ..< 30).map { $0 % 3 == 0 })
        let b = try bools.permuted([1, 0])
        let bref = referencePermute((0 ..< 30).map { Float($0 % 3 == 0 ? 1 : 0) }, shape: [3, 10], perm: [1, 0])
        XCTAssertEqual(try b.bools(), bref.map { $0 == 1 })
    }

    func testGatherBlocksMatchTheTableGather() throws {
        let x = try ramp([3, 4, 2, 5])
        try bothSchedules {
            for axis in -4 ..< 4 {
                let n = x.shape[(axis + 4) % 4]
                for idx in [try Tensor(shape: [], ints: [Int64(n - 1)]), try Tensor(shape: [], ints: [-1]),
                            try Tensor(shape: [2, 2], ints: [0, Int64(n - 1), -Int64(n), 0]),
                            try Tensor(shape: [0], ints: [])] {
                    let (m, outShape) = try Movement.gatherTables(shape: x.shape, indices: idx, axis: axis)
                    let want = Movement.gather(x, m)
                    let got = try x.gathered(indices: idx, axis: axis)
                    XCTAssertEqual(got.shape, outShape)
                    XCTAssertEqual(try got.floats(), try want.floats(), "axis \(axis) indices \(idx.shape)")
                }
            }
        }
        // Scalar index into an int64 shape vector (exported shape arithmetic), and its errors.
        let s = try Tensor(shape: [4], ints: [16, 197, 3, 64])
        XCTAssertEqual(try s.gathered(indices: Tensor(shape: [], ints: [-3]), axis: 0), try Tensor(shape: [], ints: [197]))
        XCTAssertThrowsError(try s.gathered(indices: Tensor(shape: [], ints: [4]), axis: 0))
        XCTAssertThrowsError(try s.gathered(indices: Tensor(shape: [], ints: [-5]), axis: 0))
        XCTAssertThrowsError(try x.gathered(indices: Tensor(shape: [1], ints: [3]), axis: 0))
        // Bool data through the block copy.
        let b = try Tensor(shape: [2, 3], bools: [true, false, false, false, true, true])
        XCTAssertEqual(try b.gathered(indices: Tensor(shape: [2], ints: [2, 0]), axis: 1),
                       try Tensor(shape: [2, 2], bools: [false, true, true, false]))
    }

    func testSliceRunsMatchTheTableSlice() throws {
        let x = try ramp([3, 5, 4, 6])
        let cases: [[SliceRange]] = [
            [SliceRange(axis: 1, start: 0, end: 1)],                          // class token x[:, 0:1]
            [SliceRange(axis: 3, start: 1, end: 5)],                          // inner run
            [SliceRange(axis: 0, start: 2, end: 0, step: -1), SliceRange(axis: 3, start: -2, end: 100)],
            [SliceRange(axis: 1, start: 1, end: 5, step: 2), SliceRange(axis: 2, start: 1, end: 3)],
            [SliceRange(axis: 2, start: 0, end: Int.max), SliceRange(axis: 1, start: -100, end: -1)],
            [SliceRange(axis: 3, start: 5, end: 0, step: -2)],                 // last-axis step: table path
            [SliceRange(axis: 1, start: 3, end: 3)],                          // empty
            [],
        ]
        try bothSchedules {
            for ranges in cases {
                let want = Movement.gather(x, try Movement.sliceTables(shape: x.shape, ranges))
                let got = try x.sliced(ranges)
                XCTAssertEqual(got.shape, want.shape, "\(ranges)")
                XCTAssertEqual(try got.floats(), try want.floats(), "\(ranges)")
            }
        }
        let ints = try Tensor(shape: [5], ints: [1, 2, 3, 4, 5])
        XCTAssertEqual(try ints.sliced([SliceRange(axis: 0, start: 1, end: -1)]), try Tensor(shape: [3], ints: [2, 3, 4]))
        XCTAssertThrowsError(try x.sliced([SliceRange(axis: 0, start: 0, end: 1, step: 0)]))
        XCTAssertThrowsError(try x.sliced([SliceRange(axis: 4, start: 0, end: 1)]))
    }

    /// Batched, broadcast products with transposed operands, including shapes large enough to
    /// take the parallel band schedule (≥ 64³ multiply-adds, ≥ 64 rows), against a Double loop.
    func testBatchedMatMulSchedulesMatchReference() throws {
        var rng = KernelRNG(seed: 11)
        let cases: [([Int], [Int], Bool, Bool)] = [
            ([3, 1, 70, 33], [2, 33, 40], false, false),   // broadcast batch, banded
            ([2, 3, 33, 70], [2, 3, 41, 33], true, true),  // Kᵀ-style flags, banded
            ([4, 9, 5], [4, 7, 5], false, true),            // small: serial loop
            ([3, 5], [2, 3, 6], true, false),               // shared left operand
            ([2, 2, 67, 64], [64, 65], false, false),       // shared right operand: one tall GEMM
            ([1, 1, 130, 40], [1, 3, 40, 60], false, false),  // few products, many bands
        ]
        for (sa, sb, tA, tB) in cases {
            let a = try rng.tensor(sa), b = try rng.tensor(sb)
            let c = try Kernels.matmul(a, b, transposeA: tA, transposeB: tB)
            let ra = sa.count, rb = sb.count
            let m = tA ? sa[ra - 1] : sa[ra - 2], k = tA ? sa[ra - 2] : sa[ra - 1], n = tB ? sb[rb - 2] : sb[rb - 1]
            let batch = try Shape.broadcast(Array(sa.dropLast(2)), Array(sb.dropLast(2)), op: "test")
            XCTAssertEqual(c.shape, batch + [m, n])
            let A = try a.floats(), B = try b.floats(), C = try c.floats()
            let pa = [Int](repeating: 1, count: batch.count - (ra - 2)) + sa.dropLast(2)
            let pb = [Int](repeating: 1, count: batch.count - (rb - 2)) + sb.dropLast(2)
            var maxErr: Double = 0
            for bi in 0 ..< batch.reduce(1, *) {
                // Batch coordinates, then each operand's own (broadcast) matrix index.
                var rem = bi, ia = 0, ib = 0, sA = 1, sB = 1
                for d in stride(from: batch.count - 1, through: 0, by: -1) {
                    let coord = rem % batch[d]
                    rem /= batch[d]
                    if pa[d] != 1 { ia += coord * sA }
                    if pb[d] != 1 { ib += coord * sB }
                    sA *= pa[d]
                    sB *= pb[d]
                }
                for i in 0 ..< m { for j in 0 ..< n {
                    var s = 0.0
                    for p in 0 ..< k {
                        let av = A[ia * m * k + (tA ? p * m + i : i * k + p)]
                        let bv = B[ib * k * n + (tB ? j * k + p : p * n + j)]
                        s += Double(av) * Double(bv)
                    }
                    maxErr = max(maxErr, abs(s - Double(C[bi * m * n + i * n + j])))
                } }
            }
            XCTAssertLessThan(maxErr, 1e-4, "\(sa) \(sb) tA \(tA) tB \(tB)")
        }
    }

    /// The row-sum fast path (leading axes summed away: bias and shared-weight gradients) and
    /// the general path, against sums over explicit coordinates.
    func testSumToShapeMatchesCoordinateSums() throws {
        let full = [2, 3, 4]
        let g = try ramp(full)
        let G = try g.floats()
        for target in [[4], [3, 4], [1, 3, 4], [1, 1, 4], [], [1], [2, 1, 4], [3, 1], [2, 3, 1]] {
            let got = try Kernels.sumToShape(g, target)
            XCTAssertEqual(got.shape, target)
            let padded = [Int](repeating: 1, count: 3 - target.count) + target
            var want = [Float](repeating: 0, count: target.reduce(1, *))
            for i in 0 ..< 2 { for j in 0 ..< 3 { for k in 0 ..< 4 {
                let c = [i, j, k].enumerated().map { padded[$0.offset] == 1 ? 0 : $0.element }
                want[(c[0] * padded[1] + c[1]) * padded[2] + c[2]] += G[(i * 3 + j) * 4 + k]
            } } }
            XCTAssertEqual(try got.floats(), want, "\(target)")
        }
    }

    /// Gather's VJP as a block scatter-add equals the table scatter-add, repeated and negative
    /// indices accumulating.
    func testGatherGradientMatchesTableScatter() throws {
        let shape = [3, 4, 2, 5]
        for axis in -4 ..< 4 {
            let n = shape[(axis + 4) % 4]
            for idx in [try Tensor(shape: [], ints: [Int64(n - 1)]), try Tensor(shape: [2, 2], ints: [0, -1, 0, Int64(n - 1)])] {
                let (m, outShape) = try Movement.gatherTables(shape: shape, indices: idx, axis: axis)
                let g = try ramp(outShape)
                let want = try Movement.scatterAdd(g.reshaped(m.shape), m, sourceShape: shape, op: "Gather")
                let got = try Tensor.gatheredGradient(g, inputShape: shape, indices: idx, axis: axis)
                XCTAssertEqual(got.shape, shape)
                XCTAssertEqual(try got.floats(), try want.floats(), "axis \(axis)")
            }
        }
        XCTAssertThrowsError(try Tensor.gatheredGradient(Tensor(zeros: [2]), inputShape: shape, indices: Tensor(shape: [], ints: [0]), axis: 0))
    }
}
