import XCTest
import LoupeTensor
@testable import LoupeGraph

/// 3-D MaxPool and AveragePool (values: the ONNX node and pytorch-converted tests in CI): VJPs
/// against finite differences with temporal stride, padding, ceil mode and both divisors.
final class Pool3DOperatorTests: XCTestCase {
    func testVJPs() throws {
        var rng = TestRNG(seed: 31)
        let x = rng.tensor([2, 2, 5, 5, 4])
        let cases: [(String, [String: Attribute])] = [
            ("MaxPool", ["kernel_shape": .ints([2, 3, 2]), "strides": .ints([2, 1, 2]), "pads": .ints([1, 1, 0, 0, 1, 1])]),
            ("MaxPool", ["kernel_shape": .ints([3, 2, 2]), "strides": .ints([2, 2, 2]), "ceil_mode": .int(1)]),
            ("AveragePool", ["kernel_shape": .ints([2, 3, 2]), "strides": .ints([2, 1, 2]), "pads": .ints([1, 1, 0, 1, 1, 1])]),
            ("AveragePool", ["kernel_shape": .ints([3, 2, 2]), "strides": .ints([2, 2, 1]), "pads": .ints([1, 0, 1, 1, 1, 0]),
                             "count_include_pad": .int(1), "ceil_mode": .int(1)]),
        ]
        for (op, attrs) in cases {
            try checkVJP(try makeOperator(op, inputs: 1, attributes: attrs), [x], wrt: [0], eps: 1e-3, rtol: 1e-2, atol: 1e-3)
        }
    }

    /// A window over frames 0–1 of a clip whose maximum sits in frame 1: the output and its
    /// gradient land there.
    func testMaxRoutesToTheFrameHoldingTheMaximum() throws {
        var v = [Float](repeating: 0, count: 2 * 2 * 2)
        v[4 + 3] = 5   // frame 1, position (1, 1)
        let x = try Tensor(shape: [1, 1, 2, 2, 2], floats: v)
        let op = try makeOperator("MaxPool", inputs: 1, attributes: ["kernel_shape": .ints([2, 2, 2])])
        XCTAssertEqual(try op.forward([x])[0].floats(), [5])
        let g = try op.vjp(VJPContext(inputs: [x], inputShapes: [x.shape], outputs: [nil],
                                      gradOutputs: [try Tensor(shape: [1, 1, 1, 1, 1], floats: [2])], wantInput: [true]))
        XCTAssertEqual(try XCTUnwrap(g[0]).floats(), v.map { $0 == 5 ? 2 : 0 })
    }
}
