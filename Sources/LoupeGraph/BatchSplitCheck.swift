import LoupeTensor

/// Whether a model keeps the samples of a batch apart, so that running shares of the batch
/// separately gives the rows of the whole batch's outputs (``BatchSplitVerdicts``).
///
/// Decided on one pass's actual shapes. A value is *batched* when its first dimension is the
/// batch, sample-major: the fed inputs, and what the nodes below make from a batched value.
/// Every node reading a batched value must be one of them, under its conditions; any other
/// (an unknown or custom operator, a reduction or a softmax over the first axis, a Transpose
/// that moves it, a constant with the batch's size in the first dimension…) makes the model
/// unsplittable. Values computed only from constants and shapes are not batched, and may meet
/// a batched one only where they broadcast along the batch (first dimension 1, or lower rank).
/// The check is deliberately conservative: a model it rejects just runs the whole batch.
struct BatchSplitCheck {
    let model: Model
    let shapes: [[Int]?]
    let batch: Int

    var splittable: Bool {
        var batched = [Bool](repeating: false, count: model.valueNames.count)
        for (_, s) in model.inputSlots where s >= 0 { batched[s] = true }
        for st in model.steps {
            let reads = st.inputs.filter { $0 >= 0 && batched[$0] }
            if reads.isEmpty {
                // A constant row expanded to the batch's size by a shape read from a batched
                // value (a ViT's class token): the same row for every sample, so batched.
                if rowBroadcastToBatch(st) { batched[st.outputs[0]] = true }
                continue
            }
            guard keepsSamplesApart(st, batched) else { return false }
            for o in st.outputs where o >= 0 {
                // Every output of a node reading a batched value is batched (Shape and Size
                // excepted: metadata), and must have the batch first.
                if st.node.opType == "Shape" || st.node.opType == "Size" { continue }
                guard let sh = shapes[o], sh.first == batch else { return false }
                batched[o] = true
            }
        }
        return model.outputSlots.allSatisfy { $0 >= 0 && batched[$0] }
    }

    private func rowBroadcastToBatch(_ st: Model.Step) -> Bool {
        guard st.node.opType == "Expand", st.inputs.count == 2, st.outputs.count == 1, st.outputs[0] >= 0,
              constant(st.inputs[1]) == nil, let out = shape(st.outputs[0]), out.first == batch,
              let data = shape(st.inputs[0]) ?? constant(st.inputs[0])?.shape else { return false }
        return data.count < out.count || data.first == 1
    }

    private func shape(_ s: Int) -> [Int]? { s >= 0 && s < shapes.count ? shapes[s] : nil }
    private func constant(_ s: Int) -> Tensor? { s >= 0 && s < model.constants.count ? model.constants[s] : nil }
    private func ints(_ s: Int) -> [Int]? { constant(s).flatMap { try? $0.ints().map { Int($0) } } }

    private func attrInt(_ st: Model.Step, _ name: String) -> Int? {
        if case let .int(v)? = st.node.attributes[name] { return v }
        return nil
    }
    private func attrInts(_ st: Model.Step, _ name: String) -> [Int]? {
        if case let .ints(v)? = st.node.attributes[name] { return v }
        return nil
    }

    /// `axis` resolved against `rank` is not the batch axis.
    private func notFirst(_ axis: Int, rank: Int) -> Bool {
        let a = axis < 0 ? axis + rank : axis
        return a >= 1 && a < rank
    }

    /// Element-wise with broadcasting: every batched operand has the output's rank with the
    /// batch first; every other operand broadcasts along the batch.
    private func broadcasts(_ st: Model.Step, _ batched: [Bool]) -> Bool {
        guard let out = st.outputs.first, let r = shape(out)?.count, r >= 1 else { return false }
        for s in st.inputs where s >= 0 {
            guard let sh = shape(s) ?? constant(s)?.shape else { return false }
            if batched[s] {
                guard sh.count == r, sh[0] == batch else { return false }
            } else if sh.count == r && sh[0] != 1 {
                return false
            }
        }
        return true
    }

    /// The first input batched, every other one not (weights, parameters, sizes).
    private func dataOnly(_ st: Model.Step, _ batched: [Bool]) -> Bool {
        guard let x = st.inputs.first, x >= 0, batched[x] else { return false }
        return st.inputs.dropFirst().allSatisfy { $0 < 0 || !batched[$0] }
    }

    private static let elementwise: Set<String> = [
        "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "Where", "Equal", "Less", "LessOrEqual",
        "Greater", "GreaterOrEqual", "And", "Or", "Xor", "Not", "Mod", "PRelu", "Clip", "Relu", "LeakyRelu", "Sigmoid",
        "HardSigmoid", "HardSwish", "Tanh", "Erf", "Exp", "Log", "Sqrt", "Reciprocal", "Neg", "Abs", "Elu", "Selu",
        "Celu", "Softplus", "Softsign", "Gelu", "Mish", "Floor", "Ceil", "Round", "Sign", "Sin", "Cos", "Cast",
        "CastLike", "Identity", "Dropout", "IsNaN", "IsInf", "ThresholdedRelu",
    ]
    /// Operators that work on each sample alone, reading the batched data as their first input.
    private static let perSample: Set<String> = [
        "Conv", "ConvTranspose", "AveragePool", "LpPool", "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool",
        "InstanceNormalization", "LRN", "DepthToSpace", "SpaceToDepth",
        // Inference mode only: the operator table rejects training_mode = 1.
        "BatchNormalization",
    ]
    private static let reductions: Set<String> = [
        "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum",
        "ReduceLogSumExp", "ReduceSumSquare",
    ]

    private func keepsSamplesApart(_ st: Model.Step, _ batched: [Bool]) -> Bool {
        let node = st.node
        guard node.domain.isEmpty || node.domain == "ai.onnx" else { return false }
        let op = node.opType
        let x = st.inputs.first ?? -1
        let rank = shape(x)?.count ?? 0
        if Self.elementwise.contains(op) { return broadcasts(st, batched) }
        if Self.perSample.contains(op) { return dataOnly(st, batched) }
        switch op {
        case "MaxPool":
            // Its optional indices count across the whole tensor, batch included.
            return dataOnly(st, batched) && st.outputs.dropFirst().allSatisfy { $0 < 0 }
        case "Shape", "Size":
            return true
        case "Resize", "Upsample":
            // Scales must keep the batch (1 first); constant target sizes would write the whole
            // batch's size into each share (computed ones follow it, and outputs are checked).
            guard dataOnly(st, batched) else { return false }
            let scalesAt = op == "Upsample" ? 1 : 2
            if st.inputs.count > scalesAt, st.inputs[scalesAt] >= 0, let scales = constant(st.inputs[scalesAt]),
               let first = try? scales.floats().first, first != 1 { return false }
            if case let .floats(v)? = st.node.attributes["scales"], v.first != 1 { return false }
            if op == "Resize", st.inputs.count > 3, st.inputs[3] >= 0, constant(st.inputs[3]) != nil { return false }
            return true
        case "Softmax", "LogSoftmax", "Hardmax":
            let axis = attrInt(st, "axis") ?? (model.graph.opset >= 13 ? -1 : 1)
            return dataOnly(st, batched) && notFirst(axis, rank: rank)
        case "LayerNormalization":
            return dataOnly(st, batched) && notFirst(attrInt(st, "axis") ?? -1, rank: rank)
        case "Flatten":
            let axis = attrInt(st, "axis") ?? 1
            return dataOnly(st, batched) && (axis < 0 ? axis + rank : axis) >= 1
        case "ArgMax", "ArgMin":
            return dataOnly(st, batched) && notFirst(attrInt(st, "axis") ?? 0, rank: rank)
        case "Transpose":
            let perm = attrInts(st, "perm") ?? Array((0..<rank).reversed())
            return dataOnly(st, batched) && perm.first == 0
        case "Concat":
            guard let axis = attrInt(st, "axis") else { return false }
            return st.inputs.allSatisfy { $0 < 0 || batched[$0] } && notFirst(axis, rank: rank)
        case "Split":
            return dataOnly(st, batched) && notFirst(attrInt(st, "axis") ?? 0, rank: rank)
        case "Gather":
            let axis = attrInt(st, "axis") ?? 0
            guard st.inputs.count == 2 else { return false }
            let data = st.inputs[0], idx = st.inputs[1]
            if batched[data] && !batched[idx] { return notFirst(axis, rank: rank) }
            // An embedding table looked up with batched indices: rows of the table per sample.
            if !batched[data] && batched[idx] { return axis == 0 || axis == -(shape(data)?.count ?? 0) }
            return false
        case _ where Self.reductions.contains(op):
            guard dataOnly(st, batched) else { return false }
            let axes = attrInts(st, "axes") ?? (st.inputs.count > 1 ? ints(st.inputs[1]) : nil)
            guard let axes, !axes.isEmpty else { return attrInt(st, "noop_with_empty_axes") == 1 }
            return axes.allSatisfy { notFirst($0, rank: rank) }
        case "Squeeze", "Unsqueeze":
            // The output's first dimension (checked by the caller) is still the batch.
            return dataOnly(st, batched)
        case "Reshape":
            guard dataOnly(st, batched), st.inputs.count >= 2 else { return false }
            // A constant target shape must copy or infer the first dimension; one computed at
            // run time (from Shape of the input) follows each share's batch, and the first split
            // call checks the outputs' shapes.
            if let target = ints(st.inputs[1]) {
                guard let first = target.first, first == 0 || (first == -1 && !target.dropFirst().contains(-1)) else { return false }
                return attrInt(st, "allowzero") != 1 || first != 0
            }
            return constant(st.inputs[1]) == nil
        case "Expand":
            // Batched data to a shape that keeps the batch (checked on the output); a constant
            // row expanded to the batch reads no batched value (`rowBroadcastToBatch`).
            return st.inputs.count == 2 && dataOnly(st, batched)
        case "Tile":
            guard dataOnly(st, batched), st.inputs.count == 2, let reps = ints(st.inputs[1]) else { return false }
            return reps.first == 1
        case "Pad":
            guard dataOnly(st, batched) else { return false }
            let pads = st.inputs.count > 1 ? ints(st.inputs[1]) : attrInts(st, "pads")
            guard let pads, pads.count == 2 * rank else { return false }
            if st.inputs.count > 3, st.inputs[3] >= 0 {
                guard let axes = ints(st.inputs[3]) else { return false }
                return zip(axes, stride(from: 0, to: axes.count, by: 1)).allSatisfy { a, i in
                    notFirst(a, rank: rank) || (pads[i] == 0 && pads[i + axes.count] == 0)
                }
            }
            return pads[0] == 0 && pads[rank] == 0
        case "Slice":
            guard dataOnly(st, batched) else { return false }
            let starts: [Int]?, ends: [Int]?, axes: [Int]?, steps: [Int]?
            if st.inputs.count >= 3 {
                starts = ints(st.inputs[1]); ends = ints(st.inputs[2])
                axes = st.inputs.count > 3 && st.inputs[3] >= 0 ? ints(st.inputs[3]) : starts.map { Array(0..<$0.count) }
                steps = st.inputs.count > 4 && st.inputs[4] >= 0 ? ints(st.inputs[4]) : starts.map { [Int](repeating: 1, count: $0.count) }
            } else {
                starts = attrInts(st, "starts"); ends = attrInts(st, "ends")
                axes = attrInts(st, "axes") ?? starts.map { Array(0..<$0.count) }
                steps = starts.map { [Int](repeating: 1, count: $0.count) }
            }
            guard let starts, let ends, let axes, let steps, starts.count == axes.count, ends.count == axes.count,
                  steps.count == axes.count else { return false }
            for i in axes.indices where !notFirst(axes[i], rank: rank) {
                // The batch axis only taken whole, forwards.
                guard steps[i] == 1, starts[i] == 0, ends[i] >= batch else { return false }
            }
            return true
        case "MatMul":
            guard st.inputs.count == 2, let out = st.outputs.first, let r = shape(out)?.count else { return false }
            let a = st.inputs[0], b = st.inputs[1]
            guard let sa = shape(a) ?? constant(a)?.shape, let sb = shape(b) ?? constant(b)?.shape, sa.count >= 2, sb.count >= 2 else { return false }
            if r == 2 { return batched[a] && !batched[b] }
            for (s, sh) in [(a, sa), (b, sb)] {
                if batched[s] {
                    guard sh.count == r, sh[0] == batch else { return false }
                } else if sh.count == r && sh[0] != 1 {
                    return false
                }
            }
            return true
        case "Gemm":
            guard dataOnly(st, batched), (attrInt(st, "transA") ?? 0) == 0 else { return false }
            if st.inputs.count > 2, st.inputs[2] >= 0 {
                guard let c = shape(st.inputs[2]) ?? constant(st.inputs[2])?.shape else { return false }
                return c.count < 2 || c[0] == 1
            }
            return true
        default:
            return false
        }
    }
}
