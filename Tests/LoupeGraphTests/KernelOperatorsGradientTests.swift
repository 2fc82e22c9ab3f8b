import XCTest
import LoupeTensor
@testable import LoupeGraph

/// Every kernel operator's VJP against central finite differences (``checkVJP``), on odd shapes.
final class KernelOperatorsGradientTests: XCTestCase {
    var rng = TestRNG(seed: 42)

    func testConvVJP() throws {
        let cases: [([String: Attribute], [Int], [Int])] = [
            (["strides": .ints([2, 1]), "pads": .ints([1, 0, 0, 2]), "dilations": .ints([1, 2])], [2, 2, 5, 4], [3, 2, 2, 3]),
            (["group": .int(2), "strides": .ints([3, 2]), "pads": .ints([1, 1, 1, 1])], [1, 4, 5, 5], [4, 2, 3, 3]),
            (["group": .int(3), "auto_pad": .string("SAME_LOWER"), "strides": .ints([2, 2])], [2, 3, 4, 5], [6, 1, 3, 2]),
            (["strides": .ints([2]), "pads": .ints([1, 2])], [2, 3, 7], [2, 3, 3]),
        ]
        for (attrs, xs, ws) in cases {
            let op = try makeOperator("Conv", inputs: 3, attributes: attrs)
            try checkVJP(op, [rng.tensor(xs), rng.tensor(ws), rng.tensor([ws[0]])], wrt: [0, 1, 2])
        }
    }

    func testConvTransposeVJP() throws {
        let op = try makeOperator("ConvTranspose", inputs: 3, attributes: ["strides": .ints([2, 3]), "pads": .ints([1, 0, 0, 1]),
                                                                         "output_padding": .ints([1, 2]), "group": .int(2)])
        try checkVJP(op, [rng.tensor([2, 4, 3, 2]), rng.tensor([4, 1, 3, 2]), rng.tensor([2])], wrt: [0, 1, 2])
        let same = try makeOperator("ConvTranspose", inputs: 2, attributes: ["strides": .ints([2]), "auto_pad": .string("SAME_UPPER")])
        let x = rng.tensor([1, 2, 4]), w = rng.tensor([2, 3, 3])
        XCTAssertEqual(try same.forward([x, w])[0].shape, [1, 3, 8])
        try checkVJP(same, [x, w], wrt: [0, 1])
        // output_shape beyond what the kernel reaches: zero rows/columns appended at the end.
        let wide = try makeOperator("ConvTranspose", inputs: 2, attributes: ["strides": .ints([3, 2]), "output_shape": .ints([10, 8])])
        let x2 = rng.tensor([1, 1, 3, 3]), w2 = rng.tensor([1, 2, 3, 3])
        let y2 = try wide.forward([x2, w2])[0]
        XCTAssertEqual(y2.shape, [1, 2, 10, 8])
        let v = try y2.floats()
        XCTAssertEqual((0..<8).map { v[9 * 8 + $0] }, [Float](repeating: 0, count: 8))
        try checkVJP(wide, [x2, w2], wrt: [0, 1])
        // Three spatial dimensions are reported as unsupported, not as a failure.
        XCTAssertThrowsError(try wide.forward([rng.tensor([1, 1, 2, 2, 2]), rng.tensor([1, 1, 2, 2, 2])])) { e in
            guard case GraphError.unsupportedOperators = e else { return XCTFail("\(e)") }
        }
    }

    func testPoolVJP() throws {
        // distinct values so max pooling has a unique argmax away from ties under ±eps
        let vals: [Float] = (0..<120).map { (i: Int) -> Float in Float((i * 37) % 120) / 20 - 3 }
        let x = try Tensor(shape: [2, 2, 5, 6], floats: vals)
        let attrs: [String: Attribute] = ["kernel_shape": .ints([3, 2]), "strides": .ints([2, 2]), "pads": .ints([1, 0, 1, 1]), "ceil_mode": .int(1)]
        try checkVJP(try makeOperator("MaxPool", inputs: 1, attributes: attrs), [x], wrt: [0], eps: 1e-3)
        // Integer images (uint8 widened to int64) pool exactly.
        let ints = try Tensor(shape: [1, 1, 2, 3], ints: [3, 250, 7, 9, 0, 255])
        let pooled = try makeOperator("MaxPool", inputs: 1, attributes: ["kernel_shape": .ints([2, 2])]).forward([ints])[0]
        XCTAssertEqual(try pooled.ints(), [250, 255])
        var avg = attrs; avg["count_include_pad"] = .int(1)
        try checkVJP(try makeOperator("AveragePool", inputs: 1, attributes: avg), [rng.tensor([2, 2, 5, 6])], wrt: [0])
        try checkVJP(try makeOperator("AveragePool", inputs: 1, attributes: ["kernel_shape": .ints([3]), "strides": .ints([2])]),
                     [rng.tensor([1, 2, 7])], wrt: [0])
        try checkVJP(try makeOperator("GlobalAveragePool", inputs: 1), [rng.tensor([2, 3, 2, 3])], wrt: [0])
        try checkVJP(try makeOperator("GlobalMaxPool", inputs: 1), [x], wrt: [0], eps: 1e-3)
    }

    func testNormalizationVJP() throws {
        let bn = try makeOperator("BatchNormalization", inputs: 5)
        try checkVJP(bn, [rng.tensor([3, 2, 2, 3]), rng.tensor([2]), rng.tensor([2]), rng.tensor([2]), rng.tensor([2], 0.5, 1.5)],
                     wrt: [0, 1, 2, 3, 4])
        let ln = try makeOperator("LayerNormalization", inputs: 3, outputs: 3, attributes: ["axis": .int(-2)])
        try checkVJP(ln, [rng.tensor([2, 3, 5]), rng.tensor([3, 5]), rng.tensor([3, 5])], wrt: [0, 1, 2])
        let ln1 = try makeOperator("LayerNormalization", inputs: 2)
        try checkVJP(ln1, [rng.tensor([3, 4]), rng.tensor([4])], wrt: [0, 1])
        let inst = try makeOperator("InstanceNormalization", inputs: 3)
        try checkVJP(inst, [rng.tensor([2, 3, 2, 3]), rng.tensor([3]), rng.tensor([3])], wrt: [0, 1, 2])
    }

    func testSoftmaxVJP() throws {
        for opset in [11, 13] {
            for log in [false, true] {
                let op = try makeOperator(log ? "LogSoftmax" : "Softmax", inputs: 1, attributes: ["axis": .int(1)], opset: opset)
                try checkVJP(op, [rng.tensor([2, 3, 4])], wrt: [0])
            }
        }
    }

    func testMatMulAndGemmVJP() throws {
        let mm = try makeOperator("MatMul", inputs: 2)
        try checkVJP(mm, [rng.tensor([2, 1, 3, 4]), rng.tensor([3, 4, 2])], wrt: [0, 1])
        try checkVJP(mm, [rng.tensor([4]), rng.tensor([2, 4, 3])], wrt: [0, 1])
        try checkVJP(mm, [rng.tensor([2, 3, 4]), rng.tensor([4])], wrt: [0, 1])
        for (ta, tb) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
            let op = try makeOperator("Gemm", inputs: 3, attributes: ["transA": .int(ta), "transB": .int(tb), "alpha": .float(0.7), "beta": .float(1.3)])
            let a = rng.tensor(ta == 1 ? [4, 3] : [3, 4]), b = rng.tensor(tb == 1 ? [5, 4] : [4, 5])
            try checkVJP(op, [a, b, rng.tensor([1, 5])], wrt: [0, 1, 2])
        }
    }

    func testResizeVJP() throws {
        let x = rng.tensor([1, 2, 3, 4])
        for (mode, ctm) in [("linear", "half_pixel"), ("linear", "align_corners"), ("nearest", "asymmetric"), ("linear", "pytorch_half_pixel")] {
            let op = try makeOperator("Resize", inputs: 4, attributes: ["mode": .string(mode), "coordinate_transformation_mode": .string(ctm)])
            try checkVJP(op, [x, nil, nil, Tensor(ints: [1, 2, 5, 7])], wrt: [0])
            try checkVJP(op, [x, nil, try Tensor(shape: [4], floats: [1, 1, 0.5, 0.75]), nil], wrt: [0])
        }
    }
}
