import LoupeGraph
import LoupeTensor

/// GradientSHAP / Expected Gradients (Lundberg & Lee 2017; Erion et al. 2021): the expectation,
/// over baselines `x'` drawn from a reference set, noise `ε ~ N(0, stdev²)` and `α ~ U[0, 1]`, of
/// `(x + ε − x') ⊙ ∂f/∂x (x' + α (x + ε − x'))`. Equals Captum `GradientShap.attribute(baselines:,
/// n_samples:, stdevs:)`, which is SmoothGrad over "input-baseline × gradient" at one random point
/// per sample — including Captum's use of the noisy input in `x − x'`.
///
/// With ``ExplainOptions/layer``: Captum `LayerGradientShap` — the gradient at the layer for the
/// same input-space points, times `layer(x + ε) − layer(x')`.
///
/// The draws (baseline index and α per row, the noise) can be given explicitly, rows sample-major
/// (`batch × samples`), making the result exact; otherwise they come from `seed`.
public struct GradientShap: Explainer {
    /// Reference inputs, `[M, ...]` with the input's per-sample shape.
    public var baselines: Tensor
    public var samples: Int
    public var stdev: Float
    /// Explicit draws, each with `batch × samples` rows; nil draws them from `seed`.
    public var baselineIndices: [Int]?
    public var alphas: [Float]?
    public var noise: Tensor?
    public var seed: UInt64

    public init(baselines: Tensor, samples: Int = 5, stdev: Float = 0, baselineIndices: [Int]? = nil,
                alphas: [Float]? = nil, noise: Tensor? = nil, seed: UInt64 = 0) {
        self.baselines = baselines
        self.samples = samples
        self.stdev = stdev
        self.baselineIndices = baselineIndices
        self.alphas = alphas
        self.noise = noise
        self.seed = seed
    }

    public var methodName: String { "GradientShap" }

    public func explain(_ model: Model, inputs: [String: Tensor], target: Target, options: ExplainOptions) throws -> Explanation {
        let name = methodName
        let setup = try ExplainSetup(model: model, inputs: inputs, options: options, method: name)
        let B = setup.batch, S = samples, R = B * S
        guard S >= 1 else { throw ExplainError.invalidArgument(method: name, message: "samples must be at least 1, got \(S)") }
        let M = try baselines.rowCount(name)
        guard M >= 1, Array(baselines.shape.dropFirst()) == Array(setup.x.shape.dropFirst()) else {
            throw ExplainError.invalidArgument(method: name, message: "baselines of shape \(baselines.shape) for inputs of shape \(setup.x.shape); need [M, per-sample shape], M ≥ 1")
        }
        var rng = ExplainRNG(seed: seed)
        let idx = baselineIndices ?? (0..<R).map { _ in rng.index(M) }
        let al = alphas ?? (0..<R).map { _ in Float(rng.uniform()) }
        guard idx.count == R, al.count == R, idx.allSatisfy({ $0 >= 0 && $0 < M }) else {
            throw ExplainError.invalidArgument(method: name, message: "need \(R) baseline indices in 0..<\(M) and \(R) alphas (batch × samples)")
        }
        let eps = try noise ?? NoiseTunnel<Saliency>.draw(shape: [R] + setup.x.shape.dropFirst(), stdev: stdev, seed: seed &+ 1)
        guard eps.shape == [R] + setup.x.shape.dropFirst() else {
            throw ExplainError.invalidArgument(method: name, message: "noise of shape \(eps.shape); expected \([R] + setup.x.shape.dropFirst())")
        }
        let inner = InputBaselineXGradient(baselines: try baselines.gatheringRows(idx), alphas: al)
        var e = try NoiseTunnel(inner, kind: .smoothGrad, samples: S, noise: eps).explain(model, inputs: inputs, target: target, options: options)
        e.method = name
        e.parameters = ["samples": "\(S)", "stdev": noise == nil ? "\(stdev)" : "explicit noise", "baselines": "\(M)"]
        return e
    }
}

/// `(x − x'_r) ⊙ ∂f/∂x (α_r x + (1 − α_r) x'_r)` with one baseline row and one α per input row:
/// Captum's `InputBaselineXGradient`, the inner step of ``GradientShap``.
struct InputBaselineXGradient: Explainer {
    var baselines: Tensor
    var alphas: [Float]
    var methodName: String { "InputBaselineXGradient" }

    func explain(_ model: Model, inputs: [String: Tensor], target: Target, options: ExplainOptions) throws -> Explanation {
        let setup = try ExplainSetup(model: model, inputs: inputs, options: options, method: methodName)
        guard baselines.shape == setup.x.shape, alphas.count == setup.batch else {
            throw ExplainError.invalidArgument(method: methodName, message: "baselines \(baselines.shape) and \(alphas.count) alphas for inputs \(setup.x.shape)")
        }
        let t = try target.resolve(model: model, feeds: inputs, batch: setup.batch, method: methodName)
        let n = setup.x.rowSize
        let xs = try setup.x.floats(methodName), bs = try baselines.floats(methodName)
        let rows = Tensor.makeFloats(shape: setup.x.shape) { o in
            for r in 0..<setup.batch {
                let a = alphas[r]
                for i in (r * n)..<((r + 1) * n) { o[i] = a * xs[i] + (1 - a) * bs[i] }
            }
        }
        let ids = Array(0..<setup.batch)
        let g = try ModifiedBackward().run(model, setup: setup, rows: rows, rowSample: ids, target: t,
                                           layer: options.layer, batchSize: options.batchSize, method: methodName).gradients
        // x − x' in the attributed space: the input, or the layer's values at x and at x'.
        var diff = try ExplainElementwise.combine(setup.x, baselines, methodName) { $0 - $1 }
        if let layer = options.layer {
            let lx = try ModifiedBackward.layerValues(model, setup: setup, rows: setup.x, rowSample: ids, layer: layer, batchSize: options.batchSize, method: methodName)
            let lb = try ModifiedBackward.layerValues(model, setup: setup, rows: baselines, rowSample: ids, layer: layer, batchSize: options.batchSize, method: methodName)
            diff = try ExplainElementwise.combine(lx, lb, methodName) { $0 - $1 }
        }
        let a = try ExplainElementwise.combine(diff, g, methodName) { $0 * $1 }
        return Explanation(attribution: a, method: methodName, input: setup.inputName, layer: options.layer, targets: t.perSample)
    }
}
