import CLoupeKernels
import XCTest
@testable import LoupeTensor

/// Winograd F(4×4, 3×3) convolutions (forward, and the stride-1 input gradient as the adjoint
/// convolution) against the direct reference: edge tiles, one and several 32-tile panels, row
/// panels of 14 and short ones, asymmetric and zero padding, bias and the fused ReLU, a batch
/// (one task per image) and one image split over the pool.
final class WinogradConvTests: XCTestCase {
    static let cases: [(name: String, x: [Int], m: Int, g: ConvGeometry)] = [
        ("batch 2, edge tiles, M 22", [2, 9, 17, 19], 22, ConvGeometry(kernel: (3, 3), pads: (1, 1, 1, 1))),
        ("3 panels, M 23", [1, 16, 34, 30], 23, ConvGeometry(kernel: (3, 3), pads: (1, 1, 1, 1))),
        ("asymmetric pads", [1, 8, 20, 21], 15, ConvGeometry(kernel: (3, 3), pads: (0, 2, 2, 0))),
        ("no padding", [1, 12, 30, 30], 9, ConvGeometry(kernel: (3, 3))),
        // small maps: two images' tiles share a 32-tile panel
        ("batch 5 of 7x9", [5, 8, 7, 9], 10, ConvGeometry(kernel: (3, 3), pads: (1, 1, 1, 1))),
        // 240 channels: 4 panels per band of transformed input (about 4 MB), so the 5 panels of
        // the two images run as 2 bands.
        ("bands", [2, 240, 20, 60], 8, ConvGeometry(kernel: (3, 3), pads: (1, 1, 1, 1))),
    ]

    override func tearDown() { loupe_winograd_set_enabled(-1) }

    /// A case's input, weight, bias, packed weight, and the reference output with and without ReLU.
    private func caseData(_ cs: (name: String, x: [Int], m: Int, g: ConvGeometry), _ rng: inout KernelRNG) throws
        -> (x: Tensor, w: Tensor, b: Tensor, packed: PackedConvWeights, ref: Tensor, refRelu: Tensor) {
        let x = try rng.tensor(cs.x)
        let w = try rng.tensor([cs.m, cs.x[1], 3, 3])
        let b = try rng.tensor([cs.m])
        let ref = try ReferenceKernels.conv2d(x, weight: w, bias: b, geometry: cs.g)
        return (x, w, b, try PackedConvWeights(weight: w, groups: 1), ref,
                try Tensor(shape: ref.shape, floats: try ref.floats().map { max($0, 0) }))
    }

    func testWinogradMatchesReference() throws {
        var rng = KernelRNG(seed: 40)
        let avx512 = loupe_gemm_level() == 2
        for cs in Self.cases {
            let (x, w, b, packed, ref, refRelu) = try caseData(cs, &rng)
            let gy = try rng.tensor(ref.shape)
            let refGrad = try ReferenceKernels.conv2dBackward(gy, input: x, weight: w, geometry: cs.g)
            let (oh, ow) = (ref.shape[2], ref.shape[3])
            // Outputs are sums of C·9 products of uniform(-1, 1) values: rms √C. F(4×4, 3×3)
            // rounds to a maximum error of about 4e-5 of that (C = 240: 6e-4 on outputs of 15).
            let atol = Float(max(1e-4, 5e-5 * Double(cs.x[1]).squareRoot()))
            loupe_winograd_set_enabled(-1)
            if avx512 {
                // Otherwise this test would compare the direct path with the reference only.
                XCTAssertEqual(loupe_winograd_suits(cs.x[0], cs.m, cs.x[1], oh, ow), 1, cs.name)
                XCTAssertEqual(loupe_winograd_suits(cs.x[0], cs.x[1], cs.m, cs.x[2], cs.x[3]), 1, cs.name + " adjoint")
                XCTAssertNotNil(packed.winogradHandle(adjoint: false), cs.name)
                XCTAssertNotNil(packed.winogradHandle(adjoint: true), cs.name)
            }
            for on in [1, 0] {
                loupe_winograd_set_enabled(Int32(on))
                for relu in [false, true] {
                    let y = try Kernels.conv2d(x, weight: w, bias: b, geometry: cs.g, packed: packed, relu: relu)
                    try assertKernelClose(y, relu ? refRelu : ref, atol: atol, "\(cs.name) winograd \(on) relu \(relu)")
                }
                let gx = try Kernels.conv2dBackwardInput(gy, weight: w, inputShape: x.shape, geometry: cs.g, packed: packed)
                try assertKernelClose(gx, refGrad.input, atol: atol, "\(cs.name) winograd \(on) dx")
            }
        }
    }

    /// The rule that picks Winograd: the 3×3 stride-1 layers of resnet18's first three stages take
    /// it, the 7×7 ones (a 32-tile panel with 6 tiles in it) only in a batch.
    func testSuitsOnlyWhenTilesFillThePanels() throws {
        try XCTSkipUnless(loupe_gemm_level() == 2, "Winograd runs on the AVX-512 path only")
        XCTAssertEqual(loupe_winograd_suits(1, 64, 64, 56, 56), 1)
        XCTAssertEqual(loupe_winograd_suits(1, 128, 128, 28, 28), 1)
        XCTAssertEqual(loupe_winograd_suits(1, 256, 256, 14, 14), 1)
        XCTAssertEqual(loupe_winograd_suits(1, 512, 512, 7, 7), 0)
        XCTAssertEqual(loupe_winograd_suits(16, 512, 512, 7, 7), 1, "a batch of 16 fills 3 panels")
        XCTAssertEqual(loupe_winograd_suits(1, 4, 64, 56, 56), 0, "too few output channels")
        // The tile: F(4×4) outside a recorded pass; inside, F(2×2) where it beats the direct sum.
        XCTAssertEqual(loupe_winograd_tile(1, 64, 64, 56, 56), 4)
        XCTAssertEqual(loupe_winograd_tile(1, 512, 512, 7, 7), 0)
        XCTAssertEqual(loupe_winograd_tile(1, 256, 256, 14, 14), 2, "two F(2×2) panels do less work than one part-filled F(4×4) one")
        XCTAssertEqual(loupe_winograd_tile(16, 256, 256, 14, 14), 4)
        Kernels.withDirectConvolutions {
            XCTAssertEqual(loupe_winograd_tile(1, 64, 64, 56, 56), 2)
            XCTAssertEqual(loupe_winograd_tile(1, 256, 256, 14, 14), 2)
            XCTAssertEqual(loupe_winograd_tile(1, 512, 512, 7, 7), 0, "one panel of 20 tiles does more work than direct")
            XCTAssertEqual(loupe_winograd_tile(16, 512, 512, 7, 7), 2)
            XCTAssertEqual(loupe_winograd_tile(1, 4, 64, 56, 56), 0, "too few output channels")
        }
        loupe_winograd_set_enabled(0)
        XCTAssertEqual(loupe_winograd_suits(1, 64, 64, 56, 56), 0, "switched off")
        XCTAssertEqual(loupe_winograd_tile(1, 64, 64, 56, 56), 0, "switched off")
        Kernels.withDirectConvolutions { XCTAssertEqual(loupe_winograd_tile(1, 64, 64, 56, 56), 0, "switched off") }
    }

    /// One image of 14×14 maps takes F(2×2, 3×3) outside a recorded pass too, forward and for the
    /// input gradient (the flipped kernel's F(2×2) form): both against the reference.
    func testF2x2WhereItDoesLessWork() throws {
        try XCTSkipUnless(loupe_gemm_level() == 2, "Winograd runs on the AVX-512 path only")
        var rng = KernelRNG(seed: 42)
        let cs = (name: "14x14", x: [1, 24, 14, 14], m: 20, g: ConvGeometry(kernel: (3, 3), pads: (1, 1, 1, 1)))
        let (x, w, b, packed, ref, refRelu) = try caseData(cs, &rng)
        XCTAssertEqual(loupe_winograd_tile(1, 20, 24, 14, 14), 2)
        XCTAssertEqual(loupe_winograd_tile(1, 24, 20, 14, 14), 2, "adjoint")
        XCTAssertNotNil(packed.winogradHandle(adjoint: false, tile: 2))
        XCTAssertNotNil(packed.winogradHandle(adjoint: true, tile: 2))
        for relu in [false, true] {
            let y = try Kernels.conv2d(x, weight: w, bias: b, geometry: cs.g, packed: packed, relu: relu)
            try assertKernelClose(y, relu ? refRelu : ref, atol: 1e-4, "F(2×2) relu \(relu)")
        }
        let gy = try rng.tensor(ref.shape)
        let refGrad = try ReferenceKernels.conv2dBackward(gy, input: x, weight: w, geometry: cs.g)
        let gx = try Kernels.conv2dBackwardInput(gy, weight: w, inputShape: x.shape, geometry: cs.g, packed: packed)
        try assertKernelClose(gx, refGrad.input, atol: 1e-4, "F(2×2) dx")
    }

    /// A NaN or infinity in the input (or weight) leaves the direct path's pattern: the output is
    /// NaN/inf exactly where the reference's is, not over whole 4×4 tiles.
    func testNonFiniteValuesKeepTheDirectPattern() throws {
        var rng = KernelRNG(seed: 41)
        let g = ConvGeometry(kernel: (3, 3), pads: (1, 1, 1, 1))
        let w = try rng.tensor([9, 8, 3, 3])
        var xs = try rng.tensor([1, 8, 20, 21]).floats()
        xs[3 * 420 + 5 * 21 + 7] = .nan
        xs[6 * 420 + 11 * 21 + 2] = .infinity
        let x = try Tensor(shape: [1, 8, 20, 21], floats: xs)
        var ws = try w.floats()
        ws[40] = -.infinity
        for weight in [w, try Tensor(shape: w.shape, floats: ws)] {
            let packed = try PackedConvWeights(weight: weight, groups: 1)
            let y = try Kernels.conv2d(x, weight: weight, bias: nil, geometry: g, packed: packed).floats()
            let ref = try ReferenceKernels.conv2d(x, weight: weight, bias: nil, geometry: g).floats()
            for i in ref.indices {
                XCTAssertEqual(y[i].isNaN, ref[i].isNaN, "NaN at \(i)")
                if !ref[i].isFinite && !ref[i].isNaN { XCTAssertEqual(y[i], ref[i], "infinity at \(i)") }
                if ref[i].isFinite { XCTAssertEqual(y[i], ref[i], accuracy: 1e-4 + 1e-4 * abs(ref[i])) }
            }
        }
    }

    /// A recorded forward pass (the executor wraps it in this scope) never takes Winograd; the
    /// scope nests, is restored on exit, and holds for the calling thread only.
    func testDirectScopeNestsAndRestores() throws {
        try XCTSkipUnless(loupe_gemm_level() == 2, "Winograd runs on the AVX-512 path only")
        XCTAssertEqual(loupe_winograd_available(), 1)
        Kernels.withDirectConvolutions {
            XCTAssertEqual(loupe_winograd_available(), 0)
            Kernels.withDirectConvolutions { XCTAssertEqual(loupe_winograd_available(), 0) }
            XCTAssertEqual(loupe_winograd_available(), 0, "inner scope restored the outer one")
            final class Box: @unchecked Sendable { var value: Int32 = -1 }
            let other = Box(), done = DispatchSemaphore(value: 0)
            Thread { other.value = loupe_winograd_available(); done.signal() }.start()
            done.wait()
            XCTAssertEqual(other.value, 1, "another thread is not in the scope")
        }
        XCTAssertEqual(loupe_winograd_available(), 1)
    }

    /// Inside the recorded-pass scope the same shapes run as F(2×2, 3×3): edge tiles (odd sizes),
    /// several panels, bands, a batch, bias and the fused ReLU, against the reference, and its
    /// error against a float64 sum is that of a direct float sum (F(4×4) is several times more).
    func testF2x2InsideTheDirectScope() throws {
        try XCTSkipUnless(loupe_gemm_level() == 2, "Winograd runs on the AVX-512 path only")
        var rng = KernelRNG(seed: 42)
        for cs in Self.cases {
            let (x, w, b, packed, ref, refRelu) = try caseData(cs, &rng)
            let (oh, ow) = (ref.shape[2], ref.shape[3])
            try Kernels.withDirectConvolutions {
                XCTAssertEqual(loupe_winograd_tile(cs.x[0], cs.m, cs.x[1], oh, ow), 2, cs.name)
                XCTAssertNotNil(packed.winogradHandle(adjoint: false, tile: 2), cs.name)
                for relu in [false, true] {
                    let y = try Kernels.conv2d(x, weight: w, bias: b, geometry: cs.g, packed: packed, relu: relu)
                    try assertKernelClose(y, relu ? refRelu : ref, atol: Float(1e-5 * Double(cs.x[1]).squareRoot()), rtol: 1e-5, "\(cs.name) F2 relu \(relu)")
                }
            }
        }
    }

    /// F(2×2, 3×3) rounds like a direct float sum, F(4×4, 3×3) several times more: rms error
    /// against a float64 sum over 128 channels of post-ReLU inputs.
    func testF2x2RoundsLikeADirectSum() throws {
        try XCTSkipUnless(loupe_gemm_level() == 2, "Winograd runs on the AVX-512 path only")
        var rng = KernelRNG(seed: 43)
        let (n, c, m, h) = (2, 128, 16, 24)
        let xs = rng.floats(n * c * h * h).map { max(0, $0) }
        let ws = rng.floats(m * c * 9)
        let x = try Tensor(shape: [n, c, h, h], floats: xs), w = try Tensor(shape: [m, c, 3, 3], floats: ws)
        let g = ConvGeometry(kernel: (3, 3), pads: (1, 1, 1, 1))
        var exact = [Double](repeating: 0, count: n * m * h * h)
        for img in 0..<n { for o in 0..<m { for oy in 0..<h { for ox in 0..<h {
            var acc = 0.0
            for ci in 0..<c { for kh in 0..<3 { for kw in 0..<3 {
                let iy = oy - 1 + kh, ix = ox - 1 + kw
                guard iy >= 0, iy < h, ix >= 0, ix < h else { continue }
                acc += Double(ws[((o * c + ci) * 3 + kh) * 3 + kw]) * Double(xs[((img * c + ci) * h + iy) * h + ix])
            } } }
            exact[((img * m + o) * h + oy) * h + ox] = acc
        } } } }
        let rms = (exact.map { $0 * $0 }.reduce(0, +) / Double(exact.count)).squareRoot()
        func error(_ y: Tensor) throws -> Double {
            let v = try y.floats()
            return (zip(v, exact).map { (Double($0) - $1) * (Double($0) - $1) }.reduce(0, +) / Double(v.count)).squareRoot() / rms
        }
        let packed = try PackedConvWeights(weight: w, groups: 1)
        loupe_winograd_set_enabled(0)
        let direct = try error(try Kernels.conv2d(x, weight: w, bias: nil, geometry: g, packed: packed))
        loupe_winograd_set_enabled(-1)
        let f4 = try error(try Kernels.conv2d(x, weight: w, bias: nil, geometry: g, packed: packed))
        let f2 = try Kernels.withDirectConvolutions { try error(try Kernels.conv2d(x, weight: w, bias: nil, geometry: g, packed: packed)) }
        XCTAssertLessThan(f2, 2 * direct, "F(2x2) \(f2) vs direct \(direct)")
        XCTAssertGreaterThan(f4, 4 * direct, "F(4x4) \(f4) vs direct \(direct)")
    }
}
