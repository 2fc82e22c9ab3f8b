import LoupeTensor

/// The ONNX Reduce* family (Sum, Mean, Max, Min, Prod, L1, L2, SumSquare, LogSum, LogSumExp).
///
/// Axes are the `axes` attribute up to opset 12 for ReduceSum and up to opset 17 for the others,
/// and an optional int64 input from then on. With no axes the reduction covers every axis,
/// unless `noop_with_empty_axes = 1` (then the op is the identity). `keepdims` defaults to 1.
/// Backward: see ``Tensor/reduceVJP(_:input:output:grad:axes:name:)`` (Max/Min split the
/// cotangent evenly among ties, as `torch.amax` does).
struct ReduceOperator: Operator {
    let op: ReduceOp
    let label: String
    let keepDims: Bool
    let noopWithEmptyAxes: Bool
    /// Axes from the attribute (nil: none given or they come from input 1).
    let attributeAxes: [Int]?
    let axesFromInput: Bool

    init(_ op: ReduceOp, _ ctx: OperatorContext) throws {
        self.op = op
        label = ctx.label
        keepDims = try ctx.int("keepdims", default: 1) != 0
        noopWithEmptyAxes = try ctx.int("noop_with_empty_axes", default: 0) != 0
        axesFromInput = ctx.opset >= (op == .sum ? 13 : 18)
        if axesFromInput {
            try ctx.expectInputs(1, 2)
            attributeAxes = nil
        } else {
            try ctx.expectInputs(1)
            attributeAxes = ctx.has("axes") ? try ctx.ints("axes") : nil
        }
    }

    /// The axes in force for a call; nil means "all".
    func axes(_ inputs: [Tensor?]) throws -> [Int]? {
        if axesFromInput {
            guard inputs.count > 1, let t = inputs[1] else { return nil }
            let a = try elementwiseIntList(t, label, what: "axes")
            return a.isEmpty ? nil : a
        }
        return attributeAxes.flatMap { $0.isEmpty ? nil : $0 }
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try elementwiseOperand(inputs, 0, label)
        let ax = try axes(inputs)
        if ax == nil && noopWithEmptyAxes { return [x] }
        return [try x.reduce(op, axes: ax, keepDims: keepDims, name: label)]
    }

    /// Sum and Mean need only shapes; Max/Min/Prod/L1/L2/SumSquare/LogSum(Exp) read x and y.
    var needsValues: Bool { op != .sum && op != .mean }

    var backwardNeeds: BackwardNeeds {
        BackwardNeeds(inputs: needsValues ? [0, 1] : [1], outputs: needsValues ? [0] : [])
    }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        var out = [Tensor?](repeating: nil, count: ctx.inputShapes.count)
        guard gradientWanted(ctx, 0), let g = elementwiseCotangent(ctx) else { return out }
        let shape = try recordedShape(ctx, 0, label)
        let ax = try axes(ctx.inputs)
        if ax == nil && noopWithEmptyAxes { out[0] = g; return out }
        let axesList = try Tensor.reductionAxes(ax, rank: shape.count, op: label)
        if !needsValues {
            let n = axesList.reduce(1) { $0 * shape[$1] }
            var gk = try g.reshaped(shape.enumerated().map { axesList.contains($0.offset) ? 1 : $0.element })
            if op == .mean { gk = try gk / Tensor(scalar: Float(n)) }
            out[0] = try gk.broadcast(to: shape, op: label)
        } else {
            out[0] = try Tensor.reduceVJP(op, input: ctx.input(0, label), output: ctx.output(0, label), grad: g,
                                          axes: axesList, name: label)
        }
        return out
    }
}
