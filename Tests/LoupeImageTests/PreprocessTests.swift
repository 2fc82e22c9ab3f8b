import Foundation
import LoupeImage
import LoupeTensor
import XCTest

/// Preprocessing against torchvision 0.29.2 / Pillow 13.0.0 outputs on three real photos
/// (Tests/Fixtures/images, tools/fixtures/make_image_fixtures.py).
final class PreprocessTests: XCTestCase {
    func testResizeEqualsPILBitForBit() throws {
        for name in Fixtures.photos {
            let photo = try Fixtures.image("\(name).png")
            let ours = try Resize(64)(photo)
            let pil = try Fixtures.image("\(name).resize64.pil.png")
            XCTAssertEqual(ours.width, pil.width, name)
            XCTAssertEqual(ours.height, pil.height, name)
            XCTAssertEqual(ours.pixels, pil.pixels, "\(name): \(sampleDifference(ours.pixels, pil.pixels))")
        }
    }

    func testTensorMatchingResizeEqualsTorchvisionUInt8TensorPath() throws {
        for name in Fixtures.photos {
            let photo = try Fixtures.image("\(name).png")
            let ours = try Resize(64, matching: .tensor)(photo)
            let torch = try Fixtures.image("\(name).resize64.tensor.png")
            XCTAssertEqual(ours.pixels, torch.pixels, "\(name): \(sampleDifference(ours.pixels, torch.pixels))")
        }
    }

    func testPILAndTensorResizeDifferByAtMostOneLevel() throws {
        // The generator measured max |diff| 1 in 37 / 55 / 188 samples between torchvision's
        // two resize paths; the two Swift variants reproduce exactly that.
        var measured: [Int] = []
        for name in Fixtures.photos {
            let photo = try Fixtures.image("\(name).png")
            let d = sampleDifference(try Resize(64)(photo).pixels, try Resize(64, matching: .tensor)(photo).pixels)
            XCTAssertEqual(d.max, 1, name)
            measured.append(d.count)
        }
        XCTAssertEqual(measured, [37, 55, 188])
    }

    func testResizeOutputSizeFollowsTorchvision() throws {
        // Shorter side to 64, longer side int(64 * long / short).
        XCTAssertTrue(try Resize(64).outputSize(width: 151, height: 100) == (96, 64))
        XCTAssertTrue(try Resize(64).outputSize(width: 95, height: 127) == (64, 85))
        XCTAssertTrue(try Resize(256).outputSize(width: 500, height: 375) == (341, 256))
        XCTAssertTrue(try Resize(64, maxSize: 80).outputSize(width: 151, height: 100) == (80, 53)) // torchvision: [53, 80]
        XCTAssertTrue(try Resize(height: 10, width: 20).outputSize(width: 3, height: 3) == (20, 10))
        XCTAssertThrowsError(try Resize(0).outputSize(width: 3, height: 3))
    }

    func testResizeUpscalesAndHandlesSmallImages() throws {
        // Upscaling 2 -> 4: PIL's triangle filter gives the 1/4, 3/4 blends of neighbours.
        let image = try Image(width: 2, height: 1, channels: 1, pixels: [0, 200])
        let up = try image.resizedBilinear(width: 4, height: 1)
        XCTAssertEqual(up.pixels, [0, 50, 150, 200])
        XCTAssertEqual(try image.resizedBilinear(width: 2, height: 1), image)
    }

    func testCenterCropUsesRoundHalfToEvenAndPads() throws {
        let pixels = (0..<(5 * 4)).map { UInt8($0) }
        let image = try Image(width: 5, height: 4, channels: 1, pixels: pixels)
        // (5 - 2) / 2 = 1.5 -> 2 (half to even); (4 - 1) / 2 = 1.5 -> 2.
        XCTAssertEqual(try CenterCrop(height: 1, width: 2)(image).pixels, [12, 13])
        // (5 - 4) / 2 = 0.5 -> 0; (4 - 3) / 2 = 0.5 -> 0.
        XCTAssertEqual(try CenterCrop(height: 3, width: 4)(image).pixels, [0, 1, 2, 3, 5, 6, 7, 8, 10, 11, 12, 13])
        // Larger than the image: zero padding of (1, 2) columns and (1, 1) rows.
        let small = try Image(width: 2, height: 1, channels: 1, pixels: [7, 9])
        XCTAssertEqual(try CenterCrop(height: 3, width: 5)(small).pixels, [0, 0, 0, 0, 0, 0, 7, 9, 0, 0, 0, 0, 0, 0, 0])
    }

    func testGrayscaleEqualsPIL() throws {
        for name in Fixtures.photos {
            let ours = try Grayscale()(try Fixtures.image("\(name).png"))
            let pil = try Fixtures.image("\(name).gray.png")
            XCTAssertEqual(ours, pil, name)
        }
        let rgb = try Grayscale(outputChannels: 3)(try Image(width: 1, height: 1, channels: 3, pixels: [255, 0, 0]))
        XCTAssertEqual(rgb.pixels, [76, 76, 76]) // 0.299 * 255 = 76.2
    }

    func testFullPipelineMatchesTorchvisionWithin1e5() throws {
        let pipeline = Preprocess(resize: 64, crop: [56], mean: Normalize.imagenet.mean, std: Normalize.imagenet.std,
                                  inputSize: [3, 56, 56])
        for name in Fixtures.photos {
            let ours = try pipeline(try Fixtures.image("\(name).png"))
            let reference = try Tensor.readNPY(path: Fixtures.path("\(name).pre.npy"))
            XCTAssertEqual(ours.shape, [1, 3, 56, 56])
            XCTAssertEqual(reference.shape, [1, 3, 56, 56])
            let d = maxAbsDifference(try ours.floats(), try reference.floats())
            XCTAssertLessThanOrEqual(d, 1e-5, name)
        }
    }

    func testPipelineFromJPEGMatchesTorchvisionFromPILDecodedPixels() throws {
        // Our JPEG decode equals PIL's, so the pipeline from the .jpg equals the pipeline from
        // PIL's decoded pixels.
        let pipeline = Preprocess.imagenet
        let ours = try pipeline(try Fixtures.image("chelsea.jpg"))
        let fromPIL = try pipeline(try Fixtures.image("chelsea.jpg.pil.png"))
        XCTAssertEqual(ours, fromPIL)
        XCTAssertEqual(ours.shape, [1, 3, 224, 224])
    }

    func testToTensorAndNormalizeByHand() throws {
        let image = try Image(width: 2, height: 1, channels: 3, pixels: [255, 0, 51, 0, 255, 102])
        let t = ToTensor()(image)
        XCTAssertEqual(t.shape, [1, 3, 1, 2])
        XCTAssertEqual(try t.floats(), [1, 0, 0, 1, 0.2, 0.4])
        let n = try Normalize(mean: [0.5, 0.5, 0.5], std: [0.5, 0.25, 2])(t)
        XCTAssertEqual(try n.floats(), [1, -1, -2, 2, -0.15, -0.05].map { Float($0) }, accuracy: 1e-6)
        XCTAssertThrowsError(try Normalize(mean: [0], std: [1])(t))
    }

    func testSidecarRoundTripAndDefaults() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-pre-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = dir.appendingPathComponent("net.onnx").path
        let sidecar = Preprocess.sidecarPath(forModel: model)
        XCTAssertEqual(sidecar, dir.appendingPathComponent("net.preprocess.json").path)
        var p = Preprocess.imagenet
        p.labels = "classes.txt"
        try p.write(toFile: sidecar)
        let back = try Preprocess(contentsOfFile: sidecar)
        XCTAssertEqual(back, p)
        XCTAssertEqual(back.labelsPath(relativeToSidecar: sidecar), dir.appendingPathComponent("classes.txt").path)

        try Data("tabby cat\r\n  coffee mug \n\n".utf8).write(to: URL(fileURLWithPath: dir.appendingPathComponent("classes.txt").path))
        XCTAssertEqual(try Preprocess.readLabels(path: back.labelsPath(relativeToSidecar: sidecar) ?? ""), ["tabby cat", "coffee mug"])
        XCTAssertThrowsError(try Preprocess.readLabels(path: dir.appendingPathComponent("none.txt").path))

        let minimal = try JSONDecoder().decode(Preprocess.self, from: Data(#"{"resize": 32}"#.utf8))
        XCTAssertEqual(minimal, Preprocess(resize: 32))

        try Data(#"{"mean": [0.5], "std": [0.5]}"#.utf8).write(to: URL(fileURLWithPath: sidecar))
        XCTAssertThrowsError(try Preprocess(contentsOfFile: sidecar)) { error in
            XCTAssertTrue("\(error)".contains("net.preprocess.json") && "\(error)".contains("mean and std need 3"), "\(error)")
        }
        try Data(#"{"resize": "big"}"#.utf8).write(to: URL(fileURLWithPath: sidecar))
        XCTAssertThrowsError(try Preprocess(contentsOfFile: sidecar)) { error in
            XCTAssertTrue("\(error)".contains("resize"), "\(error)")
        }
    }

    func testInputSizeMismatchIsExplained() throws {
        let p = Preprocess(resize: 64, crop: [56], inputSize: [3, 224, 224])
        XCTAssertThrowsError(try p(try Image(width: 80, height: 70, channels: 3))) { error in
            XCTAssertTrue("\(error)".contains("[3, 56, 56]") && "\(error)".contains("[3, 224, 224]"), "\(error)")
        }
        let gray = try Preprocess(channels: 1, resize: 8)(try Image(width: 16, height: 8, channels: 4, value: 200))
        XCTAssertEqual(gray.shape, [1, 1, 8, 16])
    }
}

func XCTAssertEqual(_ a: [Float], _ b: [Float], accuracy: Float, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, file: file, line: line)
    for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: accuracy, file: file, line: line) }
}

final class TensorImageTests: XCTestCase {
    func testImageFromNormalizedTensorUndoesThePipeline() throws {
        // Without resize/crop the pipeline is invertible up to rounding: exact for 8-bit input.
        let photo = try Fixtures.image("coffee.png")
        let input = try Preprocess(mean: Normalize.imagenet.mean, std: Normalize.imagenet.std)(photo)
        XCTAssertEqual(try Image(tensor: input, normalization: .imagenet), photo)
        XCTAssertEqual(try Image(tensor: Tensor(shape: [1, 2, 1], floats: [-0.5, 2])).pixels, [0, 255])
        XCTAssertThrowsError(try Image(tensor: Tensor(zeros: [1, 2, 3, 3])))
    }
}
