import LoupeGraph
import LoupeTensor

/// Saliency (Simonyan, Vedaldi & Zisserman 2014, "Deep Inside Convolutional Networks"):
/// `|∂f/∂x|` (or the signed gradient). Captum `Saliency.attribute(abs=True)` by default.
///
/// With ``ExplainOptions/layer`` set: the gradient at that layer (Captum's `LayerGradientXActivation`
/// without the activation factor).
public struct Saliency: Explainer {
    /// Absolute value of the gradient (Captum's default `abs=True`).
    public var absolute: Bool
    /// Backward rules; exact gradients by default.
    public var rules: RuleMap

    public init(absolute: Bool = true, rules: RuleMap = .gradient) {
        self.absolute = absolute
        self.rules = rules
    }

    public var methodName: String { "Saliency" }

    public func explain(_ model: Model, inputs: [String: Tensor], target: Target, options: ExplainOptions) throws -> Explanation {
        let (g, _, setup, t) = try GradientAtInput.run(model, inputs: inputs, target: target, options: options, rules: rules, method: methodName)
        let a = absolute ? try ExplainElementwise.map(g, methodName) { abs($0) } : g
        return Explanation(attribution: a, method: methodName, parameters: ["abs": "\(absolute)"],
                           input: setup.inputName, layer: options.layer, targets: t.perSample)
    }
}

/// Input × Gradient (Shrikumar et al. 2016): `x ⊙ ∂f/∂x`; at a layer, activation ⊙ gradient.
/// Captum `InputXGradient` / `LayerGradientXActivation`.
public struct InputXGradient: Explainer {
    public var rules: RuleMap
    public init(rules: RuleMap = .gradient) { self.rules = rules }
    public var methodName: String { "InputXGradient" }

    public func explain(_ model: Model, inputs: [String: Tensor], target: Target, options: ExplainOptions) throws -> Explanation {
        let (g, act, setup, t) = try GradientAtInput.run(model, inputs: inputs, target: target, options: options, rules: rules, method: methodName)
        let a = try ExplainElementwise.combine(g, act ?? setup.x, methodName) { $0 * $1 }
        return Explanation(attribution: a, method: methodName, input: setup.inputName, layer: options.layer, targets: t.perSample)
    }
}

/// The identity sampler: one row per sample, read out at the input or a layer.
enum GradientAtInput {
    static func run(_ model: Model, inputs: [String: Tensor], target: Target, options: ExplainOptions,
                    rules: RuleMap, method: String) throws -> (Tensor, Tensor?, ExplainSetup, ResolvedTarget) {
        let setup = try ExplainSetup(model: model, inputs: inputs, options: options, method: method)
        let t = try target.resolve(model: model, feeds: inputs, batch: setup.batch, method: method)
        let r = try ModifiedBackward(rules: rules).run(model, setup: setup, rows: setup.x, rowSample: Array(0..<setup.batch),
                                                       target: t, layer: options.layer, batchSize: options.batchSize, method: method)
        return (r.gradients, r.activations, setup, t)
    }
}
