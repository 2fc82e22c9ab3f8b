import Foundation
import LoupeGraph
import LoupeONNX
import LoupeTensor
import XCTest

/// Mutated model bytes must make the importer throw an `ONNXError` or succeed: never crash,
/// hang, or throw anything untyped. Seeded, so a failure reproduces; the iteration and
/// mutation are printed in the failure message.
final class ONNXFuzzTests: XCTestCase {
    /// SplitMix64: tiny, seedable, identical on every platform.
    struct RNG {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { n <= 0 ? 0 : Int(next() % UInt64(n)) }
        mutating func byte() -> UInt8 { UInt8(truncatingIfNeeded: next()) }
    }

    static func mutate(_ input: [UInt8], _ rng: inout RNG) -> (bytes: [UInt8], kind: String) {
        var b = input
        switch rng.below(7) {
        case 0:
            let flips = 1 + rng.below(4)
            for _ in 0..<flips where !b.isEmpty { b[rng.below(b.count)] ^= UInt8(1) << UInt8(rng.below(8)) }
            return (b, "flip \(flips) bits")
        case 1:
            let n = rng.below(b.count)
            return (Array(b.prefix(n)), "truncate to \(n)")
        case 2:
            let at = rng.below(b.count + 1)
            let count = 1 + rng.below(8)
            b.insert(contentsOf: (0..<count).map { _ in rng.byte() }, at: at)
            return (b, "insert \(count) at \(at)")
        case 3:
            let at = rng.below(b.count)
            let count = min(1 + rng.below(16), b.count - at)
            b.removeSubrange(at..<(at + count))
            return (b, "delete \(count) at \(at)")
        case 4:
            // A huge or maximal varint where a length or value might be.
            let at = rng.below(b.count + 1)
            let huge: [UInt8] = rng.below(2) == 0 ? [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]
                                                  : [0xFF, 0xFF, 0xFF, 0xFF, 0x0F]
            b.insert(contentsOf: huge, at: at)
            return (b, "huge varint at \(at)")
        case 5:
            let at = rng.below(b.count)
            b[at] = [0x00, 0x7F, 0x80, 0xFF][rng.below(4)]
            return (b, "set byte \(at) to \(b[at])")
        default:
            let at = rng.below(b.count)
            let count = min(1 + rng.below(32), b.count - at)
            let dest = rng.below(b.count + 1)
            b.insert(contentsOf: Array(b[at..<(at + count)]), at: dest)
            return (b, "duplicate \(count) bytes from \(at) to \(dest)")
        }
    }

    func testMutatedModelsThrowTypedErrorsOrLoad() throws {
        let names = ["conv_raw.onnx", "subgraph_if.onnx", "dim_param.onnx", "typed_fields.onnx", "external.onnx"]
        let seeds = try names.map { try Fixtures.bytes($0) }
        var rng = RNG(state: 20_261_124)
        var loaded = 0, failed = 0
        let start = Date()
        for i in 0..<3000 {
            let which = rng.below(seeds.count)
            let (bytes, kind) = Self.mutate(seeds[which], &rng)
            do {
                // External data resolves against the fixture folder, so mutated offsets and
                // locations exercise the external-data checks too.
                let g = try Graph(onnxBytes: bytes, baseDirectory: Fixtures.root, fileName: "fuzz.onnx")
                _ = try g.onnxBytes()  // whatever loads must also export
                loaded += 1
            } catch is ONNXError {
                failed += 1
            } catch {
                XCTFail("iteration \(i), \(names[which]), \(kind): untyped error \(type(of: error)): \(error)")
            }
        }
        print("fuzz: \(loaded) loaded, \(failed) rejected")
        // Both outcomes must occur, or the mutations are not reaching the decoder.
        XCTAssertGreaterThan(loaded, 100)
        XCTAssertGreaterThan(failed, 100)
        XCTAssertLessThan(Date().timeIntervalSince(start), 30, "fuzzing must stay fast")
    }

    func testMutatedTensorProtosThrowTypedErrorsOrDecode() throws {
        let seeds = [try Fixtures.bytes("tensor_raw.pb"), try Fixtures.bytes("tensor_int32.pb")]
        var rng = RNG(state: 7)
        for i in 0..<1000 {
            let (bytes, kind) = Self.mutate(seeds[i % 2], &rng)
            do {
                _ = try ONNXTensor.decode(bytes: bytes)
            } catch is ONNXError {
            } catch {
                XCTFail("iteration \(i), \(kind): untyped error \(type(of: error)): \(error)")
            }
        }
    }
}
