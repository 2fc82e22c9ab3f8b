import LoupeTensor

/// ONNX `DepthToSpace` and `SpaceToDepth` (modes DCR, the default, and CRD): one block
/// rearrangement in either direction. VJP: the inverse rearrangement.
struct BlockRearrangeOperator: Operator {
    let toSpace: Bool
    let blockSize: Int
    let mode: DepthToSpaceMode
    let label: String

    init(_ ctx: OperatorContext, toSpace: Bool) throws {
        try ctx.expectInputs(1)
        self.toSpace = toSpace
        blockSize = try ctx.int("blocksize")
        guard blockSize >= 1 else { throw ctx.bad("blocksize", "must be ≥ 1, got \(blockSize)") }
        let m = try ctx.string("mode", default: "DCR")
        guard let mode = DepthToSpaceMode(rawValue: m) else { throw ctx.bad("mode", "must be DCR or CRD, got '\(m)'") }
        self.mode = mode
        label = ctx.label
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try ShapeOps.input(inputs, 0, label, "input")
        return [toSpace ? try x.depthToSpace(blockSize: blockSize, mode: mode) : try x.spaceToDepth(blockSize: blockSize, mode: mode)]
    }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        guard let g = ctx.gradOutputs.first ?? nil else { return ShapeOps.firstOnly(nil, ctx) }
        let shape = try ShapeOps.inputShape(ctx, 0, label)
        return ShapeOps.firstOnly(toSpace
            ? try Tensor.depthToSpaceGradient(g, inputShape: shape, blockSize: blockSize, mode: mode)
            : try Tensor.spaceToDepthGradient(g, inputShape: shape, blockSize: blockSize, mode: mode), ctx)
    }
}
