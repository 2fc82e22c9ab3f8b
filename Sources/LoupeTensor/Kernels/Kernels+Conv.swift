import CLoupeKernels

/// 2-D convolution (ONNX Conv, NCHW) by im2col + GEMM, with a direct kernel for depthwise
/// convolutions, and its two adjoints (data gradient via col2im, weight gradient).
extension Kernels {
    /// Shapes of a convolution after validation.
    struct ConvShapes {
        var n: Int, c: Int, h: Int, w: Int
        var m: Int, oh: Int, ow: Int
        var g: Int
        var cg: Int { c / g }
        var mg: Int { m / g }
        var kk: Int
        var plane: Int { oh * ow }
        var depthwise: Bool { cg == 1 && g == c }
    }

    static func convShapes(input: [Int], weight: [Int], geometry p: ConvGeometry, op: String) throws -> ConvShapes {
        try p.validate(op: op)
        guard input.count == 4, weight.count == 4 else {
            throw TensorError.shapeMismatch(op: op, expected: "input (N, C, H, W) and weight (M, C/group, kH, kW)", got: [input, weight])
        }
        let c = input[1], m = weight[0]
        guard c % p.groups == 0, m % p.groups == 0, weight[1] == c / p.groups,
              weight[2] == p.kernelH, weight[3] == p.kernelW else {
            throw TensorError.shapeMismatch(op: op, expected: "weight (M, C/group = \(c / max(p.groups, 1)), \(p.kernelH), \(p.kernelW)) with M and C divisible by group \(p.groups)", got: [input, weight])
        }
        let (oh, ow) = try p.outputSize(height: input[2], width: input[3], op: op)
        _ = try Shape.checkedCount([input[0], m, oh, ow], op: op)
        return ConvShapes(n: input[0], c: c, h: input[2], w: input[3], m: m, oh: oh, ow: ow, g: p.groups,
                          kk: p.kernelH * p.kernelW)
    }

    /// Default cap on the im2col buffer of one task, in floats (2 MB): the column matrix is built
    /// a band of output rows at a time, so it stays in L2 until the GEMM packs it and large
    /// images do not need a (C·kH·kW) × (outH·outW) buffer.
    static let defaultColumnChunk = 1 << 19

    /// Output rows per band so that `rows` × band × outW floats fit `chunkFloats` (at least one).
    static func bandRows(outH: Int, outW: Int, rows: Int, chunkFloats: Int) -> Int {
        max(1, min(outH, chunkFloats / max(1, rows * outW)))
    }

    /// im2col of output rows [oh0, oh1) of `channels` planes, by channel over the pool when
    /// `parallel` (each channel fills its own kH·kW rows of `col`).
    static func im2col(_ x: UnsafePointer<Float>, channels: Int, _ win: loupe_window2d, rows oh0: Int, _ oh1: Int,
                       _ col: UnsafeMutablePointer<Float>, parallel: Bool) {
        let plane = win.inH * win.inW, perChannel = win.kH * win.kW * (oh1 - oh0) * win.outW
        if !parallel || channels < 2 {
            var wv = win
            loupe_im2col(x, channels, &wv, oh0, oh1, col)
            return
        }
        parallelFor(channels) { c in
            var wv = win
            loupe_im2col(x + c * plane, 1, &wv, oh0, oh1, col + c * perChannel)
        }
    }

    /// col2im of output rows [oh0, oh1), by channel over the pool when `parallel` (channels
    /// write disjoint planes).
    static func col2im(_ col: UnsafePointer<Float>, channels: Int, _ win: loupe_window2d, rows oh0: Int, _ oh1: Int,
                       _ x: UnsafeMutablePointer<Float>, parallel: Bool) {
        let plane = win.inH * win.inW, perChannel = win.kH * win.kW * (oh1 - oh0) * win.outW
        if !parallel || channels < 2 {
            var wv = win
            loupe_col2im(col, channels, &wv, oh0, oh1, x)
            return
        }
        parallelFor(channels) { c in
            var wv = win
            loupe_col2im(col + c * perChannel, 1, &wv, oh0, oh1, x + c * plane)
        }
    }

    /// Images from which a pointwise convolution on 1×1 maps runs on the weight's transposed
    /// panels (`loupe_pointwise_rows`) rather than as a GEMM that packs the weight per call.
    static let pointwiseRowsMinimum = 2

    /// Whether to spread independent (image, group) tasks over threads rather than
    /// parallelising each GEMM: when they divide evenly or are plentiful.
    static func parallelOverTasks(_ tasks: Int) -> Bool {
        let t = threads
        return tasks >= 2 && (tasks % t == 0 || tasks >= 4 * t)
    }

    /// Convolution: `x` (N, C, H, W), `weight` (M, C/group, kH, kW), optional `bias` (M) →
    /// (N, M, outH, outW), cross-correlation as in ONNX Conv and `torch.nn.functional.conv2d`.
    ///
    /// - Parameters:
    ///   - packed: the weight pre-packed (``PackedConvWeights``); used when it ``PackedConvWeights/matches(_:groups:)``
    ///     `weight`, otherwise the weight is packed for this call.
    ///   - relu: apply max(·, 0) to the result (the fused Conv+Relu of inference), NaN kept.
    public static func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, geometry p: ConvGeometry,
                              packed: PackedConvWeights? = nil, relu: Bool = false) throws -> Tensor {
        try conv2d(x, weight: weight, bias: bias, geometry: p, packed: packed, activation: relu ? .relu : .none)
    }

    /// ``conv2d(_:weight:bias:geometry:packed:relu:)`` followed by `activation`, applied inside
    /// the kernels to each block of output while it is in cache (the fused Conv→activation of
    /// inference graphs).
    public static func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, geometry p: ConvGeometry,
                              packed: PackedConvWeights? = nil, activation: ConvActivation) throws -> Tensor {
        let s = try convShapes(input: x.shape, weight: weight.shape, geometry: p, op: "Conv")
        if let bias, bias.count != s.m {
            throw TensorError.shapeMismatch(op: "Conv", expected: "bias of \(s.m) elements", got: [bias.shape])
        }
        let X = try x.floats("Conv")
        let Bv = try bias?.floats("Conv")
        let win = p.window(inH: s.h, inW: s.w, outH: s.oh, outW: s.ow)
        if s.depthwise {
            let W = try weight.floats("Conv")
            // The kernel writes every output element; zero-filling first would be a whole extra
            // pass over the output (5 % of mobilenet_v3_small at batch 1).
            let count = s.n * s.m * s.plane
            var Y = [Float](unsafeUninitializedCapacity: count) { _, n in n = count }
            X.withUnsafeBufferPointer { xb in W.withUnsafeBufferPointer { wb in Y.withUnsafeMutableBufferPointer { yb in
                guard let x0 = xb.baseAddress, let w0 = wb.baseAddress, let y0 = yb.baseAddress else { return }
                depthwiseForward(x0, w0, Bv, s, win, y0, activation: activation)
            } } }
            return Tensor(uncheckedShape: [s.n, s.m, s.oh, s.ow], storage: .float32(Y))
        }
        if s.n * s.m * s.plane == 0 {
            return Tensor(uncheckedShape: [s.n, s.m, s.oh, s.ow], storage: .float32([]))
        }
        if s.cg == 0 {
            // No input channels: every output is its bias (then the ReLU), as an empty sum.
            var Y = biasFilled(s, Bv)
            activation.apply(&Y)
            return Tensor(uncheckedShape: [s.n, s.m, s.oh, s.ow], storage: .float32(Y))
        }
        if p.isPointwise && s.plane == 1 && s.g == 1 {
            // 1×1 maps (squeeze-excitation blocks): the whole batch is one small GEMM
            // Y (N × M) = X (N × C) · Wᵀ rather than N matrix-vector products; one image is a
            // matrix-vector product over the weight in place (the packed path would run its
            // 14×32 tile on a single column: 32× the work, 55 µs for a 576→144 layer).
            // Several images take Wᵀ's panels, packed once per weight, where the plain GEMM
            // packed Wᵀ on every call (576→144 at batch 16: 92 → 37 µs).
            if s.n >= pointwiseRowsMinimum, let packed, packed.matches(weight, groups: 1) {
                let count = s.n * s.m
                var done = false
                let Y = [Float](unsafeUninitializedCapacity: count) { yb, n in
                    n = count
                    X.withUnsafeBufferPointer { xb in
                        withOptionalPointer(Bv) { bp in
                            guard let x0 = xb.baseAddress, let y0 = yb.baseAddress else { return }
                            done = loupe_pointwise_rows(packed.handle(group: 0), x0, s.n, bp, activation.code, y0, 1) != 0
                        }
                    }
                    if !done { for i in 0..<count { yb[i] = 0 } }
                }
                if done { return Tensor(uncheckedShape: [s.n, s.m, 1, 1], storage: .float32(Y)) }
            }
            var Y = biasFilled(s, Bv)
            let W = try weight.floats("Conv")
            X.withUnsafeBufferPointer { xb in W.withUnsafeBufferPointer { wb in Y.withUnsafeMutableBufferPointer { yb in
                guard let x0 = xb.baseAddress, let w0 = wb.baseAddress, let y0 = yb.baseAddress else { return }
                gemm(transB: true, m: s.n, n: s.m, k: s.c, a: x0, lda: s.c, b: w0, ldb: s.c, beta: Bv == nil ? 0 : 1, c: y0, ldc: s.m)
            } } }
            activation.apply(&Y)
            return Tensor(uncheckedShape: [s.n, s.m, 1, 1], storage: .float32(Y))
        }
        if s.g == 1, takesFewChannelDirect(c: s.c, m: s.m, window: win) {
            // Few input channels (a first layer on RGB): direct, no packing of the image.
            let W = try weight.floats("Conv")
            let count = s.n * s.m * s.plane
            var done = false
            let Y = [Float](unsafeUninitializedCapacity: count) { yb, n in
                n = count
                X.withUnsafeBufferPointer { xb in W.withUnsafeBufferPointer { wb in
                    withOptionalPointer(Bv) { bp in
                        var wv = win
                        guard let x0 = xb.baseAddress, let w0 = wb.baseAddress, let y0 = yb.baseAddress else { return }
                        done = loupe_conv2d_small_c(x0, w0, bp, s.n, s.c, s.m, &wv, activation.code, y0) != 0
                    }
                } }
                if !done { for i in 0..<count { yb[i] = 0 } }
            }
            if done { return Tensor(uncheckedShape: [s.n, s.m, s.oh, s.ow], storage: .float32(Y)) }
        }
        let pk: PackedConvWeights
        if let packed, packed.matches(weight, groups: s.g) { pk = packed } else { pk = try PackedConvWeights(weight: weight, groups: s.g) }
        let handles = (0..<s.g).map { pk.handle(group: $0) }
        let wino = winograd(pk, s, p, adjoint: false)
        let Y = try X.withUnsafeBufferPointer { xb in
            try withOptionalPointer(Bv) { bp in
                try packedConv(xb, s, win, pointwise: p.isPointwise, handles: handles, winograd: wino, bias: bp,
                               activation: activation)
            }
        }
        return Tensor(uncheckedShape: [s.n, s.m, s.oh, s.ow], storage: .float32(Y))
    }

    /// Whether a convolution of `c` input channels (groups 1) runs on the direct few-channel
    /// kernel (`loupe_conv2d_small_c`) rather than as a packed GEMM.
    static func takesFewChannelDirect(c: Int, m: Int, window: loupe_window2d) -> Bool {
        var w = window
        return loupe_conv2d_small_c_suits(c, m, &w, Int32(gemmLevel)) != 0
    }

    /// `conv2d(x · scale, …)` for a pointwise convolution (1×1, stride 1, no padding, one group)
    /// whose input is multiplied by one `scale` per image and channel (N, C, 1, 1): the
    /// squeeze-excitation product, folded into the packing of the GEMM's column panels, so the
    /// scaled tensor is never made; on few-pixel maps (7×7), where the layer takes the transposed
    /// product, into its packed pixel rows instead. nil (nothing done) when the shapes or the
    /// weight do not allow it, or memory for the panels is short.
    public static func conv2dScaledInput(_ x: Tensor, scale: Tensor, weight: Tensor, bias: Tensor?, geometry p: ConvGeometry,
                                         packed: PackedConvWeights?, activation: ConvActivation) throws -> Tensor? {
        guard p.isPointwise, p.groups == 1, x.rank == 4, scale.shape == [x.shape[0], x.shape[1], 1, 1],
              x.dtype == .float32, scale.dtype == .float32 else { return nil }
        let s = try convShapes(input: x.shape, weight: weight.shape, geometry: p, op: "Conv")
        guard s.plane == s.h * s.w, s.plane > 1, let packed, packed.matches(weight, groups: 1) else { return nil }
        if let bias, bias.count != s.m {
            throw TensorError.shapeMismatch(op: "Conv", expected: "bias of \(s.m) elements", got: [bias.shape])
        }
        let handle = packed.handle(group: 0)
        // Few pixels (7×7 maps) take the transposed product, the scale applied to its packed
        // pixel rows; otherwise the scale is applied as the column panels are packed.
        let transposed = loupe_pointwise_transposed_suits(handle, s.plane) != 0
        let X = try x.floats("Conv"), S = try scale.floats("Conv"), Bv = try bias?.floats("Conv")
        let count = s.n * s.m * s.plane
        let outer = parallelOverTasks(s.n)
        let failed = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
        defer { failed.deallocate() }
        failed.pointee = 0
        let Y = [Float](unsafeUninitializedCapacity: count) { yb, initialized in
            initialized = count
            guard let y0 = yb.baseAddress else { return }
            X.withUnsafeBufferPointer { xb in S.withUnsafeBufferPointer { sb in
                withOptionalPointer(Bv) { bp in
                    guard let x0 = xb.baseAddress, let s0 = sb.baseAddress else { return }
                    let body: (Int) -> Void = { img in
                        let xi = x0 + img * s.c * s.plane, si = s0 + img * s.c, yi = y0 + img * s.m * s.plane
                        if transposed {
                            // Out of memory for the panels: the caller makes the product instead.
                            if loupe_pointwise_transposed_scaled(handle, xi, s.plane, si, bp, activation.code, yi, outer ? 0 : 1) == 0 {
                                failed.pointee = 1
                            }
                        } else {
                            loupe_sgemm_packed_scaled(handle, s.plane, xi, s.plane, si, bp, activation.code, yi, s.plane, outer ? 0 : 1)
                        }
                    }
                    if outer { parallelFor(s.n, body) } else { for img in 0..<s.n { body(img) } }
                }
            } }
        }
        if failed.pointee != 0 { return nil }
        return Tensor(uncheckedShape: [s.n, s.m, s.oh, s.ow], storage: .float32(Y))
    }

    /// `body` with the base address of `a`, or nil when there is no array.
    static func withOptionalPointer<R>(_ a: [Float]?, _ body: (UnsafePointer<Float>?) throws -> R) rethrows -> R {
        guard let a else { return try body(nil) }
        return try a.withUnsafeBufferPointer { try body($0.baseAddress) }
    }

    /// Runs `body` with every convolution on this thread computed so that it rounds like a direct
    /// sum: directly, or by Winograd F(2×2, 3×3), never by F(4×4, 3×3). (The name predates F(2×2):
    /// the scope is about rounding, not about the algorithm.)
    ///
    /// Winograd F(4×4, 3×3) rounds about 9× more than a direct sum (rms against float64 on 128
    /// post-ReLU channels: 1.8e-6 against 2.0e-7 of the outputs' rms; resnet18's logits move
    /// 3.6e-6 relative instead of 1.5e-6). That is harmless for an inference result, but a forward
    /// pass recorded for a gradient decides every ReLU mask of the backward pass, and
    /// pre-activations within that error of zero flip, in the layer and in every layer its values
    /// reach: on vgg11_bn the input gradient's error against float64 grows from 3.3e-3 to 9.9e-3
    /// (PyTorch's own float32: 1.8e-3). F(2×2, 3×3)'s transforms hold only 0, ±1 and ½ and its
    /// frequency-domain sums run over C terms rather than 9·C: 3.0e-7 in the same measurement
    /// (`WinogradConvTests.testF2x2RoundsLikeADirectSum`). The executor records forwards inside this
    /// scope; the backward pass's adjoint convolutions, which only scale gradient values by the
    /// error, still take F(4×4).
    public static func withDirectConvolutions<R>(_ body: () throws -> R) rethrows -> R {
        let previous = loupe_winograd_direct_only(1)
        defer { _ = loupe_winograd_direct_only(previous) }
        return try body()
    }

    /// The Winograd weights for the convolution `s` (geometry `p`), when its shape takes Winograd
    /// and it has enough output tiles to run faster that way (``loupe_winograd_tile``: F(4×4, 3×3),
    /// or F(2×2, 3×3) where that does less work or inside ``withDirectConvolutions(_:)``). With
    /// `adjoint`, `s` is the adjoint convolution (gradient in, input gradient out) and the weights
    /// are those of the flipped, channel-transposed kernel.
    static func winograd(_ pk: PackedConvWeights, _ s: ConvShapes, _ p: ConvGeometry, adjoint: Bool) -> OpaquePointer? {
        guard p.isWinogradShape else { return nil }
        let tile = Int(loupe_winograd_tile(s.n, s.m, s.c, s.oh, s.ow))
        guard tile != 0 else { return nil }
        return pk.winogradHandle(adjoint: adjoint, tile: tile)
    }

    /// The (image, group) GEMMs of a convolution over pre-packed weights (one matrix per group):
    /// x (N, C, H, W) → (N, M, outH, outW), bias and ReLU in the GEMM epilogue. With `winograd`
    /// weights (ungrouped 3×3 stride 1 only) the batch runs as one Winograd convolution instead.
    static func packedConv(_ xb: UnsafeBufferPointer<Float>, _ s: ConvShapes, _ win: loupe_window2d, pointwise: Bool,
                           handles: [OpaquePointer], winograd: OpaquePointer? = nil, bias bp: UnsafePointer<Float>?,
                           activation: ConvActivation) throws -> [Float] {
        let count = s.n * s.m * s.plane
        guard let x0 = xb.baseAddress, count > 0 else { return [Float](repeating: 0, count: count) }
        // Every element is written by the GEMM (beta = 0), so the buffer need not be zeroed first.
        return [Float](unsafeUninitializedCapacity: count) { yb, initialized in
            guard let y0 = yb.baseAddress else { return }
            var wv = win
            // Winograd takes the whole batch at once: small maps fill its tile panels together.
            if let winograd, loupe_conv2d_winograd(winograd, s.n, x0, &wv, bp, activation.code, y0, 1) != 0 {
                initialized = count
                return
            }
            let tasks = s.n * s.g
            let outer = parallelOverTasks(tasks)
            let body: (Int) -> Void = { t in
                let img = t / s.g, grp = t % s.g
                let xg = x0 + (img * s.c + grp * s.cg) * s.h * s.w
                let yg = y0 + (img * s.m + grp * s.mg) * s.plane
                let bg = bp.map { $0 + grp * s.mg }
                var wv = win
                if pointwise {
                    if loupe_pointwise_transposed(handles[grp], xg, s.plane, bg, activation.code, yg, outer ? 0 : 1) != 0 { return }
                    loupe_sgemm_packed(handles[grp], 0, s.plane, xg, s.plane, 0, bg, activation.code, yg, s.plane, outer ? 0 : 1)
                } else {
                    loupe_conv2d_packed(handles[grp], xg, &wv, bg, activation.code, yg, outer ? 0 : 1)
                }
            }
            if outer { parallelFor(tasks, body) } else { for t in 0..<tasks { body(t) } }
            initialized = count
        }
    }

    /// Input gradient of a stride-1 convolution as a convolution of `gradOutput` with the flipped,
    /// channel-transposed kernel (no column buffer, no col2im), over the adjoint panels kept by
    /// `packed`; nil when the geometry does not allow it or the panels cannot be had.
    static func conv2dBackwardInputAsConv(_ gy: [Float], _ s: ConvShapes, _ p: ConvGeometry, packed: PackedConvWeights) throws -> [Float]? {
        guard p.strideH == 1, p.strideW == 1, !p.isPointwise else { return nil }
        let spanH = p.dilationH * (p.kernelH - 1), spanW = p.dilationW * (p.kernelW - 1)
        guard p.padTop <= spanH, p.padBottom <= spanH, p.padLeft <= spanW, p.padRight <= spanW else { return nil }
        var handles: [OpaquePointer] = []
        for g in 0..<s.g {
            guard let h = packed.adjointHandle(group: g, taps: s.kk) else { return nil }
            handles.append(h)
        }
        let q = ConvGeometry(kernel: (p.kernelH, p.kernelW), dilations: (p.dilationH, p.dilationW),
                             pads: (spanH - p.padTop, spanW - p.padLeft, spanH - p.padBottom, spanW - p.padRight), groups: p.groups)
        // The adjoint convolution: M input channels of oh × ow, C output channels of h × w.
        let t = ConvShapes(n: s.n, c: s.m, h: s.oh, w: s.ow, m: s.c, oh: s.h, ow: s.w, g: s.g, kk: s.kk)
        let win = q.window(inH: t.h, inW: t.w, outH: t.oh, outW: t.ow)
        let wino = winograd(packed, t, q, adjoint: true)
        return try gy.withUnsafeBufferPointer { gb in
            try packedConv(gb, t, win, pointwise: false, handles: handles, winograd: wino, bias: nil, activation: .none)
        }
    }

    /// An (N, M, outH, outW) buffer holding each channel's bias (zeros without one).
    static func biasFilled(_ s: ConvShapes, _ bias: [Float]?) -> [Float] {
        var y = [Float](repeating: 0, count: s.n * s.m * s.plane)
        guard let bias else { return y }
        for img in 0..<s.n {
            for m in 0..<s.m {
                let base = (img * s.m + m) * s.plane
                for i in 0..<s.plane { y[base + i] = bias[m] }
            }
        }
        return y
    }

    /// max(v, 0) in place, NaN kept (as torch.relu).
    static func reluInPlace(_ a: inout [Float]) {
        a.withUnsafeMutableBufferPointer { b in
            guard let p = b.baseAddress else { return }
            let n = b.count
            var i = 0
            // 16 lanes at a time; a compare-and-select keeps NaN (NaN < 0 is false).
            while i + 16 <= n {
                let v = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD16<Float>.self)
                UnsafeMutableRawPointer(p + i).storeBytes(of: v.replacing(with: 0, where: v .< 0), as: SIMD16<Float>.self)
                i += 16
            }
            while i < n { if p[i] < 0 { p[i] = 0 }; i += 1 }
        }
    }

    /// Adjoint of ``conv2d(_:weight:bias:geometry:)`` with respect to its input: the gradient
    /// (N, C, H, W) given `gradOutput` (N, M, outH, outW). `inputShape` fixes H and W, which the
    /// output size alone does not determine when strides drop rows.
    ///
    /// - Parameter packed: the weight pre-packed; its transposed panels (made once, on first use)
    ///   replace the per-call packing of Wᵀ.
    public static func conv2dBackwardInput(_ gradOutput: Tensor, weight: Tensor, inputShape: [Int],
                                           geometry p: ConvGeometry, packed: PackedConvWeights? = nil) throws -> Tensor {
        try conv2dBackwardInput(gradOutput, weight: weight, inputShape: inputShape, geometry: p, chunkFloats: defaultColumnChunk,
                                packed: packed)
    }

    static func conv2dBackwardInput(_ gradOutput: Tensor, weight: Tensor, inputShape: [Int], geometry p: ConvGeometry,
                                    chunkFloats: Int, packed: PackedConvWeights? = nil) throws -> Tensor {
        let s = try convShapes(input: inputShape, weight: weight.shape, geometry: p, op: "Conv backward")
        guard gradOutput.shape == [s.n, s.m, s.oh, s.ow] else {
            throw TensorError.shapeMismatch(op: "Conv backward", expected: "output gradient \([s.n, s.m, s.oh, s.ow])", got: [gradOutput.shape])
        }
        let GY = try gradOutput.floats("Conv backward"), W = try weight.floats("Conv backward")
        if !s.depthwise, let packed, packed.matches(weight, groups: s.g),
           let gx = try conv2dBackwardInputAsConv(GY, s, p, packed: packed) {
            return Tensor(uncheckedShape: inputShape, storage: .float32(gx))
        }
        var GX = [Float](repeating: 0, count: s.n * s.c * s.h * s.w)
        let win = p.window(inH: s.h, inW: s.w, outH: s.oh, outW: s.ow)
        GY.withUnsafeBufferPointer { gyb in W.withUnsafeBufferPointer { wb in GX.withUnsafeMutableBufferPointer { gxb in
            guard let gy0 = gyb.baseAddress, let w0 = wb.baseAddress, let gx0 = gxb.baseAddress else { return }
            if s.depthwise {
                depthwiseBackwardInput(gy0, w0, s, win, gx0)
                return
            }
            let rows = s.cg * s.kk
            let tasks = s.n * s.g
            let outer = parallelOverTasks(tasks)
            let band = bandRows(outH: s.oh, outW: s.ow, rows: rows, chunkFloats: chunkFloats)
            // Wᵀ of each group, packed once per weight (not per call) when the weight is pre-packed.
            let usable = packed?.matches(weight, groups: s.g) == true ? packed : nil
            let wt = (0..<s.g).map { usable?.transposedHandle(group: $0) }
            // dcol = Wᵀ · gy over columns [j0, j0 + width) of gy, into c (ldc).
            func product(_ grp: Int, _ gyg: UnsafePointer<Float>, _ width: Int, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
                if let h = wt[grp] {
                    loupe_sgemm_packed(h, 0, width, gyg, s.plane, 0, nil, 0, c, ldc, outer ? 0 : 1)
                } else {
                    gemm(transA: true, m: rows, n: width, k: s.mg, a: w0 + grp * s.mg * rows, lda: rows, b: gyg, ldb: s.plane,
                         c: c, ldc: ldc, parallel: !outer)
                }
            }
            let body: (Int) -> Void = { t in
                let img = t / s.g, grp = t % s.g
                let gxg = gx0 + (img * s.c + grp * s.cg) * s.h * s.w
                let gyg = gy0 + (img * s.m + grp * s.mg) * s.plane
                if p.isPointwise {
                    product(grp, gyg, s.plane, gxg, s.plane)
                    return
                }
                let col = UnsafeMutablePointer<Float>.allocate(capacity: rows * band * s.ow)
                defer { col.deallocate() }
                for oh0 in stride(from: 0, to: s.oh, by: band) {
                    let oh1 = min(s.oh, oh0 + band), width = (oh1 - oh0) * s.ow
                    product(grp, gyg + oh0 * s.ow, width, col, width)
                    col2im(col, channels: s.cg, win, rows: oh0, oh1, gxg, parallel: !outer)
                }
            }
            if outer { parallelFor(tasks, body) } else { for t in 0..<tasks { body(t) } }
        } } }
        return Tensor(uncheckedShape: inputShape, storage: .float32(GX))
    }

    /// Adjoint of ``conv2d(_:weight:bias:geometry:)`` with respect to its weight: the gradient
    /// (M, C/group, kH, kW) given the input and `gradOutput`.
    public static func conv2dBackwardWeight(_ gradOutput: Tensor, input: Tensor, weightShape: [Int],
                                            geometry p: ConvGeometry) throws -> Tensor {
        try conv2dBackwardWeight(gradOutput, input: input, weightShape: weightShape, geometry: p, chunkFloats: defaultColumnChunk)
    }

    static func conv2dBackwardWeight(_ gradOutput: Tensor, input: Tensor, weightShape: [Int], geometry p: ConvGeometry,
                                     chunkFloats: Int) throws -> Tensor {
        let s = try convShapes(input: input.shape, weight: weightShape, geometry: p, op: "Conv backward")
        guard gradOutput.shape == [s.n, s.m, s.oh, s.ow] else {
            throw TensorError.shapeMismatch(op: "Conv backward", expected: "output gradient \([s.n, s.m, s.oh, s.ow])", got: [gradOutput.shape])
        }
        let GY = try gradOutput.floats("Conv backward"), X = try input.floats("Conv backward")
        var GW = [Float](repeating: 0, count: weightShape.reduce(1, *))
        let win = p.window(inH: s.h, inW: s.w, outH: s.oh, outW: s.ow)
        GY.withUnsafeBufferPointer { gyb in X.withUnsafeBufferPointer { xb in GW.withUnsafeMutableBufferPointer { gwb in
            guard let gy0 = gyb.baseAddress, let x0 = xb.baseAddress, let gw0 = gwb.baseAddress else { return }
            if s.depthwise {
                depthwiseBackwardWeight(gy0, x0, s, win, gw0)
                return
            }
            let rows = s.cg * s.kk
            // Groups write disjoint weight blocks; images and row bands accumulate into the same one.
            let outer = parallelOverTasks(s.g)
            let band = p.isPointwise ? s.oh : bandRows(outH: s.oh, outW: s.ow, rows: rows, chunkFloats: chunkFloats)
            let body: (Int) -> Void = { grp in
                let col = p.isPointwise ? nil : UnsafeMutablePointer<Float>.allocate(capacity: rows * band * s.ow)
                defer { col?.deallocate() }
                var first = true
                for img in 0..<s.n {
                    let xg = x0 + (img * s.c + grp * s.cg) * s.h * s.w
                    let gyg = gy0 + (img * s.m + grp * s.mg) * s.plane
                    for oh0 in stride(from: 0, to: s.oh, by: band) {
                        let oh1 = min(s.oh, oh0 + band), width = (oh1 - oh0) * s.ow
                        var b = UnsafePointer(xg), ldb = s.plane
                        if let col {
                            im2col(xg, channels: s.cg, win, rows: oh0, oh1, col, parallel: !outer)
                            b = UnsafePointer(col)
                            ldb = width
                        }
                        gemm(transB: true, m: s.mg, n: rows, k: width, a: gyg + oh0 * s.ow, lda: s.plane, b: b, ldb: ldb,
                             beta: first ? 0 : 1, c: gw0 + grp * s.mg * rows, ldc: rows, parallel: !outer)
                        first = false
                    }
                }
            }
            if outer { parallelFor(s.g, body) } else { for g in 0..<s.g { body(g) } }
        } } }
        return Tensor(uncheckedShape: weightShape, storage: .float32(GW))
    }

    /// Gradient of a per-channel bias: `gradOutput` (N, M, ...) summed over all axes but 1.
    public static func channelSum(_ gradOutput: Tensor) throws -> Tensor {
        guard gradOutput.rank >= 2 else {
            throw TensorError.shapeMismatch(op: "channelSum", expected: "rank >= 2 (N, C, ...)", got: [gradOutput.shape])
        }
        let n = gradOutput.shape[0], m = gradOutput.shape[1]
        let plane = gradOutput.shape.dropFirst(2).reduce(1, *)
        let g = try gradOutput.floats("channelSum")
        var out = [Float](repeating: 0, count: m)
        g.withUnsafeBufferPointer { gb in
            for img in 0..<n {
                for c in 0..<m {
                    let base = (img * m + c) * plane
                    var acc: Float = 0
                    for i in 0..<plane { acc += gb[base + i] }
                    out[c] += acc
                }
            }
        }
        return Tensor(uncheckedShape: [m], storage: .float32(out))
    }
}
