import XCTest
import LoupeTensor
@testable import LoupeGraph

/// 1-D variants, opset-dependent attribute handling and load-time errors of the kernel operators.
final class KernelOperatorsAttributeTests: XCTestCase {
    func testOneDimensionalConvAndConvTransposeAgainstPyTorch() throws {
        let conv = try makeOperator("Conv", inputs: 3, attributes: ["strides": .ints([2]), "dilations": .ints([2]), "pads": .ints([2, 1])])
        let y = try conv.forward([kernelPattern([2, 2, 9]), kernelPattern([3, 2, 3], 5, 13, 6), try Tensor(shape: [3], floats: [0.5, 0, -0.5])])[0]
        try assertKernelValues(y, [2, 3, 4], [
            -0.5, 0.733333, 2.2, 0.733333, 0.833333, -0.666667, -0.866667, 0.766667, -5.96046e-08, 0.533333, -1.33333,
            -1.36667, 0.8, 0.733333, -1.1, 0.733333, -1, 0.833333, 0.633333, -0.666667, -0.2, -1.23333, 0.2, 0.533333], accuracy: 1e-5)
        let convT = try makeOperator("ConvTranspose", inputs: 2, attributes: ["strides": .ints([2]), "pads": .ints([1, 1]), "output_padding": .ints([1])])
        let t = try convT.forward([kernelPattern([2, 3, 7]), kernelPattern([3, 2, 3], 5, 13, 6)])[0]
        XCTAssertEqual(t.shape, [2, 2, 14])
        let v = try t.floats()
        let expected: [Float] = [-0.833333, -0.9, -0.666667, 0.9, 0.966667, -1.33333, -1.06667, 0.833333, -0.533333, 1.16667,
                                 1.1, -1.06667, -0.933333, 0.766667]
        for i in 0..<expected.count { XCTAssertEqual(v[i], expected[i], accuracy: 1e-5) }
        XCTAssertEqual(v[55], -0.933333, accuracy: 1e-5)
    }

    /// How output_shape / auto_pad split the total padding, as onnxruntime 1.2x does (checked
    /// with it): NOTSET and SAME_LOWER put the odd element at the start, SAME_UPPER at the end.
    func testConvTransposePaddingSplitMatchesOnnxRuntime() throws {
        let x = kernelPattern([1, 1, 3, 3]), w = kernelPattern([1, 1, 3, 3], 5, 13, 6)
        let full = try makeOperator("ConvTranspose", inputs: 2, attributes: ["strides": .ints([2, 2])]).forward([x, w])[0]
        XCTAssertEqual(full.shape, [1, 1, 7, 7])
        let f = try full.floats()
        let cases: [([String: Attribute], Int)] = [
            (["output_shape": .ints([6, 6])], 1),
            (["output_shape": .ints([6, 6]), "auto_pad": .string("SAME_UPPER")], 0),
            (["auto_pad": .string("SAME_UPPER")], 0),
            (["auto_pad": .string("SAME_LOWER")], 1),
        ]
        for (attrs, begin) in cases {
            var a = attrs; a["strides"] = .ints([2, 2])
            let y = try makeOperator("ConvTranspose", inputs: 2, attributes: a).forward([x, w])[0]
            XCTAssertEqual(y.shape, [1, 1, 6, 6])
            let v = try y.floats()
            for i in 0..<6 { for j in 0..<6 { XCTAssertEqual(v[i * 6 + j], f[(i + begin) * 7 + j + begin], "\(attrs)") } }
        }
    }

    func testResizeOpsetVariants() throws {
        let x4 = kernelPattern([1, 1, 3, 4], 5, 13, 3)
        let scales = try Tensor(shape: [4], floats: [1, 1, 2, 2])
        // opset 13+: linear, default half_pixel, scales input
        let linear = try makeOperator("Resize", inputs: 3, attributes: ["mode": .string("linear")], opset: 13)
        try assertKernelValues(try linear.forward([x4, nil, scales])[0], [1, 1, 6, 8], [
            -1, -0.583333, 0.25, 1.08333, 1.91667, 1.66667, 0.333333, -0.333333, -0.416667, 0, 0.833333, 1.39583, 1.6875,
            1.4375, 0.645833, 0.25, 0.75, 1.16667, 2, 2.02083, 1.22917, 0.979167, 1.27083, 1.41667, 0.833333, 1.25,
            2.08333, 2.10417, 1.3125, 1.0625, 1.35417, 1.5, -0.166667, 0.25, 1.08333, 1.64583, 1.9375, 1.6875,
            0.895833, 0.5, -0.666667, -0.25, 0.583333, 1.41667, 2.25, 2, 0.666667, 0])
        // opset 10 Resize and opset 7 Upsample (scales attribute): asymmetric, floor
        let r10 = try makeOperator("Resize", inputs: 2, attributes: ["mode": .string("nearest")], opset: 10)
        let u7 = try makeOperator("Upsample", inputs: 1, attributes: ["scales": .floats([1, 1, 2, 3])], opset: 7)
        let a = try r10.forward([x4, try Tensor(shape: [4], floats: [1, 1, 2, 3])])[0]
        let b = try u7.forward([x4])[0]
        XCTAssertEqual(a, b)
        XCTAssertEqual(a.shape, [1, 1, 6, 12])
        let xv = try x4.floats(), av = try a.floats()
        for i in 0..<6 { for j in 0..<12 { XCTAssertEqual(av[i * 12 + j], xv[(i / 2) * 4 + j / 3]) } }
        // resizing a batch or channel axis is rejected at run time with the node named
        XCTAssertThrowsError(try linear.forward([x4, nil, try Tensor(shape: [4], floats: [2, 1, 1, 1])])) { e in
            XCTAssertTrue("\(e)".contains("test_Resize"), "\(e)")
        }
        XCTAssertThrowsError(try makeOperator("Resize", inputs: 3, attributes: ["coordinate_transformation_mode": .string("tf_crop_and_resize")]))
        XCTAssertThrowsError(try makeOperator("Resize", inputs: 3, attributes: ["antialias": .int(1)], opset: 18))
    }

    /// Nearest downsampling 5x7 → 3x4 of 0..<35, every nearest_mode with two coordinate modes;
    /// expected planes from onnxruntime 1.2x. Left out: round_prefer_ceil + asymmetric, where
    /// column 2 maps to 2·7/4 = 3.5 exactly; Loupe computes 2 / Float(4/7) = 3.4999998 and picks
    /// column 3, onnxruntime picks 4 (see docs/kernels.md, known differences).
    func testResizeNearestModesMatchOnnxRuntime() throws {
        let x = try Tensor(shape: [1, 1, 5, 7], floats: (0..<35).map(Float.init))
        let expected: [(String, String, [Float])] = [
            ("round_prefer_ceil", "half_pixel", [0, 2, 4, 6, 14, 16, 18, 20, 28, 30, 32, 34]),
            ("round_prefer_floor", "asymmetric", [0, 2, 3, 5, 14, 16, 17, 19, 21, 23, 24, 26]),
            ("round_prefer_floor", "half_pixel", [0, 2, 4, 6, 14, 16, 18, 20, 28, 30, 32, 34]),
            ("floor", "asymmetric", [0, 1, 3, 5, 7, 8, 10, 12, 21, 22, 24, 26]),
            ("floor", "half_pixel", [0, 2, 3, 5, 14, 16, 17, 19, 21, 23, 24, 26]),
            ("ceil", "asymmetric", [0, 2, 4, 6, 14, 16, 18, 20, 28, 30, 32, 34]),
            ("ceil", "half_pixel", [8, 10, 11, 13, 15, 17, 18, 20, 29, 31, 32, 34]),
        ]
        for (nm, ctm, values) in expected {
            let op = try makeOperator("Resize", inputs: 4, attributes: ["nearest_mode": .string(nm), "coordinate_transformation_mode": .string(ctm)])
            XCTAssertEqual(try op.forward([x, nil, nil, Tensor(ints: [1, 1, 3, 4])])[0].floats(), values, "\(nm) \(ctm)")
        }
    }

    /// ceil_mode with windows that would start in the end padding, and the count_include_pad
    /// divisor of windows that stick out past the padding: first output rows from onnxruntime
    /// (opset 19) on x = 0..<n² (n × n).
    func testCeilModePoolingMatchesOnnxRuntime() throws {
        let cases: [(String, [String: Attribute], (Int, Int, Int, Int), Int, [Float])] = [
            ("MaxPool", [:], (5, 2, 2, 1), 3, [0, 2, 4]),
            ("MaxPool", [:], (6, 3, 2, 1), 4, [7, 9, 11, 11]),
            ("MaxPool", [:], (7, 3, 3, 1), 3, [8, 11, 13]),
            ("MaxPool", [:], (4, 3, 2, 1), 3, [5, 7, 7]),
            ("AveragePool", ["count_include_pad": .int(1)], (5, 2, 2, 1), 3, [0, 0.75, 1.75]),
            ("AveragePool", ["count_include_pad": .int(1)], (6, 3, 2, 1), 4, [1.5556, 3.3333, 4.6667, 2.6667]),
            ("AveragePool", ["count_include_pad": .int(1)], (7, 3, 3, 1), 3, [1.7778, 4.3333, 4.0]),
            ("AveragePool", ["count_include_pad": .int(1)], (4, 3, 2, 1), 3, [1.1111, 2.6667, 1.6667]),
            ("AveragePool", [:], (5, 2, 2, 1), 3, [0, 1.5, 3.5]),
            ("AveragePool", [:], (6, 3, 2, 1), 4, [3.5, 5, 7, 8]),
            ("AveragePool", [:], (7, 3, 3, 1), 3, [4, 6.5, 9]),
            ("AveragePool", [:], (4, 3, 2, 1), 3, [2.5, 4, 5]),
        ]
        for (op, extra, (n, k, st, p), out, firstRow) in cases {
            var attrs = extra
            attrs["kernel_shape"] = .ints([k, k]); attrs["strides"] = .ints([st, st]); attrs["pads"] = .ints([p, p, p, p])
            attrs["ceil_mode"] = .int(1)
            let x = try Tensor(shape: [1, 1, n, n], floats: (0..<(n * n)).map(Float.init))
            let y = try makeOperator(op, inputs: 1, attributes: attrs, opset: 19).forward([x])[0]
            XCTAssertEqual(y.shape, [1, 1, out, out], "\(op) \(n) \(k) \(st) \(p)")
            let v = try y.floats()
            for j in 0..<firstRow.count { XCTAssertEqual(v[j], firstRow[j], accuracy: 1e-3, "\(op) \(extra) \(n) \(k) \(st) \(p)") }
        }
    }

    /// Empty dimensions give empty (or zero) results instead of crashing.
    func testEmptyTensors() throws {
        let mm = try makeOperator("MatMul", inputs: 2)
        let z = try mm.forward([try Tensor(shape: [2, 0], floats: []), try Tensor(shape: [0, 3], floats: [])])[0]
        XCTAssertEqual(z.shape, [2, 3])
        XCTAssertEqual(try z.floats(), [Float](repeating: 0, count: 6))
        let conv = try makeOperator("Conv", inputs: 2)
        XCTAssertEqual(try conv.forward([try Tensor(shape: [0, 2, 4, 4], floats: []), kernelPattern([3, 2, 3, 3])])[0].shape, [0, 3, 2, 2])
        let ln = try makeOperator("LayerNormalization", inputs: 2)
        let empty = try Tensor(shape: [0, 4], floats: [])
        XCTAssertEqual(try ln.forward([empty, kernelPattern([4])])[0].shape, [0, 4])
        let g = try ln.vjp(VJPContext(inputs: [empty, kernelPattern([4])], inputShapes: [[0, 4], [4]], outputs: [nil, nil, nil],
                                      gradOutputs: [empty, nil, nil], wantInput: [true, true]))
        XCTAssertEqual(g[0]?.shape, [0, 4])
        XCTAssertEqual(try g[1]?.floats(), [0, 0, 0, 0])
        let resize = try makeOperator("Resize", inputs: 4)
        XCTAssertThrowsError(try resize.forward([try Tensor(shape: [1, 1, 0, 2], floats: []), nil, nil, Tensor(ints: [1, 1, 2, 2])]))
    }

    func testGemmBroadcastsC() throws {
        let a = try Tensor(shape: [2, 2], floats: [1, 2, 3, 4]), i2 = try Tensor(shape: [2, 2], floats: [1, 0, 0, 1])
        let op = try makeOperator("Gemm", inputs: 3)
        XCTAssertEqual(try op.forward([a, i2, Tensor(scalar: 10)])[0].floats(), [11, 12, 13, 14])
        XCTAssertEqual(try op.forward([a, i2, try Tensor(shape: [2, 1], floats: [10, 20])])[0].floats(), [11, 12, 23, 24])
        XCTAssertEqual(try op.forward([a, i2, try Tensor(shape: [1, 2], floats: [10, 20])])[0].floats(), [11, 22, 13, 24])
        XCTAssertThrowsError(try op.forward([a, i2, try Tensor(shape: [3], floats: [1, 2, 3])]))
        XCTAssertThrowsError(try makeOperator("Gemm", inputs: 2, opset: 9)) // C required before opset 11
    }

    func testLoadTimeErrorsNameTheNode() throws {
        let cases: [(String, Int, [String: Attribute])] = [
            ("Conv", 2, ["auto_pad": .string("SAME")]),
            ("Conv", 2, ["group": .int(0)]),
            ("Conv", 2, ["kernel_shape": .ints([3, 3, 3, 3])]),
            ("Conv", 2, ["strides": .ints([1, 1]), "pads": .ints([1, 1])]),
            ("MaxPool", 1, ["kernel_shape": .ints([2, 2]), "strides": .ints([0, 1])]),
            ("AveragePool", 1, ["kernel_shape": .ints([2, 2]), "dilations": .ints([2, 2])]),
            ("BatchNormalization", 5, ["training_mode": .int(1)]),
            ("Resize", 3, ["mode": .string("area")]),
        ]
        for (op, n, attrs) in cases {
            XCTAssertThrowsError(try makeOperator(op, inputs: n, attributes: attrs, opset: 13), "\(op) \(attrs)") { e in
                XCTAssertTrue("\(e)".contains("test_\(op)"), "\(e)")
            }
        }
        // run-time shape errors
        let conv = try makeOperator("Conv", inputs: 2)
        XCTAssertThrowsError(try conv.forward([kernelPattern([1, 3, 5, 5]), kernelPattern([2, 2, 3, 3])]))
        XCTAssertThrowsError(try conv.forward([kernelPattern([1, 2, 2, 2]), kernelPattern([2, 2, 3, 3])]))
        let pool = try makeOperator("MaxPool", inputs: 1, attributes: ["kernel_shape": .ints([2, 2])])
        XCTAssertThrowsError(try pool.forward([kernelPattern([2, 2])]))
    }
}
