import LoupeTensor

/// ONNX Softmax and LogSoftmax. Opset < 13 coerces X to 2-D at `axis` (default 1) and
/// normalises each row of the flattened trailing dims; opset ≥ 13 normalises along the single
/// `axis` (default −1). VJP from the output.
struct SoftmaxOperator: Operator {
    let axis: Int
    let coerce2D: Bool
    let log: Bool
    let label: String

    init(_ ctx: OperatorContext, log: Bool) throws {
        try ctx.expectInputs(1)
        label = ctx.label
        self.log = log
        coerce2D = ctx.opset < 13
        axis = try ctx.int("axis", default: coerce2D ? 1 : -1)
    }

    private func layout(_ shape: [Int]) throws -> (outer: Int, d: Int, inner: Int) {
        if shape.isEmpty { return (1, 1, 1) }
        let a = try Shape.normalizeAxis(axis, rank: shape.count, op: label)
        if coerce2D { return (shape[..<a].reduce(1, *), shape[a...].reduce(1, *), 1) }
        return (shape[..<a].reduce(1, *), shape[a], shape[(a + 1)...].reduce(1, *))
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try kernelInput(inputs, 0, label)
        let l = try layout(x.shape)
        let X = try x.floats(label)
        // Uninitialised: the kernel writes every element (saves a zeroing pass).
        let Y = X.withUnsafeBufferPointer { xb in
            [Float](unsafeUninitializedCapacity: X.count) { yb, n in
                Kernels.softmax(xb, yb, outer: l.outer, d: l.d, inner: l.inner, log: log)
                n = X.count
            }
        }
        return [try Tensor(shape: x.shape, floats: Y)]
    }

    var backwardNeeds: BackwardNeeds { BackwardNeeds(outputs: [0]) }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        guard ctx.wantInput.first == true, let gy = ctx.gradOutputs.first ?? nil else { return [nil] }
        let y = try ctx.output(0, label)
        let l = try layout(y.shape)
        let Y = try y.floats(label), G = try gy.floats(label)
        let GX = Y.withUnsafeBufferPointer { yb in G.withUnsafeBufferPointer { gb in
            [Float](unsafeUninitializedCapacity: Y.count) { gx, n in
                Kernels.softmaxBackward(yb, gb, gx, outer: l.outer, d: l.d, inner: l.inner, log: log)
                n = Y.count
            }
        } }
        return [try Tensor(shape: y.shape, floats: GX)]
    }
}
