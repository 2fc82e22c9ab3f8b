import XCTest
@testable import LoupeTensor

/// The vectorised depthwise kernels (forward, input and weight adjoints) against the direct
/// reference convolution, on every SIMD path the CPU has (AVX-512, AVX2, portable).
final class DepthwiseKernelTests: XCTestCase {
    /// Levels to exercise: the portable path always, plus each SIMD level the CPU supports.
    static var levels: [Int] { Array(0...Kernels.cpuLevel) }

    /// Kernel sizes × strides × dilations × paddings on planes whose widths are not multiples
    /// of 16 (and wider than one vector), plus tiny planes; channel multiplier 1 and 2.
    static var cases: [(name: String, x: [Int], mult: Int, g: ConvGeometry)] {
        var out: [(String, [Int], Int, ConvGeometry)] = []
        let kernels = [(3, 3), (5, 5), (3, 5)]
        let planes = [[2, 3, 6, 19], [1, 2, 9, 35], [1, 2, 1, 1], [1, 1, 2, 3]]
        var i = 0
        for k in kernels { for st in [1, 2] { for dil in [1, 2] { for padKind in 0..<3 {
            let pads: (Int, Int, Int, Int)
            switch padKind {
            case 0: pads = (0, 0, 0, 0)
            case 1: pads = (k.0 / 2 * dil, k.1 / 2 * dil, k.0 / 2 * dil, k.1 / 2 * dil)
            default: pads = (2, 0, 1, 3)
            }
            for shape in planes {
                i += 1
                let g0 = ConvGeometry(kernel: k, strides: (st, st == 2 ? 2 : 1), dilations: (dil, dil), pads: pads,
                                      groups: shape[1])
                guard (try? g0.outputSize(height: shape[2], width: shape[3], op: "test")) != nil else { continue }
                out.append(("k\(k) s\(st) d\(dil) p\(padKind) \(shape)", shape, i % 3 == 0 ? 2 : 1, g0))
            }
        } } } }
        // Stride 3 and mixed strides/dilations per axis.
        out.append(("s3", [1, 2, 11, 23], 1, ConvGeometry(kernel: (3, 3), strides: (3, 3), pads: (1, 1, 1, 1), groups: 2)))
        out.append(("mixed", [2, 2, 10, 21], 2, ConvGeometry(kernel: (5, 3), strides: (1, 2), dilations: (2, 1), pads: (1, 2, 3, 0), groups: 2)))
        // Rows of at most 8 outputs pack two rows per vector: odd and even row counts.
        out.append(("7x7 plane", [2, 4, 7, 7], 2, ConvGeometry(kernel: (5, 5), pads: (2, 2, 2, 2), groups: 4)))
        out.append(("8 wide, 13 rows", [1, 2, 13, 8], 1, ConvGeometry(kernel: (3, 3), pads: (1, 1, 1, 1), groups: 2)))
        out.append(("strideH only", [1, 2, 9, 17], 1, ConvGeometry(kernel: (3, 3), strides: (2, 1), pads: (1, 1, 1, 1), groups: 2)))
        // End pads so large that the last windows lie entirely in the padding.
        out.append(("windows past input", [1, 2, 3, 4], 2, ConvGeometry(kernel: (3, 3), strides: (2, 2), pads: (0, 1, 5, 6), groups: 2)))
        out.append(("1x1 stride 2", [1, 3, 5, 18], 1, ConvGeometry(kernel: (1, 1), strides: (2, 2), groups: 3)))
        // Planes whose padded copy outgrows a band (copied and correlated band by band), stride 2
        // with even and odd left pads (which phase each input column lands in), stride 1 too wide
        // to read in place.
        out.append(("banded s2 p1", [1, 2, 75, 71], 1, ConvGeometry(kernel: (3, 3), strides: (2, 2), pads: (1, 1, 1, 1), groups: 2)))
        out.append(("banded s2 5x5 p2/3", [1, 2, 61, 77], 1, ConvGeometry(kernel: (5, 5), strides: (2, 2), pads: (2, 3, 0, 1), groups: 2)))
        out.append(("banded s1 wide", [1, 1, 40, 130], 1, ConvGeometry(kernel: (3, 3), pads: (1, 1, 1, 1), groups: 1)))
        out.append(("7x7 dil 3", [1, 2, 8, 40], 1, ConvGeometry(kernel: (7, 7), strides: (2, 2), dilations: (3, 3), pads: (9, 9, 9, 9), groups: 2)))
        return out
    }

    override func tearDown() {
        Kernels.forceWindowLevel(nil)
        Kernels.forceChannelBlockedDepthwise(nil)
    }

    func testForwardMatchesReferenceOnEveryPath() throws {
        var rng = KernelRNG(seed: 40)
        var checked = 0
        for cs in Self.cases {
            let x = try rng.tensor(cs.x)
            let m = cs.x[1] * cs.mult
            let w = try rng.tensor([m, 1, cs.g.kernelH, cs.g.kernelW]), b = try rng.tensor([m])
            let ref = try ReferenceKernels.conv2d(x, weight: w, bias: b, geometry: cs.g)
            let refNoBias = try ReferenceKernels.conv2d(x, weight: w, bias: nil, geometry: cs.g)
            for level in Self.levels {
                Kernels.forceWindowLevel(level)
                try assertKernelClose(try Kernels.conv2d(x, weight: w, bias: b, geometry: cs.g), ref, "\(cs.name) L\(level)")
                try assertKernelClose(try Kernels.conv2d(x, weight: w, bias: nil, geometry: cs.g), refNoBias, "\(cs.name) no bias L\(level)")
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 100)
    }

    func testBackwardMatchesReferenceOnEveryPath() throws {
        var rng = KernelRNG(seed: 41)
        for cs in Self.cases {
            let x = try rng.tensor(cs.x)
            let m = cs.x[1] * cs.mult
            let w = try rng.tensor([m, 1, cs.g.kernelH, cs.g.kernelW])
            let (oh, ow) = try cs.g.outputSize(height: cs.x[2], width: cs.x[3], op: "test")
            let gy = try rng.tensor([cs.x[0], m, oh, ow])
            let ref = try ReferenceKernels.conv2dBackward(gy, input: x, weight: w, geometry: cs.g)
            for level in Self.levels {
                Kernels.forceWindowLevel(level)
                try assertKernelClose(try Kernels.conv2dBackwardInput(gy, weight: w, inputShape: x.shape, geometry: cs.g),
                                      ref.input, "\(cs.name) dx L\(level)")
                try assertKernelClose(try Kernels.conv2dBackwardWeight(gy, input: x, weightShape: w.shape, geometry: cs.g),
                                      ref.weight, atol: 3e-4, "\(cs.name) dw L\(level)")
            }
        }
    }

    /// Enough planes to be split into several tasks over the thread pool, in two layer shapes
    /// of MobileNetV3 (5x5 stride 2 and 3x3 stride 1), with a width that needs two vectors.
    func testManyPlanesThreaded() throws {
        var rng = KernelRNG(seed: 42)
        for (k, st) in [(5, 2), (3, 1)] {
            let g = ConvGeometry(kernel: (k, k), strides: (st, st), pads: (k / 2, k / 2, k / 2, k / 2), groups: 24)
            let x = try rng.tensor([2, 24, 7, 18]), w = try rng.tensor([24, 1, k, k]), b = try rng.tensor([24])
            let y = try ReferenceKernels.conv2d(x, weight: w, bias: b, geometry: g)
            try assertKernelClose(try Kernels.conv2d(x, weight: w, bias: b, geometry: g), y, "k\(k) forward")
            let gy = try rng.tensor(y.shape)
            let ref = try ReferenceKernels.conv2dBackward(gy, input: x, weight: w, geometry: g)
            try assertKernelClose(try Kernels.conv2dBackwardInput(gy, weight: w, inputShape: x.shape, geometry: g), ref.input, "k\(k) dx")
            try assertKernelClose(try Kernels.conv2dBackwardWeight(gy, input: x, weightShape: w.shape, geometry: g), ref.weight,
                                  atol: 3e-4, "k\(k) dw")
        }
    }

    /// The vectorised kernels agree with the previous scalar per-plane kernels (kept as the A/B
    /// baseline) on a MobileNetV3-like 5x5 stride-2 layer with a channel multiplier of 2.
    func testMatchesScalarTwins() throws {
        var rng = KernelRNG(seed: 43)
        let g = ConvGeometry(kernel: (5, 5), strides: (2, 2), pads: (2, 2, 2, 2), groups: 6)
        let x = rng.floats(2 * 6 * 13 * 21), w = rng.floats(12 * 25), b = rng.floats(12)
        let s = try Kernels.convShapes(input: [2, 6, 13, 21], weight: [12, 1, 5, 5], geometry: g, op: "test")
        let win = g.window(inH: s.h, inW: s.w, outH: s.oh, outW: s.ow)
        let gy = rng.floats(s.n * s.m * s.plane)
        var fast = [Float](repeating: 0, count: s.n * s.m * s.plane), slow = fast
        var gxFast = [Float](repeating: 0, count: x.count), gxSlow = gxFast
        var gwFast = [Float](repeating: 0, count: w.count), gwSlow = gwFast
        x.withUnsafeBufferPointer { xb in w.withUnsafeBufferPointer { wb in gy.withUnsafeBufferPointer { gb in
            let x0 = xb.baseAddress!, w0 = wb.baseAddress!, g0 = gb.baseAddress!
            fast.withUnsafeMutableBufferPointer { Kernels.depthwiseForward(x0, w0, b, s, win, $0.baseAddress!) }
            slow.withUnsafeMutableBufferPointer { Kernels.depthwiseForwardScalar(x0, w0, b, s, win, $0.baseAddress!) }
            gxFast.withUnsafeMutableBufferPointer { Kernels.depthwiseBackwardInput(g0, w0, s, win, $0.baseAddress!) }
            gxSlow.withUnsafeMutableBufferPointer { Kernels.depthwiseBackwardInputScalar(g0, w0, s, win, $0.baseAddress!) }
            gwFast.withUnsafeMutableBufferPointer { Kernels.depthwiseBackwardWeight(g0, x0, s, win, $0.baseAddress!) }
            gwSlow.withUnsafeMutableBufferPointer { Kernels.depthwiseBackwardWeightScalar(g0, x0, s, win, $0.baseAddress!) }
        } } }
        for (a, b, name) in [(fast, slow, "forward"), (gxFast, gxSlow, "dx"), (gwFast, gwSlow, "dw")] {
            for i in 0..<a.count { XCTAssertEqual(a[i], b[i], accuracy: 1e-4 + 1e-4 * abs(b[i]), "\(name) \(i)") }
        }
    }

    /// The 16-channel-blocked forward (AVX-512) on every geometry above, forced on: against the
    /// reference, and bit-identical to the plane kernels (same taps, same order, same FMAs).
    func testChannelBlockedForwardOnEveryGeometry() throws {
        guard Kernels.cpuLevel >= 2 else { throw XCTSkip("the channel-blocked kernel needs AVX-512") }
        var rng = KernelRNG(seed: 44)
        for cs in Self.cases {
            let x = try rng.tensor(cs.x)
            let m = cs.x[1]  // one output channel per input channel: the blocked kernel's case
            let w = try rng.tensor([m, 1, cs.g.kernelH, cs.g.kernelW]), b = try rng.tensor([m])
            let ref = try ReferenceKernels.conv2d(x, weight: w, bias: b, geometry: cs.g)
            Kernels.forceChannelBlockedDepthwise(true)
            let blocked = try Kernels.conv2d(x, weight: w, bias: b, geometry: cs.g)
            Kernels.forceChannelBlockedDepthwise(false)
            let plane = try Kernels.conv2d(x, weight: w, bias: b, geometry: cs.g)
            try assertKernelClose(blocked, ref, cs.name)
            XCTAssertEqual(try blocked.floats(), try plane.floats(), cs.name)
        }
    }

    /// Layers of MobileNetV3 / EfficientNet shape that the automatic rule sends to the blocked
    /// kernel (7x7 and 14x14 planes, strides 1 and 2, 3x3 and 5x5), with channel counts that
    /// leave a partial last block (24, 40), a batch of 3, and each fused activation; NaN and
    /// infinity in the input propagate as the plane kernels propagate them.
    func testChannelBlockedLayersWithActivations() throws {
        guard Kernels.cpuLevel >= 2 else { throw XCTSkip("the channel-blocked kernel needs AVX-512") }
        var rng = KernelRNG(seed: 45)
        let layers: [(x: [Int], k: Int, s: Int)] = [
            ([3, 40, 7, 7], 5, 1), ([2, 24, 14, 14], 3, 1), ([1, 96, 14, 14], 5, 2), ([2, 16, 28, 28], 3, 2),
            ([1, 200, 7, 7], 3, 1), ([1, 8, 9, 9], 3, 2),
            // Planes large enough to run in bands of output rows (scratch over 96 KB).
            ([1, 16, 112, 112], 3, 2), ([6, 40, 60, 50], 5, 2),
        ]
        for l in layers {
            let c = l.x[1], p = l.k / 2
            let g = ConvGeometry(kernel: (l.k, l.k), strides: (l.s, l.s), pads: (p, p, p, p), groups: c)
            var xs = rng.floats(l.x.reduce(1, *))
            xs[5] = .nan
            xs[xs.count - 3] = .infinity
            let x = try Tensor(shape: l.x, floats: xs)
            let w = try rng.tensor([c, 1, l.k, l.k]), b = try rng.tensor([c])
            for act in [ConvActivation.none, .relu, .hardSwish, .silu] {
                Kernels.forceChannelBlockedDepthwise(nil)
                let auto = try Kernels.conv2d(x, weight: w, bias: b, geometry: g, activation: act)
                Kernels.forceChannelBlockedDepthwise(false)
                let plane = try Kernels.conv2d(x, weight: w, bias: b, geometry: g, activation: act)
                let a = try auto.floats(), q = try plane.floats()
                XCTAssertEqual(a.count, q.count)
                for i in a.indices where !(a[i].isNaN && q[i].isNaN) {
                    XCTAssertEqual(a[i], q[i], "\(l.x) k\(l.k) s\(l.s) \(act) [\(i)]")
                }
                XCTAssertEqual(a.filter(\.isNaN).count, q.filter(\.isNaN).count, "\(l.x) \(act) NaN count")
            }
            Kernels.forceChannelBlockedDepthwise(nil)
            let clean = try rng.tensor(l.x)
            try assertKernelClose(try Kernels.conv2d(clean, weight: w, bias: b, geometry: g),
                                  try ReferenceKernels.conv2d(clean, weight: w, bias: b, geometry: g), "\(l.x) k\(l.k) s\(l.s) ref")
        }
    }

    /// Bands of output rows over a large plane, with asymmetric padding (rows of padding at the
    /// top of the first band and the bottom of the last, a last band shorter than the others),
    /// stride 2 and 1, dilation: bit-identical to the plane kernels.
    func testChannelBlockedBands() throws {
        guard Kernels.cpuLevel >= 2 else { throw XCTSkip("the channel-blocked kernel needs AVX-512") }
        var rng = KernelRNG(seed: 46)
        let geometries = [
            ConvGeometry(kernel: (3, 3), strides: (2, 2), pads: (2, 1, 0, 3), groups: 20),
            ConvGeometry(kernel: (5, 3), strides: (1, 1), dilations: (2, 1), pads: (3, 1, 4, 1), groups: 20),
        ]
        for g in geometries {
            let x = try rng.tensor([1, 20, 97, 83]), w = try rng.tensor([20, 1, g.kernelH, g.kernelW]), b = try rng.tensor([20])
            Kernels.forceChannelBlockedDepthwise(true)
            let blocked = try Kernels.conv2d(x, weight: w, bias: b, geometry: g, activation: .relu)
            Kernels.forceChannelBlockedDepthwise(false)
            let plane = try Kernels.conv2d(x, weight: w, bias: b, geometry: g, activation: .relu)
            XCTAssertEqual(try blocked.floats(), try plane.floats(), "\(g)")
            let ref = try ReferenceKernels.conv2d(x, weight: w, bias: b, geometry: g)
            try assertKernelClose(blocked, try Tensor(shape: ref.shape, floats: try ref.floats().map { max($0, 0) }), "\(g) ref")
        }
    }

    /// Forcing a level above the CPU's is ignored; nil restores automatic selection.
    func testForcedLevel() {
        Kernels.forceWindowLevel(0)
        XCTAssertEqual(Kernels.windowLevel, 0)
        Kernels.forceWindowLevel(9)
        XCTAssertEqual(Kernels.windowLevel, Kernels.cpuLevel)
        Kernels.forceWindowLevel(nil)
        XCTAssertEqual(Kernels.windowLevel, Kernels.cpuLevel)
    }
}
