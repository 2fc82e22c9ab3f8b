import LoupeTensor

/// ONNX Sum, Mean, Max and Min: one or more operands with multidirectional broadcasting.
///
/// Max/Min propagate NaN and, in backward, split the cotangent evenly among tied inputs
/// (PyTorch's `maximum`/`minimum` rule). Sum/Mean pass it (scaled by 1/n for Mean) to each
/// operand, reduced to its shape.
struct VariadicOperator: Operator {
    enum Kind: String, Sendable { case sum = "Sum", mean = "Mean", max = "Max", min = "Min" }
    let kind: Kind
    let arity: Int
    let label: String

    init(_ kind: Kind, _ ctx: OperatorContext) throws {
        guard ctx.inputCount >= 1 else { throw GraphError.arity(node: ctx.label, expected: "at least 1 input", got: 0) }
        self.kind = kind
        arity = ctx.inputCount
        label = ctx.label
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let xs = try inputs.indices.map { try elementwiseOperand(inputs, $0, label) }
        var acc = xs[0]
        let op: BinaryOp
        switch kind {
        case .sum, .mean: op = .add
        case .max: op = .max
        case .min: op = .min
        }
        for x in xs.dropFirst() { acc = try Tensor.binary(op, acc, x, name: label) }
        if kind == .mean {
            // Broadcast even a single input so the output has the broadcast shape.
            acc = try Tensor.binary(.div, acc, Tensor(scalar: Float(xs.count)), name: label)
        }
        return [acc]
    }

    var backwardNeeds: BackwardNeeds {
        switch kind {
        case .sum, .mean: return .nothing
        case .max, .min: return BackwardNeeds(inputs: Array(0..<arity), outputs: [0])
        }
    }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        let n = ctx.inputShapes.count
        guard let g = elementwiseCotangent(ctx) else { return Array(repeating: nil, count: n) }
        switch kind {
        case .sum, .mean:
            let share = kind == .mean ? try g / Tensor(scalar: Float(n)) : g
            return try (0..<n).map { i in gradientWanted(ctx, i) ? try share.sumToShape(recordedShape(ctx, i, label), op: label) : nil }
        case .max, .min:
            let xs = try (0..<n).map { try ctx.input($0, label) }
            let grads = try extremumGradients(xs, output: try ctx.output(0, label), grad: g, label: label)
            return (0..<n).map { gradientWanted(ctx, $0) ? grads[$0] : nil }
        }
    }
}
