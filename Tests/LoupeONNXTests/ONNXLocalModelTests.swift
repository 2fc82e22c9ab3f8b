import Foundation
import LoupeGraph
import LoupeONNX
import LoupeTensor
import XCTest

/// Loads real models and checks that export → import reproduces them: the committed demo model
/// and the exported fixture models always, plus every model in the git-ignored `.models/`
/// folder (written by the Python tools; or the folder named by `LOUPE_MODELS_DIR`) when present.
final class ONNXLocalModelTests: XCTestCase {
    func testLocalModelsRoundTrip() throws {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let dir = ProcessInfo.processInfo.environment["LOUPE_MODELS_DIR"] ?? repo.appendingPathComponent(".models").path
        var paths = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".onnx") }
            .sorted().map { dir + "/" + $0 }
        paths.append(repo.appendingPathComponent("demo/model.onnx").path)
        let fixtures = repo.appendingPathComponent("Tests/Fixtures").path
        if let walk = FileManager.default.enumerator(atPath: fixtures) {
            // Tests/Fixtures/onnx holds deliberately malformed files for the decoder's own tests.
            for case let rel as String in walk where rel.hasSuffix(".onnx") && !rel.hasPrefix("onnx/") {
                paths.append(fixtures + "/" + rel)
            }
        }
        XCTAssertGreaterThan(paths.count, 1)
        for path in paths {
            let name = (path as NSString).lastPathComponent
            let start = Date()
            let graph = try ONNXModel.load(path: path)
            XCTAssertFalse(graph.nodes.isEmpty, name)
            XCTAssertFalse(graph.inputs.isEmpty, name)
            XCTAssertTrue(graph.inputs.allSatisfy { graph.initializers[$0.name] == nil }, name)
            let reloaded = try Graph(onnxBytes: graph.onnxBytes())
            XCTAssertEqual(reloaded.nodes, graph.nodes, name)
            XCTAssertEqual(reloaded.initializers == graph.initializers, true, name)
            XCTAssertEqual(reloaded.inputs, graph.inputs, name)
            XCTAssertEqual(reloaded.outputs, graph.outputs, name)
            print("\(name): \(graph.nodes.count) nodes, \(graph.initializers.count) initializers, opset \(graph.opset), "
                + "\(String(format: "%.2f", Date().timeIntervalSince(start))) s")
        }
    }
}
