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

    /// W[:, :, k] as a 2-D weight (M, C/group, kH, kW).
    private func tapWeight(_ w: Tensor, tap k: Int) throws -> Tensor {
        try w.sliced([SliceRange(axis: 2, start: k, end: k + 1)]).reshaped([w.shape[0], w.shape[1], w.shape[3], w.shape[4]])
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try kernelInput(inputs, 0, label), w = try kernelInput(inputs, 1, label)
        let bias = inputs.count > 2 ? inputs[2] : nil
        let p = try plan(x, w)
        let (n, c, t, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3], x.shape[4])
        let xf = try x.permuted(VolumeWindow.framesMajor).floats(label)
        // Output frames summed over taps, frames-major (N·outT, M, h, w).
        var y: Tensor?
        for k in 0..<p.kT {
            let batch = try Tensor(shape: [n * p.outT, c, h, wd], floats: p.gatherFrames(xf, batch: n, frames: t, frameSize: c * h * wd, tap: k))
            let yk = try Kernels.conv2d(batch, weight: try tapWeight(w, tap: k), bias: k == 0 ? bias : nil,
                                        geometry: p.frame, packed: nil, activation: .none)
            y = try y.map { try Tensor.binary(.add, $0, yk, name: label) } ?? yk
        }
        guard let y else { throw GraphError.invalid("\(label): empty temporal kernel") }
        let (m, oh, ow) = (y.shape[1], y.shape[2], y.shape[3])
        return [try y.reshaped([n, p.outT, m, oh, ow]).permuted(VolumeWindow.framesMajor)]
    }

    var backwardNeeds: BackwardNeeds { BackwardNeeds(inputs: [0, 1]) }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        let x = try ctx.input(0, label), w = try ctx.input(1, label)
        var grads: [Tensor?] = Array(repeating: nil, count: ctx.inputs.count)
        guard let gy = ctx.gradOutputs.first ?? nil else { return grads }
        let p = try plan(x, w)
        let (n, c, t, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3], x.shape[4])
        // gy in the frame convolutions' output layout (N·outT, M, h, w).
        let gy4 = try gy.permuted(VolumeWindow.framesMajor).reshaped([n * p.outT, gy.shape[1], gy.shape[3], gy.shape[4]])
        let wantX = ctx.wantInput[0], wantW = ctx.wantInput.count > 1 && ctx.wantInput[1]
        let frameShape = [n * p.outT, c, h, wd], f = c * h * wd
        let xf = wantW ? try x.permuted(VolumeWindow.framesMajor).floats(label) : []
        var gxf = [Float](repeating: 0, count: wantX ? x.count : 0)
        var gwTaps: [Tensor] = []
        for k in 0..<p.kT {
            if wantX {
                let gb = try Kernels.conv2dBackwardInput(gy4, weight: try tapWeight(w, tap: k), inputShape: frameShape,
                                                         geometry: p.frame, packed: nil).floats(label)
                p.scatterFrames(gb, into: &gxf, batch: n, frames: t, frameSize: f, tap: k)
            }
            if wantW {
                let batch = try Tensor(shape: frameShape, floats: p.gatherFrames(xf, batch: n, frames: t, frameSize: f, tap: k))
                let gwk = try Kernels.conv2dBackwardWeight(gy4, input: batch, weightShape: [w.shape[0], w.shape[1], w.shape[3], w.shape[4]],
                                                           geometry: p.frame)
                gwTaps.append(try gwk.reshaped([w.shape[0], w.shape[1], 1, w.shape[3], w.shape[4]]))
            }
        }
        if wantX { grads[0] = try Tensor(shape: [n, t, c, h, wd], floats: gxf).permuted(VolumeWindow.framesMajor) }
        if wantW { grads[1] = try Tensor.concatenated(gwTaps, axis: 2) }
        if ctx.wantInput.count > 2 && ctx.wantInput[2] && ctx.inputShapes.count > 2 && ctx.inputShapes[2] != nil {
            grads[2] = try Kernels.channelSum(gy4)
        }
        return grads
    }
}
