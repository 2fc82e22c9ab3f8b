import XCTest
@testable import LoupeTensor

/// The vectorised broadcast arithmetic, softmax and row-normalisation kernels against the
/// scalar loops they replaced (kept as `…Scalar`), on odd sizes, every broadcast pattern the
/// fast path distinguishes, every SIMD path of this CPU, and sizes that go to the pool.
final class VectorKernelTests: XCTestCase {
    override func tearDown() {
        Kernels.forceVectorMathLevel(nil)
        super.tearDown()
    }

    private var levels: [Int] { Array(0...min(2, Kernels.cpuLevel)) }

    func testBroadcastBinaryMatchesScalarLoops() throws {
        var rng = KernelRNG(seed: 61)
        let shapes: [([Int], [Int])] = [
            ([3, 5, 7], [3, 5, 7]),          // same shape, one run
            ([2, 9], []),                    // scalar right
            ([], [4, 3]),                    // scalar left
            ([2, 3, 5, 7], [2, 3, 1, 1]),    // per-channel (SE block)
            ([2, 5, 19], [19]),              // row vector ((N,T,D) + (D))
            ([19], [2, 5, 19]),              // row vector on the left
            ([3, 1, 5], [1, 4, 1]),          // outer product: several outer dims
            ([2, 3, 4, 5], [3, 1, 1]),       // channel bias without batch: blocks × rows
            ([1, 270_001], [1, 270_001]),    // one long row, split over the pool
            ([2, 4, 200, 200], [2, 4, 1, 1]),// per-channel, large
            ([4, 8, 100, 100], [8, 1, 1]),   // blocks over the pool
            ([0, 3], [3]),                   // empty
        ]
        let ops: [BinaryOp] = [.add, .sub, .mul, .div, .min, .max]
        for level in levels {
            Kernels.forceVectorMathLevel(level)
            // The large shapes (pool paths) only on the widest SIMD path: the scalar reference
            // is slow in debug builds.
            for (sa, sb) in shapes where level == levels.last || sa.reduce(1, *) < 1 << 16 {
                var x = rng.floats(sa.reduce(1, *)), y = rng.floats(sb.reduce(1, *))
                if x.count > 3 { x[1] = .nan }
                if y.count > 3 { y[2] = .nan }
                let out = try Shape.broadcast(sa, sb, op: "test")
                let plan = try BroadcastPlan(shape: out, operands: [sa, sb], op: "test")
                for op in ops {
                    let fast = Tensor.floatBinary(op, plan, x, y), slow = Tensor.floatBinaryScalar(op, plan, x, y)
                    XCTAssertEqual(fast.count, slow.count)
                    for i in 0..<fast.count where !(fast[i] == slow[i] || (fast[i].isNaN && slow[i].isNaN)) {
                        XCTFail("\(op) \(sa) \(sb) level \(level) at \(i): \(fast[i]) vs \(slow[i])")
                        break
                    }
                }
            }
        }
        // Public entry point, with the reference computed by hand.
        let a = try Tensor(shape: [1, 2, 1, 3], floats: [1, 2, 3, 4, 5, 6])
        let s = try Tensor(shape: [1, 2, 1, 1], floats: [10, -1])
        XCTAssertEqual(try (a * s).floats(), [10, 20, 30, -4, -5, -6])
    }

    func testSoftmaxMatchesScalarLoops() {
        var rng = KernelRNG(seed: 62)
        let layouts = [(3, 5, 1), (2, 17, 1), (4, 33, 1), (1, 1, 1), (2, 7, 3), (3, 5, 17), (2, 19, 33), (1100, 250, 1), (10, 40, 700)]
        for level in levels {
            Kernels.forceVectorMathLevel(level)
            for (outer, d, inner) in layouts where level == levels.last || outer * d * inner < 1 << 16 {
                let x = rng.floats(outer * d * inner).map { $0 * 10 }
                let g = rng.floats(x.count)
                for log in [false, true] {
                    var fast = [Float](repeating: .nan, count: x.count), slow = fast
                    x.withUnsafeBufferPointer { xb in
                        fast.withUnsafeMutableBufferPointer { Kernels.softmax(xb, $0, outer: outer, d: d, inner: inner, log: log) }
                        slow.withUnsafeMutableBufferPointer { Kernels.softmaxScalar(xb, $0, outer: outer, d: d, inner: inner, log: log) }
                    }
                    for i in 0..<x.count where !(abs(fast[i] - slow[i]) <= 2e-6 * max(1, abs(slow[i]))) {
                        XCTFail("softmax \(outer)x\(d)x\(inner) log \(log) level \(level) at \(i): \(fast[i]) vs \(slow[i])")
                        break
                    }
                    var gFast = [Float](repeating: .nan, count: x.count), gSlow = gFast
                    fast.withUnsafeBufferPointer { yb in g.withUnsafeBufferPointer { gb in
                        gFast.withUnsafeMutableBufferPointer { Kernels.softmaxBackward(yb, gb, $0, outer: outer, d: d, inner: inner, log: log) }
                        gSlow.withUnsafeMutableBufferPointer { Kernels.softmaxBackwardScalar(yb, gb, $0, outer: outer, d: d, inner: inner, log: log) }
                    } }
                    for i in 0..<x.count where !(abs(gFast[i] - gSlow[i]) <= 1e-5 * max(1, abs(gSlow[i]))) {
                        XCTFail("softmax backward \(outer)x\(d)x\(inner) log \(log) level \(level) at \(i): \(gFast[i]) vs \(gSlow[i])")
                        break
                    }
                }
            }
        }
        // An all −inf row gives NaN (0/0), a row with one finite entry puts all mass there.
        let x: [Float] = [-.infinity, -.infinity, -.infinity, -.infinity, 3, -.infinity]
        var y = [Float](repeating: 0, count: 6)
        x.withUnsafeBufferPointer { xb in y.withUnsafeMutableBufferPointer { Kernels.softmax(xb, $0, outer: 2, d: 3, inner: 1, log: false) } }
        XCTAssertTrue(y[0].isNaN && y[1].isNaN && y[2].isNaN)
        XCTAssertEqual(Array(y[3...]), [0, 1, 0])
    }

    func testNormalizeRowsMatchesReference() {
        var rng = KernelRNG(seed: 63)
        for level in levels {
            Kernels.forceVectorMathLevel(level)
            for (rows, d) in [(1, 1), (3, 7), (5, 17), (2, 33), (4, 100), (1100, 250)] where level == levels.last || rows < 1000 {
                let x = rng.floats(rows * d).map { $0 * 3 + 2 }
                let scale = rng.floats(d), bias = rng.floats(d)
                let ref = ReferenceKernels.normalizeRows(x, d: d, epsilon: 1e-5)
                var y = [Float](repeating: .nan, count: x.count)
                var mean = [Float](repeating: .nan, count: rows), inv = mean
                x.withUnsafeBufferPointer { xb in scale.withUnsafeBufferPointer { sb in bias.withUnsafeBufferPointer { bb in
                    y.withUnsafeMutableBufferPointer { yb in mean.withUnsafeMutableBufferPointer { mb in inv.withUnsafeMutableBufferPointer { ib in
                        Kernels.normalizeRows(xb, yb, rows: rows, d: d, epsilon: 1e-5, scale: sb, scaleRow: 0, scaleInner: 1,
                                              bias: bb, biasRow: 0, biasInner: 1, mean: mb, invStd: ib)
                    } } }
                } } }
                let moments = x.withUnsafeBufferPointer { Kernels.rowMomentsScalar($0, rows: rows, d: d, epsilon: 1e-5) }
                for r in 0..<rows {
                    XCTAssertEqual(mean[r], moments.mean[r], accuracy: 1e-5)
                    XCTAssertEqual(inv[r], moments.invStd[r], accuracy: 1e-5 * moments.invStd[r])
                    for k in 0..<d {
                        let want = ref[r * d + k] * scale[k] + bias[k]
                        if abs(y[r * d + k] - want) > 2e-5 {
                            XCTFail("\(rows)x\(d) level \(level) at (\(r), \(k)): \(y[r * d + k]) vs \(want)")
                            return
                        }
                    }
                }
            }
        }
    }

    /// The fused row backward against the previous two-step code (gx̂ = g·s, then
    /// normalizeRowBackward), with the statistics' cotangents and the scale/bias sums.
    func testNormalizeRowsBackwardMatchesScalar() {
        var rng = KernelRNG(seed: 64)
        for level in levels {
            Kernels.forceVectorMathLevel(level)
            for (rows, d) in [(1, 1), (3, 7), (5, 17), (2, 33), (1100, 250)] where level == levels.last || rows < 1000 {
                let x = rng.floats(rows * d).map { $0 * 2 + 1 }, g = rng.floats(rows * d), s = rng.floats(d)
                let gMean = rng.floats(rows), gInv = rng.floats(rows)
                let (mean, inv) = x.withUnsafeBufferPointer { Kernels.rowMoments($0, rows: rows, d: d, epsilon: 1e-5) }
                var gx = [Float](repeating: .nan, count: x.count), gs = [Float](repeating: 0, count: d), gb = gs
                x.withUnsafeBufferPointer { xb in g.withUnsafeBufferPointer { gp in s.withUnsafeBufferPointer { sb in
                    gx.withUnsafeMutableBufferPointer { gxb in gs.withUnsafeMutableBufferPointer { gsb in gb.withUnsafeMutableBufferPointer { gbb in
                        Kernels.normalizeRowsBackward(x: xb, grad: gp, rows: rows, d: d, mean: mean, invStd: inv, scale: sb, scaleInner: 1,
                                                      gradMean: gMean, gradInvStd: gInv, gx: gxb, gScale: gsb, gBias: gbb)
                    } } }
                } } }
                var wantGx = [Float](repeating: 0, count: x.count), wantS = [Double](repeating: 0, count: d), wantB = wantS
                var gh = [Float](repeating: 0, count: d)
                for r in 0..<rows {
                    for k in 0..<d {
                        gh[k] = g[r * d + k] * s[k]
                        wantS[k] += Double(g[r * d + k] * (x[r * d + k] - mean[r]) * inv[r])
                        wantB[k] += Double(g[r * d + k])
                    }
                    x.withUnsafeBufferPointer { xb in gh.withUnsafeBufferPointer { ghb in wantGx.withUnsafeMutableBufferPointer { o in
                        Kernels.normalizeRowBackward(x: xb.baseAddress! + r * d, gxhat: ghb.baseAddress!, d: d, mean: mean[r],
                                                     invStd: inv[r], gradMean: gMean[r], gradInvStd: gInv[r], into: o.baseAddress! + r * d)
                    } } }
                }
                for i in 0..<x.count where abs(gx[i] - wantGx[i]) > 2e-5 * max(1, abs(wantGx[i])) {
                    XCTFail("gx \(rows)x\(d) level \(level) at \(i): \(gx[i]) vs \(wantGx[i])")
                    break
                }
                for k in 0..<d {
                    XCTAssertEqual(Double(gs[k]), wantS[k], accuracy: 1e-4 * max(1, abs(wantS[k])))
                    XCTAssertEqual(Double(gb[k]), wantB[k], accuracy: 1e-4 * max(1, abs(wantB[k])))
                }
            }
        }
    }

    /// Min-max scaling equals the plain subtract-then-divide loops bit for bit (same IEEE
    /// operations), on lengths that leave tails after the 8-way and 16-lane steps, in place too.
    func testMinMaxScaleMatchesThePlainLoops() throws {
        var rng = KernelRNG(seed: 77)
        defer { Kernels.forceVectorMathLevel(nil) }
        for level in 0...Kernels.vectorMathLevel {
            Kernels.forceVectorMathLevel(level)
            for n in [1, 7, 8, 37, 50176] {
                let x = (0..<n).map { _ in 3 * rng.uniform() - 1 }
                let lo = x.min()!, d = 1e-7 + x.map { $0 - lo }.max()!
                let want = x.map { ($0 - lo) / d }
                var got = [Float](repeating: .nan, count: n), inPlace = x
                x.withUnsafeBufferPointer { xb in got.withUnsafeMutableBufferPointer { yb in
                    Kernels.minMaxScale(xb.baseAddress!, yb.baseAddress!, count: n, epsilon: 1e-7)
                } }
                inPlace.withUnsafeMutableBufferPointer { b in Kernels.minMaxScale(b.baseAddress!, b.baseAddress!, count: n, epsilon: 1e-7) }
                XCTAssertEqual(got.map(\.bitPattern), want.map(\.bitPattern), "level \(level) n \(n)")
                XCTAssertEqual(inPlace.map(\.bitPattern), want.map(\.bitPattern), "level \(level) n \(n) in place")
            }
        }
    }

    /// The bilinear row blend equals `top·(1 − f) + bottom·f` evaluated as written, bit for bit, on
    /// every path, and reports the extrema of what it wrote (NaN ignored).
    func testBlendRowsMatchesTheFormulaAndFindsTheExtrema() {
        var rng = KernelRNG(seed: 78)
        defer { Kernels.forceVectorMathLevel(nil) }
        for level in 0...Kernels.vectorMathLevel {
            Kernels.forceVectorMathLevel(level)
            for (h, width, height) in [(1, 1, 3), (7, 224, 224), (3, 37, 5)] {
                var rows = rng.floats(h * width)
                if width > 3 { rows[1] = .nan }
                let y0 = (0..<height).map { Int32($0 % h) }, y1 = (0..<height).map { Int32(($0 + 1) % h) }
                let fy = (0..<height).map { _ in (rng.uniform() + 1) / 2 }
                var out = [Float](repeating: 0, count: height * width)
                let (lo, hi) = rows.withUnsafeBufferPointer { rb in out.withUnsafeMutableBufferPointer { ob in
                    Kernels.blendRows(rb.baseAddress!, width: width, y0: y0, y1: y1, fy: fy, into: ob.baseAddress!)
                } }
                var want = [Float](repeating: 0, count: height * width)
                for r in 0..<height {
                    for x in 0..<width {
                        let top = rows[Int(y0[r]) * width + x] * (1 - fy[r])
                        let bottom = rows[Int(y1[r]) * width + x] * fy[r]
                        want[r * width + x] = top + bottom
                    }
                }
                XCTAssertEqual(out.map(\.bitPattern), want.map(\.bitPattern), "level \(level) \(h)→\(height)×\(width)")
                let finite = want.filter { !$0.isNaN }
                XCTAssertEqual(lo, finite.min() ?? .infinity, "level \(level)")
                XCTAssertEqual(hi, finite.max() ?? -.infinity, "level \(level)")
            }
        }
    }

    /// The finiteness check behind input validation and Winograd's guard, on every path and at
    /// every position of a 16-lane vector and its tail.
    func testAllFiniteFindsEveryNonFiniteValue() throws {
        defer { Kernels.forceVectorMathLevel(nil) }
        for level in 0...Kernels.vectorMathLevel {
            Kernels.forceVectorMathLevel(level)
            for n in [1, 15, 16, 17, 53] {
                XCTAssertFalse(try Tensor(shape: [n], floats: [Float](repeating: 1e30, count: n)).hasNonFinite)
                for bad in [Float.nan, .infinity, -.infinity] {
                    for at in [0, n / 2, n - 1] {
                        var x = [Float](repeating: -2, count: n)
                        x[at] = bad
                        XCTAssertTrue(try Tensor(shape: [n], floats: x).hasNonFinite, "level \(level) n \(n) \(bad) at \(at)")
                    }
                }
            }
        }
    }
}
