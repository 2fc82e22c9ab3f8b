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

    /// A constant B (≥ 1024 elements) is packed at load and used for several rows of A, with
    /// every alpha/beta/C form and transpose flag; one row (GEMV) and a B fed at run time take
    /// the plain path. All must agree with the plain path.
    func testPrepackedConstantWeightMatchesThePlainPath() throws {
        let n = 40, k = 32
        for m in [1, 3, 16, 29] {
            for (transA, transB) in [(false, false), (true, false), (false, true), (true, true)] {
                let a = kernelPattern(transA ? [k, m] : [m, k])
                let b = kernelPattern(transB ? [n, k] : [k, n], 5, 13, 4)
                for (cShape, alpha, beta) in [([n], Float(1), Float(1)), ([m, n], 1.5, 0.5), ([], 1, 0), ([m, 1], 0.75, 1)] {
                    let c = kernelPattern(cShape, 3, 7, 2)
                    let attributes: [String: Attribute] = ["transA": .int(transA ? 1 : 0), "transB": .int(transB ? 1 : 0),
                                                           "alpha": .float(alpha), "beta": .float(beta)]
                    let packed = try makeOperator("Gemm", inputs: 3, attributes: attributes, constants: [nil, b, nil])
                    let plain = try makeOperator("Gemm", inputs: 3, attributes: attributes)
                    XCTAssertNotNil((packed as? GemmOperator)?.packed)
                    let y = try packed.forward([a, b, c])[0].floats(), want = try plain.forward([a, b, c])[0].floats()
                    XCTAssertEqual(y.count, want.count)
                    for i in want.indices {
                        XCTAssertEqual(y[i], want[i], accuracy: 1e-5 * max(1, abs(want[i])), "m \(m) tA \(transA) tB \(transB) C \(cShape) [\(i)]")
                    }
                    // Another tensor of the same shape in B's place is not the packed one.
                    let other = kernelPattern(b.shape, 2, 11, 3)
                    let y2 = try packed.forward([a, other, c])[0].floats(), want2 = try plain.forward([a, other, c])[0].floats()
                    for i in want2.indices { XCTAssertEqual(y2[i], want2[i], accuracy: 1e-5 * max(1, abs(want2[i]))) }
                }
            }
        }
    }
}
