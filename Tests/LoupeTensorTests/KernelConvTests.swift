import Foundation
import XCTest
@testable import LoupeTensor

final class KernelConvTests: XCTestCase {
    /// Odd geometries: prime sizes, stride 2/3, dilation 2, asymmetric pads, groups 1/2/depthwise
    /// (with channel multiplier), batch 3, and a pointwise 1x1 case.
    static let cases: [(name: String, x: [Int], m: Int, g: ConvGeometry)] = [
        ("3x3 pad1", [3, 3, 7, 5], 5, ConvGeometry(kernel: (3, 3), pads: (1, 1, 1, 1))),
        ("stride2 dil2 asym", [3, 2, 11, 7], 3, ConvGeometry(kernel: (3, 2), strides: (2, 3), dilations: (2, 1), pads: (2, 0, 1, 1))),
        ("groups2", [2, 4, 7, 7], 6, ConvGeometry(kernel: (3, 3), strides: (1, 2), pads: (0, 1, 2, 1), groups: 2)),
        ("depthwise", [3, 3, 7, 11], 3, ConvGeometry(kernel: (3, 5), strides: (2, 1), dilations: (1, 2), pads: (1, 2, 0, 3), groups: 3)),
        ("depthwise x2", [2, 3, 5, 5], 6, ConvGeometry(kernel: (3, 3), strides: (3, 3), pads: (1, 1, 1, 1), groups: 3)),
        ("pointwise", [3, 5, 3, 7], 4, ConvGeometry(kernel: (1, 1))),
        ("stride1 dilated groups asym", [2, 4, 9, 8], 6, ConvGeometry(kernel: (3, 2), dilations: (2, 1), pads: (1, 0, 3, 1), groups: 2)),
        ("1-D as H=1", [3, 2, 1, 13], 3, ConvGeometry(kernel: (1, 3), strides: (1, 2), dilations: (1, 2), pads: (0, 1, 0, 2))),
        // stride-2 rows of 35 outputs: the vector im2col gather and col2im scatter-add, whole
        // 16-column blocks and a tail, taps cut by the padding on both sides
        ("stride2 wide rows", [2, 3, 9, 70], 4, ConvGeometry(kernel: (3, 7), strides: (2, 2), pads: (1, 3, 1, 3))),
    ]

    func testConvForwardMatchesReference() throws {
        var rng = KernelRNG(seed: 10)
        for cs in Self.cases {
            let x = try rng.tensor(cs.x)
            let w = try rng.tensor([cs.m, cs.x[1] / cs.g.groups, cs.g.kernelH, cs.g.kernelW])
            let b = try rng.tensor([cs.m])
            for bias in [nil, b] {
                let fast = try Kernels.conv2d(x, weight: w, bias: bias, geometry: cs.g)
                let ref = try ReferenceKernels.conv2d(x, weight: w, bias: bias, geometry: cs.g)
                try assertKernelClose(fast, ref, cs.name)
            }
        }
    }

    func testConvBackwardMatchesReference() throws {
        var rng = KernelRNG(seed: 11)
        for cs in Self.cases {
            let x = try rng.tensor(cs.x)
            let w = try rng.tensor([cs.m, cs.x[1] / cs.g.groups, cs.g.kernelH, cs.g.kernelW])
            let y = try Kernels.conv2d(x, weight: w, bias: nil, geometry: cs.g)
            let gy = try rng.tensor(y.shape)
            let ref = try ReferenceKernels.conv2dBackward(gy, input: x, weight: w, geometry: cs.g)
            try assertKernelClose(try Kernels.conv2dBackwardInput(gy, weight: w, inputShape: x.shape, geometry: cs.g), ref.input, cs.name + " dx")
            try assertKernelClose(try Kernels.conv2dBackwardWeight(gy, input: x, weightShape: w.shape, geometry: cs.g), ref.weight, cs.name + " dw")
            // bias gradient = per-channel sum
            let gb = try Kernels.channelSum(gy).floats()
            let g = try gy.floats(), plane = y.shape[2] * y.shape[3]
            for m in 0..<cs.m {
                var s: Float = 0
                for n in 0..<cs.x[0] { for i in 0..<plane { s += g[(n * cs.m + m) * plane + i] } }
                XCTAssertEqual(gb[m], s, accuracy: 1e-4)
            }
        }
    }

    /// The column matrix built a band of output rows at a time (one row, a few rows) gives the
    /// same results as the reference in both adjoints.
    func testBandedIm2colMatchesReference() throws {
        var rng = KernelRNG(seed: 15)
        for cs in Self.cases where cs.g.groups < cs.x[1] {
            let x = try rng.tensor(cs.x)
            let w = try rng.tensor([cs.m, cs.x[1] / cs.g.groups, cs.g.kernelH, cs.g.kernelW])
            let b = try rng.tensor([cs.m])
            let ref = try ReferenceKernels.conv2d(x, weight: w, bias: b, geometry: cs.g)
            let gy = try rng.tensor(ref.shape)
            let refGrad = try ReferenceKernels.conv2dBackward(gy, input: x, weight: w, geometry: cs.g)
            for chunk in [1, 40] {
                try assertKernelClose(try Kernels.conv2dBackwardInput(gy, weight: w, inputShape: x.shape, geometry: cs.g, chunkFloats: chunk),
                                refGrad.input, "\(cs.name) dx chunk \(chunk)")
                try assertKernelClose(try Kernels.conv2dBackwardWeight(gy, input: x, weightShape: w.shape, geometry: cs.g, chunkFloats: chunk),
                                refGrad.weight, "\(cs.name) dw chunk \(chunk)")
            }
        }
    }

    /// Weights packed once and reused give the reference result, with the ReLU fused or not, on
    /// every GEMM path; panels packed for one path are not used on another (they are re-packed).
    func testPrepackedAndFusedReluMatchReference() throws {
        var rng = KernelRNG(seed: 16)
        defer { Kernels.forceGEMMLevel(nil) }
        for cs in Self.cases {
            let x = try rng.tensor(cs.x)
            let w = try rng.tensor([cs.m, cs.x[1] / cs.g.groups, cs.g.kernelH, cs.g.kernelW])
            let b = try rng.tensor([cs.m])
            let ref = try ReferenceKernels.conv2d(x, weight: w, bias: b, geometry: cs.g)
            let refRelu = try Tensor(shape: ref.shape, floats: try ref.floats().map { max($0, 0) })
            Kernels.forceGEMMLevel(nil)
            let packed = try PackedConvWeights(weight: w, groups: cs.g.groups)
            XCTAssertTrue(packed.matches(w, groups: cs.g.groups))
            XCTAssertFalse(packed.matches(try rng.tensor(w.shape), groups: cs.g.groups), "another tensor of the same shape")
            let gy = try rng.tensor(ref.shape)
            let refGrad = try ReferenceKernels.conv2dBackward(gy, input: x, weight: w, geometry: cs.g)
            for level in [2, 1, 0] {
                Kernels.forceGEMMLevel(level)
                for relu in [false, true] {
                    let y = try Kernels.conv2d(x, weight: w, bias: b, geometry: cs.g, packed: packed, relu: relu)
                    try assertKernelClose(y, relu ? refRelu : ref, "\(cs.name) level \(level) relu \(relu)")
                }
                // input gradient through the transposed panels (made on first use, for level 2)
                for _ in 0..<2 {
                    let gx = try Kernels.conv2dBackwardInput(gy, weight: w, inputShape: x.shape, geometry: cs.g, packed: packed)
                    try assertKernelClose(gx, refGrad.input, "\(cs.name) level \(level) dx")
                }
            }
        }
    }

    /// Whole 14 × 32 tiles take the micro-kernel with the bias and ReLU fused into its registers
    /// (AVX-512), edge tiles the separate merge: both must add the same bias and keep NaN through
    /// the ReLU (`x < 0 ? 0 : x`, as torch.relu), on every GEMM path.
    func testFusedBiasReluKeepsNaNOnWholeAndEdgeTiles() throws {
        var rng = KernelRNG(seed: 21)
        defer { Kernels.forceGEMMLevel(nil) }
        // 30 output channels = two whole 14-row tiles + 2 rows; 9 × 8 = 72 pixels = two whole
        // 32-column panels + 8 columns.
        let x = try rng.tensor([1, 5, 9, 8]), w = try rng.tensor([30, 5, 1, 1]), b = try rng.tensor([30])
        var xv = try x.floats()
        xv[2 * 72 + 10] = .nan   // pixel 10 (a whole tile) and pixel 70 (the edge panel)
        xv[4 * 72 + 70] = .nan
        let xn = try Tensor(shape: x.shape, floats: xv)
        let g = ConvGeometry(kernel: (1, 1))
        let ref = try ReferenceKernels.conv2d(xn, weight: w, bias: b, geometry: g).floats()
        for level in [2, 1, 0] {
            Kernels.forceGEMMLevel(level)
            let packed = try PackedConvWeights(weight: w, groups: 1)
            for relu in [false, true] {
                let y = try Kernels.conv2d(xn, weight: w, bias: b, geometry: g, packed: packed, relu: relu).floats()
                for m in 0..<30 {
                    for p in 0..<72 {
                        let r = ref[m * 72 + p], v = y[m * 72 + p]
                        if p == 10 || p == 70 {
                            XCTAssertTrue(v.isNaN, "level \(level) relu \(relu) channel \(m) pixel \(p): \(v)")
                        } else {
                            XCTAssertEqual(v, relu ? max(r, 0) : r, accuracy: 1e-5, "level \(level) relu \(relu) channel \(m) pixel \(p)")
                        }
                    }
                }
            }
        }
    }

    /// Zero input channels: an empty sum, so the output is the bias (and its ReLU), as in PyTorch.
    func testConvWithNoInputChannelsIsTheBias() throws {
        let x = Tensor(zeros: [2, 0, 4, 5]), w = Tensor(zeros: [3, 0, 3, 3])
        let b = try Tensor(shape: [3], floats: [0.5, -1, 2])
        let g = ConvGeometry(kernel: (3, 3), pads: (1, 1, 1, 1))
        for relu in [false, true] {
            let y = try Kernels.conv2d(x, weight: w, bias: b, geometry: g, relu: relu)
            XCTAssertEqual(y.shape, [2, 3, 4, 5])
            let v = try y.floats()
            for img in 0..<2 { for m in 0..<3 { for i in 0..<20 {
                XCTAssertEqual(v[(img * 3 + m) * 20 + i], relu ? max(0, [0.5, -1, 2][m]) : [0.5, -1, 2][m])
            } } }
        }
        XCTAssertEqual(try Kernels.conv2d(x, weight: w, bias: nil, geometry: g).floats(), [Float](repeating: 0, count: 120))
    }

    /// Larger than one GEMM tile and run on the threaded path.
    func testConvLargerThreaded() throws {
        var rng = KernelRNG(seed: 12)
        let g = ConvGeometry(kernel: (3, 3), pads: (1, 1, 1, 1))
        let x = try rng.tensor([1, 8, 19, 23]), w = try rng.tensor([37, 8, 3, 3])
        try assertKernelClose(try Kernels.conv2d(x, weight: w, bias: nil, geometry: g),
                        try ReferenceKernels.conv2d(x, weight: w, bias: nil, geometry: g), atol: 3e-4)
        // Several k blocks (K = 64·9 > 256), split over columns (many output pixels) and over rows
        // (7×7 output, few column panels), with bias and the fused ReLU, stride 1 and 2.
        let shapes: [(x: [Int], m: Int, g: ConvGeometry)] = [
            ([1, 64, 17, 15], 40, ConvGeometry(kernel: (3, 3), pads: (1, 1, 1, 1))),
            ([1, 64, 13, 13], 100, ConvGeometry(kernel: (3, 3), strides: (2, 2), pads: (1, 1, 1, 1))),
            ([2, 64, 7, 7], 30, ConvGeometry(kernel: (1, 1))),
            // wide rows: panels of 32 output pixels inside one row and across rows, both packers' strides
            ([1, 3, 9, 45], 20, ConvGeometry(kernel: (3, 3), strides: (2, 2), pads: (1, 1, 1, 1))),
            ([1, 3, 20, 37], 16, ConvGeometry(kernel: (7, 7), strides: (2, 2), pads: (3, 3, 3, 3))),
            ([1, 2, 6, 40], 16, ConvGeometry(kernel: (3, 3), dilations: (2, 2), pads: (2, 2, 2, 2))),
            ([1, 2, 5, 50], 17, ConvGeometry(kernel: (1, 4), strides: (1, 2), pads: (0, 0, 0, 3))),
            // more output channels than one A sub-block (336 rows): the blocked order, per image
            ([2, 8, 9, 10], 350, ConvGeometry(kernel: (3, 3), pads: (1, 1, 1, 1))),
            // 1×1 maps with a batch: one GEMM over the batch
            ([5, 24, 1, 1], 19, ConvGeometry(kernel: (1, 1))),
        ]
        for sh in shapes {
            let x = try rng.tensor(sh.x), w = try rng.tensor([sh.m, sh.x[1], sh.g.kernelH, sh.g.kernelW]), b = try rng.tensor([sh.m])
            let ref = try ReferenceKernels.conv2d(x, weight: w, bias: b, geometry: sh.g)
            let refRelu = try Tensor(shape: ref.shape, floats: try ref.floats().map { max($0, 0) })
            try assertKernelClose(try Kernels.conv2d(x, weight: w, bias: b, geometry: sh.g, relu: true), refRelu, atol: 1e-3, "\(sh.x)")
        }
    }

    func testConvTransposeMatchesReference() throws {
        var rng = KernelRNG(seed: 13)
        let cases: [(x: [Int], mg: Int, g: ConvGeometry, outPad: (Int, Int))] = [
            ([3, 2, 3, 4], 3, ConvGeometry(kernel: (3, 3), strides: (2, 2), pads: (1, 0, 1, 2)), (1, 0)),
            ([2, 4, 5, 3], 1, ConvGeometry(kernel: (2, 3), strides: (3, 1), dilations: (2, 1), pads: (0, 1, 0, 1), groups: 2), (2, 0)),
            ([1, 3, 4, 4], 2, ConvGeometry(kernel: (3, 3), strides: (1, 1), groups: 3), (0, 0)),
        ]
        for cs in cases {
            let x = try rng.tensor(cs.x)
            let w = try rng.tensor([cs.x[1], cs.mg, cs.g.kernelH, cs.g.kernelW])
            let b = try rng.tensor([cs.mg * cs.g.groups])
            let oh = cs.g.strideH * (cs.x[2] - 1) + cs.outPad.0 + (cs.g.kernelH - 1) * cs.g.dilationH + 1 - cs.g.padTop - cs.g.padBottom
            let ow = cs.g.strideW * (cs.x[3] - 1) + cs.outPad.1 + (cs.g.kernelW - 1) * cs.g.dilationW + 1 - cs.g.padLeft - cs.g.padRight
            let fast = try Kernels.convTranspose2d(x, weight: w, bias: b, geometry: cs.g, outputSize: (oh, ow))
            let ref = try ReferenceKernels.convTranspose2d(x, weight: w, bias: b, geometry: cs.g, outputSize: (oh, ow))
            try assertKernelClose(fast, ref)
            // adjoint identities: <T x, gy> = <x, T* gy>, and the weight gradient likewise
            let gy = try rng.tensor(fast.shape)
            let noBias = try Kernels.convTranspose2d(x, weight: w, bias: nil, geometry: cs.g, outputSize: (oh, ow))
            let gx = try Kernels.convTranspose2dBackwardInput(gy, weight: w, geometry: cs.g)
            XCTAssertEqual(try kernelDot(noBias, gy), try kernelDot(x, gx), accuracy: 1e-3)
            let gw = try Kernels.convTranspose2dBackwardWeight(gy, input: x, weightShape: w.shape, geometry: cs.g)
            XCTAssertEqual(try kernelDot(noBias, gy), try kernelDot(w, gw), accuracy: 1e-3)
        }
    }

    func testPoolingMatchesReference() throws {
        var rng = KernelRNG(seed: 14)
        let geometries = [
            ConvGeometry(kernel: (3, 3), strides: (2, 2), pads: (1, 1, 1, 1)),
            ConvGeometry(kernel: (2, 3), strides: (3, 2), dilations: (2, 1), pads: (0, 1, 1, 0)),
            ConvGeometry(kernel: (2, 2), strides: (2, 2)),
        ]
        for g in geometries {
            for ceil in [false, true] {
                let x = try rng.tensor([3, 2, 7, 11])
                try assertKernelClose(try Kernels.maxPool2d(x, geometry: g, ceilMode: ceil),
                                try ReferenceKernels.pool2d(x, geometry: g, ceilMode: ceil, average: false, countIncludePad: false))
                for cip in [false, true] {
                    let y = try Kernels.averagePool2d(x, geometry: g, ceilMode: ceil, countIncludePad: cip)
                    try assertKernelClose(y, try ReferenceKernels.pool2d(x, geometry: g, ceilMode: ceil, average: true, countIncludePad: cip))
                    let gy = try rng.tensor(y.shape)
                    let gx = try Kernels.averagePool2dBackward(gy, inputShape: x.shape, geometry: g, ceilMode: ceil, countIncludePad: cip)
                    XCTAssertEqual(try kernelDot(y, gy), try kernelDot(x, gx), accuracy: 1e-3, "average pool adjoint")
                }
                // max pool gradient: cotangent lands on the argmax of each window
                let y = try Kernels.maxPool2d(x, geometry: g, ceilMode: ceil)
                let gy = try rng.tensor(y.shape)
                let gx = try Kernels.maxPool2dBackward(gy, input: x, geometry: g, ceilMode: ceil)
                XCTAssertEqual(try kernelDot(y, gy), try kernelDot(x, gx), accuracy: 1e-3, "max pool is linear on its argmax pattern")
            }
        }
    }

    /// The forward-only (separable) max pool propagates NaN and handles -∞ and wide rows
    /// (beyond its 1024-float stack scratch) like the reference.
    func testMaxPoolNaNInfinityAndWideRows() throws {
        let g = ConvGeometry(kernel: (2, 2), strides: (2, 2))
        let x = try Tensor(shape: [1, 1, 2, 4], floats: [1, .nan, -.infinity, -.infinity, 3, 2, -.infinity, -.infinity])
        let y = try Kernels.maxPool2d(x, geometry: g).floats()
        XCTAssertTrue(y[0].isNaN)
        XCTAssertEqual(y[1], -.infinity)
        var rng = KernelRNG(seed: 15)
        let wide = try rng.tensor([1, 2, 3, 1500])
        let g3 = ConvGeometry(kernel: (3, 3), strides: (2, 2), pads: (1, 1, 1, 1))
        try assertKernelClose(try Kernels.maxPool2d(wide, geometry: g3),
                              try ReferenceKernels.pool2d(wide, geometry: g3, ceilMode: false, average: false, countIncludePad: false))
    }

    func testCeilModeOutputSizeAndBadGeometry() throws {
        let g = ConvGeometry(kernel: (3, 3), strides: (2, 2))
        let (h, w) = try g.outputSize(height: 8, width: 7, ceilMode: true, op: "t")
        XCTAssertEqual(h, 4) // (8-3)/2 = 2.5 → 3 + 1
        XCTAssertEqual(w, 3)
        XCTAssertThrowsError(try ConvGeometry(kernel: (5, 5)).outputSize(height: 3, width: 3, op: "t"))
        XCTAssertThrowsError(try ConvGeometry(kernel: (3, 3), strides: (0, 1)).validate(op: "t"))
    }

    /// SiLU and HardSwish applied inside the kernels (per finished GEMM block, per depthwise
    /// plane, in the Winograd output transform, after the 1×1-map batch GEMM and the transposed
    /// product) against the reference convolution followed by the scalar formula, on every conv
    /// path: im2col panels, pointwise with several column blocks over threads, the blocked order
    /// (M > 336), depthwise, 1×1 maps at batch 4 and 1 (a matrix-vector product), a Winograd-shaped 3×3, and few-pixel maps
    /// (the transposed product); also the input gradient of the few-pixel cases.
    func testFusedActivationsMatchReference() throws {
        var rng = KernelRNG(seed: 17)
        let shapes: [(x: [Int], m: Int, g: ConvGeometry)] = [
            ([1, 8, 30, 34], 20, ConvGeometry(kernel: (3, 3), strides: (2, 2), pads: (1, 1, 1, 1))),
            ([1, 32, 64, 64], 40, ConvGeometry(kernel: (1, 1))),
            ([2, 8, 9, 10], 350, ConvGeometry(kernel: (3, 3), pads: (1, 1, 1, 1))),
            ([2, 6, 11, 9], 6, ConvGeometry(kernel: (3, 3), pads: (1, 1, 1, 1), groups: 6)),
            ([4, 10, 1, 1], 7, ConvGeometry(kernel: (1, 1))),
            ([1, 24, 1, 1], 9, ConvGeometry(kernel: (1, 1))),
            ([1, 16, 24, 24], 16, ConvGeometry(kernel: (3, 3), pads: (1, 1, 1, 1))),
            // few output pixels, many channels: the transposed product (pixels as GEMM rows),
            // one image over the pool and a batch of three as separate tasks
            ([1, 40, 7, 7], 96, ConvGeometry(kernel: (3, 3), pads: (1, 1, 1, 1))),
            ([3, 24, 4, 5], 70, ConvGeometry(kernel: (3, 3), pads: (1, 1, 1, 1))),
            // pointwise on 7x7 maps: the transposed product without im2col (one image, and a
            // batch of two as separate tasks), 70 channels: a partial 16-channel block on the way back
            ([1, 24, 7, 7], 70, ConvGeometry(kernel: (1, 1))),
            // K = 45 (5 channels, 3x3): the row-tiles-outer order of small-K GEMMs, 30 outputs
            // (a short last row tile), columns not a multiple of the panel width
            ([2, 5, 17, 23], 30, ConvGeometry(kernel: (3, 3), pads: (1, 1, 1, 1))),
            ([2, 40, 7, 7], 96, ConvGeometry(kernel: (1, 1))),
            // 72 input channels on 7x7 maps: the input gradient's adjoint convolution (72 outputs)
            // takes the transposed product too, on panels made from the flipped kernel
            ([1, 72, 7, 7], 40, ConvGeometry(kernel: (3, 3), pads: (1, 1, 1, 1))),
            ([2, 72, 7, 7], 24, ConvGeometry(kernel: (3, 3), pads: (1, 1, 1, 1))),
        ]
        let formulas: [(ConvActivation, (Float) -> Float)] = [
            (.silu, { $0 / (1 + Foundation.exp(-$0)) }),
            (.hardSwish, { $0 * max(0, min(1, $0 / 6 + 0.5)) }),
            (.relu, { max($0, 0) }),
        ]
        for cs in shapes {
            let x = try rng.tensor(cs.x)
            let w = try rng.tensor([cs.m, cs.x[1] / cs.g.groups, 3 == cs.g.kernelH ? 3 : 1, 3 == cs.g.kernelW ? 3 : 1])
            let b = try rng.tensor([cs.m])
            let ref = try ReferenceKernels.conv2d(x, weight: w, bias: b, geometry: cs.g).floats()
            let packed = try PackedConvWeights(weight: w, groups: cs.g.groups)
            for (act, f) in formulas {
                let y = try Kernels.conv2d(x, weight: w, bias: b, geometry: cs.g, packed: packed, activation: act)
                try assertKernelClose(y, try Tensor(shape: y.shape, floats: ref.map(f)), "\(cs.x) M\(cs.m) \(act)")
            }
            if cs.x[2] * cs.x[3] <= 49 {
                let gy = try rng.tensor([cs.x[0], cs.m, cs.x[2], cs.x[3]])
                let refGrad = try ReferenceKernels.conv2dBackward(gy, input: x, weight: w, geometry: cs.g)
                try assertKernelClose(try Kernels.conv2dBackwardInput(gy, weight: w, inputShape: x.shape, geometry: cs.g, packed: packed),
                                      refGrad.input, "\(cs.x) M\(cs.m) dx")
            }
        }
    }

    /// Pointwise convolutions on 1×1 maps with a batch (squeeze-excitation layers) run on the
    /// weight's transposed panels (`loupe_pointwise_rows`): against the reference with and
    /// without bias, each activation, batches filling 14-row panels partly and across several,
    /// channel counts off the panel widths.
    func testPointwiseOnOneByOneMapsOverPackedPanels() throws {
        var rng = KernelRNG(seed: 23)
        let g = ConvGeometry(kernel: (1, 1))
        for (n, c, m) in [(2, 24, 9), (16, 70, 40), (33, 150, 37)] {
            let x = try rng.tensor([n, c, 1, 1]), w = try rng.tensor([m, c, 1, 1]), b = try rng.tensor([m])
            let packed = try PackedConvWeights(weight: w, groups: 1)
            for bias in [b, nil] {
                let ref = try ReferenceKernels.conv2d(x, weight: w, bias: bias, geometry: g).floats()
                for (act, f): (ConvActivation, (Float) -> Float) in [(.none, { $0 }), (.relu, { max($0, 0) }),
                                                                    (.hardSwish, { $0 * max(0, min(1, $0 / 6 + 0.5)) })] {
                    let y = try Kernels.conv2d(x, weight: w, bias: bias, geometry: g, packed: packed, activation: act)
                    XCTAssertEqual(y.shape, [n, m, 1, 1])
                    try assertKernelClose(y, try Tensor(shape: y.shape, floats: ref.map(f)), "n\(n) c\(c) m\(m) bias \(bias != nil) \(act)")
                }
            }
        }
    }

    /// Few input channels (a first layer on RGB) take the direct kernel on AVX-512
    /// (`loupe_conv2d_small_c`): against the reference on MobileNet/EfficientNet/ResNet first
    /// layers and odd geometries (strides 1-3, dilation, asymmetric pads, widths off 16, a partial
    /// last block of output channels), with and without bias, each fused activation; NaN passes.
    func testFewInputChannelsDirect() throws {
        var rng = KernelRNG(seed: 18)
        let cases: [(x: [Int], m: Int, g: ConvGeometry)] = [
            ([2, 3, 40, 37], 16, ConvGeometry(kernel: (3, 3), strides: (2, 2), pads: (1, 1, 1, 1))),
            ([1, 3, 45, 50], 24, ConvGeometry(kernel: (7, 7), strides: (2, 2), pads: (3, 3, 3, 3))),
            ([1, 1, 20, 33], 5, ConvGeometry(kernel: (5, 3), strides: (1, 3), dilations: (2, 1), pads: (2, 0, 1, 4))),
            ([3, 4, 18, 18], 40, ConvGeometry(kernel: (3, 3), pads: (1, 1, 1, 1))),
            ([1, 2, 17, 64], 17, ConvGeometry(kernel: (1, 1))),
            // Stride 2 with even left pads (which phase each input column lands in), odd widths.
            ([1, 3, 31, 43], 16, ConvGeometry(kernel: (5, 5), strides: (2, 2), pads: (2, 2, 2, 2))),
            ([2, 3, 20, 35], 8, ConvGeometry(kernel: (3, 3), strides: (2, 2), pads: (0, 0, 1, 1))),
            // 33 output rows over 3 images of 11: tasks of 4 rows cross image boundaries, where
            // the activation pass splits its rows per image.
            ([3, 3, 22, 40], 16, ConvGeometry(kernel: (3, 3), strides: (2, 2), pads: (1, 1, 1, 1))),
            // ResNet's 7x7 stride 2 over images of 9 output rows: the ring of input rows is
            // reused across output rows and restarted where a task crosses into the next image;
            // a bottom pad larger than the top one reads rows below the image into reused slots.
            ([3, 3, 17, 40], 16, ConvGeometry(kernel: (7, 7), strides: (2, 2), pads: (3, 3, 5, 2))),
            // Images of 3 output rows whose first and last windows share input rows 1-3: a task
            // that carries its ring into the next image without restarting it reads the previous
            // image's rows.
            ([6, 3, 5, 40], 16, ConvGeometry(kernel: (7, 7), strides: (2, 2), pads: (3, 3, 3, 3))),
            // Dilated rows two apart, stride 1: the ring spans 5 rows for 3 taps.
            ([2, 3, 13, 36], 16, ConvGeometry(kernel: (3, 3), dilations: (2, 1), pads: (2, 1, 2, 1))),
        ]
        let win = ConvGeometry(kernel: (3, 3), strides: (2, 2), pads: (1, 1, 1, 1)).window(inH: 40, inW: 37, outH: 20, outW: 19)
        XCTAssertEqual(Kernels.takesFewChannelDirect(c: 3, m: 16, window: win), Kernels.gemmLevel == 2)
        for cs in cases {
            var xs = rng.floats(cs.x.reduce(1, *))
            let x = try Tensor(shape: cs.x, floats: xs)
            let w = try rng.tensor([cs.m, cs.x[1], cs.g.kernelH, cs.g.kernelW]), b = try rng.tensor([cs.m])
            for bias in [b, nil] as [Tensor?] {
                let ref = try ReferenceKernels.conv2d(x, weight: w, bias: bias, geometry: cs.g).floats()
                // HardSwish runs in the kernel's registers, SiLU in a pass over each finished row.
                for (act, f) in [(ConvActivation.none, { (v: Float) in v }), (.relu, { max($0, 0) }),
                                 (.hardSwish, { $0 * max(0, min(1, $0 / 6 + 0.5)) }), (.silu, { $0 / (1 + exp(-$0)) })] {
                    let y = try Kernels.conv2d(x, weight: w, bias: bias, geometry: cs.g, activation: act)
                    try assertKernelClose(y, try Tensor(shape: y.shape, floats: ref.map(f)), "\(cs.x) M\(cs.m) \(act) bias \(bias != nil)")
                }
            }
            xs[3] = .nan
            let y = try Kernels.conv2d(try Tensor(shape: cs.x, floats: xs), weight: w, bias: b, geometry: cs.g, relu: true)
            XCTAssertTrue(try y.floats().contains { $0.isNaN }, "\(cs.x): NaN input, NaN somewhere in the output")
        }
    }
}
