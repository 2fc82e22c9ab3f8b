import XCTest
@testable import LoupeExplain

/// The top eigenpair behind Eigen-CAM: residual ‖Av − λv‖ at rounding level, λ the largest
/// eigenvalue (checked on matrices built with known spectra), on sizes from 1 to Eigen-CAM's 49
/// and on degenerate inputs (zero columns, diagonal, repeated eigenvalues).
final class SymmetricEigenTests: XCTestCase {
    private var state: UInt64 = 7
    private func uniform() -> Double {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Double(state >> 11) / Double(1 << 53) * 2 - 1
    }

    /// Q diag(λ) Qᵀ with Q from Gram–Schmidt on random vectors.
    private func matrix(eigenvalues lam: [Double]) -> [Double] {
        let n = lam.count
        var q = [[Double]]()
        while q.count < n {
            var v = (0..<n).map { _ in uniform() }
            for u in q {
                let d = zip(v, u).reduce(0) { $0 + $1.0 * $1.1 }
                for i in 0..<n { v[i] -= d * u[i] }
            }
            let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            if norm < 1e-6 { continue }
            q.append(v.map { $0 / norm })
        }
        var a = [Double](repeating: 0, count: n * n)
        for k in 0..<n { for i in 0..<n { for j in 0..<n { a[i * n + j] += lam[k] * q[k][i] * q[k][j] } } }
        return a
    }

    private func check(_ a: [Double], _ n: Int, expect: Double?, _ label: String) {
        let (v, lambda) = SymmetricEigen.topEigenpair(a, size: n)
        XCTAssertEqual(v.count, n, label)
        let scale = max(a.map(abs).max() ?? 0, 1e-300)
        let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
        XCTAssertEqual(norm, 1, accuracy: 1e-12, label)
        var res = 0.0
        for i in 0..<n {
            var s = 0.0
            for j in 0..<n { s += a[i * n + j] * v[j] }
            res = max(res, abs(s - lambda * v[i]))
        }
        XCTAssertLessThan(res, 1e-10 * scale * Double(n), label)
        if let expect { XCTAssertEqual(lambda, expect, accuracy: 1e-11 * scale * Double(n), label) }
    }

    func testKnownSpectra() {
        for n in [1, 2, 3, 7, 16, 49] {
            let lam = (0..<n).map { _ in uniform() * 10 }
            check(matrix(eigenvalues: lam), n, expect: lam.max(), "n \(n)")
            // Gram-like (positive semi-definite, rank-deficient), as Eigen-CAM builds.
            let psd = (0..<n).map { $0 < n / 2 ? abs(uniform()) * 5 : 0 }
            check(matrix(eigenvalues: psd), n, expect: psd.max(), "psd n \(n)")
        }
    }

    func testRepeatedTopEigenvalueAndDiagonalAndZeroColumns() {
        check(matrix(eigenvalues: [3, 3, 1, -2, 0.5]), 5, expect: 3, "repeated top")
        check([2, 0, 0, 0, 5, 0, 0, 0, -1], 3, expect: 5, "diagonal")
        var a = matrix(eigenvalues: [4, 1, 2, 0])
        for i in 0..<4 { a[i * 4 + 0] = 0; a[0 * 4 + i] = 0 } // first row/column zeroed
        check(a, 4, expect: nil, "zero column")
        let (v, l) = SymmetricEigen.topEigenpair([Double](repeating: 0, count: 9), size: 3)
        XCTAssertEqual(l, 0)
        XCTAssertEqual(v, [1, 0, 0])
    }
}
