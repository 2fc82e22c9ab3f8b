import LoupeTensor

/// VJP shared by the operators that only relabel the shape: the cotangent reshaped back.
private func reshapeBack(_ ctx: VJPContext, _ label: String) throws -> [Tensor?] {
    guard let g = ctx.gradOutputs.first ?? nil else { return ShapeOps.firstOnly(nil, ctx) }
    return ShapeOps.firstOnly(try g.reshaped(ShapeOps.inputShape(ctx, 0, label)), ctx)
}

/// ONNX `Reshape`. In the `shape` input, `-1` (at most once) is inferred from the element count
/// and `0` copies the input's dimension at that position, unless `allowzero = 1` (opset 14),
/// where `0` is a literal zero-size dimension.
struct ReshapeOperator: Operator {
    let allowZero: Bool
    let label: String

    init(_ ctx: OperatorContext) throws {
        try ctx.expectInputs(2)
        let az = try ctx.int("allowzero", default: 0)
        guard az == 0 || az == 1 else { throw ctx.bad("allowzero", "must be 0 or 1") }
        allowZero = az == 1
        label = ctx.label
    }

    /// The output shape for an input of shape `input` and a requested shape.
    static func resolve(_ requested: [Int], input: [Int], allowZero: Bool, label: String) throws -> [Int] {
        var out = requested
        var infer: Int?
        for (i, d) in requested.enumerated() {
            if d == -1 {
                guard infer == nil else {
                    throw TensorError.invalidArgument(op: label, message: "shape \(requested) has more than one -1")
                }
                infer = i
            } else if d == 0 && !allowZero {
                guard i < input.count else {
                    throw TensorError.invalidArgument(op: label, message: "shape \(requested) copies dimension \(i) (0) but the input \(input) has rank \(input.count)")
                }
                out[i] = input[i]
            } else if d < 0 {
                throw TensorError.invalidArgument(op: label, message: "shape \(requested) has negative dimension \(d)")
            }
        }
        let count = input.reduce(1, *)
        if let k = infer {
            if allowZero && requested.contains(0) {
                throw TensorError.invalidArgument(op: label, message: "shape \(requested) mixes -1 with a literal 0 (allowzero)")
            }
            var rest = out
            rest.remove(at: k)
            let known = try Shape.checkedCount(rest, op: label)
            guard known > 0, count % known == 0 else {
                throw TensorError.shapeMismatch(op: label, expected: "a shape matching \(count) elements for \(requested)", got: [input])
            }
            out[k] = count / known
        }
        guard try Shape.checkedCount(out, op: label) == count else {
            throw TensorError.shapeMismatch(op: label, expected: "\(count) elements in shape \(out) (requested \(requested))", got: [input])
        }
        return out
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try ShapeOps.input(inputs, 0, label, "data")
        let requested = try ShapeOps.intList(ShapeOps.input(inputs, 1, label, "shape"), label, "shape")
        return [try x.reshaped(Self.resolve(requested, input: x.shape, allowZero: allowZero, label: label))]
    }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] { try reshapeBack(ctx, label) }
}

/// ONNX `Flatten`: `[d_0..d_{r-1}]` → `[d_0·…·d_{axis-1}, d_axis·…·d_{r-1}]`; `axis` in `[-r, r]`.
struct FlattenOperator: Operator {
    let axis: Int
    let label: String

    init(_ ctx: OperatorContext) throws {
        try ctx.expectInputs(1)
        axis = try ctx.int("axis", default: 1)
        label = ctx.label
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try ShapeOps.input(inputs, 0, label, "data")
        let r = x.rank
        let a = axis < 0 ? axis + r : axis
        guard a >= 0 && a <= r else {
            throw TensorError.invalidArgument(op: label, message: "axis \(axis) out of range [-\(r), \(r)]")
        }
        return [try x.reshaped([x.shape[..<a].reduce(1, *), x.shape[a...].reduce(1, *)])]
    }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] { try reshapeBack(ctx, label) }
}

/// ONNX `Squeeze`: removes the listed size-1 axes (`axes` attribute before opset 13, optional
/// input from 13), or every size-1 axis when none are listed. An empty `axes` list also squeezes
/// every size-1 axis, as ONNX Runtime does (the reference evaluator would squeeze nothing).
struct SqueezeOperator: Operator {
    let axesAttribute: [Int]?
    let label: String

    init(_ ctx: OperatorContext) throws {
        try ctx.expectInputs(1, ctx.opset >= 13 ? 2 : 1)
        axesAttribute = ctx.opset < 13 && ctx.has("axes") ? try ctx.ints("axes") : nil
        label = ctx.label
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try ShapeOps.input(inputs, 0, label, "data")
        var axes = axesAttribute
        if axes == nil, inputs.count > 1, let t = inputs[1] { axes = try ShapeOps.intList(t, label, "axes") }
        guard let axes, !axes.isEmpty else { return [try x.reshaped(x.shape.filter { $0 != 1 })] }
        let norm = try ShapeOps.normalizeAxes(axes, rank: x.rank, op: label)
        for a in norm where x.shape[a] != 1 {
            throw TensorError.invalidArgument(op: label, message: "cannot squeeze axis \(a) of size \(x.shape[a]) in \(x.shape)")
        }
        return [try x.reshaped(x.shape.enumerated().filter { !norm.contains($0.offset) }.map(\.element))]
    }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] { try reshapeBack(ctx, label) }
}

/// ONNX `Unsqueeze`: inserts size-1 axes at the listed positions of the output (`axes`
/// attribute before opset 13, required input from 13; negative counts from the output's end).
struct UnsqueezeOperator: Operator {
    let axesAttribute: [Int]?
    let label: String

    init(_ ctx: OperatorContext) throws {
        if ctx.opset >= 13 {
            try ctx.expectInputs(2)
            axesAttribute = nil
        } else {
            try ctx.expectInputs(1)
            axesAttribute = try ctx.ints("axes")
        }
        label = ctx.label
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try ShapeOps.input(inputs, 0, label, "data")
        let axes = try axesAttribute ?? ShapeOps.intList(ShapeOps.input(inputs, 1, label, "axes"), label, "axes")
        let r = x.rank + axes.count
        // A handful of axes: a linear scan beats hashing (this runs ~100 times per ViT forward
        // on shape scalars).
        let norm = try ShapeOps.normalizeAxes(axes, rank: r, op: label)
        var out: [Int] = []
        out.reserveCapacity(r)
        var next = 0
        for d in 0 ..< r {
            if norm.contains(d) { out.append(1) } else { out.append(x.shape[next]); next += 1 }
        }
        return [try x.reshaped(out)]
    }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] { try reshapeBack(ctx, label) }
}
