import LoupeGraph
import LoupeTensor

/// Guided backpropagation (Springenberg et al. 2015, "Striving for Simplicity"): the gradient
/// with every Relu's backward replaced by ``GuidedReluRule`` — only positive gradients pass, and
/// only where the forward input was positive. Captum `GuidedBackprop` (which hooks `nn.ReLU`
/// modules; a Relu node in ONNX is the same thing).
public struct GuidedBackprop: Explainer {
    public init() {}
    public var methodName: String { "GuidedBackprop" }
    public func explain(_ model: Model, inputs: [String: Tensor], target: Target, options: ExplainOptions) throws -> Explanation {
        var e = try Saliency(absolute: false, rules: .byOpType(["Relu": GuidedReluRule()])).explain(model, inputs: inputs, target: target, options: options)
        e.method = methodName
        e.parameters = [:]
        return e
    }
}

/// DeconvNet (Zeiler & Fergus 2014, "Visualizing and Understanding Convolutional Networks"):
/// the gradient with every Relu's backward replaced by ``DeconvReluRule`` — the Relu applied to
/// the incoming gradient, ignoring the forward mask. Captum `Deconvolution`.
public struct Deconvolution: Explainer {
    public init() {}
    public var methodName: String { "Deconvolution" }
    public func explain(_ model: Model, inputs: [String: Tensor], target: Target, options: ExplainOptions) throws -> Explanation {
        var e = try Saliency(absolute: false, rules: .byOpType(["Relu": DeconvReluRule()])).explain(model, inputs: inputs, target: target, options: options)
        e.method = methodName
        e.parameters = [:]
        return e
    }
}
