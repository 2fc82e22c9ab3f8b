import LoupeTensor

/// ONNX `Slice`: `starts`, `ends`, optional `axes` and `steps` as inputs (from opset 10;
/// attributes before). Negative starts/ends count from the end, bounds clamp (so `INT64_MAX`
/// means "to the end"), steps may be negative. VJP: the cotangent scattered into zeros.
struct SliceOperator: Operator {
    /// starts, ends, axes from attributes (opset < 10).
    let attributeRanges: (starts: [Int], ends: [Int], axes: [Int]?)?
    let label: String
    let backwardNeeds: BackwardNeeds

    init(_ ctx: OperatorContext) throws {
        if ctx.opset < 10 {
            try ctx.expectInputs(1)
            attributeRanges = (try ctx.ints("starts"), try ctx.ints("ends"), ctx.has("axes") ? try ctx.ints("axes") : nil)
            backwardNeeds = .nothing
        } else {
            try ctx.expectInputs(3, 5)
            attributeRanges = nil
            backwardNeeds = BackwardNeeds(inputs: (1 ..< 5).filter { ctx.hasInput($0) })
        }
        label = ctx.label
    }

    private func ranges(_ inputs: [Tensor?], rank: Int) throws -> [SliceRange] {
        let starts: [Int], ends: [Int], axes: [Int]?, steps: [Int]?
        if let r = attributeRanges {
            (starts, ends, axes, steps) = (r.starts, r.ends, r.axes, nil)
        } else {
            starts = try ShapeOps.intList(ShapeOps.input(inputs, 1, label, "starts"), label, "starts")
            ends = try ShapeOps.intList(ShapeOps.input(inputs, 2, label, "ends"), label, "ends")
            axes = try inputs.count > 3 ? inputs[3].map { try ShapeOps.intList($0, label, "axes") } : nil
            steps = try inputs.count > 4 ? inputs[4].map { try ShapeOps.intList($0, label, "steps") } : nil
        }
        let ax = axes ?? Array(0 ..< starts.count)
        let st = steps ?? Array(repeating: 1, count: starts.count)
        guard ends.count == starts.count, ax.count == starts.count, st.count == starts.count else {
            throw TensorError.invalidArgument(op: label, message: "starts \(starts), ends \(ends), axes \(ax), steps \(st) must have equal lengths")
        }
        let norm = try ShapeOps.normalizeAxes(ax, rank: rank, op: label)
        return starts.indices.map { SliceRange(axis: norm[$0], start: starts[$0], end: ends[$0], step: st[$0]) }
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try ShapeOps.input(inputs, 0, label, "data")
        return [try x.sliced(ranges(inputs, rank: x.rank))]
    }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        guard let g = ctx.gradOutputs.first ?? nil else { return ShapeOps.firstOnly(nil, ctx) }
        let shape = try ShapeOps.inputShape(ctx, 0, label)
        return ShapeOps.firstOnly(try Tensor.slicedGradient(g, inputShape: shape, ranges(ctx.inputs, rank: shape.count)), ctx)
    }
}
