import Foundation
import XCTest
import LoupeTensor
import LoupeONNX
import LoupeGraph
@testable import LoupeExplain

/// Agreement with pytorch-grad-cam 1.5.7 on the tiny exported models in Tests/Fixtures/cam
/// (tools/fixtures/make_cam_fixtures.py): raw maps, channel weights and the library's final
/// scaled image, each within 1e-4 of the reference's largest magnitude.
final class CAMFixtureTests: XCTestCase {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/cam").path

    struct Meta: Decodable {
        var input: String
        var output: String
        var layer: String
        var targets: [Int]
        var score_batch_size: Int
        var ablation_batch_size: Int
        var tokens: Bool
        /// Leading tokens before the patches (1: class token; 2: class + distillation token).
        var token_prefix: Int?
        var channels_last: Bool?
        /// tiny_swin: the graph's own permute of the channels-last layer to (B, C, h, w).
        var channels_first_layer: String?
    }

    struct Fixture {
        let name: String
        let meta: Meta
        let model: Model
        let x: Tensor
        func npy(_ suffix: String) throws -> Tensor { try Tensor.readNPY(path: "\(CAMFixtureTests.dir)/\(name).\(suffix).npy") }
        func has(_ suffix: String) -> Bool { FileManager.default.fileExists(atPath: "\(CAMFixtureTests.dir)/\(name).\(suffix).npy") }
    }

    func load(_ name: String) throws -> Fixture {
        let meta = try JSONDecoder().decode(Meta.self, from: Data(contentsOf: URL(fileURLWithPath: "\(Self.dir)/\(name).json")))
        let model = try Model(graph: try ONNXModel.load(path: "\(Self.dir)/\(name).onnx"))
        return Fixture(name: name, meta: meta, model: model, x: try Tensor.readNPY(path: "\(Self.dir)/\(name).input.npy"))
    }

    /// max|a − b| / max|b|.
    static func relativeError(_ a: Tensor, _ b: Tensor) -> Double {
        guard a.shape == b.shape else { return .infinity }
        let x = a.doubles, y = b.doubles
        var d = 0.0, s = 0.0
        for i in 0..<x.count { d = max(d, abs(x[i] - y[i])); s = max(s, abs(y[i])) }
        return d / max(s, 1e-12)
    }

    func method(_ name: String, _ f: Fixture) -> CAM.Method? {
        switch name {
        case "GradCAM": return .gradCAM
        case "GradCAMPlusPlus": return .gradCAMPlusPlus
        case "XGradCAM": return .xGradCAM
        case "HiResCAM": return .hiResCAM
        case "LayerCAM": return .layerCAM
        case "EigenCAM": return .eigenCAM
        case "EigenGradCAM": return .eigenGradCAM
        case "ScoreCAM": return .scoreCAM(batchSize: f.meta.score_batch_size)
        case "AblationCAM": return .ablationCAM(batchSize: f.meta.ablation_batch_size)
        default: return nil
        }
    }

    static let methods = ["GradCAM", "GradCAMPlusPlus", "XGradCAM", "HiResCAM", "LayerCAM", "EigenCAM",
                          "EigenGradCAM", "ScoreCAM", "AblationCAM"]

    /// Per-method relative errors (raw, weights, out), printed for docs/cams.md.
    func check(_ name: String, methods: [String] = CAMFixtureTests.methods, tolerance: Double = 1e-4,
               file: StaticString = #filePath, line: UInt = #line) throws {
        let f = try load(name)
        for m in methods {
            guard let method = method(m, f) else { XCTFail("unknown method \(m)"); continue }
            let r = try CAM.explain(model: f.model, input: f.x, layer: f.meta.layer, classes: f.meta.targets, method: method)
            let wantRaw = try f.npy("\(m).raw")
            var raw = r.raw
            if m.hasPrefix("Eigen") {
                // 1.5.7 keeps LAPACK's sign; compare per sample up to sign and check our convention.
                raw = try Self.alignSigns(r.raw, to: wantRaw)
                try Self.assertSignConvention(r.raw, file: file, line: line)
            }
            let eRaw = Self.relativeError(raw, wantRaw)
            var report = "\(name) \(m): raw \(String(format: "%.2e", eRaw))"
            XCTAssertLessThanOrEqual(eRaw, tolerance, "\(name) \(m) raw map", file: file, line: line)
            if f.has("\(m).weights"), let w = r.weights {
                let e = Self.relativeError(w, try f.npy("\(m).weights"))
                report += String(format: " weights %.2e", e)
                XCTAssertLessThanOrEqual(e, tolerance, "\(name) \(m) weights", file: file, line: line)
            }
            let out = try CAM.scaledLikePytorchGradCAM(raw, height: f.x.shape[2], width: f.x.shape[3])
            let eOut = Self.relativeError(out, try f.npy("\(m).out"))
            report += String(format: " scaled %.2e", eOut)
            XCTAssertLessThanOrEqual(eOut, tolerance, "\(name) \(m) scaled output", file: file, line: line)
            print("CAM agreement: \(report)")
        }
    }

    /// Flips each sample of `a` whose correlation with `b` is negative.
    static func alignSigns(_ a: Tensor, to b: Tensor) throws -> Tensor {
        guard a.shape == b.shape else { return a }   // the comparison then reports the mismatch
        var x = try a.floats()
        let y = try b.floats()
        let n = a.count / a.shape[0]
        for s in 0..<a.shape[0] {
            var dot = 0.0
            for i in 0..<n { dot += Double(x[s * n + i]) * Double(y[s * n + i]) }
            if dot < 0 { for i in 0..<n { x[s * n + i] = -x[s * n + i] } }
        }
        return try Tensor(shape: a.shape, floats: x)
    }

    static func assertSignConvention(_ t: Tensor, file: StaticString, line: UInt) throws {
        let v = try t.floats()
        let n = t.count / t.shape[0]
        for s in 0..<t.shape[0] {
            let part = v[(s * n)..<((s + 1) * n)]
            XCTAssertGreaterThanOrEqual(abs(part.max() ?? 0), abs(part.min() ?? 0), "Eigen sign convention", file: file, line: line)
        }
    }

    func testPlainCNNWithBatchNorm() throws { try check("plain_cnn") }
    func testResidualDepthwise() throws { try check("residual_dw") }
    func testTinyViTTokens() throws { try check("tiny_vit") }
    /// A distilled DeiT: class and distillation tokens lead the patches; pytorch-grad-cam runs with
    /// `reshape_transform=lambda t: t[:, 2:].reshape(...)`, Loupe finds the grid by itself.
    func testTinyDeiTDistillationToken() throws { try check("tiny_deit") }
    /// torchvision's Swin Transformer: its final norm is channels-last (B, h, w, C); Loupe traces
    /// that through the graph and reads it as pytorch-grad-cam with `permute(0, 3, 1, 2)` does.
    func testTinySwinChannelsLast() throws { try check("tiny_swin") }

    /// The same CAMs at the graph's own permuted copy of the layer (B, C, h, w) equal those at the
    /// channels-last layer, and the layout is reported as traced.
    func testTinySwinPermutedLayerAgrees() throws {
        let f = try load("tiny_swin")
        let permuted = try XCTUnwrap(f.meta.channels_first_layer)
        for m in ["GradCAM", "EigenCAM", "AblationCAM", "ScoreCAM"] {
            let method = try XCTUnwrap(method(m, f))
            let a = try CAM.explain(model: f.model, input: f.x, layer: f.meta.layer, classes: f.meta.targets, method: method)
            let b = try CAM.explain(model: f.model, input: f.x, layer: permuted, classes: f.meta.targets, method: method)
            XCTAssertEqual(a.layout, .channelsLast, m)
            XCTAssertEqual(b.layout, .spatial, m)
            XCTAssertLessThanOrEqual(Self.relativeError(a.raw, b.raw), 1e-5, m)
        }
    }

    /// A 3-D layer (B, C, D, h, w): pytorch-grad-cam 1.5.7's 3-D Grad-CAM (its one method with
    /// 3-D support) — weights, the raw (B, D, h, w) map, activations and gradients; the other
    /// weightings see the same D·h·w positions, checked by their 2-D equivalents on the flattened
    /// layer; Score-CAM says why it cannot run.
    func testTiny3DGradCAM() throws {
        let f = try load("tiny_3d")
        let r = try CAM.explain(model: f.model, input: f.x, layer: f.meta.layer, classes: f.meta.targets, method: .gradCAM)
        let want = try f.npy("GradCAM.raw")
        XCTAssertEqual(r.raw.shape, want.shape)
        XCTAssertEqual(r.layout, .volumetric(depth: want.shape[1]))
        XCTAssertLessThanOrEqual(Self.relativeError(r.raw, want), 1e-4)
        XCTAssertLessThanOrEqual(Self.relativeError(try XCTUnwrap(r.weights), try f.npy("GradCAM.weights")), 1e-4)
        XCTAssertLessThanOrEqual(Self.relativeError(r.activations, try f.npy("acts")), 1e-5)
        XCTAssertLessThanOrEqual(Self.relativeError(try XCTUnwrap(r.gradients), try f.npy("grads")), 1e-4)
        print(String(format: "CAM agreement: tiny_3d GradCAM: raw %.2e", Self.relativeError(r.raw, want)))
        // Every other weighting on the 3-D layer equals it on the layer flattened to (B, C, D·h, w).
        let a = try f.npy("acts"), g = try f.npy("grads")
        let s = a.shape
        let flat = [s[0], s[1], s[2] * s[3], s[4]]
        for (m, w) in [(CAM.Method.gradCAMPlusPlus, CAM.GradCAMPlusPlus() as any CAMWeighting), (.xGradCAM, CAM.XGradCAM()),
                       (.hiResCAM, CAM.HiResCAM()), (.layerCAM, CAM.LayerCAM()), (.eigenCAM, CAM.EigenCAM())] {
            let got = try CAM.explain(model: f.model, input: f.x, layer: f.meta.layer, classes: f.meta.targets, method: m).raw
            let a2 = try a.reshaped(flat), g2 = try g.reshaped(flat)
            let ref = try CAM.rawMap(try w.readout(activations: a2, gradients: g2, classes: f.meta.targets), activations: a2)
            XCTAssertEqual(got.shape, want.shape, "\(m)")
            XCTAssertLessThanOrEqual(Self.relativeError(try got.reshaped(ref.shape), ref), 1e-4, "\(m)")
        }
        XCTAssertThrowsError(try CAM.explain(model: f.model, input: f.x, layer: f.meta.layer, classes: f.meta.targets,
                                             method: .scoreCAM(batchSize: 4))) { e in
            XCTAssertTrue("\(e)".contains("Score-CAM on a 3-D layer"), "\(e)")
        }
    }

    /// The layer activations and gradients the driver feeds the weightings equal the library's
    /// (for the ViT: after the token → grid reshape).
    func testLayerActivationsAndGradients() throws {
        for name in ["plain_cnn", "residual_dw", "tiny_vit", "tiny_swin", "tiny_deit"] {
            let f = try load(name)
            let r = try CAM.explain(model: f.model, input: f.x, layer: f.meta.layer, classes: f.meta.targets, method: .gradCAM)
            XCTAssertLessThanOrEqual(Self.relativeError(r.activations, try f.npy("acts")), 1e-5, name)
            XCTAssertLessThanOrEqual(Self.relativeError(try XCTUnwrap(r.gradients), try f.npy("grads")), 1e-4, name)
            let layout: CAM.Layout = f.meta.tokens ? .tokens(height: 4, width: 4, prefix: f.meta.token_prefix ?? 1)
                : f.meta.channels_last == true ? .channelsLast : .spatial
            XCTAssertEqual(r.layout, layout, name)
        }
    }

    /// The pure weightings on the library's own activations and gradients (no engine involved).
    func testWeightingsOnReferenceTensors() throws {
        let pairs: [(String, any CAMWeighting)] = [("GradCAM", CAM.GradCAM()), ("GradCAMPlusPlus", CAM.GradCAMPlusPlus()),
                                                   ("XGradCAM", CAM.XGradCAM()), ("HiResCAM", CAM.HiResCAM()),
                                                   ("LayerCAM", CAM.LayerCAM()), ("EigenGradCAM", CAM.EigenGradCAM())]
        for name in ["plain_cnn", "residual_dw", "tiny_vit", "tiny_swin", "tiny_deit"] {
            let f = try load(name)
            let a = try f.npy("acts"), g = try f.npy("grads")
            for (m, w) in pairs {
                var raw = try CAM.rawMap(try w.readout(activations: a, gradients: g, classes: f.meta.targets), activations: a)
                let want = try f.npy("\(m).raw")
                if m.hasPrefix("Eigen") { raw = try Self.alignSigns(raw, to: want) }
                XCTAssertLessThanOrEqual(Self.relativeError(raw, want), 1e-5, "\(name) \(m)")
            }
        }
    }
}

/// FullGrad against pytorch-grad-cam 1.5.7's final output (all Conv/BN biases of each net).
final class CAMFullGradTests: XCTestCase {
    func testFullGradMatchesLibrary() throws {
        for (name, layers) in [("plain_cnn", 4), ("residual_dw", 3), ("tiny_vit", 1), ("tiny_swin", 1), ("tiny_deit", 1)] {
            let dir = CAMFixtureTests.dir
            let model = try Model(graph: try ONNXModel.load(path: "\(dir)/\(name).onnx"))
            XCTAssertEqual(CAM.FullGrad.biasLayers(of: model).count, layers, name)
            let x = try Tensor.readNPY(path: "\(dir)/\(name).input.npy")
            let got = try CAM.FullGrad.explain(model: model, input: x, classes: [1, 3])
            let e = CAMFixtureTests.relativeError(got, try Tensor.readNPY(path: "\(dir)/\(name).FullGrad.out.npy"))
            print(String(format: "CAM agreement: \(name) FullGrad: scaled %.2e", e))
            XCTAssertLessThanOrEqual(e, 1e-4, name)
        }
    }
}

/// FullGrad on a quantized model: its biases are DequantizeLinear of int32 constants (folded
/// when the model loads), found like the float model's initializers.
final class FullGradQuantizedTests: XCTestCase {
    func testQuantizedModelKeepsItsBiasLayers() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/models").path
        let float = try Model(graph: try ONNXModel.load(path: "\(dir)/tiny_cnn.onnx"))
        let quantized = try Model(graph: try ONNXModel.load(path: "\(dir)/tiny_cnn_qdq_u8.onnx"))
        let want = CAM.FullGrad.biasLayers(of: float), got = CAM.FullGrad.biasLayers(of: quantized)
        XCTAssertEqual(got.count, want.count)
        XCTAssertGreaterThan(got.count, 0)
        let x = try Tensor.readNPY(path: "\(dir)/tiny_cnn.input.npy")
        let map = try CAM.FullGrad.explain(model: quantized, input: x, classes: [0])
        XCTAssertEqual(map.shape, [1, 16, 16])
    }
}
