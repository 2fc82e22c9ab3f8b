import LoupeTensor

/// The window attributes of a 3-D Conv or pool (kernel_shape, strides, dilations, pads,
/// auto_pad), resolved per call into the temporal axis's terms and the 2-D geometry of each
/// frame: the 3-D operators run as 2-D kernels over frames.
struct VolumeWindow: Sendable {
    let kernel: [Int]?, strides: [Int], dilations: [Int], pads: [Int]?
    let autoPad: String

    init(_ ctx: OperatorContext, requireKernel: Bool) throws {
        kernel = ctx.has("kernel_shape") ? try ctx.ints("kernel_shape") : nil
        if requireKernel && kernel == nil { throw ctx.bad("kernel_shape", "is required") }
        strides = try ctx.ints("strides", default: [1, 1, 1])
        dilations = try ctx.ints("dilations", default: [1, 1, 1])
        pads = ctx.has("pads") ? try ctx.ints("pads") : nil
        autoPad = try ctx.string("auto_pad", default: "NOTSET")
        guard ["NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"].contains(autoPad) else {
            throw ctx.bad("auto_pad", "must be NOTSET, SAME_UPPER, SAME_LOWER or VALID (got \(autoPad))")
        }
        guard strides.count == 3, dilations.count == 3, (kernel?.count ?? 3) == 3, (pads?.count ?? 6) == 6 else {
            throw ctx.bad("pads", "kernel_shape, strides, dilations (3 values) and pads (6) must agree on 3 spatial dims")
        }
        guard strides.allSatisfy({ $0 > 0 }), dilations.allSatisfy({ $0 > 0 }), (kernel ?? [1]).allSatisfy({ $0 > 0 }),
              (pads ?? [0]).allSatisfy({ $0 >= 0 }) else {
            throw ctx.bad("strides", "kernel_shape, strides and dilations must be positive and pads non-negative")
        }
    }

    /// The temporal axis: kernel, stride, dilation, pads, output length; and the frames' 2-D geometry.
    struct Plan { let kT: Int, sT: Int, dT: Int, padT: Int, padTEnd: Int, outT: Int, frame: ConvGeometry }

    /// For an input (N, C, T, H, W) and the kernel's (kT, kH, kW) (`weightKernel` when the
    /// attribute is absent).
    func plan(_ shape: [Int], weightKernel: [Int]? = nil, groups: Int = 1, ceilMode: Bool = false, label: String) throws -> Plan {
        guard shape.count == 5 else { throw GraphError.invalid("\(label): expected (N, C, T, H, W), got \(shape)") }
        guard let k = kernel ?? weightKernel, k.count == 3 else { throw GraphError.invalid("\(label): a 3-D kernel is needed") }
        if let kernel, let weightKernel, kernel != weightKernel {
            throw GraphError.invalid("\(label): kernel_shape \(kernel) differs from the weight's \(weightKernel)")
        }
        let spatial = Array(shape[2...])
        var begin = [0, 0, 0], end = [0, 0, 0]
        switch autoPad {
        case "NOTSET": if let pads { begin = Array(pads[0..<3]); end = Array(pads[3...]) }
        case "VALID": break
        default:
            for i in 0..<3 {
                let out = (spatial[i] + strides[i] - 1) / strides[i]
                let total = max(0, (out - 1) * strides[i] + (k[i] - 1) * dilations[i] + 1 - spatial[i])
                let small = total / 2, large = total - small
                begin[i] = autoPad == "SAME_UPPER" ? small : large
                end[i] = autoPad == "SAME_UPPER" ? large : small
            }
        }
        let outT = ConvGeometry.outputLength(input: spatial[0], kernel: k[0], stride: strides[0], dilation: dilations[0],
                                             padBegin: begin[0], padEnd: end[0], ceilMode: ceilMode)
        guard outT > 0 else {
            throw GraphError.invalid("\(label): the temporal window (\(k[0]) taps, dilation \(dilations[0])) exceeds the padded input (\(spatial[0] + begin[0] + end[0]) frames)")
        }
        let frame = ConvGeometry(kernel: (k[1], k[2]), strides: (strides[1], strides[2]), dilations: (dilations[1], dilations[2]),
                                 pads: (begin[1], begin[2], end[1], end[2]), groups: groups)
        return Plan(kT: k[0], sT: strides[0], dT: dilations[0], padT: begin[0], padTEnd: end[0], outT: outT, frame: frame)
    }
}

extension VolumeWindow.Plan {
    /// The input frame temporal tap `k` of output frame `o` reads (may lie in the padding).
    func frame(_ o: Int, tap k: Int) -> Int { o * sT - padT + k * dT }
}

extension VolumeWindow {
    /// (N, C, T, H, W) ↔ (N, T, C, H, W): frames-major, so each frame is one contiguous block.
    /// The swap is its own inverse.
    static let framesMajor = [0, 2, 1, 3, 4]
}

extension VolumeWindow.Plan {
    /// From frames-major `xf` (N, T, F floats per frame): the frame temporal tap `k` reads for
    /// every output frame, as (N·outT, F); zeros where the tap lies in the padding.
    func gatherFrames(_ xf: [Float], batch n: Int, frames t: Int, frameSize f: Int, tap k: Int) -> [Float] {
        var out = [Float](repeating: 0, count: n * outT * f)
        for b in 0..<n { for o in 0..<outT {
            let ti = frame(o, tap: k)
            guard ti >= 0 && ti < t else { continue }
            let src = (b * t + ti) * f, dst = (b * outT + o) * f
            for i in 0..<f { out[dst + i] = xf[src + i] }
        } }
        return out
    }

    /// Adjoint of ``gatherFrames(_:batch:frames:frameSize:tap:)``: adds each row of `g` back to
    /// the frame it was read from.
    func scatterFrames(_ g: [Float], into gxf: inout [Float], batch n: Int, frames t: Int, frameSize f: Int, tap k: Int) {
        for b in 0..<n { for o in 0..<outT {
            let ti = frame(o, tap: k)
            guard ti >= 0 && ti < t else { continue }
            let src = (b * outT + o) * f, dst = (b * t + ti) * f
            for i in 0..<f { gxf[dst + i] += g[src + i] }
        } }
    }
}
