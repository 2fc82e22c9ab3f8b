import LoupeTensor

/// ONNX `Trilu` (opset 14): upper (`upper = 1`, default) or lower triangle of the last two axes,
/// shifted by the optional int64 `k` input. VJP: the cotangent masked the same way.
struct TriluOperator: Operator {
    let upper: Bool
    let label: String
    let backwardNeeds: BackwardNeeds

    init(_ ctx: OperatorContext) throws {
        try ctx.expectInputs(1, 2)
        upper = try ctx.int("upper", default: 1) != 0
        label = ctx.label
        backwardNeeds = BackwardNeeds(inputs: ctx.hasInput(1) ? [1] : [])
    }

    private func k(_ inputs: [Tensor?]) throws -> Int {
        guard inputs.count > 1, let t = inputs[1] else { return 0 }
        return try ShapeOps.intScalar(t, label, "k")
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        [try ShapeOps.input(inputs, 0, label, "input").trilu(upper: upper, k: k(inputs))]
    }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        guard let g = ctx.gradOutputs.first ?? nil else { return ShapeOps.firstOnly(nil, ctx) }
        return ShapeOps.firstOnly(try g.trilu(upper: upper, k: k(ctx.inputs)), ctx)
    }
}
