import XCTest
import LoupeTensor
@testable import LoupeGraph

/// Bad inputs and attributes raise typed errors that name the operator (or node) and the fault.
final class ShapeOperatorsErrorTests: XCTestCase {
    let x = try! Tensor(shape: [2, 3], floats: [1, 2, 3, 4, 5, 6])

    func testGatherIndexOutOfRange() {
        assertThrowsNaming(["Gather", "index 3 out of range"]) {
            _ = try runShapeOp("Gather", attributes: ["axis": .int(1)], inputs: [x, Tensor(ints: [0, 3])])
        }
        assertThrowsNaming(["Gather", "index -4"]) {
            _ = try runShapeOp("Gather", attributes: ["axis": .int(1)], inputs: [x, Tensor(ints: [-4])])
        }
        assertThrowsNaming(["GatherElements", "out of range"]) {
            _ = try runShapeOp("GatherElements", inputs: [x, try Tensor(shape: [1, 1], ints: [2])])
        }
        assertThrowsNaming(["Gather", "axis 2 out of range"]) {
            _ = try runShapeOp("Gather", attributes: ["axis": .int(2)], inputs: [x, Tensor(ints: [0])])
        }
    }

    func testGatherTypedError() {
        XCTAssertThrowsError(try runShapeOp("Gather", inputs: [x, Tensor(ints: [5])])) { error in
            guard case let .invalidArgument(op, _)? = error as? TensorError else { return XCTFail("\(error)") }
            XCTAssertEqual(op, "Gather")
        }
    }

    func testReshapeIncompatible() {
        assertThrowsNaming(["test_Reshape", "6 elements"]) {
            _ = try runShapeOp("Reshape", inputs: [x, Tensor(ints: [4, 2])])
        }
        assertThrowsNaming(["test_Reshape", "matching 6 elements"]) {
            _ = try runShapeOp("Reshape", inputs: [x, Tensor(ints: [4, -1])])
        }
        assertThrowsNaming(["test_Reshape", "more than one -1"]) {
            _ = try runShapeOp("Reshape", inputs: [x, Tensor(ints: [-1, -1])])
        }
        assertThrowsNaming(["test_Reshape", "float32"]) {
            _ = try runShapeOp("Reshape", inputs: [x, try Tensor(shape: [1], floats: [6])])
        }
    }

    func testConcatMismatch() {
        XCTAssertThrowsError(try runShapeOp("Concat", attributes: ["axis": .int(0)],
                                            inputs: [x, try Tensor(shape: [1, 2], floats: [0, 0])])) { error in
            guard case let .shapeMismatch(op, _, got)? = error as? TensorError else { return XCTFail("\(error)") }
            XCTAssertEqual(op, "Concat")
            XCTAssertEqual(got, [[2, 3], [1, 2]])
        }
        assertThrowsNaming(["Concat", "int64"]) {
            _ = try runShapeOp("Concat", attributes: ["axis": .int(0)], inputs: [Tensor(ints: [1]), try Tensor(shape: [1], floats: [1])])
        }
        assertThrowsNaming(["Concat", "axis 2"]) {
            _ = try runShapeOp("Concat", attributes: ["axis": .int(2)], inputs: [x, x])
        }
        assertThrowsNaming(["test_Concat", "axis"]) {  // required attribute, at load time
            _ = try makeShapeOp("Concat", inputs: [x, x])
        }
    }

    func testLoadTimeAttributeErrors() {
        assertThrowsNaming(["test_Transpose", "perm"]) {
            _ = try makeShapeOp("Transpose", attributes: ["perm": .ints([0, 0])], inputs: [x])
        }
        assertThrowsNaming(["test_Pad", "mode"]) {
            _ = try makeShapeOp("Pad", opset: 13, attributes: ["mode": .string("mirror")], inputs: [x, Tensor(ints: [0, 0, 0, 0])])
        }
        assertThrowsNaming(["test_Unsqueeze", "2 inputs"]) {
            _ = try makeShapeOp("Unsqueeze", opset: 13, inputs: [x])
        }
        assertThrowsNaming(["test_Split", "num_outputs"]) {
            _ = try makeShapeOp("Split", opset: 18, attributes: ["num_outputs": .int(3)], outputs: 2, inputs: [x])
        }
        assertThrowsNaming(["test_Constant", "value"]) {
            _ = try makeShapeOp("Constant", inputs: [])
        }
        assertThrowsNaming(["test_ScatterND", "reduction"]) {
            _ = try makeShapeOp("ScatterND", opset: 18, attributes: ["reduction": .string("avg")], inputs: [x, x, x])
        }
    }

    func testRunTimeShapeErrors() {
        assertThrowsNaming(["test_Squeeze", "axis 1 of size 3"]) {
            _ = try runShapeOp("Squeeze", opset: 13, inputs: [x, Tensor(ints: [1])])
        }
        assertThrowsNaming(["Slice", "step must not be 0"]) {
            _ = try runShapeOp("Slice", opset: 13, inputs: [x, Tensor(ints: [0]), Tensor(ints: [1]), Tensor(ints: [0]), Tensor(ints: [0])])
        }
        assertThrowsNaming(["test_Slice", "axis 5"]) {
            _ = try runShapeOp("Slice", opset: 13, inputs: [x, Tensor(ints: [0]), Tensor(ints: [1]), Tensor(ints: [5])])
        }
        assertThrowsNaming(["Split", "sum to 3"]) {
            _ = try runShapeOp("Split", opset: 13, attributes: ["axis": .int(1)], outputs: 2, inputs: [x, Tensor(ints: [1, 1])])
        }
        assertThrowsNaming(["test_Pad", "pads"]) {
            _ = try runShapeOp("Pad", opset: 13, inputs: [x, Tensor(ints: [1, 1])])
        }
        assertThrowsNaming(["DepthToSpace", "divisible"]) {
            _ = try runShapeOp("DepthToSpace", attributes: ["blocksize": .int(2)], inputs: [try Tensor(shape: [1, 3, 1, 1], floats: [1, 2, 3])])
        }
        assertThrowsNaming(["Tile", "repeats"]) {
            _ = try runShapeOp("Tile", inputs: [x, Tensor(ints: [1, -1])])
        }
        assertThrowsNaming(["Range", "delta"]) {
            _ = try runShapeOp("Range", inputs: [Tensor(scalar: 0), Tensor(scalar: 1), Tensor(scalar: 0)])
        }
        assertThrowsNaming(["test_Unsqueeze", "repeated"]) {
            _ = try runShapeOp("Unsqueeze", opset: 13, inputs: [x, Tensor(ints: [0, -4])])
        }
        assertThrowsNaming(["test_Flatten", "axis 3"]) {
            _ = try runShapeOp("Flatten", attributes: ["axis": .int(3)], inputs: [x])
        }
        assertThrowsNaming(["GatherND", "last dimension"]) {
            _ = try runShapeOp("GatherND", inputs: [x, try Tensor(shape: [1, 3], ints: [0, 0, 0])])
        }
    }

    func testScatterMulHasNoVJP() throws {
        let idx = try Tensor(shape: [1, 1], ints: [0])
        let u = try Tensor(shape: [1, 1], floats: [2])
        let op = try makeShapeOp("ScatterElements", opset: 16, attributes: ["reduction": .string("mul")], inputs: [x, idx, u])
        XCTAssertEqual(try op.forward([x, idx, u])[0], try Tensor(shape: [2, 3], floats: [2, 2, 3, 4, 5, 6]))
        let ctx = VJPContext(inputs: [nil, idx, nil], inputShapes: [[2, 3], [1, 1], [1, 1]], outputs: [nil],
                             gradOutputs: [Tensor(zeros: [2, 3])], wantInput: [true, false, true])
        XCTAssertThrowsError(try op.vjp(ctx)) { error in
            guard case .notDifferentiable? = error as? GraphError else { return XCTFail("\(error)") }
        }
    }
}
