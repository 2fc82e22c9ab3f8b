import XCTest
import LoupeTensor
@testable import LoupeGraph

/// The subgraphs torch.onnx.export emits, run operator by operator: shape arithmetic on int64
/// (Shape→Gather→Unsqueeze→Concat→Reshape) and transformer head plumbing.
final class ShapeOperatorsChainTests: XCTestCase {
    private func run(_ op: String, opset: Int = 13, _ attributes: [String: Attribute] = [:], outputs: Int = 1,
                     _ inputs: [Tensor?]) throws -> [Tensor] {
        try runShapeOp(op, opset: opset, attributes: attributes, outputs: outputs, inputs: inputs)
    }

    private func run(_ op: String, opset: Int = 13, _ inputs: [Tensor?]) throws -> [Tensor] {
        try runShapeOp(op, opset: opset, inputs: inputs)
    }

    func testFlattenBatchThroughShapeArithmetic() throws {
        // x.view(x.size(0), -1) as exported at opset 13.
        var rng = TestRNG(seed: 3)
        let x = rng.tensor([2, 3, 4])
        let shape = try run("Shape", [x])[0]
        XCTAssertEqual(shape, Tensor(ints: [2, 3, 4]))
        let batch = try run("Gather", ["axis": .int(0)], [shape, try Tensor(shape: [], ints: [0])])[0]
        XCTAssertEqual(batch, try Tensor(shape: [], ints: [2]))
        let b1 = try run("Unsqueeze", [batch, Tensor(ints: [0])])[0]
        let target = try run("Concat", ["axis": .int(0)], [b1, Tensor(ints: [-1])])[0]
        XCTAssertEqual(target, Tensor(ints: [2, -1]))
        let y = try run("Reshape", [x, target])[0]
        XCTAssertEqual(y.shape, [2, 12])
        XCTAssertEqual(y.doubles, x.doubles)
    }

    func testAttentionSplitAndMergeHeads() throws {
        // [B, T, H·D] → [B, T, H, D] → [B, H, T, D] and back recovers the input exactly.
        let (b, t, h, d) = (2, 3, 2, 2)
        let x = try Tensor(shape: [b, t, h * d], floats: (0 ..< b * t * h * d).map { Float($0) })
        let heads = try run("Transpose", ["perm": .ints([0, 2, 1, 3])],
                            [run("Reshape", [x, Tensor(ints: [0, 0, Int64(h), -1])])[0]])[0]
        XCTAssertEqual(heads.shape, [b, h, t, d])
        // Head 1 of batch 0 holds features 2...3 of every position.
        XCTAssertEqual(try heads.sliced([SliceRange(axis: 0, start: 0, end: 1), SliceRange(axis: 1, start: 1, end: 2)]).doubles,
                       [2, 3, 6, 7, 10, 11])
        let back = try run("Transpose", ["perm": .ints([0, 2, 1, 3])], [heads])[0]
        let merged = try run("Reshape", [back, Tensor(ints: [0, 0, -1])])[0]
        XCTAssertEqual(merged, x)
    }

    func testGPT2QKVSplitAndCausalMask() throws {
        let x = try Tensor(shape: [1, 2, 6], floats: (0 ..< 12).map { Float($0) })
        let qkv = try run("Split", opset: 18, ["axis": .int(2), "num_outputs": .int(3)], outputs: 3, [x])
        XCTAssertEqual(qkv.map(\.shape), [[1, 2, 2], [1, 2, 2], [1, 2, 2]])
        XCTAssertEqual(qkv[2].doubles, [4, 5, 10, 11])
        // Causal mask from Range/Unsqueeze/Trilu, bool throughout.
        let ones = try run("ConstantOfShape", ["value": .tensor(try Tensor(shape: [1], bools: [true]))], [Tensor(ints: [3, 3])])[0]
        let causal = try run("Trilu", opset: 14, ["upper": .int(0)], [ones])[0]
        XCTAssertEqual(causal, try Tensor(shape: [3, 3], bools: [true, false, false, true, true, false, true, true, true]))
        let pos = try run("Range", [try Tensor(shape: [], ints: [0]), try Tensor(shape: [], ints: [3]), try Tensor(shape: [], ints: [1])])[0]
        XCTAssertEqual(try run("Unsqueeze", [pos, Tensor(ints: [0])])[0], try Tensor(shape: [1, 3], ints: [0, 1, 2]))
    }

    func testViTClassTokenConcatAndSelect() throws {
        let cls = try Tensor(shape: [1, 1, 2], floats: [9, 9])
        let patches = try Tensor(shape: [1, 3, 2], floats: [1, 2, 3, 4, 5, 6])
        let batched = try run("Tile", [cls, Tensor(ints: [2, 1, 1])])[0]
        let tokens = try run("Concat", ["axis": .int(1)], [batched, run("Tile", [patches, Tensor(ints: [2, 1, 1])])[0]])[0]
        XCTAssertEqual(tokens.shape, [2, 4, 2])
        let first = try run("Gather", ["axis": .int(1)], [tokens, try Tensor(shape: [], ints: [0])])[0]
        XCTAssertEqual(first, try Tensor(shape: [2, 2], floats: [9, 9, 9, 9]))
        let squeezed = try run("Squeeze", [try run("Slice", [tokens, Tensor(ints: [-1]), Tensor(ints: [Int64.max]), Tensor(ints: [1])])[0],
                                           Tensor(ints: [1])])[0]
        XCTAssertEqual(squeezed, try Tensor(shape: [2, 2], floats: [5, 6, 5, 6]))
    }

    func testSqueezeWithEmptyAxesSqueezesAllLikeOnnxRuntime() throws {
        let x = Tensor(zeros: [1, 2, 1])
        XCTAssertEqual(try run("Squeeze", [x, try Tensor(shape: [0], ints: [])])[0].shape, [2])
    }
}
