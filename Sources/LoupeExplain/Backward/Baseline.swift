import Foundation
import LoupeTensor

/// The reference input of path methods (Integrated Gradients, DeepLIFT-style "x − baseline").
public enum Baseline: Sendable {
    /// All zeros (Captum's default).
    case zeros
    /// The same value everywhere.
    case constant(Float)
    /// A tensor with the input's shape, or with batch 1 (shared by every sample).
    case tensor(Tensor)
    /// The input blurred by a Gaussian of standard deviation `sigma` pixels over its last two
    /// axes (Sturmfels, Lundberg & Lee 2020, "Visualizing the Impact of Feature Attribution
    /// Baselines"): `scipy.ndimage.gaussian_filter(x, sigma=(0, 0, σ, σ), mode="reflect",
    /// truncate=4.0)`, separable, rows then columns.
    case blurred(sigma: Double)
    /// Uniform noise in `[low, high)`, drawn from `seed` (SplitMix64).
    case uniform(low: Float, high: Float, seed: UInt64)

    /// The baseline `b` as a tensor of `x`'s shape (for methods that take explicit baseline
    /// tensors, such as ``GradientShap``).
    public static func tensor(for b: Baseline, like x: Tensor) throws -> Tensor {
        try b.resolve(like: x, method: "Baseline")
    }

    /// The baseline as a tensor of `x`'s shape.
    func resolve(like x: Tensor, method: String) throws -> Tensor {
        switch self {
        case .zeros: return Tensor(zeros: x.shape)
        case let .constant(v): return Tensor(zeros: x.shape, value: v)
        case let .blurred(sigma):
            guard sigma >= 0, sigma.isFinite, x.rank >= 2 else {
                throw ExplainError.invalidArgument(method: method, message: "a blurred baseline needs sigma ≥ 0 and an input of rank ≥ 2 (got sigma \(sigma), shape \(x.shape))")
            }
            return try GaussianBlur.apply(x, sigma: sigma)
        case let .uniform(low, high, seed):
            guard low <= high, low.isFinite, high.isFinite else {
                throw ExplainError.invalidArgument(method: method, message: "uniform baseline needs low ≤ high, got [\(low), \(high))")
            }
            var rng = ExplainRNG(seed: seed)
            return Tensor.makeFloats(shape: x.shape) { o in
                for i in 0..<o.count { o[i] = low + (high - low) * Float(rng.uniform()) }
            }
        case let .tensor(b):
            if b.shape == x.shape { return b }
            if b.rank == x.rank, b.rank >= 1, b.shape[0] == 1, Array(b.shape.dropFirst()) == Array(x.shape.dropFirst()) {
                return try b.gatheringRows(Array(repeating: 0, count: x.shape[0]))
            }
            throw ExplainError.invalidArgument(method: method, message: "baseline of shape \(b.shape) for an input of shape \(x.shape); use the input's shape or batch 1")
        }
    }

    /// The baseline for inputs whose samples were each repeated `n` times in place.
    func repeatingSamples(_ n: Int) throws -> Baseline {
        guard case let .tensor(b) = self, b.rank >= 1, b.shape[0] > 1 else { return self }
        return .tensor(try b.gatheringRows((0..<b.shape[0]).flatMap { Array(repeating: $0, count: n) }))
    }
}

/// `scipy.ndimage.gaussian_filter` over the last two axes: a normalised kernel
/// `exp(−t²/2σ²)`, `|t| ≤ ⌊4σ + ½⌋`, "reflect" borders (d c b a | a b c d | d c b a), double
/// accumulation, float32 rounding after each axis (scipy's order: the height axis first).
enum GaussianBlur {
    static func kernel(_ sigma: Double) -> [Double] {
        let radius = Int(4 * sigma + 0.5)
        var k = (-radius...radius).map { t in exp(-0.5 * Double(t * t) / (sigma * sigma)) }
        let sum = k.reduce(0, +)
        for i in k.indices { k[i] /= sum }
        return k
    }

    /// Index `i` reflected into `0..<n` with half-sample symmetry (period 2n).
    @inline(__always)
    static func reflect(_ i: Int, _ n: Int) -> Int {
        let p = 2 * n
        var j = i % p
        if j < 0 { j += p }
        return j < n ? j : p - 1 - j
    }

    static func apply(_ x: Tensor, sigma: Double) throws -> Tensor {
        guard sigma > 0 else { return x }
        let k = kernel(sigma), r = k.count / 2
        let h = x.shape[x.rank - 2], w = x.shape[x.rank - 1], planes = x.count / max(h * w, 1)
        var a = try x.floats("blurred baseline")
        var tmp = [Float](repeating: 0, count: a.count)
        // Height axis.
        for p in 0..<planes {
            let base = p * h * w
            for i in 0..<h {
                for j in 0..<w {
                    var acc = 0.0
                    for t in -r...r { acc += k[t + r] * Double(a[base + reflect(i + t, h) * w + j]) }
                    tmp[base + i * w + j] = Float(acc)
                }
            }
        }
        // Width axis.
        for p in 0..<planes {
            let base = p * h * w
            for i in 0..<h {
                for j in 0..<w {
                    var acc = 0.0
                    for t in -r...r { acc += k[t + r] * Double(tmp[base + i * w + reflect(j + t, w)]) }
                    a[base + i * w + j] = Float(acc)
                }
            }
        }
        return try Tensor(shape: x.shape, floats: a)
    }
}
