import XCTest
import LoupeTensor
@testable import LoupeGraph

/// `featureMapLayouts` traces (N, C, H, W) from convolutions through Transposes and
/// role-keeping operators, and stops where a value's axes can no longer be named.
final class FeatureMapLayoutTests: XCTestCase {
    /// A ConvNeXt/Swin-style block: Conv → permute to channels-last → LayerNorm → Linear
    /// (MatMul + bias Add) → GELU-ish Mul → permute back → residual Add; plus side branches that
    /// must not be traced (a Reshape, an H/W swap, a MatMul over a spatial axis).
    private func block() throws -> Graph {
        var rng = TestRNG(seed: 5)
        var g = Graph(nodes: [
            Node(name: "conv", opType: "Conv", inputs: ["x", "w"], outputs: ["c"], attributes: ["pads": .ints([1, 1, 1, 1])]),
            Node(name: "to_last", opType: "Transpose", inputs: ["c"], outputs: ["t"], attributes: ["perm": .ints([0, 2, 3, 1])]),
            Node(name: "ln", opType: "LayerNormalization", inputs: ["t", "gamma", "beta"], outputs: ["n"], attributes: ["axis": .int(-1)]),
            Node(name: "fc", opType: "MatMul", inputs: ["n", "fw"], outputs: ["m"]),
            Node(name: "bias", opType: "Add", inputs: ["m", "fb"], outputs: ["mb"]),
            Node(name: "act", opType: "Mul", inputs: ["mb", "mb"], outputs: ["a"]),
            Node(name: "fc2", opType: "MatMul", inputs: ["a", "fw2"], outputs: ["m2"]),
            Node(name: "to_first", opType: "Transpose", inputs: ["m2"], outputs: ["back"], attributes: ["perm": .ints([0, 3, 1, 2])]),
            Node(name: "res", opType: "Add", inputs: ["c", "back"], outputs: ["y"]),
            // Not traceable:
            Node(name: "swap", opType: "Transpose", inputs: ["c"], outputs: ["hw"], attributes: ["perm": .ints([0, 1, 3, 2])]),
            Node(name: "spatial_mm", opType: "MatMul", inputs: ["c", "sw"], outputs: ["smm"]),
            Node(name: "reshape", opType: "Reshape", inputs: ["t", "shape"], outputs: ["r"]),
            Node(name: "after_reshape", opType: "Relu", inputs: ["r"], outputs: ["rr"]),
            // An unknown operand does not hide a known one of the same rank.
            Node(name: "mix", opType: "Add", inputs: ["rr", "n"], outputs: ["mixed"]),
            // Global pooling over the last two axes reads (N, C, H, W), even from a Reshape:
            // ReduceMean with an axes attribute, ReduceSum with axes as a constant input.
            Node(name: "reshape2", opType: "Reshape", inputs: ["c", "shape2"], outputs: ["r2"]),
            Node(name: "gap", opType: "ReduceMean", inputs: ["r2"], outputs: ["pooled"], attributes: ["axes": .ints([2, 3])]),
            Node(name: "reshape3", opType: "Reshape", inputs: ["c", "shape2"], outputs: ["r3"]),
            Node(name: "gsum", opType: "ReduceSum", inputs: ["r3", "axes"], outputs: ["summed"]),
            // ...but a reduction over other axes says nothing.
            Node(name: "reshape4", opType: "Reshape", inputs: ["c", "shape2"], outputs: ["r4"]),
            Node(name: "hsum", opType: "ReduceSum", inputs: ["r4", "axes13"], outputs: ["hsummed"]),
        ], inputs: [ValueInfo(name: "x", elementType: 1, shape: [.fixed(1), .fixed(3), .fixed(4), .fixed(6)])],
           outputs: [ValueInfo(name: "y"), ValueInfo(name: "hw"), ValueInfo(name: "smm"), ValueInfo(name: "mixed"),
                     ValueInfo(name: "pooled"), ValueInfo(name: "summed"), ValueInfo(name: "hsummed")])
        g.initializers = ["w": rng.tensor([8, 3, 3, 3]), "gamma": rng.tensor([8]), "beta": rng.tensor([8]),
                          "fw": rng.tensor([8, 16]), "fb": rng.tensor([16]), "fw2": rng.tensor([16, 8]),
                          "sw": rng.tensor([6, 6]),
                          "shape": try Tensor(shape: [4], ints: [1, 4, 6, 8]),
                          "shape2": try Tensor(shape: [4], ints: [1, 8, 6, 4]),
                          "axes": try Tensor(shape: [2], ints: [-1, -2]), "axes13": try Tensor(shape: [2], ints: [1, 3])]
        return g
    }

    func testTracesChannelsLastThroughABlock() throws {
        let model = try Model(graph: try block())
        let shapes = try model.inferShapes(inputShapes: ["x": [1, 3, 4, 6]])
        let layouts = model.featureMapLayouts(shapes: shapes)
        for v in ["c", "back", "y"] { XCTAssertEqual(layouts[v], .channelsFirst, v) }
        for v in ["t", "n", "m", "mb", "a", "m2", "mixed"] { XCTAssertEqual(layouts[v], .channelsLast, v) }
        for v in ["hw", "smm", "r", "rr", "r4", "hsummed"] { XCTAssertNil(layouts[v], v) }
        for v in ["r2", "pooled", "r3", "summed"] { XCTAssertEqual(layouts[v], .channelsFirst, v) }
        XCTAssertEqual(layouts["x"], .channelsFirst, "a Conv's input is (N, C, H, W)")

        // The pass-level query agrees with the model-level one, value by value.
        var rng = TestRNG(seed: 9)
        let x = rng.tensor([1, 3, 4, 6])
        var hooks = Hooks()
        for v in ["t", "back", "hw", "mixed"] { hooks.capture(try model.hook(v)) }
        let pass = try model.forward(["x": x], hooks: hooks)
        for v in ["t", "back", "hw", "mixed", "c", "m2"] { XCTAssertEqual(try pass.featureMapLayout(of: v), layouts[v], v) }
        XCTAssertNil(try pass.featureMapLayout(of: "shape"), "not rank 4")
        XCTAssertEqual(try pass.featureMapLayout(of: "x"), .channelsFirst, "the graph input a Conv reads")
        for v in ["t", "n", "m2", "mixed"] { XCTAssertTrue(try pass.isChannelsLast(v), v) }
        for v in ["x", "c", "back", "y", "hw", "smm", "rr"] { XCTAssertFalse(try pass.isChannelsLast(v), v) }
    }
}
