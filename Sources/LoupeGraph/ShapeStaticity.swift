import LoupeTensor

/// Decides which Shape/Size nodes may be folded into constants after a dry run: those whose
/// input's shape is fixed by the declared input shapes alone, whatever the input *values*.
///
/// A value's shape is "dynamic" when some input value can change it: a run-time (non-constant)
/// operand in a shape-determining position (Reshape's shape, Slice's starts, Resize's scales,
/// Range's limits, ...), or an operator whose output size depends on data (NonZero, Compress).
/// Operators listed in `shapeFromShapes` produce shapes from their inputs' shapes only
/// (element-wise ops, convolutions, gathers), so a run-time index tensor such as `input_ids`
/// does not make an embedding's output shape dynamic.
enum ShapeStaticity {
    static let shapeFromShapes: Set<String> = [
        // element-wise, broadcasting
        "Abs", "Acos", "Acosh", "Add", "And", "Asin", "Asinh", "Atan", "Atanh", "BitShift", "Cast", "CastLike",
        "Ceil", "Celu", "Clip", "Cos", "Cosh", "Div", "Dropout", "Elu", "Equal", "Erf", "Exp", "Floor", "Gelu",
        "Greater", "GreaterOrEqual", "HardSigmoid", "HardSwish", "Identity", "IsInf", "IsNaN", "LeakyRelu", "Less",
        "LessOrEqual", "Log", "Max", "Mean", "Min", "Mish", "Mod", "Mul", "Neg", "Not", "Or", "Pow", "PRelu",
        "Reciprocal", "Relu", "Round", "Selu", "Shrink", "Sigmoid", "Sign", "Sin", "Sinh", "Softplus", "Softsign",
        "Sqrt", "Sub", "Sum", "Tan", "Tanh", "ThresholdedRelu", "Where", "Xor",
        // layers whose output shape follows from input shapes and attributes
        "AveragePool", "BatchNormalization", "Conv", "ConvTranspose", "Einsum", "Flatten", "Gemm",
        "GlobalAveragePool", "GlobalMaxPool", "InstanceNormalization", "LayerNormalization", "LogSoftmax",
        "MatMul", "MaxPool", "Softmax", "Transpose", "Concat", "DepthToSpace", "SpaceToDepth", "ArgMax", "ArgMin",
        "CumSum", "Trilu", "Gather", "GatherElements", "GatherND", "ScatterElements", "ScatterND", "Scatter",
        "Shape", "Size", "Constant",
    ]

    /// Output sizes that depend on input values even with static inputs.
    static let dataDependent: Set<String> = ["NonZero", "Compress", "Unique", "NonMaxSuppression"]

    /// Names of Shape/Size outputs that are safe to fold.
    static func foldableShapeOutputs(_ p: Model.Parts) -> Set<String> {
        let n = p.names.count
        var runtime = [Bool](repeating: false, count: n)     // value varies with input values
        var dynamicShape = [Bool](repeating: false, count: n) // shape varies with input values
        for (_, s) in p.inputSlots { runtime[s] = true }
        var out = Set<String>()
        for st in p.steps {
            let ins = st.inputs.filter { $0 >= 0 }
            let anyDynamicShape = ins.contains { dynamicShape[$0] }
            let op = st.node.opType
            let shapeDynamic: Bool
            if shapeFromShapes.contains(op) {
                shapeDynamic = anyDynamicShape
            } else if dataDependent.contains(op) {
                shapeDynamic = true
            } else {
                // Operand 0 is the data; any run-time operand after it may set the output shape.
                shapeDynamic = anyDynamicShape || st.inputs.dropFirst().contains { $0 >= 0 && runtime[$0] }
            }
            let isShapeOp = Model.shapeOps.contains(op)
            let outRuntime = isShapeOp ? (ins.first.map { dynamicShape[$0] } ?? true) : ins.contains { runtime[$0] }
            for s in st.outputs where s >= 0 {
                dynamicShape[s] = shapeDynamic
                runtime[s] = outRuntime
            }
            if isShapeOp, let x = ins.first, !dynamicShape[x], let o = st.outputs.first, o >= 0 {
                out.insert(p.names[o])
            }
        }
        return out
    }
}
