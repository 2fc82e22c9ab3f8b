import LoupeTensor

/// ONNX Conv with three spatial dimensions (video models: X (N, C, T, H, W), W (M, C/group,
/// kT, kH, kW), optional B (M)), as kT two-dimensional convolutions over frames: output frame t
/// is Σ_k conv2d(frame t·sT − padT + k·dT of X, W[:, :, k]), frames outside X counting as zero.
/// Each k is one batched 2-D convolution of the frames it reads, so the 2-D kernels (packing,
/// threading, depthwise) do the work. Strides, dilations, pads or auto_pad, and groups; VJP wrt
/// X, W and B through the 2-D VJPs.
struct Conv3DOperator: Operator {
    let window: VolumeWindow
    let groups: Int
    let label: String

    init(_ ctx: OperatorContext) throws {
        try ctx.expectInputs(2, 3)
        label = ctx.label
        window = try VolumeWindow(ctx, requireKernel: false)
        groups = try ctx.int("group", default: 1)
        guard groups >= 1 else { throw ctx.bad("group", "must be >= 1") }
    }

    private typealias Plan = VolumeWindow.Plan

    private func plan(_ x: Tensor, _ w: Tensor) throws -> Plan {
        guard x.rank == 5, w.rank == 5, w.shape[1] * groups == x.shape[1], w.shape[0] % groups == 0 else {
            throw GraphError.invalid("\(label): X (N, C, T, H, W) \(x.shape) and W (M, C/group, kT, kH, kW) \(w.shape) do not match (group \(groups))")
        }
        return try window.plan(x.shape, weightKernel: Array(w.shape[2...]), groups: groups, label: label)
    }

    /// The frames temporal tap `k` reads for every output frame, as a (N·outT, C, H, W) batch
    /// (zeros where the tap falls in the padding).
    private func frames(_ x: [Float], _ shape: [Int], _ p: Plan, tap k: Int) -> [Float] {
        let (n, c, t, hw) = (shape[0], shape[1], shape[2], shape[3] * shape[4])
        var out = [Float](repeating: 0, count: n * p.outT * c * hw)
        for b in 0..<n { for o in 0..<p.outT {
            let ti = p.frame(o, tap: k)
            guard ti >= 0 && ti < t else { continue }
            for ch in 0..<c {
                let src = ((b * c + ch) * t + ti) * hw, dst = ((b * p.outT + o) * c + ch) * hw
                for i in 0..<hw { out[dst + i] = x[src + i] }
            }
        } }
        return out
    }

    /// W[:, :, k] as a 2-D weight (M, C/group, kH, kW).
    private func tapWeight(_ w: [Float], _ shape: [Int], tap k: Int) throws -> Tensor {
        let (m, cg, kT, khw) = (shape[0], shape[1], shape[2], shape[3] * shape[4])
        var out = [Float](repeating: 0, count: m * cg * khw)
        for o in 0..<(m * cg) { for i in 0..<khw { out[o * khw + i] = w[(o * kT + k) * khw + i] } }
        return try Tensor(shape: [m, cg, shape[3], shape[4]], floats: out)
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try kernelInput(inputs, 0, label), w = try kernelInput(inputs, 1, label)
        let bias = inputs.count > 2 ? inputs[2] : nil
        let p = try plan(x, w)
        let xv = try x.floats(label), wv = try w.floats(label)
        let (n, m) = (x.shape[0], w.shape[0])
        var y: [Float] = [], oh = 0, ow = 0
        for k in 0..<p.kT {
            let batch = try Tensor(shape: [n * p.outT, x.shape[1], x.shape[3], x.shape[4]], floats: frames(xv, x.shape, p, tap: k))
            let yk = try Kernels.conv2d(batch, weight: try tapWeight(wv, w.shape, tap: k), bias: k == 0 ? bias : nil,
                                        geometry: p.frame, packed: nil, activation: .none)
            let v = try yk.floats(label)
            if y.isEmpty { (oh, ow) = (yk.shape[2], yk.shape[3]); y = [Float](repeating: 0, count: n * m * p.outT * oh * ow) }
            let hw = oh * ow
            // (N·outT, M, h, w) → (N, M, outT, h, w), summed over taps.
            for b in 0..<n { for o in 0..<p.outT { for ch in 0..<m {
                let src = ((b * p.outT + o) * m + ch) * hw, dst = ((b * m + ch) * p.outT + o) * hw
                for i in 0..<hw { y[dst + i] += v[src + i] }
            } } }
        }
        return [try Tensor(shape: [n, m, p.outT, oh, ow], floats: y)]
    }

    var backwardNeeds: BackwardNeeds { BackwardNeeds(inputs: [0, 1]) }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        let x = try ctx.input(0, label), w = try ctx.input(1, label)
        var grads: [Tensor?] = Array(repeating: nil, count: ctx.inputs.count)
        guard let gy = ctx.gradOutputs.first ?? nil else { return grads }
        let p = try plan(x, w)
        let (n, c, t, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3], x.shape[4])
        let (m, oh, ow) = (w.shape[0], gy.shape[3], gy.shape[4])
        let hw = oh * ow, g = try gy.floats(label), xv = try x.floats(label), wv = try w.floats(label)
        // gy as the frame convolutions' output layout (N·outT, M, h, w).
        var gf = [Float](repeating: 0, count: g.count)
        for b in 0..<n { for o in 0..<p.outT { for ch in 0..<m {
            let dst = ((b * p.outT + o) * m + ch) * hw, src = ((b * m + ch) * p.outT + o) * hw
            for i in 0..<hw { gf[dst + i] = g[src + i] }
        } } }
        let gy4 = try Tensor(shape: [n * p.outT, m, oh, ow], floats: gf)
        let wantX = ctx.wantInput[0], wantW = ctx.wantInput.count > 1 && ctx.wantInput[1]
        var gx = [Float](repeating: 0, count: wantX ? x.count : 0)
        var gw = [Float](repeating: 0, count: wantW ? w.count : 0)
        let frameShape = [n * p.outT, c, h, wd], khw = w.shape[3] * w.shape[4]
        for k in 0..<p.kT {
            if wantX {
                let gb = try Kernels.conv2dBackwardInput(gy4, weight: try tapWeight(wv, w.shape, tap: k), inputShape: frameShape,
                                                         geometry: p.frame, packed: nil).floats(label)
                let fhw = h * wd
                for b in 0..<n { for o in 0..<p.outT {
                    let ti = p.frame(o, tap: k)
                    guard ti >= 0 && ti < t else { continue }
                    for ch in 0..<c {
                        let src = ((b * p.outT + o) * c + ch) * fhw, dst = ((b * c + ch) * t + ti) * fhw
                        for i in 0..<fhw { gx[dst + i] += gb[src + i] }
                    }
                } }
            }
            if wantW {
                let batch = try Tensor(shape: frameShape, floats: frames(xv, x.shape, p, tap: k))
                let gwk = try Kernels.conv2dBackwardWeight(gy4, input: batch, weightShape: [m, w.shape[1], w.shape[3], w.shape[4]],
                                                           geometry: p.frame).floats(label)
                for o in 0..<(m * w.shape[1]) { for i in 0..<khw { gw[(o * p.kT + k) * khw + i] = gwk[o * khw + i] } }
            }
        }
        if wantX { grads[0] = try Tensor(shape: x.shape, floats: gx) }
        if wantW { grads[1] = try Tensor(shape: w.shape, floats: gw) }
        if ctx.wantInput.count > 2 && ctx.wantInput[2] && ctx.inputShapes.count > 2 && ctx.inputShapes[2] != nil {
            grads[2] = try Kernels.channelSum(gy4)
        }
        return grads
    }
}
