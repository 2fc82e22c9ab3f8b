import LoupeGraph
import LoupeTensor

/// A layer's value and the target's gradient at it, per sample — what CAM methods weight
/// (Grad-CAM and relatives) and what layer attributions are built from.
public struct LayerReadout: Sendable {
    /// The layer's value, `[batch, ...]`.
    public var activations: Tensor
    /// `∂ target / ∂ layer` (under the engine's rules), same shape.
    public var gradients: Tensor
    /// The explained element per sample, nil for a custom target.
    public var targets: [Int]?
    /// The target's value per sample (`⟨seed, value⟩`, the logit for class targets).
    public var scores: [Float]
}

extension ModifiedBackward {
    /// Runs the input through forward and this engine's backward, ``ExplainOptions/batchSize``
    /// rows at a time, and reads the value and the gradient at `layer` (a hook name).
    /// The backward walk stops at the layer: only the nodes after it are visited.
    public func readout(_ model: Model, inputs: [String: Tensor], target: Target, layer: String,
                        options: ExplainOptions = ExplainOptions()) throws -> LayerReadout {
        let method = "LayerReadout"
        let setup = try ExplainSetup(model: model, inputs: inputs, options: options, method: method)
        let t = try target.resolve(model: model, feeds: inputs, batch: setup.batch, method: method)
        let r = try run(model, setup: setup, rows: setup.x, rowSample: Array(0..<setup.batch), target: t,
                        layer: layer, batchSize: options.batchSize, method: method)
        guard let a = r.activations else {
            throw ExplainError.unsupported(method: method, reason: "layer '\(layer)' was not kept")
        }
        return LayerReadout(activations: a, gradients: r.gradients, targets: t.perSample, scores: r.scores)
    }
}

extension GradientShap {
    /// Expected Gradients (Erion et al. 2021): GradientSHAP without input noise — the
    /// expectation over reference baselines and α ~ U(0, 1) of (x − x') ⊙ ∇f(x' + α(x − x')).
    public static func expectedGradients(baselines: Tensor, samples: Int = 5, seed: UInt64 = 0) -> GradientShap {
        GradientShap(baselines: baselines, samples: samples, stdev: 0, seed: seed)
    }
}
