import Foundation
import LoupeGraph
import LoupeONNX
import LoupeTensor
import XCTest

/// Export → import must reproduce the graph exactly.
///
/// Checked once by hand against the Python reference stack (onnx 1.23.2, onnxruntime 1.32):
/// `testGraphBuiltInSwiftExportsAValidModel` writes `loupe-onnx-export-check.onnx` to the
/// temporary directory; `onnx.checker.check_model(path, full_check=True)` accepted it and
/// `onnxruntime.InferenceSession(path).run(None, {"x": np.arange(16, dtype=np.float32)
/// .reshape(1, 1, 4, 4) / 8 - 1})` ran it (outputs matched a numpy conv+relu+mean). The
/// re-exported fixtures (`loupe-onnx-roundtrip-*.onnx`, including the If subgraphs) passed the
/// checker too. The tests themselves need no Python.
final class ONNXRoundTripTests: XCTestCase {
    func testFixturesSurviveExportAndReimport() throws {
        for name in ["conv_raw.onnx", "typed_fields.onnx", "subgraph_if.onnx", "dim_param.onnx", "external.onnx"] {
            let original = try ONNXModel.load(path: Fixtures.path(name))
            let bytes = try original.onnxBytes()
            let reloaded = try Graph(onnxBytes: bytes)
            // Narrow integer initializers keep their file type through the round trip (an int8
            // zero point must stay int8); float16/double/bfloat16 ones come back as float.
            var expected = original
            expected.constantElementTypes = original.constantElementTypes.filter { ![10, 11, 16].contains($0.value) }
            XCTAssertEqual(reloaded, expected, name)
            // Exporting again is byte-for-byte stable.
            XCTAssertEqual(try reloaded.onnxBytes(), bytes, name)
            try original.writeONNX(to: NSTemporaryDirectory() + "/loupe-onnx-roundtrip-" + name)
        }
    }

    /// A conv + relu + mean graph written in Swift, with attributes of every kind the encoder has.
    static func swiftGraph() throws -> Graph {
        let w = try Tensor(shape: [2, 1, 3, 3], floats: (0..<18).map { Float($0) / 9 - 1 })
        let b = try Tensor(shape: [2], floats: [0.25, -0.5])
        return Graph(
            name: "swift_built",
            nodes: [
                Node(name: "conv", opType: "Conv", inputs: ["x", "w", "b"], outputs: ["c"],
                     attributes: ["kernel_shape": .ints([3, 3]), "pads": .ints([1, 1, 1, 1]),
                                  "strides": .ints([1, 1]), "auto_pad": .string("NOTSET")]),
                Node(name: "relu", opType: "Relu", inputs: ["c"], outputs: ["r"]),
                Node(name: "mean", opType: "ReduceMean", inputs: ["r"], outputs: ["y"],
                     attributes: ["axes": .ints([2, 3]), "keepdims": .int(0)]),
                Node(name: "scale", opType: "Constant", inputs: [], outputs: ["k"],
                     attributes: ["value": .tensor(try Tensor(shape: [1], floats: [1.5]))]),
                Node(name: "mul", opType: "Mul", inputs: ["y", "k"], outputs: ["z"]),
            ],
            inputs: [ValueInfo(name: "x", elementType: 1, shape: [.symbolic("N"), .fixed(1), .fixed(4), .fixed(4)])],
            outputs: [ValueInfo(name: "z", elementType: 1, shape: [.symbolic("N"), .fixed(2)])],
            valueInfo: [ValueInfo(name: "c", elementType: 1, shape: nil)],
            initializers: ["w": w, "b": b],
            opsets: ["": 17],
            metadata: ["producer_name": "loupe", "note": "built in Swift"])
    }

    func testGraphBuiltInSwiftExportsAValidModel() throws {
        let graph = try Self.swiftGraph()
        let path = NSTemporaryDirectory() + "/loupe-onnx-export-check.onnx"
        try graph.writeONNX(to: path)
        let reloaded = try ONNXModel.load(path: path)
        var expected = graph
        expected.metadata["ir_version"] = "8"  // opset 17 → IR 8
        XCTAssertEqual(reloaded, expected)
    }

    func testAllAttributeKindsRoundTrip() throws {
        let sub = Graph(name: "body", nodes: [Node(name: "id", opType: "Identity", inputs: ["a"], outputs: ["b"])],
                        inputs: [ValueInfo(name: "a", elementType: 7, shape: [])],
                        outputs: [ValueInfo(name: "b", elementType: 7, shape: [])],
                        opsets: ["": 15, "custom": 3])  // subgraphs carry the model's opsets on import
        let attributes: [String: Attribute] = [
            "f": .float(-0.375), "i": .int(-9_000_000_000), "s": .string("héllo"),
            "t": .tensor(try Tensor(shape: [2], bools: [true, false])),
            "g": .graph(sub), "fs": .floats([1, -2, .infinity]), "is": .ints([-1, 0, Int(Int64.max)]),
            "ss": .strings(["", "x"]), "ts": .tensors([Tensor(ints: [4, 5]), Tensor(scalar: 3)]),
            "gs": .graphs([sub, sub]), "empty_ints": .ints([]),
        ]
        let graph = Graph(nodes: [Node(name: "n", opType: "Op", domain: "custom", inputs: ["x", ""], outputs: ["y"],
                                       attributes: attributes)],
                          inputs: [ValueInfo(name: "x")], outputs: [ValueInfo(name: "y", elementType: 0)],
                          opsets: ["": 15, "custom": 3])
        let reloaded = try Graph(onnxBytes: graph.onnxBytes())
        XCTAssertEqual(reloaded.nodes, graph.nodes)
        XCTAssertEqual(reloaded.inputs, graph.inputs)
        XCTAssertEqual(reloaded.outputs, graph.outputs)
        XCTAssertEqual(reloaded.opsets, graph.opsets)
        XCTAssertEqual(reloaded.metadata, ["ir_version": "8"])
    }

    func testTensorProtoEncodeDecode() throws {
        for t in [try Tensor(shape: [2, 2], floats: [1, -0, .greatestFiniteMagnitude, -1e-30]),
                  try Tensor(shape: [3, 0], floats: []), Tensor(scalar: 7),
                  Tensor(ints: [Int64.min, -1, Int64.max]), try Tensor(shape: [1, 3], bools: [false, true, true])] {
            let decoded = try ONNXTensor.decode(bytes: ONNXTensor.encode(t, name: "v"))
            XCTAssertEqual(decoded.name, "v")
            XCTAssertEqual(decoded.tensor, t)
        }
    }
}
