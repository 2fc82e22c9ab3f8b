import CLoupeKernels

extension Kernels {
    /// Householder tridiagonalisation T = QᵀAQ of a symmetric n×n matrix (row-major, both
    /// triangles holding it), Golub & Van Loan §8.3.1 — the O(n³) step of a symmetric eigensolver, in C so it
    /// runs at AVX-512 width.
    ///
    /// On return `diagonal` (n) and `subdiagonal` (n − 1) hold T; Q = H₀H₁⋯H_{n−3} with
    /// H_k = I − β_k v_k v_kᵀ acting on coordinates k+1..<n, v_k stored in `a`'s column k from row
    /// k + 1 down and β_k in `beta` (0: no reflector). The rest of `a` is overwritten.
    public static func tridiagonalizeSymmetric(_ a: inout [Double], n: Int, diagonal d: inout [Double],
                                               subdiagonal e: inout [Double], beta: inout [Double], work: inout [Double]) {
        precondition(n >= 1 && a.count >= n * n && d.count >= n && e.count >= n - 1 && beta.count >= n && work.count >= 3 * n + 8,
                     "tridiagonalizeSymmetric: buffers smaller than n = \(n) needs")
        if n == 1 { d[0] = a[0]; return }
        a.withUnsafeMutableBufferPointer { ab in d.withUnsafeMutableBufferPointer { db in
        e.withUnsafeMutableBufferPointer { eb in beta.withUnsafeMutableBufferPointer { bb in
        work.withUnsafeMutableBufferPointer { wb in
            guard let a0 = ab.baseAddress, let d0 = db.baseAddress, let e0 = eb.baseAddress, let b0 = bb.baseAddress,
                  let w0 = wb.baseAddress else { return }
            loupe_sym_tridiagonalize(a0, n, d0, e0, b0, w0)
        } } } } }
    }

    /// y = x − mean(x) for each row of a rows×n row-major matrix, NaN counted as 0 in the mean and
    /// in y (as pytorch-grad-cam's Eigen-CAM, which zeroes NaNs first); means summed in Double.
    /// x and y may be the same buffer.
    public static func centerRows(_ x: UnsafePointer<Float>, rows: Int, n: Int, _ y: UnsafeMutablePointer<Float>) {
        loupe_center_rows(x, rows, n, y)
    }

    /// The n×n Gram matrix Xcᵀ·Xc of the rows×n row-major matrix `x` with each row centred as
    /// ``centerRows(_:rows:n:_:)`` does (NaN as 0): Eigen-CAM's h·w × h·w matrix when channels
    /// outnumber positions. Accumulated in float like the peer's float SVD, returned in Double with
    /// both triangles equal. Only the lower triangle is computed (n²·rows flops); large inputs split
    /// their rows over the thread pool and sum the partial Grams.
    public static func centeredGram(_ x: UnsafePointer<Float>, rows: Int, n: Int) -> [Double] {
        guard n > 0 else { return [] }
        // The kernel writes its scratch before reading it: no zero fill.
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: loupe_centered_gram_scratch(rows, n))
        defer { scratch.deallocate() }
        return [Double](unsafeUninitializedCapacity: n * n) { gb, count in
            guard let g0 = gb.baseAddress else { return }
            loupe_centered_gram(x, rows, n, scratch, g0)
            count = n * n
        }
    }
}
