import LoupeTensor

/// An element-wise activation that the exporter spelled out as several nodes — SiLU as
/// `Sigmoid(x)` and `Mul(x, ·)`, the exact GELU as `Div(x, √2) → Erf → Add(·, 1) → Mul(x, ·) →
/// Mul(·, ½)` — whose vector-Jacobian product the backward pass takes in one step from x.
///
/// Step by step, the SiLU chain's VJP is two products for the Mul, the sigmoid's derivative and
/// a sum of x's two cotangents: four passes over the tensor and three fresh gradient buffers,
/// where `g·σ(x)(1 + x·σ(−x))` is one (the GELU chain: six passes against one). The chains are
/// the ones ``StepFusion`` runs as one pass forward; backward takes one only when every step in
/// it uses the exact gradient (``GradientRule``) and nothing observes a value inside it, so the
/// result is the same gradient, up to float rounding.
struct ActivationChain: Sendable, Equatable {
    enum Kind: Sendable, Equatable { case silu, gelu }
    /// Step indices in order; the last step's output is the activation's result.
    let steps: [Int]
    /// Slot of the activation's input x.
    let input: Int
    let kind: Kind

    /// The chains of a compiled model by their last step.
    static func chains(_ steps: [Model.Step], _ fusions: [StepFusion?]) -> [Int: ActivationChain] {
        var out: [Int: ActivationChain] = [:]
        for (i, f) in fusions.enumerated() {
            guard let f else { continue }
            let chain: ActivationChain
            switch f.kind {
            case .silu:
                chain = ActivationChain(steps: [i] + f.absorbed, input: steps[i].inputs[0], kind: .silu)
            case .gelu:
                chain = ActivationChain(steps: [i] + f.absorbed, input: steps[i].inputs[0], kind: .gelu)
            case .activationIntoProducer(.silu):
                // The Conv stays its own step backward; the chain is the Sigmoid and the Mul.
                guard let sigmoid = f.absorbed.first else { continue }
                chain = ActivationChain(steps: f.absorbed, input: steps[sigmoid].inputs[0], kind: .silu)
            case .activationIntoProducer, .scaleIntoConsumer, .biasIntoProducer:
                continue
            }
            guard chain.steps.count >= 2, chain.input >= 0, let last = chain.steps.last else { continue }
            out[last] = chain
        }
        return out
    }

    /// Whether the chain runs as one activation in a recorded pass and one VJP backward: every
    /// step takes the exact gradient (``GradientRule``) and no hook edits a value inside it.
    func runsAsOne(under rules: [any BackwardRule], in steps: [Model.Step], edited: (Int) -> Bool) -> Bool {
        self.steps.allSatisfy { rules[$0] is GradientRule } && !intermediates(in: steps).contains(where: edited)
    }

    /// Slots of the values made inside the chain (every step's output but the last).
    func intermediates(in steps: [Model.Step]) -> [Int] { self.steps.dropLast().map { steps[$0].outputs[0] } }

    /// `grad · f'(x)` of the whole chain.
    func vjp(input x: Tensor, grad: Tensor) throws -> Tensor {
        switch kind {
        case .silu: return try Tensor.siluVJP(input: x, grad: grad)
        case .gelu: return try Tensor.unaryVJP(.gelu(tanhApproximation: false), input: x, output: nil, grad: grad, name: "GELU")
        }
    }
}
