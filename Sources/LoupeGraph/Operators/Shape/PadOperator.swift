import LoupeTensor

/// ONNX `Pad`: `pads` (`[begin_0.., end_0..]`) as an attribute before opset 11 and an input from
/// 11, optional `constant_value` input (11) and `axes` input (18), modes constant, reflect, edge
/// and wrap (19). Negative pads crop.
///
/// VJP: the data gets the cotangent cropped, plus (reflect/edge/wrap) the border added onto the
/// elements it copied; the constant value gets the cotangent summed over the border.
struct PadOperator: Operator {
    let mode: PadMode
    let attributePads: [Int]?
    let attributeValue: Float
    let label: String
    let backwardNeeds: BackwardNeeds

    init(_ ctx: OperatorContext) throws {
        let m = try ctx.string("mode", default: "constant")
        guard let mode = PadMode(rawValue: m) else {
            throw ctx.bad("mode", "must be constant, reflect, edge or wrap; got '\(m)'")
        }
        self.mode = mode
        if ctx.opset < 11 {
            try ctx.expectInputs(1)
            attributePads = try ctx.ints("pads")
            attributeValue = try ctx.float("value", default: 0)
            backwardNeeds = .nothing
        } else {
            try ctx.expectInputs(2, ctx.opset >= 18 ? 4 : 3)
            attributePads = nil
            attributeValue = 0
            backwardNeeds = BackwardNeeds(inputs: [1, 3].filter { ctx.hasInput($0) })
        }
        label = ctx.label
    }

    /// Per-axis begin/end pads for rank `r`.
    private func pads(_ inputs: [Tensor?], rank r: Int) throws -> (begins: [Int], ends: [Int]) {
        let p = try attributePads ?? ShapeOps.intList(ShapeOps.input(inputs, 1, label, "pads"), label, "pads")
        var axes = Array(0 ..< r)
        if inputs.count > 3, let t = inputs[3] {
            axes = try ShapeOps.normalizeAxes(ShapeOps.intList(t, label, "axes"), rank: r, op: label)
        }
        guard p.count == 2 * axes.count else {
            throw TensorError.invalidArgument(op: label, message: "pads \(p) must have 2 × \(axes.count) entries for rank \(r)")
        }
        var b = [Int](repeating: 0, count: r), e = b
        for (k, a) in axes.enumerated() {
            b[a] = p[k]
            e[a] = p[k + axes.count]
        }
        return (b, e)
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try ShapeOps.input(inputs, 0, label, "data")
        var value = Double(attributeValue)
        if inputs.count > 2, let v = inputs[2] {
            guard v.count == 1 else {
                throw TensorError.shapeMismatch(op: label, expected: "a one-element constant_value", got: [v.shape])
            }
            guard v.dtype == x.dtype else {
                throw TensorError.dtypeMismatch(op: label, expected: "constant_value of the data's type \(x.dtype)", got: v.dtype)
            }
            value = v.doubles[0]
        }
        let (b, e) = try pads(inputs, rank: x.rank)
        return [try x.padded(begins: b, ends: e, mode: mode, value: value)]
    }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        var out = [Tensor?](repeating: nil, count: ctx.inputs.count)
        guard let g = ctx.gradOutputs.first ?? nil else { return out }
        let shape = try ShapeOps.inputShape(ctx, 0, label)
        let (b, e) = try pads(ctx.inputs, rank: shape.count)
        let gx = try Tensor.paddedGradient(g, inputShape: shape, begins: b, ends: e, mode: mode)
        if ctx.wantInput.first ?? true { out[0] = gx }
        if out.count > 2, ctx.wantInput.count > 2, ctx.wantInput[2], let vs = try? ShapeOps.inputShape(ctx, 2, label) {
            // d out / d value is 1 exactly on the border, which constant mode fills.
            var border: Float = 0
            if mode == .constant {
                let inner = try Tensor(zeros: shape, value: 1).padded(begins: b, ends: e, mode: .constant, value: 0)
                let ones = try inner.floats(label), gv = try g.floats(label)
                for i in 0 ..< gv.count where ones[i] == 0 { border += gv[i] }
            }
            out[2] = try Tensor(shape: vs, floats: [border])
        }
        return out
    }
}
