import LoupeGraph
import LoupeTensor

/// Integrated Gradients (Sundararajan, Taly & Yan 2017, "Axiomatic Attribution for Deep
/// Networks"): `(x − x') ⊙ ∫₀¹ ∂f/∂x (x' + α (x − x')) dα`, the integral approximated by
/// ``IntegrationRule`` with `steps` points. Equals Captum `IntegratedGradients.attribute(
/// baselines:, n_steps:, method:)`.
///
/// Completeness: `Σ attribution ≈ f(x) − f(x')`; the residual is reported per sample in
/// ``Explanation/convergenceDelta`` (Captum's `return_convergence_delta`), which costs one more
/// plain forward of the inputs and baselines.
///
/// With ``ExplainOptions/layer``: layer Integrated Gradients (Captum `LayerIntegratedGradients`,
/// layer output): the path runs from the layer's value at the baseline to its value at the input,
/// each step replacing the layer's value in a forward of the input; attribution has the layer's
/// shape.
///
/// Rows: `steps × batch`, step-major like Captum; they run ``ExplainOptions/batchSize`` at a time.
public struct IntegratedGradients: Explainer {
    public var baseline: Baseline
    public var steps: Int
    public var rule: IntegrationRule
    /// Multiply the path-averaged gradient by `x − baseline` (true: IG; false: the bare
    /// integrated gradient, Captum's `multiply_by_inputs=False`).
    public var multipliesByInputs: Bool
    /// Compute ``Explanation/convergenceDelta``.
    public var computesDelta: Bool
    public var rules: RuleMap

    public init(baseline: Baseline = .zeros, steps: Int = 50, rule: IntegrationRule = .gaussLegendre,
                multipliesByInputs: Bool = true, computesDelta: Bool = true, rules: RuleMap = .gradient) {
        self.baseline = baseline
        self.steps = steps
        self.rule = rule
        self.multipliesByInputs = multipliesByInputs
        self.computesDelta = computesDelta
        self.rules = rules
    }

    public var methodName: String { "IntegratedGradients" }

    public func repeatingSamples(_ n: Int) throws -> IntegratedGradients {
        var c = self
        c.baseline = try baseline.repeatingSamples(n)
        return c
    }

    public func explain(_ model: Model, inputs: [String: Tensor], target: Target, options: ExplainOptions) throws -> Explanation {
        let method = methodName
        let setup = try ExplainSetup(model: model, inputs: inputs, options: options, method: method)
        let t = try target.resolve(model: model, feeds: inputs, batch: setup.batch, method: method)
        let inputX = setup.x, inputB = try baseline.resolve(like: inputX, method: method)
        // Layer IG (Captum's LayerIntegratedGradients): the path runs between the layer's values
        // at the baseline and at the input; each step replaces the layer's value.
        var x = inputX, b = inputB
        if let layer = options.layer {
            let ids = Array(0..<setup.batch)
            x = try ModifiedBackward.layerValues(model, setup: setup, rows: inputX, rowSample: ids, layer: layer, batchSize: options.batchSize, method: method)
            b = try ModifiedBackward.layerValues(model, setup: setup, rows: inputB, rowSample: ids, layer: layer, batchSize: options.batchSize, method: method)
        }
        let (alphas, weights) = try rule.points(steps)
        let B = setup.batch, n = x.rowSize
        let xs = try x.floats(method), bs = try b.floats(method)
        let diff = Tensor.makeFloats(shape: x.shape) { o in for i in 0..<o.count { o[i] = xs[i] - bs[i] } }
        let ds = try diff.floats(method)

        // Step-major rows: row k·B + s = x'_s + α_k (x_s − x'_s), built per chunk; each chunk's
        // gradients are folded into the weighted sum at once, so memory holds one chunk.
        let alphasF = alphas.map { Float($0) }, weightsF = weights.map { Float($0) }
        let rowShape = Array(x.shape.dropFirst())
        let rowSample = (0..<steps).flatMap { _ in Array(0..<B) }
        var total = [Float](repeating: 0, count: B * n)
        try ModifiedBackward(rules: rules).forEachChunk(
            model, setup: setup, rowSample: rowSample,
            rows: { range in
                Tensor.makeFloats(shape: [range.count] + rowShape) { o in
                    for (j, r) in range.enumerated() {
                        let a = alphasF[r / B], src = (r % B) * n, dst = j * n
                        for i in 0..<n { o[dst + i] = bs[src + i] + a * ds[src + i] }
                    }
                }
            },
            target: t, layer: options.layer, batchSize: options.batchSize, method: method,
            rowsReplaceLayer: options.layer != nil
        ) { range, grads, _, _ in
            try grads.withFloats(method) { g in
                total.withUnsafeMutableBufferPointer { acc in
                    for (j, r) in range.enumerated() {
                        let w = weightsF[r / B], dst = (r % B) * n, src = j * n
                        for i in 0..<n { acc[dst + i] += w * g[src + i] }
                    }
                }
            }
        }
        if multipliesByInputs { for i in 0..<total.count { total[i] *= ds[i] } }
        let attribution = try Tensor(shape: x.shape, floats: total)

        var delta: [Float]? = nil
        if computesDelta {
            let both = try Tensor.concatenated([inputX, inputB], axis: 0)
            let f = try ModifiedBackward.scores(model, setup: setup, rows: both, rowSample: Array(0..<B) + Array(0..<B),
                                                target: t, batchSize: options.batchSize, method: method)
            delta = (0..<B).map { s in
                var sum: Float = 0
                for i in (s * n)..<((s + 1) * n) { sum += total[i] }
                return sum - (f[s] - f[B + s])
            }
        }
        return Explanation(attribution: attribution, method: method,
                           parameters: ["steps": "\(steps)", "rule": rule.rawValue, "multipliesByInputs": "\(multipliesByInputs)"],
                           input: setup.inputName, layer: options.layer, targets: t.perSample, convergenceDelta: delta)
    }
}
