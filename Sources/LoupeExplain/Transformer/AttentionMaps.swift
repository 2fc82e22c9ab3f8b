import LoupeGraph
import LoupeTensor

/// Attention probabilities of a transformer, read from an ONNX graph: the outputs of the Softmax
/// nodes that turn query·key scores into weights, shape (B, heads, T, T), row i = how token i
/// attends to every token j (rows sum to 1).
public enum AttentionMaps {
    /// Softmax outputs that feed a MatMul (the `softmax(QKᵀ/√d)·V` pattern), in graph order.
    /// Their shapes are known only after a forward pass; ``capture(_:inputs:names:)`` keeps the
    /// ones that are (B, H, T, T).
    public static func candidates(in model: Model) -> [String] {
        let nodes = model.nodes
        var matmulInputs = Set<String>()
        for n in nodes where n.opType == "MatMul" { matmulInputs.formUnion(n.inputs) }
        let hookable = Set(model.hookableValues)
        return nodes.compactMap { n in
            guard n.opType == "Softmax", let out = n.outputs.first, matmulInputs.contains(out), hookable.contains(out) else { return nil }
            return out
        }
    }

    /// Runs one forward pass with capture hooks and returns the attention probabilities.
    ///
    /// - Parameters:
    ///   - names: the values to read, in layer order; nil finds them: every ``candidates(in:)``
    ///     value whose captured shape is (B, H, T, T).
    /// - Returns: the names used and one (B, H, T, T) tensor per layer, all of the same shape.
    /// - Throws: ``ExplainError`` naming the value whose shape is not (B, H, T, T), the shapes
    ///   that disagree, or a model without attention; `GraphError.unknownValue` for a typo.
    public static func capture(_ model: Model, inputs: [String: Tensor], names: [String]? = nil,
                               method: String = "AttentionMaps") throws -> (names: [String], maps: [Tensor]) {
        let wanted = names ?? candidates(in: model)
        guard !wanted.isEmpty else {
            throw ExplainError.unsupported(method: method, reason: "no Softmax node feeding a MatMul in the model: no attention probabilities to read (name them explicitly)")
        }
        var hooks = Hooks()
        for n in wanted { hooks.capture(try model.hook(n)) }
        let pass = try model.forward(inputs, hooks: hooks)
        var used: [String] = [], maps: [Tensor] = []
        for n in wanted {
            guard let t = pass.captured[n] else {
                throw ExplainError.unsupported(method: method, reason: "value '\(n)' was not captured")
            }
            let isAttention = t.rank == 4 && t.shape[2] == t.shape[3] && t.dtype == .float32
            if names != nil, !isAttention {
                throw ExplainError.invalidArgument(method: method, message: "value '\(n)' has shape \(t.shape); attention probabilities are (batch, heads, tokens, tokens)")
            }
            if isAttention { used.append(n); maps.append(t) }
        }
        guard let first = maps.first else {
            throw ExplainError.unsupported(method: method, reason: "none of the Softmax outputs feeding a MatMul (\(wanted.joined(separator: ", "))) is (batch, heads, tokens, tokens)")
        }
        for (n, t) in zip(used, maps) where t.shape != first.shape {
            throw ExplainError.invalidArgument(method: method, message: "attention '\(n)' has shape \(t.shape) but '\(used[0])' has \(first.shape); rollout needs every layer's (B, H, T, T) alike")
        }
        return (used, maps)
    }
}
