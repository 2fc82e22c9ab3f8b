import LoupeTensor

/// ONNX `Tile`: `repeats` (int64, one per axis) copies along each axis. VJP: the cotangent summed
/// over the copies.
struct TileOperator: Operator {
    let label: String
    var backwardNeeds: BackwardNeeds { BackwardNeeds(inputs: [1]) }

    init(_ ctx: OperatorContext) throws {
        try ctx.expectInputs(2)
        label = ctx.label
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try ShapeOps.input(inputs, 0, label, "data")
        return [try x.tiled(ShapeOps.intList(ShapeOps.input(inputs, 1, label, "repeats"), label, "repeats"))]
    }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        guard let g = ctx.gradOutputs.first ?? nil else { return ShapeOps.firstOnly(nil, ctx) }
        let repeats = try ShapeOps.intList(ctx.input(1, label), label, "repeats")
        return ShapeOps.firstOnly(try Tensor.tiledGradient(g, inputShape: ShapeOps.inputShape(ctx, 0, label), repeats: repeats), ctx)
    }
}
