import LoupeTensor

/// Where a rank-4 feature map keeps its channel axis.
///
/// ONNX convolutions and pools read and write (N, C, H, W). Models that run LayerNorm and
/// Linear layers on feature maps permute them to (N, H, W, C) first: torchvision's Swin
/// Transformer keeps its whole residual stream channels-last, ConvNeXt its blocks' insides. A
/// shape alone cannot tell the two apart ((1, 7, 7, 768) reads as 7 channels of 7 × 768), so
/// the layout is traced through the graph (``Model/featureMapLayouts(shapes:)``).
public enum FeatureMapLayout: Sendable, Equatable {
    /// (N, C, H, W).
    case channelsFirst
    /// (N, H, W, C).
    case channelsLast
}

extension Model {
    /// The layout of every rank-4 value that can be traced from an operator with a fixed layout.
    ///
    /// Convolutions, pools and batch/instance normalisation fix (N, C, H, W) on their rank-4
    /// data input and output, and so does a reduction over the last two axes (a global pooling)
    /// on its input. A Transpose permutes the axes' roles; element-wise operators,
    /// normalisations and softmax along an axis, Slice, Pad, Concat, Split, Resize and
    /// reductions that keep their dimensions pass them on (every rank-4 operand with a traced
    /// layout must agree); a MatMul by a weight of rank ≤ 2 passes on a channels-last operand's
    /// roles (it mixes the channel axis only). Anything else — Reshape, Flatten, attention
    /// products — ends the trace: those values are absent from the result, as are values whose
    /// traced roles are neither layout (a Transpose swapping H and W, say).
    ///
    /// - Parameter shapes: the shape of each value by name (``inferShapes(inputShapes:defaultDim:)``);
    ///   only ranks are read.
    public func featureMapLayouts(shapes: [String: [Int]]) -> [String: FeatureMapLayout] {
        let trace = FeatureMapTrace(model: self, shapes: valueNames.map { shapes[$0] })
        var result: [String: FeatureMapLayout] = [:]
        for (slot, code) in trace.roles(throughStep: steps.count - 1).enumerated() {
            if let layout = FeatureMapTrace.layout(code) { result[valueNames[slot]] = layout }
        }
        return result
    }
}

extension ForwardPass {
    /// The traced layout of the rank-4 value `name` in this pass (see
    /// ``Model/featureMapLayouts(shapes:)``), nil when it is not rank 4 or cannot be traced.
    public func featureMapLayout(of name: String) throws -> FeatureMapLayout? {
        let slot = try model.slot(named: name)
        guard shapes[slot]?.count == 4 else { return nil }
        let last = model.producer[slot]
        // Roles are only ever traced from a producing step; a graph input is read as a Conv's.
        guard last >= 0 else {
            return model.steps.contains { $0.axisRoles == .fixesChannelsFirst && $0.inputs.first == slot } ? .channelsFirst : nil
        }
        return FeatureMapTrace.layout(FeatureMapTrace(model: model, shapes: shapes).roles(throughStep: last)[slot])
    }

    /// Whether `name` is a channels-last feature map (see ``featureMapLayout(of:)``). Only a
    /// Transpose makes one, so without a Transpose before the value this answers at once.
    public func isChannelsLast(_ name: String) throws -> Bool {
        let slot = try model.slot(named: name)
        guard shapes[slot]?.count == 4, model.producer[slot] >= model.firstTranspose else { return false }
        return try featureMapLayout(of: name) == .channelsLast
    }
}

/// Axis roles of rank-4 values, traced forward in execution order. A value's roles name, per
/// axis, which of batch (0), channel (1), height (2), width (3) it holds, two bits an axis
/// (axis i in bits 2i, 2i+1); `unknown` when untraced.
struct FeatureMapTrace {
    let model: Model
    let shapes: [[Int]?]

    static let unknown: UInt8 = 0xFF
    static let channelsFirst = code([0, 1, 2, 3]), channelsLast = code([0, 2, 3, 1])

    static func code(_ roles: [Int]) -> UInt8 {
        roles.enumerated().reduce(0) { $0 | UInt8($1.element) << (2 * $1.offset) }
    }
    static func role(_ code: UInt8, axis: Int) -> Int { Int(code >> (2 * axis)) & 3 }
    static func layout(_ code: UInt8) -> FeatureMapLayout? {
        code == channelsFirst ? .channelsFirst : code == channelsLast ? .channelsLast : nil
    }

    /// How a node treats the roles of its operands' axes.
    enum StepKind: UInt8, Sendable {
        /// Its rank-4 data input and output are (N, C, H, W) by the ONNX specification.
        case fixesChannelsFirst
        case transpose
        /// x·W: mixes x's last axis only.
        case matMul
        /// Its output indexes its axes as its rank-4 operands do.
        case keepsRoles
        /// A reduction: keeps roles; over the last two axes of a rank-4 input it is a global
        /// pooling, whose input is (N, C, H, W).
        case reduction
        case other

        init(_ node: Node) {
            let op = node.domain.isEmpty || node.domain == "ai.onnx" ? node.opType : ""
            if Self.fixing.contains(op) { self = .fixesChannelsFirst }
            else if op == "Transpose" { self = .transpose }
            else if op == "MatMul" { self = .matMul }
            else if op.hasPrefix("Reduce") && Self.keeping.contains(op) { self = .reduction }
            else if Self.keeping.contains(op) { self = .keepsRoles }
            else { self = .other }
        }

        static let fixing: Set<String> = [
            "Conv", "ConvTranspose", "ConvInteger", "QLinearConv", "DeformConv", "MaxPool", "AveragePool", "LpPool",
            "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool", "MaxRoiPool", "BatchNormalization",
            "InstanceNormalization", "LRN", "DepthToSpace", "SpaceToDepth", "MaxUnpool",
        ]
        static let keeping: Set<String> = [
            // element-wise
            "Relu", "LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "Gelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh",
            "Softplus", "Softsign", "Mish", "Erf", "Exp", "Log", "Sqrt", "Reciprocal", "Neg", "Abs", "Sign", "Floor",
            "Ceil", "Round", "Sin", "Cos", "Clip", "Dropout", "Identity", "Cast", "CastLike", "Add", "Sub", "Mul", "Div",
            "Pow", "Max", "Min", "Sum", "Mean", "Where", "ThresholdedRelu", "Shrink", "IsNaN", "IsInf", "Not", "And",
            "Or", "Xor", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Mod", "BitShift",
            // along one axis, shape kept
            "LayerNormalization", "Softmax", "LogSoftmax", "Hardmax", "CumSum", "RMSNormalization",
            // sizes change, axes do not
            "Slice", "Pad", "Concat", "Split", "Resize", "Upsample", "Expand", "Tile",
            "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
            "ReduceLogSumExp", "ReduceSumSquare",
        ]
    }

    /// Role codes by slot after tracing steps 0...last.
    func roles(throughStep last: Int) -> [UInt8] {
        var roles = [UInt8](repeating: Self.unknown, count: model.valueNames.count)
        if last >= 0 {
            for st in model.steps[...last] where st.axisRoles != .other { trace(st, &roles) }
        }
        return roles
    }

    /// A reduction's axes: the `axes` attribute (before opset 18) or its constant second input.
    private func reducedAxes(_ st: Model.Step) -> [Int] {
        if case let .ints(a)? = st.node.attributes["axes"] { return a }
        guard st.inputs.count > 1, st.inputs[1] >= 0, st.inputs[1] < model.constants.count,
              let c = model.constants[st.inputs[1]], let a = try? c.ints() else { return [] }
        return a.map { Int($0) }
    }

    private func rank(_ s: Int) -> Int? { s >= 0 && s < shapes.count ? shapes[s]?.count : nil }

    private func trace(_ st: Model.Step, _ roles: inout [UInt8]) {
        if st.axisRoles == .fixesChannelsFirst {
            if let x = st.inputs.first, rank(x) == 4, roles[x] == Self.unknown { roles[x] = Self.channelsFirst }
            for o in st.outputs where rank(o) == 4 { roles[o] = Self.channelsFirst }
            return
        }
        if st.axisRoles == .reduction, let x = st.inputs.first, rank(x) == 4, roles[x] == Self.unknown,
           Set(reducedAxes(st).map { $0 < 0 ? $0 + 4 : $0 }) == [2, 3] {
            // The dynamo exporter writes AdaptiveAvgPool2d(1) as ReduceMean over axes (2, 3)
            // (or (-2, -1)); a feature map made by a Reshape (MaxViT's last block) is traced only so.
            roles[x] = Self.channelsFirst
        }
        var out = Self.unknown
        switch st.axisRoles {
        case .transpose:
            guard let x = st.inputs.first, rank(x) == 4, roles[x] != Self.unknown else { return }
            var perm = [3, 2, 1, 0]
            if case let .ints(p)? = st.node.attributes["perm"] { perm = p }
            guard perm.sorted() == [0, 1, 2, 3] else { return }
            out = Self.code(perm.map { Self.role(roles[x], axis: $0) })
        case .matMul:
            // x·W with W of rank ≤ 2: fine when x's last axis is the channel.
            guard st.inputs.count == 2, rank(st.inputs[0]) == 4, roles[st.inputs[0]] != Self.unknown,
                  Self.role(roles[st.inputs[0]], axis: 3) == 1, let wr = rank(st.inputs[1]), wr <= 2 else { return }
            out = roles[st.inputs[0]]
        default:
            // Operands of rank 4 share the output's axes (same-rank broadcasting aligns them).
            for x in st.inputs where x >= 0 && rank(x) == 4 && roles[x] != Self.unknown {
                if out != Self.unknown && out != roles[x] { return }
                out = roles[x]
            }
        }
        guard out != Self.unknown else { return }
        for o in st.outputs where rank(o) == 4 { roles[o] = out }
    }
}
