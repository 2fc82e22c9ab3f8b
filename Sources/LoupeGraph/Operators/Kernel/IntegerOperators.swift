import LoupeTensor

// ONNX's integer-arithmetic operators, what onnxruntime's `quantize_dynamic` (DynamicQuantizeLinear
// + MatMulInteger) and its QOperator format (QLinearConv, QLinearMatMul) write. Loupe computes the
// integer products with its float kernels on the zero-point-shifted integers: exact while a dot
// product stays below 2^24 in magnitude (8-bit operands over up to 258 terms), within float
// rounding of it beyond. Their outputs are integers (held as int64), so no gradient crosses them;
// a backward pass that needs one names the node (the walk's integer-stop rule).

/// `t − zeroPoint` as floats; the zero point a scalar or one value per index of `axis`.
func shiftedByZeroPoint(_ t: Tensor, _ zeroPoint: Tensor?, axis: Int, _ what: String) throws -> Tensor {
    let v = t.doubles
    guard let zeroPoint, zeroPoint.count > 0 else { return try Tensor(shape: t.shape, floats: v.map { Float($0) }) }
    let z = zeroPoint.doubles
    if z.count == 1 { return try Tensor(shape: t.shape, floats: v.map { Float($0 - z[0]) }) }
    let a = axis < 0 ? axis + t.rank : axis
    guard a >= 0, a < t.rank, t.shape[a] == z.count, zeroPoint.rank == 1 else {
        throw TensorError.shapeMismatch(op: "\(what) zero point", expected: "a scalar or \(a >= 0 && a < t.rank ? t.shape[a] : 0) values along axis \(axis) of \(t.shape)", got: [zeroPoint.shape])
    }
    let inner = t.shape[(a + 1)...].reduce(1, *), d = z.count
    var out = [Float](repeating: 0, count: v.count)
    for i in v.indices { out[i] = Float(v[i] - z[(i / inner) % d]) }
    return try Tensor(shape: t.shape, floats: out)
}

/// The float result of an integer product, rounded back to integers.
func integerResult(_ y: Tensor) throws -> Tensor {
    try Tensor(shape: y.shape, ints: try y.floats().map { Int64($0.rounded(.toNearestOrEven)) })
}

/// The node as a plain two-input Conv or MatMul of the shifted operands (no constants: the
/// integer weight must not be packed as a float one).
private func innerContext(_ ctx: OperatorContext, inputs: [String]) -> OperatorContext {
    var node = ctx.node
    node.inputs = inputs
    return OperatorContext(node: node, opset: ctx.opset)
}

/// ONNX MatMulInteger: `(A − a_zero_point) · (B − b_zero_point)` as int32 (int64 here); zero points
/// scalar, per row of A or per column of B.
struct MatMulIntegerOperator: NonDifferentiableOperator {
    let label: String
    init(_ ctx: OperatorContext) throws {
        try ctx.expectInputs(2, 4)
        label = ctx.label
    }
    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let a = try kernelInput(inputs, 0, label), b = try kernelInput(inputs, 1, label)
        let af = try shiftedByZeroPoint(a, inputs.count > 2 ? inputs[2] : nil, axis: -2, "\(label) A")
        let bf = try shiftedByZeroPoint(b, inputs.count > 3 ? inputs[3] : nil, axis: -1, "\(label) B")
        return [try integerResult(try Kernels.matmul(af, bf))]
    }
}

/// ONNX ConvInteger: Conv of `x − x_zero_point` and `w − w_zero_point` (per output channel or
/// scalar), as int32 (int64 here). Attributes as Conv's.
struct ConvIntegerOperator: NonDifferentiableOperator {
    let label: String
    let conv: ConvOperator
    init(_ ctx: OperatorContext) throws {
        try ctx.expectInputs(2, 4)
        label = ctx.label
        conv = try ConvOperator(innerContext(ctx, inputs: Array(ctx.node.inputs.prefix(2))))
    }
    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try kernelInput(inputs, 0, label), w = try kernelInput(inputs, 1, label)
        let xf = try shiftedByZeroPoint(x, inputs.count > 2 ? inputs[2] : nil, axis: 1, "\(label) x")
        let wf = try shiftedByZeroPoint(w, inputs.count > 3 ? inputs[3] : nil, axis: 0, "\(label) w")
        return [try integerResult(try conv.forward([xf, wf])[0])]
    }
}

/// Requantisation of an integer accumulator: `saturate(rint(acc · multiplier) + y_zero_point)`,
/// the multiplier `a_scale · b_scale / y_scale` per tensor or per index of `axis` (per output
/// channel or column), computed in double as the ONNX reference does.
private func requantized(_ acc: Tensor, multiplier: [Double], axis: Int, zeroPoint: Double, range: QuantizedRange, _ label: String) throws -> Tensor {
    let v = try acc.floats(label)
    let a = axis < 0 ? axis + acc.rank : axis
    let inner = multiplier.count > 1 && a >= 0 && a < acc.rank ? acc.shape[(a + 1)...].reduce(1, *) : 1
    let d = multiplier.count
    var q = [Int64](repeating: 0, count: v.count)
    for i in v.indices {
        let m = d == 1 ? multiplier[0] : multiplier[(i / inner) % d]
        let r = (Double(v[i]) * m).rounded(.toNearestOrEven) + zeroPoint
        q[i] = Int64(min(max(r, Double(range.lo)), Double(range.hi)))
    }
    return try Tensor(shape: acc.shape, ints: q)
}

extension QuantizedRange {
    /// The range of the integer type of a node's zero-point input `input` (y_zero_point of the
    /// QLinear operators), which fixes their output's saturation.
    init(zeroPointOf ctx: OperatorContext, input: Int) throws {
        guard let code = ctx.inputElementTypes.count > input ? ctx.inputElementTypes[input] : nil, let r = QuantizedRange(onnxType: code) else {
            throw ctx.unsupported("\(ctx.node.opType) whose output zero point has no known 8- or 16-bit integer type")
        }
        self = r
    }
}

/// Scales of a QLinear operator as doubles (one, or one per channel).
private func scales(_ t: Tensor?, _ what: String, _ label: String) throws -> [Double] {
    guard let t, t.count > 0 else { throw TensorError.invalidArgument(op: label, message: "\(what) scale is missing") }
    return t.doubles
}

/// The combined multiplier `a_s · b_s / y_s`, broadcasting one per-channel scale.
private func multiplier(_ a: [Double], _ b: [Double], _ y: [Double], _ label: String) throws -> [Double] {
    let n = max(a.count, b.count, y.count)
    for s in [a, b, y] where s.count != 1 && s.count != n {
        throw TensorError.invalidArgument(op: label, message: "scales of \(a.count), \(b.count) and \(y.count) values do not broadcast")
    }
    return (0..<n).map { i in Double(Float(Float(a[a.count == 1 ? 0 : i]) * Float(b[b.count == 1 ? 0 : i])) / Float(y[y.count == 1 ? 0 : i])) }
}

/// ONNX QLinearMatMul: `saturate(rint((a − a_zp)·(b − b_zp) · a_s·b_s/y_s) + y_zp)`, the output
/// range that of y_zero_point's type.
struct QLinearMatMulOperator: NonDifferentiableOperator {
    let label: String
    let range: QuantizedRange
    init(_ ctx: OperatorContext) throws {
        try ctx.expectInputs(8)
        label = ctx.label
        range = try QuantizedRange(zeroPointOf: ctx, input: 7)
    }
    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let a = try kernelInput(inputs, 0, label), b = try kernelInput(inputs, 3, label)
        let af = try shiftedByZeroPoint(a, inputs[2], axis: -2, "\(label) a")
        let bf = try shiftedByZeroPoint(b, inputs[5], axis: -1, "\(label) b")
        let acc = try Kernels.matmul(af, bf)
        let m = try multiplier(try scales(inputs[1], "a", label), try scales(inputs[4], "b", label), try scales(inputs[6], "y", label), label)
        return [try requantized(acc, multiplier: m, axis: -1, zeroPoint: inputs[7]?.doubles.first ?? 0, range: range, label)]
    }
}

/// ONNX QLinearConv: Conv of the shifted integers plus the int32 bias B (scale x_s·w_s), then
/// `saturate(rint(acc · x_s·w_s/y_s) + y_zp)`; w's scale and zero point scalar or per output channel.
struct QLinearConvOperator: NonDifferentiableOperator {
    let label: String
    let conv: ConvOperator
    let range: QuantizedRange
    init(_ ctx: OperatorContext) throws {
        try ctx.expectInputs(8, 9)
        label = ctx.label
        range = try QuantizedRange(zeroPointOf: ctx, input: 7)
        conv = try ConvOperator(innerContext(ctx, inputs: [ctx.node.inputs[0], ctx.node.inputs[3]]))
    }
    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try kernelInput(inputs, 0, label), w = try kernelInput(inputs, 3, label)
        let xf = try shiftedByZeroPoint(x, inputs[2], axis: 1, "\(label) x")
        let wf = try shiftedByZeroPoint(w, inputs[5], axis: 0, "\(label) w")
        var acc = try conv.forward([xf, wf])[0]
        if inputs.count > 8, let bias = inputs[8] {
            let c = acc.shape.count > 1 ? acc.shape[1] : 1, inner = acc.shape.count > 2 ? acc.shape[2...].reduce(1, *) : 1
            let bv = bias.doubles
            guard bv.count == c else { throw TensorError.shapeMismatch(op: "\(label) B", expected: "[\(c)]", got: [bias.shape]) }
            var v = try acc.floats(label)
            for i in v.indices { v[i] += Float(bv[(i / inner) % c]) }
            acc = try Tensor(shape: acc.shape, floats: v)
        }
        let m = try multiplier(try scales(inputs[1], "x", label), try scales(inputs[4], "w", label), try scales(inputs[6], "y", label), label)
        return [try requantized(acc, multiplier: m, axis: 1, zeroPoint: inputs[7]?.doubles.first ?? 0, range: range, label)]
    }
}

/// ONNX DynamicQuantizeLinear: uint8 quantization of x with its own range: `scale = (max(0, max x)
/// − min(0, min x)) / 255`, `zero_point = saturate(rint(−min(0, min x) / scale))`, then
/// QuantizeLinear. Outputs (y, y_scale, y_zero_point).
struct DynamicQuantizeLinearOperator: NonDifferentiableOperator {
    let label: String
    init(_ ctx: OperatorContext) throws {
        try ctx.expectInputs(1)
        label = ctx.label
    }
    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try elementwiseOperand(inputs, 0, label)
        let v = try x.floats(label)
        let (scale, zp) = v.withUnsafeBufferPointer { b in b.baseAddress.map { Kernels.dynamicQuantization($0, count: b.count) } ?? (0, 0) }
        guard scale > 0 else {
            return [try Tensor(shape: x.shape, ints: [Int64](repeating: 0, count: v.count)),
                    try Tensor(shape: [], floats: [0]), try Tensor(shape: [], ints: [0])]
        }
        guard let range = QuantizedRange(onnxType: 2) else { throw TensorError.invalidArgument(op: label, message: "uint8 range") }
        let q = v.map { range.quantized($0, scale: scale, zeroPoint: zp) }
        return [try Tensor(shape: x.shape, ints: q), try Tensor(shape: [], floats: [scale]), try Tensor(shape: [], ints: [Int64(zp)])]
    }
}

/// `quantize_dynamic`'s product of a float x and a constant quantized weight as one step
/// (``Graph/fusingDynamicQuantizedProducts()``): `(q, s, z) = DynamicQuantizeLinear(x)`, then
/// `Float((q − z)·(Wq − Wz)) · (s·Ws)` — the integer sum, its cast and the scale product in the
/// order of the chain it replaces (MatMulInteger, Cast, Mul(s, Ws), Mul), so the same bits while
/// each dot product stays below 2^24. VJP: the straight-through estimator, `g · dequantize(W)ᵀ`
/// with `dequantize(W) = (Wq − Wz)·Ws`.
struct DynamicQuantizedMatMulOperator: Operator {
    let label: String
    /// (Wq − Wz) as floats, the scales Ws (one or one per column), and dequantize(W)ᵀ for the VJP.
    let shiftedWeight: Tensor, weightScale: [Float], dequantizedTransposed: Tensor
    /// The shifted weight packed for the GEMM once.
    let packedWeight: PackedMatMulWeights?

    init(_ ctx: OperatorContext) throws {
        try ctx.expectInputs(4)
        label = ctx.label
        guard ctx.constantInputs.count == 4, let wq = ctx.constantInputs[1], let ws = ctx.constantInputs[2], let wz = ctx.constantInputs[3],
              wq.rank == 2 else {
            throw ctx.unsupported("DynamicQuantizedMatMul needs a constant 2-D quantized weight with constant scale and zero point")
        }
        shiftedWeight = try shiftedByZeroPoint(wq, wz, axis: 1, "\(ctx.label) weight")
        weightScale = try ws.floats(ctx.label)
        let (k, n) = (wq.shape[0], wq.shape[1])
        guard weightScale.count == 1 || weightScale.count == n else {
            throw TensorError.shapeMismatch(op: "\(ctx.label) weight scale", expected: "1 or \(n) values", got: [ws.shape])
        }
        let w = try shiftedWeight.floats(ctx.label), scales = weightScale
        dequantizedTransposed = try Tensor(shape: [k, n], floats: w.indices.map { w[$0] * scales[scales.count == 1 ? 0 : $0 % n] })
            .permuted([1, 0])
        packedWeight = try? PackedMatMulWeights(weight: shiftedWeight)
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try elementwiseOperand(inputs, 0, label)
        let v = try x.floats(label)
        // DynamicQuantizeLinear's (q − z) as floats in one vectorised pass (all zeros when x is).
        let (s, z) = v.withUnsafeBufferPointer { b in b.baseAddress.map { Kernels.dynamicQuantization($0, count: b.count) } ?? (0, 0) }
        let shifted = Tensor.makeFloats(writingAll: x.shape) { out in
            v.withUnsafeBufferPointer { b in
                guard let x0 = b.baseAddress, let o0 = out.baseAddress else { return }
                if s > 0 { Kernels.quantizeShifted(x0, o0, count: b.count, scale: s, zeroPoint: z, lo: 0, hi: 255) }
                else { o0.initialize(repeating: 0, count: b.count) }
            }
        }
        let acc = try Kernels.matmul(shifted, shiftedWeight, packedB: packedWeight)
        let cols = acc.shape.last ?? 1
        // Mul(s, Ws) first, as the chain does. The float sums of integers are the integer sums
        // (exactly, below 2^24), so Cast(acc) is acc.
        let k = weightScale.count == 1 ? [Float](repeating: s * weightScale[0], count: cols) : weightScale.map { s * $0 }
        return [try acc.withFloats(label) { a in
            Tensor.makeFloats(writingAll: acc.shape) { y in
                guard let a0 = a.baseAddress, let y0 = y.baseAddress, cols > 0 else { return }
                k.withUnsafeBufferPointer { kb in
                    guard let k0 = kb.baseAddress else { return }
                    for r in 0..<(a.count / cols) {
                        let ar = a0 + r * cols, yr = y0 + r * cols
                        for c in 0..<cols { yr[c] = ar[c] * k0[c] }
                    }
                }
            }
        }]
    }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        var out = [Tensor?](repeating: nil, count: ctx.inputs.count)
        if gradientWanted(ctx, 0), let g = elementwiseCotangent(ctx) { out[0] = try Kernels.matmul(g, dequantizedTransposed) }
        return out
    }
}
