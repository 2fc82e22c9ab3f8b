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
        // Every element is written by the centring before it is read.
        var xc = [Float](unsafeUninitializedCapacity: c * n) { _, count in count = c * n }
        for b in 0..<d.b {
            // Xc (C × h·w), each channel centred (mean in Double); M = Xcᵀ is the (h·w × C)
            // matrix whose principal axis Eigen-CAM projects on.
            x.withUnsafeBufferPointer { xb in xc.withUnsafeMutableBufferPointer { cb in
                guard let x0 = xb.baseAddress, let c0 = cb.baseAddress else { return }
                Kernels.centerRows(x0 + b * c * n, rows: c, n: n, c0)
            } }
            // The Gram matrix of the smaller side by one float GEMM (the peer's SVD runs in float
            // too); its top eigenpair in Double.
            let size = min(c, n)
            var g = [Float](repeating: 0, count: size * size)
            xc.withUnsafeBufferPointer { xb in g.withUnsafeMutableBufferPointer { gb in
                guard let x0 = xb.baseAddress, let g0 = gb.baseAddress else { return }
                if c <= n { // MᵀM = Xc·Xcᵀ (C × C)
                    Kernels.gemm(transB: true, m: c, n: c, k: n, a: x0, lda: n, b: x0, ldb: n, c: g0, ldc: c)
                } else {    // M·Mᵀ = Xcᵀ·Xc (h·w × h·w)
                    Kernels.gemm(transA: true, m: n, n: n, k: c, a: x0, lda: n, b: x0, ldb: n, c: g0, ldc: n)
                }
            } }
            // Symmetrise (the two triangles can differ in the last bit).
            let gram = [Double](unsafeUninitializedCapacity: size * size) { gb, count in
                g.withUnsafeBufferPointer { fb in
                    for i in 0..<size { for j in 0..<size { gb[i * size + j] = (Double(fb[i * size + j]) + Double(fb[j * size + i])) / 2 } }
                }
                count = size * size
            }
            var proj = [Double](repeating: 0, count: n)
            if c <= n {
                // Top eigenvector v of MᵀM; projection M·v.
                let v = SymmetricEigen.topEigenvector(gram, size: c)
                for ch in 0..<c {
                    let vc = v[ch]
                    for p in 0..<n { proj[p] += Double(xc[ch * n + p]) * vc }
                }
            } else {
                // Top eigenvector u of M·Mᵀ; projection σ·u.
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
