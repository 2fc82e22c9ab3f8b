import LoupeTensor

/// The window attributes of a 3-D Conv or pool (``WindowAttributes`` admitting three spatial
/// dims), resolved per call into the temporal axis's terms and the 2-D geometry of each frame:
/// the 3-D operators run as 2-D kernels over frames.
struct VolumeWindow: Sendable {
    let attributes: WindowAttributes

    init(_ ctx: OperatorContext, requireKernel: Bool, allowDilations: Bool = true) throws {
        attributes = try WindowAttributes(ctx, requireKernel: requireKernel, allowDilations: allowDilations, maxRank: 3)
    }

    /// The temporal axis: kernel, stride, dilation, pads, output length; and the frames' 2-D geometry.
    struct Plan { let kT: Int, sT: Int, dT: Int, padT: Int, padTEnd: Int, outT: Int, frame: ConvGeometry }

    /// For an input (N, C, T, H, W) and the kernel's (kT, kH, kW) (`weightKernel` when the
    /// attribute is absent).
    func plan(_ shape: [Int], weightKernel: [Int]? = nil, groups: Int = 1, ceilMode: Bool = false, label: String) throws -> Plan {
        guard shape.count == 5 else { throw GraphError.invalid("\(label): expected (N, C, T, H, W), got \(shape)") }
        guard let k = attributes.kernel ?? weightKernel, k.count == 3 else { throw GraphError.invalid("\(label): a 3-D kernel is needed") }
        if let kernel = attributes.kernel, let weightKernel, kernel != weightKernel {
            throw GraphError.invalid("\(label): kernel_shape \(kernel) differs from the weight's \(weightKernel)")
        }
        let spatial = Array(shape[2...])
        let (s, d, begin, end) = try attributes.resolved(spatial: spatial, kernel: k)
        let outT = ConvGeometry.outputLength(input: spatial[0], kernel: k[0], stride: s[0], dilation: d[0],
                                             padBegin: begin[0], padEnd: end[0], ceilMode: ceilMode)
        guard outT > 0 else {
            throw GraphError.invalid("\(label): the temporal window (\(k[0]) taps, dilation \(d[0])) exceeds the padded input (\(spatial[0] + begin[0] + end[0]) frames)")
        }
        let frame = ConvGeometry(kernel: (k[1], k[2]), strides: (s[1], s[2]), dilations: (d[1], d[2]),
                                 pads: (begin[1], begin[2], end[1], end[2]), groups: groups)
        return Plan(kT: k[0], sT: s[0], dT: d[0], padT: begin[0], padTEnd: end[0], outT: outT, frame: frame)
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
