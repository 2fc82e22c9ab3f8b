import LoupeTensor

/// ONNX Clip: `min(max(x, lo), hi)`. Before opset 11 the bounds are float attributes `min`/`max`;
/// from 11 they are optional scalar inputs (omitted = unbounded). int64 inputs are clipped with
/// int64 bounds.
///
/// Backward: x gets the cotangent strictly inside `(lo, hi)`, as `torch.clamp` with constant
/// bounds (and `hardtanh`/`relu6`) does; a bound given as an input gets the sum of the cotangent
/// over the elements it clamps or touches, so no element's cotangent is lost.
struct ClipOperator: Operator {
    let label: String
    /// Bounds from attributes (opset < 11).
    let attributeBounds: (lo: Float, hi: Float)?

    init(_ ctx: OperatorContext) throws {
        label = ctx.label
        if ctx.opset < 11 {
            try ctx.expectInputs(1)
            attributeBounds = (try ctx.float("min", default: -.greatestFiniteMagnitude),
                               try ctx.float("max", default: .greatestFiniteMagnitude))
        } else {
            try ctx.expectInputs(1, 3)
            attributeBounds = nil
        }
    }

    func bound(_ inputs: [Tensor?], _ i: Int, _ name: String) throws -> Tensor? {
        guard i < inputs.count, let t = inputs[i] else { return nil }
        guard t.count == 1 else {
            throw TensorError.shapeMismatch(op: "\(label) \(name)", expected: "a scalar", got: [t.shape])
        }
        return t
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try elementwiseOperand(inputs, 0, label)
        if let (lo, hi) = attributeBounds { return [try x.unary(.clip(lo: lo, hi: hi), name: label)] }
        let loT = try bound(inputs, 1, "min"), hiT = try bound(inputs, 2, "max")
        if loT == nil && hiT == nil { return [x] }
        // Float bounds that are not NaN: one vectorised clamp pass instead of two broadcast
        // ops (same results: max with lo, then min with hi, ties included).
        if x.dtype == .float32, loT?.dtype ?? .float32 == .float32, hiT?.dtype ?? .float32 == .float32 {
            let lo = try loT.map { try $0.floats(label)[0] } ?? -.infinity
            let hi = try hiT.map { try $0.floats(label)[0] } ?? .infinity
            if !lo.isNaN && !hi.isNaN { return [try x.unary(.clip(lo: lo, hi: hi), name: label)] }
        }
        var y = x
        if let lo = loT { y = try Tensor.binary(.max, y, lo.reshaped([]), name: label) }
        if let hi = hiT { y = try Tensor.binary(.min, y, hi.reshaped([]), name: label) }
        return [y]
    }

    var backwardNeeds: BackwardNeeds { BackwardNeeds(inputs: [0, 1, 2]) }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        let n = ctx.inputShapes.count
        var out = [Tensor?](repeating: nil, count: n)
        guard let g = elementwiseCotangent(ctx) else { return out }
        let x = try ctx.input(0, label)
        let lo: Float, hi: Float
        if let b = attributeBounds {
            (lo, hi) = b
        } else {
            lo = try (ctx.inputs.count > 1 ? ctx.inputs[1] : nil).map { try $0.floats(label)[0] } ?? -.infinity
            hi = try (ctx.inputs.count > 2 ? ctx.inputs[2] : nil).map { try $0.floats(label)[0] } ?? .infinity
        }
        let xv = try x.floats(label), gv = try g.floats(label)
        var gx = [Float](repeating: 0, count: xv.count)
        var gLo: Float = 0, gHi: Float = 0
        for i in 0..<xv.count {
            // y = min(max(x, lo), hi): the upper bound wins whenever the result is at or above it.
            let v = xv[i]
            if v > lo && v < hi { gx[i] = gv[i] } else if v <= lo && lo < hi { gLo += gv[i] } else { gHi += gv[i] }
        }
        if gradientWanted(ctx, 0) { out[0] = try Tensor(shape: x.shape, floats: gx) }
        if n > 1, gradientWanted(ctx, 1), let s = ctx.inputShapes[1] { out[1] = try Tensor(scalar: gLo).reshaped(s) }
        if n > 2, gradientWanted(ctx, 2), let s = ctx.inputShapes[2] { out[2] = try Tensor(scalar: gHi).reshaped(s) }
        return out
    }
}
