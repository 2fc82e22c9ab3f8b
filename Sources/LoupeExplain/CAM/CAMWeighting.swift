import LoupeTensor

/// The CAM family (class activation maps).
///
/// Every variant is one ``CAMWeighting``: a function of the activations `A` and gradients
/// `G = ∂score/∂A` at one layer, both (B, C, h, w), that returns either per-channel weights
/// `w` (B, C) — the map is then `Σ_c w[b,c]·A[b,c]` — or a whole map (B, h, w) for the
/// pixel-wise variants (HiRes-CAM, Layer-CAM, Eigen-CAM, EigenGrad-CAM). ``CAM/explain(model:input:layer:classes:method:inputName:outputName:)``
/// is the one pipeline around them.
///
/// Conventions (docs/cams.md): ``Readout/rawMap`` is the weighted sum before ReLU, what
/// pytorch-grad-cam 1.5.7's `get_cam_image` returns; the CAM proper is `ReLU` of it at the layer
/// resolution (Captum's `LayerGradCam(..., relu_attributions=True)`); pytorch-grad-cam's final
/// image additionally min-max scales and resizes it, see ``CAM/scaledLikePytorchGradCAM(_:height:width:)``.
public enum CAM {}

/// What a weighting returns.
public enum CAMReadout: Sendable {
    /// Per-channel weights (B, C); the map is `Σ_c w·A`.
    case channelWeights(Tensor)
    /// A full map (B, h, w) before ReLU.
    case map(Tensor)
}

/// One CAM variant: activations and gradients at a layer in, channel weights or a map out.
public protocol CAMWeighting: Sendable {
    /// False for gradient-free variants (Eigen-CAM, CAM): the driver then skips backward.
    var usesGradients: Bool { get }
    /// - Parameters:
    ///   - activations: (B, C, h, w) layer activations `A`.
    ///   - gradients: (B, C, h, w) `∂(Σ_b score_b)/∂A`, nil when ``usesGradients`` is false.
    ///   - classes: the target class of each sample (only CAM's classifier weights read it).
    func readout(activations: Tensor, gradients: Tensor?, classes: [Int]) throws -> CAMReadout
}

/// Dimensions of a (B, C, h, w) layer grid.
struct CAMDims: Equatable {
    let b: Int, c: Int, h: Int, w: Int
    var hw: Int { h * w }

    init(_ t: Tensor, _ what: String) throws {
        guard t.rank == 4, t.dtype == .float32 else {
            throw CAMError.shapeMismatch(what: what, expected: "float32 (B, C, h, w)", got: t.shape)
        }
        b = t.shape[0]; c = t.shape[1]; h = t.shape[2]; w = t.shape[3]
    }

    static func pair(_ a: Tensor, _ g: Tensor?, needGradients: Bool) throws -> (CAMDims, [Float], [Float]?) {
        let d = try CAMDims(a, "CAM activations")
        guard let g else {
            if needGradients { throw CAMError.invalidArgument("this CAM variant needs the gradients at the layer") }
            return (d, try a.floats(), nil)
        }
        guard g.shape == a.shape else {
            throw CAMError.shapeMismatch(what: "CAM gradients", expected: "the activations' shape \(a.shape)", got: g.shape)
        }
        return (d, try a.floats(), try g.floats())
    }
}

extension CAM {
    /// `Σ_c w[b,c]·A[b,c,:,:]` (B, h, w), before ReLU — pytorch-grad-cam's `get_cam_image`.
    public static func weightedSum(weights: Tensor, activations: Tensor) throws -> Tensor {
        let d = try CAMDims(activations, "CAM activations")
        guard weights.shape == [d.b, d.c] else {
            throw CAMError.shapeMismatch(what: "CAM channel weights", expected: "(\(d.b), \(d.c))", got: weights.shape)
        }
        let a = try activations.floats(), w = try weights.floats()
        return Tensor.makeFloats(shape: [d.b, d.h, d.w]) { out in
            a.withUnsafeBufferPointer { ap in
                for n in 0..<d.b {
                    for ch in 0..<d.c {
                        let k = w[n * d.c + ch], base = (n * d.c + ch) * d.hw
                        for p in 0..<d.hw { out[n * d.hw + p] += k * ap[base + p] }
                    }
                }
            }
        }
    }

    /// The class activation map `ReLU(Σ_c w_c A_c)` at the layer's resolution (B, h, w),
    /// unnormalized — Captum's `LayerGradCam` with `relu_attributions=True`.
    public static func camMap(weights: Tensor, activations: Tensor) throws -> Tensor {
        relu(try weightedSum(weights: weights, activations: activations))
    }

    /// The map of a readout, before ReLU.
    public static func rawMap(_ r: CAMReadout, activations: Tensor) throws -> Tensor {
        switch r {
        case let .channelWeights(w): return try weightedSum(weights: w, activations: activations)
        case let .map(m): return m
        }
    }

    static func relu(_ t: Tensor) -> Tensor {
        guard case let .float32(v) = t.storage else { return t }
        return Tensor.makeFloats(shape: t.shape) { out in
            for i in 0..<v.count { out[i] = max(v[i], 0) }
        }
    }

    /// Per (b, c) sums over space, in Double.
    static func spatialSums(_ x: [Float], _ d: CAMDims) -> [Double] {
        var s = [Double](repeating: 0, count: d.b * d.c)
        x.withUnsafeBufferPointer { p in
            for k in 0..<(d.b * d.c) {
                var acc = 0.0
                for i in 0..<d.hw { acc += Double(p[k * d.hw + i]) }
                s[k] = acc
            }
        }
        return s
    }
}
