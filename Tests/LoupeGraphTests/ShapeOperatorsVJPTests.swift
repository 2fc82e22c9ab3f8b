import XCTest
import LoupeTensor
@testable import LoupeGraph

/// Every differentiable shape/data-movement operator's VJP against central finite differences
/// (``checkVJP``), plus hand-computed cotangents where accumulation or missing cotangents matter.
final class ShapeOperatorsVJPTests: XCTestCase {
    var rng = TestRNG(seed: 11)

    private func ints(_ v: [Int64], _ shape: [Int]? = nil) -> Tensor {
        (try? Tensor(shape: shape ?? [v.count], ints: v)) ?? Tensor(ints: v)
    }

    private func check(_ op: String, opset: Int = 17, _ attributes: [String: Attribute] = [:], outputs: Int = 1,
                       _ inputs: [Tensor?], wrt: [Int] = [0], file: StaticString = #filePath, line: UInt = #line) throws {
        let o = try makeShapeOp(op, opset: opset, attributes: attributes, outputs: outputs, inputs: inputs)
        try checkVJP(o, inputs, wrt: wrt, file: file, line: line)
    }

    private func check(_ op: String, opset: Int = 17, outputs: Int = 1, _ inputs: [Tensor?], wrt: [Int] = [0],
                       file: StaticString = #filePath, line: UInt = #line) throws {
        try check(op, opset: opset, [:], outputs: outputs, inputs, wrt: wrt, file: file, line: line)
    }

    func testReshapeFamily() throws {
        try check("Reshape", [rng.tensor([2, 3, 4]), ints([4, -1])])
        try check("Flatten", ["axis": .int(2)], [rng.tensor([2, 3, 2])])
        try check("Squeeze", opset: 13, [rng.tensor([1, 3, 1]), ints([0])])
        try check("Squeeze", opset: 11, ["axes": .ints([2])], [rng.tensor([2, 3, 1])])
        try check("Unsqueeze", opset: 13, [rng.tensor([2, 3]), ints([1, -1])])
    }

    func testTranspose() throws {
        for perm in [[0, 2, 3, 1], [0, 3, 1, 2], [0, 2, 1, 3], [0, 1, 3, 2], [3, 1, 0, 2]] {
            try check("Transpose", ["perm": .ints(perm)], [rng.tensor([2, 3, 2, 4])])
        }
        try check("Transpose", [rng.tensor([2, 3, 4])])
    }

    func testConcatAllInputs() throws {
        try check("Concat", ["axis": .int(1)], [rng.tensor([2, 1, 2]), rng.tensor([2, 3, 2]), rng.tensor([2, 2, 2])], wrt: [0, 1, 2])
        try check("Concat", ["axis": .int(-1)], [rng.tensor([2, 0]), rng.tensor([2, 3])], wrt: [0, 1])
    }

    func testSplit() throws {
        try check("Split", opset: 13, ["axis": .int(1)], outputs: 3, [rng.tensor([2, 6]), ints([1, 2, 3])])
        try check("Split", opset: 18, ["axis": .int(0), "num_outputs": .int(2)], outputs: 2, [rng.tensor([5, 2])])
        try check("Split", opset: 11, ["axis": .int(0), "split": .ints([1, 1])], outputs: 2, [rng.tensor([2, 2])])
    }

    func testSplitMissingCotangentIsZero() throws {
        let x = rng.tensor([6])
        let op = try makeShapeOp("Split", opset: 13, outputs: 2, inputs: [x, ints([2, 4])])
        let g0 = try Tensor(shape: [2], floats: [3, -1])
        let ctx = VJPContext(inputs: [nil, ints([2, 4])], inputShapes: [[6], [2]], outputs: [nil, nil],
                             gradOutputs: [g0, nil], wantInput: [true, false])
        let grads = try op.vjp(ctx)
        XCTAssertEqual(grads[0], try Tensor(shape: [6], floats: [3, -1, 0, 0, 0, 0]))
        XCTAssertNil(grads[1])
    }

    func testSlice() throws {
        let x = rng.tensor([4, 5])
        try check("Slice", opset: 13, [x, ints([-1, 0]), ints([-Int64.max, 5]), ints([0, 1]), ints([-2, 2])])
        try check("Slice", opset: 13, [x, ints([1]), ints([Int64.max]), ints([-1])])
        try check("Slice", opset: 9, ["starts": .ints([1]), "ends": .ints([3])], [x])
    }

    func testGatherAccumulatesDuplicates() throws {
        try check("Gather", ["axis": .int(1)], [rng.tensor([2, 3, 2]), ints([2, -1, 0, 2], [2, 2])])
        try check("Gather", [rng.tensor([3]), try Tensor(shape: [], ints: [1])])
        let op = try makeShapeOp("Gather", inputs: [rng.tensor([2]), ints([0, 0, 1])])
        let ctx = VJPContext(inputs: [nil, ints([0, 0, 1])], inputShapes: [[2], [3]], outputs: [nil],
                             gradOutputs: [try Tensor(shape: [3], floats: [1, 2, 4])], wantInput: [true, false])
        let grads = try op.vjp(ctx)
        XCTAssertEqual(grads[0], try Tensor(shape: [2], floats: [3, 4]))
        XCTAssertNil(grads[1], "indices get no gradient")
    }

    func testGatherElementsAndND() throws {
        try check("GatherElements", ["axis": .int(1)], [rng.tensor([2, 3]), ints([0, 0, 2, -1, 1, 1], [2, 3])])
        try check("GatherND", [rng.tensor([2, 3, 2]), ints([1, 2, 1, 2, 0, 0], [3, 2])])
        try check("GatherND", opset: 13, ["batch_dims": .int(1)], [rng.tensor([2, 3, 2]), ints([2, 0, 0, 0], [2, 2, 1])])
    }

    func testScatter() throws {
        let data = rng.tensor([3, 3])
        try check("ScatterElements", ["axis": .int(0)], [data, ints([1, 0, 2, 0, 2, 1], [2, 3]), rng.tensor([2, 3])], wrt: [0, 2])
        try check("ScatterElements", opset: 16, ["axis": .int(1), "reduction": .string("add")],
                  [data, ints([1, 1, 0], [1, 3]), rng.tensor([1, 3])], wrt: [0, 2])
        try check("ScatterND", [rng.tensor([4, 2]), ints([3, 1], [2, 1]), rng.tensor([2, 2])], wrt: [0, 2])
        try check("ScatterND", opset: 16, ["reduction": .string("add")], [rng.tensor([4]), ints([1, 1, 3], [3, 1]), rng.tensor([3])], wrt: [0, 2])
    }

    func testTile() throws {
        try check("Tile", [rng.tensor([2, 3]), ints([2, 2])])
        try check("Tile", [rng.tensor([1, 2, 1]), ints([3, 1, 2])])
    }

    func testPadModes() throws {
        let x = rng.tensor([3, 4])
        try check("Pad", opset: 13, [x, ints([1, 0, 2, 1]), Tensor(scalar: 0.5)], wrt: [0, 2])
        try check("Pad", opset: 13, ["mode": .string("reflect")], [x, ints([2, 3, 1, 2])])
        try check("Pad", opset: 13, ["mode": .string("edge")], [x, ints([2, 1, 0, 3])])
        try check("Pad", opset: 19, ["mode": .string("wrap")], [x, ints([1, 5, 2, 0])])
        try check("Pad", opset: 13, [x, ints([-1, 1, 0, -2])])
        try check("Pad", opset: 18, ["mode": .string("reflect")], [x, ints([1, 2]), nil, ints([0])])
        try check("Pad", opset: 10, ["pads": .ints([0, 1, 1, 0]), "value": .float(3)], [x])
    }

    func testBlockRearrangements() throws {
        try check("DepthToSpace", ["blocksize": .int(2)], [rng.tensor([1, 8, 2, 1])])
        try check("DepthToSpace", ["blocksize": .int(2), "mode": .string("CRD")], [rng.tensor([2, 4, 1, 2])])
        try check("SpaceToDepth", ["blocksize": .int(2)], [rng.tensor([1, 2, 2, 4])])
        try check("SpaceToDepth", ["blocksize": .int(2), "mode": .string("CRD")], [rng.tensor([1, 2, 2, 4])])
    }

    func testTrilu() throws {
        try check("Trilu", opset: 14, [rng.tensor([2, 3, 4]), try Tensor(shape: [], ints: [1])])
        try check("Trilu", opset: 14, ["upper": .int(0)], [rng.tensor([4, 3])])
    }

    func testOneHotValues() throws {
        try check("OneHot", ["axis": .int(0)], [ints([0, 2, -1, 7], [2, 2]), Tensor(scalar: 3), try Tensor(shape: [2], floats: [-0.5, 2])], wrt: [2])
    }

    func testRange() throws {
        // The count (5) stays fixed under the finite-difference steps, so limit's gradient is 0.
        try check("Range", [Tensor(scalar: 0.3), Tensor(scalar: 2.05), Tensor(scalar: 0.4)], wrt: [0, 1, 2])
    }

    func testNonDifferentiableOperatorsGiveNoGradients() throws {
        let x = rng.tensor([2, 3])
        for (op, ins) in [("Shape", [x]), ("Size", [x]), ("NonZero", [x]), ("ConstantOfShape", [ints([2])])] as [(String, [Tensor?])] {
            let o = try makeShapeOp(op, inputs: ins)
            let y = try o.forward(ins)
            let ctx = VJPContext(inputs: ins, inputShapes: ins.map { $0?.shape }, outputs: y, gradOutputs: [nil], wantInput: [true])
            XCTAssertEqual(try o.vjp(ctx).compactMap { $0 }.count, 0, op)
        }
    }
}
