import LoupeTensor

/// ONNX `Constant`: one of `value` (tensor), `value_float(s)`, `value_int(s)`.
struct ConstantOperator: NonDifferentiableOperator {
    let value: Tensor

    init(_ ctx: OperatorContext) throws {
        try ctx.expectInputs(0)
        let given = ["value", "value_float", "value_floats", "value_int", "value_ints", "sparse_value", "value_string", "value_strings"]
            .filter { ctx.has($0) }
        guard given.count == 1, let which = given.first else {
            throw ctx.bad("value", "exactly one value attribute is required, got \(given)")
        }
        switch which {
        case "value":
            guard let t = try ctx.tensor("value") else { throw ctx.bad("value", "is required") }
            value = t
        case "value_float": value = Tensor(scalar: try ctx.float("value_float"))
        case "value_floats":
            let f = try ctx.floats("value_floats")
            value = try Tensor(shape: [f.count], floats: f)
        case "value_int": value = try Tensor(shape: [], ints: [Int64(ctx.int("value_int"))])
        case "value_ints": value = Tensor(ints: try ctx.ints("value_ints").map { Int64($0) })
        default: throw ctx.unsupported("\(which) constants are not supported")
        }
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] { [value] }
}

/// ONNX `ConstantOfShape`: a tensor of the given int64 shape filled with the one-element `value`
/// attribute (float 0 by default), whose dtype it takes.
struct ConstantOfShapeOperator: NonDifferentiableOperator {
    let value: Tensor
    let label: String

    init(_ ctx: OperatorContext) throws {
        try ctx.expectInputs(1)
        let v = try ctx.tensor("value") ?? Tensor(scalar: 0)
        guard v.count == 1 else { throw ctx.bad("value", "must hold exactly one element, got shape \(v.shape)") }
        value = v
        label = ctx.label
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let shape = try ShapeOps.intList(ShapeOps.input(inputs, 0, label, "shape"), label, "shape")
        guard shape.allSatisfy({ $0 >= 0 }) else {
            throw TensorError.invalidArgument(op: label, message: "shape \(shape) has a negative dimension")
        }
        let (n, overflow) = shape.reduce((1, false)) { acc, d in
            let (p, o) = acc.0.multipliedReportingOverflow(by: d)
            return (p, acc.1 || o)
        }
        guard !overflow, n < 1 << 31 else {
            throw TensorError.invalidArgument(op: label, message: "shape \(shape) is too large")
        }
        switch value.storage {
        case let .float32(a): return [try Tensor(shape: shape, floats: Array(repeating: a[0], count: n))]
        case let .int64(a): return [try Tensor(shape: shape, ints: Array(repeating: a[0], count: n))]
        case let .bool(a): return [try Tensor(shape: shape, bools: Array(repeating: a[0], count: n))]
        }
    }
}

/// ONNX `Range`: `start, start + delta, …` below `limit` (scalars of one type). VJP for float
/// ranges: element i is `start + i·delta`, so start gets Σg and delta gets Σ i·g; limit only
/// sets the count and gets zero.
struct RangeOperator: Operator {
    let label: String

    init(_ ctx: OperatorContext) throws {
        try ctx.expectInputs(3)
        label = ctx.label
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        [try Tensor.range(start: ShapeOps.input(inputs, 0, label, "start"), limit: ShapeOps.input(inputs, 1, label, "limit"),
                          delta: ShapeOps.input(inputs, 2, label, "delta"))]
    }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        var out = [Tensor?](repeating: nil, count: ctx.inputs.count)
        guard let g = ctx.gradOutputs.first ?? nil, g.dtype == .float32 else { return out }
        let gv = try g.floats(label)
        var sum: Float = 0, weighted: Float = 0
        for (i, v) in gv.enumerated() {
            sum += v
            weighted += Float(i) * v
        }
        let values = [sum, 0, weighted]
        for i in 0 ..< min(3, out.count) where i < ctx.wantInput.count ? ctx.wantInput[i] : true {
            out[i] = try Tensor(shape: ShapeOps.inputShape(ctx, i, label), floats: [values[i]])
        }
        return out
    }
}
