import LoupeTensor

/// Input `i` of a running node, or an error naming the node when it is missing.
func elementwiseOperand(_ inputs: [Tensor?], _ i: Int, _ node: String) throws -> Tensor {
    guard i < inputs.count, let t = inputs[i] else {
        throw GraphError.invalid("node \(node): input \(i) is required but was not given")
    }
    return t
}

/// The float cotangent of output `i`, or nil when it is absent (zero) or not float (integer
/// and bool outputs carry no gradient).
func elementwiseCotangent(_ ctx: VJPContext, _ i: Int = 0) -> Tensor? {
    guard i < ctx.gradOutputs.count, let g = ctx.gradOutputs[i], g.dtype == .float32 else { return nil }
    return g
}

/// Whether input `i`'s gradient is requested.
func gradientWanted(_ ctx: VJPContext, _ i: Int) -> Bool { i < ctx.wantInput.count && ctx.wantInput[i] }

/// The recorded shape of input `i`.
func recordedShape(_ ctx: VJPContext, _ i: Int, _ node: String) throws -> [Int] {
    guard i < ctx.inputShapes.count, let s = ctx.inputShapes[i] else {
        throw GraphError.invalid("\(node) backward: shape of input \(i) was not recorded")
    }
    return s
}

/// Reads an int64 tensor of axes/sizes (any rank) as `[Int]`.
func elementwiseIntList(_ t: Tensor, _ node: String, what: String) throws -> [Int] {
    guard case let .int64(v) = t.storage else {
        throw TensorError.dtypeMismatch(op: "\(node) \(what)", expected: "int64", got: t.dtype)
    }
    return v.map { Int($0) }
}
