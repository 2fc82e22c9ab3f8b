import LoupeTensor

/// ONNX Resize (opsets 10–19) and the legacy Upsample (opsets 7–9): nearest (all nearest_mode
/// variants), linear (bilinear on the last two axes) and cubic (bicubic, `cubic_coeff_a`,
/// `exclude_outside`; PyTorch's `bicubic` exports) with coordinate_transformation_mode
/// half_pixel, pytorch_half_pixel, align_corners or asymmetric, from scales or sizes. Only the last
/// two axes may change size. Opset 10 Resize and Upsample use asymmetric coordinates with floor
/// rounding. VJP wrt X (the map is linear in X).
///
/// Not supported (rejected at load time): tf_crop_and_resize, half_pixel_symmetric,
/// antialias, `axes`, keep_aspect_ratio_policy other than stretch.
struct ResizeOperator: Operator {
    let linear: Bool
    /// Cubic mode: (coefficient a, exclude_outside).
    let cubic: (a: Float, excludeOutside: Bool)?
    let coordinates: ResizeCoordinateMode
    let nearest: ResizeNearestMode
    /// Input index of scales and of sizes (nil when the opset has none).
    let scalesInput: Int?
    let sizesInput: Int?
    /// Scales given as an attribute (Upsample before opset 9).
    let attributeScales: [Float]?
    let label: String

    init(_ ctx: OperatorContext, legacyUpsample: Bool) throws {
        label = ctx.label
        let mode = try ctx.string("mode", default: "nearest")
        switch mode {
        case "nearest": linear = false; cubic = nil
        case "linear", "bilinear": linear = true; cubic = nil
        case "cubic" where !legacyUpsample && ctx.opset >= 11:
            linear = false
            cubic = (try ctx.float("cubic_coeff_a", default: -0.75), try ctx.int("exclude_outside", default: 0) != 0)
        default: throw ctx.unsupported("mode '\(mode)' is not supported (nearest, linear and, from opset 11, cubic are)")
        }
        if legacyUpsample || ctx.opset < 11 {
            coordinates = .asymmetric
            nearest = .floor
            if legacyUpsample && ctx.opset < 9 {
                try ctx.expectInputs(1)
                attributeScales = try ctx.floats("scales")
                scalesInput = nil
            } else {
                try ctx.expectInputs(2)
                attributeScales = nil
                scalesInput = 1
            }
            sizesInput = nil
            return
        }
        try ctx.expectInputs(1, 4)
        let cm = try ctx.string("coordinate_transformation_mode", default: "half_pixel")
        guard let c = ResizeCoordinateMode(rawValue: cm) else {
            throw ctx.unsupported("coordinate_transformation_mode '\(cm)' is not supported")
        }
        coordinates = c
        let nm = try ctx.string("nearest_mode", default: "round_prefer_floor")
        guard let n = ResizeNearestMode(rawValue: nm) else { throw ctx.bad("nearest_mode", "must be round_prefer_floor, round_prefer_ceil, floor or ceil") }
        nearest = n
        if try ctx.int("antialias", default: 0) != 0 { throw ctx.unsupported("antialias = 1 is not supported") }
        if ctx.has("axes") { throw ctx.unsupported("the axes attribute is not supported") }
        let policy = try ctx.string("keep_aspect_ratio_policy", default: "stretch")
        if policy != "stretch" { throw ctx.unsupported("keep_aspect_ratio_policy '\(policy)' is not supported") }
        scalesInput = 2
        sizesInput = 3
        attributeScales = nil
    }

    /// Per-axis plans for the last two axes and the output shape, from the run-time inputs
    /// (cubic mode: its 4-tap plans for the same sizes and scales).
    private func plans(_ shape: [Int], _ inputs: [Tensor?]) throws -> (ResizeAxisPlan, ResizeAxisPlan, [Int],
                                                                          (ResizeAxisTaps, ResizeAxisTaps)?) {
        let r = shape.count
        guard r >= 2, shape[r - 2] > 0, shape[r - 1] > 0 else {
            throw GraphError.invalid("\(label): input must have rank >= 2 and non-empty last two axes, got \(shape)")
        }
        var scales: [Float]? = attributeScales
        var sizes: [Int]? = nil
        if let i = sizesInput, i < inputs.count, let t = inputs[i], t.count > 0 {
            sizes = try t.ints(label).map { Int($0) }
        }
        if sizes == nil, let i = scalesInput, i < inputs.count, let t = inputs[i], t.count > 0 {
            scales = try t.floats(label)
        }
        var out = shape
        var used = [Float](repeating: 1, count: r)
        if let sizes {
            guard sizes.count == r, sizes.allSatisfy({ $0 > 0 }) else {
                throw GraphError.invalid("\(label): sizes must hold \(r) positive values, got \(sizes)")
            }
            out = sizes
            for d in 0..<r { used[d] = Float(out[d]) / Float(max(shape[d], 1)) }
        } else if let scales {
            guard scales.count == r, scales.allSatisfy({ $0 > 0 }) else {
                throw GraphError.invalid("\(label): scales must hold \(r) positive values, got \(scales)")
            }
            used = scales
            for d in 0..<r { out[d] = Int((Float(shape[d]) * scales[d]).rounded(.down)) }
        } else {
            throw GraphError.invalid("\(label): one of scales or sizes must be given")
        }
        for d in 0..<(r - 2) where out[d] != shape[d] {
            throw GraphError.invalid("\(label): only the last two axes can be resized (axis \(d): \(shape[d]) → \(out[d]))")
        }
        guard out[r - 2] > 0, out[r - 1] > 0 else { throw GraphError.invalid("\(label): empty output \(out)") }
        let ph = ResizeAxisPlan(input: shape[r - 2], output: out[r - 2], scale: used[r - 2], linear: linear, coordinates: coordinates, nearest: nearest)
        let pw = ResizeAxisPlan(input: shape[r - 1], output: out[r - 1], scale: used[r - 1], linear: linear, coordinates: coordinates, nearest: nearest)
        let taps = cubic.map { c in
            (ResizeAxisTaps(cubicInput: shape[r - 2], output: out[r - 2], scale: used[r - 2], coordinates: coordinates,
                            coefficient: c.a, excludeOutside: c.excludeOutside),
             ResizeAxisTaps(cubicInput: shape[r - 1], output: out[r - 1], scale: used[r - 1], coordinates: coordinates,
                            coefficient: c.a, excludeOutside: c.excludeOutside))
        }
        return (ph, pw, out, taps)
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try kernelInput(inputs, 0, label)
        let (ph, pw, out, taps) = try plans(x.shape, inputs)
        let outer = x.shape.dropLast(2).reduce(1, *)
        if let (th, tw) = taps {
            return [try Tensor(shape: out, floats: Kernels.resize2d(try x.floats(label), outer: outer, tapsH: th, tapsW: tw))]
        }
        return [try Tensor(shape: out, floats: Kernels.resize2d(try x.floats(label), outer: outer, planH: ph, planW: pw))]
    }

    var backwardNeeds: BackwardNeeds { BackwardNeeds(inputs: [1, 2, 3]) }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        var grads: [Tensor?] = Array(repeating: nil, count: ctx.inputs.count)
        guard ctx.wantInput.first == true, let gy = ctx.gradOutputs.first ?? nil,
              let shape = ctx.inputShapes.first ?? nil else { return grads }
        let (ph, pw, _, taps) = try plans(shape, ctx.inputs)
        let outer = shape.dropLast(2).reduce(1, *)
        if let (th, tw) = taps {
            grads[0] = try Tensor(shape: shape, floats: Kernels.resize2dBackward(try gy.floats(label), outer: outer, tapsH: th, tapsW: tw))
            return grads
        }
        grads[0] = try Tensor(shape: shape, floats: Kernels.resize2dBackward(try gy.floats(label), outer: outer, planH: ph, planW: pw))
        return grads
    }
}
