import Foundation
import XCTest
import LoupeTensor
import LoupeONNX
@testable import LoupeGraph

/// End-to-end agreement with PyTorch on the tiny exported models in Tests/Fixtures/models
/// (written by tools/fixtures/make_model_fixtures.py): outputs and the input gradient of
/// `output[:, target].sum()` computed with torch.autograd, both within 1e-4 of their largest
/// magnitude.
final class ModelFixtureTests: XCTestCase {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/models").path

    struct Meta: Decodable {
        struct IO: Decodable { var name: String; var file: String }
        struct Grad: Decodable { var file: String; var wrt: String }
        var input: IO
        var output: IO
        var target: Int
        var input_grad: Grad
    }

    func check(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let dir = Self.dir
        let meta = try JSONDecoder().decode(Meta.self, from: Data(contentsOf: URL(fileURLWithPath: "\(dir)/\(name).json")))
        let model = try Model(graph: try ONNXModel.load(path: "\(dir)/\(name).onnx"))
        let x = try Tensor.readNPY(path: "\(dir)/\(meta.input.file)")
        let pass = try model.forward([meta.input.name: x], recording: .gradient)
        let y = try XCTUnwrap(pass.outputs[meta.output.name])
        let want = try Tensor.readNPY(path: "\(dir)/\(meta.output.file)")
        XCTAssertLessThanOrEqual(relativeError(y, want), 1e-4, "\(name) output", file: file, line: line)

        var seed = [Float](repeating: 0, count: y.count)
        let classes = y.shape[y.rank - 1]
        for b in 0..<(y.count / classes) { seed[b * classes + meta.target] = 1 }
        let g = try pass.backward(seeds: [meta.output.name: try Tensor(shape: y.shape, floats: seed)], wrt: [meta.input_grad.wrt])
        let wantGrad = try Tensor.readNPY(path: "\(dir)/\(meta.input_grad.file)")
        XCTAssertLessThanOrEqual(relativeError(try XCTUnwrap(g[meta.input_grad.wrt]), wantGrad), 1e-4, "\(name) input gradient", file: file, line: line)
    }

    func relativeError(_ a: Tensor, _ b: Tensor) -> Double {
        guard a.shape == b.shape else { return .infinity }
        let x = a.doubles, y = b.doubles
        var d = 0.0, s = 0.0
        for i in 0..<x.count { d = max(d, abs(x[i] - y[i])); s = max(s, abs(y[i])) }
        return d / max(s, 1e-12)
    }

    func testTinyCNNWithBatchNormAndDepthwise() throws { try check("tiny_cnn") }
    func testTinyResidualBlock() throws { try check("tiny_resnet_block") }
    func testTinyMLP() throws { try check("tiny_mlp") }
    func testTinyTransformer() throws { try check("tiny_transformer") }
}

/// Gradients to parameters and intermediate values on a real exported model, checked by
/// identities of its last layer (y = h·Wᵀ + b): ∂L/∂b = Σ_batch seed, ∂L/∂W = seedᵀ·h,
/// ∂L/∂h = seed·W; and by central differences of the whole model for one conv weight.
final class ParameterGradientTests: XCTestCase {
    func testGradientsToParametersAndLayers() throws {
        let dir = ModelFixtureTests.dir
        let model = try Model(graph: try ONNXModel.load(path: "\(dir)/tiny_cnn.onnx"))
        let x = try Tensor.readNPY(path: "\(dir)/tiny_cnn.input.npy")
        var hooks = Hooks()
        hooks.capture(try model.hook("/Flatten_output_0"))
        let pass = try model.forward(["input": x], hooks: hooks, recording: .gradient)
        let y = try XCTUnwrap(pass.outputs["output"])
        let seedValues: [Float] = [0.5, -1, 2, 0, 0.25]
        let seed = try Tensor(shape: y.shape, floats: seedValues)
        let g = try pass.backward(seeds: ["output": seed], wrt: ["fc.bias", "fc.weight", "/Flatten_output_0", "conv1.weight"])
        XCTAssertEqual(try XCTUnwrap(g["fc.bias"]).floats(), seedValues)
        let h = try XCTUnwrap(pass.captured["/Flatten_output_0"]).floats()
        let gw = try XCTUnwrap(g["fc.weight"]).floats()
        let w = try XCTUnwrap(model.graph.initializers["fc.weight"]).floats()
        let hidden = h.count
        for c in 0..<5 { for k in 0..<hidden {
            XCTAssertEqual(gw[c * hidden + k], seedValues[c] * h[k], accuracy: 1e-6)
        } }
        let gh = try XCTUnwrap(g["/Flatten_output_0"]).floats()
        for k in 0..<hidden {
            let want = (0..<5).reduce(Float(0)) { $0 + seedValues[$1] * w[$1 * hidden + k] }
            XCTAssertEqual(gh[k], want, accuracy: 1e-5)
        }

        // One conv weight by central differences through BatchNorm, ReLU, pooling and Gemm.
        let gc = try XCTUnwrap(g["conv1.weight"]).floats()
        var graph = model.graph
        let w0 = try XCTUnwrap(graph.initializers["conv1.weight"])
        var wv = try w0.floats()
        let k = 7, eps: Float = 1e-2
        XCTAssertGreaterThan(abs(gc[k]), 1e-4, "pick a weight that matters")
        func objective(_ v: [Float]) throws -> Double {
            graph.initializers["conv1.weight"] = try Tensor(shape: w0.shape, floats: v)
            let out = try Model(graph: graph).run(["input": x])["output"]!.floats()
            return zip(out, seedValues).reduce(0) { $0 + Double($1.0) * Double($1.1) }
        }
        wv[k] += eps; let lp = try objective(wv)
        wv[k] -= 2 * eps; let lm = try objective(wv)
        XCTAssertEqual(Double(gc[k]), (lp - lm) / Double(2 * eps), accuracy: 2e-3 * max(1, abs(Double(gc[k]))))
    }
}
