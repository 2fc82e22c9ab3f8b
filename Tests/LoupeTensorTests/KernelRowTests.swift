import XCTest
@testable import LoupeTensor

/// Softmax, row normalisation and resize kernels against their direct-definition twins.
final class KernelRowTests: XCTestCase {
    func testSoftmaxMatchesReference() {
        var rng = KernelRNG(seed: 20)
        // the last shape is large enough to be split over the pool
        for (outer, d, inner) in [(3, 5, 1), (2, 7, 3), (1, 1, 4), (1001, 5, 14)] {
            let x = rng.floats(outer * d * inner).map { $0 * 6 }
            for log in [false, true] {
                var y = [Float](repeating: 0, count: x.count)
                x.withUnsafeBufferPointer { xb in y.withUnsafeMutableBufferPointer { yb in
                    Kernels.softmax(xb, yb, outer: outer, d: d, inner: inner, log: log)
                } }
                let ref = ReferenceKernels.softmax(x, outer: outer, d: d, inner: inner, log: log)
                for i in 0..<x.count { XCTAssertEqual(y[i], ref[i], accuracy: 1e-5, "\(outer)x\(d)x\(inner) log \(log)") }
            }
        }
        // large logits do not overflow thanks to the max shift
        let big: [Float] = [1000, 1001]
        var out = [Float](repeating: 0, count: 2)
        big.withUnsafeBufferPointer { b in out.withUnsafeMutableBufferPointer { o in Kernels.softmax(b, o, outer: 1, d: 2, inner: 1, log: false) } }
        XCTAssertEqual(out[1], 1 / (1 + expf(-1)), accuracy: 1e-6)
    }

    /// Per-channel affine map, small (serial) and large (split over the pool).
    func testChannelAffine() {
        var rng = KernelRNG(seed: 23)
        for (n, c, plane) in [(2, 3, 5), (3, 5, 5000)] {
            let x = rng.floats(n * c * plane), a = rng.floats(c), b = rng.floats(c)
            var y = [Float](repeating: .nan, count: x.count)
            x.withUnsafeBufferPointer { xb in y.withUnsafeMutableBufferPointer { yb in
                Kernels.channelAffine(xb, yb, a: a, b: b, n: n, plane: plane)
            } }
            for i in stride(from: 0, to: x.count, by: 7) {
                let ch = (i / plane) % c
                XCTAssertEqual(y[i], a[ch] * x[i] + b[ch], accuracy: 1e-6)
            }
            XCTAssertFalse(y.contains { $0.isNaN })
        }
    }

    func testRowMomentsMatchReference() {
        var rng = KernelRNG(seed: 21)
        let d = 13, rows = 7
        let x = rng.floats(rows * d).map { $0 * 3 + 5 }
        let (mean, inv) = x.withUnsafeBufferPointer { Kernels.rowMoments($0, rows: rows, d: d, epsilon: 1e-5) }
        let ref = ReferenceKernels.normalizeRows(x, d: d, epsilon: 1e-5)
        for r in 0..<rows { for k in 0..<d {
            XCTAssertEqual((x[r * d + k] - mean[r]) * inv[r], ref[r * d + k], accuracy: 1e-4)
        } }
    }

    func testResizeMatchesReference() {
        var rng = KernelRNG(seed: 22)
        let (outer, h, w) = (3, 5, 7)
        let x = rng.floats(outer * h * w)
        let modes: [ResizeCoordinateMode] = [.halfPixel, .pytorchHalfPixel, .alignCorners, .asymmetric]
        let nearests: [ResizeNearestMode] = [.roundPreferFloor, .roundPreferCeil, .floor, .ceil]
        for (oh, ow) in [(11, 3), (2, 13), (1, 7), (5, 14)] {
            let sh = Float(oh) / Float(h), sw = Float(ow) / Float(w)
            for m in modes {
                for linear in [true, false] {
                    for nm in linear ? [.roundPreferFloor] : nearests {
                        let ph = ResizeAxisPlan(input: h, output: oh, scale: sh, linear: linear, coordinates: m, nearest: nm)
                        let pw = ResizeAxisPlan(input: w, output: ow, scale: sw, linear: linear, coordinates: m, nearest: nm)
                        let fast = Kernels.resize2d(x, outer: outer, planH: ph, planW: pw)
                        let ref = ReferenceKernels.resize2d(x, outer: outer, inH: h, inW: w, outH: oh, outW: ow, scaleH: sh, scaleW: sw,
                                                            linear: linear, coordinates: m, nearest: nm)
                        for i in 0..<fast.count { XCTAssertEqual(fast[i], ref[i], accuracy: 1e-5, "\(oh)x\(ow) \(m) linear \(linear) \(nm)") }
                        // adjoint identity of the backward scatter
                        let g = rng.floats(fast.count)
                        let gx = Kernels.resize2dBackward(g, outer: outer, planH: ph, planW: pw)
                        let lhs = zip(fast, g).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                        let rhs = zip(x, gx).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                        XCTAssertEqual(lhs, rhs, accuracy: 1e-3)
                    }
                }
            }
        }
    }
}
