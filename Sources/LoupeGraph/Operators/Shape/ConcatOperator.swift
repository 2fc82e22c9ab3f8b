import LoupeTensor

/// ONNX `Concat` along `axis` (required; negative counts from the end). Moves float, int64
/// and bool tensors alike. VJP: the cotangent split back into the inputs' extents.
struct ConcatOperator: Operator {
    let axis: Int
    let label: String

    init(_ ctx: OperatorContext) throws {
        guard ctx.inputCount >= 1 else { throw GraphError.arity(node: ctx.label, expected: "at least 1 input", got: 0) }
        axis = try ctx.int("axis")
        label = ctx.label
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        // Concat runs ~40 times per ViT forward on shape scalars: build the error text only on
        // the error path.
        var parts: [Tensor] = []
        parts.reserveCapacity(inputs.count)
        for (i, t) in inputs.enumerated() {
            guard let t else { _ = try ShapeOps.input(inputs, i, label, "input \(i)"); continue }
            parts.append(t)
        }
        return [try Tensor.concatenated(parts, axis: axis)]
    }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        guard let g = ctx.gradOutputs.first ?? nil else { return Array(repeating: nil, count: ctx.inputs.count) }
        let a = try Shape.normalizeAxis(axis, rank: g.rank, op: label)
        let sizes = try ctx.inputShapes.indices.map { try ShapeOps.inputShape(ctx, $0, label)[a] }
        let pieces = try g.split(axis: a, sizes: sizes)
        return pieces.enumerated().map { i, p in (i < ctx.wantInput.count && !ctx.wantInput[i]) ? nil : p }
    }
}
