import LoupeTensor

/// ONNX Conv (opsets 1–22), 1-D and 2-D: X (N, C, spatial), W (M, C/group, kernel), optional
/// B (M). Cross-correlation with strides, dilations, begin/end pads or auto_pad, and groups
/// (depthwise when group == C). VJP wrt X, W and B.
struct ConvOperator: ActivationFusable {
    let window: WindowAttributes
    let groups: Int
    let label: String
    /// The weight packed for the GEMM at load time when it is a constant (not for depthwise
    /// convolutions, which do not use the GEMM).
    let packed: PackedConvWeights?

    init(_ ctx: OperatorContext) throws {
        try ctx.expectInputs(2, 3)
        label = ctx.label
        window = try WindowAttributes(ctx, requireKernel: false)
        groups = try ctx.int("group", default: 1)
        guard groups >= 1 else { throw ctx.bad("group", "must be >= 1") }
        packed = ConvOperator.pack(ctx.constantInputs.count > 1 ? ctx.constantInputs[1] : nil, groups: groups)
    }

    /// Packs a constant float weight of rank 3 or 4; nil when there is none or it does not
    /// qualify (a bad weight is reported by `forward` with the data in hand).
    private static func pack(_ w: Tensor?, groups: Int) -> PackedConvWeights? {
        guard let w, w.dtype == .float32, w.rank == 3 || w.rank == 4, w.count > 0 else { return nil }
        guard let w4 = try? (w.rank == 3 ? w.reshaped([w.shape[0], w.shape[1], 1, w.shape[2]]) : w) else { return nil }
        if groups > 1 && w4.shape[1] == 1 && w4.shape[0] == groups { return nil } // depthwise
        return try? PackedConvWeights(weight: w4, groups: groups)
    }

    /// Input, weight and geometry in 2-D form.
    private func prepare(_ x: Tensor, _ w: Tensor) throws -> (Tensor, Tensor, ConvGeometry) {
        guard x.rank == w.rank, x.rank == 3 || x.rank == 4 else {
            if x.rank == 5 && w.rank == 5 { throw window.volumetric }
            throw GraphError.invalid("\(label): X \(x.shape) and W \(w.shape) must both be rank 3 or both rank 4")
        }
        let g = try window.geometry(spatial: Array(x.shape.dropFirst(2)), kernel: Array(w.shape.dropFirst(2)), groups: groups)
        let w4 = w.rank == 3 ? try w.reshaped([w.shape[0], w.shape[1], 1, w.shape[2]]) : w
        return (try kernelLiftTo2D(x, label), w4, g)
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] { try run(inputs, activation: .none) }

    func forwardFusing(_ inputs: [Tensor?], activation: ConvActivation) throws -> [Tensor] {
        try run(inputs, activation: activation)
    }

    /// The convolution of `a · b` (ONNX Mul, broadcasting), with `inputs` its other inputs
    /// (weight, bias; input 0 ignored). When one operand is one scale per image and channel of the
    /// other (N, C, 1, 1), a squeeze-excitation product, and the layer is pointwise, the scale is
    /// folded into the GEMM (``Kernels/conv2dScaledInput(_:scale:weight:bias:geometry:packed:activation:)``);
    /// otherwise the product is made and convolved.
    func forwardScalingInput(_ a: Tensor, _ b: Tensor, _ inputs: [Tensor?]) throws -> (outputs: [Tensor], inputShape: [Int]) {
        let w = try kernelInput(inputs, 1, label)
        let bias = inputs.count > 2 ? inputs[2] : nil
        for (x, s) in [(a, b), (b, a)] where x.rank == 4 && w.rank == 4 {
            let g = try window.geometry(spatial: Array(x.shape.dropFirst(2)), kernel: Array(w.shape.dropFirst(2)), groups: groups)
            if let y = try Kernels.conv2dScaledInput(x, scale: s, weight: w, bias: bias, geometry: g, packed: packed,
                                                     activation: .none) {
                return ([y], x.shape)
            }
        }
        let product = try Tensor.binary(.mul, a, b, name: label)
        var args = inputs
        args[0] = product
        return (try run(args, activation: .none), product.shape)
    }

    private func run(_ inputs: [Tensor?], activation: ConvActivation) throws -> [Tensor] {
        let x = try kernelInput(inputs, 0, label), w = try kernelInput(inputs, 1, label)
        let b = inputs.count > 2 ? inputs[2] : nil
        let (x4, w4, g) = try prepare(x, w)
        let y = try Kernels.conv2d(x4, weight: w4, bias: b, geometry: g, packed: packed, activation: activation)
        return [try kernelLowerFrom2D(y, rank: x.rank)]
    }

    var backwardNeeds: BackwardNeeds { BackwardNeeds(inputs: [0, 1]) }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        let x = try ctx.input(0, label), w = try ctx.input(1, label)
        var grads: [Tensor?] = Array(repeating: nil, count: ctx.inputs.count)
        guard let gy = ctx.gradOutputs.first ?? nil else { return grads }
        let (x4, w4, g) = try prepare(x, w)
        let gy4 = try kernelLiftTo2D(gy, label)
        if ctx.wantInput[0] {
            grads[0] = try Kernels.conv2dBackwardInput(gy4, weight: w4, inputShape: x4.shape, geometry: g, packed: packed)
                .reshaped(x.shape)
        }
        if ctx.wantInput.count > 1 && ctx.wantInput[1] {
            grads[1] = try Kernels.conv2dBackwardWeight(gy4, input: x4, weightShape: w4.shape, geometry: g).reshaped(w.shape)
        }
        if ctx.wantInput.count > 2 && ctx.wantInput[2] && ctx.inputShapes.count > 2 && ctx.inputShapes[2] != nil {
            grads[2] = try Kernels.channelSum(gy4)
        }
        return grads
    }
}

/// ONNX ConvTranspose (opsets 1–22), 1-D and 2-D: X (N, C, spatial), W (C, M/group, kernel),
/// optional B (M). Output size from pads and output_padding, or from output_shape / auto_pad
/// with the total padding split as the ONNX spec states. VJP wrt X, W and B.
struct ConvTransposeOperator: Operator {
    let window: WindowAttributes
    let groups: Int
    let outputPadding: [Int]?
    let outputShape: [Int]?
    let label: String

    init(_ ctx: OperatorContext) throws {
        try ctx.expectInputs(2, 3)
        label = ctx.label
        window = try WindowAttributes(ctx, requireKernel: false)
        groups = try ctx.int("group", default: 1)
        guard groups >= 1 else { throw ctx.bad("group", "must be >= 1") }
        outputPadding = ctx.has("output_padding") ? try ctx.ints("output_padding") : nil
        outputShape = ctx.has("output_shape") ? try ctx.ints("output_shape") : nil
        if let op = outputPadding, op.contains(where: { $0 < 0 }) { throw ctx.bad("output_padding", "must be non-negative") }
    }

    /// Geometry of the convolution this one transposes, plus the output spatial size.
    private func prepare(_ x: Tensor, _ w: Tensor) throws -> (Tensor, Tensor, ConvGeometry, (Int, Int), extra: (Int, Int)) {
        guard x.rank == w.rank, x.rank == 3 || x.rank == 4 else {
            if x.rank == 5 && w.rank == 5 { throw window.volumetric }
            throw GraphError.invalid("\(label): X \(x.shape) and W \(w.shape) must both be rank 3 or both rank 4")
        }
        let r = x.rank - 2
        let spatial = Array(x.shape.dropFirst(2)), kernel = Array(w.shape.dropFirst(2))
        // Explicit pads (or none); SAME/VALID/output_shape are resolved below.
        var attrs = window
        if attrs.autoPad != .notSet { attrs.autoPad = .valid }
        var g = try attrs.geometry(spatial: spatial, kernel: kernel, groups: groups)
        let outPad = outputPadding ?? [Int](repeating: 0, count: r)
        guard outPad.count == r else { throw GraphError.invalid("\(label): output_padding needs \(r) values") }
        try g.validate(op: label)
        let limit = 1 << 20
        guard outPad.allSatisfy({ $0 >= 0 && $0 <= limit }), (outputShape ?? []).allSatisfy({ $0 >= 0 && $0 <= limit }) else {
            throw GraphError.invalid("\(label): output_padding and output_shape must lie in 0...\(limit)")
        }
        let ks = r == 1 ? [g.kernelW] : [g.kernelH, g.kernelW]
        let st = r == 1 ? [g.strideW] : [g.strideH, g.strideW]
        let dl = r == 1 ? [g.dilationW] : [g.dilationH, g.dilationW]
        var begin = r == 1 ? [g.padLeft] : [g.padTop, g.padLeft]
        var end = r == 1 ? [g.padRight] : [g.padBottom, g.padRight]
        var out = [Int](repeating: 0, count: r)
        // An output_shape larger than the kernel can produce: the reference and onnxruntime
        // append zero rows/columns at the end (negative end padding).
        var extra = [Int](repeating: 0, count: r)
        let wanted: [Int]? = outputShape.map { Array($0.suffix(r)) }
        if let os = outputShape, os.count < r { throw GraphError.invalid("\(label): output_shape needs \(r) spatial values") }
        for i in 0..<r {
            let full = st[i] * (spatial[i] - 1) + outPad[i] + (ks[i] - 1) * dl[i] + 1
            if wanted != nil || window.autoPad == .sameUpper || window.autoPad == .sameLower {
                out[i] = wanted?[i] ?? spatial[i] * st[i]
                var total = full - out[i]
                if total < 0 && wanted != nil {
                    extra[i] = -total
                    out[i] = full
                    total = 0
                }
                guard total >= 0 else {
                    throw GraphError.invalid("\(label): output size \(out[i]) exceeds the \(full) the kernel can produce")
                }
                if window.autoPad == .sameUpper { begin[i] = total / 2; end[i] = total - total / 2 } else { begin[i] = total - total / 2; end[i] = total / 2 }
            } else {
                out[i] = full - begin[i] - end[i]
            }
            guard out[i] > 0 else { throw GraphError.invalid("\(label): pads leave an empty output") }
        }
        if r == 1 {
            g.padLeft = begin[0]; g.padRight = end[0]
        } else {
            g.padTop = begin[0]; g.padLeft = begin[1]; g.padBottom = end[0]; g.padRight = end[1]
        }
        let w4 = w.rank == 3 ? try w.reshaped([w.shape[0], w.shape[1], 1, w.shape[2]]) : w
        return (try kernelLiftTo2D(x, label), w4, g, r == 1 ? (1, out[0]) : (out[0], out[1]),
                r == 1 ? (0, extra[0]) : (extra[0], extra[1]))
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try kernelInput(inputs, 0, label), w = try kernelInput(inputs, 1, label)
        let b = inputs.count > 2 ? inputs[2] : nil
        let (x4, w4, g, size, extra) = try prepare(x, w)
        var y = try Kernels.convTranspose2d(x4, weight: w4, bias: b, geometry: g, outputSize: size)
        if extra != (0, 0) { y = try ConvTransposeOperator.resizePlanes(y, to: (size.0 + extra.0, size.1 + extra.1)) }
        return [try kernelLowerFrom2D(y, rank: x.rank)]
    }

    var backwardNeeds: BackwardNeeds { BackwardNeeds(inputs: [0, 1]) }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        let x = try ctx.input(0, label), w = try ctx.input(1, label)
        var grads: [Tensor?] = Array(repeating: nil, count: ctx.inputs.count)
        guard let gy = ctx.gradOutputs.first ?? nil else { return grads }
        let (x4, w4, g, size, extra) = try prepare(x, w)
        var gy4 = try kernelLiftTo2D(gy, label)
        if extra != (0, 0) { gy4 = try ConvTransposeOperator.resizePlanes(gy4, to: size) }
        if ctx.wantInput[0] {
            grads[0] = try Kernels.convTranspose2dBackwardInput(gy4, weight: w4, geometry: g).reshaped(x.shape)
        }
        if ctx.wantInput.count > 1 && ctx.wantInput[1] {
            grads[1] = try Kernels.convTranspose2dBackwardWeight(gy4, input: x4, weightShape: w4.shape, geometry: g).reshaped(w.shape)
        }
        if ctx.wantInput.count > 2 && ctx.wantInput[2] && ctx.inputShapes.count > 2 && ctx.inputShapes[2] != nil {
            grads[2] = try Kernels.channelSum(gy4)
        }
        return grads
    }

    /// Copies each (H, W) plane of an NCHW tensor into a zero plane of `size`, keeping the
    /// top-left corner: extends with zeros (forward) or crops (its adjoint).
    static func resizePlanes(_ t: Tensor, to size: (Int, Int)) throws -> Tensor {
        let (h, w) = (t.shape[2], t.shape[3])
        let planes = t.shape[0] * t.shape[1]
        let src = try t.floats()
        return Tensor.makeFloats(shape: [t.shape[0], t.shape[1], size.0, size.1]) { dst in
            for p in 0..<planes {
                for i in 0..<min(h, size.0) {
                    for j in 0..<min(w, size.1) { dst[(p * size.0 + i) * size.1 + j] = src[(p * h + i) * w + j] }
                }
            }
        }
    }
}
