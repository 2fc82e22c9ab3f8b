import LoupeImage
import LoupeTensor
import XCTest

/// Colormaps against matplotlib 3.11.2 / Zennit 0.5.1, percentiles against NumPy, bilinear
/// upsampling against torch.nn.functional.interpolate, and the overlay arithmetic.
final class HeatmapTests: XCTestCase {
    func testColormapsMatchMatplotlibAtProbeValues() {
        // matplotlib.colormaps[name]([0, .1, .25, .5, .73, .999, 1], bytes=True), printed by the
        // fixture generator.
        let probes: [Float] = [0, 0.1, 0.25, 0.5, 0.73, 0.999, 1]
        let expected: [Colormap: [[UInt8]]] = [
            .turbo: [[48, 18, 59], [68, 88, 203], [40, 187, 235], [164, 252, 59], [253, 143, 40], [122, 4, 2], [122, 4, 2]],
            .jet: [[0, 0, 127], [0, 0, 241], [0, 128, 255], [124, 255, 121], [255, 170, 0], [127, 0, 0], [127, 0, 0]],
            .viridis: [[68, 1, 84], [72, 35, 116], [58, 82, 139], [32, 144, 140], [81, 196, 104], [253, 231, 36], [253, 231, 36]],
            .inferno: [[0, 0, 3], [22, 11, 57], [87, 15, 109], [187, 55, 84], [247, 131, 16], [252, 254, 164], [252, 254, 164]],
            .bwr: [[0, 0, 255], [50, 50, 255], [128, 128, 255], [255, 254, 254], [255, 138, 138], [255, 0, 0], [255, 0, 0]],
        ]
        for (map, colors) in expected {
            for (v, c) in zip(probes, colors) {
                let got = map.color(v)
                XCTAssertEqual([got.r, got.g, got.b], c, "\(map) at \(v)")
            }
        }
        XCTAssertTrue(Colormap.allCases.allSatisfy { $0.lut.count == 768 })
    }

    func testColdnhotMatchesZennitNodes() {
        // Zennit 0.5.1 CMAPS['coldnhot'].palette(): cyan, blue at 64, black at 128 (zero), red at
        // 170, yellow at 212, white at 255; entry 100 is (0, 0, 111).
        let lut = Colormap.coldnhot.lut
        func entry(_ i: Int) -> [UInt8] { Array(lut[i * 3..<i * 3 + 3]) }
        XCTAssertEqual(entry(0), [0, 255, 255])
        XCTAssertEqual(entry(64), [0, 0, 255])
        XCTAssertEqual(entry(100), [0, 0, 111])
        XCTAssertEqual(entry(128), [0, 0, 0])
        XCTAssertEqual(entry(170), [255, 0, 0])
        XCTAssertEqual(entry(212), [255, 255, 0])
        XCTAssertEqual(entry(255), [255, 255, 255])
        XCTAssertTrue(Colormap.coldnhot.isDiverging && Colormap.bwr.isDiverging && !Colormap.jet.isDiverging)
    }

    func testOutOfRangeAndNaNUseTheEndColours() {
        XCTAssertTrue(Colormap.viridis.color(-3) == Colormap.viridis.color(0))
        XCTAssertTrue(Colormap.viridis.color(.nan) == Colormap.viridis.color(0))
        XCTAssertTrue(Colormap.viridis.color(7) == Colormap.viridis.color(1))
        // matplotlib: index int(x * 256): 0.99609375 * 256 = 255 exactly, 0.2 -> 51.
        XCTAssertTrue(Colormap.viridis.color(0.2) == (64, 67, 135))
    }

    func testPercentileMatchesNumPyLinear() {
        let a: [Float] = [3, -1, 4, 1, -5, 9, 2, 6, -5, 3, 5]
        let expected: [(Double, Float)] = [(0, -5), (10, -5), (25, 0), (50, 3), (90, 6), (99.5, 8.85), (100, 9)]
        for (q, v) in expected { XCTAssertEqual(Heatmap.percentile(a, q), v, "q=\(q)") }
        XCTAssertEqual(Heatmap.percentile(a.map(abs), 99), 8.7, accuracy: 1e-6)
        XCTAssertEqual(Heatmap.percentile([], 50), 0)
        XCTAssertEqual(Heatmap.percentile([.nan, 2], 50), 2)
    }

    func testScalingModes() {
        let v: [Float] = [-2, -1, 0, 1, 4]
        XCTAssertEqual(Heatmap.scaled(v, .unsigned), [0, 1.0 / 6, 2.0 / 6, 3.0 / 6, 1], accuracy: 1e-6)
        XCTAssertEqual(Heatmap.scaled(v, .signed), [0.25, 0.375, 0.5, 0.625, 1], accuracy: 1e-6)
        XCTAssertEqual(Heatmap.scaled(v, .absolute), [0.5, 0.25, 0, 0.25, 1], accuracy: 1e-6)
        // Clipping at the 75th percentile of |v| (= 2): 4 saturates, -2 reaches -1.
        XCTAssertEqual(Heatmap.scaled(v, .signed, clipPercentile: 75), [0, 0.25, 0.5, 0.75, 1], accuracy: 1e-6)
        XCTAssertEqual(Heatmap.scaled([3, 3], .unsigned), [0, 0])
        XCTAssertEqual(Heatmap.scaled([0, 0], .signed), [0.5, 0.5])
        XCTAssertEqual(Heatmap.scaled([.infinity, 1], .absolute), [0, 1])
    }

    func testUpsamplingMatchesTorchInterpolate() throws {
        let cases = [("3x4", "7x10", 4, 3, 10, 7), ("2x3", "5x4", 3, 2, 4, 5), ("4x4", "16x16", 4, 4, 16, 16),
                     ("5x6", "3x4", 6, 5, 4, 3)]
        for (input, output, w, h, ow, oh) in cases {
            let x = try Tensor.readNPY(path: Fixtures.path("interp_\(input)_in.npy"))
            let y = try Tensor.readNPY(path: Fixtures.path("interp_\(input)_to_\(output).npy"))
            let ours = try Heatmap.upsampled(try x.floats(), width: w, height: h, toWidth: ow, height: oh)
            XCTAssertLessThanOrEqual(maxAbsDifference(ours, try y.floats()), 1e-6, "\(input) -> \(output)")
        }
    }

    func testUpsamplingByHand() throws {
        // 1 x 2 -> 1 x 4: source x = (d + 0.5) / 2 - 0.5 = -0.25 (clamped to 0), 0.25, 0.75, 1.25.
        XCTAssertEqual(try Heatmap.upsampled([0, 8], width: 2, height: 1, toWidth: 4, height: 1), [0, 2, 6, 8])
    }

    func testBlendArithmetic() throws {
        let base = try Image(width: 2, height: 1, channels: 1, pixels: [100, 200])
        let overlay = try Image(width: 2, height: 1, channels: 3, pixels: [255, 0, 0, 0, 0, 255])
        let out = try Heatmap.blend(overlay, over: base, alpha: 0.5)
        // (1 - 0.5) * 100 + 0.5 * 255 = 177.5 -> 178 (round half away from zero).
        XCTAssertEqual(out.pixels, [178, 50, 50, 100, 100, 228])
        let weighted = try Heatmap.blend(overlay, over: base, alpha: 0.5, weights: [0, 1])
        XCTAssertEqual(weighted.pixels, [100, 100, 100, 100, 100, 228])
        XCTAssertThrowsError(try Heatmap.blend(overlay, over: base, alpha: 1.5))
    }

    func testRenderProducesAPNGOverTheImage() throws {
        let photo = try Fixtures.image("edge_rgba8.png") // 7 x 5
        let cam = try Tensor(shape: [1, 1, 2, 2], floats: [0, 1, 2, 3])
        let rendered = try Heatmap.render(cam, over: photo, colormap: .jet, scaling: .unsigned, clipPercentile: 100, alpha: 1)
        XCTAssertEqual(rendered.width, 7)
        XCTAssertEqual(rendered.height, 5)
        XCTAssertEqual(rendered.channels, 3)
        // alpha 1: pure colormap; top-left is the map minimum, bottom-right the maximum.
        XCTAssertEqual(Array(rendered[0, 0]), [0, 0, 127])
        XCTAssertEqual(Array(rendered[6, 4]), [127, 0, 0])
        let png = try rendered.pngData()
        XCTAssertEqual(try Image(data: png), rendered)
        XCTAssertThrowsError(try Heatmap.render(Tensor(zeros: [3, 2, 2]), over: photo)) { error in
            XCTAssertTrue("\(error)".contains("[3, 2, 2]"), "\(error)")
        }
    }

    func testColorBarRunsFromZeroToOne() throws {
        let bar = try Colormap.inferno.colorBar(width: 5, height: 2)
        XCTAssertEqual(Array(bar[0, 1]), [0, 0, 3])
        XCTAssertEqual(Array(bar[4, 0]), [252, 254, 164])
    }
}
