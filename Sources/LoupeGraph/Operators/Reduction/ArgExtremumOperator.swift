import LoupeTensor

/// ONNX ArgMax / ArgMin (`axis` = 0, `keepdims` = 1, `select_last_index` = 0): int64 indices,
/// no gradient.
struct ArgExtremumOperator: NonDifferentiableOperator {
    let largest: Bool
    let axis: Int
    let keepDims: Bool
    let selectLast: Bool
    let label: String

    init(largest: Bool, _ ctx: OperatorContext) throws {
        try ctx.expectInputs(1)
        self.largest = largest
        axis = try ctx.int("axis", default: 0)
        keepDims = try ctx.int("keepdims", default: 1) != 0
        selectLast = try ctx.int("select_last_index", default: 0) != 0
        label = ctx.label
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        [try elementwiseOperand(inputs, 0, label).argExtremum(axis: axis, largest: largest, keepDims: keepDims,
                                                              selectLastIndex: selectLast, name: label)]
    }
}

/// Reads a one-element int64 tensor (CumSum axis, TopK k).
func reductionScalarInt(_ t: Tensor, _ node: String, what: String) throws -> Int {
    let v = try elementwiseIntList(t, node, what: what)
    guard v.count == 1 else {
        throw TensorError.shapeMismatch(op: "\(node) \(what)", expected: "one element", got: [t.shape])
    }
    return v[0]
}

/// ONNX CumSum (`exclusive`, `reverse`; axis as a scalar int input). The VJP is the cumulative
/// sum of the cotangent in the opposite direction with the same exclusivity.
struct CumSumOperator: Operator {
    let exclusive: Bool
    let reverse: Bool
    let label: String

    init(_ ctx: OperatorContext) throws {
        try ctx.expectInputs(2)
        exclusive = try ctx.int("exclusive", default: 0) != 0
        reverse = try ctx.int("reverse", default: 0) != 0
        label = ctx.label
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let axis = try reductionScalarInt(elementwiseOperand(inputs, 1, label), label, what: "axis")
        return [try elementwiseOperand(inputs, 0, label).cumulativeSum(axis: axis, exclusive: exclusive, reverse: reverse, name: label)]
    }

    var backwardNeeds: BackwardNeeds { BackwardNeeds(inputs: [1]) }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        guard gradientWanted(ctx, 0), let g = elementwiseCotangent(ctx) else { return [nil, nil] }
        let axis = try reductionScalarInt(ctx.input(1, label), label, what: "axis")
        return [try g.cumulativeSum(axis: axis, exclusive: exclusive, reverse: !reverse, name: label), nil]
    }
}

/// ONNX TopK (opset ≥ 10: `k` is an int64 input; `axis` = -1, `largest` = 1, `sorted` = 1).
/// Outputs values and int64 indices; the VJP scatters the values' cotangent to the selected
/// positions.
struct TopKOperator: Operator {
    let axis: Int
    let largest: Bool
    let label: String

    init(_ ctx: OperatorContext) throws {
        try ctx.expectInputs(2)
        axis = try ctx.int("axis", default: -1)
        largest = try ctx.int("largest", default: 1) != 0
        label = ctx.label
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let k = try reductionScalarInt(elementwiseOperand(inputs, 1, label), label, what: "K")
        let (v, i) = try elementwiseOperand(inputs, 0, label).topK(k, axis: axis, largest: largest, name: label)
        return [v, i]
    }

    var backwardNeeds: BackwardNeeds { BackwardNeeds(outputs: [1]) }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        guard gradientWanted(ctx, 0), let g = elementwiseCotangent(ctx, 0) else { return [nil, nil] }
        let shape = try recordedShape(ctx, 0, label)
        return [try Tensor.scatterTopKGradient(axis: axis, shape: shape, indices: ctx.output(1, label), grad: g, name: label), nil]
    }
}
