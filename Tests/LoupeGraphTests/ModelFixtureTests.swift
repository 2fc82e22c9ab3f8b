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
