import XCTest
@testable import LoupeTensor

final class ReduceEinsumTests: XCTestCase {
    /// Slow reference: loops over every assignment of every label.
    func naiveEinsum(_ eq: EinsumEquation, _ xs: [Tensor]) throws -> Tensor {
        var sizes: [Int: Int] = [:]
        for (labels, x) in zip(eq.inputs, xs) { for (l, d) in zip(labels, x.shape) { sizes[l] = max(sizes[l] ?? 1, d) } }
        let all = Array(sizes.keys).sorted()
        let outShape = eq.output.map { sizes[$0]! }
        var out = [Float](repeating: 0, count: outShape.reduce(1, *))
        let total = all.reduce(1) { $0 * sizes[$1]! }
        let values = try xs.map { try $0.floats() }
        for flat in 0..<total {
            var assign: [Int: Int] = [:]
            var r = flat
            for l in all.reversed() { assign[l] = r % sizes[l]!; r /= sizes[l]! }
            var p: Float = 1
            for (k, (labels, x)) in zip(eq.inputs, xs).enumerated() {
                var off = 0
                for (l, d) in zip(labels, x.shape) { off = off * d + (d == 1 ? 0 : assign[l]!) }
                p *= values[k][off]
            }
            var o = 0
            for l in eq.output { o = o * sizes[l]! + assign[l]! }
            out[o] += p
        }
        return try Tensor(shape: outShape, floats: out)
    }

    func testAgainstNaiveContraction() throws {
        let cases: [(String, [[Int]])] = [
            ("bij,bjk->bik", [[2, 2, 3], [2, 3, 2]]), ("ij->ji", [[2, 3]]), ("ii->i", [[3, 3]]), ("ii", [[3, 3]]),
            ("bhqd,bhkd->bhqk", [[1, 2, 3, 2], [1, 2, 4, 2]]), ("i,j->ij", [[3], [2]]), ("ij,ij->", [[2, 3], [2, 3]]),
            ("ij,jk,kl->il", [[2, 3], [3, 2], [2, 4]]), ("ijk,jl->il", [[2, 3, 2], [3, 2]]), ("...ij,...jk", [[1, 2, 3], [2, 3, 2]]),
            ("b...i,i->b...", [[2, 3, 4], [4]]), ("iij->ji", [[2, 2, 3]]), ("ij,ji->i", [[2, 3], [3, 2]]),
        ]
        for (k, (equation, shapes)) in cases.enumerated() {
            let xs = try shapes.enumerated().map { try Tensor(shape: $0.element, floats: sampleFloats($0.element.reduce(1, *), seed: k + $0.offset)) }
            let eq = try EinsumEquation(equation, ranks: shapes.map(\.count), op: "Einsum")
            let y = try Tensor.einsum(equation, xs)
            let e = try naiveEinsum(eq, xs)
            assertClose(y, e.doubles, shape: e.shape, atol: 1e-4, equation)
        }
    }

    func testAgainstNumpy() throws {
        let a = try Tensor(shape: [2, 3], floats: [-2, -1, 0, 1, 2, 3])
        let b = try Tensor(shape: [3, 4], floats: (0..<12).map { Float($0) * 0.5 - 1 })
        assertClose(try Tensor.einsum("ij,jk", [a, b]), [1, -0.5, -2, -3.5, 10, 13, 16, 19], shape: [2, 4])
        assertClose(try Tensor.einsum("ji", [a]), [-2, 1, -1, 2, 0, 3], shape: [3, 2])
        let c = try Tensor(shape: [3, 3], floats: (0..<9).map { Float($0) })
        assertClose(try Tensor.einsum("ii", [c]), [12], shape: [])
        assertClose(try Tensor.einsum("ii->i", [c]), [0, 4, 8], shape: [3])
        let e1 = try Tensor(shape: [1, 2, 3], floats: (0..<6).map { Float($0) })
        let e2 = try Tensor(shape: [2, 3, 2], floats: (0..<12).map { Float($0) - 5 })
        assertClose(try Tensor.einsum("...ij,...jk", [e1, e2]), [-5, -2, -32, -20, 13, 16, 40, 52], shape: [2, 2, 2])
    }

    func testEquationErrors() {
        XCTAssertThrowsError(try Tensor.einsum("ij,jk->ik", [Tensor(zeros: [2, 3])]))
        XCTAssertThrowsError(try Tensor.einsum("ijk->i", [Tensor(zeros: [2, 3])]))
        XCTAssertThrowsError(try Tensor.einsum("ij,jk->ik", [Tensor(zeros: [2, 3]), Tensor(zeros: [4, 2])])) { e in
            guard case let TensorError.shapeMismatch(op, _, _) = e else { return XCTFail("\(e)") }
            XCTAssertEqual(op, "Einsum")
        }
        XCTAssertThrowsError(try Tensor.einsum("ij->k", [Tensor(zeros: [2, 3])]))
        XCTAssertThrowsError(try Tensor.einsum("i1->i", [Tensor(zeros: [2, 3])]))
    }
}
