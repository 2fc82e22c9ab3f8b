import CLoupeKernels
import XCTest
@testable import LoupeTensor

final class ElementwiseUnaryTests: XCTestCase {
    /// Expected values computed with PyTorch (float64) on x = [-2.5, -1, -0.3, 0, 0.4, 1.7, 3.2].
    func testUnaryForwardAgainstPyTorch() throws {
        let x = try Tensor(shape: [7], floats: [-2.5, -1.0, -0.3, 0.0, 0.4, 1.7, 3.2])
        let table: [(UnaryOp, [Double])] = [
            (.neg, [2.5, 1, 0.3, -0, -0.4, -1.7, -3.2]),
            (.abs, [2.5, 1, 0.3, 0, 0.4, 1.7, 3.2]),
            (.exp, [0.082085, 0.3678794, 0.7408182, 1, 1.491825, 5.473947, 24.53253]),
            (.sign, [-1, -1, -1, 0, 1, 1, 1]),
            (.sin, [-0.5984721, -0.841471, -0.2955202, 0, 0.3894183, 0.9916648, -0.05837414]),
            (.cos, [-0.8011436, 0.5403023, 0.9553365, 1, 0.921061, -0.1288445, -0.9982948]),
            (.tan, [0.7470223, -1.557408, -0.3093362, 0, 0.4227932, -7.696602, 0.05847385]),
            (.atan, [-1.19029, -0.7853982, -0.2914568, 0, 0.3805064, 1.039072, 1.267911]),
            (.sinh, [-6.050204, -1.175201, -0.3045203, 0, 0.4107523, 2.645632, 12.24588]),
            (.cosh, [6.132289, 1.543081, 1.045339, 1, 1.081072, 2.828315, 12.28665]),
            (.erf, [-0.999593, -0.8427008, -0.3286268, 0, 0.4283924, 0.9837905, 0.999994]),
            (.relu, [0, 0, 0, 0, 0.4, 1.7, 3.2]),
            (.leakyRelu(alpha: 0.1), [-0.25, -0.1, -0.03, 0, 0.4, 1.7, 3.2]),
            (.elu(alpha: 1.5), [-1.376873, -0.9481808, -0.3887727, 0, 0.4, 1.7, 3.2]),
            (.selu(alpha: 1.67326319217681884765625, gamma: 1.05070102214813232421875),
             [-1.613786, -1.111331, -0.4556673, 0, 0.4202804, 1.786192, 3.362243]),
            (.celu(alpha: 2), [-1.42699, -0.7869387, -0.278584, 0, 0.4, 1.7, 3.2]),
            (.sigmoid, [0.07585818, 0.2689414, 0.4255575, 0.5, 0.5986877, 0.8455347, 0.9608343]),
            (.hardSigmoid(alpha: 0.2, beta: 0.5), [0, 0.3, 0.44, 0.5, 0.58, 0.84, 1]),
            (.hardSwish, [-0.2083333, -0.3333333, -0.135, 0, 0.2266667, 1.331667, 3.2]),
            (.tanh, [-0.9866143, -0.7615942, -0.2913126, 0, 0.379949, 0.9354091, 0.9966824]),
            (.softplus, [0.07888973, 0.3132617, 0.5543552, 0.6931472, 0.9130153, 1.867786, 3.239953]),
            (.softsign, [-0.7142857, -0.5, -0.2307692, 0, 0.2857143, 0.6296296, 0.7619048]),
            (.mish, [-0.1968162, -0.3034015, -0.1511332, 0, 0.2890305, 1.620768, 3.190198]),
            (.thresholdedRelu(alpha: 0.5), [0, 0, 0, 0, 0, 1.7, 3.2]),
            (.gelu(tanhApproximation: false), [-0.01552416, -0.1586553, -0.1146266, 0, 0.2621687, 1.624239, 3.197801]),
            (.gelu(tanhApproximation: true), [-0.01508427, -0.158808, -0.1146291, 0, 0.2621612, 1.624106, 3.19813]),
            (.clip(lo: -1, hi: 1.5), [-1, -1, -0.3, 0, 0.4, 1.5, 1.5]),
            (.floor, [-3, -1, -1, 0, 0, 1, 3]),
            (.ceil, [-2, -1, -0, 0, 1, 2, 4]),
            (.trunc, [-2, -1, 0, 0, 0, 1, 3]),
        ]
        for (op, expected) in table {
            assertClose(try x.unary(op), expected, shape: [7], atol: 2e-6, rtol: 2e-6, "\(op)")
        }
        let pos = try Tensor(shape: [4], floats: [0.25, 1, 2, 9])
        assertClose(try pos.unary(.log), [-1.386294, 0, 0.6931472, 2.197225], rtol: 2e-6)
        assertClose(try pos.unary(.sqrt), [0.5, 1, 1.414214, 3], rtol: 2e-6)
        assertClose(try pos.unary(.reciprocal), [4, 1, 0.5, 0.1111111], rtol: 2e-6)
        let u = try Tensor(shape: [5], floats: [-0.9, -0.5, 0, 0.3, 0.8])
        assertClose(try u.unary(.asin), [-1.11977, -0.5235988, 0, 0.3046927, 0.9272952], rtol: 2e-6)
        assertClose(try u.unary(.acos), [2.690566, 2.094395, 1.570796, 1.266104, 0.6435011], rtol: 2e-6)
        // numpy: arcsinh / arctanh of u, arccosh of 1 + |u|.
        assertClose(try u.unary(.asinh), [-0.8088669, -0.4812118, 0, 0.2956730, 0.7326683], rtol: 2e-6)
        assertClose(try u.unary(.atanh), [-1.472219, -0.5493061, 0, 0.3095196, 1.098612], rtol: 2e-6)
        assertClose(try pos.unary(.acosh).unary(.neg), [.nan, 0, -1.316958, -2.887271], rtol: 2e-6)
    }

    func testRoundHalfToEven() throws {
        let r = try Tensor(shape: [8], floats: [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.49, -0.51])
        XCTAssertEqual(try r.unary(.round).floats(), [-2, -2, -0, 0, 2, 2, 0, -1])
    }

    func testStableAtExtremes() throws {
        let x = try Tensor(shape: [2], floats: [-100, 100])
        assertClose(try x.unary(.sigmoid), [0, 1], atol: 1e-30)
        assertClose(try x.unary(.softplus), [0, 100], atol: 1e-30)
        XCTAssertFalse(try x.unary(.mish).hasNonFinite)
    }

    func testInt64UnaryAndErrors() throws {
        let x = Tensor(ints: [-3, 0, 5])
        XCTAssertEqual(try x.unary(.neg).ints(), [3, 0, -5])
        XCTAssertEqual(try x.unary(.abs).ints(), [3, 0, 5])
        XCTAssertEqual(try x.unary(.sign).ints(), [-1, 0, 1])
        XCTAssertEqual(try x.unary(.relu).ints(), [0, 0, 5])
        XCTAssertThrowsError(try x.unary(.exp, name: "n (Exp)")) { e in
            XCTAssertEqual(e as? TensorError, .dtypeMismatch(op: "n (Exp)", expected: "float32", got: .int64))
        }
    }

    /// Every derivative against central differences of the forward kernel (float64 reference
    /// step on float32 values; tolerances cover float32 rounding).
    func testUnaryDerivativesAgainstFiniteDifferences() throws {
        let ops: [UnaryOp] = [.neg, .abs, .exp, .sin, .cos, .tan, .atan, .sinh, .cosh, .erf, .relu, .leakyRelu(alpha: 0.1),
                              .elu(alpha: 1.5), .selu(alpha: 1.6732632, gamma: 1.050701), .celu(alpha: 2), .sigmoid,
                              .hardSigmoid(alpha: 0.2, beta: 0.5), .hardSwish, .tanh, .softplus, .softsign, .mish,
                              .thresholdedRelu(alpha: 0.5), .gelu(tanhApproximation: false), .gelu(tanhApproximation: true),
                              .clip(lo: -1, hi: 1.5), .floor, .round]
        // Points away from kinks so one-sided behaviour does not matter here.
        let pts: [Float] = [-2.3, -0.7, -0.2, 0.35, 0.9, 1.2]
        let x = try Tensor(shape: [pts.count], floats: pts)
        let g = try Tensor(shape: [pts.count], floats: [1, -0.5, 2, 0.7, -1.3, 0.4])
        try checkDerivatives(ops, x, g)
        let pos = try Tensor(shape: [3], floats: [0.3, 1.1, 2.5])
        try checkDerivatives([.log, .sqrt, .reciprocal], pos, try Tensor(shape: [3], floats: [1, -2, 0.5]))
        let unit = try Tensor(shape: [3], floats: [-0.6, 0.1, 0.7])
        try checkDerivatives([.asin, .acos], unit, try Tensor(shape: [3], floats: [1, -2, 0.5]))
    }

    func checkDerivatives(_ ops: [UnaryOp], _ x: Tensor, _ g: Tensor, file: StaticString = #filePath, line: UInt = #line) throws {
        let xv = try x.floats(), gv = try g.floats()
        for op in ops {
            let y = try x.unary(op)
            let d = try Tensor.unaryVJP(op, input: x, output: y, grad: g).floats()
            for i in 0..<xv.count {
                let h: Float = 1e-3
                let p = try Tensor(scalar: xv[i] + h).unary(op).floats()[0]
                let m = try Tensor(scalar: xv[i] - h).unary(op).floats()[0]
                let numeric = Double(gv[i]) * Double(p - m) / Double(2 * h)
                XCTAssertEqual(Double(d[i]), numeric, accuracy: 3e-3 * Swift.max(1, abs(numeric)), "\(op) at \(xv[i])",
                               file: file, line: line)
            }
        }
    }

    /// Relu keeps NaN (torch.relu; the ReLU fused into a Conv's epilogue does too, so fusing
    /// never changes a result), on the vector kernel and the scalar reference alike.
    func testReluKeepsNaNOnEveryPath() throws {
        let x = try Tensor(shape: [20], floats: [.nan, -1, 2, -.infinity, .infinity] + (0..<15).map { Float($0) - 7 })
        defer { loupe_vmath_use_reference(0) }
        for reference in [0, 1] {
            loupe_vmath_use_reference(Int32(reference))
            let y = try x.unary(.relu).floats()
            XCTAssertTrue(y[0].isNaN, "reference \(reference)")
            XCTAssertEqual(Array(y[1...]), [0, 2, 0, .infinity] + (0..<15).map { max(Float($0) - 7, 0) }, "reference \(reference)")
        }
    }

    /// The one-pass SiLU VJP, `g·σ(x)(1 + x·σ(−x))`, on the vector kernel and the scalar
    /// reference, against the derivative of x·σ(x) in Double, tails and signed zeros included.
    func testSiLUVJPAgainstDouble() throws {
        var xs: [Float] = [0, -0.0, 1e-20, -1e-20, 0.5, -0.5, 1.5, -1.5, 3, -3, 8, -8, 17, -17, 30, -30, 88, -88, 103, -103]
        xs += (0..<97).map { Float($0) * 0.23 - 11 }
        let gs = xs.indices.map { Float($0 % 7) - 3 }
        let x = try Tensor(shape: [xs.count], floats: xs), g = try Tensor(shape: [gs.count], floats: gs)
        defer { loupe_vmath_use_reference(0) }
        for reference in [0, 1] {
            loupe_vmath_use_reference(Int32(reference))
            let d = try Tensor.siluVJP(input: x, grad: g).floats()
            for i in xs.indices {
                let v = Double(xs[i]), s = 1 / (1 + exp(-v))
                let want = Double(gs[i]) * s * (1 + v * (1 - s))
                XCTAssertEqual(Double(d[i]), want, accuracy: 2e-6 * max(1, abs(want)) + 1e-37, "reference \(reference) at \(xs[i])")
            }
        }
        XCTAssertThrowsError(try Tensor.siluVJP(input: x, grad: try Tensor(shape: [3], floats: [1, 2, 3])))
    }
}

