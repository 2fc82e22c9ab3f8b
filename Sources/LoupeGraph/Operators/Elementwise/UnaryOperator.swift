import LoupeTensor

/// Every one-input element-wise ONNX operator (Relu, Exp, Sigmoid, Gelu, ...), parameterised by
/// ``UnaryOp``; attributes are read by the factory in `OperatorTable+Elementwise.swift`.
/// Integer inputs are accepted where ONNX allows them (Neg, Abs, Sign, Relu); their outputs have
/// no gradient.
struct UnaryOperator: Operator {
    let op: UnaryOp
    let label: String

    init(_ op: UnaryOp, _ ctx: OperatorContext) throws {
        try ctx.expectInputs(1)
        self.op = op
        label = ctx.label
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        [try elementwiseOperand(inputs, 0, label).unary(op, name: label)]
    }

    var backwardNeeds: BackwardNeeds {
        if op.hasZeroDerivative { return .nothing }
        return op.derivativeUsesOutput ? BackwardNeeds(outputs: [0]) : .allInputs(1)
    }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        guard gradientWanted(ctx, 0), let g = elementwiseCotangent(ctx) else { return [nil] }
        let x = ctx.inputs.first ?? nil, y = ctx.outputs.first ?? nil
        return [try Tensor.unaryVJP(op, input: x, output: y, grad: g, name: label)]
    }
}

extension UnaryOperator {
    /// ONNX Gelu (opset 20): `approximate` is "none" (exact erf form) or "tanh".
    static func gelu(_ ctx: OperatorContext) throws -> UnaryOperator {
        let mode = try ctx.string("approximate", default: "none")
        guard mode == "none" || mode == "tanh" else { throw ctx.bad("approximate", "must be \"none\" or \"tanh\", got \"\(mode)\"") }
        return try UnaryOperator(.gelu(tanhApproximation: mode == "tanh"), ctx)
    }
}
