import LoupeTensor

/// Reads the `reduction` attribute (opset 16: none/add/mul; 18: max/min).
private func scatterReduction(_ ctx: OperatorContext) throws -> ScatterReduction {
    let s = try ctx.string("reduction", default: "none")
    guard let r = ScatterReduction(rawValue: s) else {
        throw ctx.bad("reduction", "must be one of none, add, mul, max, min; got '\(s)'")
    }
    return r
}

/// Gradients of inputs (data, indices, updates) from a scatter VJP.
private func scatterVJP(_ ctx: VJPContext, _ grads: (data: Tensor, updates: Tensor)) -> [Tensor?] {
    var out = [Tensor?](repeating: nil, count: ctx.inputs.count)
    func want(_ i: Int) -> Bool { i < ctx.wantInput.count ? ctx.wantInput[i] : true }
    if want(0) { out[0] = grads.data }
    if out.count > 2, want(2) { out[2] = grads.updates }
    return out
}

/// ONNX `ScatterElements` (and the deprecated `Scatter`, its opset-9 name): data with updates
/// written at GatherElements positions. VJP for reductions none/add: data gets the cotangent
/// (zeroed where overwritten for none), updates get it gathered; other reductions throw.
struct ScatterElementsOperator: Operator {
    let axis: Int
    let reduction: ScatterReduction
    let label: String
    let opType: String
    var backwardNeeds: BackwardNeeds { BackwardNeeds(inputs: [1]) }

    init(_ ctx: OperatorContext) throws {
        try ctx.expectInputs(3)
        axis = try ctx.int("axis", default: 0)
        reduction = try scatterReduction(ctx)
        label = ctx.label
        opType = ctx.node.opType
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try ShapeOps.input(inputs, 0, label, "data")
        return [try x.scatteringElements(indices: ShapeOps.input(inputs, 1, label, "indices"),
                                         updates: ShapeOps.input(inputs, 2, label, "updates"), axis: axis, reduction: reduction)]
    }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        guard let g = ctx.gradOutputs.first ?? nil else { return Array(repeating: nil, count: ctx.inputs.count) }
        guard reduction == .none || reduction == .add else {
            throw GraphError.notDifferentiable(node: label, opType: opType, reason: "reduction '\(reduction.rawValue)' has no implemented VJP")
        }
        return scatterVJP(ctx, try Tensor.scatteringElementsGradients(g, dataShape: ShapeOps.inputShape(ctx, 0, label),
                                                                     indices: ctx.input(1, label), axis: axis, reduction: reduction))
    }
}

/// ONNX `ScatterND`: data with slices of updates written at index tuples. VJP as ScatterElements.
struct ScatterNDOperator: Operator {
    let reduction: ScatterReduction
    let label: String
    var backwardNeeds: BackwardNeeds { BackwardNeeds(inputs: [1]) }

    init(_ ctx: OperatorContext) throws {
        try ctx.expectInputs(3)
        reduction = try scatterReduction(ctx)
        label = ctx.label
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try ShapeOps.input(inputs, 0, label, "data")
        return [try x.scatteringND(indices: ShapeOps.input(inputs, 1, label, "indices"),
                                   updates: ShapeOps.input(inputs, 2, label, "updates"), reduction: reduction)]
    }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        guard let g = ctx.gradOutputs.first ?? nil else { return Array(repeating: nil, count: ctx.inputs.count) }
        guard reduction == .none || reduction == .add else {
            throw GraphError.notDifferentiable(node: label, opType: "ScatterND", reason: "reduction '\(reduction.rawValue)' has no implemented VJP")
        }
        return scatterVJP(ctx, try Tensor.scatteringNDGradients(g, dataShape: ShapeOps.inputShape(ctx, 0, label),
                                                               indices: ctx.input(1, label), reduction: reduction))
    }
}
