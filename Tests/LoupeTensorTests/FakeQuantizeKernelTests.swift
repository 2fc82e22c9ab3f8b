import XCTest
@testable import LoupeTensor

/// The vectorised fake-quantize pass and its straight-through gradient give the scalar
/// definition's bits on every vector-math level: ties rounded to even, saturation at both ends,
/// NaN to zero, tails shorter than a vector, lengths that split over the pool.
final class FakeQuantizeKernelTests: XCTestCase {
    override func tearDown() { Kernels.forceVectorMathLevel(nil) }

    func testEveryLevelMatchesTheScalarDefinition() {
        var rng = KernelRNG(seed: 31)
        for count in [1, 15, 17, 100, 40_000] {
            let (scale, zp, lo, hi): (Float, Float, Float, Float) = (0.05, 7, -128, 127)
            var x = rng.floats(count).map { 8 * $0 }
            // Exact ties (k + 0.5)·scale, both saturations, NaN.
            for i in stride(from: 0, to: count, by: 7) { x[i] = (Float(i % 40 - 20) + 0.5) * scale }
            if count > 3 { x[1] = 1e6; x[2] = -1e6; x[3] = .nan }
            let g = (0..<count).map { Float($0 % 13) - 6 }
            var wantY = [Float](), wantG = [Float](), wantShifted = [Float]()
            for (v, gv) in zip(x, g) {
                let t = (v / scale).rounded(.toNearestOrEven) + zp
                wantY.append(t.isNaN ? 0 : (min(max(t, lo), hi) - zp) * scale)
                wantShifted.append(t.isNaN ? 0 : min(max(t, lo), hi) - zp)
                wantG.append(t >= lo && t <= hi ? gv : 0)
            }
            for level in 0...Kernels.vectorMathLevel {
                Kernels.forceVectorMathLevel(level)
                var y = [Float](repeating: -1, count: count), gx = [Float](repeating: -1, count: count)
                var shifted = [Float](repeating: -1, count: count)
                x.withUnsafeBufferPointer { xb in g.withUnsafeBufferPointer { gb in
                    y.withUnsafeMutableBufferPointer { yb in
                        Kernels.fakeQuantize(xb.baseAddress!, yb.baseAddress!, count: count, scale: scale, zeroPoint: zp, lo: lo, hi: hi)
                    }
                    shifted.withUnsafeMutableBufferPointer { sb in
                        Kernels.quantizeShifted(xb.baseAddress!, sb.baseAddress!, count: count, scale: scale, zeroPoint: zp, lo: lo, hi: hi)
                    }
                    gx.withUnsafeMutableBufferPointer { ob in
                        Kernels.fakeQuantizeGradient(xb.baseAddress!, gb.baseAddress!, ob.baseAddress!, count: count,
                                                     scale: scale, zeroPoint: zp, lo: lo, hi: hi)
                    }
                } }
                XCTAssertEqual(y.map(\.bitPattern), wantY.map(\.bitPattern), "values, count \(count), level \(level)")
                XCTAssertEqual(gx, wantG, "gradient, count \(count), level \(level)")
                XCTAssertEqual(shifted.map(\.bitPattern), wantShifted.map(\.bitPattern), "shifted, count \(count), level \(level)")
            }
        }
    }
}
