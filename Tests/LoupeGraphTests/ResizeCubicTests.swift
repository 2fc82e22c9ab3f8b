import XCTest
import LoupeTensor
@testable import LoupeGraph

/// Resize `cubic` (values: the ONNX node tests in CI, 9 cases): its VJP against finite
/// differences, up- and downsampling, with and without `exclude_outside`, in two coordinate modes.
final class ResizeCubicTests: XCTestCase {
    func testCubicVJP() throws {
        var rng = TestRNG(seed: 12)
        let x = rng.tensor([1, 2, 5, 6])
        for (attrs, scales) in [
            (["mode": Attribute.string("cubic")], [Float](arrayLiteral: 1, 1, 1.6, 2)),
            (["mode": .string("cubic"), "exclude_outside": .int(1), "cubic_coeff_a": .float(-0.5)], [1, 1, 0.6, 1.5]),
            (["mode": .string("cubic"), "coordinate_transformation_mode": .string("align_corners")], [1, 1, 2, 0.5]),
        ] {
            let op = try makeOperator("Resize", inputs: 3, attributes: attrs, opset: 13)
            try checkVJP(op, [x, nil, try Tensor(shape: [4], floats: scales)], wrt: [0], eps: 1e-2, rtol: 1e-2, atol: 1e-4)
        }
    }

    /// Cubic weights sum to 1 (a constant plane stays constant), and Keys' a = −0.5 kernel
    /// reproduces a linear ramp away from the clamped edges (a = −0.75, PyTorch's, does not).
    func testCubicReproducesConstantsAndRamps() throws {
        let op = try makeOperator("Resize", inputs: 3, attributes: ["mode": .string("cubic")], opset: 13)
        let flat = try Tensor(shape: [1, 1, 4, 4], floats: [Float](repeating: 2.5, count: 16))
        let scales = try Tensor(shape: [4], floats: [1, 1, 2, 2])
        for v in try op.forward([flat, nil, scales])[0].floats() { XCTAssertEqual(v, 2.5, accuracy: 1e-5) }
        let keys = try makeOperator("Resize", inputs: 3, attributes: ["mode": .string("cubic"), "cubic_coeff_a": .float(-0.5)], opset: 13)
        let ramp = try Tensor(shape: [1, 1, 1, 8], floats: (0..<8).map { Float($0) })
        let y = try keys.forward([ramp, nil, try Tensor(shape: [4], floats: [1, 1, 1, 2])])[0].floats()
        // Output j samples source (j + 0.5)/2 − 0.5; interior taps lie inside the ramp.
        for j in 4..<12 { XCTAssertEqual(y[j], (Float(j) + 0.5) / 2 - 0.5, accuracy: 1e-5, "column \(j)") }
    }
}
