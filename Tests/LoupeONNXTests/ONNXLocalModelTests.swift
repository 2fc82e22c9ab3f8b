import Foundation
import LoupeGraph
import LoupeONNX
import LoupeTensor
import XCTest

/// Loads every real model in the git-ignored `.models/` folder (written by the Python tools; or
/// the folder named by `LOUPE_MODELS_DIR`) and checks that export → import reproduces it.
/// Skipped when no such folder exists, so a fresh checkout needs neither Python nor downloads.
final class ONNXLocalModelTests: XCTestCase {
    func testLocalModelsRoundTrip() throws {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let dir = ProcessInfo.processInfo.environment["LOUPE_MODELS_DIR"] ?? repo.appendingPathComponent(".models").path
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".onnx") }.sorted()
        guard !names.isEmpty else { throw XCTSkip("no .onnx files in \(dir)") }
        for name in names {
            let start = Date()
            let graph = try ONNXModel.load(path: dir + "/" + name)
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
