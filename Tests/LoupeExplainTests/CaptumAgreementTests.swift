import XCTest
import LoupeTensor
import LoupeGraph
@testable import LoupeExplain

/// Every gradient-family method against Captum 0.9.0 on three exported models (a CNN with
/// BatchNorm, a residual net with a depthwise conv, a tiny ViT), each on a batch of 2 with a
/// different target per sample: max |Δ| ≤ 1e-4 × max |Captum's attribution|. Noise and sampling
/// draws are Captum's, saved by the generator.
final class CaptumAgreementTests: XCTestCase {
    func each(_ body: (GradientFixtures.Case, Tensor, Target, String) throws -> Void) throws {
        for name in GradientFixtures.models {
            let c = try GradientFixtures.load(name)
            try body(c, try c.array("input"), .indices(c.meta.targets), name)
        }
    }

    func testSaliency() throws {
        try each { c, x, t, name in
            assertGradientClose(try Saliency().explain(c.model, input: x, target: t).attribution, try c.array("saliency_abs"), 1e-4, "\(name) saliency abs")
            assertGradientClose(try Saliency(absolute: false).explain(c.model, input: x, target: t).attribution, try c.array("saliency_signed"), 1e-4, "\(name) saliency signed")
        }
    }

    func testInputXGradient() throws {
        try each { c, x, t, name in
            assertGradientClose(try InputXGradient().explain(c.model, input: x, target: t).attribution, try c.array("input_x_gradient"), 1e-4, "\(name) input x gradient")
        }
    }

    func testIntegratedGradientsEveryRule() throws {
        try each { c, x, t, name in
            let b = try c.array("baseline")
            for rule in IntegrationRule.allCases {
                let ig = IntegratedGradients(baseline: .tensor(b), steps: c.meta.ig_steps, rule: rule)
                let e = try ig.explain(c.model, input: x, target: t, options: ExplainOptions(batchSize: 3))
                assertGradientClose(e.attribution, try c.array("ig_\(rule.rawValue)"), 1e-4, "\(name) IG \(rule)")
                let want = try XCTUnwrap(c.meta.deltas["ig_\(rule.rawValue)"])
                let got = try XCTUnwrap(e.convergenceDelta)
                let scale = e.attribution.doubles.reduce(0) { $0 + abs($1) }
                for s in 0..<2 {
                    XCTAssertEqual(Double(got[s]), Double(want[s]), accuracy: 1e-4 * scale + 1e-5, "\(name) IG \(rule) delta \(s)")
                }
            }
            let e = try IntegratedGradients(steps: c.meta.ig_steps).explain(c.model, input: x, target: t)
            assertGradientClose(e.attribution, try c.array("ig_zero_baseline"), 1e-4, "\(name) IG zero baseline")
            // Blurred-input baseline: the blur equals scipy's, and IG from it equals Captum's.
            assertGradientClose(try Baseline.blurred(sigma: c.meta.blur_sigma).resolve(like: x, method: "test"), try c.array("blur_baseline"), 1e-6, "\(name) blurred baseline")
            let blur = try IntegratedGradients(baseline: .blurred(sigma: c.meta.blur_sigma), steps: c.meta.ig_steps).explain(c.model, input: x, target: t)
            assertGradientClose(blur.attribution, try c.array("ig_blur_baseline"), 1e-4, "\(name) IG blurred baseline")
        }
    }

    /// Layer attribution at one hook per model (a conv output, a Relu output, a LayerNorm output
    /// of the ViT): Captum LayerGradientXActivation (with and without the activation factor) and
    /// LayerIntegratedGradients.
    func testLayerAttribution() throws {
        try each { c, x, t, name in
            let layer = ExplainOptions(layer: c.meta.layer, batchSize: 4)
            assertGradientClose(try Saliency(absolute: false).explain(c.model, input: x, target: t, options: layer).attribution,
                        try c.array("layer_gradient"), 1e-4, "\(name) layer gradient")
            assertGradientClose(try InputXGradient().explain(c.model, input: x, target: t, options: layer).attribution,
                        try c.array("layer_gradient_x_activation"), 1e-4, "\(name) layer gradient x activation")
            let e = try IntegratedGradients(baseline: .tensor(try c.array("baseline")), steps: c.meta.ig_steps).explain(c.model, input: x, target: t, options: layer)
            assertGradientClose(e.attribution, try c.array("layer_ig"), 1e-4, "\(name) layer IG")
            let want = try XCTUnwrap(c.meta.deltas["layer_ig"]), got = try XCTUnwrap(e.convergenceDelta)
            let scale = e.attribution.doubles.reduce(0) { $0 + abs($1) }
            for s in 0..<2 { XCTAssertEqual(Double(got[s]), Double(want[s]), accuracy: 1e-4 * scale + 1e-5, "\(name) layer IG delta \(s)") }
        }
    }

    func testGuidedBackpropAndDeconvolution() throws {
        try each { c, x, t, name in
            assertGradientClose(try GuidedBackprop().explain(c.model, input: x, target: t).attribution, try c.array("guided_backprop"), 1e-4, "\(name) guided backprop")
            assertGradientClose(try Deconvolution().explain(c.model, input: x, target: t).attribution, try c.array("deconvolution"), 1e-4, "\(name) deconvolution")
        }
    }

    func testNoiseTunnel() throws {
        try each { c, x, t, name in
            let noise = try c.array("nt_noise")
            let S = c.meta.nt_samples
            let options = ExplainOptions(batchSize: 4)
            let sg = NoiseTunnel(Saliency(absolute: false), kind: .smoothGrad, samples: S, noise: noise)
            assertGradientClose(try sg.explain(c.model, input: x, target: t, options: options).attribution, try c.array("nt_smoothgrad_signed"), 1e-4, "\(name) smoothgrad")
            let sq = NoiseTunnel(Saliency(), kind: .smoothGradSquared, samples: S, noise: noise)
            assertGradientClose(try sq.explain(c.model, input: x, target: t, options: options).attribution, try c.array("nt_smoothgrad_sq"), 1e-4, "\(name) smoothgrad_sq")
            let vg = NoiseTunnel(Saliency(), kind: .varGrad, samples: S, noise: noise)
            // VarGrad is E[a²] − E[a]², a difference of float32 means: cancellation costs digits.
            assertGradientClose(try vg.explain(c.model, input: x, target: t, options: options).attribution, try c.array("nt_vargrad"), 1e-4, "\(name) vargrad")
            let ig = NoiseTunnel(IntegratedGradients(baseline: .tensor(try c.array("baseline")), steps: 4), kind: .smoothGrad, samples: S, noise: noise)
            let nt = try ig.explain(c.model, input: x, target: t, options: options)
            assertGradientClose(nt.attribution, try c.array("nt_ig_smoothgrad"), 1e-4, "\(name) smoothgrad over IG")
            let want = try XCTUnwrap(c.meta.deltas["nt_ig_smoothgrad"]), got = try XCTUnwrap(nt.convergenceDelta)
            XCTAssertEqual(got.count, want.count)
            let scale = nt.attribution.doubles.reduce(0) { $0 + abs($1) }
            for (g, w) in zip(got, want) { XCTAssertEqual(Double(g), Double(w), accuracy: 1e-4 * scale + 1e-5, "\(name) NoiseTunnel IG delta") }
        }
    }

    func testGradientShap() throws {
        try each { c, x, t, name in
            let idx = try c.array("gs_baseline_index").ints().map { Int($0) }
            let gs = GradientShap(baselines: try c.array("gs_baselines"), samples: c.meta.nt_samples, baselineIndices: idx,
                                  alphas: try c.array("gs_alphas").floats(), noise: try c.array("nt_noise"))
            assertGradientClose(try gs.explain(c.model, input: x, target: t, options: ExplainOptions(batchSize: 5)).attribution,
                        try c.array("gradient_shap"), 1e-4, "\(name) gradient shap")
            assertGradientClose(try gs.explain(c.model, input: x, target: t, options: ExplainOptions(layer: c.meta.layer, batchSize: 5)).attribution,
                        try c.array("layer_gradient_shap"), 1e-4, "\(name) layer gradient shap")
        }
    }
}

/// DeepLIFT (Rescale) against Captum on the two Relu nets (the ViT's nonlinearities are
/// functional in PyTorch, which Captum's DeepLift does not hook). Captum 0.9.0 drops its max-pool
/// rule after a ReLU module (see `DeepLift.MaxPoolRule`), so the comparison uses `.gradient`;
/// the default `.deepLift` rule is checked by summation-to-delta instead.
final class DeepLiftAgreementTests: XCTestCase {
    func testDeepLiftMatchesCaptum() throws {
        for name in ["cnn_bn", "resnet_dw"] {
            let c = try GradientFixtures.load(name)
            let x = try c.array("input"), b = try c.array("baseline")
            let want = try XCTUnwrap(c.meta.deltas["deeplift"])
            for batchSize in [nil, 2] as [Int?] {
                let e = try DeepLift(baseline: .tensor(b), maxPool: .gradient).explain(c.model, input: x, target: .indices(c.meta.targets), options: ExplainOptions(batchSize: batchSize))
                assertGradientClose(e.attribution, try c.array("deeplift"), 1e-4, "\(name) DeepLift, batchSize \(String(describing: batchSize))")
                let got = try XCTUnwrap(e.convergenceDelta)
                for s in 0..<2 { XCTAssertEqual(got[s], want[s], accuracy: 1e-5, "\(name) DeepLift delta \(s)") }
            }
            let layer = try DeepLift(baseline: .tensor(b), maxPool: .gradient).explain(c.model, input: x, target: .indices(c.meta.targets), options: ExplainOptions(layer: c.meta.layer, batchSize: 2))
            assertGradientClose(layer.attribution, try c.array("layer_deeplift"), 1e-4, "\(name) layer DeepLift")
            let wantLayer = try XCTUnwrap(c.meta.deltas["layer_deeplift"]), gotLayer = try XCTUnwrap(layer.convergenceDelta)
            for s in 0..<2 { XCTAssertEqual(gotLayer[s], wantLayer[s], accuracy: 1e-5, "\(name) layer DeepLift delta \(s)") }
            // The full rule set: Σ attribution = f(x) − f(x') to float32 rounding.
            let full = try DeepLift(baseline: .tensor(b)).explain(c.model, input: x, target: .indices(c.meta.targets))
            for d in try XCTUnwrap(full.convergenceDelta) { XCTAssertLessThan(abs(d), 1e-5, "\(name) DeepLift summation-to-delta") }
            // DeepLIFT differs from a two-point IG on a Relu net (the fixture discriminates).
            let ig = try IntegratedGradients(baseline: .tensor(b), steps: 2, rule: .riemannRight).explain(c.model, input: x, target: .indices(c.meta.targets))
            XCTAssertGreaterThan(gradientRelativeError(ig.attribution, try c.array("deeplift")), 1e-2)
        }
        // On the CNN the two MaxPool treatments differ, and Captum's delta shows its rule was lost.
        let c = try GradientFixtures.load("cnn_bn")
        let x = try c.array("input"), b = try c.array("baseline")
        let full = try DeepLift(baseline: .tensor(b)).explain(c.model, input: x, target: .indices(c.meta.targets))
        XCTAssertGreaterThan(gradientRelativeError(full.attribution, try c.array("deeplift")), 0.1)
        XCTAssertGreaterThan(abs(try XCTUnwrap(c.meta.deltas["deeplift"])[0]), 1e-3)
    }

    /// x and x' as two passes in lockstep (a paired backward) give the batch form's numbers:
    /// Captum's on the fixtures, and the batch form's own with DeepLIFT's max-pool rule.
    func testPairedPassesMatchTheBatchForm() throws {
        for name in ["cnn_bn", "resnet_dw"] {
            let c = try GradientFixtures.load(name)
            let x = try c.array("input"), b = try c.array("baseline"), t = Target.indices(c.meta.targets)
            var captumLike = DeepLift(baseline: .tensor(b), maxPool: .gradient)
            captumLike.pairsPasses = true
            let e = try captumLike.explain(c.model, input: x, target: t)
            assertGradientClose(e.attribution, try c.array("deeplift"), 1e-4, "\(name) paired DeepLift")
            let want = try XCTUnwrap(c.meta.deltas["deeplift"]), got = try XCTUnwrap(e.convergenceDelta)
            for s in 0..<2 { XCTAssertEqual(got[s], want[s], accuracy: 1e-5, "\(name) paired DeepLift delta \(s)") }
            let layer = try captumLike.explain(c.model, input: x, target: t, options: ExplainOptions(layer: c.meta.layer))
            assertGradientClose(layer.attribution, try c.array("layer_deeplift"), 1e-4, "\(name) paired layer DeepLift")

            var full = DeepLift(baseline: .tensor(b))
            let batchForm = try full.explain(c.model, input: x, target: t)
            full.pairsPasses = true
            let pairedForm = try full.explain(c.model, input: x, target: t, options: ExplainOptions(batchSize: 2))
            assertGradientClose(pairedForm.attribution, batchForm.attribution, 1e-6, "\(name) paired = batch form, max-pool rule")
            for d in try XCTUnwrap(pairedForm.convergenceDelta) { XCTAssertLessThan(abs(d), 1e-5, "\(name) paired summation-to-delta") }
        }
    }

    /// The same models declared with a fixed batch of 1 (what `torch.onnx.export` writes for a
    /// batch-1 example without dynamic axes) run DeepLIFT per sample, paired, equal to Captum.
    func testFixedBatchOfOneModelMatchesCaptum() throws {
        for name in ["cnn_bn", "resnet_dw"] {
            let c = try GradientFixtures.load(name)
            var graph = c.model.graph
            guard var dims = graph.inputs[0].shape, !dims.isEmpty else { return XCTFail("\(name): no input shape") }
            dims[0] = .fixed(1)
            graph.inputs[0].shape = dims
            let fixed = try Model(graph: graph)
            let x = try c.array("input"), b = try c.array("baseline")
            let e = try DeepLift(baseline: .tensor(b), maxPool: .gradient).explain(fixed, input: x, target: .indices(c.meta.targets))
            assertGradientClose(e.attribution, try c.array("deeplift"), 1e-4, "\(name) DeepLift on a fixed batch of 1")
            let want = try XCTUnwrap(c.meta.deltas["deeplift"]), got = try XCTUnwrap(e.convergenceDelta)
            for s in 0..<2 { XCTAssertEqual(got[s], want[s], accuracy: 1e-5, "\(name) fixed-batch DeepLift delta \(s)") }
        }
    }
}
