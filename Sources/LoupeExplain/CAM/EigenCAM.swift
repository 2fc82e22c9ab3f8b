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
                for p in 0..<n {
                    for q in p..<n {
                        var s = 0.0
                        for i in 0..<c { s += m[p * c + i] * m[q * c + i] }
                        gram[p * n + q] = s
                        gram[q * n + p] = s
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
}

/// Eigen-decomposition of small symmetric matrices by cyclic Jacobi rotations (Golub & Van
/// Loan, Matrix Computations, §8.5): slow for large sizes but accurate to the last bits and
/// with no convergence trouble when the top eigenvalues are close, unlike power iteration.
enum SymmetricEigen {
    static func topEigenvector(_ a: [Double], size n: Int) -> [Double] { topEigenpair(a, size: n).vector }

    static func topEigenpair(_ input: [Double], size n: Int) -> (vector: [Double], value: Double) {
        guard n > 0 else { return ([], 0) }
        // Rows padded by one element: with a power-of-two n the column sweeps would otherwise hit
        // the same cache sets on every access (10x slower at n = 256).
        let ld = n + 1
        var a = [Double](repeating: 0, count: n * ld)
        var v = [Double](repeating: 0, count: n * ld)
        var scale = 0.0
        for i in 0..<n {
            v[i * ld + i] = 1
            for j in 0..<n { a[i * ld + j] = input[i * n + j]; scale = max(scale, abs(input[i * n + j])) }
        }
        if scale == 0 {
            var e = [Double](repeating: 0, count: n); e[0] = 1
            return (e, 0)
        }
        a.withUnsafeMutableBufferPointer { a in
            v.withUnsafeMutableBufferPointer { v in
                for _ in 0..<60 {
                    var off = 0.0
                    for i in 0..<n { for j in (i + 1)..<max(n, i + 1) { off += a[i * ld + j] * a[i * ld + j] } }
                    // Converged to double precision (rounding keeps `off` from reaching exactly zero).
                    if off.squareRoot() <= 1e-14 * scale * Double(n) { break }
                    for p in 0..<(n - 1) {
                        for q in (p + 1)..<n {
                            let apq = a[p * ld + q]
                            if abs(apq) <= 1e-18 * scale { continue }
                            let theta = (a[q * ld + q] - a[p * ld + p]) / (2 * apq)
                            let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                            let cs = 1 / (t * t + 1).squareRoot(), sn = t * cs
                            // A <- J^T A J on rows/columns p and q; V <- V J.
                            for k in 0..<n {
                                let akp = a[k * ld + p], akq = a[k * ld + q]
                                a[k * ld + p] = cs * akp - sn * akq
                                a[k * ld + q] = sn * akp + cs * akq
                            }
                            for k in 0..<n {
                                let apk = a[p * ld + k], aqk = a[q * ld + k]
                                a[p * ld + k] = cs * apk - sn * aqk
                                a[q * ld + k] = sn * apk + cs * aqk
                            }
                            for k in 0..<n {
                                let vkp = v[k * ld + p], vkq = v[k * ld + q]
                                v[k * ld + p] = cs * vkp - sn * vkq
                                v[k * ld + q] = sn * vkp + cs * vkq
                            }
                        }
                    }
                }
            }
        }
        var best = 0
        for i in 1..<max(n, 1) where a[i * ld + i] > a[best * ld + best] { best = i }
        return ((0..<n).map { v[$0 * ld + best] }, a[best * ld + best])
    }
}
