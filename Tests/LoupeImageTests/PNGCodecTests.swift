import LoupeImage
import LoupeTensor
import XCTest

/// PNG decoding of every colour type / bit depth / interlacing against the samples the fixture
/// generator stored, and PNG encoding round trips.
final class PNGCodecTests: XCTestCase {
    static let edgeCases: [(name: String, channels: Int)] = [
        ("gray1", 1), ("gray2", 1), ("gray4", 1), ("gray8", 1), ("gray16", 1), ("rgb16", 3),
        ("graya8", 2), ("graya16", 2), ("rgba8", 4), ("rgba16", 4), ("palette4", 3),
        ("palette8_trns", 4), ("rgb8_trns", 4),
    ]

    func testEveryColourTypeAndDepthDecodesToTheExpectedSamples() throws {
        for (name, channels) in Self.edgeCases {
            let expected = try Fixtures.samples("edge_\(name).npy")
            for suffix in ["", "_adam7"] {
                let image = try Fixtures.image("edge_\(name)\(suffix).png")
                XCTAssertEqual(image.width, 7, name)
                XCTAssertEqual(image.height, 5, name)
                XCTAssertEqual(image.channels, channels, name + suffix)
                XCTAssertEqual(image.pixels, expected, name + suffix)
            }
        }
    }

    func testSixteenBitSamplesRoundToNearest() throws {
        // 16-bit v becomes (v * 255 + 32767) / 65535: 257 * k maps back to k exactly, and the
        // midpoint between two 8-bit levels rounds up.
        let image = try Fixtures.image("edge_gray16.png")
        XCTAssertEqual(image.channels, 1)
        let expected = try Fixtures.samples("edge_gray16.npy")
        XCTAssertEqual(image.pixels, expected)
    }

    func testEncodeDecodeRoundTripsEveryChannelCount() throws {
        for channels in 1...4 {
            let pixels = (0..<(9 * 4 * channels)).map { UInt8(truncatingIfNeeded: $0 * 37 + channels) }
            let image = try Image(width: 9, height: 4, channels: channels, pixels: pixels)
            let data = try image.pngData()
            XCTAssertEqual(ImageFormat.sniff(data), .png)
            XCTAssertEqual(try Image(data: data), image, "\(channels) channels")
        }
    }

    func testPhotoRoundTrip() throws {
        let photo = try Fixtures.image("chelsea.png")
        XCTAssertEqual(photo.width, 151)
        XCTAssertEqual(photo.height, 100)
        XCTAssertEqual(photo.channels, 3)
        XCTAssertEqual(try Image(pngData: try photo.pngData()), photo)
    }

    func testWriteToFileChoosesFormatFromExtension() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-image-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let image = try Image(width: 3, height: 2, channels: 3, pixels: Array(0..<18))
        try image.write(toFile: dir.appendingPathComponent("a.png").path)
        XCTAssertEqual(try Image(contentsOfFile: dir.appendingPathComponent("a.png").path), image)
        try image.write(toFile: dir.appendingPathComponent("a.JPG").path)
        XCTAssertEqual(ImageFormat.sniff(try Fixtures.bytesAt(dir.appendingPathComponent("a.JPG").path)), .jpeg)
        XCTAssertThrowsError(try image.write(toFile: dir.appendingPathComponent("a.bmp").path)) { error in
            XCTAssertTrue("\(error)".contains("a.bmp"), "\(error)")
        }
    }
}

extension Fixtures {
    static func bytesAt(_ path: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }
}
