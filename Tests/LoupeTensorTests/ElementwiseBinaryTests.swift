import XCTest
@testable import LoupeTensor

final class ElementwiseBinaryTests: XCTestCase {
    func testPlanCoalescesContiguousDimensions() throws {
        let same = try BroadcastPlan(shape: [2, 3, 4], operands: [[2, 3, 4], [2, 3, 4]], op: "t")
        XCTAssertEqual(same.inner, 24)
        XCTAssertEqual(same.innerStrides.0, 1)
        XCTAssertEqual(same.innerStrides.1, 1)
        // Per-channel bias over NCHW: runs of H·W with the bias held constant.
        let bias = try BroadcastPlan(shape: [2, 3, 4, 5], operands: [[2, 3, 4, 5], [3, 1, 1]], op: "t")
        XCTAssertEqual(bias.inner, 20)
        XCTAssertEqual(bias.innerStrides.1, 0)
        var runs: [(Int, Int, Int)] = []
        bias.forEachRun { o, a, b, _ in runs.append((o, a, b)) }
        XCTAssertEqual(runs.map(\.0), [0, 20, 40, 60, 80, 100])
        XCTAssertEqual(runs.map(\.2), [0, 1, 2, 0, 1, 2])
        // Row vector: inner run over the last dim with the other operand's stride 0 outside.
        let row = try BroadcastPlan(shape: [3, 4], operands: [[3, 1], [4]], op: "t")
        XCTAssertEqual(row.inner, 4)
        XCTAssertEqual(row.innerStrides.0, 0)
        XCTAssertEqual(row.innerStrides.1, 1)
    }

    func testEveryFloatOpMatchesNaiveBroadcast() throws {
        let cases: [([Int], [Int])] = [([2, 1, 3], [4, 1]), ([], [2, 3]), ([2, 3], []), ([1], [3, 1, 2]),
                                       ([2, 3, 4], [2, 3, 4]), ([3, 1, 5], [1, 4, 1]), ([2, 1], [2, 1]), ([0, 3], [1, 3])]
        for (sa, sb) in cases {
            let a = try Tensor(shape: sa, floats: sampleFloats(sa.reduce(1, *), seed: 1))
            // Divisors away from zero.
            let b = try Tensor(shape: sb, floats: sampleFloats(sb.reduce(1, *), seed: 5).map { $0 >= 0 ? $0 + 0.5 : $0 - 0.5 })
            let out = try Shape.broadcast(sa, sb)
            for op in BinaryOp.allCases {
                let y = try Tensor.binary(op, a, b)
                XCTAssertEqual(y.shape, out, "\(op) \(sa) \(sb)")
                let av = try a.floats(), bv = try b.floats(), yv = try y.floats()
                for i in 0..<yv.count {
                    let p = av[naiveBroadcastIndex(i, out: out, operand: sa)], q = bv[naiveBroadcastIndex(i, out: out, operand: sb)]
                    let e: Float
                    switch op {
                    case .add: e = p + q
                    case .sub: e = p - q
                    case .mul: e = p * q
                    case .div: e = p / q
                    case .pow: e = Foundation.pow(p, q)
                    case .min: e = Swift.min(p, q)
                    case .max: e = Swift.max(p, q)
                    case .fmod: e = Foundation.fmod(p, q)
                    case .mod: e = p - q * (p / q).rounded(.down)
                    }
                    if e.isNaN { XCTAssertTrue(yv[i].isNaN, "\(op) \(sa) \(sb) [\(i)]"); continue }
                    XCTAssertEqual(yv[i], e, accuracy: 1e-5 * Swift.max(1, abs(e)), "\(op) \(sa) \(sb) [\(i)]")
                }
            }
        }
    }

    func testWhereMatchesNaiveThreeWayBroadcast() throws {
        let cases: [([Int], [Int], [Int])] = [([2, 1, 3], [4, 1], [3]), ([], [2, 3], [2, 1]), ([3, 1], [], [1, 4]),
                                              ([2, 3, 4], [2, 3, 4], [2, 3, 4]), ([1, 4], [3, 1], []), ([2, 1, 1], [1, 3, 1], [1, 1, 5])]
        for (sc, sx, sy) in cases {
            let c = try Tensor(shape: sc, bools: (0..<sc.reduce(1, *)).map { $0 % 3 != 1 })
            let x = try Tensor(shape: sx, floats: sampleFloats(sx.reduce(1, *), seed: 2))
            let y = try Tensor(shape: sy, floats: sampleFloats(sy.reduce(1, *), seed: 3).map { $0 + 10 })
            let out = try Shape.broadcast([sc, sx, sy])
            let w = try Tensor.select(c, x, y)
            XCTAssertEqual(w.shape, out)
            let cv = try c.bools(), xv = try x.floats(), yv = try y.floats(), wv = try w.floats()
            for i in 0..<wv.count {
                let e = cv[naiveBroadcastIndex(i, out: out, operand: sc)] ? xv[naiveBroadcastIndex(i, out: out, operand: sx)]
                                                                         : yv[naiveBroadcastIndex(i, out: out, operand: sy)]
                XCTAssertEqual(wv[i], e, "\(sc) \(sx) \(sy) [\(i)]")
            }
        }
    }

    func testFloatModuloSigns() throws {
        let a = try Tensor(shape: [4], floats: [5.5, -5.5, 5.5, -5.5])
        let b = try Tensor(shape: [4], floats: [2, 2, -2, -2])
        // numpy: np.fmod → [1.5, -1.5, 1.5, -1.5]; np.mod → [1.5, 0.5, -0.5, -1.5]
        assertClose(try Tensor.binary(.fmod, a, b), [1.5, -1.5, 1.5, -1.5])
        assertClose(try Tensor.binary(.mod, a, b), [1.5, 0.5, -0.5, -1.5])
    }

    func testMinMaxPropagateNaN() throws {
        let a = try Tensor(shape: [3], floats: [.nan, 1, 2])
        let b = try Tensor(shape: [3], floats: [0, .nan, 3])
        assertClose(try Tensor.binary(.min, a, b), [.nan, .nan, 2])
        assertClose(try Tensor.binary(.max, a, b), [.nan, .nan, 3])
    }

    func testInt64Arithmetic() throws {
        let a = try Tensor(shape: [4], ints: [7, -7, 7, -7])
        let b = try Tensor(shape: [4], ints: [2, 2, -2, -2])
        XCTAssertEqual(try Tensor.binary(.div, a, b).ints(), [3, -3, -3, 3])     // C truncation
        XCTAssertEqual(try Tensor.binary(.fmod, a, b).ints(), [1, -1, 1, -1])    // sign of dividend
        XCTAssertEqual(try Tensor.binary(.mod, a, b).ints(), [1, 1, -1, -1])     // sign of divisor (numpy)
        XCTAssertEqual(try (a + b).ints(), [9, -5, 5, -9])
        XCTAssertEqual(try (a * Tensor(shape: [], ints: [3])).ints(), [21, -21, 21, -21])
        XCTAssertEqual(try Tensor.binary(.pow, Tensor(ints: [2, -3, 5, 2]), Tensor(ints: [10, 3, 0, -1])).ints(), [1024, -27, 1, 0])
        XCTAssertEqual(try Tensor.binary(.max, a, b).ints(), [7, 2, 7, -2])
        // Int64.min / -1 wraps instead of trapping.
        XCTAssertEqual(try Tensor.binary(.div, Tensor(ints: [.min]), Tensor(ints: [-1])).ints(), [.min])
    }

    func testIntegerDivisionByZeroThrows() {
        XCTAssertThrowsError(try Tensor.binary(.div, Tensor(ints: [1, 2]), Tensor(ints: [1, 0]))) { e in
            guard case let TensorError.invalidArgument(op, _) = e else { return XCTFail("\(e)") }
            XCTAssertEqual(op, "Div")
        }
    }

    func testMixedPowTypes() throws {
        let x = try Tensor(shape: [3], floats: [1.5, -2, 4])
        assertClose(try Tensor.binary(.pow, x, Tensor(ints: [2, 3, -1])), [2.25, -8, 0.25])
        XCTAssertEqual(try Tensor.binary(.pow, Tensor(ints: [2, 9]), Tensor(shape: [2], floats: [0.5, 0.5])).ints(), [1, 3])
    }

    func testBroadcastErrorsNameTheOp() {
        let a = Tensor(zeros: [2, 3]), b = Tensor(zeros: [4])
        XCTAssertThrowsError(try Tensor.binary(.add, a, b)) { e in
            guard case let TensorError.shapeMismatch(op, _, got) = e else { return XCTFail("\(e)") }
            XCTAssertEqual(op, "Add")
            XCTAssertEqual(got, [[2, 3], [4]])
        }
        XCTAssertThrowsError(try Tensor.binary(.mul, a, Tensor(ints: [1, 2, 3]), name: "node7 (Mul)")) { e in
            guard case let TensorError.dtypeMismatch(op, _, got) = e else { return XCTFail("\(e)") }
            XCTAssertEqual(op, "node7 (Mul)")
            XCTAssertEqual(got, .int64)
        }
        XCTAssertThrowsError(try Tensor.compare(.less, a, b)) { e in
            guard case let TensorError.shapeMismatch(op, _, _) = e else { return XCTFail("\(e)") }
            XCTAssertEqual(op, "Less")
        }
    }

    func testComparisonsLogicAndWhere() throws {
        let a = try Tensor(shape: [2, 2], floats: [1, 2, .nan, 4])
        let b = try Tensor(shape: [2], floats: [2, 2])
        XCTAssertEqual(try Tensor.compare(.less, a, b).bools(), [true, false, false, false])
        XCTAssertEqual(try Tensor.compare(.lessOrEqual, a, b).bools(), [true, true, false, false])
        XCTAssertEqual(try Tensor.compare(.greaterOrEqual, a, b).bools(), [false, true, false, true])
        XCTAssertEqual(try Tensor.compare(.equal, Tensor(ints: [3, 4]), Tensor(shape: [], ints: [4])).bools(), [false, true])
        let p = try Tensor(shape: [4], bools: [true, true, false, false]), q = try Tensor(shape: [4], bools: [true, false, true, false])
        XCTAssertEqual(try Tensor.logic(.and, p, q).bools(), [true, false, false, false])
        XCTAssertEqual(try Tensor.logic(.or, p, q).bools(), [true, true, true, false])
        XCTAssertEqual(try Tensor.logic(.xor, p, q).bools(), [false, true, true, false])
        XCTAssertEqual(try p.logicalNot().bools(), [false, false, true, true])
        // Three-way broadcast: cond (2,1), x (1,3), y scalar.
        let c = try Tensor(shape: [2, 1], bools: [true, false])
        let x = try Tensor(shape: [1, 3], floats: [1, 2, 3])
        let w = try Tensor.select(c, x, Tensor(scalar: -1))
        XCTAssertEqual(w.shape, [2, 3])
        XCTAssertEqual(try w.floats(), [1, 2, 3, -1, -1, -1])
        XCTAssertThrowsError(try Tensor.select(c, x, Tensor(ints: [1])))
        let m = try Tensor(shape: [4], floats: [.nan, .infinity, -.infinity, 1])
        XCTAssertEqual(try m.isNaNMask().bools(), [true, false, false, false])
        XCTAssertEqual(try m.isInfMask().bools(), [false, true, true, false])
        XCTAssertEqual(try m.isInfMask(positive: false).bools(), [false, false, true, false])
    }

    func testCast() throws {
        let f = try Tensor(shape: [6], floats: [-2.7, 2.7, 0, .nan, 1e20, 0.5])
        XCTAssertEqual(try f.cast(to: .int64).ints(), [-2, 2, 0, .min, .min, 0])
        XCTAssertEqual(try f.cast(to: .bool).bools(), [true, true, false, true, true, true])
        XCTAssertEqual(try Tensor(ints: [3, 0]).cast(to: .float32).floats(), [3, 0])
        XCTAssertEqual(try Tensor(shape: [2], bools: [true, false]).cast(to: .int64).ints(), [1, 0])
    }

    func testBroadcastAndExpand() throws {
        let x = try Tensor(shape: [3, 1], floats: [1, 2, 3])
        let b = try x.broadcast(to: [2, 3, 2])
        XCTAssertEqual(try b.floats(), [1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3])
        // Expand keeps the input's dimension where the target says 1.
        let e = try x.expanded(to: [1, 4])
        XCTAssertEqual(e.shape, [3, 4])
        XCTAssertEqual(try Tensor(ints: [5]).expanded(to: [2, 1]).ints(), [5, 5])
        XCTAssertThrowsError(try x.broadcast(to: [2, 2]))
    }
}
