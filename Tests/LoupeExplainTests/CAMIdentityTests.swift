import Foundation
import XCTest
import LoupeTensor
import LoupeONNX
import LoupeGraph
@testable import LoupeExplain

/// Identities and hand-computed values of the CAM weightings, the token reshape, scaling and
/// the driver's errors. Tiny shapes; the exported model is Tests/Fixtures/cam/plain_cnn.onnx.
final class CAMIdentityTests: XCTestCase {
    static let dir = CAMFixtureTests.dir
    static let layer = "/relu2/Relu_output_0"

    func plainCNN() throws -> (Model, Tensor) {
        let model = try Model(graph: try ONNXModel.load(path: "\(Self.dir)/plain_cnn.onnx"))
        return (model, try Tensor.readNPY(path: "\(Self.dir)/plain_cnn.input.npy"))
    }

    func assertClose(_ a: Tensor, _ b: Tensor, _ tol: Double, _ msg: String = "", file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.shape, b.shape, msg, file: file, line: line)
        XCTAssertLessThanOrEqual(CAMFixtureTests.relativeError(a, b), tol, msg, file: file, line: line)
    }

    /// On `logits = W·GAP(A) + b`, ∂logit_k/∂A[c,i,j] = W[k,c]/(h·w) at every position, so
    /// Grad-CAM's weights are exactly CAM's divided by h·w (here 8·8 = 64), and the maps too.
    /// The gradient is spatially constant, so HiRes-CAM equals Grad-CAM on this net as well.
    func testGradCAMEqualsCAMOverHWOnGlobalAveragePooledNet() throws {
        let (model, x) = try plainCNN()
        let weight = try XCTUnwrap(model.graph.initializers["fc.weight"])
        let classes = [1, 3]
        let cam = try CAM.explain(model: model, input: x, layer: Self.layer, classes: classes, method: .cam(classifierWeight: weight))
        let grad = try CAM.explain(model: model, input: x, layer: Self.layer, classes: classes, method: .gradCAM)
        let hires = try CAM.explain(model: model, input: x, layer: Self.layer, classes: classes, method: .hiResCAM)
        XCTAssertEqual(cam.raw.shape, [2, 8, 8])
        XCTAssertNil(cam.gradients, "CAM needs no backward")
        let hw: Float = 64
        let scaledCAM = try Tensor(shape: cam.raw.shape, floats: try cam.raw.floats().map { $0 / hw })
        assertClose(grad.raw, scaledCAM, 1e-5, "Grad-CAM = CAM / (h·w)")
        let w = try XCTUnwrap(grad.weights), wc = try XCTUnwrap(cam.weights)
        assertClose(w, try Tensor(shape: wc.shape, floats: try wc.floats().map { $0 / hw }), 1e-5, "weights")
        assertClose(hires.raw, grad.raw, 1e-5, "HiRes-CAM = Grad-CAM when gradients are constant over space")
        // After min-max scaling the 1/(h·w) factor disappears entirely.
        assertClose(try CAM.scaledLikePytorchGradCAM(grad.raw, height: 16, width: 16),
                    try CAM.scaledLikePytorchGradCAM(cam.raw, height: 16, width: 16), 1e-5)
    }

    /// Synthetic spatially constant gradients on random activations.
    func testHiResEqualsGradCAMForSpatiallyConstantGradients() throws {
        var rng = SplitMix64(seed: 7)
        let (b, c, h, w) = (2, 3, 3, 4)
        let a = try Tensor(shape: [b, c, h, w], floats: (0..<(b * c * h * w)).map { _ in Float.random(in: -1...2, using: &rng) })
        let perChannel = (0..<(b * c)).map { _ in Float.random(in: -1...1, using: &rng) }
        let g = try Tensor(shape: [b, c, h, w], floats: (0..<(b * c * h * w)).map { perChannel[$0 / (h * w)] })
        let hires = try CAM.rawMap(try CAM.HiResCAM().readout(activations: a, gradients: g, classes: [0, 0]), activations: a)
        let grad = try CAM.rawMap(try CAM.GradCAM().readout(activations: a, gradients: g, classes: [0, 0]), activations: a)
        assertClose(hires, grad, 1e-6)
    }

    /// One channel, two positions: A = (1, 2), G = (0.5, −1), Σ A = 3.
    func testHandComputedWeightings() throws {
        let a = try Tensor(shape: [1, 1, 1, 2], floats: [1, 2])
        let g = try Tensor(shape: [1, 1, 1, 2], floats: [0.5, -1])
        func weights(_ m: any CAMWeighting) throws -> [Float] {
            guard case let .channelWeights(w) = try m.readout(activations: a, gradients: g, classes: [0]) else { return [] }
            return try w.floats()
        }
        func map(_ m: any CAMWeighting) throws -> [Float] {
            guard case let .map(t) = try m.readout(activations: a, gradients: g, classes: [0]) else { return [] }
            return try t.floats()
        }
        XCTAssertEqual(try weights(CAM.GradCAM())[0], -0.25, accuracy: 1e-7)
        // Grad-CAM++: α₁ = 0.25 / (2·0.25 + 3·0.125 + 1e-6), ReLU(G₂) = 0 drops position 2.
        XCTAssertEqual(Double(try weights(CAM.GradCAMPlusPlus())[0]), 0.5 * 0.25 / (0.875 + 1e-6), accuracy: 1e-7)
        XCTAssertEqual(Double(try weights(CAM.XGradCAM())[0]), (0.5 - 2) / (3 + 1e-7), accuracy: 1e-6)
        XCTAssertEqual(try map(CAM.HiResCAM()), [0.5, -2])
        XCTAssertEqual(try map(CAM.LayerCAM()), [0.5, 0])
        let cam = try CAM.camMap(weights: try Tensor(shape: [1, 1], floats: [-0.25]), activations: a)
        XCTAssertEqual(try cam.floats(), [0, 0], "ReLU of a negative map")
    }

    /// Rows (2,2), (−1,−1), (−1,−1) are already centred; the first principal axis is (1,1)/√2
    /// and the projection (2√2, −√2, −√2). The convention keeps the largest magnitude positive,
    /// so negating the activations gives the same map, and scaling them scales it.
    func testEigenCAMSignConvention() throws {
        // (B=1, C=2, h=1, w=3): channel-major.
        let a = try Tensor(shape: [1, 2, 1, 3], floats: [2, -1, -1, 2, -1, -1])
        let neg = try Tensor(shape: a.shape, floats: try a.floats().map { -$0 })
        let m = try CAM.rawMap(try CAM.EigenCAM().readout(activations: a, gradients: nil, classes: [0]), activations: a)
        let r = Float(2).squareRoot()
        XCTAssertEqual(try m.floats()[0], 2 * r, accuracy: 1e-6)
        XCTAssertEqual(try m.floats()[1], -r, accuracy: 1e-6)
        XCTAssertEqual(try m.floats()[2], -r, accuracy: 1e-6)
        let mn = try CAM.rawMap(try CAM.EigenCAM().readout(activations: neg, gradients: nil, classes: [0]), activations: neg)
        assertClose(mn, m, 1e-6, "Eigen-CAM(−A) = Eigen-CAM(A)")
        // An offset per channel is removed by the centring.
        let shifted = try Tensor(shape: a.shape, floats: try a.floats().enumerated().map { $0.element + ($0.offset < 3 ? 5 : -3) })
        let ms = try CAM.rawMap(try CAM.EigenCAM().readout(activations: shifted, gradients: nil, classes: [0]), activations: shifted)
        assertClose(ms, m, 1e-6, "centring")
    }

    /// More channels than positions takes the (h·w × h·w) Gram path; fewer takes (C × C). Both
    /// must agree with a power-iteration reference on the same data. 512 channels of 20 values
    /// is large enough for the channels to be split over threads (partial Grams summed); it gets
    /// a planted rank-one component so the reference's power iteration converges quickly.
    func testEigenBothGramPathsAgainstPowerIteration() throws {
        var rng = SplitMix64(seed: 7)
        for (c, hw) in [(7, 3), (3, 7), (512, 20)] {
            var vals = (0..<(c * hw)).map { _ in Float.random(in: -1...1, using: &rng) }
            if c > 64 {
                let u = (0..<hw).map { _ in Float.random(in: -1...1, using: &rng) }
                for ch in 0..<c {
                    let w = Float.random(in: -2...2, using: &rng)
                    for p in 0..<hw { vals[ch * hw + p] += w * u[p] }
                }
            }
            let a = try Tensor(shape: [1, c, 1, hw], floats: vals)
            let got = try CAM.rawMap(try CAM.EigenCAM().readout(activations: a, gradients: nil, classes: [0]), activations: a)
            // Reference: centred X (hw × c), power iteration on XᵀX.
            var x = [[Double]](repeating: [Double](repeating: 0, count: c), count: hw)
            for ch in 0..<c {
                let mean = (0..<hw).reduce(0.0) { $0 + Double(vals[ch * hw + $1]) } / Double(hw)
                for p in 0..<hw { x[p][ch] = Double(vals[ch * hw + p]) - mean }
            }
            var v = [Double](repeating: 1, count: c)
            for _ in 0..<5000 {
                var nv = [Double](repeating: 0, count: c)
                for p in 0..<hw {
                    let s = (0..<c).reduce(0.0) { $0 + x[p][$1] * v[$1] }
                    for ch in 0..<c { nv[ch] += x[p][ch] * s }
                }
                let norm = nv.reduce(0) { $0 + $1 * $1 }.squareRoot()
                let next = nv.map { $0 / norm }
                let moved = zip(next, v).reduce(0.0) { max($0, abs($1.0 - $1.1)) }
                v = next
                if moved < 1e-13 { break }
            }
            var proj = (0..<hw).map { p in (0..<c).reduce(0.0) { $0 + x[p][$1] * v[$1] } }
            if abs(proj.min()!) > abs(proj.max()!) { proj = proj.map { -$0 } }
            assertClose(got, try Tensor(shape: [1, 1, hw], floats: proj.map { Float($0) }), 1e-4, "C=\(c) hw=\(hw)")
        }
    }

    func testTokenGridDropsClassToken() throws {
        // (B=1, T=1+2·2, C=3); token t has values 10t + c.
        let t = try Tensor(shape: [1, 5, 3], floats: (0..<15).map { Float(10 * ($0 / 3) + $0 % 3) })
        let layout = try CAM.Layout.of(shape: t.shape, layer: "blk")
        XCTAssertEqual(layout, .tokens(height: 2, width: 2))
        let g = try CAM.grid(t, layout: layout)
        XCTAssertEqual(g.shape, [1, 3, 2, 2])
        XCTAssertEqual(try g.floats(), [10, 20, 30, 40, 11, 21, 31, 41, 12, 22, 32, 42])
        // 8 tokens: 7, 6 and 3 left after 1, 2 or 5 leading tokens, none a square.
        XCTAssertThrowsError(try CAM.Layout.of(shape: [1, 8, 3], layer: "blk.norm")) { e in
            XCTAssertEqual(e as? CAMError, .tokensNotSquare(layer: "blk.norm", tokens: 8))
            XCTAssertTrue("\(e)".contains("blk.norm"))
        }
    }

    /// DeiT's distilled models carry a distillation token after the class token (198 tokens at
    /// 224/16) and ViTs with registers four more (201): both leading groups are dropped, as the
    /// `reshape_transform` written for them (`t[:, 2:]`, `t[:, 5:]`) does.
    func testTokenGridDropsDistillationAndRegisterTokens() throws {
        for (prefix, tokens) in [(1, 197), (2, 198), (5, 201), (1, 50)] {
            let side = Int(Double(tokens - prefix).squareRoot())
            XCTAssertEqual(try CAM.Layout.of(shape: [2, tokens, 8], layer: "blk"), .tokens(height: side, width: side, prefix: prefix), "\(tokens) tokens")
            XCTAssertTrue(CAM.Layout.isSpatial([2, tokens, 8]))
        }
        // (B=1, T=2+2·2, C=2): token t holds 10t + c; the grid starts at token 2.
        let t = try Tensor(shape: [1, 6, 2], floats: (0..<12).map { Float(10 * ($0 / 2) + $0 % 2) })
        let layout = try CAM.Layout.of(shape: t.shape, layer: "blk")
        XCTAssertEqual(layout, .tokens(height: 2, width: 2, prefix: 2))
        XCTAssertEqual(try CAM.grid(t, layout: layout).floats(), [20, 30, 40, 50, 21, 31, 41, 51])
        XCTAssertFalse(CAM.Layout.isSpatial([1, 8, 3]))
    }

    func testNonSpatialLayerIsNamedWithSpatialSuggestions() throws {
        let (model, x) = try plainCNN()
        XCTAssertThrowsError(try CAM.explain(model: model, input: x, layer: "/Flatten_output_0", classes: [0, 0], method: .gradCAM)) { e in
            let s = "\(e)"
            XCTAssertTrue(s.contains("'/Flatten_output_0'") && s.contains("no spatial layer"), s)
            XCTAssertTrue(s.contains("'/relu2/Relu_output_0'"), s)
            XCTAssertTrue(s.contains("[2, 12]"), s)
        }
        XCTAssertThrowsError(try CAM.explain(model: model, input: x, layer: "/relu2/Relu_output", classes: [0, 0], method: .gradCAM)) { e in
            XCTAssertTrue("\(e)".contains("/relu2/Relu_output_0"), "\(e)")
        }
        XCTAssertThrowsError(try CAM.explain(model: model, input: x, layer: Self.layer, classes: [0, 9], method: .gradCAM)) { e in
            XCTAssertTrue("\(e)".contains("class 9"), "\(e)")
        }
        XCTAssertThrowsError(try CAM.explain(model: model, input: x, layer: Self.layer, classes: [0], method: .gradCAM))
    }

    /// Perturbation CAMs do not depend on how their forwards are batched (with the zero
    /// ablation that pytorch-grad-cam also uses after a ReLU).
    func testBatchSizeDoesNotChangePerturbationCAMs() throws {
        let (model, x) = try plainCNN()
        let s1 = try CAM.explain(model: model, input: x, layer: Self.layer, classes: [1, 3], method: .scoreCAM(batchSize: 1))
        let s7 = try CAM.explain(model: model, input: x, layer: Self.layer, classes: [1, 3], method: .scoreCAM(batchSize: 7))
        assertClose(try XCTUnwrap(s1.weights), try XCTUnwrap(s7.weights), 1e-6)
        let a1 = try CAM.explain(model: model, input: x, layer: Self.layer, classes: [1, 3], method: .ablationCAM(batchSize: 1))
        let a12 = try CAM.explain(model: model, input: x, layer: Self.layer, classes: [1, 3], method: .ablationCAM(batchSize: 12, ablation: .zero))
        assertClose(try XCTUnwrap(a1.weights), try XCTUnwrap(a12.weights), 1e-6)
        // Score-CAM weights are a softmax: each sample's sum to 1.
        let w = try XCTUnwrap(s1.weights).floats()
        XCTAssertEqual(w[0..<12].reduce(0, +), 1, accuracy: 1e-5)
        XCTAssertEqual(w[12..<24].reduce(0, +), 1, accuracy: 1e-5)
    }

    /// Reference values from cv2.resize (OpenCV 5.0, INTER_LINEAR) and
    /// torch.nn.UpsamplingBilinear2d for a 2×3 map resized to 4×5.
    func testBilinearResizeMatchesOpenCVAndTorch() throws {
        let m = try Tensor(shape: [1, 2, 3], floats: [0, 1, 4, 2, -1, 3])
        let cv: [Float] = [0, 0.4, 1, 2.8, 4, 0.5, 0.5, 0.5, 2.45, 3.75, 1.5, 0.7, -0.5, 1.75, 3.25, 2, 0.8, -1, 1.4, 3]
        let torch: [Float] = [0, 0.5, 1, 2.5, 4, 0.6666667, 0.5, 0.3333333, 2, 3.6666665,
                              1.3333334, 0.5, -0.33333337, 1.5, 3.3333333, 2, 0.5, -1, 1, 3]
        let a = try CAM.resizedBilinear(m, height: 4, width: 5, alignCorners: false).floats()
        let b = try CAM.resizedBilinear(m, height: 4, width: 5, alignCorners: true).floats()
        for i in 0..<20 {
            XCTAssertEqual(a[i], cv[i], accuracy: 1e-6, "cv2 \(i)")
            XCTAssertEqual(b[i], torch[i], accuracy: 1e-6, "torch \(i)")
        }
        let s = try CAM.minMaxScaled(m).floats()
        XCTAssertEqual(s[2], 5 / (5 + 1e-7), accuracy: 1e-7)
        XCTAssertEqual(s[4], 0)
        XCTAssertEqual(s[0], 1 / (5 + 1e-7), accuracy: 1e-7)
    }

    /// Images of ≥ 2¹⁴ pixels are blended and scaled in two row halves on two threads: the
    /// result must be bit for bit the four-tap formula (`top·(1 − fy) + bottom·fy` of the two
    /// x-interpolated rows), min-max scaled with the whole image's extrema, as pytorch-grad-cam.
    func testLargeScaledImageEqualsTheFourTapFormula() throws {
        var rng = SplitMix64(seed: 17)
        let (n, h, w, height, width) = (2, 7, 9, 224, 131)
        // The brightest rows at the bottom: the top half alone would give the wrong maximum.
        let raw = try Tensor(shape: [n, h, w], floats: (0..<(n * h * w)).map { i in
            Float.random(in: -1...2, using: &rng) + (i / w % h == h - 1 ? 4 : 0)
        })
        let got = try CAM.scaledLikePytorchGradCAM(raw, height: height, width: width).floats()
        let first = try CAM.minMaxScaled(try raw.unary(.relu)).floats()
        let ys = CAM.taps(from: h, to: height, alignCorners: false), xs = CAM.taps(from: w, to: width, alignCorners: false)
        for k in 0..<n {
            var img = [Float](repeating: 0, count: height * width)
            for oy in 0..<height {
                let (y0, y1, fy) = ys[oy]
                for ox in 0..<width {
                    let (x0, x1, fx) = xs[ox]
                    let p = { (y: Int, x: Int) in first[k * h * w + y * w + x] }
                    let top = p(y0, x0) * (1 - fx) + p(y0, x1) * fx, bottom = p(y1, x0) * (1 - fx) + p(y1, x1) * fx
                    img[oy * width + ox] = top * (1 - fy) + bottom * fy
                }
            }
            let lo = img.min()!, d = 1e-7 + (img.max()! - lo)
            let want = img.map { ($0 - lo) / d }
            XCTAssertEqual(Array(got[(k * height * width)..<((k + 1) * height * width)]).map(\.bitPattern), want.map(\.bitPattern), "map \(k)")
        }
    }
}

/// Seeded generator so random-input tests are reproducible (SplitMix64, Steele et al. 2014).
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Hooks are per call: after perturbation CAMs (which replace the layer) the model computes
/// exactly what it computed before.
final class CAMScopeTests: XCTestCase {
    func testNothingLeftBehindAfterPerturbationCAMs() throws {
        let model = try Model(graph: try ONNXModel.load(path: "\(CAMFixtureTests.dir)/residual_dw.onnx"))
        let x = try Tensor.readNPY(path: "\(CAMFixtureTests.dir)/residual_dw.input.npy")
        let before = try model.run(["input": x])["logits"]
        _ = try CAM.explain(model: model, input: x, layer: "/out_relu/Relu_output_0", classes: [0, 1], method: .ablationCAM(batchSize: 3))
        _ = try CAM.explain(model: model, input: x, layer: "/out_relu/Relu_output_0", classes: [0, 1], method: .scoreCAM(batchSize: 3))
        XCTAssertEqual(try model.run(["input": x])["logits"], before)
    }
}
