import XCTest
import Foundation
@testable import LoupeTensor

final class ElementwiseSIMDMathTests: XCTestCase {
    /// Max relative error of the vector exp against float64 exp over its whole normal range.
    func testExpAccuracy() {
        var worst = 0.0
        var x: Float = -87.3
        while x < 88.7 {
            let v = SIMD8<Float>((0..<8).map { x + Float($0) * 0.0013 })
            let y = simdExp(v)
            for k in 0..<8 {
                let e = Foundation.exp(Double(v[k]))
                worst = max(worst, abs(Double(y[k]) - e) / e)
            }
            x += 0.0917
        }
        // 2 ulp of float32 is 2.4e-7 relative.
        XCTAssertLessThan(worst, 2.4e-7)
    }

    func testExpEdgeCases() {
        let v = SIMD8<Float>(0, 1, -1, 89, -104, .nan, .infinity, -.infinity)
        let y = simdExp(v)
        XCTAssertEqual(y[0], 1)
        XCTAssertEqual(y[1], 2.7182817, accuracy: 3e-7)
        XCTAssertEqual(y[2], 0.36787945, accuracy: 1e-7)
        XCTAssertEqual(y[3], .infinity)
        XCTAssertEqual(y[4], 0)
        XCTAssertTrue(y[5].isNaN)
        XCTAssertEqual(y[6], .infinity)
        XCTAssertEqual(y[7], 0)
    }

    func testSigmoidAndTail() throws {
        // 11 elements: one full vector and a 3-element tail.
        let xs: [Float] = [-100, -20, -3, -0.5, 0, 1e-4, 0.5, 3, 20, 100, .nan]
        let y = try Tensor(shape: [11], floats: xs).unary(.sigmoid).floats()
        for (x, v) in zip(xs.dropLast(), y) {
            let e = 1 / (1 + Foundation.exp(-Double(x)))
            XCTAssertEqual(Double(v), e, accuracy: 3e-7 * e + 1e-38, "scalarSigmoid(\(x))")
        }
        XCTAssertTrue(y[10].isNaN)
        let ex = try Tensor(shape: [11], floats: xs).unary(.exp).floats()
        XCTAssertEqual(Double(ex[7]), Foundation.exp(3.0), accuracy: 3e-7 * Foundation.exp(3.0))
    }
}
