import XCTest
import LoupeTensor
@testable import LoupeGraph

/// MatMul's gradient for a 2-D right operand shared by all batch entries (a Linear weight) is
/// one GEMM over the flattened rows; it must equal the per-batch products summed over the batch.
final class MatMulWeightGradientTests: XCTestCase {
    func testSharedWeightGradientIsOneGEMMOverAllRows() throws {
        var rng = TestRNG(seed: 21)
        let mm = try makeOperator("MatMul", inputs: 2)
        for (sa, sb) in [([2, 3, 4, 5], [5, 3]), ([7, 6], [6, 2]), ([3, 4, 5], [5]), ([2, 1, 3], [3, 4])] {
            let a = rng.tensor(sa), b = rng.tensor(sb)
            try checkVJP(mm, [a, b], wrt: [0, 1])
            // Exact comparison with the batched-then-summed form.
            let y = try mm.forward([a, b])[0]
            let gy = rng.tensor(y.shape)
            let grads = try mm.vjp(VJPContext(inputs: [a, b], inputShapes: [sa, sb], outputs: [y], gradOutputs: [gy], wantInput: [false, true]))
            let b2 = sb.count == 1 ? [sb[0], 1] : sb
            let gy2 = try gy.reshaped(Array(sa.dropLast(1)) + [b2[1]])
            let slow = try Kernels.sumToShape(Kernels.matmul(a, gy2, transposeA: true), b2)
            let got = try XCTUnwrap(grads[1])
            XCTAssertEqual(got.shape, sb)
            for (u, v) in zip(try got.floats(), try slow.floats()) { XCTAssertEqual(u, v, accuracy: 1e-4) }
        }
    }
}
