import XCTest
import LoupeTensor
import LoupeONNX
import LoupeGraph
@testable import LoupeExplain

/// `CAM.globalAveragePooledHeadWeight`: the classifier weight is read only where CAM's
/// decomposition of the class score holds (GAP, then one linear layer), and any other head is
/// refused by the node that breaks it.
final class CAMHeadTests: XCTestCase {
    private func input() -> ValueInfo { ValueInfo(name: "x", elementType: 1, shape: [.fixed(1), .fixed(3), .fixed(6), .fixed(6)]) }

    /// Conv → Relu (the layer "r"), then `head` nodes reading "r" and ending in `output`.
    private func model(_ head: [Node], output: String, initializers: [String: Tensor] = [:]) throws -> Model {
        var rng = SplitMix64(seed: 7)
        var g = Graph(nodes: [
            Node(name: "conv", opType: "Conv", inputs: ["x", "w", "b"], outputs: ["c"], attributes: ["pads": .ints([1, 1, 1, 1])]),
            Node(name: "relu", opType: "Relu", inputs: ["c"], outputs: ["r"]),
        ] + head, inputs: [input()], outputs: [ValueInfo(name: output)], opsets: ["": 18])
        g.initializers = ["w": rng.tensor([4, 3, 3, 3]), "b": rng.tensor([4])].merging(initializers) { a, _ in a }
        return try Model(graph: g)
    }

    /// The weight as (classes, C), compared with the expected (classes, C) values.
    private func assertWeight(_ m: Model, _ expected: [Float], file: StaticString = #filePath, line: UInt = #line) throws {
        let w = try CAM.globalAveragePooledHeadWeight(model: m, layer: "r")
        XCTAssertEqual(w.shape, [5, 4], file: file, line: line)
        XCTAssertEqual(try w.floats(), expected, file: file, line: line)
    }

    private func transposed(_ t: Tensor) throws -> [Float] {
        let v = try t.floats(), (r, c) = (t.shape[0], t.shape[1])
        return (0..<(r * c)).map { i in v[(i % r) * c + i / r] }
    }

    /// torch.onnx's classifier: GAP → Flatten → Gemm(transB = 1) → Softmax; CAM then matches the
    /// logits (the Gemm's output) it decomposes: mean over (h, w) of M_k plus b_k is logit k.
    func testGemmHeadWithSoftmaxOutputAndTheIdentity() throws {
        var rng = SplitMix64(seed: 3)
        let fw = rng.tensor([5, 4]), fb = rng.tensor([5])
        let m = try model([
            Node(name: "gap", opType: "GlobalAveragePool", inputs: ["r"], outputs: ["g"]),
            Node(name: "flat", opType: "Flatten", inputs: ["g"], outputs: ["f"]),
            Node(name: "fc", opType: "Gemm", inputs: ["f", "fw", "fb"], outputs: ["l"], attributes: ["transB": .int(1)]),
            Node(name: "sm", opType: "Softmax", inputs: ["l"], outputs: ["y"], attributes: ["axis": .int(1)]),
        ], output: "y", initializers: ["fw": fw, "fb": fb])
        try assertWeight(m, try fw.floats())
        let x = rng.tensor([1, 3, 6, 6])
        let w = try CAM.globalAveragePooledHeadWeight(model: m, layer: "r")
        let cam = try CAM.explain(model: m, input: x, layer: "r", classes: [2], method: .cam(classifierWeight: w))
        let rawMean = try cam.raw.floats().reduce(0, +) / 36
        var hooks = Hooks()
        hooks.capture(try m.hook("l"))
        let logits = try XCTUnwrap(try m.forward(["x": x], hooks: hooks).captured["l"]).floats()
        XCTAssertEqual(rawMean + (try fb.floats())[2], logits[2], accuracy: 1e-5, "CAM eq. 2: GAP of M_k plus b_k is logit k")
    }

    /// The dynamo exporter's head: ReduceMean over axes (−1, −2) → MatMul by (C, classes) → Add.
    /// Gemm's alpha is folded into the weight.
    func testReduceMeanMatMulAndGemmAlpha() throws {
        var rng = SplitMix64(seed: 5)
        let wm = rng.tensor([4, 5]), bias = rng.tensor([5])
        let m1 = try model([
            Node(name: "mean", opType: "ReduceMean", inputs: ["r", "axes"], outputs: ["g"], attributes: ["keepdims": .int(0)]),
            Node(name: "mm", opType: "MatMul", inputs: ["g", "wm"], outputs: ["p"]),
            Node(name: "add", opType: "Add", inputs: ["bias", "p"], outputs: ["l"]),
        ], output: "l", initializers: ["wm": wm, "bias": bias, "axes": try Tensor(shape: [2], ints: [-1, -2])])
        try assertWeight(m1, try transposed(wm))

        let wg = rng.tensor([4, 5])
        let m2 = try model([
            Node(name: "gap", opType: "GlobalAveragePool", inputs: ["r"], outputs: ["g"]),
            Node(name: "flat", opType: "Reshape", inputs: ["g", "shape"], outputs: ["f"]),
            Node(name: "drop", opType: "Dropout", inputs: ["f"], outputs: ["d"]),
            Node(name: "fc", opType: "Gemm", inputs: ["d", "wg"], outputs: ["l"], attributes: ["alpha": .float(2)]),
        ], output: "l", initializers: ["wg": wg, "shape": try Tensor(shape: [2], ints: [1, 4])])
        try assertWeight(m2, try transposed(wg).map { $0 * 2 })
    }

    /// Heads where the classifier weights do not decompose the score are refused, naming the node.
    func testOtherHeadsAreRefusedByTheirNode() throws {
        var rng = SplitMix64(seed: 9)
        let fw = rng.tensor([5, 4]), fw2 = rng.tensor([5, 5])
        func refusal(_ head: [Node], _ output: String, _ extra: [String: Tensor] = [:]) throws -> CAMError? {
            let m = try model(head, output: output, initializers: ["fw": fw, "fw2": fw2].merging(extra) { a, _ in a })
            do { _ = try CAM.globalAveragePooledHeadWeight(model: m, layer: "r"); return nil } catch let e as CAMError { return e }
        }
        let gap = Node(name: "gap", opType: "GlobalAveragePool", inputs: ["r"], outputs: ["g"])
        let flat = Node(name: "flat", opType: "Flatten", inputs: ["g"], outputs: ["f"])
        // ConvNeXt: a normalisation between the pooling and the linear layer.
        let ln = try refusal([gap, flat,
                              Node(name: "ln", opType: "LayerNormalization", inputs: ["f", "s"], outputs: ["n"]),
                              Node(name: "fc", opType: "Gemm", inputs: ["n", "fw"], outputs: ["l"], attributes: ["transB": .int(1)])],
                             "l", ["s": Tensor(zeros: [4], value: 1)])
        guard case let .headNotLinear(layer, node, op, _)? = ln else { return XCTFail("LayerNorm head accepted: \(String(describing: ln))") }
        XCTAssertEqual([layer, node, op], ["r", "ln", "LayerNormalization"])
        // MobileNetV3: two linear layers with an activation between.
        let two = try refusal([gap, flat,
                               Node(name: "fc", opType: "Gemm", inputs: ["f", "fw"], outputs: ["h"], attributes: ["transB": .int(1)]),
                               Node(name: "act", opType: "Relu", inputs: ["h"], outputs: ["a"]),
                               Node(name: "fc2", opType: "Gemm", inputs: ["a", "fw2"], outputs: ["l"], attributes: ["transB": .int(1)])], "l")
        guard case let .headNotLinear(_, node2, op2, _)? = two else { return XCTFail("two-layer head accepted") }
        XCTAssertEqual([node2, op2], ["act", "Relu"])
        // A non-linear step before the pooling.
        let early = try refusal([Node(name: "sig", opType: "Sigmoid", inputs: ["r"], outputs: ["s2"]),
                                 Node(name: "gap", opType: "GlobalAveragePool", inputs: ["s2"], outputs: ["g"]), flat,
                                 Node(name: "fc", opType: "Gemm", inputs: ["f", "fw"], outputs: ["l"], attributes: ["transB": .int(1)])], "l")
        guard case let .headNotLinear(_, node3, _, _)? = early else { return XCTFail("sigmoid before the pool accepted") }
        XCTAssertEqual(node3, "sig")
        // Pooling over one spatial axis only.
        let axis = try refusal([Node(name: "mean", opType: "ReduceMean", inputs: ["r", "axes"], outputs: ["g"]), flat,
                                Node(name: "fc", opType: "Gemm", inputs: ["f", "fw"], outputs: ["l"], attributes: ["transB": .int(1)])],
                               "l", ["axes": try Tensor(shape: [1], ints: [3])])
        guard case let .headNotLinear(_, node4, _, _)? = axis else { return XCTFail("ReduceMean over one axis accepted") }
        XCTAssertEqual(node4, "mean")
    }

    /// The exported plain CNN of the CAM fixtures: its head weight is `fc.weight`.
    func testExportedFixtureHead() throws {
        let model = try Model(graph: try ONNXModel.load(path: "\(CAMFixtureTests.dir)/plain_cnn.onnx"))
        let w = try CAM.globalAveragePooledHeadWeight(model: model, layer: CAMIdentityTests.layer)
        let fc = try XCTUnwrap(model.graph.initializers["fc.weight"])
        XCTAssertEqual(w.shape, fc.shape)
        XCTAssertEqual(try w.floats(), try fc.floats())
    }
}

private extension SplitMix64 {
    /// A tensor of uniform values in [−1, 1).
    mutating func tensor(_ shape: [Int]) -> Tensor {
        let n = shape.reduce(1, *)
        return Tensor.makeFloats(shape: shape) { out in for i in 0..<n { out[i] = Float.random(in: -1..<1, using: &self) } }
    }
}
