import Foundation
import XCTest
import LoupeTensor
import LoupeGraph
@testable import LoupeExplain

/// Guided Grad-CAM against Captum 0.9.0 `GuidedGradCam` on the explain fixtures' `cnn_bn` and
/// `resnet_dw` (references in Tests/Fixtures/rollout, tools/fixtures/make_rollout_fixtures.py).
final class GuidedGradCAMTests: XCTestCase {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/rollout").path

    func testAgreesWithCaptum() throws {
        for name in ["cnn_bn", "resnet_dw"] {
            let c = try GradientFixtures.load(name)
            let x = try c.array("input")
            let layer = name == "cnn_bn" ? "/conv2/Conv_output_0" : "/relu1/Relu_output_0"
            for (mode, suffix) in [(GuidedGradCAM.Interpolation.nearest, ""), (.bilinear, "_bilinear")] {
                let e = try GuidedGradCAM(layer: layer, interpolation: mode)
                    .explain(c.model, input: x, target: .indices(c.meta.targets))
                let ref = try Tensor.readNPY(path: "\(Self.dir)/\(name).guided_gradcam\(suffix).npy")
                assertGradientClose(e.attribution, ref, 1e-4, "\(name) GuidedGradCAM \(mode)")
                XCTAssertEqual(e.targets, c.meta.targets)
                // The fixture discriminates: guided backprop alone is not the answer.
                let gb = try GuidedBackprop().explain(c.model, input: x, target: .indices(c.meta.targets))
                XCTAssertGreaterThan(gradientRelativeError(gb.attribution, ref), 0.05, "\(name) \(mode)")
            }
        }
    }

    /// Guided Grad-CAM = guided backprop × the upsampled ReLU Grad-CAM map, assembled by hand
    /// from the existing explainers.
    func testIsGuidedBackpropTimesUpsampledGradCAM() throws {
        let c = try GradientFixtures.load("cnn_bn")
        let x = try c.array("input")
        let layer = "/conv2/Conv_output_0"
        let e = try GuidedGradCAM(layer: layer).explain(c.model, input: x, target: .indices(c.meta.targets))
        let gb = try GuidedBackprop().explain(c.model, input: x, target: .indices(c.meta.targets)).attribution
        let cam = try CAM.explain(model: c.model, input: x, layer: layer, classes: c.meta.targets, method: .gradCAM).cam
        XCTAssertEqual(cam.shape, [2, 6, 6])
        let g = gb.doubles, m = cam.doubles, a = e.attribution.doubles
        var worst = 0.0, scale = 0.0
        for n in 0..<2 { for ch in 0..<3 { for y in 0..<12 { for xx in 0..<12 {
            let i = ((n * 3 + ch) * 12 + y) * 12 + xx
            let want = g[i] * m[(n * 6 + y / 2) * 6 + xx / 2]
            worst = max(worst, abs(a[i] - want)); scale = max(scale, abs(want))
        } } } }
        XCTAssertLessThanOrEqual(worst, 1e-6 * scale)
    }

    func testNearestIndicesMatchPyTorch() throws {
        // F.interpolate(mode="nearest") indices, computed with torch 2.15.
        let cases: [(Int, Int, [Int])] = [(3, 7, [0, 0, 0, 1, 1, 2, 2]), (5, 3, [0, 1, 3]),
                                          (6, 12, [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]),
                                          (4, 10, [0, 0, 0, 1, 1, 2, 2, 2, 3, 3])]
        for (i, o, want) in cases {
            XCTAssertEqual(GuidedGradCAM.nearestTaps(from: i, to: o), want, "\(i)→\(o)")
        }
        let maps = try Tensor(shape: [1, 2, 3], floats: [1, 2, 3, 4, 5, 6])
        let r = try GuidedGradCAM.resizedNearest(maps, height: 3, width: 7)
        XCTAssertEqual(try r.floats(), [1, 1, 1, 2, 2, 3, 3, 1, 1, 1, 2, 2, 3, 3, 4, 4, 4, 5, 5, 6, 6])
    }

    func testNonImageInputIsRefusedByName() throws {
        let c = try GradientFixtures.load("cnn_bn")
        let x = try c.array("input")
        XCTAssertThrowsError(try GuidedGradCAM(layer: "/conv2/Conv_output_0")
            .explain(c.model, input: x, target: .indices(c.meta.targets), options: ExplainOptions(layer: "/conv2/Conv_output_0"))) { e in
            XCTAssertTrue("\(e)".contains("GuidedGradCAM"), "\(e)")
        }
        XCTAssertThrowsError(try GuidedGradCAM(layer: "/Flatten_output_0").explain(c.model, input: x, target: .indices(c.meta.targets))) { e in
            XCTAssertTrue("\(e)".contains("/Flatten_output_0"), "\(e)")
        }
    }
}
