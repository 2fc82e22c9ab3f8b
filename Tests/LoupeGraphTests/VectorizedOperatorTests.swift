import XCTest
@testable import LoupeGraph
import LoupeTensor

/// Operators whose kernels moved to the vector paths (CLoupeVMath.h), on sizes that leave SIMD
/// tails (not multiples of 4/8/16) and on the layouts the kernels special-case: forward against
/// the previous scalar loops (`Kernels.scalarElementwiseReference`), VJPs against finite
/// differences.
final class VectorizedOperatorTests: XCTestCase {
    var rng = TestRNG(seed: 77)

    override func tearDown() {
        Kernels.scalarElementwiseReference = false
        super.tearDown()
    }

    /// Runs `op` with the vector kernels and with the scalar reference loops.
    private func bothPaths(_ op: any Operator, _ inputs: [Tensor?]) throws -> (fast: [Tensor], slow: [Tensor]) {
        Kernels.scalarElementwiseReference = false
        let fast = try op.forward(inputs)
        Kernels.scalarElementwiseReference = true
        let slow = try op.forward(inputs)
        Kernels.scalarElementwiseReference = false
        return (fast, slow)
    }

    private func assertClose(_ a: Tensor, _ b: Tensor, _ tol: Float, _ what: String, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(a.shape, b.shape, what, file: file, line: line)
        let x = try a.floats(), y = try b.floats()
        for i in 0..<min(x.count, y.count) where !(abs(x[i] - y[i]) <= tol * max(1, abs(y[i]))) {
            XCTFail("\(what) at \(i): \(x[i]) vs \(y[i])", file: file, line: line)
            return
        }
    }

    func testLayerNormalizationPathsAgree() throws {
        // Per-element scale/bias, one shared scale/bias, no bias; rows of 19 and 37 elements.
        let cases: [([Int], Int, [Int], [Int]?)] = [([3, 19], -1, [19], [19]), ([2, 3, 37], -1, [1], [1]), ([2, 5, 7], 1, [5, 7], nil)]
        for (xs, axis, ss, bs) in cases {
            let op = try makeOperator("LayerNormalization", inputs: bs == nil ? 2 : 3, outputs: 3, attributes: ["axis": .int(axis)])
            let inputs: [Tensor?] = [rng.tensor(xs, -3, 5), rng.tensor(ss)] + (bs.map { [rng.tensor($0)] } ?? [])
            let (fast, slow) = try bothPaths(op, inputs)
            for k in 0..<3 { try assertClose(fast[k], slow[k], 2e-5, "LayerNormalization \(xs) output \(k)") }
        }
        let shared = try makeOperator("LayerNormalization", inputs: 3, outputs: 3)
        try checkVJP(shared, [rng.tensor([2, 19]), rng.tensor([1]), rng.tensor([1])], wrt: [0, 1, 2])
        let wide = try makeOperator("LayerNormalization", inputs: 3, outputs: 3)
        try checkVJP(wide, [rng.tensor([2, 21]), rng.tensor([21]), rng.tensor([21])], wrt: [0, 1, 2])
    }

    func testInstanceNormalizationPathsAgree() throws {
        let op = try makeOperator("InstanceNormalization", inputs: 3)
        let inputs: [Tensor?] = [rng.tensor([2, 3, 5, 7], -2, 4), rng.tensor([3]), rng.tensor([3])]
        let (fast, slow) = try bothPaths(op, inputs)
        try assertClose(fast[0], slow[0], 2e-5, "InstanceNormalization")
        try checkVJP(op, [rng.tensor([2, 3, 17]), rng.tensor([3]), rng.tensor([3])], wrt: [0, 1, 2])
    }

    func testSoftmaxAlongInnerAndLastAxes() throws {
        for (opType, axis) in [("Softmax", 1), ("Softmax", -1), ("LogSoftmax", 1), ("LogSoftmax", 2)] {
            let op = try makeOperator(opType, inputs: 1, attributes: ["axis": .int(axis)], opset: 13)
            let x = rng.tensor([2, 19, 17], -6, 6)
            let (fast, slow) = try bothPaths(op, [x])
            try assertClose(fast[0], slow[0], 2e-6, "\(opType) axis \(axis)")
            try checkVJP(op, [rng.tensor([2, 5, 17])], wrt: [0])
        }
    }

    func testBroadcastBinaryOperators() throws {
        // Per-channel (SE block), row vector, and three outer dimensions.
        let shapes: [([Int], [Int])] = [([2, 3, 5, 7], [2, 3, 1, 1]), ([2, 5, 19], [19]), ([3, 1, 5], [1, 4, 1])]
        for name in ["Add", "Sub", "Mul", "Div", "Max", "Min"] {
            let op = try makeOperator(name, inputs: 2)
            for (sa, sb) in shapes {
                let a = rng.tensor(sa), b = rng.tensor(sb, 0.5, 2)
                let (fast, slow) = try bothPaths(op, [a, b])
                try assertClose(fast[0], slow[0], 0, "\(name) \(sa) \(sb)")
            }
            try checkVJP(op, [rng.tensor([2, 3, 2, 3]), rng.tensor([2, 3, 1, 1], 0.5, 2)], wrt: [0, 1])
        }
    }

    /// Clip with float bound inputs is one clamp pass; it must equal max-then-min exactly
    /// (NaN inputs stay NaN, lo > hi gives hi, a missing bound is unbounded).
    func testClipSinglePass() throws {
        let clip = try makeOperator("Clip", inputs: 3, opset: 13)
        let x = try Tensor(shape: [2, 5], floats: [-3, -1, -0.5, 0, 0.25, 1, 2, .nan, 7, -7])
        let lo = try Tensor(scalar: -0.5), hi = try Tensor(scalar: 1)
        let y = try clip.forward([x, lo, hi])[0].floats()
        let want: [Float] = [-0.5, -0.5, -0.5, 0, 0.25, 1, 1, .nan, 1, -0.5]
        for (a, b) in zip(y, want) { XCTAssertTrue(a == b || (a.isNaN && b.isNaN), "\(a) vs \(b)") }
        XCTAssertEqual(try clip.forward([x, try Tensor(scalar: 2), try Tensor(scalar: 1)])[0].floats().filter { !$0.isNaN }, [Float](repeating: 1, count: 9))
        XCTAssertEqual(try clip.forward([x, nil, hi])[0].floats()[9], -7)
        XCTAssertEqual(try clip.forward([x, lo, nil])[0].floats()[8], 7)
        XCTAssertEqual(try clip.forward([x, nil, nil])[0].shape, [2, 5])
        try checkVJP(clip, [rng.tensor([3, 7], -2, 2), try Tensor(scalar: -0.7), try Tensor(scalar: 0.9)], wrt: [0, 1, 2])
    }

    func testUnaryOperatorsVJP() throws {
        for (name, attrs) in [("Sigmoid", [:]), ("Tanh", [:]), ("Erf", [:]), ("Exp", [:]), ("HardSwish", [:]),
                              ("HardSigmoid", ["alpha": Attribute.float(0.3)]), ("Gelu", ["approximate": .string("tanh")]), ("Gelu", [:])] as [(String, [String: Attribute])] {
            let op = try makeOperator(name, inputs: 1, attributes: attrs, opset: 20)
            try checkVJP(op, [rng.tensor([3, 7], -2.5, 2.5)], wrt: [0])
            let x = rng.tensor([5, 13], -4, 4)
            let (fast, slow) = try bothPaths(op, [x])
            try assertClose(fast[0], slow[0], 5e-7, "\(name)")
        }
    }
}
