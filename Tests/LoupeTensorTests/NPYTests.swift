import Foundation
import LoupeTensor
import XCTest

/// `.npy` reading against files written by numpy (Tests/Fixtures/npy, made by
/// tools/fixtures/make_onnx_io_fixtures.py) and writing checked byte-for-byte against them.
final class NPYTests: XCTestCase {
    static let fixtures: String = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/npy").path

    static func path(_ name: String) -> String { fixtures + "/" + name }

    func testReadsNumpyFiles() throws {
        XCTAssertEqual(try Tensor(npyFile: Self.path("f4_2x3.npy")),
                       try Tensor(shape: [2, 3], floats: [-1, -0.5, 0, 0.5, 1, 1.5]))
        XCTAssertEqual(try Tensor.readNPY(path: Self.path("i8_4.npy")),
                       try Tensor(shape: [4], ints: [-3, 0, 7, 1 << 40]))
        XCTAssertEqual(try Tensor(npyFile: Self.path("b1_2x2.npy")),
                       try Tensor(shape: [2, 2], bools: [true, false, false, true]))
        // float16 0.099975586 is exactly 1638 * 2^-14.
        XCTAssertEqual(try Tensor(npyFile: Self.path("f2_3.npy")),
                       try Tensor(shape: [3], floats: [1, -2.5, 1638.0 / 16384.0]))
        XCTAssertEqual(try Tensor(npyFile: Self.path("u1_scalar.npy")), try Tensor(shape: [], ints: [200]))
    }

    func testFortranOrderIsTransposedToRowMajor() throws {
        // np.asfortranarray(np.arange(6.0).reshape(2, 3)): stored column-major as 0 3 1 4 2 5.
        XCTAssertEqual(try Tensor(npyFile: Self.path("f8_fortran_2x3.npy")),
                       try Tensor(shape: [2, 3], floats: [0, 1, 2, 3, 4, 5]))
    }

    func testWritesTheSameBytesAsNumpy() throws {
        for name in ["f4_2x3.npy", "i8_4.npy", "b1_2x2.npy"] {
            let numpyBytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.path(name))))
            let t = try Tensor(npyBytes: numpyBytes)
            XCTAssertEqual(t.npyBytes(), numpyBytes, name)
        }
    }

    func testRoundTripThroughAFile() throws {
        let path = NSTemporaryDirectory() + "/loupe-npy-roundtrip.npy"
        for t in [try Tensor(shape: [2, 1, 3], floats: [1, -2, 3.5, .infinity, -0, .leastNonzeroMagnitude]),
                  Tensor(scalar: -7), try Tensor(shape: [0, 4], floats: []),
                  Tensor(ints: [Int64.min, Int64.max]), try Tensor(shape: [1], bools: [true])] {
            try t.writeNPY(path: path)
            XCTAssertEqual(try Tensor(npyFile: path), t)
        }
    }

    /// Replaces a version-1 prefix by a version-2/3 one (4-byte header length).
    static func upgrade(_ v1: [UInt8], to major: UInt8) -> [UInt8] {
        let n = Int(v1[8]) | Int(v1[9]) << 8
        return Array(v1[0..<6]) + [major, 0] + (0..<4).map { UInt8(truncatingIfNeeded: n >> (8 * $0)) } + Array(v1[10...])
    }

    func testVersion2And3HeadersAndOtherDtypes() throws {
        let v1 = Tensor(ints: [5, -6]).npyBytes()
        for major: UInt8 in [2, 3] {
            XCTAssertEqual(try Tensor(npyBytes: Self.upgrade(v1, to: major)), Tensor(ints: [5, -6]))
        }
        func npy(_ descr: String, _ shape: String, _ data: [UInt8]) -> [UInt8] {
            var header = Array("{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shape), }".utf8)
            header += [UInt8](repeating: 0x20, count: 63 - (10 + header.count) % 64) + [0x0A]
            return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.count), 0] + header + data
        }
        XCTAssertEqual(try Tensor(npyBytes: npy("<i4", "(2,)", [0xFE, 0xFF, 0xFF, 0xFF, 9, 0, 0, 0])), Tensor(ints: [-2, 9]))
        XCTAssertEqual(try Tensor(npyBytes: npy("<i2", "(1,)", [0x00, 0x80])), Tensor(ints: [-32768]))
        XCTAssertEqual(try Tensor(npyBytes: npy("|i1", "(2,)", [0xFF, 0x7F])), Tensor(ints: [-1, 127]))
        XCTAssertEqual(try Tensor(npyBytes: npy("|u1", "(1,)", [0xFF])), Tensor(ints: [255]))
        XCTAssertEqual(try Tensor(npyBytes: npy(">f4", "(1,)", [0x3F, 0xC0, 0, 0])), try Tensor(shape: [1], floats: [1.5]))
        XCTAssertEqual(try Tensor(npyBytes: npy("<f8", "(1, 1)", [0, 0, 0, 0, 0, 0, 0xF0, 0xBF])), try Tensor(shape: [1, 1], floats: [-1]))
    }

    func testErrorsNameTheFileAndProblem() throws {
        func message(_ bytes: [UInt8]) -> String {
            do { _ = try Tensor(npyBytes: bytes, fileName: "a.npy"); return "no error" } catch { return "\(error)" }
        }
        func check(_ text: String, _ parts: String..., line: UInt = #line) {
            for p in parts + ["a.npy"] where !text.contains(p) {
                XCTFail("'\(text)' should mention '\(p)'", line: line)
            }
        }
        let good = try Tensor(shape: [2, 3], floats: [1, 2, 3, 4, 5, 6]).npyBytes()
        check(message([]), "empty")
        check(message(Array("hello, this is text".utf8)), "not a .npy file")
        check(message(Array(good.dropLast(5))), "needs 24 bytes of data, the file has 19", "truncated")
        check(message(Array(good.prefix(40))), "header claims 118 bytes")
        var badVersion = good; badVersion[6] = 9
        check(message(badVersion), "version 9.0 is not supported")
        var complex = good
        complex.replaceSubrange(21..<24, with: Array("<c8".utf8))
        check(message(complex), "dtype '<c8' is not supported")
        let missing = NSTemporaryDirectory() + "/loupe-no-such.npy"
        XCTAssertThrowsError(try Tensor(npyFile: missing)) { XCTAssertEqual("\($0)", "\(missing): no such file") }
    }

    /// Mutated files must throw `TensorError` or decode: never crash. Seeded (SplitMix64).
    func testMutatedFilesThrowTypedErrorsOrDecode() throws {
        var state: UInt64 = 42
        func next() -> Int {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Int(truncatingIfNeeded: (z ^ (z >> 31)) >> 1)
        }
        let seeds = try ["f4_2x3.npy", "f8_fortran_2x3.npy", "b1_2x2.npy"].map {
            [UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.path($0))))
        }
        var decoded = 0
        for i in 0..<1000 {
            var b = seeds[i % seeds.count]
            switch next() % 3 {
            case 0: b[next() % b.count] ^= UInt8(1 << (next() % 8))
            case 1: b = Array(b.prefix(next() % b.count))
            default: b[6 + next() % 60] = UInt8(truncatingIfNeeded: next())
            }
            do {
                _ = try Tensor(npyBytes: b)
                decoded += 1
            } catch is TensorError {
            } catch {
                XCTFail("iteration \(i): untyped error \(error)")
            }
        }
        XCTAssertGreaterThan(decoded, 50)
    }
}
