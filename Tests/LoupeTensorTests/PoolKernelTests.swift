import XCTest
@testable import LoupeTensor

/// Global average pooling and the max-pooling adjoint against direct loops.
final class PoolKernelTests: XCTestCase {
    override func tearDown() { Kernels.forceWindowLevel(nil) }

    func testGlobalAveragePoolMatchesDoubleMean() throws {
        var rng = KernelRNG(seed: 50)
        // Plane sizes below, at and above one and four vectors; an (N, C, L) 1-D input; and one
        // large enough to run threaded.
        for shape in [[2, 3, 1, 1], [1, 2, 3, 5], [2, 2, 4, 4], [1, 3, 7, 11], [1, 2, 65], [3, 40, 33, 17]] {
            let x = try rng.tensor(shape)
            let X = try x.floats(), size = shape.dropFirst(2).reduce(1, *), planes = shape[0] * shape[1]
            let gy = try rng.tensor([shape[0], shape[1]] + [Int](repeating: 1, count: shape.count - 2))
            let G = try gy.floats()
            for level in 0...Kernels.cpuLevel {
                Kernels.forceWindowLevel(level)
                let y = try Kernels.globalAveragePool(x)
                XCTAssertEqual(y.shape, [shape[0], shape[1]] + [Int](repeating: 1, count: shape.count - 2))
                let Y = try y.floats()
                for p in 0..<planes {
                    let mean = X[(p * size)..<((p + 1) * size)].reduce(0.0) { $0 + Double($1) } / Double(size)
                    XCTAssertEqual(Double(Y[p]), mean, accuracy: 1e-5, "\(shape) plane \(p) L\(level)")
                }
                let gx = try Kernels.globalAveragePoolBackward(gy, inputShape: shape)
                XCTAssertEqual(gx.shape, shape)
                let GX = try gx.floats()
                for i in 0..<GX.count { XCTAssertEqual(GX[i], G[i / size] / Float(size), "\(shape) \(i) L\(level)") }
            }
        }
    }

    func testGlobalAveragePoolRejectsBadShapes() {
        XCTAssertThrowsError(try Kernels.globalAveragePool(try Tensor(shape: [2, 3], floats: [Float](repeating: 0, count: 6))))
        XCTAssertThrowsError(try Kernels.globalAveragePoolBackward(try Tensor(shape: [1, 2, 1, 1], floats: [1, 2]), inputShape: [1, 3, 2, 2]))
    }

    /// Max pooling against the direct reference on every SIMD path (strides, dilation, pads,
    /// ceil mode, widths beyond one vector), and NaN propagation.
    func testMaxPoolForwardMatchesReference() throws {
        var rng = KernelRNG(seed: 52)
        let cases: [(ConvGeometry, [Int], Bool)] = [
            (ConvGeometry(kernel: (3, 3), strides: (2, 2), pads: (1, 1, 1, 1)), [2, 3, 9, 37], false),
            (ConvGeometry(kernel: (2, 3), strides: (1, 2), dilations: (2, 1), pads: (0, 1, 1, 0)), [1, 2, 7, 9], false),
            (ConvGeometry(kernel: (2, 2), strides: (2, 2)), [1, 2, 5, 35], true),
            (ConvGeometry(kernel: (3, 3), strides: (2, 2), pads: (0, 0, 2, 2)), [1, 1, 4, 4], true),
        ]
        for (g, shape, ceil) in cases {
            let x = try rng.tensor(shape)
            let ref = try ReferenceKernels.pool2d(x, geometry: g, ceilMode: ceil, average: false, countIncludePad: false)
            var X = try x.floats()
            X[0] = .nan
            let xn = try Tensor(shape: shape, floats: X)
            for level in 0...Kernels.cpuLevel {
                Kernels.forceWindowLevel(level)
                try assertKernelClose(try Kernels.maxPool2d(x, geometry: g, ceilMode: ceil), ref, atol: 0, rtol: 0, "\(g) L\(level)")
                let y = try Kernels.maxPool2d(xn, geometry: g, ceilMode: ceil).floats()
                XCTAssertTrue(y[0].isNaN, "NaN in the first window propagates, L\(level)")
            }
        }
    }

    /// Average pooling (both divisor rules, ceil mode, strides 1-3, dilation, pads) against
    /// the direct reference on every SIMD path; its adjoint against the per-plane scalar kernel
    /// and the adjoint identity <avgpool(x), gy> = <x, avgpool'(gy)>.
    func testAveragePoolMatchesReference() throws {
        var rng = KernelRNG(seed: 53)
        let cases: [(ConvGeometry, [Int], Bool)] = [
            (ConvGeometry(kernel: (3, 3), strides: (2, 2), pads: (1, 1, 1, 1)), [2, 3, 9, 37], false),
            (ConvGeometry(kernel: (2, 2), strides: (2, 2)), [1, 2, 8, 35], true),
            (ConvGeometry(kernel: (3, 2), strides: (1, 3), dilations: (2, 1), pads: (2, 0, 1, 1)), [1, 2, 7, 20], true),
            (ConvGeometry(kernel: (5, 5), strides: (1, 1), pads: (2, 2, 2, 2)), [1, 2, 7, 7], false),
        ]
        for (g, shape, ceil) in cases {
            let x = try rng.tensor(shape)
            for cip in [false, true] {
                let ref = try ReferenceKernels.pool2d(x, geometry: g, ceilMode: ceil, average: true, countIncludePad: cip)
                let gy = try rng.tensor(ref.shape)
                var grads: [Tensor] = []
                for level in 0...Kernels.cpuLevel {
                    Kernels.forceWindowLevel(level)
                    try assertKernelClose(try Kernels.averagePool2d(x, geometry: g, ceilMode: ceil, countIncludePad: cip), ref,
                                          "\(g) cip \(cip) L\(level)")
                    let gx = try Kernels.averagePool2dBackward(gy, inputShape: shape, geometry: g, ceilMode: ceil,
                                                               countIncludePad: cip)
                    XCTAssertEqual(try kernelDot(ref, gy), try kernelDot(x, gx), accuracy: 1e-3, "adjoint \(g) L\(level)")
                    grads.append(gx)
                }
                for gx in grads.dropFirst() { try assertKernelClose(gx, grads[0], "paths agree \(g)") }
            }
        }
    }

    /// Each output cotangent lands on the first position of its window's maximum (ties,
    /// overlapping windows, NaN (wins and stays), all -infinity windows, widths beyond one
    /// vector and ceil-mode windows hanging over the padding), on every SIMD path, checked
    /// against a direct scan.
    func testMaxPoolBackwardRoutesToFirstMaximum() throws {
        var rng = KernelRNG(seed: 51)
        let cases: [(ConvGeometry, [Int], Bool)] = [
            (ConvGeometry(kernel: (3, 3), strides: (2, 2), pads: (1, 1, 1, 1)), [2, 2, 7, 9], false),
            (ConvGeometry(kernel: (2, 3), strides: (1, 2), dilations: (2, 1), pads: (0, 1, 1, 0)), [1, 2, 7, 9], false),
            (ConvGeometry(kernel: (3, 3), strides: (1, 1), pads: (1, 1, 1, 1)), [1, 3, 5, 37], false),
            (ConvGeometry(kernel: (2, 2), strides: (2, 2)), [1, 2, 5, 35], true),
        ]
        for (g, shape, ceil) in cases {
            let h = shape[2], w = shape[3], planes = shape[0] * shape[1]
            // Quantised values produce ties; a few NaN and -infinity.
            var X = rng.floats(shape.reduce(1, *)).map { ($0 * 3).rounded() }
            for i in stride(from: 5, to: X.count, by: 23) { X[i] = .nan }
            for i in stride(from: 0, to: min(X.count, 3 * w), by: 1) where i % w < 4 { X[i] = -.infinity }
            let x = try Tensor(shape: shape, floats: X)
            let y = try Kernels.maxPool2d(x, geometry: g, ceilMode: ceil)
            let gy = try rng.tensor(y.shape)
            var expected = [Float](repeating: 0, count: X.count)
            let G = try gy.floats(), oh = y.shape[2], ow = y.shape[3]
            for p in 0..<planes { for i in 0..<oh { for j in 0..<ow {
                var best = -Float.infinity, at = -1
                for kh in 0..<g.kernelH { for kw in 0..<g.kernelW {
                    let ih = i * g.strideH - g.padTop + kh * g.dilationH, iw = j * g.strideW - g.padLeft + kw * g.dilationW
                    guard ih >= 0, ih < h, iw >= 0, iw < w else { continue }
                    let v = X[(p * h + ih) * w + iw]
                    if at < 0 || v > best || (v.isNaN && !best.isNaN) { best = v; at = (p * h + ih) * w + iw }
                } }
                if at >= 0 { expected[at] += G[(p * oh + i) * ow + j] }
            } } }
            for level in 0...Kernels.cpuLevel {
                Kernels.forceWindowLevel(level)
                let gx = try Kernels.maxPool2dBackward(gy, input: x, geometry: g, ceilMode: ceil).floats()
                for i in 0..<X.count { XCTAssertEqual(gx[i], expected[i], accuracy: 1e-6, "\(g) \(shape) L\(level) \(i)") }
            }
        }
    }
}
