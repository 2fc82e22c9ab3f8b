import XCTest
import LoupeTensor
@testable import LoupeGraph

/// Constant's attribute forms and ConstantOfShape's dtypes and limits.
final class ShapeOperatorsConstantTests: XCTestCase {
    private func constant(_ attributes: [String: Attribute]) throws -> Tensor {
        try runShapeOp("Constant", attributes: attributes, inputs: [])[0]
    }

    func testConstantAttributeForms() throws {
        let t = try Tensor(shape: [2, 1], ints: [4, -2])
        XCTAssertEqual(try constant(["value": .tensor(t)]), t)
        XCTAssertEqual(try constant(["value_float": .float(1.25)]), Tensor(scalar: 1.25))
        XCTAssertEqual(try constant(["value_floats": .floats([1, 2.5])]), try Tensor(shape: [2], floats: [1, 2.5]))
        XCTAssertEqual(try constant(["value_int": .int(-7)]), try Tensor(shape: [], ints: [-7]))
        XCTAssertEqual(try constant(["value_ints": .ints([3, 0, 1])]), Tensor(ints: [3, 0, 1]))
    }

    func testConstantRejectsStringsAndDoubleValues() {
        assertThrowsNaming(["Constant", "value_string"]) { _ = try self.constant(["value_string": .string("x")]) }
        assertThrowsNaming(["test_Constant", "exactly one"]) {
            _ = try self.constant(["value_int": .int(1), "value_float": .float(1)])
        }
    }

    func testConstantOfShapeDTypesAndErrors() throws {
        let b = try runShapeOp("ConstantOfShape", attributes: ["value": .tensor(try Tensor(shape: [1], bools: [true]))],
                               inputs: [Tensor(ints: [2, 0])])[0]
        XCTAssertEqual(b, try Tensor(shape: [2, 0], bools: []))
        assertThrowsNaming(["test_ConstantOfShape", "negative"]) {
            _ = try runShapeOp("ConstantOfShape", inputs: [Tensor(ints: [2, -1])])
        }
        assertThrowsNaming(["test_ConstantOfShape", "too large"]) {
            _ = try runShapeOp("ConstantOfShape", inputs: [Tensor(ints: [1 << 40, 1 << 40])])
        }
        assertThrowsNaming(["test_ConstantOfShape", "value"]) {
            _ = try makeShapeOp("ConstantOfShape", attributes: ["value": .tensor(Tensor(ints: [1, 2]))], inputs: [Tensor(ints: [1])])
        }
    }
}
