import Foundation
import XCTest
import LoupeTensor
import LoupeGraph
import LoupeONNX
@testable import LoupeExplain

/// Identities every gradient method must satisfy, independent of Captum: IG completeness,
/// Input × Gradient = gradient ⊙ input, Saliency = |gradient|, batch-size invariance, and the
/// target and layer plumbing (top class, neurons, custom seeds, layer readout).
final class ExplainerIdentityTests: XCTestCase {
    let conv1 = "/conv1/Conv_output_0"

    /// The plain input gradient of `output[:, targets]` straight from the engine's ForwardPass.
    func gradient(_ c: GradientFixtures.Case, _ x: Tensor, seedAt value: String = "output", index: [Int], wrt: String = "input") throws -> Tensor {
        var hooks = Hooks()
        if value != "output" { hooks.capture(try c.model.hook(value)) }
        let pass = try c.model.forward(["input": x], hooks: hooks, recording: .gradient)
        let v = try pass.value(value)
        let n = v.rowSize
        var seed = [Float](repeating: 0, count: v.count)
        for (r, k) in index.enumerated() { seed[r * n + k] = 1 }
        return try XCTUnwrap(pass.backward(seeds: [value: try Tensor(shape: v.shape, floats: seed)], wrt: [wrt])[wrt])
    }

    func testSaliencyIsAbsoluteGradientAndInputXGradientIsProduct() throws {
        let c = try GradientFixtures.load("resnet_dw")
        let x = try c.array("input"), t = c.meta.targets
        let g = try gradient(c, x, index: t)
        let sal = try Saliency().explain(c.model, input: x, target: .indices(t))
        XCTAssertEqual(sal.attribution, try ExplainElementwise.map(g, "t") { abs($0) })
        XCTAssertEqual(sal.targets, t)
        let ixg = try InputXGradient().explain(c.model, input: x, target: .indices(t))
        XCTAssertEqual(ixg.attribution, try ExplainElementwise.combine(g, x, "t") { $0 * $1 })
    }

    func testIntegratedGradientsCompleteness() throws {
        let c = try GradientFixtures.load("cnn_bn")
        let x = try c.array("input"), b = try c.array("baseline")
        let y = try XCTUnwrap(c.model.run(["input": x])["output"]).floats(), yb = try XCTUnwrap(c.model.run(["input": b])["output"]).floats()
        let t = c.meta.targets
        var residuals: [[Double]] = []
        for steps in [4, 256] {
            let e = try IntegratedGradients(baseline: .tensor(b), steps: steps).explain(c.model, input: x, target: .indices(t))
            let a = e.attribution.doubles, n = a.count / 2
            let delta = try XCTUnwrap(e.convergenceDelta)
            var errors: [Double] = []
            for s in 0..<2 {
                let sum = a[(s * n)..<((s + 1) * n)].reduce(0, +)
                let diff = Double(y[s * 5 + t[s]] - yb[s * 5 + t[s]])
                // The reported delta is exactly the completeness residual.
                XCTAssertEqual(sum - diff, Double(delta[s]), accuracy: 1e-5 * max(1, abs(diff)))
                errors.append(abs(sum - diff) / max(abs(diff), 1e-6))
            }
            residuals.append(errors)
        }
        print("IG completeness residual |Σa − Δf| / |Δf| at 4 and 256 steps:", residuals)
        // Relu kinks make the integrand piecewise smooth, so convergence is algebraic, not
        // spectral; still, 256 points must leave well under 1 %.
        for s in 0..<2 { XCTAssertLessThan(residuals[1][s], 0.005, "relative completeness residual with 256 steps, sample \(s)") }
    }

    func testBatchSizeIsHonouredAndDoesNotChangeResults() throws {
        final class Box: @unchecked Sendable { var rows: [Int] = []; let lock = NSLock() }
        let c = try GradientFixtures.load("cnn_bn")
        let x = try c.array("input"), t = c.meta.targets
        let box = Box()
        // A custom target (output[:, 0] for every row) that records how many rows each forward saw.
        let custom = Target.custom { outputs in
            guard let y = outputs["output"] else { throw ExplainError.invalidArgument(method: "test", message: "no output") }
            box.lock.lock(); box.rows.append(y.shape[0]); box.lock.unlock()
            var seed = [Float](repeating: 0, count: y.count)
            for r in 0..<y.shape[0] { seed[r * 5] = 1 }
            return ["output": try Tensor(shape: y.shape, floats: seed)]
        }
        _ = try IntegratedGradients(steps: 5).explain(c.model, input: x, target: custom, options: ExplainOptions(batchSize: 3))
        // 10 rows for the path in chunks of ≤ 3, then 4 rows (inputs and baselines) for the delta.
        XCTAssertEqual(box.rows, [3, 3, 3, 1, 3, 1])

        // Progress: rows done after each chunk.
        let progress = Box()
        _ = try IntegratedGradients(steps: 5, computesDelta: false).explain(c.model, input: x, target: .indices(t), options: ExplainOptions(batchSize: 4, progress: { done, total in
            progress.lock.lock(); progress.rows.append(done * 100 + total); progress.lock.unlock()
        }))
        XCTAssertEqual(progress.rows, [410, 810, 1010])

        let whole = try IntegratedGradients(steps: 6, rule: .riemannTrapezoid).explain(c.model, input: x, target: .indices(t))
        let chunked = try IntegratedGradients(steps: 6, rule: .riemannTrapezoid).explain(c.model, input: x, target: .indices(t), options: ExplainOptions(batchSize: 1))
        assertGradientClose(chunked.attribution, whole.attribution, 1e-6, "IG with batchSize 1 vs all rows at once")
        let sg = NoiseTunnel(Saliency(), samples: 4, stdev: 0.2, seed: 7)
        assertGradientClose(try sg.explain(c.model, input: x, target: .indices(t), options: ExplainOptions(batchSize: 3)).attribution,
                    try sg.explain(c.model, input: x, target: .indices(t)).attribution, 1e-6, "SmoothGrad chunked")
    }

    func testTopTargetIsArgmaxOfTheUnexpandedInput() throws {
        let c = try GradientFixtures.load("vit_tiny")
        let x = try c.array("input")
        let y = try XCTUnwrap(c.model.run(["input": x])["output"]).floats()
        let top = (0..<2).map { s in (0..<3).max { y[s * 3 + $0] < y[s * 3 + $1] }! }
        let e = try IntegratedGradients(steps: 3).explain(c.model, input: x, target: .top)
        XCTAssertEqual(e.targets, top)
        XCTAssertEqual(e.attribution, try IntegratedGradients(steps: 3).explain(c.model, input: x, target: .indices(top)).attribution)
    }

    func testNeuronTargetAndLayerReadout() throws {
        let c = try GradientFixtures.load("cnn_bn")
        let x = try c.array("input")
        // A neuron inside the first conv's output.
        let neuron = try Saliency(absolute: false).explain(c.model, input: x, target: .neuron(conv1, index: 37))
        XCTAssertEqual(neuron.attribution, try gradient(c, x, seedAt: conv1, index: [37, 37]))
        // Layer attribution: gradient and activation × gradient at conv1.
        let layerGrad = try gradient(c, x, index: c.meta.targets, wrt: conv1)
        let sal = try Saliency(absolute: false).explain(c.model, input: x, target: .indices(c.meta.targets), options: ExplainOptions(layer: conv1))
        XCTAssertEqual(sal.layer, conv1)
        XCTAssertEqual(sal.attribution, layerGrad)
        var hooks = Hooks()
        hooks.capture(try c.model.hook(conv1))
        let act = try XCTUnwrap(c.model.forward(["input": x], hooks: hooks).captured[conv1])
        let gxa = try InputXGradient().explain(c.model, input: x, target: .indices(c.meta.targets), options: ExplainOptions(layer: conv1, batchSize: 1))
        XCTAssertEqual(gxa.attribution, try ExplainElementwise.combine(layerGrad, act, "t") { $0 * $1 })
    }

    func testGuidedRulesDoNotLeakIntoLaterCalls() throws {
        let c = try GradientFixtures.load("cnn_bn")
        let x = try c.array("input"), t = Target.indices(c.meta.targets)
        let before = try Saliency(absolute: false).explain(c.model, input: x, target: t).attribution
        let guided = try GuidedBackprop().explain(c.model, input: x, target: t).attribution
        XCTAssertGreaterThan(gradientRelativeError(guided, before), 0.1, "guided backprop must differ from the gradient on a Relu net")
        XCTAssertEqual(try Saliency(absolute: false).explain(c.model, input: x, target: t).attribution, before)
    }

    func testIntegrationRulePointsMatchCaptum() throws {
        // numpy.polynomial.legendre.leggauss(3): nodes ±√(3/5), 0; weights 5/9, 8/9, 5/9.
        let (a, w) = try IntegrationRule.gaussLegendre.points(3)
        let r = (3.0 / 5).squareRoot()
        for (got, want) in zip(a, [0.5 * (1 - r), 0.5, 0.5 * (1 + r)]) { XCTAssertEqual(got, want, accuracy: 1e-15) }
        for (got, want) in zip(w, [5.0 / 18, 8.0 / 18, 5.0 / 18]) { XCTAssertEqual(got, want, accuracy: 1e-15) }
        // 20 points integrate t^39 exactly.
        let (a20, w20) = try IntegrationRule.gaussLegendre.points(20)
        XCTAssertEqual(zip(a20, w20).reduce(0) { $0 + $1.1 * pow($1.0, 39) }, 1.0 / 40, accuracy: 1e-14)
        XCTAssertEqual(try IntegrationRule.riemannTrapezoid.points(5).alphas, [0, 0.25, 0.5, 0.75, 1])
        XCTAssertEqual(try IntegrationRule.riemannTrapezoid.points(5).weights, [0.1, 0.2, 0.2, 0.2, 0.1])
        XCTAssertEqual(try IntegrationRule.riemannLeft.points(4).alphas, [0, 0.25, 0.5, 0.75])
        XCTAssertEqual(try IntegrationRule.riemannMiddle.points(2).alphas, [0.25, 0.75])
        XCTAssertEqual(try IntegrationRule.riemannRight.points(4).alphas, [0.25, 0.5, 0.75, 1])
        XCTAssertThrowsError(try IntegrationRule.riemannLeft.points(1))
    }

    func testErrorsNameTheProblem() throws {
        let c = try GradientFixtures.load("cnn_bn")
        let x = try c.array("input")
        func message(_ body: () throws -> Any) -> String {
            do { _ = try body(); return "" } catch { return "\(error)" }
        }
        XCTAssertTrue(message { try Saliency().explain(c.model, input: x, target: .index(9)) }.contains("target index 9"))
        XCTAssertTrue(message { try Saliency().explain(c.model, input: x, target: .indices([1])) }.contains("1 target indices for a batch of 2"))
        XCTAssertTrue(message { try Saliency().explain(c.model, input: x, target: .index(0), options: ExplainOptions(batchSize: 0)) }.contains("batchSize"))
        XCTAssertTrue(message { try NoiseTunnel(Saliency(), samples: 2, noise: x).explain(c.model, input: x, target: .index(0)) }.contains("noise of shape"))
        XCTAssertTrue(message { try IntegratedGradients(baseline: .tensor(Tensor(zeros: [3, 3])), steps: 2).explain(c.model, input: x, target: .index(0)) }.contains("baseline of shape"))
        XCTAssertTrue(message { try Saliency().explain(c.model, input: x, target: .neuron("/conv9/Conv_output_0", index: 0)) }.contains("conv9"))
    }
}

/// A method that cannot run says which node stops it.
final class ExplainerFailureTests: XCTestCase {
    func testGradientThroughIntegerCastNamesTheNode() throws {
        let graph = Graph(
            nodes: [Node(name: "to_int", opType: "Cast", inputs: ["x"], outputs: ["i"], attributes: ["to": .int(7)]),
                    Node(name: "to_float", opType: "Cast", inputs: ["i"], outputs: ["y"], attributes: ["to": .int(1)])],
            inputs: [ValueInfo(name: "x", shape: [.symbolic("N"), .fixed(3)])],
            outputs: [ValueInfo(name: "y", shape: [.symbolic("N"), .fixed(3)])])
        let model = try Model(graph: graph)
        let x = try Tensor(shape: [2, 3], floats: [0.5, 1.5, 2.5, -1, 0, 1])
        for explainer in [Saliency() as any Explainer, IntegratedGradients(steps: 2), NoiseTunnel(Saliency(), samples: 2, stdev: 0.1)] {
            XCTAssertThrowsError(try explainer.explain(model, input: x, target: .index(1))) { error in
                XCTAssertTrue("\(error)".contains("to_int"), "\(explainer.methodName): \(error)")
            }
        }
    }
}

/// The target spellings agree: an index list, a named output, a per-sample element list and a
/// custom seed function all explain the same logits.
final class TargetTests: XCTestCase {
    func testTargetSpellingsAgree() throws {
        let c = try GradientFixtures.load("resnet_dw")
        let x = try c.array("input"), t = c.meta.targets
        let ig = IntegratedGradients(steps: 3, rule: .riemannMiddle)
        let reference = try ig.explain(c.model, input: x, target: .indices(t))
        let custom = Target.custom { outputs in
            guard let y = outputs["output"] else { throw ExplainError.invalidArgument(method: "test", message: "no output") }
            // IG rows are step-major: row r is sample r % 2.
            var seed = [Float](repeating: 0, count: y.count)
            for r in 0..<y.shape[0] { seed[r * 4 + t[r % 2]] = 1 }
            return ["output": try Tensor(shape: y.shape, floats: seed)]
        }
        for target in [Target.elements("output", indices: t), custom] {
            let e = try ig.explain(c.model, input: x, target: target)
            XCTAssertEqual(e.attribution, reference.attribution)
            // The custom target's delta uses ⟨seed, output⟩, which is the logit for a one-hot seed.
            let d = try XCTUnwrap(e.convergenceDelta), want = try XCTUnwrap(reference.convergenceDelta)
            for s in 0..<2 { XCTAssertEqual(d[s], want[s], accuracy: 1e-6) }
        }
        let same = try Saliency().explain(c.model, input: x, target: .output("output", index: 1))
        XCTAssertEqual(same.attribution, try Saliency().explain(c.model, input: x, target: .logit(1)).attribution)
        XCTAssertEqual(same.targets, [1, 1])
        XCTAssertThrowsError(try Saliency().explain(c.model, input: x, target: .output("logits", index: 1))) { error in
            XCTAssertTrue("\(error)".contains("no output 'logits'"))
        }
    }
}

final class ReadoutAndConcurrencyTests: XCTestCase {
    func testLayerReadoutIsActivationAndLayerGradient() throws {
        let c = try GradientFixtures.load("vit_tiny")
        let x = try c.array("input"), t = Target.indices(c.meta.targets)
        let r = try ModifiedBackward().readout(c.model, inputs: ["input": x], target: t, layer: c.meta.layer, options: ExplainOptions(batchSize: 1))
        assertGradientClose(r.gradients, try c.array("layer_gradient"), 1e-4, "readout gradient")
        let gxa = try ExplainElementwise.combine(r.gradients, r.activations, "t") { $0 * $1 }
        assertGradientClose(gxa, try c.array("layer_gradient_x_activation"), 1e-4, "readout gradient x activation")
        XCTAssertEqual(r.targets, c.meta.targets)
        let y = try XCTUnwrap(c.model.run(["input": x])["output"]).floats()
        for s in 0..<2 { XCTAssertEqual(r.scores[s], y[s * 3 + c.meta.targets[s]], accuracy: 1e-6) }
    }

    func testExpectedGradientsHasNoNoiseAndIsReproducible() throws {
        let c = try GradientFixtures.load("cnn_bn")
        let x = try c.array("input"), refs = try c.array("gs_baselines")
        let eg = GradientShap.expectedGradients(baselines: refs, samples: 4, seed: 3)
        let a = try eg.explain(c.model, input: x, target: .top).attribution
        // The same seed gives the same draws whatever the batch size.
        assertGradientClose(try eg.explain(c.model, input: x, target: .top, options: ExplainOptions(batchSize: 3)).attribution, a, 1e-6, "EG chunked")
        XCTAssertEqual(eg.stdev, 0)
        // Expected Gradients is GradientShap with zero noise.
        var rng = ExplainRNG(seed: 3)
        let idx = (0..<8).map { _ in rng.index(3) }, alphas = (0..<8).map { _ in Float(rng.uniform()) }
        let explicit = GradientShap(baselines: refs, samples: 4, baselineIndices: idx, alphas: alphas, noise: Tensor(zeros: [8, 3, 12, 12]))
        assertGradientClose(try explicit.explain(c.model, input: x, target: .top).attribution, a, 1e-6, "EG = GradientShap with zero noise")
    }

    /// One model and one explainer value shared by several threads give the same answers.
    func testConcurrentExplanationsOnOneModel() throws {
        let c = try GradientFixtures.load("resnet_dw")
        let x = try c.array("input"), t = Target.indices(c.meta.targets)
        let ig = IntegratedGradients(steps: 4)
        let want = try ig.explain(c.model, input: x, target: t).attribution
        final class Results: @unchecked Sendable { var items = [Tensor?](repeating: nil, count: 4); let lock = NSLock() }
        let results = Results()
        let model = c.model
        DispatchQueue.concurrentPerform(iterations: 4) { i in
            let a = try? (i % 2 == 0 ? ig : IntegratedGradients(steps: 4)).explain(model, input: x, target: t, options: ExplainOptions(batchSize: 1 + i)).attribution
            results.lock.lock(); results.items[i] = a; results.lock.unlock()
        }
        for a in results.items { assertGradientClose(try XCTUnwrap(a), want, 1e-6, "concurrent IG") }
    }
}

/// Models exported without a dynamic batch axis (the torch.onnx.export default) declare batch 1:
/// expanded methods then run one row per forward by themselves.
final class FixedBatchTests: XCTestCase {
    func testPathAndNoiseMethodsRunOnAFixedBatchOfOne() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/models").path
        let model = try Model(graph: try ONNXModel.load(path: "\(dir)/tiny_cnn.onnx"))
        let x = try Tensor.readNPY(path: "\(dir)/tiny_cnn.input.npy")
        XCTAssertEqual(x.shape[0], 1)
        // IG with the zero baseline by hand: Σ_k w_k ∇f(α_k x) ⊙ x from single-row gradients.
        let rule = IntegrationRule.riemannTrapezoid
        let (alphas, weights) = try rule.points(3)
        var want = [Float](repeating: 0, count: x.count)
        let xs = try x.floats()
        for (a, w) in zip(alphas, weights) {
            let scaled = try Tensor(shape: x.shape, floats: xs.map { Float(a) * $0 })
            let g = try Saliency(absolute: false).explain(model, input: scaled, target: .index(2)).attribution.floats()
            for i in 0..<want.count { want[i] += Float(w) * g[i] }
        }
        for i in 0..<want.count { want[i] *= xs[i] }
        let ig = try IntegratedGradients(steps: 3, rule: rule).explain(model, input: x, target: .index(2))
        assertGradientClose(ig.attribution, try Tensor(shape: x.shape, floats: want), 1e-5, "IG on a fixed-batch model")
        XCTAssertNotNil(ig.convergenceDelta)
        _ = try NoiseTunnel(Saliency(), samples: 3, stdev: 0.1).explain(model, input: x, target: .top, options: ExplainOptions(batchSize: 8))
        // DeepLIFT pairs x with x' across two passes instead of one batch: summation-to-delta.
        let dl = try DeepLift().explain(model, input: x, target: .index(2))
        for d in try XCTUnwrap(dl.convergenceDelta) { XCTAssertLessThan(abs(d), 1e-5, "DeepLift on a fixed batch of 1") }
        XCTAssertGreaterThan(dl.attribution.doubles.reduce(0) { $0 + abs($1) }, 0)
    }
}
