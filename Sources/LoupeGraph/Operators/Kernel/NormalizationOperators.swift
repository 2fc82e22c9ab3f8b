import LoupeTensor

/// ONNX BatchNormalization in inference mode: y = scale·(x − mean)/√(var + ε) + B per channel
/// (axis 1) of X (N, C, ...). training_mode = 1 (running-stat updates) is not supported.
/// VJP wrt X, scale, B, mean and var.
struct BatchNormalizationOperator: Operator {
    let epsilon: Float
    let label: String

    init(_ ctx: OperatorContext) throws {
        try ctx.expectInputs(5)
        label = ctx.label
        epsilon = try ctx.float("epsilon", default: 1e-5)
        if try ctx.int("training_mode", default: 0) != 0 { throw ctx.unsupported("training_mode = 1 is not supported") }
        if ctx.opset < 9, try ctx.int("spatial", default: 1) != 1 { throw ctx.unsupported("spatial = 0 is not supported") }
        let outs = ctx.node.outputs.dropFirst().filter { !$0.isEmpty }
        if !outs.isEmpty { throw ctx.unsupported("the training outputs (running mean/var) are not supported") }
    }

    private struct Parts { var x: [Float]; var scale: [Float]; var bias: [Float]; var mean: [Float]; var variance: [Float]; var c: Int; var plane: Int; var n: Int }

    private func parts(_ inputs: [Tensor?]) throws -> Parts {
        let x = try kernelInput(inputs, 0, label)
        guard x.rank >= 2 else { throw GraphError.invalid("\(label): X must be (N, C, ...), got \(x.shape)") }
        let c = x.shape[1]
        var vs: [[Float]] = []
        for i in 1...4 {
            let t = try kernelInput(inputs, i, label)
            guard t.count == c else {
                throw GraphError.invalid("\(label): input \(i) must have \(c) elements (one per channel), got shape \(t.shape)")
            }
            vs.append(try t.floats(label))
        }
        return Parts(x: try x.floats(label), scale: vs[0], bias: vs[1], mean: vs[2], variance: vs[3], c: c,
                     plane: x.shape.dropFirst(2).reduce(1, *), n: x.shape[0])
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let p = try parts(inputs)
        var a = [Float](repeating: 0, count: p.c), b = a
        for ch in 0..<p.c {
            a[ch] = p.scale[ch] / (p.variance[ch] + epsilon).squareRoot()
            b[ch] = p.bias[ch] - p.mean[ch] * a[ch]
        }
        var y = [Float](repeating: 0, count: p.x.count)
        p.x.withUnsafeBufferPointer { xb in y.withUnsafeMutableBufferPointer { yb in
            Kernels.channelAffine(xb, yb, a: a, b: b, n: p.n, plane: p.plane)
        } }
        return [try Tensor(shape: try kernelInput(inputs, 0, label).shape, floats: y)]
    }

    var backwardNeeds: BackwardNeeds { .allInputs(5) }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        var grads: [Tensor?] = Array(repeating: nil, count: ctx.inputs.count)
        guard let gyT = ctx.gradOutputs.first ?? nil else { return grads }
        let p = try parts(ctx.inputs)
        let gy = try gyT.floats(label)
        var gx = [Float](repeating: 0, count: p.x.count)
        var gScale = [Float](repeating: 0, count: p.c), gBias = gScale, gMean = gScale, gVar = gScale
        for ch in 0..<p.c {
            let inv = 1 / (p.variance[ch] + epsilon).squareRoot()
            let a = p.scale[ch] * inv
            var sg: Float = 0, sgx: Float = 0
            for img in 0..<p.n {
                let base = (img * p.c + ch) * p.plane
                for i in base..<(base + p.plane) {
                    gx[i] = a * gy[i]
                    sg += gy[i]
                    sgx += gy[i] * (p.x[i] - p.mean[ch])
                }
            }
            gScale[ch] = sgx * inv
            gBias[ch] = sg
            gMean[ch] = -a * sg
            gVar[ch] = -0.5 * p.scale[ch] * sgx * inv * inv * inv
        }
        let shapes = ctx.inputShapes.map { $0 ?? [p.c] }
        let all = [gx, gScale, gBias, gMean, gVar]
        for i in 0..<min(5, ctx.wantInput.count) where ctx.wantInput[i] {
            grads[i] = try Tensor(shape: shapes[i], floats: all[i])
        }
        return grads
    }
}

/// `count` floats filled by `body` (no zeroing pass: the kernels write every element).
private func filledFloats(_ count: Int, _ body: (UnsafeMutableBufferPointer<Float>) -> Void) -> [Float] {
    [Float](unsafeUninitializedCapacity: count) { buf, n in
        body(buf)
        n = count
    }
}

/// ONNX LayerNormalization (opset 17): normalises over axes [axis, rank) with Scale and
/// optional B of the normalised shape (or one element); optional outputs Mean and InvStdDev
/// (shape X.shape[..<axis] + ones). VJP wrt X, Scale and B, including the cotangents of Mean and
/// InvStdDev when those outputs are used.
struct LayerNormalizationOperator: Operator {
    let axis: Int
    let epsilon: Float
    let label: String

    init(_ ctx: OperatorContext) throws {
        try ctx.expectInputs(2, 3)
        label = ctx.label
        axis = try ctx.int("axis", default: -1)
        epsilon = try ctx.float("epsilon", default: 1e-5)
    }

    private func layout(_ x: Tensor, _ scale: Tensor, _ bias: Tensor?) throws -> (rows: Int, d: Int, statShape: [Int], a: Int) {
        let a = try Shape.normalizeAxis(axis, rank: x.rank, op: label)
        let d = x.shape[a...].reduce(1, *)
        for t in [scale, bias].compactMap({ $0 }) where t.count != d && t.count != 1 {
            throw GraphError.invalid("\(label): Scale/B must have the normalised shape \(Array(x.shape[a...])) (\(d) elements), got \(t.shape)")
        }
        return (x.count / max(d, 1), d, Array(x.shape[..<a]) + [Int](repeating: 1, count: x.rank - a), a)
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try kernelInput(inputs, 0, label), scale = try kernelInput(inputs, 1, label)
        let bias = inputs.count > 2 ? inputs[2] : nil
        let l = try layout(x, scale, bias)
        let s = try scale.floats(label), b = try bias?.floats(label), X = try x.floats(label)
        var mean = [Float](repeating: 0, count: l.rows), inv = mean
        let y = X.withUnsafeBufferPointer { xb in s.withUnsafeBufferPointer { sb in
            filledFloats(X.count) { yb in
                mean.withUnsafeMutableBufferPointer { mb in inv.withUnsafeMutableBufferPointer { ib in
                    if let b {
                        b.withUnsafeBufferPointer { bb in
                            Kernels.normalizeRows(xb, yb, rows: l.rows, d: l.d, epsilon: epsilon, scale: sb, scaleRow: 0,
                                                  scaleInner: s.count == 1 ? 0 : 1, bias: bb, biasRow: 0,
                                                  biasInner: b.count == 1 ? 0 : 1, mean: mb, invStd: ib)
                        }
                    } else {
                        Kernels.normalizeRows(xb, yb, rows: l.rows, d: l.d, epsilon: epsilon, scale: sb, scaleRow: 0,
                                              scaleInner: s.count == 1 ? 0 : 1, bias: nil, biasRow: 0, biasInner: 0,
                                              mean: mb, invStd: ib)
                    }
                } }
            }
        } }
        return [try Tensor(shape: x.shape, floats: y), try Tensor(shape: l.statShape, floats: mean),
                try Tensor(shape: l.statShape, floats: inv)]
    }

    var backwardNeeds: BackwardNeeds { BackwardNeeds(inputs: [0, 1]) }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        let x = try ctx.input(0, label), scale = try ctx.input(1, label)
        var grads: [Tensor?] = Array(repeating: nil, count: ctx.inputs.count)
        let l = try layout(x, scale, nil)
        let X = try x.floats(label), S = try scale.floats(label)
        let (mean, inv) = X.withUnsafeBufferPointer { Kernels.rowMoments($0, rows: l.rows, d: l.d, epsilon: epsilon) }
        let gy = try ctx.gradOutputs.first.flatMap { $0 }?.floats(label) ?? [Float](repeating: 0, count: X.count)
        let gMean = try (ctx.gradOutputs.count > 1 ? ctx.gradOutputs[1] : nil)?.floats(label)
        let gInv = try (ctx.gradOutputs.count > 2 ? ctx.gradOutputs[2] : nil)?.floats(label)
        var gScale = [Float](repeating: 0, count: l.d), gBias = [Float](repeating: 0, count: l.d)
        let gx = X.withUnsafeBufferPointer { xb in gy.withUnsafeBufferPointer { gb in S.withUnsafeBufferPointer { sb in
            filledFloats(X.count) { gxb in
                gScale.withUnsafeMutableBufferPointer { gs in gBias.withUnsafeMutableBufferPointer { gbias in
                    Kernels.normalizeRowsBackward(x: xb, grad: gb, rows: l.rows, d: l.d, mean: mean, invStd: inv, scale: sb,
                                                  scaleInner: S.count == 1 ? 0 : 1, gradMean: gMean, gradInvStd: gInv,
                                                  gx: gxb, gScale: gs, gBias: gbias)
                } }
            }
        } } }
        if ctx.wantInput[0] { grads[0] = try Tensor(shape: x.shape, floats: gx) }
        if ctx.wantInput.count > 1 && ctx.wantInput[1] {
            grads[1] = S.count == 1 ? try Tensor(scalar: gScale.reduce(0, +)).reshaped(scale.shape) : try Tensor(shape: scale.shape, floats: gScale)
        }
        if ctx.wantInput.count > 2 && ctx.wantInput[2], let bshape = ctx.inputShapes.count > 2 ? ctx.inputShapes[2] : nil {
            grads[2] = bshape.reduce(1, *) == 1 ? try Tensor(scalar: gBias.reduce(0, +)).reshaped(bshape) : try Tensor(shape: bshape, floats: gBias)
        }
        return grads
    }
}

/// ONNX InstanceNormalization: each (n, c) plane of X (N, C, spatial...) normalised over its
/// spatial elements, then scale[c]·x̂ + B[c]. VJP wrt X, scale and B.
struct InstanceNormalizationOperator: Operator {
    let epsilon: Float
    let label: String

    init(_ ctx: OperatorContext) throws {
        try ctx.expectInputs(3)
        label = ctx.label
        epsilon = try ctx.float("epsilon", default: 1e-5)
    }

    private func layout(_ x: Tensor, _ scale: Tensor, _ bias: Tensor) throws -> (c: Int, rows: Int, d: Int) {
        guard x.rank >= 3 else { throw GraphError.invalid("\(label): X must be (N, C, spatial...), got \(x.shape)") }
        let c = x.shape[1]
        guard scale.count == c, bias.count == c else {
            throw GraphError.invalid("\(label): scale and B need \(c) elements, got \(scale.shape) and \(bias.shape)")
        }
        return (c, x.shape[0] * c, x.shape.dropFirst(2).reduce(1, *))
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try kernelInput(inputs, 0, label), scale = try kernelInput(inputs, 1, label), bias = try kernelInput(inputs, 2, label)
        let l = try layout(x, scale, bias)
        let s = try scale.floats(label), b = try bias.floats(label), X = try x.floats(label)
        // One call per image: its C rows take scale[c] and B[c] (row stride 1, inner stride 0).
        let images = l.c == 0 ? 0 : l.rows / l.c, block = l.c * l.d
        let y = X.withUnsafeBufferPointer { xb in s.withUnsafeBufferPointer { sb in b.withUnsafeBufferPointer { bb in
            filledFloats(X.count) { yb in
                for img in 0..<images {
                    let range = (img * block)..<((img + 1) * block)
                    Kernels.normalizeRows(UnsafeBufferPointer(rebasing: xb[range]), UnsafeMutableBufferPointer(rebasing: yb[range]),
                                          rows: l.c, d: l.d, epsilon: epsilon, scale: sb, scaleRow: 1, scaleInner: 0,
                                          bias: bb, biasRow: 1, biasInner: 0, mean: nil, invStd: nil)
                }
            }
        } } }
        return [try Tensor(shape: x.shape, floats: y)]
    }

    var backwardNeeds: BackwardNeeds { BackwardNeeds(inputs: [0, 1, 2]) }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        let x = try ctx.input(0, label), scale = try ctx.input(1, label), bias = try ctx.input(2, label)
        var grads: [Tensor?] = Array(repeating: nil, count: ctx.inputs.count)
        guard let gyT = ctx.gradOutputs.first ?? nil else { return grads }
        let l = try layout(x, scale, bias)
        let X = try x.floats(label), S = try scale.floats(label), gy = try gyT.floats(label)
        let (mean, inv) = X.withUnsafeBufferPointer { Kernels.rowMoments($0, rows: l.rows, d: l.d, epsilon: epsilon) }
        var gx = [Float](repeating: 0, count: X.count)
        var gScale = [Float](repeating: 0, count: l.c), gBias = gScale
        X.withUnsafeBufferPointer { xb in gy.withUnsafeBufferPointer { gb in gx.withUnsafeMutableBufferPointer { gxb in
            guard let x0 = xb.baseAddress, let g0 = gb.baseAddress, let gx0 = gxb.baseAddress, l.d > 0 else { return } // empty tensor
            for r in 0..<l.rows {
                let base = r * l.d, ch = r % l.c
                let sums = Kernels.normalizeRowBackward(x: x0 + base, grad: g0 + base, d: l.d, mean: mean[r], invStd: inv[r],
                                                        scale: S[ch], into: gx0 + base)
                gScale[ch] += sums.sumGradXHat
                gBias[ch] += sums.sumGrad
            }
        } } }
        if ctx.wantInput[0] { grads[0] = try Tensor(shape: x.shape, floats: gx) }
        if ctx.wantInput.count > 1 && ctx.wantInput[1] { grads[1] = try Tensor(shape: scale.shape, floats: gScale) }
        if ctx.wantInput.count > 2 && ctx.wantInput[2] { grads[2] = try Tensor(shape: bias.shape, floats: gBias) }
        return grads
    }
}
