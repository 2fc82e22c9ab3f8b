import LoupeImage
import XCTest

/// Seeded mutations of small PNG and JPEG files: every one must decode or throw an
/// `ImageError`, never crash (libpng/libjpeg errors are caught in C, see CImageShims).
final class ImageFuzzTests: XCTestCase {
    struct SplitMix {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(n, 1))) }
    }

    func mutate(_ input: [UInt8], _ rng: inout SplitMix) -> [UInt8] {
        var bytes = input
        switch rng.below(5) {
        case 0: // flip a few bytes
            for _ in 0..<(1 + rng.below(4)) { bytes[rng.below(bytes.count)] ^= UInt8(1 + rng.below(255)) }
        case 1: // truncate
            bytes = Array(bytes.prefix(rng.below(bytes.count)))
        case 2: // insert junk
            let at = rng.below(bytes.count)
            bytes.insert(contentsOf: (0..<(1 + rng.below(16))).map { _ in UInt8(rng.below(256)) }, at: at)
        case 3: // overwrite a run with 0x00 or 0xFF (lengths, markers)
            let at = rng.below(bytes.count), n = min(1 + rng.below(8), bytes.count - at)
            let v: UInt8 = rng.below(2) == 0 ? 0 : 0xFF
            for i in at..<at + n { bytes[i] = v }
        default: // delete a run
            let at = rng.below(bytes.count), n = min(1 + rng.below(32), bytes.count - at)
            bytes.removeSubrange(at..<at + n)
        }
        return bytes
    }

    /// Rewrites every PNG chunk CRC so mutations reach the decoder past the CRC check.
    func fixPNGCRCs(_ input: [UInt8]) -> [UInt8] {
        var bytes = input
        var p = 8
        while p + 12 <= bytes.count {
            let length = Int(bytes[p]) << 24 | Int(bytes[p + 1]) << 16 | Int(bytes[p + 2]) << 8 | Int(bytes[p + 3])
            guard length <= bytes.count - p - 12 else { break }
            let crc = be32(crc32(Array(bytes[(p + 4)..<(p + 8 + length)])))
            bytes.replaceSubrange((p + 8 + length)..<(p + 12 + length), with: crc)
            p += 12 + length
        }
        return bytes
    }

    func run(_ seed: UInt64, file: String, cases: Int, fixCRC: Bool) throws -> (decoded: Int, failed: Int) {
        let original = try Fixtures.bytes(file)
        var rng = SplitMix(state: seed)
        var decoded = 0, failed = 0
        for _ in 0..<cases {
            var bytes = mutate(original, &rng)
            if rng.below(3) == 0 { bytes = mutate(bytes, &rng) }
            if fixCRC && bytes.count > 8 { bytes = fixPNGCRCs(bytes) }
            do {
                let image = try Image(data: bytes, name: file)
                XCTAssertEqual(image.pixels.count, image.width * image.height * image.channels)
                decoded += 1
            } catch is ImageError {
                failed += 1
            }
        }
        return (decoded, failed)
    }

    func testMutatedPNGsNeverCrash() throws {
        let plain = try run(1, file: "edge_palette8_trns_adam7.png", cases: 300, fixCRC: false)
        let deep = try run(2, file: "edge_rgb16_adam7.png", cases: 300, fixCRC: true)
        // The CRC-fixed run must reach the decoder: some mutants decode, some fail.
        XCTAssertGreaterThan(deep.failed, 0)
        XCTAssertGreaterThan(deep.decoded, 0)
        XCTAssertEqual(plain.decoded + plain.failed, 300)
        let photo = try run(5, file: "coffee.png", cases: 100, fixCRC: true)
        XCTAssertEqual(photo.decoded + photo.failed, 100)
    }

    func testMutatedJPEGsNeverCrash() throws {
        let baseline = try run(3, file: "small_gray.jpg", cases: 300, fixCRC: false)
        let progressive = try run(4, file: "small_progressive.jpg", cases: 300, fixCRC: false)
        XCTAssertGreaterThan(baseline.failed, 0)
        XCTAssertGreaterThan(baseline.decoded, 0)
        XCTAssertEqual(progressive.decoded + progressive.failed, 300)
        let photo = try run(6, file: "chelsea.jpg", cases: 200, fixCRC: false)
        XCTAssertGreaterThan(photo.decoded, 0)
    }
}
