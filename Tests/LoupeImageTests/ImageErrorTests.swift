import Foundation
import LoupeImage
import XCTest

/// Typed errors for bad files: each names the file and the problem.
final class ImageErrorTests: XCTestCase {
    func testEmptyFile() {
        XCTAssertThrowsError(try Image(data: [], name: "empty.png")) { error in
            XCTAssertEqual(error as? ImageError, .empty(path: "empty.png"))
            XCTAssertTrue("\(error)".hasPrefix("empty.png: empty file"), "\(error)")
        }
    }

    func testUnknownFormatIsSniffedNotTakenFromExtension() throws {
        XCTAssertThrowsError(try Image(data: Array("GIF89a...".utf8), name: "fake.png")) { error in
            XCTAssertEqual(error as? ImageError, .unknownFormat(path: "fake.png", magic: "47 49 46 38 39 61 2E 2E"))
        }
        // A PNG named .jpg is still a PNG.
        let png = try Fixtures.bytes("edge_rgba8.png")
        XCTAssertEqual(try Image(data: png, name: "actually-png.jpg").channels, 4)
    }

    func testTruncatedPNG() throws {
        let png = try Fixtures.bytes("chelsea.png")
        for keep in [8, 20, 33, 100, png.count / 2, png.count - 13] {
            XCTAssertThrowsError(try Image(data: Array(png.prefix(keep)), name: "cut.png"), "\(keep) bytes") { error in
                guard case let .corrupt(path, format, message)? = error as? ImageError else {
                    return XCTFail("expected corrupt, got \(error)")
                }
                XCTAssertEqual(path, "cut.png")
                XCTAssertEqual(format, .png)
                XCTAssertFalse(message.isEmpty)
            }
        }
    }

    func testTruncatedJPEG() throws {
        let jpeg = try Fixtures.bytes("chelsea.jpg")
        for keep in [3, 50, 400, jpeg.count / 2, jpeg.count - 2] {
            XCTAssertThrowsError(try Image(data: Array(jpeg.prefix(keep)), name: "cut.jpg"), "\(keep) bytes") { error in
                guard case let .corrupt(path, format, _)? = error as? ImageError else {
                    return XCTFail("expected corrupt, got \(error)")
                }
                XCTAssertEqual(path, "cut.jpg")
                XCTAssertEqual(format, .jpeg)
            }
        }
    }

    func testCorruptChunkCRC() throws {
        var png = try Fixtures.bytes("edge_rgb8_trns.png")
        png[20] ^= 0x40 // inside IHDR: its CRC no longer matches
        XCTAssertThrowsError(try Image(data: png, name: "crc.png")) { error in
            XCTAssertTrue("\(error)".contains("crc.png: corrupt PNG file"), "\(error)")
        }
    }

    func testMissingFileAndDirectory() {
        XCTAssertThrowsError(try Image(contentsOfFile: "/nonexistent/x.png")) { error in
            XCTAssertEqual(error as? ImageError, .io(path: "/nonexistent/x.png", message: "no such file"))
        }
        XCTAssertThrowsError(try Image(contentsOfFile: Fixtures.directory)) { error in
            XCTAssertEqual(error as? ImageError, .io(path: Fixtures.directory, message: "is a directory"))
        }
    }

    func testHugeDimensionsAreRefusedBeforeAllocating() throws {
        // A valid IHDR claiming 100000 x 100000 RGBA (40 GB).
        var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        let ihdr: [UInt8] = Array("IHDR".utf8) + be32(100_000) + be32(100_000) + [8, 6, 0, 0, 0]
        png += be32(13) + ihdr + be32(crc32(ihdr))
        png += be32(0) + Array("IDAT".utf8) + be32(crc32(Array("IDAT".utf8)))
        XCTAssertThrowsError(try Image(data: png, name: "huge.png")) { error in
            // libpng's own limit (1,000,000 per side) does not stop this one; ours does.
            guard case .tooLarge(path: "huge.png", width: 100_000, height: 100_000, _)? = error as? ImageError else {
                return XCTFail("expected tooLarge, got \(error)")
            }
        }
    }
}

func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }

/// CRC-32 (ISO-HDLC, as in PNG chunks), bitwise: test-only.
func crc32(_ bytes: [UInt8]) -> UInt32 {
    var c: UInt32 = 0xFFFF_FFFF
    for b in bytes {
        c ^= UInt32(b)
        for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0xEDB8_8320 : c >> 1 }
    }
    return c ^ 0xFFFF_FFFF
}
