import LoupeTensor

/// ONNX `DepthToSpace` (modes DCR, default, and CRD from opset 11). VJP: the inverse rearrangement.
struct DepthToSpaceOperator: Operator {
    let blockSize: Int
    let mode: DepthToSpaceMode
    let label: String

    init(_ ctx: OperatorContext) throws {
        try ctx.expectInputs(1)
        blockSize = try ctx.int("blocksize")
        guard blockSize >= 1 else { throw ctx.bad("blocksize", "must be ≥ 1, got \(blockSize)") }
        let m = try ctx.string("mode", default: "DCR")
        guard let mode = DepthToSpaceMode(rawValue: m) else { throw ctx.bad("mode", "must be DCR or CRD, got '\(m)'") }
        self.mode = mode
        label = ctx.label
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        [try ShapeOps.input(inputs, 0, label, "input").depthToSpace(blockSize: blockSize, mode: mode)]
    }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        guard let g = ctx.gradOutputs.first ?? nil else { return ShapeOps.firstOnly(nil, ctx) }
        return ShapeOps.firstOnly(try Tensor.depthToSpaceGradient(g, inputShape: ShapeOps.inputShape(ctx, 0, label),
                                                                  blockSize: blockSize, mode: mode), ctx)
    }
}

/// ONNX `SpaceToDepth`. VJP: the inverse rearrangement.
struct SpaceToDepthOperator: Operator {
    let blockSize: Int
    let mode: DepthToSpaceMode
    let label: String

    init(_ ctx: OperatorContext) throws {
        try ctx.expectInputs(1)
        blockSize = try ctx.int("blocksize")
        guard blockSize >= 1 else { throw ctx.bad("blocksize", "must be ≥ 1, got \(blockSize)") }
        let m = try ctx.string("mode", default: "DCR")
        guard let mode = DepthToSpaceMode(rawValue: m) else { throw ctx.bad("mode", "must be DCR or CRD, got '\(m)'") }
        self.mode = mode
        label = ctx.label
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        [try ShapeOps.input(inputs, 0, label, "input").spaceToDepth(blockSize: blockSize, mode: mode)]
    }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        guard let g = ctx.gradOutputs.first ?? nil else { return ShapeOps.firstOnly(nil, ctx) }
        return ShapeOps.firstOnly(try Tensor.spaceToDepthGradient(g, inputShape: ShapeOps.inputShape(ctx, 0, label),
                                                                  blockSize: blockSize, mode: mode), ctx)
    }
}
