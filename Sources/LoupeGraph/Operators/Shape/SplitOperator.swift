import LoupeTensor

/// ONNX `Split` along `axis` into the node's outputs. Sizes come from the `split` attribute
/// (before opset 13) or optional input (from 13); without them the axis is cut evenly into as
/// many parts as outputs, and from opset 18 `num_outputs` parts of `ceil(n / num_outputs)` with a
/// smaller last one. VJP: the output cotangents concatenated (missing ones as zeros).
struct SplitOperator: Operator {
    let axis: Int
    let splitAttribute: [Int]?
    let numOutputs: Int?
    let outputs: Int
    let label: String
    let backwardNeeds: BackwardNeeds

    init(_ ctx: OperatorContext) throws {
        try ctx.expectInputs(1, ctx.opset >= 13 ? 2 : 1)
        axis = try ctx.int("axis", default: 0)
        splitAttribute = ctx.opset < 13 && ctx.has("split") ? try ctx.ints("split") : nil
        numOutputs = ctx.opset >= 18 && ctx.has("num_outputs") ? try ctx.int("num_outputs") : nil
        outputs = ctx.node.outputs.count
        if let numOutputs, numOutputs != outputs || numOutputs < 1 {
            throw ctx.bad("num_outputs", "must equal the node's \(outputs) outputs, got \(numOutputs)")
        }
        if let splitAttribute, splitAttribute.count != outputs {
            throw ctx.bad("split", "must list \(outputs) sizes, one per output, got \(splitAttribute)")
        }
        guard outputs >= 1 else { throw GraphError.arity(node: ctx.label, expected: "at least 1 output", got: 0) }
        label = ctx.label
        backwardNeeds = BackwardNeeds(inputs: ctx.hasInput(1) ? [1] : [])
    }

    private func sizes(_ dim: Int, _ splitInput: Tensor?) throws -> [Int] {
        if let s = splitAttribute { return s }
        if let t = splitInput {
            let s = try ShapeOps.intList(t, label, "split")
            guard s.count == outputs else {
                throw TensorError.invalidArgument(op: label, message: "split \(s) must list \(outputs) sizes, one per output")
            }
            return s
        }
        if numOutputs != nil {
            let chunk = (dim + outputs - 1) / outputs
            return (0 ..< outputs).map { i in max(min(chunk, dim - i * chunk), 0) }
        }
        guard dim % outputs == 0 else {
            throw TensorError.invalidArgument(op: label, message: "axis of size \(dim) does not split evenly into \(outputs) outputs")
        }
        return Array(repeating: dim / outputs, count: outputs)
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try ShapeOps.input(inputs, 0, label, "data")
        let a = try Shape.normalizeAxis(axis, rank: x.rank, op: label)
        return try x.split(axis: a, sizes: sizes(x.shape[a], inputs.count > 1 ? inputs[1] : nil))
    }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        let shape = try ShapeOps.inputShape(ctx, 0, label)
        guard ctx.gradOutputs.contains(where: { $0 != nil }) else { return ShapeOps.firstOnly(nil, ctx) }
        let a = try Shape.normalizeAxis(axis, rank: shape.count, op: label)
        let sz = try sizes(shape[a], ctx.inputs.count > 1 ? ctx.inputs[1] : nil)
        let parts = sz.enumerated().map { i, n -> Tensor in
            if i < ctx.gradOutputs.count, let g = ctx.gradOutputs[i] { return g }
            var s = shape
            s[a] = n
            return Tensor(zeros: s)
        }
        return ShapeOps.firstOnly(try Tensor.concatenated(parts, axis: a), ctx)
    }
}
