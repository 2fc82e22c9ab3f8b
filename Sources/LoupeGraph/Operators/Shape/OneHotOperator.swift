import LoupeTensor

/// ONNX `OneHot`: inputs indices, depth (one-element, any numeric type), values `[off, on]`;
/// `axis` (default −1) is where the depth axis goes. VJP: only `values` has a gradient (Σg off
/// the hot positions, Σg on them).
struct OneHotOperator: Operator {
    let axis: Int
    let label: String
    var backwardNeeds: BackwardNeeds { BackwardNeeds(inputs: [0, 1]) }

    init(_ ctx: OperatorContext) throws {
        try ctx.expectInputs(3)
        axis = try ctx.int("axis", default: -1)
        label = ctx.label
    }

    private func depth(_ t: Tensor) throws -> Int {
        guard t.count == 1 else { throw TensorError.shapeMismatch(op: label, expected: "a one-element depth", got: [t.shape]) }
        let d = t.doubles[0]
        guard d.isFinite, d >= 0, d < Double(1 << 31) else {
            throw TensorError.invalidArgument(op: label, message: "depth \(d) must be a non-negative integer")
        }
        return Int(d)
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let indices = try ShapeOps.input(inputs, 0, label, "indices")
        let d = try depth(ShapeOps.input(inputs, 1, label, "depth"))
        return [try indices.oneHot(depth: d, values: ShapeOps.input(inputs, 2, label, "values"), axis: axis)]
    }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        var out = [Tensor?](repeating: nil, count: ctx.inputs.count)
        guard let g = ctx.gradOutputs.first ?? nil, g.dtype == .float32, out.count > 2,
              ctx.wantInput.count > 2 ? ctx.wantInput[2] : true else { return out }
        out[2] = try Tensor.oneHotValuesGradient(g, indices: ctx.input(0, label), depth: depth(ctx.input(1, label)), axis: axis,
                                                 valuesShape: ShapeOps.inputShape(ctx, 2, label))
        return out
    }
}

/// ONNX `NonZero`: coordinates of the non-zero elements, `[rank, count]` int64.
struct NonZeroOperator: NonDifferentiableOperator {
    let label: String

    init(_ ctx: OperatorContext) throws {
        try ctx.expectInputs(1)
        label = ctx.label
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        [try ShapeOps.input(inputs, 0, label, "X").nonZero()]
    }
}
