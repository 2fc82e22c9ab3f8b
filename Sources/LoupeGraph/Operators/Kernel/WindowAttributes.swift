import LoupeTensor

/// Fetches a required input or throws naming the node.
func kernelInput(_ inputs: [Tensor?], _ i: Int, _ label: String) throws -> Tensor {
    guard i < inputs.count, let t = inputs[i] else {
        throw GraphError.arity(node: label, expected: "input \(i) to be present", got: inputs.compactMap { $0 }.count)
    }
    return t
}

/// The sliding-window attributes shared by Conv, ConvTranspose, MaxPool and AveragePool
/// (kernel_shape, strides, dilations, pads, auto_pad), parsed at load time and resolved into a
/// ``ConvGeometry`` once the input's spatial size is known. Supports 1-D (as H = 1) and 2-D.
struct WindowAttributes: Sendable {
    enum AutoPad: String, Sendable { case notSet = "NOTSET", sameUpper = "SAME_UPPER", sameLower = "SAME_LOWER", valid = "VALID" }
    var kernel: [Int]?
    var strides: [Int]?
    var dilations: [Int]?
    var pads: [Int]?
    var autoPad: AutoPad
    var label: String
    /// Reported when the input has more than two spatial dimensions (3-D windows are not
    /// implemented): an unsupported-operator error, so callers can tell scope from failure.
    var volumetric: GraphError

    /// `maxRank` 3 admits volumetric windows (``VolumeWindow``); the 2-D operators keep 2.
    init(_ ctx: OperatorContext, requireKernel: Bool, allowDilations: Bool = true, maxRank: Int = 2) throws {
        label = ctx.label
        volumetric = ctx.unsupported("inputs with 3 spatial dimensions (volumetric windows) are not implemented")
        kernel = ctx.has("kernel_shape") ? try ctx.ints("kernel_shape") : nil
        if requireKernel && kernel == nil { throw ctx.bad("kernel_shape", "is required") }
        strides = ctx.has("strides") ? try ctx.ints("strides") : nil
        dilations = ctx.has("dilations") ? try ctx.ints("dilations") : nil
        if !allowDilations, let d = dilations, d.contains(where: { $0 != 1 }) {
            throw ctx.unsupported("dilations other than 1 need opset 19")
        }
        pads = ctx.has("pads") ? try ctx.ints("pads") : nil
        let ap = try ctx.string("auto_pad", default: "NOTSET")
        guard let a = AutoPad(rawValue: ap) else {
            throw ctx.bad("auto_pad", "must be NOTSET, SAME_UPPER, SAME_LOWER or VALID (got \(ap))")
        }
        autoPad = a
        let ranks = [kernel?.count, strides?.count, dilations?.count, pads.map { $0.count / 2 }].compactMap { $0 }
        if let r = ranks.first {
            guard r >= 1 && r <= maxRank else {
                throw ctx.unsupported(maxRank == 2 ? "only 1-D and 2-D windows are supported (got \(r)-D)" : "windows of \(r) spatial dims are not supported")
            }
            guard ranks.allSatisfy({ $0 == r }), (pads?.count ?? 2 * r) == 2 * r else {
                throw ctx.bad("pads", "kernel_shape, strides, dilations and pads must agree on the spatial rank")
            }
        }
        if let k = kernel, k.contains(where: { $0 <= 0 }) { throw ctx.bad("kernel_shape", "must be positive") }
        if let s = strides, s.contains(where: { $0 <= 0 }) { throw ctx.bad("strides", "must be positive") }
        if let d = dilations, d.contains(where: { $0 <= 0 }) { throw ctx.bad("dilations", "must be positive") }
        if let p = pads, p.contains(where: { $0 < 0 }) { throw ctx.bad("pads", "must be non-negative") }
    }

    /// Strides, dilations and begin/end pads for `spatial` input dims and kernel `k` (any rank).
    /// For auto_pad SAME_* the output is ceil(in / stride) and the pad is split per ONNX (extra at
    /// the end for SAME_UPPER).
    func resolved(spatial: [Int], kernel k: [Int]) throws -> (strides: [Int], dilations: [Int], begin: [Int], end: [Int]) {
        let r = spatial.count
        let s = strides ?? [Int](repeating: 1, count: r)
        let d = dilations ?? [Int](repeating: 1, count: r)
        var begin = [Int](repeating: 0, count: r), end = [Int](repeating: 0, count: r)
        guard s.count == r, d.count == r, k.count == r else {
            throw GraphError.invalid("\(label): kernel/strides/dilations rank does not match the input's \(r) spatial dims")
        }
        switch autoPad {
        case .notSet:
            if let p = pads {
                guard p.count == 2 * r else { throw GraphError.invalid("\(label): pads need \(2 * r) values") }
                begin = Array(p[0..<r]); end = Array(p[r...])
            }
        case .valid:
            break
        case .sameUpper, .sameLower:
            for i in 0..<r {
                let out = (spatial[i] + s[i] - 1) / s[i]
                let total = max(0, (out - 1) * s[i] + (k[i] - 1) * d[i] + 1 - spatial[i])
                let small = total / 2, large = total - small
                begin[i] = autoPad == .sameUpper ? small : large
                end[i] = autoPad == .sameUpper ? large : small
            }
        }
        return (s, d, begin, end)
    }

    /// Resolves the geometry for `spatial` input dims (1 or 2) and a kernel (from the weight when
    /// kernel_shape is absent). 1-D windows become H = 1 windows; pads as ``resolved(spatial:kernel:)``.
    func geometry(spatial: [Int], kernel weightKernel: [Int]? = nil, groups: Int = 1) throws -> ConvGeometry {
        let r = spatial.count
        guard r == 1 || r == 2 else {
            throw GraphError.invalid("\(label): only 1-D and 2-D inputs are supported, got \(r) spatial dims")
        }
        guard let k = kernel ?? weightKernel, k.count == r else {
            throw GraphError.invalid("\(label): kernel_shape has \(kernel?.count ?? 0) dims but the input has \(r) spatial dims")
        }
        let (s, d, begin, end) = try resolved(spatial: spatial, kernel: k)
        if r == 1 {
            return ConvGeometry(kernel: (1, k[0]), strides: (1, s[0]), dilations: (1, d[0]), pads: (0, begin[0], 0, end[0]), groups: groups)
        }
        return ConvGeometry(kernel: (k[0], k[1]), strides: (s[0], s[1]), dilations: (d[0], d[1]),
                            pads: (begin[0], begin[1], end[0], end[1]), groups: groups)
    }
}

/// Views a rank-3 (N, C, L) tensor as (N, C, 1, L); rank-4 tensors pass through.
func kernelLiftTo2D(_ t: Tensor, _ label: String, volumetric: GraphError? = nil) throws -> Tensor {
    if t.rank == 5, let volumetric { throw volumetric }
    switch t.rank {
    case 4: return t
    case 3: return try t.reshaped([t.shape[0], t.shape[1], 1, t.shape[2]])
    default:
        throw GraphError.invalid("\(label): expected a rank-3 or rank-4 (N, C, spatial...) tensor, got shape \(t.shape)")
    }
}

/// Undoes ``kernelLiftTo2D(_:_:)`` for a result when the original was rank 3.
func kernelLowerFrom2D(_ t: Tensor, rank: Int) throws -> Tensor {
    rank == 3 ? try t.reshaped([t.shape[0], t.shape[1], t.shape[3]]) : t
}
