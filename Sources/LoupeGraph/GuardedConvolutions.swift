import LoupeTensor

/// A Conv whose output's sign decides a ReLU mask — Conv → Relu (fused), or Conv → Add(·, r) →
/// Relu, the residual block — and which a recorded pass may therefore run by Winograd under a
/// sign guard (``Kernels/conv2dGuarded(_:weight:bias:geometry:packed:activation:)``): the
/// pre-activations within Winograd's error bound of zero are recomputed exactly before the ReLU
/// reads them, so the masks are those of the exact convolution.
///
/// Any other consumer of a Conv's output in a recorded pass (a MaxPool's argmax, an LRP rule
/// reading the values) keeps the direct convolution.
struct GuardedConvolution: Sendable, Equatable {
    /// The Conv step.
    let conv: Int
    /// The Add between the Conv and the ReLU (nil: the ReLU reads the Conv's output).
    let add: Int?
    /// The Relu step.
    let relu: Int

    /// The patterns of a compiled model by Conv step: each value between the Conv and the ReLU
    /// read by that one next step only and not a graph output.
    static func find(_ steps: [Model.Step], _ fusions: [StepFusion?], outputs: [Int], slots: Int) -> [Int: GuardedConvolution] {
        var readers = [Int](repeating: 0, count: slots), reader = [Int](repeating: -1, count: slots)
        for (j, st) in steps.enumerated() {
            for s in Set(st.inputs) where s >= 0 {
                readers[s] += 1
                reader[s] = j
            }
        }
        let isOutput = Set(outputs)
        func onlyReader(of s: Int) -> Int? {
            s >= 0 && readers[s] == 1 && !isOutput.contains(s) ? reader[s] : nil
        }
        func isRelu(_ j: Int) -> Bool { (steps[j].op as? UnaryOperator)?.op == .relu }
        var found: [Int: GuardedConvolution] = [:]
        for (i, st) in steps.enumerated() where st.op is ConvOperator && st.outputs.count == 1 {
            if let f = fusions[i], f.kind == .activationIntoProducer(.relu) {
                found[i] = GuardedConvolution(conv: i, add: nil, relu: f.partner)
                continue
            }
            guard fusions[i] == nil, let j = onlyReader(of: st.outputs[0]), (steps[j].op as? BinaryOperator)?.op == .add,
                  steps[j].inputs.count == 2, steps[j].inputs[0] != steps[j].inputs[1], steps[j].outputs.count == 1,
                  let k = onlyReader(of: steps[j].outputs[0]), isRelu(k) else { continue }
            found[i] = GuardedConvolution(conv: i, add: j, relu: k)
        }
        return found
    }

    /// Whether this pass may guard the Conv: every step takes the exact gradient (rules reading
    /// values, like LRP's, see the direct convolution's), the Conv still runs fused with its ReLU
    /// (`fused`) when there is no Add, and no rule, capture or hook observes the Conv's output or
    /// edits the sum.
    func applies(under rules: [any BackwardRule], in steps: [Model.Step], fused: Bool,
                 observed: (Int) -> Bool, edited: (Int) -> Bool) -> Bool {
        guard rules[conv] is GradientRule, rules[relu] is GradientRule else { return false }
        guard let add else { return fused }
        return rules[add] is GradientRule && !observed(steps[conv].outputs[0]) && !edited(steps[add].outputs[0])
    }
}
