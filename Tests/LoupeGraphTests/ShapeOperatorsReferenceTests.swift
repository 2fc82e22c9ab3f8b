// Expected values: each case is a single-node ONNX model run through
// onnx.reference.ReferenceEvaluator (onnx 1.23.2); onnxruntime 1.32 gave identical outputs for
// every case it implements (all but oneHotAxis0's int64-values/float-depth combination). Inputs
// are arange-based so the literals can also be checked by hand.
import XCTest
import LoupeTensor
@testable import LoupeGraph

final class ShapeOperatorsReferenceTests: XCTestCase {
    func test_shape() throws {
        let y = try runShapeOp("Shape", opset: 17, attributes: [:], outputs: 1,
                               inputs: [try Tensor(shape: [2, 3, 4], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5, 9.0, 9.5, 10.0, 10.5])])
        XCTAssertEqual(y[0], try Tensor(shape: [3], ints: [2, 3, 4]))
    }

    func test_shapeStartEnd() throws {
        let y = try runShapeOp("Shape", opset: 15, attributes: ["start": .int(1)], outputs: 1,
                               inputs: [try Tensor(shape: [2, 3, 4], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5, 9.0, 9.5, 10.0, 10.5])])
        XCTAssertEqual(y[0], try Tensor(shape: [2], ints: [3, 4]))
    }

    func test_shapeNegativeEnd() throws {
        let y = try runShapeOp("Shape", opset: 15, attributes: ["end": .int(-1)], outputs: 1,
                               inputs: [try Tensor(shape: [2, 3, 4], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5, 9.0, 9.5, 10.0, 10.5])])
        XCTAssertEqual(y[0], try Tensor(shape: [2], ints: [2, 3]))
    }

    func test_shapeClamped() throws {
        let y = try runShapeOp("Shape", opset: 15, attributes: ["start": .int(-5), "end": .int(10)], outputs: 1,
                               inputs: [try Tensor(shape: [2, 3, 4], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5, 9.0, 9.5, 10.0, 10.5])])
        XCTAssertEqual(y[0], try Tensor(shape: [3], ints: [2, 3, 4]))
    }

    func test_size() throws {
        let y = try runShapeOp("Size", opset: 17, attributes: [:], outputs: 1,
                               inputs: [try Tensor(shape: [2, 3, 4], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5, 9.0, 9.5, 10.0, 10.5])])
        XCTAssertEqual(y[0], try Tensor(shape: [], ints: [24]))
    }

    func test_reshapeZeroCopiesAndInfer() throws {
        let y = try runShapeOp("Reshape", opset: 17, attributes: [:], outputs: 1,
                               inputs: [try Tensor(shape: [2, 3, 4], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5, 9.0, 9.5, 10.0, 10.5]), try Tensor(shape: [2], ints: [0, -1])])
        XCTAssertEqual(y[0], try Tensor(shape: [2, 12], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5, 9.0, 9.5, 10.0, 10.5]))
    }

    func test_reshapeFlat() throws {
        let y = try runShapeOp("Reshape", opset: 17, attributes: [:], outputs: 1,
                               inputs: [try Tensor(shape: [2, 3, 4], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5, 9.0, 9.5, 10.0, 10.5]), try Tensor(shape: [1], ints: [-1])])
        XCTAssertEqual(y[0], try Tensor(shape: [24], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5, 9.0, 9.5, 10.0, 10.5]))
    }

    func test_reshapeAllowZero() throws {
        let y = try runShapeOp("Reshape", opset: 14, attributes: ["allowzero": .int(1)], outputs: 1,
                               inputs: [try Tensor(shape: [0, 3], floats: []), try Tensor(shape: [2], ints: [3, 0])])
        XCTAssertEqual(y[0], try Tensor(shape: [3, 0], floats: []))
    }

    func test_reshapeInt64() throws {
        let y = try runShapeOp("Reshape", opset: 17, attributes: [:], outputs: 1,
                               inputs: [try Tensor(shape: [6], ints: [1, 2, 3, 4, 5, 6]), try Tensor(shape: [2], ints: [3, 2])])
        XCTAssertEqual(y[0], try Tensor(shape: [3, 2], ints: [1, 2, 3, 4, 5, 6]))
    }

    func test_reshapeBool() throws {
        let y = try runShapeOp("Reshape", opset: 17, attributes: [:], outputs: 1,
                               inputs: [try Tensor(shape: [4], bools: [true, false, false, true]), try Tensor(shape: [2], ints: [2, -1])])
        XCTAssertEqual(y[0], try Tensor(shape: [2, 2], bools: [true, false, false, true]))
    }

    func test_flattenAxis0() throws {
        let y = try runShapeOp("Flatten", opset: 17, attributes: ["axis": .int(0)], outputs: 1,
                               inputs: [try Tensor(shape: [2, 3, 4], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5, 9.0, 9.5, 10.0, 10.5])])
        XCTAssertEqual(y[0], try Tensor(shape: [1, 24], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5, 9.0, 9.5, 10.0, 10.5]))
    }

    func test_flattenAxis2() throws {
        let y = try runShapeOp("Flatten", opset: 17, attributes: ["axis": .int(2)], outputs: 1,
                               inputs: [try Tensor(shape: [2, 3, 4], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5, 9.0, 9.5, 10.0, 10.5])])
        XCTAssertEqual(y[0], try Tensor(shape: [6, 4], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5, 9.0, 9.5, 10.0, 10.5]))
    }

    func test_flattenNegative() throws {
        let y = try runShapeOp("Flatten", opset: 17, attributes: ["axis": .int(-1)], outputs: 1,
                               inputs: [try Tensor(shape: [2, 3, 4], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5, 9.0, 9.5, 10.0, 10.5])])
        XCTAssertEqual(y[0], try Tensor(shape: [6, 4], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5, 9.0, 9.5, 10.0, 10.5]))
    }

    func test_squeezeAttr() throws {
        let y = try runShapeOp("Squeeze", opset: 11, attributes: ["axes": .ints([0, 2])], outputs: 1,
                               inputs: [try Tensor(shape: [1, 3, 1, 2], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5])])
        XCTAssertEqual(y[0], try Tensor(shape: [3, 2], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5]))
    }

    func test_squeezeInput() throws {
        let y = try runShapeOp("Squeeze", opset: 13, attributes: [:], outputs: 1,
                               inputs: [try Tensor(shape: [1, 3, 1, 2], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5]), try Tensor(shape: [1], ints: [-2])])
        XCTAssertEqual(y[0], try Tensor(shape: [1, 3, 2], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5]))
    }

    func test_squeezeAll() throws {
        let y = try runShapeOp("Squeeze", opset: 13, attributes: [:], outputs: 1,
                               inputs: [try Tensor(shape: [1, 3, 1, 2], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5])])
        XCTAssertEqual(y[0], try Tensor(shape: [3, 2], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5]))
    }

    func test_unsqueezeAttr() throws {
        let y = try runShapeOp("Unsqueeze", opset: 11, attributes: ["axes": .ints([0, 3])], outputs: 1,
                               inputs: [try Tensor(shape: [2, 3], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5])])
        XCTAssertEqual(y[0], try Tensor(shape: [1, 2, 3, 1], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5]))
    }

    func test_unsqueezeInput() throws {
        let y = try runShapeOp("Unsqueeze", opset: 13, attributes: [:], outputs: 1,
                               inputs: [try Tensor(shape: [2, 3], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5]), try Tensor(shape: [1], ints: [-1])])
        XCTAssertEqual(y[0], try Tensor(shape: [2, 3, 1], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5]))
    }

    func test_unsqueezeScalarInt() throws {
        let y = try runShapeOp("Unsqueeze", opset: 13, attributes: [:], outputs: 1,
                               inputs: [try Tensor(shape: [], ints: [5]), try Tensor(shape: [1], ints: [0])])
        XCTAssertEqual(y[0], try Tensor(shape: [1], ints: [5]))
    }

    func test_transposeDefault() throws {
        let y = try runShapeOp("Transpose", opset: 17, attributes: [:], outputs: 1,
                               inputs: [try Tensor(shape: [2, 3, 4], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5, 9.0, 9.5, 10.0, 10.5])])
        XCTAssertEqual(y[0], try Tensor(shape: [4, 3, 2], floats: [-1.0, 5.0, 1.0, 7.0, 3.0, 9.0, -0.5, 5.5, 1.5, 7.5, 3.5, 9.5, 0.0, 6.0, 2.0, 8.0, 4.0, 10.0, 0.5, 6.5, 2.5, 8.5, 4.5, 10.5]))
    }

    func test_transposeNHWC() throws {
        let y = try runShapeOp("Transpose", opset: 17, attributes: ["perm": .ints([0, 2, 3, 1])], outputs: 1,
                               inputs: [try Tensor(shape: [1, 2, 3, 4], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5, 9.0, 9.5, 10.0, 10.5])])
        XCTAssertEqual(y[0], try Tensor(shape: [1, 3, 4, 2], floats: [-1.0, 5.0, -0.5, 5.5, 0.0, 6.0, 0.5, 6.5, 1.0, 7.0, 1.5, 7.5, 2.0, 8.0, 2.5, 8.5, 3.0, 9.0, 3.5, 9.5, 4.0, 10.0, 4.5, 10.5]))
    }

    func test_transposeNCHW() throws {
        let y = try runShapeOp("Transpose", opset: 17, attributes: ["perm": .ints([0, 3, 1, 2])], outputs: 1,
                               inputs: [try Tensor(shape: [1, 3, 4, 2], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5, 9.0, 9.5, 10.0, 10.5])])
        XCTAssertEqual(y[0], try Tensor(shape: [1, 2, 3, 4], floats: [-1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, -0.5, 0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5, 9.5, 10.5]))
    }

    func test_transposeHeads() throws {
        let y = try runShapeOp("Transpose", opset: 17, attributes: ["perm": .ints([0, 2, 1, 3])], outputs: 1,
                               inputs: [try Tensor(shape: [1, 3, 2, 2], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5])])
        XCTAssertEqual(y[0], try Tensor(shape: [1, 2, 3, 2], floats: [-1.0, -0.5, 1.0, 1.5, 3.0, 3.5, 0.0, 0.5, 2.0, 2.5, 4.0, 4.5]))
    }

    func test_transpose0321() throws {
        let y = try runShapeOp("Transpose", opset: 17, attributes: ["perm": .ints([0, 3, 2, 1])], outputs: 1,
                               inputs: [try Tensor(shape: [2, 2, 3, 2], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5, 9.0, 9.5, 10.0, 10.5])])
        XCTAssertEqual(y[0], try Tensor(shape: [2, 2, 3, 2], floats: [-1.0, 2.0, 0.0, 3.0, 1.0, 4.0, -0.5, 2.5, 0.5, 3.5, 1.5, 4.5, 5.0, 8.0, 6.0, 9.0, 7.0, 10.0, 5.5, 8.5, 6.5, 9.5, 7.5, 10.5]))
    }

    func test_transposeInt64() throws {
        let y = try runShapeOp("Transpose", opset: 17, attributes: ["perm": .ints([1, 0])], outputs: 1,
                               inputs: [try Tensor(shape: [2, 3], ints: [1, 2, 3, 4, 5, 6])])
        XCTAssertEqual(y[0], try Tensor(shape: [3, 2], ints: [1, 4, 2, 5, 3, 6]))
    }

    func test_transposeBool() throws {
        let y = try runShapeOp("Transpose", opset: 17, attributes: ["perm": .ints([1, 0])], outputs: 1,
                               inputs: [try Tensor(shape: [2, 3], bools: [true, false, false, true, true, false])])
        XCTAssertEqual(y[0], try Tensor(shape: [3, 2], bools: [true, true, false, true, false, false]))
    }

    func test_concatAxis1() throws {
        let y = try runShapeOp("Concat", opset: 17, attributes: ["axis": .int(1)], outputs: 1,
                               inputs: [try Tensor(shape: [2, 1], floats: [-1.0, -0.5]), try Tensor(shape: [2, 3], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5])])
        XCTAssertEqual(y[0], try Tensor(shape: [2, 4], floats: [-1.0, -1.0, -0.5, 0.0, -0.5, 0.5, 1.0, 1.5]))
    }

    func test_concatNegativeAxis() throws {
        let y = try runShapeOp("Concat", opset: 17, attributes: ["axis": .int(-1)], outputs: 1,
                               inputs: [try Tensor(shape: [2, 2], floats: [-1.0, -0.5, 0.0, 0.5]), try Tensor(shape: [2, 1], floats: [7.0, 8.0])])
        XCTAssertEqual(y[0], try Tensor(shape: [2, 3], floats: [-1.0, -0.5, 7.0, 0.0, 0.5, 8.0]))
    }

    func test_concatShapeInt64() throws {
        let y = try runShapeOp("Concat", opset: 17, attributes: ["axis": .int(0)], outputs: 1,
                               inputs: [try Tensor(shape: [1], ints: [1]), try Tensor(shape: [0], ints: []), try Tensor(shape: [2], ints: [-1, 64])])
        XCTAssertEqual(y[0], try Tensor(shape: [3], ints: [1, -1, 64]))
    }

    func test_concatBool() throws {
        let y = try runShapeOp("Concat", opset: 17, attributes: ["axis": .int(0)], outputs: 1,
                               inputs: [try Tensor(shape: [1, 2], bools: [true, false]), try Tensor(shape: [1, 2], bools: [false, true])])
        XCTAssertEqual(y[0], try Tensor(shape: [2, 2], bools: [true, false, false, true]))
    }

    func test_splitAttr() throws {
        let y = try runShapeOp("Split", opset: 11, attributes: ["axis": .int(1), "split": .ints([1, 2])], outputs: 2,
                               inputs: [try Tensor(shape: [2, 3], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5])])
        XCTAssertEqual(y[0], try Tensor(shape: [2, 1], floats: [-1.0, 0.5]))
        XCTAssertEqual(y[1], try Tensor(shape: [2, 2], floats: [-0.5, 0.0, 1.0, 1.5]))
    }

    func test_splitInput() throws {
        let y = try runShapeOp("Split", opset: 13, attributes: ["axis": .int(0)], outputs: 2,
                               inputs: [try Tensor(shape: [5, 2], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5]), try Tensor(shape: [2], ints: [2, 3])])
        XCTAssertEqual(y[0], try Tensor(shape: [2, 2], floats: [-1.0, -0.5, 0.0, 0.5]))
        XCTAssertEqual(y[1], try Tensor(shape: [3, 2], floats: [1.0, 1.5, 2.0, 2.5, 3.0, 3.5]))
    }

    func test_splitEven() throws {
        let y = try runShapeOp("Split", opset: 13, attributes: ["axis": .int(-1)], outputs: 2,
                               inputs: [try Tensor(shape: [2, 4], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5])])
        XCTAssertEqual(y[0], try Tensor(shape: [2, 2], floats: [-1.0, -0.5, 1.0, 1.5]))
        XCTAssertEqual(y[1], try Tensor(shape: [2, 2], floats: [0.0, 0.5, 2.0, 2.5]))
    }

    func test_splitNumOutputs() throws {
        let y = try runShapeOp("Split", opset: 18, attributes: ["axis": .int(0), "num_outputs": .int(3)], outputs: 3,
                               inputs: [try Tensor(shape: [7], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0])])
        XCTAssertEqual(y[0], try Tensor(shape: [3], floats: [-1.0, -0.5, 0.0]))
        XCTAssertEqual(y[1], try Tensor(shape: [3], floats: [0.5, 1.0, 1.5]))
        XCTAssertEqual(y[2], try Tensor(shape: [1], floats: [2.0]))
    }

    func test_splitInt64() throws {
        let y = try runShapeOp("Split", opset: 13, attributes: [:], outputs: 2,
                               inputs: [try Tensor(shape: [4], ints: [1, 2, 3, 4])])
        XCTAssertEqual(y[0], try Tensor(shape: [2], ints: [1, 2]))
        XCTAssertEqual(y[1], try Tensor(shape: [2], ints: [3, 4]))
    }

    func test_sliceBasic() throws {
        let y = try runShapeOp("Slice", opset: 13, attributes: [:], outputs: 1,
                               inputs: [try Tensor(shape: [4, 5], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5]), try Tensor(shape: [2], ints: [1, 0]), try Tensor(shape: [2], ints: [3, 4])])
        XCTAssertEqual(y[0], try Tensor(shape: [2, 4], floats: [1.5, 2.0, 2.5, 3.0, 4.0, 4.5, 5.0, 5.5]))
    }

    func test_sliceNegativeStep() throws {
        let y = try runShapeOp("Slice", opset: 13, attributes: [:], outputs: 1,
                               inputs: [try Tensor(shape: [4, 5], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5]), try Tensor(shape: [1], ints: [-1]), try Tensor(shape: [1], ints: [-9223372036854775807]), try Tensor(shape: [1], ints: [1]), try Tensor(shape: [1], ints: [-2])])
        XCTAssertEqual(y[0], try Tensor(shape: [4, 3], floats: [1.0, 0.0, -1.0, 3.5, 2.5, 1.5, 6.0, 5.0, 4.0, 8.5, 7.5, 6.5]))
    }

    func test_sliceInt64MaxEnd() throws {
        let y = try runShapeOp("Slice", opset: 13, attributes: [:], outputs: 1,
                               inputs: [try Tensor(shape: [4, 5], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5]), try Tensor(shape: [1], ints: [1]), try Tensor(shape: [1], ints: [9223372036854775807]), try Tensor(shape: [1], ints: [0])])
        XCTAssertEqual(y[0], try Tensor(shape: [3, 5], floats: [1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5]))
    }

    func test_sliceStepsAxes() throws {
        let y = try runShapeOp("Slice", opset: 13, attributes: [:], outputs: 1,
                               inputs: [try Tensor(shape: [4, 5], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5]), try Tensor(shape: [2], ints: [0, 4]), try Tensor(shape: [2], ints: [4, 0]), try Tensor(shape: [2], ints: [-2, 1]), try Tensor(shape: [2], ints: [2, -1])])
        XCTAssertEqual(y[0], try Tensor(shape: [2, 4], floats: [1.0, 0.5, 0.0, -0.5, 6.0, 5.5, 5.0, 4.5]))
    }

    func test_sliceClamp() throws {
        let y = try runShapeOp("Slice", opset: 13, attributes: [:], outputs: 1,
                               inputs: [try Tensor(shape: [4, 5], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5]), try Tensor(shape: [1], ints: [-100]), try Tensor(shape: [1], ints: [100]), try Tensor(shape: [1], ints: [1]), try Tensor(shape: [1], ints: [3])])
        XCTAssertEqual(y[0], try Tensor(shape: [4, 2], floats: [-1.0, 0.5, 1.5, 3.0, 4.0, 5.5, 6.5, 8.0]))
    }

    func test_sliceEmpty() throws {
        let y = try runShapeOp("Slice", opset: 13, attributes: [:], outputs: 1,
                               inputs: [try Tensor(shape: [4, 5], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5]), try Tensor(shape: [1], ints: [3]), try Tensor(shape: [1], ints: [1]), try Tensor(shape: [1], ints: [0])])
        XCTAssertEqual(y[0], try Tensor(shape: [0, 5], floats: []))
    }

    func test_sliceShapeInt64() throws {
        let y = try runShapeOp("Slice", opset: 13, attributes: [:], outputs: 1,
                               inputs: [try Tensor(shape: [4], ints: [1, 3, 224, 224]), try Tensor(shape: [1], ints: [2]), try Tensor(shape: [1], ints: [9223372036854775807])])
        XCTAssertEqual(y[0], try Tensor(shape: [2], ints: [224, 224]))
    }

    func test_sliceAttributes() throws {
        let y = try runShapeOp("Slice", opset: 9, attributes: ["starts": .ints([1]), "ends": .ints([-1]), "axes": .ints([1])], outputs: 1,
                               inputs: [try Tensor(shape: [4, 5], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5])])
        XCTAssertEqual(y[0], try Tensor(shape: [4, 3], floats: [-0.5, 0.0, 0.5, 2.0, 2.5, 3.0, 4.5, 5.0, 5.5, 7.0, 7.5, 8.0]))
    }

    func test_gatherAxis0Matrix() throws {
        let y = try runShapeOp("Gather", opset: 17, attributes: ["axis": .int(0)], outputs: 1,
                               inputs: [try Tensor(shape: [3, 2], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5]), try Tensor(shape: [2, 2], ints: [0, 1, 1, 2])])
        XCTAssertEqual(y[0], try Tensor(shape: [2, 2, 2], floats: [-1.0, -0.5, 0.0, 0.5, 0.0, 0.5, 1.0, 1.5]))
    }

    func test_gatherAxis1Negative() throws {
        let y = try runShapeOp("Gather", opset: 17, attributes: ["axis": .int(1)], outputs: 1,
                               inputs: [try Tensor(shape: [2, 3], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5]), try Tensor(shape: [2], ints: [-1, 0])])
        XCTAssertEqual(y[0], try Tensor(shape: [2, 2], floats: [0.0, -1.0, 1.5, 0.5]))
    }

    func test_gatherScalarIndex() throws {
        let y = try runShapeOp("Gather", opset: 17, attributes: ["axis": .int(0)], outputs: 1,
                               inputs: [try Tensor(shape: [4], ints: [1, 3, 224, 224]), try Tensor(shape: [], ints: [1])])
        XCTAssertEqual(y[0], try Tensor(shape: [], ints: [3]))
    }

    func test_gatherBool() throws {
        let y = try runShapeOp("Gather", opset: 17, attributes: ["axis": .int(0)], outputs: 1,
                               inputs: [try Tensor(shape: [3], bools: [true, false, true]), try Tensor(shape: [3], ints: [2, 1, 1])])
        XCTAssertEqual(y[0], try Tensor(shape: [3], bools: [true, false, false]))
    }

    func test_gatherElementsAxis1() throws {
        let y = try runShapeOp("GatherElements", opset: 17, attributes: ["axis": .int(1)], outputs: 1,
                               inputs: [try Tensor(shape: [2, 3], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5]), try Tensor(shape: [2, 2], ints: [0, 2, -1, 0])])
        XCTAssertEqual(y[0], try Tensor(shape: [2, 2], floats: [-1.0, 0.0, 1.5, 0.5]))
    }

    func test_gatherElementsAxis0() throws {
        let y = try runShapeOp("GatherElements", opset: 17, attributes: ["axis": .int(0)], outputs: 1,
                               inputs: [try Tensor(shape: [3, 2], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5]), try Tensor(shape: [2, 2], ints: [2, 0, 1, 1])])
        XCTAssertEqual(y[0], try Tensor(shape: [2, 2], floats: [1.0, -0.5, 0.0, 0.5]))
    }

    func test_gatherND() throws {
        let y = try runShapeOp("GatherND", opset: 17, attributes: [:], outputs: 1,
                               inputs: [try Tensor(shape: [2, 2, 2], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5]), try Tensor(shape: [2, 2], ints: [0, 1, 1, 0])])
        XCTAssertEqual(y[0], try Tensor(shape: [2, 2], floats: [0.0, 0.5, 1.0, 1.5]))
    }

    func test_gatherNDFull() throws {
        let y = try runShapeOp("GatherND", opset: 17, attributes: [:], outputs: 1,
                               inputs: [try Tensor(shape: [2, 3], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5]), try Tensor(shape: [2, 2], ints: [1, 2, 0, -1])])
        XCTAssertEqual(y[0], try Tensor(shape: [2], floats: [1.5, 0.0]))
    }

    func test_gatherNDBatch() throws {
        let y = try runShapeOp("GatherND", opset: 13, attributes: ["batch_dims": .int(1)], outputs: 1,
                               inputs: [try Tensor(shape: [2, 2, 2], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5]), try Tensor(shape: [2, 1], ints: [1, 0])])
        XCTAssertEqual(y[0], try Tensor(shape: [2, 2], floats: [0.0, 0.5, 1.0, 1.5]))
    }

    func test_scatterElements() throws {
        let y = try runShapeOp("ScatterElements", opset: 17, attributes: ["axis": .int(0)], outputs: 1,
                               inputs: [try Tensor(shape: [3, 3], floats: [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]), try Tensor(shape: [2, 3], ints: [1, 0, 2, 0, 2, 1]), try Tensor(shape: [2, 3], floats: [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])])
        XCTAssertEqual(y[0], try Tensor(shape: [3, 3], floats: [4.0, 2.0, 0.0, 1.0, 0.0, 6.0, 0.0, 5.0, 3.0]))
    }

    func test_scatterElementsAdd() throws {
        let y = try runShapeOp("ScatterElements", opset: 16, attributes: ["axis": .int(1), "reduction": .string("add")], outputs: 1,
                               inputs: [try Tensor(shape: [1, 5], floats: [1.0, 2.0, 3.0, 4.0, 5.0]), try Tensor(shape: [1, 3], ints: [1, 3, 1]), try Tensor(shape: [1, 3], floats: [1.5, 2.0, 3.0])])
        XCTAssertEqual(y[0], try Tensor(shape: [1, 5], floats: [1.0, 6.5, 3.0, 6.0, 5.0]))
    }

    func test_scatterND() throws {
        let y = try runShapeOp("ScatterND", opset: 17, attributes: [:], outputs: 1,
                               inputs: [try Tensor(shape: [4, 2], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5]), try Tensor(shape: [2, 1], ints: [3, 1]), try Tensor(shape: [2, 2], floats: [9.0, 8.0, 7.0, 6.0])])
        XCTAssertEqual(y[0], try Tensor(shape: [4, 2], floats: [-1.0, -0.5, 7.0, 6.0, 1.0, 1.5, 9.0, 8.0]))
    }

    func test_scatterNDAdd() throws {
        let y = try runShapeOp("ScatterND", opset: 16, attributes: ["reduction": .string("add")], outputs: 1,
                               inputs: [try Tensor(shape: [4], floats: [-1.0, -0.5, 0.0, 0.5]), try Tensor(shape: [3, 1], ints: [1, 1, 3]), try Tensor(shape: [3], floats: [10.0, 20.0, 30.0])])
        XCTAssertEqual(y[0], try Tensor(shape: [4], floats: [-1.0, 29.5, 0.0, 30.5]))
    }

    func test_tile() throws {
        let y = try runShapeOp("Tile", opset: 17, attributes: [:], outputs: 1,
                               inputs: [try Tensor(shape: [2, 2], floats: [-1.0, -0.5, 0.0, 0.5]), try Tensor(shape: [2], ints: [2, 3])])
        XCTAssertEqual(y[0], try Tensor(shape: [4, 6], floats: [-1.0, -0.5, -1.0, -0.5, -1.0, -0.5, 0.0, 0.5, 0.0, 0.5, 0.0, 0.5, -1.0, -0.5, -1.0, -0.5, -1.0, -0.5, 0.0, 0.5, 0.0, 0.5, 0.0, 0.5]))
    }

    func test_tileInt64() throws {
        let y = try runShapeOp("Tile", opset: 17, attributes: [:], outputs: 1,
                               inputs: [try Tensor(shape: [2], ints: [1, 2]), try Tensor(shape: [1], ints: [3])])
        XCTAssertEqual(y[0], try Tensor(shape: [6], ints: [1, 2, 1, 2, 1, 2]))
    }

    func test_padConstant() throws {
        let y = try runShapeOp("Pad", opset: 11, attributes: ["mode": .string("constant")], outputs: 1,
                               inputs: [try Tensor(shape: [2, 3], floats: [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), try Tensor(shape: [4], ints: [0, 1, 1, 0]), try Tensor(shape: [], floats: [1.5])])
        XCTAssertEqual(y[0], try Tensor(shape: [3, 4], floats: [1.5, 1.0, 2.0, 3.0, 1.5, 4.0, 5.0, 6.0, 1.5, 1.5, 1.5, 1.5]))
    }

    func test_padReflect() throws {
        let y = try runShapeOp("Pad", opset: 13, attributes: ["mode": .string("reflect")], outputs: 1,
                               inputs: [try Tensor(shape: [2, 3], floats: [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), try Tensor(shape: [4], ints: [1, 2, 1, 2])])
        XCTAssertEqual(y[0], try Tensor(shape: [4, 7], floats: [6.0, 5.0, 4.0, 5.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 2.0, 3.0, 2.0, 1.0, 6.0, 5.0, 4.0, 5.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 2.0, 3.0, 2.0, 1.0]))
    }

    func test_padEdge() throws {
        let y = try runShapeOp("Pad", opset: 13, attributes: ["mode": .string("edge")], outputs: 1,
                               inputs: [try Tensor(shape: [2, 3], floats: [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), try Tensor(shape: [4], ints: [1, 1, 0, 2])])
        XCTAssertEqual(y[0], try Tensor(shape: [3, 6], floats: [1.0, 1.0, 2.0, 3.0, 3.0, 3.0, 1.0, 1.0, 2.0, 3.0, 3.0, 3.0, 4.0, 4.0, 5.0, 6.0, 6.0, 6.0]))
    }

    func test_padAxes() throws {
        let y = try runShapeOp("Pad", opset: 18, attributes: [:], outputs: 1,
                               inputs: [try Tensor(shape: [2, 3], floats: [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), try Tensor(shape: [2], ints: [2, 1]), nil, try Tensor(shape: [1], ints: [-1])])
        XCTAssertEqual(y[0], try Tensor(shape: [2, 6], floats: [0.0, 0.0, 1.0, 2.0, 3.0, 0.0, 0.0, 0.0, 4.0, 5.0, 6.0, 0.0]))
    }

    func test_padWrap() throws {
        let y = try runShapeOp("Pad", opset: 19, attributes: ["mode": .string("wrap")], outputs: 1,
                               inputs: [try Tensor(shape: [2, 3], floats: [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), try Tensor(shape: [4], ints: [1, 2, 0, 2])])
        XCTAssertEqual(y[0], try Tensor(shape: [3, 7], floats: [5.0, 6.0, 4.0, 5.0, 6.0, 4.0, 5.0, 2.0, 3.0, 1.0, 2.0, 3.0, 1.0, 2.0, 5.0, 6.0, 4.0, 5.0, 6.0, 4.0, 5.0]))
    }

    func test_padAttributes() throws {
        let y = try runShapeOp("Pad", opset: 10, attributes: ["pads": .ints([1, 0, 0, 1]), "value": .float(2.0)], outputs: 1,
                               inputs: [try Tensor(shape: [2, 3], floats: [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])])
        XCTAssertEqual(y[0], try Tensor(shape: [3, 4], floats: [2.0, 2.0, 2.0, 2.0, 1.0, 2.0, 3.0, 2.0, 4.0, 5.0, 6.0, 2.0]))
    }

    func test_padInt64() throws {
        let y = try runShapeOp("Pad", opset: 13, attributes: [:], outputs: 1,
                               inputs: [try Tensor(shape: [2], ints: [1, 2]), try Tensor(shape: [2], ints: [1, 2])])
        XCTAssertEqual(y[0], try Tensor(shape: [5], ints: [0, 1, 2, 0, 0]))
    }

    func test_rangeFloat() throws {
        let y = try runShapeOp("Range", opset: 17, attributes: [:], outputs: 1,
                               inputs: [try Tensor(shape: [], floats: [1.0]), try Tensor(shape: [], floats: [2.200000047683716]), try Tensor(shape: [], floats: [0.5])])
        XCTAssertEqual(y[0], try Tensor(shape: [3], floats: [1.0, 1.5, 2.0]))
    }

    func test_rangeInt() throws {
        let y = try runShapeOp("Range", opset: 17, attributes: [:], outputs: 1,
                               inputs: [try Tensor(shape: [], ints: [10]), try Tensor(shape: [], ints: [1]), try Tensor(shape: [], ints: [-3])])
        XCTAssertEqual(y[0], try Tensor(shape: [3], ints: [10, 7, 4]))
    }

    func test_rangeEmpty() throws {
        let y = try runShapeOp("Range", opset: 17, attributes: [:], outputs: 1,
                               inputs: [try Tensor(shape: [], ints: [5]), try Tensor(shape: [], ints: [1]), try Tensor(shape: [], ints: [2])])
        XCTAssertEqual(y[0], try Tensor(shape: [0], ints: []))
    }

    func test_trilUpper() throws {
        let y = try runShapeOp("Trilu", opset: 14, attributes: ["upper": .int(1)], outputs: 1,
                               inputs: [try Tensor(shape: [3, 4], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5]), try Tensor(shape: [], ints: [1])])
        XCTAssertEqual(y[0], try Tensor(shape: [3, 4], floats: [0.0, -0.5, 0.0, 0.5, 0.0, 0.0, 2.0, 2.5, 0.0, 0.0, 0.0, 4.5]))
    }

    func test_trilLower() throws {
        let y = try runShapeOp("Trilu", opset: 14, attributes: ["upper": .int(0)], outputs: 1,
                               inputs: [try Tensor(shape: [2, 3, 2], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5]), try Tensor(shape: [], ints: [-1])])
        XCTAssertEqual(y[0], try Tensor(shape: [2, 3, 2], floats: [0.0, 0.0, 0.0, 0.0, 1.0, 1.5, 0.0, 0.0, 3.0, 0.0, 4.0, 4.5]))
    }

    func test_trilDefault() throws {
        let y = try runShapeOp("Trilu", opset: 14, attributes: [:], outputs: 1,
                               inputs: [try Tensor(shape: [4, 3], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5])])
        XCTAssertEqual(y[0], try Tensor(shape: [4, 3], floats: [-1.0, -0.5, 0.0, 0.0, 1.0, 1.5, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0]))
    }

    func test_trilLowerBig() throws {
        let y = try runShapeOp("Trilu", opset: 14, attributes: ["upper": .int(0)], outputs: 1,
                               inputs: [try Tensor(shape: [2, 3], ints: [1, 2, 3, 4, 5, 6]), try Tensor(shape: [], ints: [5])])
        XCTAssertEqual(y[0], try Tensor(shape: [2, 3], ints: [1, 2, 3, 4, 5, 6]))
    }

    func test_depthToSpaceDCR() throws {
        let y = try runShapeOp("DepthToSpace", opset: 17, attributes: ["blocksize": .int(2)], outputs: 1,
                               inputs: [try Tensor(shape: [1, 8, 1, 2], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5])])
        XCTAssertEqual(y[0], try Tensor(shape: [1, 2, 2, 4], floats: [-1.0, 1.0, -0.5, 1.5, 3.0, 5.0, 3.5, 5.5, 0.0, 2.0, 0.5, 2.5, 4.0, 6.0, 4.5, 6.5]))
    }

    func test_depthToSpaceCRD() throws {
        let y = try runShapeOp("DepthToSpace", opset: 17, attributes: ["blocksize": .int(2), "mode": .string("CRD")], outputs: 1,
                               inputs: [try Tensor(shape: [1, 8, 1, 2], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5])])
        XCTAssertEqual(y[0], try Tensor(shape: [1, 2, 2, 4], floats: [-1.0, 0.0, -0.5, 0.5, 1.0, 2.0, 1.5, 2.5, 3.0, 4.0, 3.5, 4.5, 5.0, 6.0, 5.5, 6.5]))
    }

    func test_spaceToDepth() throws {
        let y = try runShapeOp("SpaceToDepth", opset: 17, attributes: ["blocksize": .int(2)], outputs: 1,
                               inputs: [try Tensor(shape: [1, 2, 2, 4], floats: [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5])])
        XCTAssertEqual(y[0], try Tensor(shape: [1, 8, 1, 2], floats: [-1.0, 0.0, 3.0, 4.0, -0.5, 0.5, 3.5, 4.5, 1.0, 2.0, 5.0, 6.0, 1.5, 2.5, 5.5, 6.5]))
    }

    func test_oneHotLast() throws {
        let y = try runShapeOp("OneHot", opset: 17, attributes: [:], outputs: 1,
                               inputs: [try Tensor(shape: [4], ints: [0, 2, -1, 5]), try Tensor(shape: [], ints: [3]), try Tensor(shape: [2], floats: [0.0, 1.0])])
        XCTAssertEqual(y[0], try Tensor(shape: [4, 3], floats: [1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]))
    }

    func test_oneHotAxis0() throws {
        let y = try runShapeOp("OneHot", opset: 17, attributes: ["axis": .int(0)], outputs: 1,
                               inputs: [try Tensor(shape: [1, 2], ints: [1, 0]), try Tensor(shape: [], floats: [3.0]), try Tensor(shape: [2], ints: [-1, 4])])
        XCTAssertEqual(y[0], try Tensor(shape: [3, 1, 2], ints: [-1, 4, 4, -1, -1, -1]))
    }

    func test_nonZeroFloat() throws {
        let y = try runShapeOp("NonZero", opset: 17, attributes: [:], outputs: 1,
                               inputs: [try Tensor(shape: [2, 3], floats: [0.0, 1.0, 0.0, 2.0, 0.0, 3.0])])
        XCTAssertEqual(y[0], try Tensor(shape: [2, 3], ints: [0, 1, 1, 1, 0, 2]))
    }

    func test_nonZeroBool() throws {
        let y = try runShapeOp("NonZero", opset: 17, attributes: [:], outputs: 1,
                               inputs: [try Tensor(shape: [4], bools: [false, true, true, false])])
        XCTAssertEqual(y[0], try Tensor(shape: [1, 2], ints: [1, 2]))
    }

    func test_constantOfShapeDefault() throws {
        let y = try runShapeOp("ConstantOfShape", opset: 17, attributes: [:], outputs: 1,
                               inputs: [try Tensor(shape: [2], ints: [2, 3])])
        XCTAssertEqual(y[0], try Tensor(shape: [2, 3], floats: [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]))
    }

    func test_constantOfShapeInt() throws {
        let y = try runShapeOp("ConstantOfShape", opset: 17, attributes: ["value": .tensor(try Tensor(shape: [1], ints: [7]))], outputs: 1,
                               inputs: [try Tensor(shape: [1], ints: [3])])
        XCTAssertEqual(y[0], try Tensor(shape: [3], ints: [7, 7, 7]))
    }

    func test_constantOfShapeScalar() throws {
        let y = try runShapeOp("ConstantOfShape", opset: 17, attributes: ["value": .tensor(try Tensor(shape: [1], floats: [2.5]))], outputs: 1,
                               inputs: [try Tensor(shape: [0], ints: [])])
        XCTAssertEqual(y[0], try Tensor(shape: [], floats: [2.5]))
    }
}
