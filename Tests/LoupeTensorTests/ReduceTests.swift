import XCTest
@testable import LoupeTensor

final class ReduceTests: XCTestCase {
    /// x = (arange(24)·0.37 mod 1.9) − 0.8 as (2, 3, 4); expected values from numpy (float64).
    let x = try! Tensor(shape: [2, 3, 4], floats: [-0.8, -0.43, -0.06, 0.31, 0.68, 1.05, -0.48, -0.11, 0.26, 0.63, 1, -0.53,
                                                   -0.16, 0.21, 0.58, 0.95, -0.58, -0.21, 0.16, 0.53, 0.9, -0.63, -0.26, 0.11])

    func testFloatReductionsAgainstNumpy() throws {
        assertClose(try x.reduce(.sum, axes: [1], keepDims: true), [0.14, 1.25, 0.46, -0.33, 0.16, -0.63, 0.48, 1.59], shape: [2, 1, 4])
        assertClose(try x.reduce(.mean, axes: [0, 2], keepDims: false), [0.075, 0.13, 0.185], shape: [3])
        assertClose(try x.reduce(.max, axes: [-1], keepDims: false), [0.31, 1.05, 1, 0.95, 0.53, 0.9], shape: [2, 3])
        assertClose(try x.reduce(.min, axes: [0], keepDims: false),
                    [-0.8, -0.43, -0.06, 0.31, -0.58, -0.21, -0.48, -0.11, 0.26, -0.63, -0.26, -0.53], shape: [3, 4])
        assertClose(try x.reduce(.prod, axes: [2], keepDims: false),
                    [-0.0063984, 0.0376992, -0.086814, -0.0185136, 0.01032864, 0.0162162], shape: [2, 3])
        assertClose(try x.reduce(.l1, axes: [1], keepDims: false), [1.74, 2.11, 1.54, 0.95, 1.64, 1.05, 1, 1.59], shape: [2, 4])
        assertClose(try x.reduce(.l2, axes: nil, keepDims: true), [2.785606], shape: [1, 1, 1])
        assertClose(try x.reduce(.sumSquare, axes: [0, 1], keepDims: false), [2.342, 2.1694, 1.6636, 1.5846], shape: [4])
        assertClose(try x.unary(.abs).reduce(.logSum, axes: [2], keepDims: false),
                    [0.4700036, 0.8415672, 0.8837675, 0.6418539, 0.3920421, 0.6418539], shape: [2, 3])
        assertClose(try x.reduce(.logSumExp, axes: [1], keepDims: false),
                    [1.31376, 1.68376, 1.45368, 1.046569, 1.35368, 0.9465693, 1.316569, 1.686569], shape: [2, 4])
        assertClose(try x.reduce(.sum, axes: [], keepDims: false), [3.12], shape: [])
    }

    /// Every subset of axes of a rank-4 tensor (with a size-1 axis) against a naive loop.
    func testEveryAxisSubsetAgainstNaiveLoop() throws {
        let shape = [2, 3, 1, 4]
        let v = sampleFloats(24, seed: 6)
        let t = try Tensor(shape: shape, floats: v)
        let strides = Shape.strides(shape)
        for mask in 0..<16 {
            let axes = (0..<4).filter { mask & (1 << $0) != 0 }
            let kept = shape.enumerated().map { axes.contains($0.offset) ? 1 : $0.element }
            let keptStrides = Shape.strides(kept)
            var sum = [Double](repeating: 0, count: kept.reduce(1, *)), mx = [Double](repeating: -.infinity, count: sum.count)
            var prod = [Double](repeating: 1, count: sum.count)
            for i in 0..<24 {
                var o = 0
                for d in 0..<4 where !axes.contains(d) { o += (i / strides[d]) % shape[d] * keptStrides[d] }
                sum[o] += Double(v[i]); mx[o] = max(mx[o], Double(v[i])); prod[o] *= Double(v[i])
            }
            // Empty `axes` means all axes in the Tensor API, so compare the explicit subsets only.
            guard !axes.isEmpty else { continue }
            assertClose(try t.reduce(.sum, axes: axes, keepDims: true), sum, shape: kept, atol: 1e-5, "sum \(axes)")
            assertClose(try t.reduce(.max, axes: axes, keepDims: true), mx, shape: kept, "max \(axes)")
            assertClose(try t.reduce(.prod, axes: axes, keepDims: true), prod, shape: kept, atol: 1e-5, "prod \(axes)")
            XCTAssertEqual(try t.reduce(.sum, axes: axes, keepDims: false).shape, shape.enumerated().filter { !axes.contains($0.offset) }.map(\.element))
        }
    }

    func testLongRunsAgainstDoubleReference() throws {
        // Runs of 37 exercise the 8-wide partial sums and the scalar tail.
        let v = sampleFloats(3 * 37, seed: 4)
        let t = try Tensor(shape: [3, 37], floats: v)
        for (op, f) in [(ReduceOp.sum, { (x: Double) in x }), (.l1, { abs($0) }), (.sumSquare, { $0 * $0 })] {
            let expected = (0..<3).map { r in (0..<37).reduce(0.0) { $0 + f(Double(v[r * 37 + $1])) } }
            assertClose(try t.reduce(op, axes: [1], keepDims: false), expected, atol: 1e-4, "\(op)")
            let cols = (0..<37).map { c in (0..<3).reduce(0.0) { $0 + f(Double(v[$1 * 37 + c])) } }
            assertClose(try t.reduce(op, axes: [0], keepDims: false), cols, atol: 1e-4, "\(op) axis 0")
        }
    }

    func testMaxMinLongRunsAndNaN() throws {
        var v = sampleFloats(3 * 37, seed: 9)
        let t = try Tensor(shape: [3, 37], floats: v)
        for (op, f) in [(ReduceOp.max, { (a: [Float]) in a.max()! }), (.min, { $0.min()! })] {
            let rows = (0..<3).map { r in Double(f(Array(v[(r * 37)..<(r * 37 + 37)]))) }
            assertClose(try t.reduce(op, axes: [1], keepDims: false), rows, "\(op)")
        }
        // NaN in the vector part (index 3) and in the tail (index 36 of row 1) propagates.
        v[3] = .nan
        v[37 + 36] = .nan
        let n = try Tensor(shape: [3, 37], floats: v)
        let mx = try n.reduce(.max, axes: [1], keepDims: false).floats()
        XCTAssertTrue(mx[0].isNaN && mx[1].isNaN && !mx[2].isNaN)
        let mn = try n.reduce(.min, axes: [1], keepDims: false).floats()
        XCTAssertTrue(mn[0].isNaN && mn[1].isNaN && !mn[2].isNaN)
    }

    func testLogSumExpDoesNotOverflow() throws {
        let big = try Tensor(shape: [2, 2], floats: [1000, 1000, -.infinity, -.infinity])
        assertClose(try big.reduce(.logSumExp, axes: [1], keepDims: false), [1000 + log(2.0), -.infinity])
    }

    func testInt64Reductions() throws {
        let xi = try Tensor(shape: [2, 4], ints: [3, 1, 4, 1, 5, 9, 2, 6])
        XCTAssertEqual(try xi.reduce(.prod, axes: [1], keepDims: false).ints(), [12, 540])
        XCTAssertEqual(try xi.reduce(.sum, axes: [0], keepDims: false).ints(), [8, 10, 6, 7])
        XCTAssertEqual(try xi.reduce(.max, axes: [1], keepDims: true).ints(), [4, 9])
        XCTAssertEqual(try xi.reduce(.min, axes: nil, keepDims: false).ints(), [1])
        XCTAssertThrowsError(try xi.reduce(.logSumExp, axes: nil, keepDims: false))
    }

    func testRankZero() throws {
        let s = Tensor(scalar: -2.5)
        for op in ReduceOp.allCases where op != .logSum {
            let y = try s.reduce(op, axes: nil, keepDims: true)
            XCTAssertEqual(y.shape, [], "\(op)")
        }
        XCTAssertEqual(try s.reduce(.sumSquare, axes: nil, keepDims: false).floats(), [6.25])
        XCTAssertEqual(try s.sumToShape([]), s)
        XCTAssertEqual(try Tensor(shape: [1, 1], floats: [3]).sumToShape([]).floats(), [3])
    }

    func testEmptyReductionGivesIdentity() throws {
        let e = Tensor(zeros: [3, 0])
        XCTAssertEqual(try e.reduce(.sum, axes: [1], keepDims: false).floats(), [0, 0, 0])
        XCTAssertEqual(try e.reduce(.prod, axes: [1], keepDims: false).floats(), [1, 1, 1])
        XCTAssertEqual(try e.reduce(.sum, axes: [0], keepDims: false).shape, [0])
    }

    func testSumToShape() throws {
        let g = try Tensor(shape: [2, 3, 4], floats: (0..<24).map { Float($0) })
        // (2,3,4) → (3,1): sum over axis 0 and axis 2.
        assertClose(try g.sumToShape([3, 1]), [60, 92, 124], shape: [3, 1])
        assertClose(try g.sumToShape([]), [276], shape: [])
        assertClose(try g.sumToShape([1, 1, 4]), [60, 66, 72, 78], shape: [1, 1, 4])
        XCTAssertEqual(try g.sumToShape([2, 3, 4]), g)
        XCTAssertThrowsError(try g.sumToShape([2, 4]))
        // Adjoint identity: ⟨broadcast(a), g⟩ = ⟨a, sumToShape(g)⟩.
        let a = try Tensor(shape: [3, 1], floats: [0.5, -1, 2])
        let lhs = try (a.broadcast(to: [2, 3, 4]) * g).reduce(.sum, axes: nil, keepDims: false).floats()[0]
        let rhs = try (a * g.sumToShape([3, 1])).reduce(.sum, axes: nil, keepDims: false).floats()[0]
        XCTAssertEqual(lhs, rhs, accuracy: 1e-3)
    }

    func testReduceVJPAgainstFiniteDifferences() throws {
        // Positive entries keep LogSum defined; distinct values keep Max/Min differentiable.
        let xp = try Tensor(shape: [2, 3, 2], floats: [0.3, 1.2, 0.7, 2.1, 1.6, 0.9, 0.45, 1.35, 2.4, 0.15, 1.05, 1.85])
        for op in ReduceOp.allCases {
            for axes in [[1], [0, 2], [-1]] as [[Int]] {
                for keep in [true, false] {
                    let y = try xp.reduce(op, axes: axes, keepDims: keep)
                    let g = try Tensor(shape: y.shape, floats: sampleFloats(y.count, seed: 3))
                    let d = try Tensor.reduceVJP(op, input: xp, output: y, grad: g, axes: axes).floats()
                    var xv = try xp.floats()
                    for i in 0..<xv.count {
                        let o = xv[i], h: Float = 1e-2
                        xv[i] = o + h
                        let p = try Tensor(shape: xp.shape, floats: xv).reduce(op, axes: axes, keepDims: keep)
                        xv[i] = o - h
                        let m = try Tensor(shape: xp.shape, floats: xv).reduce(op, axes: axes, keepDims: keep)
                        xv[i] = o
                        let gv = try g.floats(), pv = try p.floats(), mv = try m.floats()
                        let numeric = (0..<gv.count).reduce(0.0) { $0 + Double(gv[$1]) * Double(pv[$1] - mv[$1]) / Double(2 * h) }
                        XCTAssertEqual(Double(d[i]), numeric, accuracy: 2e-2 * Swift.max(1, abs(numeric)), "\(op) \(axes) keep \(keep) [\(i)]")
                    }
                }
            }
        }
    }

    func testMaxVJPSplitsTiesEvenly() throws {
        // torch.amax(x, 1).backward(ones) gives [0.5, 0.5, 0] and [0, 0, 1].
        let t = try Tensor(shape: [2, 3], floats: [2, 2, 1, 0, -1, 3])
        let y = try t.reduce(.max, axes: [1], keepDims: false)
        let d = try Tensor.reduceVJP(.max, input: t, output: y, grad: Tensor(shape: [2], floats: [1, 1]), axes: [1])
        XCTAssertEqual(try d.floats(), [0.5, 0.5, 0, 0, 0, 1])
    }

    func testProdVJPWithZeros() throws {
        // One zero: it gets the product of the others; two zeros: nothing.
        let t = try Tensor(shape: [2, 3], floats: [2, 0, 3, 0, 5, 0])
        let y = try t.reduce(.prod, axes: [1], keepDims: false)
        let d = try Tensor.reduceVJP(.prod, input: t, output: y, grad: Tensor(shape: [2], floats: [1, 1]), axes: [1])
        XCTAssertEqual(try d.floats(), [0, 6, 0, 0, 0, 0])
    }

    func testArgExtremum() throws {
        let t = try Tensor(shape: [2, 4], floats: [1, 3, 3, 0, -1, -5, 2, -5])
        XCTAssertEqual(try t.argExtremum(axis: 1, largest: true, keepDims: false).ints(), [1, 2])
        XCTAssertEqual(try t.argExtremum(axis: 1, largest: true, keepDims: false, selectLastIndex: true).ints(), [2, 2])
        XCTAssertEqual(try t.argExtremum(axis: -1, largest: false, keepDims: true).ints(), [3, 1])
        XCTAssertEqual(try t.argExtremum(axis: 1, largest: false, selectLastIndex: true).ints(), [3, 3])
        XCTAssertEqual(try t.argExtremum(axis: 0, largest: true, keepDims: true).shape, [1, 4])
        XCTAssertEqual(try t.argExtremum(axis: 0, largest: true).ints(), [0, 0, 0, 0])
        XCTAssertEqual(try Tensor(ints: [4, 9, 9, 1]).argExtremum(axis: 0, largest: true, keepDims: false).ints(), [1])
        XCTAssertThrowsError(try t.argExtremum(axis: 2, largest: true))
    }

    func testCumulativeSum() throws {
        let t = try Tensor(shape: [2, 3], floats: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(try t.cumulativeSum(axis: 1).floats(), [1, 3, 6, 4, 9, 15])
        XCTAssertEqual(try t.cumulativeSum(axis: 1, exclusive: true).floats(), [0, 1, 3, 0, 4, 9])
        XCTAssertEqual(try t.cumulativeSum(axis: 1, reverse: true).floats(), [6, 5, 3, 15, 11, 6])
        XCTAssertEqual(try t.cumulativeSum(axis: 1, exclusive: true, reverse: true).floats(), [5, 3, 0, 11, 6, 0])
        XCTAssertEqual(try t.cumulativeSum(axis: 0).floats(), [1, 2, 3, 5, 7, 9])
        XCTAssertEqual(try Tensor(ints: [1, 2, 3]).cumulativeSum(axis: 0).ints(), [1, 3, 6])
    }

    func testTopK() throws {
        let t = try Tensor(shape: [2, 4], floats: [1, 3, 3, 0, -1, -5, 2, -5])
        let (v, i) = try t.topK(2, axis: 1)
        XCTAssertEqual(try v.floats(), [3, 3, 2, -1])
        XCTAssertEqual(try i.ints(), [1, 2, 2, 0])   // ties keep ascending index order
        let (vs, isml) = try t.topK(2, axis: -1, largest: false)
        XCTAssertEqual(try vs.floats(), [0, 1, -5, -5])
        XCTAssertEqual(try isml.ints(), [3, 0, 1, 3])
        let (v0, i0) = try t.topK(1, axis: 0)
        XCTAssertEqual(v0.shape, [1, 4])
        XCTAssertEqual(try i0.ints(), [0, 0, 0, 0])
        XCTAssertThrowsError(try t.topK(5, axis: 1))
        let s = try Tensor.scatterTopKGradient(axis: 1, shape: [2, 4], indices: i, grad: Tensor(shape: [2, 2], floats: [1, 2, 3, 4]))
        XCTAssertEqual(try s.floats(), [0, 1, 2, 0, 4, 0, 3, 0])
    }
}
