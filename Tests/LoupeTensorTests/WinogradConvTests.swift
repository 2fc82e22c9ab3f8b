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

    func testWinogradMatchesReference() throws {
        var rng = KernelRNG(seed: 40)
        let avx512 = loupe_gemm_level() == 2
        for cs in Self.cases {
            let x = try rng.tensor(cs.x)
            let w = try rng.tensor([cs.m, cs.x[1], 3, 3])
            let b = try rng.tensor([cs.m])
            let packed = try PackedConvWeights(weight: w, groups: 1)
            let ref = try ReferenceKernels.conv2d(x, weight: w, bias: b, geometry: cs.g)
            let refRelu = try Tensor(shape: ref.shape, floats: try ref.floats().map { max($0, 0) })
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
        loupe_winograd_set_enabled(0)
        XCTAssertEqual(loupe_winograd_suits(1, 64, 64, 56, 56), 0, "switched off")
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
}
