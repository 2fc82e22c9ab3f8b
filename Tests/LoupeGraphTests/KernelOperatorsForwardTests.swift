import XCTest
import LoupeTensor
@testable import LoupeGraph

/// Small exactly-representable test inputs: ((i·a) mod m)/d − 1, mirrored in the PyTorch
/// script that produced the expected numbers below (torch 2.x, float32).
func kernelPattern(_ shape: [Int], _ a: Int = 7, _ m: Int = 11, _ d: Float = 5) -> Tensor {
    let n = shape.reduce(1, *)
    return try! Tensor(shape: shape, floats: (0..<n).map { Float(($0 * a) % m) / d - 1 })
}

func assertKernelValues(_ t: Tensor, _ shape: [Int], _ expected: [Float], accuracy: Float = 2e-5,
                  file: StaticString = #filePath, line: UInt = #line) throws {
    XCTAssertEqual(t.shape, shape, file: file, line: line)
    let v = try t.floats()
    XCTAssertEqual(v.count, expected.count, file: file, line: line)
    for i in 0..<min(v.count, expected.count) {
        XCTAssertEqual(v[i], expected[i], accuracy: accuracy * max(1, abs(expected[i])), "element \(i)", file: file, line: line)
    }
}

final class KernelOperatorsForwardTests: XCTestCase {
    let x = kernelPattern([1, 2, 5, 5])
    let w = kernelPattern([3, 2, 3, 3], 5, 13, 6)
    let b = try! Tensor(shape: [3], floats: [0.1, -0.2, 0.3])

    func testConvAsymmetricPadsStride2AgainstPyTorch() throws {
        let op = try makeOperator("Conv", inputs: 3, attributes: ["strides": .ints([2, 2]), "pads": .ints([1, 0, 2, 1])])
        try assertKernelValues(try op.forward([x, w, b])[0], [1, 3, 3, 2], [
            0.3, -0.566667, -0.0333333, 1.56667, -1.5, -0.333333, 0.533333, 0.866667, 0.533333, -1.04308e-07,
            -2.33333, 1.7, 1.13333, 2.66667, 2.76667, -1.2, -1.93333, 2.36667], accuracy: 1e-5)
    }

    func testConvSameUpperAndDepthwiseDilatedAgainstPyTorch() throws {
        let same = try makeOperator("Conv", inputs: 2, attributes: ["strides": .ints([2, 2]), "auto_pad": .string("SAME_UPPER"),
                                                                  "kernel_shape": .ints([3, 3])])
        try assertKernelValues(try same.forward([x, w])[0], [1, 3, 3, 3], [
            -1.13333, 1.96667, -0.733333, -0.666667, -0.8, 0.6, -0.466667, 0.266667, -0.366667, 0.933333, 0.533333,
            -0.933333, -1.23333, 1.56667, 0.933333, 0.533333, 1.16667, -1.26667, 2.56667, -1.33333, -1.13333,
            -2.23333, 1.76667, 1.26667, 0.666667, 1.2, -0.866667])
        let dw = try makeOperator("Conv", inputs: 2, attributes: ["group": .int(2), "dilations": .ints([2, 2]), "pads": .ints([2, 2, 2, 2])])
        let y = try dw.forward([x, kernelPattern([2, 1, 3, 3], 3, 7, 4)])[0]
        try assertKernelValues(y, [1, 2, 5, 5], [
            0.15, 0.45, -0.4, 0.45, -0.75, -0.55, 1.4, -0.75, -0.6, 0.95, -0.65, 0.55, 1.75, -0.65, 0.8, -0.4, -0.75,
            1.6, -0.3, -0.75, 1.15, -0.3, 0.35, 1.3, -0.25, 0.3, 0, -0.95, -0.7, 0.8, -0.1, 0.7, 1, -0.35, -0.5, -1.15,
            0.4, 1, -0.85, -1, -0.25, -0.35, 0.8, 1.4, -0.75, -0.75, -0.85, 0.2, 1.1, -1.05])
    }

    func testConvTransposeOutputPaddingAgainstPyTorch() throws {
        let op = try makeOperator("ConvTranspose", inputs: 3, attributes: ["strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1]),
                                                                         "output_padding": .ints([1, 1])])
        let y = try op.forward([kernelPattern([1, 2, 3, 3]), kernelPattern([2, 3, 3, 3], 5, 13, 6), b])[0]
        XCTAssertEqual(y.shape, [1, 3, 6, 6])
        let v = try y.floats()
        let head: [Float] = [0.533333, -1.4, -0.0333333, 0.666667, -0.966667, 0.0333333, -0.8, 0.966667, 0.166667, 0.233333, 1.5, -0.633333]
        let tail: [Float] = [-0.2, 1.26667, 0.966667, -0.766667, 0.366667, -0.733333, 0.9, 1.06667, -0.766667, 0.966667]
        for i in 0..<head.count { XCTAssertEqual(v[i], head[i], accuracy: 1e-5) }
        for i in 0..<tail.count { XCTAssertEqual(v[v.count - tail.count + i], tail[i], accuracy: 1e-5) }
        // output_shape 6x6 gives the same result with the pads derived from it
        let viaShape = try makeOperator("ConvTranspose", inputs: 3, attributes: ["strides": .ints([2, 2]), "output_shape": .ints([6, 6])])
        XCTAssertEqual(try viaShape.forward([kernelPattern([1, 2, 3, 3]), kernelPattern([2, 3, 3, 3], 5, 13, 6), b])[0].shape, [1, 3, 6, 6])
    }

    func testPoolingAgainstPyTorch() throws {
        let x7 = kernelPattern([1, 2, 7, 7], 5, 17, 4)
        let common: [String: Attribute] = ["kernel_shape": .ints([3, 3]), "strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1])]
        var attrs = common; attrs["ceil_mode"] = .int(1)
        try assertKernelValues(try makeOperator("MaxPool", inputs: 1, attributes: attrs).forward([x7])[0], [1, 2, 4, 4], [
            0.5, 3, 3, 2.5, 1, 3, 3, 3, 1.5, 2.75, 2.25, 3, 1.75, 3, 2.5, 2.5, 2.25, 2.25, 3, 3, 2.75, 2.75, 3, 3, 3, 3,
            2.75, 1, 2.25, 1.75, 3, 1.25])
        attrs["count_include_pad"] = .int(1)
        try assertKernelValues(try makeOperator("AveragePool", inputs: 1, attributes: attrs).forward([x7])[0], [1, 2, 4, 4], [
            -0.111111, 1.08333, 0.861111, 0.777778, 0.0833333, 1.05556, 0.722222, 1.41667, 0.416667, 1.08333, 0.75,
            0.805556, 0.444444, 0.972222, 0.75, 0.388889, 0.666667, 0.361111, 1.08333, 0.611111, 1.25, 0.916667,
            1.05556, 0.222222, 1.11111, 0.944444, 1.08333, 0.0833333, 0.277778, 0.25, 0.972222, 0.222222])
        try assertKernelValues(try makeOperator("AveragePool", inputs: 1, attributes: common).forward([x7])[0], [1, 2, 4, 4], [
            -0.25, 1.625, 1.29167, 1.75, 0.125, 1.05556, 0.722222, 2.125, 0.625, 1.08333, 0.75, 1.20833, 1, 1.45833,
            1.125, 0.875, 1.5, 0.541667, 1.625, 1.375, 1.875, 0.916667, 1.05556, 0.333333, 1.66667, 0.944444, 1.08333,
            0.125, 0.625, 0.375, 1.45833, 0.5])
        XCTAssertThrowsError(try makeOperator("MaxPool", inputs: 1, outputs: 2, attributes: common)) { e in
            XCTAssertTrue("\(e)".contains("Indices"), "\(e)")
        }
        XCTAssertThrowsError(try makeOperator("MaxPool", inputs: 1))
        let g = try makeOperator("GlobalAveragePool", inputs: 1).forward([x7])[0]
        XCTAssertEqual(g.shape, [1, 2, 1, 1])
        let xs = try x7.floats()
        XCTAssertEqual(try g.floats()[1], xs[49...].reduce(0, +) / 49, accuracy: 1e-5)
        XCTAssertEqual(try makeOperator("GlobalMaxPool", inputs: 1).forward([x7])[0].floats()[0], xs[..<49].max()!)
    }

    func testResizeAgainstPyTorch() throws {
        let x4 = kernelPattern([1, 1, 3, 4], 5, 13, 3)
        let sizes = Tensor(ints: [1, 1, 5, 7])
        let linear = try makeOperator("Resize", inputs: 4, attributes: ["mode": .string("linear"), "coordinate_transformation_mode": .string("pytorch_half_pixel")])
        try assertKernelValues(try linear.forward([x4, nil, nil, sizes])[0], [1, 1, 5, 7], [
            -1, -0.404762, 0.547619, 1.5, 2.14286, 0.619047, -0.333333, -0.0666666, 0.528572, 1.48095, 1.56667, 1.46667,
            0.933333, 0.6, 1.33333, 1.92857, 2.88095, 1.66667, 0.452381, 1.40476, 2, 0.133333, 0.728571, 1.68095,
            1.76667, 1.66667, 1.13333, 0.8, -0.666667, -0.0714285, 0.880952, 1.83333, 2.47619, 0.95238, 0])
        let corners = try makeOperator("Resize", inputs: 4, attributes: ["mode": .string("linear"), "coordinate_transformation_mode": .string("align_corners")])
        try assertKernelValues(try corners.forward([x4, nil, nil, sizes])[0], [1, 1, 5, 7], [
            -1, -0.166667, 0.666667, 1.5, 2.33333, 1, -0.333333, 0.166667, 1, 1.83333, 1.58333, 1.33333, 1.08333,
            0.833333, 1.33333, 2.16667, 3, 1.66667, 0.333333, 1.16667, 2, 0.333333, 1.16667, 2, 1.75, 1.5, 1.25, 1,
            -0.666667, 0.166667, 1, 1.83333, 2.66667, 1.33333, 0])
        let nearest2x: [Float] = [
            -1, -1, 0.666667, 0.666667, 2.33333, 2.33333, -0.333333, -0.333333, -1, -1, 0.666667, 0.666667, 2.33333,
            2.33333, -0.333333, -0.333333, 1.33333, 1.33333, 3, 3, 0.333333, 0.333333, 2, 2, 1.33333, 1.33333, 3, 3,
            0.333333, 0.333333, 2, 2, -0.666667, -0.666667, 1, 1, 2.66667, 2.66667, 0, 0, -0.666667, -0.666667, 1, 1,
            2.66667, 2.66667, 0, 0]
        let scales = try Tensor(shape: [4], floats: [1, 1, 2, 2])
        let nearest = try makeOperator("Resize", inputs: 3, attributes: ["mode": .string("nearest")])
        try assertKernelValues(try nearest.forward([x4, nil, scales])[0], [1, 1, 6, 8], nearest2x)
        let upsample = try makeOperator("Upsample", inputs: 2, attributes: ["mode": .string("nearest")], opset: 9)
        try assertKernelValues(try upsample.forward([x4, scales])[0], [1, 1, 6, 8], nearest2x)
        XCTAssertThrowsError(try makeOperator("Upsample", inputs: 2, attributes: ["mode": .string("cubic")], opset: 9))
        // nearest_mode variants at a half-way source coordinate (asymmetric, scale 2/3: x = 1.5·o)
        let x1 = try Tensor(shape: [1, 1, 1, 4], floats: [10, 20, 30, 40])
        let s = try Tensor(shape: [4], floats: [1, 1, 1, 2.0 / 3.0])
        for (mode, expected) in [("round_prefer_floor", [Float](arrayLiteral: 10, 20)), ("round_prefer_ceil", [10, 30]),
                                 ("floor", [10, 20]), ("ceil", [10, 30])] {
            let op = try makeOperator("Resize", inputs: 3, attributes: ["nearest_mode": .string(mode), "coordinate_transformation_mode": .string("asymmetric")])
            XCTAssertEqual(try op.forward([x1, nil, s])[0].floats(), expected, mode)
        }
    }

    func testNormalizationAndSoftmaxAgainstPyTorch() throws {
        let xl = kernelPattern([2, 3, 4], 5, 13, 3)
        let ln = try makeOperator("LayerNormalization", inputs: 3, outputs: 3, attributes: ["axis": .int(1)])
        let outs = try ln.forward([xl, kernelPattern([3, 4], 3, 7, 2), kernelPattern([3, 4], 2, 5, 3)])
        try assertKernelValues(outs[0], [2, 3, 4], [
            0.516014, -0.44162, 2.49907, -0.666667, 0.454804, -1.80132, -0.809795, -0.489646, -1.29473, 0.0866293, -1,
            -1.43786, -1.4619, -1.15815, -0.326523, -0.666667, -1.68263, -1.09898, 1.18434, 0.927204, -0.303745,
            -2.7714, -1, 1.54726], accuracy: 1e-4)
        XCTAssertEqual(outs[1].shape, [2, 1, 1])
        let inst = try makeOperator("InstanceNormalization", inputs: 3)
        let yi = try inst.forward([x, try Tensor(shape: [2], floats: [1.5, -0.5]), try Tensor(shape: [2], floats: [0.2, 0.1])])[0]
        let vi = try yi.floats()
        XCTAssertEqual(vi[0], -2.06776, accuracy: 1e-4)
        XCTAssertEqual(vi[24], -0.65041, accuracy: 1e-4)
        XCTAssertEqual(vi[25], -0.664524, accuracy: 1e-4)
        XCTAssertEqual(vi[49], 0.588794, accuracy: 1e-4)
        let sm = try makeOperator("Softmax", inputs: 1, attributes: ["axis": .int(1)], opset: 13)
        try assertKernelValues(try sm.forward([xl])[0], [2, 3, 4], [
            0.0786914, 0.0786914, 0.395109, 0.0786914, 0.811486, 0.811486, 0.0534722, 0.811486, 0.109823, 0.109823,
            0.551419, 0.109823, 0.395109, 0.0786914, 0.0786914, 0.395109, 0.0534722, 0.811486, 0.811486, 0.0534722,
            0.551419, 0.109823, 0.109823, 0.551419])
        let lsm = try makeOperator("LogSoftmax", inputs: 1, opset: 13)
        let lv = try lsm.forward([xl])[0].floats()
        XCTAssertEqual(lv[0], -3.5911, accuracy: 1e-4)
        XCTAssertEqual(lv[23], -0.552716, accuracy: 1e-4)
        // opset 11 coerces to 2-D at axis 1: each batch row of 12 sums to one
        let old = try makeOperator("Softmax", inputs: 1, opset: 11).forward([xl])[0].floats()
        XCTAssertEqual(old[0..<12].reduce(0, +), 1, accuracy: 1e-5)
        XCTAssertEqual(old[12..<24].reduce(0, +), 1, accuracy: 1e-5)
        // BatchNormalization inference: hand-computed for one channel
        let bn = try makeOperator("BatchNormalization", inputs: 5)
        let xb = try Tensor(shape: [1, 2, 1, 2], floats: [1, 2, 3, 4])
        let y = try bn.forward([xb, try Tensor(shape: [2], floats: [2, 1]), try Tensor(shape: [2], floats: [0.5, 0]),
                                try Tensor(shape: [2], floats: [1, 3]), try Tensor(shape: [2], floats: [4 - 1e-5, 1 - 1e-5])])[0]
        try assertKernelValues(y, [1, 2, 1, 2], [0.5, 1.5, 0, 1])
        XCTAssertThrowsError(try makeOperator("BatchNormalization", inputs: 5, attributes: ["training_mode": .int(1)]))
    }

    func testGemmAndMatMul() throws {
        let a = try Tensor(shape: [3, 2], floats: [1, 2, 3, 4, 5, 6]) // A^T is 2x3
        let bm = try Tensor(shape: [3, 2], floats: [1, 0, 0, 1, 1, 1])
        let c = try Tensor(shape: [2], floats: [10, 20])
        let op = try makeOperator("Gemm", inputs: 3, attributes: ["transA": .int(1), "alpha": .float(2), "beta": .float(0.5)])
        // A^T·B = [[1+5, 3+5], [2+6, 4+6]] = [[6, 8], [8, 10]]
        try assertKernelValues(try op.forward([a, bm, c])[0], [2, 2], [17, 26, 21, 30])
        let noC = try makeOperator("Gemm", inputs: 2, attributes: ["transB": .int(1)])
        try assertKernelValues(try noC.forward([a, a])[0], [3, 3], [5, 11, 17, 11, 25, 39, 17, 39, 61])
        let mm = try makeOperator("MatMul", inputs: 2)
        XCTAssertEqual(try mm.forward([kernelPattern([2, 1, 3, 4]), kernelPattern([3, 4, 5])])[0].shape, [2, 3, 3, 5])
        XCTAssertThrowsError(try mm.forward([kernelPattern([2, 3]), kernelPattern([2, 3])]))
    }
}
