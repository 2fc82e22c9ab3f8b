import LoupeTensor

/// ONNX Einsum (opset 12): contraction of float32 operands by an `equation` attribute in
/// `numpy.einsum` notation (ellipsis, implicit output, repeated labels for diagonals). The VJP
/// of each operand is itself an einsum of the cotangent with the other operands; see
/// ``Tensor/einsumVJP(_:_:grad:index:name:)``.
struct EinsumOperator: Operator {
    let equation: String
    let arity: Int
    let label: String

    init(_ ctx: OperatorContext) throws {
        guard ctx.inputCount >= 1 else { throw GraphError.arity(node: ctx.label, expected: "at least 1 input", got: 0) }
        equation = try ctx.string("equation")
        arity = ctx.inputCount
        label = ctx.label
        // Validate the text now; ellipsis widths are resolved per call from the operand ranks.
        let terms = equation.components(separatedBy: "->")[0].components(separatedBy: ",")
        guard terms.count == arity else { throw ctx.bad("equation", "has \(terms.count) input terms for \(arity) inputs") }
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let xs = try (0..<arity).map { try elementwiseOperand(inputs, $0, label) }
        return [try Tensor.einsum(equation, xs, name: label)]
    }

    var backwardNeeds: BackwardNeeds { .allInputs(arity) }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        var out = [Tensor?](repeating: nil, count: ctx.inputShapes.count)
        guard let g = elementwiseCotangent(ctx) else { return out }
        let xs = try (0..<arity).map { try ctx.input($0, label) }
        let eq = try EinsumEquation(equation, ranks: xs.map(\.rank), op: label)
        for i in 0..<arity where gradientWanted(ctx, i) {
            out[i] = try Tensor.einsumVJP(eq, xs, grad: g, index: i, name: label)
        }
        return out
    }
}
