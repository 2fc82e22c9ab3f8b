import LoupeTensor

/// ONNX MaxPool and AveragePool over (N, C, T, H, W) (3-D video pools), as the 2-D pool of
/// every frame followed by a pool over the frames each output frame's temporal window covers:
/// the max of a window is the max over its frames of each frame's 2-D max, and both average
/// divisors (with or without `count_include_pad`) factor into a temporal and a 2-D count. Ties
/// in MaxPool go to the first frame, then to the 2-D kernel's first position (PyTorch's scan
/// order). VJPs route through the 2-D VJPs.
struct Pool3DOperator: Operator {
    let kind: PoolOperator.Kind
    let window: VolumeWindow
    let ceilMode: Bool
    let countIncludePad: Bool
    let label: String

    init(_ ctx: OperatorContext, kind: PoolOperator.Kind) throws {
        try ctx.expectInputs(1)
        self.kind = kind
        label = ctx.label
        window = try VolumeWindow(ctx, requireKernel: true,
                                  allowDilations: (kind == .max ? ctx.opset >= 10 : ctx.opset >= 19) || !ctx.has("dilations"))
        ceilMode = try ctx.int("ceil_mode", default: 0) != 0
        countIncludePad = try ctx.int("count_include_pad", default: 0) != 0
        if kind == .max && ctx.node.outputs.count > 1 && !ctx.node.outputs[1].isEmpty {
            throw ctx.unsupported("the Indices output of MaxPool is not supported")
        }
    }

    /// Every frame as a (N·T, C, H, W) batch.
    private func frames(_ x: Tensor) throws -> Tensor {
        try x.permuted(VolumeWindow.framesMajor).reshaped([x.shape[0] * x.shape[2], x.shape[1], x.shape[3], x.shape[4]])
    }

    /// The temporal taps of output frame `o` inside the input, and the divisor the 2-D average
    /// does not cover (taps inside, or inside the padding too with `count_include_pad`).
    private func taps(_ p: VolumeWindow.Plan, _ o: Int, frames t: Int) -> (inside: [Int], divisor: Float) {
        var inside: [Int] = [], padded = 0
        for k in 0..<p.kT {
            let f = p.frame(o, tap: k)
            if f >= 0 && f < t { inside.append(f) }
            if f >= -p.padT && f < t + p.padTEnd { padded += 1 }
        }
        return (inside, Float(max(countIncludePad ? padded : inside.count, 1)))
    }

    private func pooled(_ x: Tensor, _ p: VolumeWindow.Plan) throws -> Tensor {
        let batch = try frames(x)
        return kind == .max
            ? try Kernels.maxPool2d(batch, geometry: p.frame, ceilMode: ceilMode)
            : try Kernels.averagePool2d(batch, geometry: p.frame, ceilMode: ceilMode, countIncludePad: countIncludePad)
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try kernelInput(inputs, 0, label)
        let p = try window.plan(x.shape, ceilMode: ceilMode, label: label)
        let framesPooled = try pooled(x, p)
        let (n, c, t) = (x.shape[0], x.shape[1], x.shape[2]), (oh, ow) = (framesPooled.shape[2], framesPooled.shape[3])
        let v = try framesPooled.floats(label), hw = oh * ow
        var y = [Float](repeating: 0, count: n * c * p.outT * hw)
        for o in 0..<p.outT {
            let (inside, divisor) = taps(p, o, frames: t)
            for b in 0..<n { for ch in 0..<c {
                let dst = ((b * c + ch) * p.outT + o) * hw
                for i in 0..<hw {
                    var acc: Float = kind == .max ? -.infinity : 0
                    for f in inside {
                        let u = v[((b * t + f) * c + ch) * hw + i]
                        if kind == .max { if u > acc || u.isNaN { acc = u } } else { acc += u }
                    }
                    y[dst + i] = kind == .max ? acc : acc / divisor
                }
            } }
        }
        return [try Tensor(shape: [n, c, p.outT, oh, ow], floats: y)]
    }

    var backwardNeeds: BackwardNeeds { BackwardNeeds(inputs: [0]) }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        guard ctx.wantInput.first == true, let gy = ctx.gradOutputs.first ?? nil else { return [nil] }
        let x = try ctx.input(0, label)
        let p = try window.plan(x.shape, ceilMode: ceilMode, label: label)
        let s = x.shape, (n, c, t) = (s[0], s[1], s[2])
        let batch = try frames(x)
        let framesPooled = kind == .max ? try Kernels.maxPool2d(batch, geometry: p.frame, ceilMode: ceilMode) : nil
        let (oh, ow) = (gy.shape[3], gy.shape[4]), hw = oh * ow
        let g = try gy.floats(label), v = try framesPooled?.floats(label)
        // Cotangent of each frame's 2-D pool.
        var gf = [Float](repeating: 0, count: n * t * c * hw)
        for o in 0..<p.outT {
            let (inside, divisor) = taps(p, o, frames: t)
            for b in 0..<n { for ch in 0..<c {
                let src = ((b * c + ch) * p.outT + o) * hw
                for i in 0..<hw {
                    if let v {
                        // The first frame holding the maximum takes it all.
                        var best = -1, m: Float = -.infinity
                        for f in inside {
                            let u = v[((b * t + f) * c + ch) * hw + i]
                            if best < 0 || u > m || (u.isNaN && !m.isNaN) { best = f; m = u }
                        }
                        if best >= 0 { gf[((b * t + best) * c + ch) * hw + i] += g[src + i] }
                    } else {
                        for f in inside { gf[((b * t + f) * c + ch) * hw + i] += g[src + i] / divisor }
                    }
                }
            } }
        }
        let gft = try Tensor(shape: [n * t, c, oh, ow], floats: gf)
        let gb = kind == .max
            ? try Kernels.maxPool2dBackward(gft, input: batch, geometry: p.frame, ceilMode: ceilMode)
            : try Kernels.averagePool2dBackward(gft, inputShape: batch.shape, geometry: p.frame, ceilMode: ceilMode,
                                                countIncludePad: countIncludePad)
        return [try gb.reshaped([n, t, c, s[3], s[4]]).permuted(VolumeWindow.framesMajor)]
    }
}
