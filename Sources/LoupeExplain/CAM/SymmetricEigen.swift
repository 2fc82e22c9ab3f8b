/// The top eigenpair of a small dense symmetric matrix (Eigen-CAM's principal axis), in Double.
///
/// Householder reduction to tridiagonal form T = QᵀAQ (Golub & Van Loan, Matrix Computations,
/// 4th ed., §8.3.1), the largest eigenvalue of T by Sturm-sequence bisection (§8.4.1), its
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
        var householders: [Reflector] = []
        tridiagonalize(&a, n, &householders)
        let d = (0..<n).map { a[$0 * n + $0] }
        let e = (0..<(n - 1)).map { a[($0 + 1) * n + $0] }
        let lambda = largestEigenvalue(d, e)
        var y = inverseIteration(d, e, lambda, scale: scale)
        // y is in T's basis; A's eigenvector is Q y with Q = H_0 H_1 ⋯ H_{n-3}.
        for h in householders.reversed() {
            var dot = 0.0
            for i in 0..<h.v.count { dot += h.v[i] * y[h.first + i] }
            let f = h.beta * dot
            for i in 0..<h.v.count { y[h.first + i] -= f * h.v[i] }
        }
        return (y, lambda)
    }

    /// A Householder reflector I − β v vᵀ acting on coordinates first ..< first + v.count.
    private struct Reflector {
        var first: Int
        var v: [Double]
        var beta: Double
    }

    /// A (row-major n×n, symmetric) ← T = QᵀAQ in place, Q the product of the reflectors in order
    /// (a column already zero below the subdiagonal needs none).
    private static func tridiagonalize(_ a: inout [Double], _ n: Int, _ out: inout [Reflector]) {
        guard n > 2 else { return }
        var p = [Double](repeating: 0, count: n), w = [Double](repeating: 0, count: n)
        for k in 0..<(n - 2) {
            let m = n - k - 1
            var norm2 = 0.0
            for i in 0..<m { let x = a[(k + 1 + i) * n + k]; norm2 += x * x }
            let x0 = a[(k + 1) * n + k]
            let norm = norm2.squareRoot()
            if norm == 0 { continue }
            let alpha = x0 > 0 ? -norm : norm
            var v = (0..<m).map { a[(k + 1 + $0) * n + k] }
            v[0] -= alpha
            var vv = 0.0
            for x in v { vv += x * x }
            if vv == 0 { continue }
            let beta = 2 / vv
            // B ← H B H for the trailing block B = A[k+1..., k+1...]:
            // p = β B v, w = p − (β/2)(pᵀv) v, B ← B − v wᵀ − w vᵀ.
            var pv = 0.0
            for i in 0..<m {
                var s = 0.0
                let row = (k + 1 + i) * n + k + 1
                for j in 0..<m { s += a[row + j] * v[j] }
                p[i] = beta * s
                pv += p[i] * v[i]
            }
            let half = beta * pv / 2
            for i in 0..<m { w[i] = p[i] - half * v[i] }
            for i in 0..<m {
                let row = (k + 1 + i) * n + k + 1
                for j in 0..<m { a[row + j] -= v[i] * w[j] + w[i] * v[j] }
            }
            a[(k + 1) * n + k] = alpha
            a[k * n + k + 1] = alpha
            for i in 1..<m { a[(k + 1 + i) * n + k] = 0; a[k * n + k + 1 + i] = 0 }
            out.append(Reflector(first: k + 1, v: v, beta: beta))
        }
    }

    /// Number of eigenvalues of the tridiagonal (d, e) below x (Sturm count).
    private static func countBelow(_ d: [Double], _ e: [Double], _ x: Double, tiny: Double) -> Int {
        var count = 0
        var q = d[0] - x
        if q < 0 { count += 1 }
        for i in 1..<d.count {
            if q == 0 { q = tiny }
            q = d[i] - x - e[i - 1] * e[i - 1] / q
            if q < 0 { count += 1 }
        }
        return count
    }

    /// The largest eigenvalue of the tridiagonal (d, e), by bisection inside its Gershgorin interval.
    private static func largestEigenvalue(_ d: [Double], _ e: [Double]) -> Double {
        let n = d.count
        var lo = Double.infinity, hi = -Double.infinity
        for i in 0..<n {
            let r = (i > 0 ? abs(e[i - 1]) : 0) + (i < n - 1 ? abs(e[i]) : 0)
            lo = min(lo, d[i] - r)
            hi = max(hi, d[i] + r)
        }
        let tiny = Double.leastNormalMagnitude * 4
        let width = max(abs(lo), abs(hi))
        // Invariant: fewer than n eigenvalues lie below a, all n below b.
        var a = lo - Double.ulpOfOne * width, b = hi + Double.ulpOfOne * width
        for _ in 0..<200 {
            let mid = (a + b) / 2
            if mid <= a || mid >= b || b - a <= 2 * Double.ulpOfOne * width { break }
            if countBelow(d, e, mid, tiny: tiny) == n { b = mid } else { a = mid }
        }
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
