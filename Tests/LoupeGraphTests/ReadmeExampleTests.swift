import Foundation
import XCTest
import LoupeTensor
import LoupeONNX
import LoupeGraph

/// The README's library example, verbatim except for paths, so it cannot rot.
final class ReadmeExampleTests: XCTestCase {
    func testReadmeExample() throws {
        let dir = ModelFixtureTests.dir
        let model = try Model(graph: try ONNXModel.load(path: "\(dir)/tiny_cnn.onnx"))
        let x = try Tensor.readNPY(path: "\(dir)/tiny_cnn.input.npy")

        let layer = try model.hook("/Relu_1_output_0")
        var hooks = Hooks()
        hooks.capture(layer)
        let pass = try model.forward(["input": x], hooks: hooks, recording: .gradient)
        let logits = try pass.value("output")
        let activation = try pass.value(layer.name)

        var seed = [Float](repeating: 0, count: logits.count)
        seed[3] = 1
        let grads = try pass.backward(seeds: ["output": try Tensor(shape: logits.shape, floats: seed)],
                                      wrt: ["input", layer.name])
        XCTAssertEqual(logits.shape, [1, 5])
        XCTAssertEqual(activation.shape, [1, 8, 8, 8])
        XCTAssertEqual(grads["input"]?.shape, [1, 3, 16, 16])
        XCTAssertEqual(grads[layer.name]?.shape, [1, 8, 8, 8])
    }
}
