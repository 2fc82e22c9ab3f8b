import LoupeTensor

/// ONNX Equal, Less, LessOrEqual, Greater, GreaterOrEqual (bool output, broadcasting).
struct CompareOperator: NonDifferentiableOperator {
    let op: CompareOp
    let label: String

    init(_ op: CompareOp, _ ctx: OperatorContext) throws {
        try ctx.expectInputs(2)
        self.op = op
        label = ctx.label
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        [try Tensor.compare(op, elementwiseOperand(inputs, 0, label), elementwiseOperand(inputs, 1, label), name: label)]
    }
}

/// ONNX And, Or, Xor on bool tensors (broadcasting).
struct LogicOperator: NonDifferentiableOperator {
    let op: LogicOp
    let label: String

    init(_ op: LogicOp, _ ctx: OperatorContext) throws {
        try ctx.expectInputs(2)
        self.op = op
        label = ctx.label
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        [try Tensor.logic(op, elementwiseOperand(inputs, 0, label), elementwiseOperand(inputs, 1, label), name: label)]
    }
}

/// ONNX Not, IsNaN and IsInf (`detect_positive`, `detect_negative`): one input, bool output.
struct PredicateOperator: NonDifferentiableOperator {
    enum Kind: Sendable { case not, isNaN, isInf(positive: Bool, negative: Bool) }
    let kind: Kind
    let label: String

    init(_ kind: Kind, _ ctx: OperatorContext) throws {
        try ctx.expectInputs(1)
        self.kind = kind
        label = ctx.label
    }

    static func isInf(_ ctx: OperatorContext) throws -> PredicateOperator {
        try PredicateOperator(.isInf(positive: try ctx.int("detect_positive", default: 1) != 0,
                                     negative: try ctx.int("detect_negative", default: 1) != 0), ctx)
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try elementwiseOperand(inputs, 0, label)
        switch kind {
        case .not: return [try x.logicalNot(op: label)]
        case .isNaN: return [try x.isNaNMask(op: label)]
        case let .isInf(p, n): return [try x.isInfMask(positive: p, negative: n, op: label)]
        }
    }
}

/// ONNX Where: `condition ? X : Y` with three-way broadcasting. Differentiable in X and Y: each
/// gets the cotangent where it was selected, reduced to its shape.
struct WhereOperator: Operator {
    let label: String

    init(_ ctx: OperatorContext) throws {
        try ctx.expectInputs(3)
        label = ctx.label
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        [try Tensor.select(elementwiseOperand(inputs, 0, label), elementwiseOperand(inputs, 1, label),
                           elementwiseOperand(inputs, 2, label), name: label)]
    }

    var backwardNeeds: BackwardNeeds { BackwardNeeds(inputs: [0]) }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        guard let g = elementwiseCotangent(ctx) else { return [nil, nil, nil] }
        let c = try ctx.input(0, label)
        let zero = Tensor(scalar: 0)
        let gx = gradientWanted(ctx, 1) ? try Tensor.select(c, g, zero, name: label).sumToShape(recordedShape(ctx, 1, label), op: label) : nil
        let gy = gradientWanted(ctx, 2) ? try Tensor.select(c, zero, g, name: label).sumToShape(recordedShape(ctx, 2, label), op: label) : nil
        return [nil, gx, gy]
    }
}
