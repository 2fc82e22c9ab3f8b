import LoupeTensor

/// Which of a node's inputs and outputs its backward rule reads. The executor keeps exactly
/// these (plus what hooks ask for) after the forward pass, so memory scales with what backward
/// needs rather than with the whole graph.
public struct BackwardNeeds: Sendable, Equatable {
    public var inputs: [Int]
    public var outputs: [Int]
    public init(inputs: [Int] = [], outputs: [Int] = []) {
        self.inputs = inputs
        self.outputs = outputs
    }
    public static let nothing = BackwardNeeds()
    /// All inputs (common for ops whose VJP needs the operands, e.g. Mul, Conv).
    public static func allInputs(_ n: Int) -> BackwardNeeds { BackwardNeeds(inputs: Array(0..<n)) }
}

/// What a backward rule sees for one node.
public struct VJPContext: Sendable {
    /// Inputs of the forward call. Entries listed in ``BackwardNeeds/inputs`` are present;
    /// others may be nil (freed). Omitted optional inputs are nil.
    public var inputs: [Tensor?]
    /// Input shapes (always known, even when the tensor itself was freed).
    public var inputShapes: [[Int]?]
    /// Outputs of the forward call; those in ``BackwardNeeds/outputs`` are present.
    public var outputs: [Tensor?]
    /// Cotangent of each output; nil means zero (the output does not reach the objective).
    public var gradOutputs: [Tensor?]
    /// Which inputs a gradient is wanted for; an operator may skip the others (return nil).
    public var wantInput: [Bool]
    /// In a paired backward (``ForwardPass/pairedBackward(reference:seeds:referenceSeeds:wrt:)``):
    /// the same step of the other pass; nil in a plain backward.
    public var partner: VJPPartner?

    public init(inputs: [Tensor?], inputShapes: [[Int]?], outputs: [Tensor?], gradOutputs: [Tensor?], wantInput: [Bool]) {
        self.inputs = inputs
        self.inputShapes = inputShapes
        self.outputs = outputs
        self.gradOutputs = gradOutputs
        self.wantInput = wantInput
    }

    /// Input `i`, or an error saying the operator needed it but it was not kept.
    public func input(_ i: Int, _ op: String) throws -> Tensor {
        guard i < inputs.count, let t = inputs[i] else {
            throw GraphError.invalid("\(op) backward: input \(i) was not recorded")
        }
        return t
    }

    /// Output `i`, or an error saying it was not kept.
    public func output(_ i: Int, _ op: String) throws -> Tensor {
        guard i < outputs.count, let t = outputs[i] else {
            throw GraphError.invalid("\(op) backward: output \(i) was not recorded")
        }
        return t
    }
}

/// The other pass's view of a step in a paired backward: DeepLIFT-style rules read the reference
/// values there (`Δ = input pass − reference pass`) instead of the second half of a batch.
public struct VJPPartner: Sendable {
    private let others: [VJPContext]
    /// The other pass's context at this step (its own ``VJPContext/partner`` is nil).
    public var context: VJPContext { others[0] }
    /// True when the context holding this partner is the reference pass's.
    public let selfIsReference: Bool

    public init(other: VJPContext, selfIsReference: Bool) {
        var o = other
        o.partner = nil
        others = [o]
        self.selfIsReference = selfIsReference
    }
}

/// A resolved, ready-to-run operator: attributes parsed and validated when the model loads, so
/// a bad attribute fails at load time with the node's name, not in the middle of a run.
///
/// Each operator carries its forward computation and its exact vector-Jacobian product (VJP).
/// The VJP is the default backward rule; other rules (LRP, guided backprop) replace it per node
/// through ``BackwardRule`` without touching operators.
public protocol Operator: Sendable {
    /// Computes the outputs. `inputs[i]` is nil for omitted optional inputs.
    func forward(_ inputs: [Tensor?]) throws -> [Tensor]

    /// Which inputs/outputs ``vjp(_:)`` reads.
    var backwardNeeds: BackwardNeeds { get }

    /// Cotangents of the inputs given cotangents of the outputs: for each input i,
    /// `sum_j gradOutputs[j] · ∂outputs[j]/∂inputs[i]`. Returns nil for inputs with no gradient
    /// (integer/shape inputs) or not wanted. Throws ``GraphError/notDifferentiable`` when a
    /// gradient is wanted through something that has none.
    func vjp(_ ctx: VJPContext) throws -> [Tensor?]
}

extension Operator {
    public var backwardNeeds: BackwardNeeds { .nothing }
}

/// Marker for operators whose outputs do not depend differentiably on their inputs (Shape,
/// comparisons, integer arithmetic). Backward passes zero through them without error.
public protocol NonDifferentiableOperator: Operator {}

extension NonDifferentiableOperator {
    public func vjp(_ ctx: VJPContext) throws -> [Tensor?] { Array(repeating: nil, count: ctx.inputs.count) }
}

/// An operator that can apply a following activation (Relu, HardSwish, SiLU) to its own output
/// in the same pass (Conv does it in the GEMM epilogue or per finished block, while the data is
/// in cache; Add does ReLU(a + b) in one vector pass, a residual block's Add → Relu). The
/// executor uses it when the activation is the sole reader of the output and nothing observes
/// the value before it.
protocol ActivationFusable: Operator {
    /// `forward(inputs)` followed by `activation` on output 0.
    func forwardFusing(_ inputs: [Tensor?], activation: ConvActivation) throws -> [Tensor]
    /// Whether fusing `activation` saves work here (the model compiles the fusion only then).
    func fuses(_ activation: ConvActivation) -> Bool
}

extension ActivationFusable {
    func fuses(_ activation: ConvActivation) -> Bool { true }
}
