import LoupeTensor

/// Storage type for an ONNX `TensorProto.DataType` code: floating types → float32, integer
/// types → int64, bool → bool; nil for string and complex types.
func castStorageType(forONNXType code: Int) -> DType? {
    switch code {
    case 1, 10, 11, 16, 17, 18, 19, 20, 23: return .float32   // float, float16, double, bfloat16, float8*, float4
    case 2, 3, 4, 5, 6, 7, 12, 13, 21, 22: return .int64       // (u)int8/16/32/64, (u)int4
    case 9: return .bool
    default: return nil                                         // 0 undefined, 8 string, 14/15 complex
    }
}

/// ONNX Cast (`to` attribute) and CastLike (type of the second input).
///
/// Values keep Loupe's storage types (see ``castStorageType(forONNXType:)``): casting to float16 or
/// double does not round to that precision, and casting to a narrow integer does not wrap.
/// float → int truncates toward zero. Backward passes the cotangent through float → float
/// casts; integer and bool results carry none.
struct CastOperator: Operator {
    /// Fixed target (Cast) or nil (CastLike: the second input's type).
    let target: DType?
    let label: String

    init(_ ctx: OperatorContext) throws {
        try ctx.expectInputs(1)
        let code = try ctx.int("to")
        guard let t = castStorageType(forONNXType: code) else {
            throw ctx.unsupported("Cast to ONNX element type \(code) (string/complex) is not supported")
        }
        target = t
        label = ctx.label
    }

    init(like ctx: OperatorContext) throws {
        try ctx.expectInputs(2)
        target = nil
        label = ctx.label
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try elementwiseOperand(inputs, 0, label)
        let to = try target ?? elementwiseOperand(inputs, 1, label).dtype
        return [try x.cast(to: to, op: label)]
    }

    /// The input is kept only to learn its element type (a float → float cast passes the
    /// cotangent; an integer or bool input gets none).
    var backwardNeeds: BackwardNeeds { .allInputs(1) }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        var out = [Tensor?](repeating: nil, count: ctx.inputShapes.count)
        if gradientWanted(ctx, 0), let g = elementwiseCotangent(ctx), try ctx.input(0, label).dtype == .float32 { out[0] = g }
        return out
    }
}

/// ONNX Identity, and Dropout in inference mode (identity; the optional mask output is all true).
struct IdentityOperator: Operator {
    let label: String
    let isDropout: Bool
    let outputCount: Int

    init(_ ctx: OperatorContext, dropout: Bool = false) throws {
        try ctx.expectInputs(1, dropout ? 3 : 1)
        label = ctx.label
        isDropout = dropout
        outputCount = max(1, ctx.node.outputs.count)
        if dropout, let mode = ctx.constantInputs.count > 2 ? ctx.constantInputs[2] : nil, mode.doubles.first ?? 0 != 0 {
            throw ctx.unsupported("Dropout with training_mode = true (Loupe runs inference only)")
        }
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try elementwiseOperand(inputs, 0, label)
        guard isDropout else { return [x] }
        if inputs.count > 2, let mode = inputs[2], mode.doubles.first ?? 0 != 0 {
            throw TensorError.invalidArgument(op: label, message: "training_mode = true is not supported (inference only)")
        }
        var outs = [x]
        if outputCount > 1 { outs.append(try Tensor(shape: x.shape, bools: [Bool](repeating: true, count: x.count))) }
        return outs
    }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        var out = [Tensor?](repeating: nil, count: ctx.inputShapes.count)
        if gradientWanted(ctx, 0), let g = elementwiseCotangent(ctx) { out[0] = g }
        return out
    }
}

/// ONNX Expand: broadcasts X with the int64 `shape` input. Backward sums the cotangent back to
/// X's shape.
struct ExpandOperator: Operator {
    let label: String

    init(_ ctx: OperatorContext) throws {
        try ctx.expectInputs(2)
        label = ctx.label
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try elementwiseOperand(inputs, 0, label)
        let shape = try elementwiseIntList(elementwiseOperand(inputs, 1, label), label, what: "shape")
        return [try x.expanded(to: shape, op: label)]
    }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        guard gradientWanted(ctx, 0), let g = elementwiseCotangent(ctx) else { return [nil, nil] }
        return [try g.sumToShape(recordedShape(ctx, 0, label), op: label), nil]
    }
}
