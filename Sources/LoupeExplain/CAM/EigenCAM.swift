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
        guard n > 0, c > 0 else { return try Tensor(shape: [d.b, d.h, d.w], floats: out) }
        for b in 0..<d.b {
            var proj = [Double](repeating: 0, count: n)
            x.withUnsafeBufferPointer { xb in
                guard let x0 = xb.baseAddress else { return }
                if c <= n {
                    // Top eigenvector v of MᵀM = Xc·Xcᵀ (C × C); projection M·v.
                    let xc = centred(x0 + b * c * n, rows: c, n: n)
                    let v = SymmetricEigen.topEigenvector(gram(xc, rows: c, n: n), size: c)
                    for ch in 0..<c {
                        let vc = v[ch]
                        for p in 0..<n { proj[p] += Double(xc[ch * n + p]) * vc }
                    }
                } else {
                    // Top eigenvector u of M·Mᵀ = Xcᵀ·Xc (h·w × h·w); projection σ·u.
                    let (u, lambda) = SymmetricEigen.topEigenpair(Kernels.centeredGram(x0 + b * c * n, rows: c, n: n), size: n)
                    let sigma = max(lambda, 0).squareRoot()
                    for p in 0..<n { proj[p] = sigma * u[p] }
                }
            }
            let lo = proj.min() ?? 0, hi = proj.max() ?? 0
            let sign: Double = abs(lo) > abs(hi) ? -1 : 1
            for p in 0..<n { out[b * n + p] = Float(sign * proj[p]) }
        }
        return try Tensor(shape: [d.b, d.h, d.w], floats: out)
    }

    /// Xc (rows × n): each row of `x` minus its mean (taken in Double), NaNs as 0.
    private static func centred(_ x: UnsafePointer<Float>, rows: Int, n: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: rows * n) { yb, count in
            if let y0 = yb.baseAddress { Kernels.centerRows(x, rows: rows, n: n, y0) }
            count = rows * n
        }
    }

    /// Xc·Xcᵀ (rows × rows) of the centred rows by one float GEMM (the peer's SVD runs in float
    /// too), symmetrised in Double (the two triangles can differ in the last bit).
    private static func gram(_ xc: [Float], rows: Int, n: Int) -> [Double] {
        var g = [Float](repeating: 0, count: rows * rows)
        xc.withUnsafeBufferPointer { xb in g.withUnsafeMutableBufferPointer { gb in
            guard let x0 = xb.baseAddress, let g0 = gb.baseAddress else { return }
            Kernels.gemm(transB: true, m: rows, n: rows, k: n, a: x0, lda: n, b: x0, ldb: n, c: g0, ldc: rows)
        } }
        return symmetrised(g, size: rows)
    }

    /// (G + Gᵀ) / 2 in Double, of a size × size float matrix.
    private static func symmetrised(_ g: [Float], size: Int) -> [Double] {
        [Double](unsafeUninitializedCapacity: size * size) { gb, count in
            for i in 0..<size {
                for j in 0..<size { gb[i * size + j] = (Double(g[i * size + j]) + Double(g[j * size + i])) / 2 }
            }
            count = size * size
        }
    }
}
