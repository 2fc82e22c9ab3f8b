import XCTest
@testable import LoupeTensor

/// Slow, obviously correct permutation: walks output coordinates and reads the input by
/// coordinates, no stride tricks.
private func referencePermute(_ x: [Double], shape: [Int], perm: [Int]) -> [Double] {
    let outShape = perm.map { shape[$0] }
    let inStrides = Shape.strides(shape), outStrides = Shape.strides(outShape)
    let n = x.count
    var out = [Double](repeating: 0, count: n)
    for o in 0 ..< n {
        var rem = o, src = 0
        for d in 0 ..< outShape.count {
            let c = rem / outStrides[d]
            rem %= outStrides[d]
            src += c * inStrides[perm[d]]
        }
        out[o] = x[src]
    }
    return out
}

private func permutations(_ n: Int) -> [[Int]] {
    if n == 0 { return [[]] }
    return permutations(n - 1).flatMap { p in (0 ... p.count).map { i in var q = p; q.insert(n - 1, at: i); return q } }
}

private func iota(_ shape: [Int]) -> Tensor {
    let n = shape.reduce(1, *)
    return try! Tensor(shape: shape, floats: (0 ..< n).map { Float($0) })
}

final class MovementTests: XCTestCase {
    func testPermuteAllFourDPermutationsMatchReference() throws {
        for shape in [[2, 3, 4, 5], [2, 1, 3, 1], [1, 3, 4, 2]] {
            let x = iota(shape)
            for perm in permutations(4) {
                let y = try x.permuted(perm)
                XCTAssertEqual(y.shape, perm.map { shape[$0] })
                XCTAssertEqual(y.doubles, referencePermute(x.doubles, shape: shape, perm: perm), "shape \(shape) perm \(perm)")
            }
        }
    }

    func testPermuteTiledTransposeEdgesAndRank5() throws {
        // 37×45 crosses the 32-wide tiles with ragged edges on both axes.
        let x = iota([3, 37, 45])
        XCTAssertEqual(try x.permuted([0, 2, 1]).doubles, referencePermute(x.doubles, shape: [3, 37, 45], perm: [0, 2, 1]))
        let z = iota([2, 3, 2, 4, 3])
        for perm in [[4, 2, 0, 1, 3], [0, 1, 4, 2, 3], [1, 0, 2, 4, 3]] {
            XCTAssertEqual(try z.permuted(perm).doubles, referencePermute(z.doubles, shape: z.shape, perm: perm), "\(perm)")
        }
    }

    func testPermuteInt64BoolAndRankZero() throws {
        let i = try Tensor(shape: [2, 3], ints: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(try i.permuted([1, 0]), try Tensor(shape: [3, 2], ints: [1, 4, 2, 5, 3, 6]))
        let b = try Tensor(shape: [1, 2, 2], bools: [true, false, false, false])
        XCTAssertEqual(try b.permuted([2, 0, 1]), try Tensor(shape: [2, 1, 2], bools: [true, false, false, false]))
        XCTAssertEqual(try Tensor(scalar: 4).permuted([]), Tensor(scalar: 4))
        XCTAssertThrowsError(try i.permuted([0, 0]))
        XCTAssertEqual(Tensor.inversePermutation([2, 0, 3, 1]), [1, 3, 0, 2])
    }

    func testSliceResolveFollowsONNXClamping() {
        let big = Int(Int64.max), small = Int(Int64.min)
        let cases: [(Int, Int, Int, Int, Int, Int)] = [
            // start, end, step, dim -> first, count
            (0, 3, 1, 5, 0, 3),
            (1, big, 1, 5, 1, 4),
            (-2, big, 1, 5, 3, 2),
            (-100, 100, 2, 5, 0, 3),
            (-1, small, -1, 5, 4, 5),
            (-1, -big, -2, 5, 4, 3),
            (10, 0, -3, 5, 4, 2),
            (3, 1, 1, 5, 3, 0),
            (1, 3, -1, 5, 1, 0),
            (0, 5, big, 5, 0, 1),
            (4, -6, small, 5, 4, 1),
            (0, 0, 1, 0, 0, 0),
        ]
        for (s, e, st, d, first, count) in cases {
            let r = SliceRange.resolve(start: s, end: e, step: st, dim: d)
            XCTAssertEqual(r.count, count, "\(s):\(e):\(st) on \(d)")
            if count > 0 { XCTAssertEqual(r.first, first, "\(s):\(e):\(st) on \(d)") }
        }
    }

    func testSliceAndGradientScatterIntoZeros() throws {
        let x = iota([3, 4])
        let ranges = [SliceRange(axis: 1, start: -1, end: 0, step: -2), SliceRange(axis: 0, start: 1, end: 3)]
        XCTAssertEqual(try x.sliced(ranges), try Tensor(shape: [2, 2], floats: [7, 5, 11, 9]))
        let g = try Tensor.slicedGradient(try Tensor(shape: [2, 2], floats: [1, 2, 3, 4]), inputShape: [3, 4], ranges)
        XCTAssertEqual(g, try Tensor(shape: [3, 4], floats: [0, 0, 0, 0, 0, 2, 0, 1, 0, 4, 0, 3]))
        XCTAssertThrowsError(try x.sliced([SliceRange(axis: 0, start: 0, end: 1, step: 0)]))
        XCTAssertThrowsError(try x.sliced([SliceRange(axis: 0, start: 0, end: 1), SliceRange(axis: -2, start: 0, end: 1)]))
    }

    func testConcatSplitRoundTripAllDTypes() throws {
        let a = try Tensor(shape: [2, 1], ints: [1, 2]), b = try Tensor(shape: [2, 2], ints: [3, 4, 5, 6])
        let c = try Tensor.concatenated([a, try Tensor(shape: [2, 0], ints: []), b], axis: -1)
        XCTAssertEqual(c, try Tensor(shape: [2, 3], ints: [1, 3, 4, 2, 5, 6]))
        XCTAssertEqual(try c.split(axis: 1, sizes: [1, 0, 2]), [a, try Tensor(shape: [2, 0], ints: []), b])
        let p = try Tensor(shape: [1, 2], bools: [true, false]), q = try Tensor(shape: [2, 2], bools: [false, true, true, true])
        let pq = try Tensor.concatenated([p, q], axis: 0)
        XCTAssertEqual(pq, try Tensor(shape: [3, 2], bools: [true, false, false, true, true, true]))
        XCTAssertEqual(try pq.split(axis: 0, sizes: [1, 2]), [p, q])
        XCTAssertThrowsError(try Tensor.concatenated([a, Tensor(zeros: [2, 1])], axis: 1)) { e in
            guard case .dtypeMismatch(op: "Concat", _, _)? = e as? TensorError else { return XCTFail("\(e)") }
        }
        XCTAssertThrowsError(try c.split(axis: 1, sizes: [1, 1]))
    }

    func testPadModesMatchNumPyIncludingWidePads() throws {
        let v = try Tensor(shape: [3], floats: [1, 2, 3])
        XCTAssertEqual(try v.padded(begins: [5], ends: [4], mode: .reflect).doubles, [2, 1, 2, 3, 2, 1, 2, 3, 2, 1, 2, 3])
        XCTAssertEqual(try v.padded(begins: [4], ends: [5], mode: .wrap).doubles, [3, 1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2])
        XCTAssertEqual(try v.padded(begins: [2], ends: [1], mode: .edge).doubles, [1, 1, 1, 2, 3, 3])
        XCTAssertEqual(try v.padded(begins: [1], ends: [-2], mode: .constant, value: -1).doubles, [-1, 1])
        let one = try Tensor(shape: [1], ints: [7])
        XCTAssertEqual(try one.padded(begins: [2], ends: [1], mode: .reflect), try Tensor(shape: [4], ints: [7, 7, 7, 7]))
        let mask = try Tensor(shape: [1], bools: [true])
        XCTAssertEqual(try mask.padded(begins: [1], ends: [0]), try Tensor(shape: [2], bools: [false, true]))
        XCTAssertThrowsError(try v.padded(begins: [-2], ends: [-2]))
        XCTAssertThrowsError(try Tensor(zeros: [0]).padded(begins: [1], ends: [0], mode: .edge))
    }

    func testBorderModesReadTheCroppedDataLikeOnnxRuntime() throws {
        // Values from onnxruntime 1.32: crop one element at the start, pad two at the end.
        let v = try Tensor(shape: [4], floats: [1, 2, 3, 4])
        XCTAssertEqual(try v.padded(begins: [-1], ends: [2], mode: .reflect).doubles, [2, 3, 4, 3, 2])
        XCTAssertEqual(try v.padded(begins: [-1], ends: [2], mode: .edge).doubles, [2, 3, 4, 4, 4])
        XCTAssertEqual(try v.padded(begins: [-1], ends: [1], mode: .wrap).doubles, [2, 3, 4, 2])
        XCTAssertThrowsError(try v.padded(begins: [-4], ends: [1], mode: .edge))
    }

    func testPadEdgeGradientAccumulatesBorder() throws {
        let g = try Tensor(shape: [6], floats: [1, 2, 3, 4, 5, 6])
        // Output [x0, x0, x0, x1, x2, x2]: x0 collects 1+2+3, x2 collects 5+6.
        XCTAssertEqual(try Tensor.paddedGradient(g, inputShape: [3], begins: [2], ends: [1], mode: .edge).doubles, [6, 4, 11])
        XCTAssertEqual(try Tensor.paddedGradient(g, inputShape: [3], begins: [2], ends: [1], mode: .constant).doubles, [3, 4, 5])
    }

    func testTileAndGradientSum() throws {
        let x = try Tensor(shape: [1, 2], ints: [5, 6])
        XCTAssertEqual(try x.tiled([2, 2]), try Tensor(shape: [2, 4], ints: [5, 6, 5, 6, 5, 6, 5, 6]))
        let g = try Tensor(shape: [2, 4], floats: [1, 2, 3, 4, 5, 6, 7, 8])
        XCTAssertEqual(try Tensor.tiledGradient(g, inputShape: [1, 2], repeats: [2, 2]).doubles, [16, 20] as [Double])
        XCTAssertEqual(try x.tiled([0, 1]).shape, [0, 2])
    }

    func testGatherFamily() throws {
        let x = iota([2, 3])
        XCTAssertEqual(try x.gathered(indices: try Tensor(shape: [], ints: [-1]), axis: 1), try Tensor(shape: [2], floats: [2, 5]))
        let g = try Tensor.gatheredGradient(try Tensor(shape: [2, 3], floats: [1, 1, 1, 1, 1, 1]), inputShape: [2, 3],
                                            indices: Tensor(ints: [2, 2, 0]), axis: 1)
        XCTAssertEqual(g.doubles, [1, 0, 2, 1, 0, 2])
        XCTAssertThrowsError(try x.gathered(indices: Tensor(ints: [3]), axis: 1))
        XCTAssertThrowsError(try x.gathered(indices: try Tensor(shape: [1], bools: [true]), axis: 0))
        let nd = try x.gatheredND(indices: try Tensor(shape: [2, 1], ints: [1, 0]))
        XCTAssertEqual(nd, try Tensor(shape: [2, 3], floats: [3, 4, 5, 0, 1, 2]))
        let e = try x.gatheredElements(indices: try Tensor(shape: [1, 2], ints: [1, 0]), axis: 0)
        XCTAssertEqual(e, try Tensor(shape: [1, 2], floats: [3, 1]))
    }

    func testScatterReductionsOnInt64AndBool() throws {
        let d = try Tensor(shape: [4], ints: [5, 5, 5, 5])
        let idx = try Tensor(shape: [3], ints: [0, 0, 3])
        let u = try Tensor(shape: [3], ints: [9, 2, 1])
        XCTAssertEqual(try d.scatteringElements(indices: idx, updates: u, axis: 0, reduction: .max).doubles, [9, 5, 5, 5])
        XCTAssertEqual(try d.scatteringElements(indices: idx, updates: u, axis: 0, reduction: .min).doubles, [2, 5, 5, 1])
        XCTAssertEqual(try d.scatteringElements(indices: idx, updates: u, axis: 0, reduction: .mul).doubles, [90, 5, 5, 5])
        let m = try Tensor(shape: [2], bools: [false, false])
        XCTAssertEqual(try m.scatteringND(indices: try Tensor(shape: [1, 1], ints: [1]), updates: try Tensor(shape: [1], bools: [true])),
                       try Tensor(shape: [2], bools: [false, true]))
        XCTAssertThrowsError(try d.scatteringElements(indices: idx, updates: Tensor(zeros: [3]), axis: 0))
    }

    func testTriluOneHotNonZeroRange() throws {
        let m = try Tensor(shape: [2, 2], bools: [true, true, true, true])
        XCTAssertEqual(try m.trilu(upper: false, k: 0), try Tensor(shape: [2, 2], bools: [true, false, true, true]))
        XCTAssertEqual(try m.trilu(upper: true, k: -5), m)
        XCTAssertThrowsError(try Tensor(zeros: [3]).trilu(upper: true))
        let oh = try Tensor(ints: [1, -3, 3]).oneHot(depth: 3, values: try Tensor(shape: [2], bools: [false, true]))
        XCTAssertEqual(oh, try Tensor(shape: [3, 3], bools: [false, true, false, true, false, false, false, false, false]))
        XCTAssertEqual(Tensor(scalar: 2).nonZero(), try Tensor(shape: [1, 1], ints: [0]))  // as ONNX Runtime
        XCTAssertEqual(try Tensor(shape: [2, 2], ints: [0, 3, 4, 0]).nonZero(), try Tensor(shape: [2, 2], ints: [0, 1, 1, 0]))
        let r = try Tensor.range(start: Tensor(scalar: 0), limit: Tensor(scalar: -1), delta: Tensor(scalar: -0.25))
        XCTAssertEqual(r.doubles, [0, -0.25, -0.5, -0.75])
        XCTAssertThrowsError(try Tensor.range(start: Tensor(scalar: 0), limit: Tensor(scalar: 1e30), delta: Tensor(scalar: 1e-30)))
        XCTAssertThrowsError(try Tensor.range(start: Tensor(ints: [0]), limit: Tensor(scalar: 1), delta: Tensor(ints: [1])))
    }

    func testDepthToSpaceInvertsSpaceToDepth() throws {
        let x = iota([1, 2, 4, 6])
        let s = try x.spaceToDepth(blockSize: 2)
        XCTAssertEqual(s.shape, [1, 8, 2, 3])
        XCTAssertEqual(try s.depthToSpace(blockSize: 2, mode: .dcr), x)
        // CRD is PyTorch pixel_shuffle: channel c·4 + by·2 + bx lands at (2h+by, 2w+bx).
        let p = try iota([1, 4, 1, 1]).depthToSpace(blockSize: 2, mode: .crd)
        XCTAssertEqual(p, try Tensor(shape: [1, 1, 2, 2], floats: [0, 1, 2, 3]))
        let d = try iota([1, 4, 1, 1]).depthToSpace(blockSize: 2, mode: .dcr)
        XCTAssertEqual(d, try Tensor(shape: [1, 1, 2, 2], floats: [0, 1, 2, 3]))
        let g = try Tensor.spaceToDepthGradient(s, inputShape: x.shape, blockSize: 2)
        XCTAssertEqual(g, x)
    }
}

final class MovementLimitTests: XCTestCase {
    func testAbsurdSizesFailInsteadOfAllocating() {
        let x = Tensor(zeros: [2, 2])
        XCTAssertThrowsError(try x.tiled([1 << 40, 1 << 40]))
        XCTAssertThrowsError(try x.padded(begins: [Int.max, 0], ends: [1, 0]))
        XCTAssertThrowsError(try Tensor(ints: [0]).oneHot(depth: 1 << 33, values: Tensor(ints: [0, 1])))
    }
}
