import XCTest
import LoupeTensor
@testable import LoupeGraph

/// Random floats in [lo, hi) kept at least `margin` away from every point in `kinks`, so
/// central differences with eps = 1e-2 never straddle a kink.
func smoothPoints(_ shape: [Int], _ lo: Float = -1, _ hi: Float = 1, avoiding kinks: [Float] = [0], margin: Float = 0.05,
                  seed: UInt64 = 11) -> Tensor {
    var rng = TestRNG(seed: seed)
    let n = shape.reduce(1, *)
    var v: [Float] = []
    while v.count < n {
        let x = rng.uniform(lo, hi)
        if kinks.allSatisfy({ abs(x - $0) > margin }) { v.append(x) }
    }
    return try! Tensor(shape: shape, floats: v)
}

final class ElementwiseOperatorTests: XCTestCase {
    let shapePairs: [([Int], [Int])] = [([2, 1, 3], [4, 1]), ([], [2, 3]), ([2, 3], []), ([], []), ([3], [2, 3])]

    func testBinaryVJPsWithBroadcasting() throws {
        for (sa, sb) in shapePairs {
            for name in ["Add", "Sub", "Mul", "Div"] {
                let op = try makeOperator(name, inputs: 2)
                let a = smoothPoints(sa, -2, 2, seed: 1)
                let b = smoothPoints(sb, 0.5, 2, seed: 2)
                try checkVJP(op, [a, b], wrt: [0, 1])
            }
            // Positive base so log(a) is defined; any exponent.
            try checkVJP(try makeOperator("Pow", inputs: 2), [smoothPoints(sa, 0.5, 2, seed: 3), smoothPoints(sb, -2, 2, seed: 4)], wrt: [0, 1])
        }
    }

    func testPowZeroBaseAndIntegerExponent() throws {
        let op = try makeOperator("Pow", inputs: 2)
        let a = try Tensor(shape: [3], floats: [0, 1.5, -2])
        // Integer exponent: only the base is differentiable.
        try checkVJP(op, [a, Tensor(ints: [2, 3, 2])], wrt: [0])
        let y = try op.forward([a, Tensor(shape: [3], floats: [2, 2, 2])])[0]
        let g = try op.vjp(VJPContext(inputs: [a, Tensor(shape: [3], floats: [2, 2, 2])], inputShapes: [[3], [3]], outputs: [y],
                                      gradOutputs: [Tensor(shape: [3], floats: [1, 1, 1])], wantInput: [true, true]))
        // d/db aᵇ at a = 0 is defined as 0 (PyTorch); at a < 0 it is NaN (log of a negative).
        let gb = try XCTUnwrap(g[1]).floats()
        XCTAssertEqual(gb[0], 0)
        XCTAssertEqual(gb[1], 2.25 * log(1.5), accuracy: 1e-5)
        XCTAssertTrue(gb[2].isNaN)
        // d/da a⁰ at a = 0 is 0, not 0·0⁻¹ = NaN.
        let zero = try Tensor(shape: [2], floats: [0, 0]), exps = try Tensor(shape: [2], floats: [0, 2])
        let y0 = try op.forward([zero, exps])[0]
        let g0 = try op.vjp(VJPContext(inputs: [zero, exps], inputShapes: [[2], [2]], outputs: [y0],
                                       gradOutputs: [Tensor(shape: [2], floats: [1, 1])], wantInput: [true, false]))
        XCTAssertEqual(try XCTUnwrap(g0[0]).floats(), [0, 0])
    }

    func testModForwardAndVJP() throws {
        let a = try Tensor(shape: [2, 2], floats: [5.3, -5.3, 2.9, -0.7])
        let b = try Tensor(shape: [2], floats: [2.1, 1.7])
        let fmod = try makeOperator("Mod", inputs: 2, attributes: ["fmod": .int(1)])
        let mod = try makeOperator("Mod", inputs: 2)
        // numpy: np.fmod(a, b) and np.mod(a, b).
        let f = try fmod.forward([a, b])[0].floats(), m = try mod.forward([a, b])[0].floats()
        for (x, e) in zip(f, [1.1, -0.2, 0.8, -0.7] as [Float]) { XCTAssertEqual(x, e, accuracy: 1e-5) }
        for (x, e) in zip(m, [1.1, 1.5, 0.8, 1.0] as [Float]) { XCTAssertEqual(x, e, accuracy: 1e-5) }
        try checkVJP(fmod, [a, b], wrt: [0, 1])
        try checkVJP(mod, [a, b], wrt: [0, 1])
        let ints = try makeOperator("Mod", inputs: 2).forward([Tensor(ints: [7, -7]), Tensor(ints: [-2, 2])])[0]
        XCTAssertEqual(try ints.ints(), [-1, 1])
        XCTAssertThrowsError(try makeOperator("Mod", inputs: 2, attributes: ["fmod": .int(2)]))
    }

    func testIntegerArithmeticThroughOperators() throws {
        let div = try makeOperator("Div", inputs: 2)
        let y = try div.forward([Tensor(ints: [7, -7, 9]), Tensor(shape: [], ints: [2])])[0]
        XCTAssertEqual(try y.ints(), [3, -3, 4])
        // No gradient through integer results.
        let g = try div.vjp(VJPContext(inputs: [Tensor(ints: [1]), Tensor(ints: [1])], inputShapes: [[1], [1]], outputs: [nil],
                                       gradOutputs: [nil], wantInput: [true, true]))
        XCTAssertTrue(g.allSatisfy { $0 == nil })
        let mul = try makeOperator("Mul", inputs: 2)
        XCTAssertEqual(try mul.forward([Tensor(ints: [2, 3]), Tensor(ints: [4, 5])])[0].ints(), [8, 15])
    }

    func testVariadicOperators() throws {
        // Values at least 0.1 apart, so Max/Min never switch operand within the difference step.
        let xs = [try Tensor(shape: [2, 3], floats: [0.1, 0.5, 0.9, -0.3, -0.7, 0.3]),
                  try Tensor(shape: [3], floats: [0.2, -0.5, 0.7]), try Tensor(shape: [2, 1], floats: [0, 0.4])]
        for name in ["Sum", "Mean", "Max", "Min"] {
            try checkVJP(try makeOperator(name, inputs: 3), xs, wrt: [0, 1, 2])
        }
        let mean = try makeOperator("Mean", inputs: 2).forward([Tensor(shape: [2], floats: [1, 2]), Tensor(scalar: 4)])[0]
        XCTAssertEqual(try mean.floats(), [2.5, 3])
        // Ties split evenly: max(a, a) passes half to each.
        let mx = try makeOperator("Max", inputs: 2)
        let a = try Tensor(shape: [2], floats: [1, 2])
        let y = try mx.forward([a, a])[0]
        let g = try mx.vjp(VJPContext(inputs: [a, a], inputShapes: [[2], [2]], outputs: [y],
                                      gradOutputs: [Tensor(shape: [2], floats: [1, 1])], wantInput: [true, true]))
        XCTAssertEqual(try XCTUnwrap(g[0]).floats(), [0.5, 0.5])
        XCTAssertEqual(try makeOperator("Max", inputs: 2).forward([Tensor(ints: [1, 9]), Tensor(ints: [5, 2])])[0].ints(), [5, 9])
        XCTAssertEqual(try makeOperator("Sum", inputs: 1).forward([a])[0], a)
    }

    func testPRelu() throws {
        let op = try makeOperator("PRelu", inputs: 2)
        let x = smoothPoints([1, 3, 2, 2], seed: 8)
        let slope = try Tensor(shape: [3, 1, 1], floats: [0.1, 0.25, -0.5])
        try checkVJP(op, [x, slope], wrt: [0, 1])
        let y = try op.forward([try Tensor(shape: [2], floats: [-2, 3]), Tensor(shape: [1], floats: [0.25])])[0]
        XCTAssertEqual(try y.floats(), [-0.5, 3])
        // Slope must broadcast to X, not the other way round.
        XCTAssertThrowsError(try op.forward([Tensor(zeros: [3]), Tensor(zeros: [2, 3])]))
        // Opset 6: a 1-D slope of length C is per channel.
        let legacy = try makeOperator("PRelu", inputs: 2, opset: 6)
        let c3 = try Tensor(shape: [3], floats: [0.1, 0.25, -0.5])
        try checkVJP(legacy, [x, c3], wrt: [0, 1])
        let yl = try legacy.forward([try Tensor(shape: [1, 3, 1, 1], floats: [-2, -2, -2]), c3])[0]
        XCTAssertEqual(try yl.floats(), [-0.2, -0.5, 1])
    }

    func testWhere() throws {
        let op = try makeOperator("Where", inputs: 3)
        let c = try Tensor(shape: [2, 1], bools: [true, false])
        try checkVJP(op, [c, smoothPoints([1, 3], seed: 9), smoothPoints([], seed: 10)], wrt: [1, 2])
        try checkVJP(op, [c, smoothPoints([2, 3], seed: 9), smoothPoints([3], seed: 10)], wrt: [1, 2])
        let y = try op.forward([c, Tensor(shape: [3], ints: [1, 2, 3]), Tensor(shape: [], ints: [0])])[0]
        XCTAssertEqual(try y.ints(), [1, 2, 3, 0, 0, 0])
    }

    func testComparisonAndLogicOperators() throws {
        let a = try Tensor(shape: [3], floats: [1, 2, 3]), b = Tensor(scalar: 2)
        let expect: [String: [Bool]] = ["Equal": [false, true, false], "Less": [true, false, false], "LessOrEqual": [true, true, false],
                                        "Greater": [false, false, true], "GreaterOrEqual": [false, true, true]]
        for (name, e) in expect {
            let op = try makeOperator(name, inputs: 2)
            XCTAssertEqual(try op.forward([a, b])[0].bools(), e, name)
            XCTAssertTrue(op is any NonDifferentiableOperator)
        }
        let p = try Tensor(shape: [2], bools: [true, false])
        XCTAssertEqual(try makeOperator("Xor", inputs: 2).forward([p, Tensor(shape: [], bools: [true])])[0].bools(), [false, true])
        XCTAssertEqual(try makeOperator("Not", inputs: 1).forward([p])[0].bools(), [false, true])
        let inf = try Tensor(shape: [3], floats: [.infinity, -.infinity, .nan])
        XCTAssertEqual(try makeOperator("IsInf", inputs: 1, attributes: ["detect_negative": .int(0)]).forward([inf])[0].bools(),
                       [true, false, false])
        XCTAssertEqual(try makeOperator("IsNaN", inputs: 1).forward([inf])[0].bools(), [false, false, true])
        XCTAssertThrowsError(try makeOperator("And", inputs: 2).forward([a, a]))
    }

    /// Every differentiable unary operator, built from the table with its attributes.
    func testUnaryOperatorVJPs() throws {
        let cases: [(String, [String: Attribute], Float, Float, [Float])] = [
            ("Neg", [:], -2, 2, []), ("Abs", [:], -2, 2, [0]), ("Exp", [:], -2, 2, []), ("Log", [:], 0.2, 3, []),
            ("Sqrt", [:], 0.2, 3, []), ("Reciprocal", [:], 0.3, 3, []), ("Sin", [:], -3, 3, []), ("Cos", [:], -3, 3, []),
            ("Tan", [:], -1.2, 1.2, []), ("Asin", [:], -0.9, 0.9, []), ("Acos", [:], -0.9, 0.9, []), ("Atan", [:], -3, 3, []),
            ("Sinh", [:], -2, 2, []), ("Cosh", [:], -2, 2, []), ("Asinh", [:], -3, 3, []), ("Acosh", [:], 1.2, 4, []),
            ("Atanh", [:], -0.8, 0.8, []), ("Shrink", ["lambd": .float(0.7), "bias": .float(0.2)], -2, 2, [-0.7, 0.7]), ("Erf", [:], -2, 2, []), ("Relu", [:], -2, 2, [0]),
            ("LeakyRelu", ["alpha": .float(0.2)], -2, 2, [0]), ("Elu", ["alpha": .float(0.7)], -2, 2, [0]),
            ("Selu", [:], -2, 2, [0]), ("Celu", ["alpha": .float(1.5)], -2, 2, [0]), ("Sigmoid", [:], -4, 4, []),
            ("HardSigmoid", ["alpha": .float(0.3), "beta": .float(0.4)], -3, 3, [-4.0 / 3, 2]), ("HardSwish", [:], -4, 4, [-3, 3]),
            ("Tanh", [:], -3, 3, []), ("Softplus", [:], -4, 4, []), ("Softsign", [:], -3, 3, [0]), ("Mish", [:], -3, 3, []),
            ("ThresholdedRelu", ["alpha": .float(0.5)], -2, 2, [0.5]), ("Gelu", [:], -3, 3, []),
            ("Gelu", ["approximate": .string("tanh")], -3, 3, []), ("Floor", [:], -2, 2, [-1, 0, 1]),
            ("Ceil", [:], -2, 2, [-1, 0, 1]), ("Round", [:], -2, 2, [-1.5, -0.5, 0.5, 1.5]), ("Sign", [:], -2, 2, [0]),
            ("Identity", [:], -2, 2, []), ("Dropout", [:], -2, 2, []), ("Cast", ["to": .int(1)], -2, 2, []),
        ]
        for (name, attrs, lo, hi, kinks) in cases {
            let op = try makeOperator(name, inputs: 1, attributes: attrs, opset: 20)
            try checkVJP(op, [smoothPoints([2, 3], lo, hi, avoiding: kinks, seed: 12)], wrt: [0])
            try checkVJP(op, [smoothPoints([], lo, hi, avoiding: kinks, seed: 13)], wrt: [0])
        }
    }

    func testUnaryAttributeDefaults() throws {
        let x = try Tensor(shape: [2], floats: [-1, 2])
        XCTAssertEqual(try makeOperator("LeakyRelu", inputs: 1).forward([x])[0].floats(), [-0.01, 2])
        XCTAssertEqual(try makeOperator("HardSigmoid", inputs: 1).forward([x])[0].floats(), [0.3, 0.9])
        XCTAssertEqual(try makeOperator("ThresholdedRelu", inputs: 1).forward([x])[0].floats(), [0, 2])
        // Shrink defaults: lambd 0.5, bias 0.
        XCTAssertEqual(try makeOperator("Shrink", inputs: 1).forward([try Tensor(shape: [3], floats: [-1, 0.3, 2])])[0].floats(), [-1, 0, 2])
        XCTAssertEqual(try makeOperator("Shrink", inputs: 1, attributes: ["bias": .float(0.5)]).forward([x])[0].floats(), [-0.5, 1.5])
        let selu = try makeOperator("Selu", inputs: 1).forward([x])[0].floats()
        XCTAssertEqual(selu[0], -1.1113307, accuracy: 1e-6)   // torch.selu(-1)
        XCTAssertThrowsError(try makeOperator("Gelu", inputs: 1, attributes: ["approximate": .string("fast")], opset: 20)) { e in
            XCTAssertTrue("\(e)".contains("test_Gelu"), "\(e)")
        }
        XCTAssertThrowsError(try makeOperator("Celu", inputs: 1, attributes: ["alpha": .float(0)]))
        XCTAssertThrowsError(try makeOperator("Relu", inputs: 2))
    }

    /// Gradients exactly at the kinks, against PyTorch autograd on x = [-3, -1, 0, 1, 3].
    func testKinksMatchPyTorch() throws {
        let x = try Tensor(shape: [5], floats: [-3, -1, 0, 1, 3])
        let ones = try Tensor(shape: [5], floats: [1, 1, 1, 1, 1])
        let expected: [(String, [String: Attribute], [Float])] = [
            ("Relu", [:], [0, 0, 0, 1, 1]), ("Abs", [:], [-1, -1, 0, 1, 1]), ("LeakyRelu", ["alpha": .float(0.1)], [0.1, 0.1, 0.1, 1, 1]),
            ("Selu", [:], [0.08753061, 0.6467686, 1.7580993, 1.050701, 1.050701]), ("HardSwish", [:], [0, 1.0 / 6, 0.5, 5.0 / 6, 1]),
            ("HardSigmoid", ["alpha": .float(1.0 / 6)], [0, 1.0 / 6, 1.0 / 6, 1.0 / 6, 0]),
            ("ThresholdedRelu", ["alpha": .float(1)], [0, 0, 0, 0, 1]),
        ]
        for (name, attrs, e) in expected {
            let op = try makeOperator(name, inputs: 1, attributes: attrs)
            let y = try op.forward([x])[0]
            let g = try op.vjp(VJPContext(inputs: [x], inputShapes: [[5]], outputs: [y], gradOutputs: [ones], wantInput: [true]))
            let got = try XCTUnwrap(g[0]).floats()
            for (a, b) in zip(got, e) { XCTAssertEqual(a, b, accuracy: 1e-6, name) }
        }
        // torch.clamp(x, -1, 1): strict interior.
        let clip = try makeOperator("Clip", inputs: 3, opset: 13)
        let lo = Tensor(scalar: -1), hi = Tensor(scalar: 1)
        let y = try clip.forward([x, lo, hi])[0]
        let g = try clip.vjp(VJPContext(inputs: [x, lo, hi], inputShapes: [[5], [], []], outputs: [y], gradOutputs: [ones],
                                        wantInput: [true, true, true]))
        XCTAssertEqual(try XCTUnwrap(g[0]).floats(), [0, 0, 1, 0, 0])
        XCTAssertEqual(try XCTUnwrap(g[1]).floats(), [2])
        XCTAssertEqual(try XCTUnwrap(g[2]).floats(), [2])
    }

    func testClipAcrossOpsets() throws {
        let x = try Tensor(shape: [5], floats: [-3, -0.5, 0.2, 0.8, 4])
        let old = try makeOperator("Clip", inputs: 1, attributes: ["min": .float(-1), "max": .float(0.5)], opset: 6)
        XCTAssertEqual(try old.forward([x])[0].floats(), [-1, -0.5, 0.2, 0.5, 0.5])
        let new = try makeOperator("Clip", inputs: 3, opset: 13)
        XCTAssertEqual(try new.forward([x, Tensor(scalar: -1), Tensor(scalar: 0.5)])[0].floats(), [-1, -0.5, 0.2, 0.5, 0.5])
        XCTAssertEqual(try new.forward([x, nil, Tensor(scalar: 0.5)])[0].floats(), [-3, -0.5, 0.2, 0.5, 0.5])
        XCTAssertEqual(try new.forward([x, Tensor(scalar: 0), nil])[0].floats(), [0, 0, 0.2, 0.8, 4])
        XCTAssertEqual(try new.forward([Tensor(ints: [-5, 3, 9]), Tensor(shape: [], ints: [0]), Tensor(shape: [], ints: [4])])[0].ints(),
                       [0, 3, 4])
        // Gradients for x and for both bounds (the clamped elements' cotangent sums).
        try checkVJP(new, [x, Tensor(scalar: -1), Tensor(scalar: 0.5)], wrt: [0, 1, 2])
        try checkVJP(old, [x], wrt: [0])
        XCTAssertThrowsError(try new.forward([x, Tensor(zeros: [2]), nil]))
    }

    func testCastOperators() throws {
        let x = try Tensor(shape: [4], floats: [-1.7, 0, 2.9, 1])
        XCTAssertEqual(try makeOperator("Cast", inputs: 1, attributes: ["to": .int(6)]).forward([x])[0].ints(), [-1, 0, 2, 1])
        XCTAssertEqual(try makeOperator("Cast", inputs: 1, attributes: ["to": .int(9)]).forward([x])[0].bools(), [true, false, true, true])
        // FLOAT16 and BFLOAT16 targets hold the nearest value of the narrow type (round to even).
        XCTAssertEqual(try makeOperator("Cast", inputs: 1, attributes: ["to": .int(10)]).forward([x])[0].floats(),
                       [-1.7001953125, 0, 2.900390625, 1])
        XCTAssertEqual(try makeOperator("Cast", inputs: 1, attributes: ["to": .int(16)]).forward([x])[0].floats(),
                       [-1.703125, 0, 2.90625, 1])
        XCTAssertEqual(try makeOperator("Cast", inputs: 1, attributes: ["to": .int(1)]).forward([Tensor(ints: [3])])[0].floats(), [3])
        XCTAssertEqual(try makeOperator("CastLike", inputs: 2).forward([x, Tensor(ints: [0])])[0].ints(), [-1, 0, 2, 1])
        XCTAssertThrowsError(try makeOperator("Cast", inputs: 1, attributes: ["to": .int(8)])) { e in
            guard case GraphError.unsupportedOperators = e else { return XCTFail("\(e)") }
        }
        XCTAssertThrowsError(try makeOperator("Cast", inputs: 1))
        // int → float: the float cotangent of the output does not flow into the integer input.
        let toFloat = try makeOperator("Cast", inputs: 1, attributes: ["to": .int(1)])
        let g = try toFloat.vjp(VJPContext(inputs: [Tensor(ints: [3])], inputShapes: [[1]], outputs: [nil],
                                           gradOutputs: [Tensor(shape: [1], floats: [1])], wantInput: [true]))
        XCTAssertNil(g[0])
    }

    func testDropoutInference() throws {
        let x = try Tensor(shape: [2], floats: [1, 2])
        let op = try makeOperator("Dropout", inputs: 3, outputs: 2, opset: 13)
        let out = try op.forward([x, Tensor(scalar: 0.5), nil])
        XCTAssertEqual(out[0], x)
        XCTAssertEqual(try out[1].bools(), [true, true])
        XCTAssertThrowsError(try op.forward([x, Tensor(scalar: 0.5), Tensor(shape: [], bools: [true])]))
        XCTAssertThrowsError(try makeOperator("Dropout", inputs: 3, opset: 13,
                                              constants: [nil, nil, Tensor(shape: [], bools: [true])]))
    }

    func testExpand() throws {
        let op = try makeOperator("Expand", inputs: 2)
        let x = smoothPoints([3, 1], seed: 14)
        let y = try op.forward([x, Tensor(ints: [2, 1, 4])])[0]
        XCTAssertEqual(y.shape, [2, 3, 4])
        try checkVJP(op, [x, Tensor(ints: [2, 1, 4])], wrt: [0])
        try checkVJP(op, [smoothPoints([], seed: 15), Tensor(ints: [2, 2])], wrt: [0])
        XCTAssertThrowsError(try op.forward([x, Tensor(ints: [2, 4])])) { e in
            guard case let TensorError.shapeMismatch(name, _, _) = e else { return XCTFail("\(e)") }
            XCTAssertEqual(name, "test_Expand (Expand)")
        }
    }

    func testErrorsNameTheNode() throws {
        let add = try makeOperator("Add", inputs: 2)
        XCTAssertThrowsError(try add.forward([Tensor(zeros: [2, 3]), Tensor(zeros: [2])])) { e in
            guard case let TensorError.shapeMismatch(name, _, got) = e else { return XCTFail("\(e)") }
            XCTAssertEqual(name, "test_Add (Add)")
            XCTAssertEqual(got, [[2, 3], [2]])
        }
        XCTAssertThrowsError(try add.forward([Tensor(zeros: [2]), Tensor(ints: [1, 2])])) { e in
            guard case let TensorError.dtypeMismatch(name, _, _) = e else { return XCTFail("\(e)") }
            XCTAssertEqual(name, "test_Add (Add)")
        }
        XCTAssertThrowsError(try makeOperator("Sub", inputs: 3)) { e in
            guard case GraphError.arity = e else { return XCTFail("\(e)") }
        }
        XCTAssertThrowsError(try add.forward([Tensor(zeros: [2]), nil]))
    }
}
