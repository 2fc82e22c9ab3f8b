import Foundation
import XCTest
import LoupeTensor
import LoupeGraph
import LoupeONNX

/// Locates Tests/Fixtures/explain (written by tools/fixtures/make_explain_fixtures.py).
enum GradientFixtures {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/explain").path

    struct Meta: Decodable {
        var name: String
        var targets: [Int]
        var ig_steps: Int
        var nt_samples: Int
        var stdev: Float
        var deltas: [String: [Float]]
        var layer: String
        var blur_sigma: Double
    }

    /// A fixture model with its inputs and Captum's attributions.
    struct Case {
        var meta: Meta
        var model: Model
        func array(_ key: String) throws -> Tensor {
            try Tensor.readNPY(path: "\(GradientFixtures.dir)/\(meta.name).\(key).npy")
        }
    }

    nonisolated(unsafe) static var cache: [String: Case] = [:]
    static let lock = NSLock()

    static func load(_ name: String) throws -> Case {
        lock.lock()
        defer { lock.unlock() }
        if let c = cache[name] { return c }
        let meta = try JSONDecoder().decode(Meta.self, from: Data(contentsOf: URL(fileURLWithPath: "\(dir)/\(name).json")))
        let model = try Model(graph: try ONNXModel.load(path: "\(dir)/\(name).onnx"))
        let c = Case(meta: meta, model: model)
        cache[name] = c
        return c
    }

    static let models = ["cnn_bn", "resnet_dw", "vit_tiny"]
}

/// max |a − b| / max |b|.
func gradientRelativeError(_ a: Tensor, _ b: Tensor) -> Double {
    guard a.shape == b.shape else { return .infinity }
    let x = a.doubles, y = b.doubles
    var d = 0.0, s = 0.0
    for i in 0..<x.count { d = max(d, abs(x[i] - y[i])); s = max(s, abs(y[i])) }
    return d / max(s, 1e-30)
}

func assertGradientClose(_ a: Tensor, _ b: Tensor, _ tol: Double = 1e-4, _ message: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.shape, b.shape, message, file: file, line: line)
    let e = gradientRelativeError(a, b)
    XCTAssertLessThanOrEqual(e, ProcessInfo.processInfo.environment["EXPLAIN_TOL0"] != nil ? 0 : tol, "\(message): max|Δ| / max|ref| = \(e)", file: file, line: line)
}
