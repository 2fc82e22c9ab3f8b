import LoupeGraph
import LoupeTensor

/// Guided backpropagation's Relu rule: `g_in = max(0, g_out ⊙ [y > 0])` — the exact Relu
/// gradient with negative values cut (Captum: `F.relu(grad_input)` in a backward hook).
public struct GuidedReluRule: BackwardRule {
    public init() {}
    public func extraNeeds(for node: Node) -> BackwardNeeds { BackwardNeeds(outputs: [0]) }
    public func backward(node: Node, op: any Operator, context: VJPContext) throws -> [Tensor?] {
        guard let g = context.gradOutputs.first ?? nil else { return [nil] }
        let y = try context.output(0, "GuidedRelu")
        return [try ExplainElementwise.combine(g, y, "GuidedRelu") { gv, yv in yv > 0 && gv > 0 ? gv : 0 }]
    }
}

/// DeconvNet's Relu rule: `g_in = max(0, g_out)`, ignoring the forward activation (Captum:
/// `F.relu(grad_output)` in a backward hook).
public struct DeconvReluRule: BackwardRule {
    public init() {}
    public func backward(node: Node, op: any Operator, context: VJPContext) throws -> [Tensor?] {
        guard let g = context.gradOutputs.first ?? nil else { return [nil] }
        return [try ExplainElementwise.map(g, "DeconvRelu") { max($0, 0) }]
    }
}
