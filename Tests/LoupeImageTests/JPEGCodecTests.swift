import LoupeImage
import XCTest

/// JPEG decoding against PIL's decode of the same files (stored losslessly as PNG by the
/// fixture generator), CMYK refusal, and encoding.
final class JPEGCodecTests: XCTestCase {
    func testDecodesLikePIL() throws {
        // Same libjpeg-turbo defaults as PIL (ISLOW IDCT, fancy upsampling): bit-identical.
        for name in Fixtures.photos.map({ "\($0).jpg" }) + ["small_gray.jpg", "small_progressive.jpg"] {
            let ours = try Fixtures.image(name)
            let pil = try Fixtures.image("\(name).pil.png")
            XCTAssertEqual(ours.width, pil.width, name)
            XCTAssertEqual(ours.height, pil.height, name)
            XCTAssertEqual(ours.channels, pil.channels, name)
            let d = sampleDifference(ours.pixels, pil.pixels)
            XCTAssertEqual(d.max, 0, "\(name): \(d.count) samples differ from PIL, by up to \(d.max)")
        }
        XCTAssertEqual(try Fixtures.image("small_gray.jpg").channels, 1)
    }

    func testCMYKIsAClearError() throws {
        XCTAssertThrowsError(try Fixtures.image("cmyk.jpg")) { error in
            guard case let ImageError.unsupported(path, format, message) = error else {
                return XCTFail("expected unsupported, got \(error)")
            }
            XCTAssertTrue(path.hasSuffix("cmyk.jpg"))
            XCTAssertEqual(format, .jpeg)
            XCTAssertTrue(message.contains("CMYK"), message)
        }
    }

    func testEncodeDecodeIsCloseAndDropsAlpha() throws {
        // A smooth gradient survives quality-95 JPEG (4:2:0 chroma) within a few levels.
        var pixels: [UInt8] = []
        for y in 0..<16 { for x in 0..<16 { pixels += [UInt8(x * 16), UInt8(y * 16), 128, 255] } }
        let rgba = try Image(width: 16, height: 16, channels: 4, pixels: pixels)
        let decoded = try Image(data: try rgba.jpegData(quality: 95))
        XCTAssertEqual(decoded.channels, 3)
        let d = sampleDifference(decoded.pixels, try rgba.converted(toChannels: 3).pixels)
        XCTAssertLessThanOrEqual(d.max, 12)
        XCTAssertGreaterThan(d.count, 0) // lossy: not a disguised copy
        let gray = try Image(width: 8, height: 8, channels: 1, value: 77)
        XCTAssertEqual(try Image(data: try gray.jpegData()), gray)
        XCTAssertThrowsError(try gray.jpegData(quality: 0))
    }
}
