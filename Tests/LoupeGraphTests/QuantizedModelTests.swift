import Foundation
import XCTest
import LoupeTensor
import LoupeONNX
@testable import LoupeGraph

/// QDQ models made by onnxruntime's own quantization tool (tools/fixtures/make_qdq_fixtures.py:
/// `quantize_static`, QDQ format, per-channel int8 weights, uint8 or int8 activations) run as
/// onnxruntime runs them, and the ONNX rules of QuantizeLinear/DequantizeLinear hold exactly.
final class QuantizedModelTests: XCTestCase {
    static let dir = ModelFixtureTests.dir

    /// The whole quantized network against onnxruntime (optimisations off, so every Q/DQ pair
    /// runs as written; the tool's json records that the fused integer kernels agreed too).
    func testOnnxruntimeQuantizedModels() throws {
        let x = try Tensor.readNPY(path: "\(Self.dir)/tiny_cnn.input.npy")
        for name in ["tiny_cnn_qdq_u8", "tiny_cnn_qdq_s8"] {
            let graph = try ONNXModel.load(path: "\(Self.dir)/\(name).onnx")
            XCTAssertEqual(graph.nodes.filter { $0.opType == "QuantizeLinear" }.count, 8, name)
            let model = try Model(graph: graph)
            let y = try XCTUnwrap(try model.run([model.inputs[0].name: x])[model.outputs[0].name])
            let want = try Tensor.readNPY(path: "\(Self.dir)/\(name).ort_output.npy")
            let a = try y.floats(), b = try want.floats()
            XCTAssertEqual(a.count, b.count, name)
            let scale = b.map { abs($0) }.max() ?? 1
            let e = Double(zip(a, b).map { abs($0 - $1) }.max() ?? .infinity) / Double(scale)
            print(String(format: "QDQ agreement: \(name) max|Δ|/max|ort| %.2e", e))
            XCTAssertLessThanOrEqual(e, 1e-5, name)
            // Exported by Loupe and read back, the zero points keep their int8/uint8 type.
            let again = try Model(graph: try Graph(onnxBytes: try graph.onnxBytes()))
            XCTAssertEqual(try again.run([again.inputs[0].name: x])[again.outputs[0].name]?.floats(), try y.floats(), "\(name) after export")
        }
    }

    /// One QuantizeLinear → DequantizeLinear pair per case: round half to even, saturation to the
    /// zero point's type (int8 from the file's element type, uint8 without a zero point),
    /// per-axis scales.
    func testQuantizeDequantizeRules() throws {
        func pair(_ x: [Float], shape: [Int], scale: Tensor, zp: Tensor?, zpType: Int?, axis: Int = 1) throws -> ([Int64], [Float]) {
            var g = Graph(nodes: [
                Node(name: "q", opType: "QuantizeLinear", inputs: ["x", "s"] + (zp == nil ? [] : ["z"]), outputs: ["q"], attributes: ["axis": .int(axis)]),
                Node(name: "dq", opType: "DequantizeLinear", inputs: ["q", "s"] + (zp == nil ? [] : ["z"]), outputs: ["y"], attributes: ["axis": .int(axis)]),
            ], inputs: [ValueInfo(name: "x", elementType: 1, shape: shape.map { .fixed($0) })],
               outputs: [ValueInfo(name: "q"), ValueInfo(name: "y")], opsets: ["": 13])
            g.initializers["s"] = scale
            if let zp { g.initializers["z"] = zp }
            if let zpType { g.constantElementTypes["z"] = zpType }
            let m = try Model(graph: g)
            let out = try m.run(["x": try Tensor(shape: shape, floats: x)])
            return (try XCTUnwrap(out["q"]).ints(), try XCTUnwrap(out["y"]).floats())
        }
        let half = try Tensor(shape: [], floats: [0.5])
        // x / 0.5 = 0.5, 1.5, 2.5, -0.5, -1.5 → 0, 2, 2, -0, -2 (half to even), + zp 10.
        let (q, y) = try pair([0.25, 0.75, 1.25, -0.25, -0.75, 100, -100], shape: [7], scale: half,
                              zp: try Tensor(shape: [], ints: [10]), zpType: 3)
        XCTAssertEqual(q, [10, 12, 12, 10, 8, 127, -128], "int8: half to even, saturated to [-128, 127]")
        XCTAssertEqual(y, [0, 1, 1, 0, -1, 58.5, -69])
        // No zero point: uint8, 0...255.
        let (qu, _) = try pair([-3, 1.26, 500], shape: [3], scale: half, zp: nil, zpType: nil)
        XCTAssertEqual(qu, [0, 3, 255])
        // Per channel along axis 1 of (1, 2, 2): scales 1 and 0.1, zero points 0 and 5 (uint8).
        let (qa, ya) = try pair([1.4, -2, 0.26, 30], shape: [1, 2, 2], scale: try Tensor(shape: [2], floats: [1, 0.1]),
                                zp: try Tensor(shape: [2], ints: [0, 5]), zpType: 2)
        XCTAssertEqual(qa, [1, 0, 8, 255])
        XCTAssertEqual(ya[2], 0.3, accuracy: 1e-6)
        XCTAssertEqual(ya[3], 25, accuracy: 1e-5)
        // A zero point whose type the file does not give is refused by name.
        XCTAssertThrowsError(try pair([1], shape: [1], scale: half, zp: try Tensor(shape: [], ints: [0]), zpType: nil)) { e in
            XCTAssertTrue("\(e)".contains("QuantizeLinear"), "\(e)")
        }
    }

    /// PyTorch fake quantization (quantization-aware training) exported as Q/DQ pairs: the
    /// output, and the input gradient by autograd, whose fake-quantize backward passes the
    /// cotangent where round(x/s) + z stayed in range and zeroes it where it saturated (3–7 % of
    /// these inputs). Loupe fuses each pair into one step with that rule
    /// (`Graph.fusingQuantizeDequantizePairs`), so gradient explainers run on quantized models.
    func testFakeQuantizeGradientMatchesPyTorch() throws {
        struct Meta: Decodable { var target: Int; var input: String; var output: String }
        for name in ["fq_net_u8", "fq_net_s8"] {
            let meta = try JSONDecoder().decode(Meta.self, from: Data(contentsOf: URL(fileURLWithPath: "\(Self.dir)/\(name).json")))
            let model = try Model(graph: try ONNXModel.load(path: "\(Self.dir)/\(name).onnx"))
            XCTAssertEqual(model.graph.nodes.filter { $0.opType == "QuantizeDequantize" }.count, 3, name)
            let x = try Tensor.readNPY(path: "\(Self.dir)/\(name).input.npy")
            let pass = try model.forward([meta.input: x], recording: .gradient)
            let y = try XCTUnwrap(pass.outputs[meta.output])
            XCTAssertLessThanOrEqual(relative(y, try Tensor.readNPY(path: "\(Self.dir)/\(name).torch_output.npy")), 1e-5, "\(name) output")
            var seed = [Float](repeating: 0, count: y.count)
            for b in 0..<y.shape[0] { seed[b * y.shape[1] + meta.target] = 1 }
            let g = try XCTUnwrap(try pass.backward(seeds: [meta.output: try Tensor(shape: y.shape, floats: seed)], wrt: [meta.input])[meta.input])
            let want = try Tensor.readNPY(path: "\(Self.dir)/\(name).input_grad.npy")
            let e = relative(g, want)
            print(String(format: "QDQ agreement: \(name) input gradient %.2e", e))
            XCTAssertLessThanOrEqual(e, 1e-5, "\(name) input gradient")
            // The saturated inputs get exactly zero, as in PyTorch.
            XCTAssertEqual(try g.floats().map { $0 == 0 }, try want.floats().map { $0 == 0 }, "\(name) zero pattern")
        }
    }

    /// onnxruntime's `quantize_dynamic` on the tiny transformer: activations quantized at run
    /// time (DynamicQuantizeLinear), products in integers (MatMulInteger), rescaled by Cast and
    /// Mul. Loupe fuses each chain into one step with the same arithmetic and a straight-through
    /// gradient (`Graph.fusingDynamicQuantizedProducts`): the output is onnxruntime's exactly,
    /// and the input gradient is the float model's up to the quantization error — PyTorch's
    /// gradient of the unquantized model, to a few percent.
    func testDynamicallyQuantizedTransformer() throws {
        let graph = try ONNXModel.load(path: "\(Self.dir)/tiny_transformer_dyn.onnx")
        let model = try Model(graph: graph)
        XCTAssertEqual(model.graph.nodes.filter { $0.opType == "MatMulInteger" }.count, 0, "every integer product rewritten")
        XCTAssertEqual(model.graph.nodes.filter { $0.opType == "DynamicQuantizedMatMul" }.count, 7)
        let x = try Tensor.readNPY(path: "\(Self.dir)/tiny_transformer.input.npy")
        let input = model.inputs[0].name, output = model.outputs[0].name
        let pass = try model.forward([input: x], recording: .gradient)
        let y = try XCTUnwrap(pass.outputs[output])
        let e = relative(y, try Tensor.readNPY(path: "\(Self.dir)/tiny_transformer_dyn.ort_output.npy"))
        print(String(format: "QDQ agreement: tiny_transformer_dyn max|Δ|/max|ort| %.2e", e))
        XCTAssertEqual(e, 0, "the fused products keep the integer chain's arithmetic")
        var seed = [Float](repeating: 0, count: y.count)
        for b in 0..<y.shape[0] { seed[b * y.shape[1] + 2] = 1 }   // target 2 (tiny_transformer.json)
        let g = try XCTUnwrap(try pass.backward(seeds: [output: try Tensor(shape: y.shape, floats: seed)], wrt: [input])[input])
        let want = try Tensor.readNPY(path: "\(Self.dir)/tiny_transformer.input_grad.npy")
        let a = try g.floats(), w = try want.floats()
        let dot = zip(a, w).map { Double($0) * Double($1) }.reduce(0, +)
        let na = a.map { Double($0) * Double($0) }.reduce(0, +).squareRoot(), nw = w.map { Double($0) * Double($0) }.reduce(0, +).squareRoot()
        let relL2 = zip(a, w).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +).squareRoot() / nw
        print(String(format: "QDQ agreement: tiny_transformer_dyn input gradient vs float model: cosine %.5f, rel. L2 %.3f", dot / (na * nw), relL2))
        XCTAssertGreaterThan(dot / (na * nw), 0.99)
        XCTAssertLessThan(relL2, 0.1)
    }

    /// max|a − b| / max|b|.
    func relative(_ a: Tensor, _ b: Tensor) -> Double {
        guard a.shape == b.shape, let x = try? a.floats(), let y = try? b.floats() else { return .infinity }
        let scale = y.map { abs($0) }.max() ?? 1
        return Double(zip(x, y).map { abs($0 - $1) }.max() ?? 0) / Double(max(scale, 1e-12))
    }

    /// A QuantizeLinear whose integer output is also a graph output stays unfused: a gradient
    /// asked through it is refused naming it, not answered with zeros.
    func testUnpairedQuantizationStopsTheGradientByName() throws {
        var g = Graph(nodes: [
            Node(name: "q", opType: "QuantizeLinear", inputs: ["x", "s", "z"], outputs: ["q"]),
            Node(name: "dq", opType: "DequantizeLinear", inputs: ["q", "s", "z"], outputs: ["y"]),
        ], inputs: [ValueInfo(name: "x", elementType: 1, shape: [.fixed(3)])],
           outputs: [ValueInfo(name: "y"), ValueInfo(name: "q")], opsets: ["": 13])
        g.initializers = ["s": try Tensor(shape: [], floats: [0.1]), "z": try Tensor(shape: [], ints: [0])]
        g.constantElementTypes = ["z": 3]
        let model = try Model(graph: g)
        XCTAssertEqual(model.graph.nodes.map(\.opType), ["QuantizeLinear", "DequantizeLinear"], "a graph-output q is kept")
        let pass = try model.forward(["x": try Tensor(shape: [3], floats: [0.04, 0.26, -1])], recording: .gradient)
        XCTAssertEqual(try pass.outputs["y"]?.floats(), [0, Float(0.3), -1].map { Float($0) })
        XCTAssertThrowsError(try pass.backward(seeds: ["y": Tensor(zeros: [3], value: 1)], wrt: ["x"])) { e in
            XCTAssertTrue("\(e)".contains("q (QuantizeLinear)"), "\(e)")
        }
    }
}
