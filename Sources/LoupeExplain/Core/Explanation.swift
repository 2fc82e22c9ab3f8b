import LoupeTensor

/// The result of one explainer call.
public struct Explanation: Sendable {
    /// Attribution with the shape of the explained input (`[batch, ...]`), or of the layer
    /// value when `layer` is set.
    public var attribution: Tensor
    /// Method name as in the docs (`"IntegratedGradients"`, `"NoiseTunnel(smoothgrad, Saliency)"`).
    public var method: String
    /// The method's parameters, printable (steps, integration rule, stdev, samples...).
    public var parameters: [String: String]
    /// The explained input's name.
    public var input: String
    /// The hook name whose value was attributed, nil for the input.
    public var layer: String?
    /// The explained element per sample (flat index in the target value), nil for a custom target.
    public var targets: [Int]?
    /// Integrated Gradients' convergence delta per sample:
    /// `Σ attribution − (f(x) − f(baseline))` (Captum's `return_convergence_delta`). Under
    /// ``NoiseTunnel``: one per noisy copy, `batch × samples`, sample-major, as Captum returns it.
    public var convergenceDelta: [Float]?

    public init(attribution: Tensor, method: String, parameters: [String: String] = [:], input: String,
                layer: String? = nil, targets: [Int]? = nil, convergenceDelta: [Float]? = nil) {
        self.attribution = attribution
        self.method = method
        self.parameters = parameters
        self.input = input
        self.layer = layer
        self.targets = targets
        self.convergenceDelta = convergenceDelta
    }
}
