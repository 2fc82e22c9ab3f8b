import XCTest
import LoupeTensor
@testable import LoupeGraph

/// Builds a single-node operator through the operator table (as model compilation does) and runs
/// its forward pass. Inputs given as nil are omitted optional inputs (empty names).
func runShapeOp(_ opType: String, opset: Int = 17, attributes: [String: Attribute] = [:], outputs: Int = 1,
                inputs: [Tensor?]) throws -> [Tensor] {
    let op = try makeShapeOp(opType, opset: opset, attributes: attributes, outputs: outputs, inputs: inputs)
    let y = try op.forward(inputs)
    XCTAssertEqual(y.count, outputs, "\(opType) output count")
    return y
}

/// Like ``makeOperator`` but marks nil inputs as omitted, so arity checks see what ONNX would.
func makeShapeOp(_ opType: String, opset: Int = 17, attributes: [String: Attribute] = [:], outputs: Int = 1,
                 inputs: [Tensor?]) throws -> any Operator {
    let names = inputs.enumerated().map { $0.element == nil ? "" : "x\($0.offset)" }
    let node = Node(name: "test_\(opType)", opType: opType, inputs: names,
                    outputs: (0 ..< outputs).map { "y\($0)" }, attributes: attributes)
    guard let factory = OperatorTable.factory(opType: opType, domain: "") else {
        throw GraphError.invalid("no operator \(opType)")
    }
    return try factory(OperatorContext(node: node, opset: opset, constantInputs: inputs.map { _ in nil }))
}

/// Asserts that `body` throws an error whose description mentions every one of `fragments`
/// (the op or node name, and what was wrong).
func assertThrowsNaming(_ fragments: [String], file: StaticString = #filePath, line: UInt = #line,
                        _ body: () throws -> Void) {
    do {
        try body()
        XCTFail("expected an error mentioning \(fragments)", file: file, line: line)
    } catch {
        let text = "\(error)"
        for f in fragments {
            XCTAssertTrue(text.contains(f), "error '\(text)' does not mention '\(f)'", file: file, line: line)
        }
    }
}
