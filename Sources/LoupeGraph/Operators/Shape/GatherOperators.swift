import LoupeTensor

/// ONNX `Gather` (whole slices along `axis`, indices of any rank) and `GatherElements` (PyTorch
/// `gather`: one element per index, indices shaped like the output); negative indices wrap.
/// VJP: the cotangent scatter-added back (repeated indices accumulate); indices get no gradient.
struct GatherAlongAxisOperator: Operator {
    let elements: Bool
    let axis: Int
    let label: String
    var backwardNeeds: BackwardNeeds { BackwardNeeds(inputs: [1]) }

    init(_ ctx: OperatorContext, elements: Bool) throws {
        try ctx.expectInputs(2)
        self.elements = elements
        axis = try ctx.int("axis", default: 0)
        label = ctx.label
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try ShapeOps.input(inputs, 0, label, "data")
        let indices = try ShapeOps.input(inputs, 1, label, "indices")
        return [elements ? try x.gatheredElements(indices: indices, axis: axis) : try x.gathered(indices: indices, axis: axis)]
    }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        guard let g = ctx.gradOutputs.first ?? nil else { return ShapeOps.firstOnly(nil, ctx) }
        let shape = try ShapeOps.inputShape(ctx, 0, label), indices = try ctx.input(1, label)
        return ShapeOps.firstOnly(elements
            ? try Tensor.gatheredElementsGradient(g, inputShape: shape, indices: indices, axis: axis)
            : try Tensor.gatheredGradient(g, inputShape: shape, indices: indices, axis: axis), ctx)
    }
}

/// ONNX `GatherND` with `batch_dims` (opset 12). VJP: scatter-add of the cotangent slices.
struct GatherNDOperator: Operator {
    let batchDims: Int
    let label: String
    var backwardNeeds: BackwardNeeds { BackwardNeeds(inputs: [1]) }

    init(_ ctx: OperatorContext) throws {
        try ctx.expectInputs(2)
        batchDims = try ctx.int("batch_dims", default: 0)
        guard batchDims >= 0 else { throw ctx.bad("batch_dims", "must be non-negative") }
        label = ctx.label
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try ShapeOps.input(inputs, 0, label, "data")
        return [try x.gatheredND(indices: ShapeOps.input(inputs, 1, label, "indices"), batchDims: batchDims)]
    }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        guard let g = ctx.gradOutputs.first ?? nil else { return ShapeOps.firstOnly(nil, ctx) }
        return ShapeOps.firstOnly(try Tensor.gatheredNDGradient(g, inputShape: ShapeOps.inputShape(ctx, 0, label),
                                                                indices: ctx.input(1, label), batchDims: batchDims), ctx)
    }
}
