import XCTest
@testable import LoupeTensor

/// Eigen-CAM's C kernels on every vector-math path: the row centring against Double loops
/// (NaN counted as 0), and the Householder tridiagonalisation against its defining identity
/// A = Q T Qᵀ with Q orthogonal, rebuilt from the stored reflectors.
final class PrincipalAxisKernelTests: XCTestCase {
    override func tearDown() { Kernels.forceVectorMathLevel(nil) }

    private var levels: [Int] { Array(0...Kernels.vectorMathLevel) }

    func testCenterRowsSubtractsEachRowsMeanWithNaNAsZero() {
        var rng = KernelRNG(seed: 5)
        for level in levels {
            Kernels.forceVectorMathLevel(level)
            for (rows, n) in [(1, 1), (3, 7), (5, 16), (4, 49), (2, 196)] {
                var x = rng.floats(rows * n).map { 10 + 3 * $0 }   // an offset the centring must remove
                if n > 3 { x[2] = .nan; x[n + 1] = .nan }
                var y = [Float](repeating: .infinity, count: rows * n)
                x.withUnsafeBufferPointer { xb in y.withUnsafeMutableBufferPointer { yb in
                    Kernels.centerRows(xb.baseAddress!, rows: rows, n: n, yb.baseAddress!)
                } }
                for r in 0..<rows {
                    let row = x[(r * n)..<(r * n + n)].map { $0.isNaN ? 0 : Double($0) }
                    let mean = Float(row.reduce(0, +) / Double(n))
                    for i in 0..<n {
                        let want = Float(row[i]) - mean
                        XCTAssertEqual(y[r * n + i], want, accuracy: 1e-6 * max(1, abs(want)), "level \(level) \(rows)x\(n) [\(r),\(i)]")
                    }
                }
                // In place gives the same.
                var inPlace = x
                inPlace.withUnsafeMutableBufferPointer { b in Kernels.centerRows(b.baseAddress!, rows: rows, n: n, b.baseAddress!) }
                XCTAssertEqual(inPlace.map(\.bitPattern), y.map(\.bitPattern), "level \(level) in place")
            }
        }
    }

    func testTridiagonalizationReconstructsTheMatrix() {
        var rng = KernelRNG(seed: 9)
        for level in levels {
            Kernels.forceVectorMathLevel(level)
            for n in [1, 2, 3, 4, 9, 17, 49, 64] {
                var a = [Double](repeating: 0, count: n * n)
                for i in 0..<n { for j in 0...i { let v = Double(rng.uniform()); a[i * n + j] = v; a[j * n + i] = v } }
                if n > 4 { for i in 1..<n { a[i * n] = 0; a[i] = 0 } } // column 0 needs no reflector
                var work = a, d = [Double](repeating: 0, count: n), e = [Double](repeating: 0, count: max(n - 1, 1))
                var beta = [Double](repeating: 0, count: n), scratch = [Double](repeating: 0, count: 3 * n + 8)
                Kernels.tridiagonalizeSymmetric(&work, n: n, diagonal: &d, subdiagonal: &e, beta: &beta, work: &scratch)
                // Q = H_0 ⋯ H_{n-3}, built column by column by applying it to the identity.
                var q = [Double](repeating: 0, count: n * n)
                for c in 0..<n {
                    var y = [Double](repeating: 0, count: n); y[c] = 1
                    for k in stride(from: n - 3, through: 0, by: -1) where beta[k] != 0 {
                        var dot = 0.0
                        for i in (k + 1)..<n { dot += work[i * n + k] * y[i] }
                        for i in (k + 1)..<n { y[i] -= beta[k] * dot * work[i * n + k] }
                    }
                    for i in 0..<n { q[i * n + c] = y[i] }
                }
                var maxErr = 0.0, maxOrth = 0.0
                for i in 0..<n {
                    for j in 0..<n {
                        // (Q T Qᵀ)_ij with T tridiagonal.
                        var s = 0.0
                        for k in 0..<n {
                            var tq = d[k] * q[j * n + k]
                            if k > 0 { tq += e[k - 1] * q[j * n + k - 1] }
                            if k < n - 1 { tq += e[k] * q[j * n + k + 1] }
                            s += q[i * n + k] * tq
                        }
                        maxErr = max(maxErr, abs(s - a[i * n + j]))
                        var o = 0.0
                        for k in 0..<n { o += q[k * n + i] * q[k * n + j] }
                        maxOrth = max(maxOrth, abs(o - (i == j ? 1 : 0)))
                    }
                }
                XCTAssertLessThan(maxErr, 1e-13 * Double(n), "level \(level) n \(n): A ≠ Q T Qᵀ")
                XCTAssertLessThan(maxOrth, 1e-13 * Double(n), "level \(level) n \(n): Q not orthogonal")
            }
        }
    }

    /// The centred Gram matrix against a Double evaluation of its definition, on every vector
    /// path: shapes with one and several 64-column blocks, short row blocks, one row, rows split
    /// over the pool (512 × 49, resnet18's layer4), NaNs counted as 0, and an offset the centring
    /// must remove. Both triangles must be equal exactly.
    func testCenteredGramMatchesItsDefinition() {
        var rng = KernelRNG(seed: 11)
        for level in levels {
            Kernels.forceVectorMathLevel(level)
            for (rows, n) in [(1, 1), (3, 7), (64, 17), (9, 70), (512, 49), (200, 130)] {
                var x = rng.floats(rows * n).map { 5 + 2 * $0 }
                if n > 3 { x[1] = .nan; x[(rows - 1) * n + 2] = .nan }
                let g = x.withUnsafeBufferPointer { Kernels.centeredGram($0.baseAddress!, rows: rows, n: n) }
                XCTAssertEqual(g.count, n * n)
                var xc = [Double](repeating: 0, count: rows * n)
                for r in 0..<rows {
                    let row = x[(r * n)..<(r * n + n)].map { $0.isNaN ? 0 : Double($0) }
                    let mean = row.reduce(0, +) / Double(n)
                    for i in 0..<n { xc[r * n + i] = row[i] - mean }
                }
                var maxErr = 0.0, scale = 0.0
                for p in 0..<n {
                    for q in 0..<n {
                        var s = 0.0
                        for r in 0..<rows { s += xc[r * n + p] * xc[r * n + q] }
                        maxErr = max(maxErr, abs(g[p * n + q] - s))
                        scale = max(scale, abs(s))
                        XCTAssertEqual(g[p * n + q], g[q * n + p], "level \(level) \(rows)x\(n): not symmetric at (\(p), \(q))")
                    }
                }
                XCTAssertLessThanOrEqual(maxErr, 2e-6 * scale, "level \(level) \(rows)x\(n)")
            }
        }
    }
}
