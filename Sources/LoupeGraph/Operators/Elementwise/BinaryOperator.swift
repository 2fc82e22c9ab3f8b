import LoupeTensor

/// ONNX Add, Sub, Mul, Div, Pow and Mod: two operands with multidirectional broadcasting.
///
/// float32 and int64 (integer Div truncates toward zero; Mod follows the `fmod` attribute).
/// The VJP reduces each operand's gradient back to its shape (``Tensor/sumToShape(_:op:)``);
/// integer results have no gradient.
struct BinaryOperator: ActivationFusable {
    let op: BinaryOp
    let label: String

    init(_ op: BinaryOp, _ ctx: OperatorContext) throws {
        try ctx.expectInputs(2)
        label = ctx.label
        if op == .fmod || op == .mod {
            let f = try ctx.int("fmod", default: 0)
            guard f == 0 || f == 1 else { throw ctx.bad("fmod", "must be 0 or 1, got \(f)") }
            self.op = f == 1 ? .fmod : .mod
        } else {
            self.op = op
        }
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let a = try elementwiseOperand(inputs, 0, label), b = try elementwiseOperand(inputs, 1, label)
        return [try Tensor.binary(op, a, b, name: label)]
    }

    /// Add → Relu only: ReLU(a + b) is one pass over the operands (``Tensor/addReLU(_:_:name:)``)
    /// where the pair took two and an intermediate tensor.
    func fuses(_ activation: ConvActivation) -> Bool { op == .add && activation == .relu }

    func forwardFusing(_ inputs: [Tensor?], activation: ConvActivation) throws -> [Tensor] {
        guard fuses(activation) else { throw GraphError.invalid("\(label): \(op.onnxName) cannot take a fused activation") }
        let a = try elementwiseOperand(inputs, 0, label), b = try elementwiseOperand(inputs, 1, label)
        return [try Tensor.addReLU(a, b, name: label)]
    }

    var backwardNeeds: BackwardNeeds {
        switch op {
        case .add, .sub: return .nothing
        case .pow, .min, .max: return BackwardNeeds(inputs: [0, 1], outputs: [0])
        default: return .allInputs(2)
        }
    }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        guard let g = elementwiseCotangent(ctx) else { return [nil, nil] }
        let sa = try recordedShape(ctx, 0, label), sb = try recordedShape(ctx, 1, label)
        var ga: Tensor?, gb: Tensor?
        switch op {
        case .add:
            ga = g; gb = g
        case .sub:
            ga = g; gb = try g.unary(.neg)
        case .mul:
            let a = try ctx.input(0, label), b = try ctx.input(1, label)
            if gradientWanted(ctx, 0) { ga = try g * b }
            if gradientWanted(ctx, 1) { gb = try g * a }
        case .div:
            let a = try ctx.input(0, label), b = try ctx.input(1, label)
            let gOverB = try g / b
            ga = gOverB
            if gradientWanted(ctx, 1) { gb = try (gOverB * a / b).unary(.neg) }
        case .pow:
            let a = try ctx.input(0, label), bRaw = try ctx.input(1, label), y = try ctx.output(0, label)
            guard a.dtype == .float32 else { return [nil, nil] }
            let b = try bRaw.cast(to: .float32)
            if gradientWanted(ctx, 0) {
                // d/da aᵇ = b·aᵇ⁻¹ (computed directly so a = 0 with b ≥ 1 stays finite); PyTorch
                // defines it as 0 where b = 0, where 0·0⁻¹ would be NaN.
                let full = try g * b * Tensor.binary(.pow, a, b - Tensor(scalar: 1), name: label)
                ga = try Tensor.select(Tensor.compare(.equal, b, Tensor(scalar: 0)), Tensor(scalar: 0), full, name: label)
            }
            if gradientWanted(ctx, 1) && bRaw.dtype == .float32 {
                // d/db aᵇ = aᵇ·log a; PyTorch defines it as 0 where a = 0 and b ≥ 0.
                let full = try g * y * a.unary(.log)
                let zeroBase = try Tensor.logic(.and, Tensor.compare(.equal, a, Tensor(scalar: 0)),
                                                Tensor.compare(.greaterOrEqual, b, Tensor(scalar: 0)))
                gb = try Tensor.select(zeroBase, Tensor(scalar: 0), full, name: label)
            }
        case .min, .max:
            let a = try ctx.input(0, label), b = try ctx.input(1, label), y = try ctx.output(0, label)
            let grads = try extremumGradients([a, b], output: y, grad: g, label: label)
            ga = grads[0]; gb = grads[1]
        case .fmod, .mod:
            let a = try ctx.input(0, label), b = try ctx.input(1, label)
            ga = g
            if gradientWanted(ctx, 1) {
                // a mod b = a − b·q with q = trunc(a/b) (fmod) or floor(a/b); q is piecewise constant.
                let q = try (a / b).unary(op == .fmod ? .trunc : .floor)
                gb = try (g * q).unary(.neg)
            }
        }
        return [gradientWanted(ctx, 0) ? try ga?.sumToShape(sa, op: label) : nil,
                gradientWanted(ctx, 1) ? try gb?.sumToShape(sb, op: label) : nil]
    }
}

/// Gradients of `y = max/min(x₀, x₁, …)` (broadcast): each input gets the cotangent where it
/// equals the result, split evenly among the inputs that tie (PyTorch's `maximum` rule).
func extremumGradients(_ xs: [Tensor], output y: Tensor, grad g: Tensor, label: String) throws -> [Tensor] {
    let masks = try xs.map { try Tensor.compare(.equal, $0, y, name: label).cast(to: .float32).broadcast(to: y.shape, op: label) }
    var ties = masks[0]
    for m in masks.dropFirst() { ties = try ties + m }
    // Positions where no input equals y (NaN results) get nothing.
    let share = try Tensor.select(try Tensor.compare(.greater, ties, Tensor(scalar: 0)), g / ties, Tensor(scalar: 0), name: label)
    return try zip(xs, masks).map { x, m in try (share * m).sumToShape(x.shape, op: label) }
}
