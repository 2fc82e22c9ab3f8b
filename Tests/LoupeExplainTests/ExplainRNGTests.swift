import XCTest
import LoupeTensor
@testable import LoupeExplain

/// The noise of SmoothGrad / GradientShap: Gaussian with the asked deviation, the same draws from
/// the same seed on one thread or two, different draws from another seed.
final class ExplainRNGTests: XCTestCase {
    func draws(_ n: Int, stdev: Float, seed: UInt64) -> [Float] {
        var a = [Float](repeating: .nan, count: n)
        a.withUnsafeMutableBufferPointer { ExplainRNG.fillNormal($0, stdev: stdev, seed: seed) }
        return a
    }

    func testMomentsAndTails() {
        let n = 200_001 // odd: the last pair is cut
        let a = draws(n, stdev: 0.5, seed: 11)
        XCTAssertFalse(a.contains { !$0.isFinite })
        let mean = a.reduce(0.0) { $0 + Double($1) } / Double(n)
        let variance = a.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(n - 1)
        // 5-sigma bands for the sample mean and variance of n normals with sd 0.5.
        XCTAssertEqual(mean, 0, accuracy: 5 * 0.5 / Double(n).squareRoot())
        XCTAssertEqual(variance, 0.25, accuracy: 5 * 0.25 * (2 / Double(n)).squareRoot())
        // P(|z| > 2) = 4.55 %; even and odd positions (cosine and sine branches) each match it.
        for parity in 0..<2 {
            let part = stride(from: parity, to: n, by: 2).map { abs(a[$0]) > 1 }
            let frac = Double(part.filter { $0 }.count) / Double(part.count)
            XCTAssertEqual(frac, 0.0455, accuracy: 0.003, "parity \(parity)")
        }
    }

    func testReproducibleAcrossThreadCountsAndSeedSensitive() {
        let saved = Kernels.threads
        defer { Kernels.threads = saved }
        Kernels.threads = 1
        let one = draws(70_000, stdev: 1, seed: 5)
        Kernels.threads = 2
        XCTAssertEqual(draws(70_000, stdev: 1, seed: 5), one)
        XCTAssertNotEqual(draws(70_000, stdev: 1, seed: 6), one)
    }
}
