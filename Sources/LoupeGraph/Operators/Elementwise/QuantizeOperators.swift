import LoupeTensor

/// The integer range of an ONNX quantized element type, from its `TensorProto.DataType` code.
struct QuantizedRange: Equatable, Sendable {
    let lo: Float, hi: Float
    let name: String

    init?(onnxType code: Int) {
        switch code {
        case 2: (lo, hi, name) = (0, 255, "uint8")
        case 3: (lo, hi, name) = (-128, 127, "int8")
        case 4: (lo, hi, name) = (0, 65535, "uint16")
        case 5: (lo, hi, name) = (-32768, 32767, "int16")
        case 21: (lo, hi, name) = (0, 15, "uint4")
        case 22: (lo, hi, name) = (-8, 7, "int4")
        default: return nil
        }
    }
}

extension QuantizedRange {
    /// `round(x / scale) + zeroPoint`, rounding half to even, before saturation (NaN stays NaN).
    func unclamped(_ x: Float, scale: Float, zeroPoint: Float) -> Float {
        (x / scale).rounded(.toNearestOrEven) + zeroPoint
    }

    /// QuantizeLinear's integer value of x: ``unclamped(_:scale:zeroPoint:)`` saturated to the
    /// range; NaN quantizes to the zero point.
    func quantized(_ x: Float, scale: Float, zeroPoint: Float) -> Int64 {
        let t = unclamped(x, scale: scale, zeroPoint: zeroPoint)
        return t.isNaN ? Int64(zeroPoint) : Int64(min(max(t, lo), hi))
    }

    /// The output range of a QuantizeLinear node (input 2 is its zero point): the zero point's
    /// element type, else opset 21's `output_dtype`, else uint8.
    init(quantizing ctx: OperatorContext) throws {
        var code = 2
        if ctx.hasInput(2) {
            guard let c = ctx.inputElementTypes.count > 2 ? ctx.inputElementTypes[2] : nil else {
                throw ctx.unsupported("QuantizeLinear whose zero point has no known element type (declared or stored in the file as int8, uint8, int16, uint16, int4 or uint4)")
            }
            code = c
        } else if let t = try? ctx.int("output_dtype"), t != 0 {
            code = t
        }
        guard let r = QuantizedRange(onnxType: code) else {
            throw ctx.unsupported("QuantizeLinear to element type \(code) (float8 and other non-integer outputs)")
        }
        self = r
    }
}

/// The scale and zero point of a (De)QuantizeLinear node, per tensor or per slice along `axis`.
struct QuantizationParameters {
    let scale: [Float]
    let zeroPoint: [Float]
    /// nil: one scale for the whole tensor.
    let axis: Int?

    /// Reads inputs 1 (scale) and 2 (zero point, optional: 0) for a tensor of `shape`.
    init(_ inputs: [Tensor?], shape: [Int], axisAttribute: Int, label: String) throws {
        guard inputs.count > 1, let s = inputs[1] else { throw TensorError.invalidArgument(op: label, message: "the scale input is missing") }
        let scale = s.doubles.map { Float($0) }
        let zp = inputs.count > 2 ? inputs[2].map { $0.doubles.map { Float($0) } } : nil
        if s.count == 1 && s.rank <= 1 {
            axis = nil
        } else {
            guard s.rank == 1 else {
                throw TensorError.shapeMismatch(op: "\(label) scale", expected: "a scalar or a 1-D tensor along the axis (blocked quantization is not supported)", got: [s.shape])
            }
            let a = axisAttribute < 0 ? axisAttribute + shape.count : axisAttribute
            guard a >= 0, a < shape.count, shape[a] == s.count else {
                throw TensorError.shapeMismatch(op: "\(label) scale", expected: "\(a >= 0 && a < shape.count ? shape[a] : 0) values along axis \(axisAttribute) of \(shape)", got: [s.shape])
            }
            axis = a
        }
        if let zp, zp.count != scale.count {
            throw TensorError.shapeMismatch(op: "\(label) zero point", expected: "the scale's shape [\(scale.count)]", got: [[zp.count]])
        }
        for v in scale where !(v.isFinite && v != 0) {
            throw TensorError.invalidArgument(op: label, message: "scale \(v): a quantization scale must be finite and non-zero")
        }
        self.scale = scale
        self.zeroPoint = zp ?? [Float](repeating: 0, count: scale.count)
    }

    /// Calls `body(range of flat indices, scale, zero point)` for each run sharing parameters.
    func forEachRun(shape: [Int], _ body: (Range<Int>, Float, Float) -> Void) {
        let count = shape.reduce(1, *)
        guard let axis else { body(0..<count, scale[0], zeroPoint[0]); return }
        let inner = shape[(axis + 1)...].reduce(1, *), d = shape[axis]
        var start = 0, c = 0
        while start < count {
            body(start..<(start + inner), scale[c], zeroPoint[c])
            start += inner
            c = (c + 1) % d
        }
    }
}

/// ONNX QuantizeLinear: `y = saturate(round(x / scale) + zero_point)`, rounding half to even, per
/// tensor or per slice along `axis` (opset 13). The output range is the zero point's element type
/// (uint8 without a zero point, or opset 21's `output_dtype`); the values are held as int64.
/// NaN quantizes to the zero point. Blocked quantization (`block_size`) and float8 outputs are
/// refused by name. No gradient: the output is an integer tensor.
struct QuantizeLinearOperator: Operator {
    let label: String
    let axis: Int
    let range: QuantizedRange

    init(_ ctx: OperatorContext) throws {
        try ctx.expectInputs(2, 3)
        label = ctx.label
        axis = try ctx.int("axis", default: 1)
        if try ctx.int("block_size", default: 0) != 0 { throw ctx.unsupported("QuantizeLinear with block_size (blocked quantization)") }
        range = try QuantizedRange(quantizing: ctx)
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try elementwiseOperand(inputs, 0, label)
        let p = try QuantizationParameters(inputs, shape: x.shape, axisAttribute: axis, label: label)
        let v = try x.floats(label)
        var q = [Int64](repeating: 0, count: v.count)
        p.forEachRun(shape: x.shape) { run, scale, zp in
            for i in run { q[i] = range.quantized(v[i], scale: scale, zeroPoint: zp) }
        }
        return [try Tensor(shape: x.shape, ints: q)]
    }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        if gradientWanted(ctx, 0) { throw quantizedGradient(label, "QuantizeLinear") }
        return Array(repeating: nil, count: ctx.inputs.count)
    }
}

/// Why no gradient crosses a quantization step, naming it.
func quantizedGradient(_ node: String, _ opType: String) -> GraphError {
    .notDifferentiable(node: node, opType: opType,
                       reason: "a quantized (integer) value carries no gradient: rounding's derivative is zero almost everywhere; gradient-free methods (Eigen-CAM, Score-CAM, Ablation-CAM) still run")
}

/// ONNX DequantizeLinear: `y = (x − zero_point) · scale`, per tensor or per slice along `axis`,
/// for integer x (int8, uint8, int16, uint16, int32, int4, uint4, held as int64). Its float
/// output gets no gradient back to x, an integer tensor.
struct DequantizeLinearOperator: Operator {
    let label: String
    let axis: Int

    init(_ ctx: OperatorContext) throws {
        try ctx.expectInputs(2, 3)
        label = ctx.label
        axis = try ctx.int("axis", default: 1)
        if try ctx.int("block_size", default: 0) != 0 { throw ctx.unsupported("DequantizeLinear with block_size (blocked quantization)") }
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try elementwiseOperand(inputs, 0, label)
        let p = try QuantizationParameters(inputs, shape: x.shape, axisAttribute: axis, label: label)
        let v = x.doubles
        var y = [Float](repeating: 0, count: v.count)
        p.forEachRun(shape: x.shape) { run, scale, zp in
            for i in run { y[i] = Float(v[i] - Double(zp)) * scale }
        }
        return [try Tensor(shape: x.shape, floats: y)]
    }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        if gradientWanted(ctx, 0) { throw quantizedGradient(label, "DequantizeLinear") }
        return Array(repeating: nil, count: ctx.inputs.count)
    }
}

/// A QuantizeLinear → DequantizeLinear pair with the same scale, zero point and axis, run as one
/// float → float step (``Graph/fusingQuantizeDequantizePairs()``): the forward value is exactly
/// the pair's, `(saturate(round(x/s) + z) − z)·s`, and the backward pass is PyTorch's
/// fake-quantize rule (`torch.fake_quantize_per_tensor_affine` / `_per_channel_affine`, the
/// straight-through estimator of Bengio et al. 2013 with clipping): the cotangent passes where
/// `round(x/s) + z` lies in the integer range, and is zero where it saturated.
struct QuantizeDequantizeOperator: Operator {
    /// The pair's QuantizeLinear: its attributes, range and rounding.
    let quantize: QuantizeLinearOperator
    var label: String { quantize.label }
    var axis: Int { quantize.axis }
    var range: QuantizedRange { quantize.range }

    init(_ ctx: OperatorContext) throws { quantize = try QuantizeLinearOperator(ctx) }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try elementwiseOperand(inputs, 0, label)
        let p = try QuantizationParameters(inputs, shape: x.shape, axisAttribute: axis, label: label)
        let v = try x.floats(label)
        let (lo, hi) = (range.lo, range.hi)
        // The same operations as QuantizeLinear then DequantizeLinear (integers below 2^24 make
        // the subtraction exact in float), so the same bits, in one vectorised pass per run.
        return [Tensor.makeFloats(writingAll: x.shape) { y in
            v.withUnsafeBufferPointer { vb in
                guard let v0 = vb.baseAddress, let y0 = y.baseAddress else { return }
                p.forEachRun(shape: x.shape) { run, scale, zp in
                    Kernels.fakeQuantize(v0 + run.lowerBound, y0 + run.lowerBound, count: run.count, scale: scale, zeroPoint: zp, lo: lo, hi: hi)
                }
            }
        }]
    }

    var backwardNeeds: BackwardNeeds { .allInputs(3) }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        var out = [Tensor?](repeating: nil, count: ctx.inputs.count)
        guard gradientWanted(ctx, 0), let g = elementwiseCotangent(ctx) else { return out }
        let x = try ctx.input(0, label)
        let p = try QuantizationParameters(ctx.inputs, shape: x.shape, axisAttribute: axis, label: label)
        let v = try x.floats(label), gv = try g.floats(label)
        let (lo, hi) = (range.lo, range.hi)
        out[0] = Tensor.makeFloats(writingAll: x.shape) { gx in
            v.withUnsafeBufferPointer { vb in gv.withUnsafeBufferPointer { gb in
                guard let v0 = vb.baseAddress, let g0 = gb.baseAddress, let o0 = gx.baseAddress else { return }
                p.forEachRun(shape: x.shape) { run, scale, zp in
                    Kernels.fakeQuantizeGradient(v0 + run.lowerBound, g0 + run.lowerBound, o0 + run.lowerBound, count: run.count,
                                                 scale: scale, zeroPoint: zp, lo: lo, hi: hi)
                }
            } }
        }
        return out
    }
}
