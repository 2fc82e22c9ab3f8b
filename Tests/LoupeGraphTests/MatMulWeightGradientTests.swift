import Foundation
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

    /// A constant weight (packed at load) gives the input gradient through its packed transpose,
    /// made on first use and kept: MatMul with batch dimensions, Gemm with and without transB and
    /// alpha ≠ 1, against the same operators built without the constant (the plain products).
    /// One row (a matrix-vector product) and a broadcast left operand keep the plain path.
    func testInputGradientThroughThePackedWeightTranspose() throws {
        var rng = TestRNG(seed: 23)
        for (sa, sb) in [([2, 7, 48], [48, 32]), ([5, 48], [48, 40]), ([1, 48], [48, 32]), ([48], [48, 32])] {
            let a = rng.tensor(sa), b = rng.tensor(sb)
            let packed = try makeOperator("MatMul", inputs: 2, constants: [nil, b]), plain = try makeOperator("MatMul", inputs: 2)
            XCTAssertNotNil((packed as? MatMulOperator)?.packed)
            let y = try plain.forward([a, b])[0]
            let gy = rng.tensor(y.shape)
            let ctx = VJPContext(inputs: [a, b], inputShapes: [sa, sb], outputs: [y], gradOutputs: [gy], wantInput: [true, false])
            for _ in 0..<2 {  // the second call reuses the kept transpose
                try assertSame(try packed.vjp(ctx)[0], try plain.vjp(ctx)[0], "MatMul \(sa)")
            }
        }
        for transB in [false, true] {
            let a = rng.tensor([6, 48]), b = rng.tensor(transB ? [40, 48] : [48, 40]), c = rng.tensor([40])
            let attributes: [String: Attribute] = ["transB": .int(transB ? 1 : 0), "alpha": .float(1.5)]
            let packed = try makeOperator("Gemm", inputs: 3, attributes: attributes, constants: [nil, b, nil])
            let plain = try makeOperator("Gemm", inputs: 3, attributes: attributes)
            let y = try plain.forward([a, b, c])[0]
            let gy = rng.tensor(y.shape)
            let ctx = VJPContext(inputs: [a, b, c], inputShapes: [[6, 48], b.shape, [40]], outputs: [y], gradOutputs: [gy],
                                 wantInput: [true, false, false])
            try assertSame(try packed.vjp(ctx)[0], try plain.vjp(ctx)[0], "Gemm transB \(transB)")
        }
    }

    /// Backward passes on one shared model, started at once, all make (or find) the weight's
    /// packed transpose: one of them publishes it, the others use it or discard their own, and
    /// every gradient is the same.
    func testConcurrentBackwardPassesShareThePackedTranspose() throws {
        var rng = TestRNG(seed: 29)
        var g = Graph(nodes: [Node(name: "mm", opType: "MatMul", inputs: ["x", "w"], outputs: ["y"])],
                      inputs: [ValueInfo(name: "x", elementType: 1, shape: [.fixed(9), .fixed(48)])], outputs: [ValueInfo(name: "y")])
        g.initializers = ["w": rng.tensor([48, 40])]
        let model = try Model(graph: g)
        let x = rng.tensor([9, 48]), seed = rng.tensor([9, 40])
        nonisolated(unsafe) var results = [[Float]](repeating: [], count: 16)
        results.withUnsafeMutableBufferPointer { out in
            nonisolated(unsafe) let slots = out
            DispatchQueue.concurrentPerform(iterations: 16) { i in
                let grad = try? model.forward(["x": x], recording: .gradient).backward(seeds: ["y": seed], wrt: ["x"])["x"]
                slots[i] = grad.flatMap { try? $0.floats() } ?? []
            }
        }
        let want = try Kernels.matmul(seed, g.initializers["w"]!, transposeB: true).floats()
        for r in results {
            XCTAssertEqual(r.count, want.count)
            for (u, v) in zip(r, want) { XCTAssertEqual(u, v, accuracy: 1e-4 * max(1, abs(v))) }
        }
    }

    private func assertSame(_ a: Tensor?, _ b: Tensor?, _ what: String) throws {
        let x = try XCTUnwrap(a, what), y = try XCTUnwrap(b, what)
        XCTAssertEqual(x.shape, y.shape, what)
        for (u, v) in zip(try x.floats(), try y.floats()) { XCTAssertEqual(u, v, accuracy: 1e-4 * max(1, abs(v)), what) }
    }
}
