import XCTest
import LoupeTensor
@testable import LoupeGraph

/// ONNX Gemm's C operand is copied into Y a row at a time; every broadcast form of C (scalar,
/// bias row, column, full matrix), with beta ≠ 1 and the transpose flags, against a Double loop.
final class GemmBiasBroadcastTests: XCTestCase {
    func testEveryBroadcastFormOfC() throws {
        let m = 5, n = 7, k = 3
        let alpha: Float = 1.5
        for (transA, transB) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = kernelPattern(transA ? [k, m] : [m, k])
            let b = kernelPattern(transB ? [n, k] : [k, n], 5, 13, 4)
            let A = try a.floats(), B = try b.floats()
            for cShape in [[], [1], [n], [1, n], [m, 1], [m, n]] {
                for beta: Float in [1, 0.5, 0] {
                    let c = kernelPattern(cShape, 3, 7, 2)
                    let op = try makeOperator("Gemm", inputs: 3, attributes: [
                        "transA": .int(transA ? 1 : 0), "transB": .int(transB ? 1 : 0),
                        "alpha": .float(alpha), "beta": .float(beta)])
                    let y = try op.forward([a, b, c])[0]
                    XCTAssertEqual(y.shape, [m, n])
                    let Y = try y.floats(), C = try c.floats()
                    for i in 0 ..< m { for j in 0 ..< n {
                        var s = 0.0
                        for p in 0 ..< k {
                            s += Double(A[transA ? p * m + i : i * k + p]) * Double(B[transB ? j * k + p : p * n + j])
                        }
                        // C's element for (i, j) under unidirectional broadcasting.
                        let ci: Int
                        switch cShape.count {
                        case 0: ci = 0
                        case 1: ci = cShape[0] == 1 ? 0 : j
                        default: ci = (cShape[0] == 1 ? 0 : i) * cShape[1] + (cShape[1] == 1 ? 0 : j)
                        }
                        let want = Double(alpha) * s + Double(beta) * Double(C[ci])
                        XCTAssertEqual(Double(Y[i * n + j]), want, accuracy: 1e-5, "C \(cShape) beta \(beta) tA \(transA) tB \(transB)")
                    } }
                }
            }
        }
        // A C that does not broadcast to (M, N) is refused, naming the node.
        let op = try makeOperator("Gemm", inputs: 3)
        XCTAssertThrowsError(try op.forward([kernelPattern([2, 3]), kernelPattern([3, 4]), kernelPattern([3])]))
        // k = 0: Y is beta·C alone.
        let empty = try op.forward([Tensor(zeros: [2, 0]), Tensor(zeros: [0, 3]), kernelPattern([3])])[0]
        XCTAssertEqual(try empty.floats(), try kernelPattern([3]).floats() + kernelPattern([3]).floats())
    }
}
