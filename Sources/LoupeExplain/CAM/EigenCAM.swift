import LoupeTensor

extension CAM {
    /// Eigen-CAM (Muhammad & Yeasin 2020, arXiv:2008.00299): per sample, the (h·w × C) matrix of
    /// activations is centred (each channel's spatial mean subtracted) and projected on its
    /// first right singular vector; the map is that projection (B, h, w). Needs no gradients.
    ///
    /// Sign: a singular vector is defined only up to sign. pytorch-grad-cam 1.5.7's `EigenCAM`
    /// keeps whatever LAPACK returns (so its map may come out negative and be zeroed by the
    /// ReLU). Loupe fixes it with the rule the same library uses in
    /// `get_2d_projection_with_sign_correction` (Seg-Eigen-CAM, eq. 13): the projection is
    /// negated when `|min| > |max|`, so its largest-magnitude value is positive.
    public struct EigenCAM: CAMWeighting {
        public init() {}
        public var usesGradients: Bool { false }
        public func readout(activations: Tensor, gradients: Tensor?, classes: [Int]) throws -> CAMReadout {
            let d = try CAMDims(activations, "CAM activations")
            return .map(try CAM.firstComponentProjection(try activations.floats(), d))
        }
    }

    /// EigenGrad-CAM (pytorch-grad-cam): Eigen-CAM's projection applied to `G⊙A`.
    public struct EigenGradCAM: CAMWeighting {
        public init() {}
        public var usesGradients: Bool { true }
        public func readout(activations: Tensor, gradients: Tensor?, classes: [Int]) throws -> CAMReadout {
            let (d, a, gOpt) = try CAMDims.pair(activations, gradients, needGradients: true)
            let g = gOpt ?? []
            var ga = [Float](repeating: 0, count: a.count)
            for i in 0..<a.count { ga[i] = a[i] * g[i] }
            return .map(try CAM.firstComponentProjection(ga, d))
        }
    }

    /// Projection of each sample's centred (h·w × C) matrix on its first principal axis, sign
    /// fixed so that `|max| ≥ |min|`. NaNs count as 0 (as in pytorch-grad-cam).
    static func firstComponentProjection(_ x: [Float], _ d: CAMDims) throws -> Tensor {
        var out = [Float](repeating: 0, count: d.b * d.hw)
        let n = d.hw, c = d.c
        for b in 0..<d.b {
            // m[p, ch], centred per channel, Double.
            var m = [Double](repeating: 0, count: n * c)
            for ch in 0..<c {
                var mean = 0.0
                for p in 0..<n {
                    let v = x[(b * c + ch) * n + p]
                    let dv = v.isNaN ? 0 : Double(v)
                    m[p * c + ch] = dv
                    mean += dv
                }
                mean /= Double(n)
                for p in 0..<n { m[p * c + ch] -= mean }
            }
            var proj = [Double](repeating: 0, count: n)
            if c <= n {
                // Top eigenvector v of MᵀM (C × C); projection M·v.
                var gram = [Double](repeating: 0, count: c * c)
                for p in 0..<n {
                    for i in 0..<c {
                        let mi = m[p * c + i]
                        if mi == 0 { continue }
                        for j in i..<c { gram[i * c + j] += mi * m[p * c + j] }
                    }
                }
                for i in 0..<c { for j in 0..<i { gram[i * c + j] = gram[j * c + i] } }
                let v = SymmetricEigen.topEigenvector(gram, size: c)
                for p in 0..<n {
                    var s = 0.0
                    for i in 0..<c { s += m[p * c + i] * v[i] }
                    proj[p] = s
                }
            } else {
                // Fewer positions than channels: top eigenvector u of M·Mᵀ (n × n), projection σ·u.
                var gram = [Double](repeating: 0, count: n * n)
                m.withUnsafeBufferPointer { mb in
                    guard let base = mb.baseAddress else { return }
                    for p in 0..<n {
                        for q in p..<n {
                            let s = dot(base + p * c, base + q * c, c)
                            gram[p * n + q] = s
                            gram[q * n + p] = s
                        }
                    }
                }
                let (u, lambda) = SymmetricEigen.topEigenpair(gram, size: n)
                let sigma = max(lambda, 0).squareRoot()
                for p in 0..<n { proj[p] = sigma * u[p] }
            }
            let lo = proj.min() ?? 0, hi = proj.max() ?? 0
            let sign: Double = abs(lo) > abs(hi) ? -1 : 1
            for p in 0..<n { out[b * n + p] = Float(sign * proj[p]) }
        }
        return try Tensor(shape: [d.b, d.h, d.w], floats: out)
    }

    /// Σ a[i]·b[i] over n Doubles, four independent SIMD accumulators (the compiler may not
    /// reassociate a scalar sum into vectors itself).
    static func dot(_ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>, _ n: Int) -> Double {
        var acc = SIMD4<Double>(repeating: 0)
        var i = 0
        while i + 4 <= n {
            acc += SIMD4(a[i], a[i + 1], a[i + 2], a[i + 3]) * SIMD4(b[i], b[i + 1], b[i + 2], b[i + 3])
            i += 4
        }
        var s = acc.sum()
        while i < n { s += a[i] * b[i]; i += 1 }
        return s
    }
}
