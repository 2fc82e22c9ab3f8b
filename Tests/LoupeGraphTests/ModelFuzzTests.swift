import Foundation
import XCTest
import LoupeTensor
import LoupeONNX
@testable import LoupeGraph

/// Mutated model files must never crash Loupe: every mutant that still decodes is compiled and
/// run on the fixture input, and each step may only succeed or throw. Attribute and shape
/// corruption reaches the operator factories and kernels this way, not just the decoder.
final class ModelFuzzTests: XCTestCase {
    func testMutatedModelsCompileAndRunOrThrow() throws {
        let dir = ModelFixtureTests.dir
        for name in ["tiny_cnn", "tiny_transformer"] {
            let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(dir)/\(name).onnx")))
            let x = try Tensor.readNPY(path: "\(dir)/\(name).input.npy")
            var rng = TestRNG(seed: 0xF00D)
            var decoded = 0, compiled = 0, ran = 0
            for _ in 0..<400 {
                var bytes = original
                for _ in 0..<(1 + Int(rng.next() % 4)) {
                    let i = Int(rng.next() % UInt64(bytes.count))
                    switch rng.next() % 3 {
                    case 0: bytes[i] ^= UInt8(1 << (rng.next() % 8))
                    case 1: bytes[i] = UInt8(truncatingIfNeeded: rng.next())
                    default: bytes[i] = [0, 1, 0x7F, 0xFF][Int(rng.next() % 4)]
                    }
                }
                guard let graph = try? Graph(onnxBytes: bytes) else { continue }
                decoded += 1
                guard let model = try? Model(graph: graph) else { continue }
                compiled += 1
                guard let input = model.inputs.first, input.elementType == 1 else { continue }
                if (try? model.run([input.name: x])) != nil { ran += 1 }
            }
            // The mutants must exercise every stage, or the test proves nothing.
            XCTAssertGreaterThan(decoded, 50, name)
            XCTAssertGreaterThan(compiled, 10, name)
            XCTAssertGreaterThan(ran, 5, name)
        }
    }
}
