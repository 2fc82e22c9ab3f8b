import LoupeTensor

/// The top eigenpair of a small dense symmetric matrix (Eigen-CAM's principal axis), in Double.
///
/// Householder reduction to tridiagonal form T = QᵀAQ (Golub & Van Loan, Matrix Computations,
/// 4th ed., §8.3.1; ``Kernels/tridiagonalizeSymmetric(_:n:diagonal:subdiagonal:beta:work:)``, in
/// C), the largest eigenvalue of T by Sturm-sequence multisection (§8.4.1, eight points a step), its
/// eigenvector by inverse iteration on T with a pivoted tridiagonal solve (§8.2.2, LAPACK's
/// dgttrf/dgttrs scheme), then back to A's basis through the Householder vectors. O(n³) with a
/// small constant: about 4n³/3 flops against cyclic Jacobi's ~30n³, all backward stable, so the
/// vector is as accurate as an SVD's.
enum SymmetricEigen {
    static func topEigenvector(_ a: [Double], size n: Int) -> [Double] { topEigenpair(a, size: n).vector }

    static func topEigenpair(_ input: [Double], size n: Int) -> (vector: [Double], value: Double) {
        guard n > 0, input.count >= n * n else { return ([], 0) }
        if n == 1 { return ([1], input[0]) }
        var scale = 0.0
        for v in input.prefix(n * n) { scale = max(scale, abs(v)) }
        if scale == 0 || !scale.isFinite {
            var e = [Double](repeating: 0, count: n); e[0] = 1
            return (e, 0)
        }
        var a = Array(input.prefix(n * n))
        var d = [Double](repeating: 0, count: n), e = [Double](repeating: 0, count: n - 1)
        var beta = [Double](repeating: 0, count: n), work = [Double](repeating: 0, count: 3 * n + 8)
        Kernels.tridiagonalizeSymmetric(&a, n: n, diagonal: &d, subdiagonal: &e, beta: &beta, work: &work)
        let lambda = largestEigenvalue(d, e)
        var y = inverseIteration(d, e, lambda, scale: scale)
        // y is in T's basis; A's eigenvector is Q y with Q = H_0 H_1 ⋯ H_{n-3}, v_k in a's
        // column k below the diagonal.
        a.withUnsafeBufferPointer { ab in y.withUnsafeMutableBufferPointer { yb in
            for k in stride(from: n - 3, through: 0, by: -1) where beta[k] != 0 {
                var dot = 0.0
                for i in (k + 1)..<n { dot += ab[i * n + k] * yb[i] }
                let f = beta[k] * dot
                for i in (k + 1)..<n { yb[i] -= f * ab[i * n + k] }
            }
        } }
        return (y, lambda)
    }

    /// Number of eigenvalues of the tridiagonal (d, e) below each of eight points x (Sturm
    /// counts, §8.4.1), the eight recurrences advancing together: their divisions overlap
    /// instead of forming one dependency chain. `e2` holds the squared subdiagonal.
    private static func countsBelow(_ d: UnsafePointer<Double>, _ e2: UnsafePointer<Double>, _ n: Int,
                                    _ x: SIMD8<Double>, tiny: Double) -> SIMD8<Int64> {
        var count = SIMD8<Int64>()
        let one = SIMD8<Int64>(repeating: 1), tinyV = SIMD8<Double>(repeating: tiny)
        var q = d[0] - x
        count.replace(with: count &+ one, where: q .< 0)
        for i in 1..<n {
            q.replace(with: tinyV, where: q .== 0)
            q = d[i] - x - e2[i - 1] / q
            count.replace(with: count &+ one, where: q .< 0)
        }
        return count
    }

    /// The largest eigenvalue of the tridiagonal (d, e) by multisection (bisection with eight
    /// points per step, so each step shrinks the interval ninefold) inside [max dᵢ, Gershgorin's
    /// upper bound]: λ_max ≥ every diagonal entry of a symmetric matrix.
    private static func largestEigenvalue(_ d: [Double], _ e: [Double]) -> Double {
        let n = d.count
        var top = -Double.infinity, hi = -Double.infinity, big = 0.0
        for i in 0..<n {
            let r = (i > 0 ? abs(e[i - 1]) : 0) + (i < n - 1 ? abs(e[i]) : 0)
            top = max(top, d[i])
            hi = max(hi, d[i] + r)
            big = max(big, abs(d[i] - r), abs(d[i] + r))
        }
        let e2 = e.map { $0 * $0 }
        let tiny = Double.leastNormalMagnitude * 4
        let width = big
        let fractions = SIMD8<Double>(1, 2, 3, 4, 5, 6, 7, 8) / 9
        // Invariant: fewer than n eigenvalues lie below a, all n below b.
        var a = top - Double.ulpOfOne * width, b = hi + Double.ulpOfOne * width
        d.withUnsafeBufferPointer { db in e2.withUnsafeBufferPointer { eb in
            guard let d0 = db.baseAddress else { return }
            let e0 = eb.baseAddress ?? d0   // n = 1: never read
            for _ in 0..<100 {
                if b - a <= 2 * Double.ulpOfOne * width { break }
                let x = a + (b - a) * fractions
                let counts = countsBelow(d0, e0, n, x, tiny: tiny)
                var newA = a, newB = b
                for j in 0..<8 {
                    if counts[j] == Int64(n) { newB = x[j]; break }
                    newA = x[j]
                }
                if newA <= a && newB >= b { break }   // no representable progress
                a = newA; b = newB
            }
        } }
        return (a + b) / 2
    }

    /// Eigenvector of the tridiagonal (d, e) for eigenvalue `lambda`: three steps of inverse
    /// iteration, each a solve of (T − λI) y_new = y with partial pivoting (a zero pivot is
    /// replaced by a tiny one: T − λI is meant to be nearly singular).
    private static func inverseIteration(_ d: [Double], _ e: [Double], _ lambda: Double, scale: Double) -> [Double] {
        let n = d.count
        // LU of T − λI: multipliers dl, diagonal dd, superdiagonals du, du2, row swaps swap.
        var dl = e, dd = d.map { $0 - lambda }, du = e
        var du2 = [Double](repeating: 0, count: max(n - 2, 0))
        var swap = [Bool](repeating: false, count: n - 1)
        let tiny = Double.ulpOfOne * scale * Double(n)
        for i in 0..<(n - 1) {
            if abs(dd[i]) >= abs(dl[i]) {
                if dd[i] == 0 { dd[i] = tiny }
                let f = dl[i] / dd[i]
                dl[i] = f
                dd[i + 1] -= f * du[i]
            } else {
                let f = dd[i] / dl[i]
                dd[i] = dl[i]
                dl[i] = f
                let t = du[i]
                du[i] = dd[i + 1]
                dd[i + 1] = t - f * dd[i + 1]
                if i < n - 2 {
                    du2[i] = du[i + 1]
                    du[i + 1] = -f * du[i + 1]
                }
                swap[i] = true
            }
        }
        if dd[n - 1] == 0 { dd[n - 1] = tiny }
        var y = [Double](repeating: 1 / Double(n).squareRoot(), count: n)
        for _ in 0..<3 {
            for i in 0..<(n - 1) {
                if swap[i] {
                    let t = y[i]
                    y[i] = y[i + 1]
                    y[i + 1] = t - dl[i] * y[i]
                } else {
                    y[i + 1] -= dl[i] * y[i]
                }
            }
            y[n - 1] /= dd[n - 1]
            if n > 1 { y[n - 2] = (y[n - 2] - du[n - 2] * y[n - 1]) / dd[n - 2] }
            if n > 2 {
                for i in stride(from: n - 3, through: 0, by: -1) {
                    y[i] = (y[i] - du[i] * y[i + 1] - du2[i] * y[i + 2]) / dd[i]
                }
            }
            var norm = 0.0
            for v in y { norm += v * v }
            norm = norm.squareRoot()
            guard norm > 0, norm.isFinite else { break }
            for i in 0..<n { y[i] /= norm }
        }
        return y
    }
}
