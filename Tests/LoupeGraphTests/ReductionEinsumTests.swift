import XCTest
import LoupeTensor
@testable import LoupeGraph

final class ReductionEinsumTests: XCTestCase {
    func testEinsumVJPs() throws {
        let cases: [(String, [[Int]])] = [
            ("bij,bjk->bik", [[2, 2, 3], [2, 3, 2]]), ("ij->ji", [[2, 3]]), ("ii->i", [[3, 3]]), ("ii", [[3, 3]]),
            ("bhqd,bhkd->bhqk", [[1, 2, 3, 2], [1, 2, 2, 2]]), ("i,j->ij", [[3], [2]]), ("ij,ij->", [[2, 3], [2, 3]]),
            ("ij,jk,kl->il", [[2, 3], [3, 2], [2, 2]]), ("ijk,jl->il", [[2, 3, 2], [3, 2]]), ("...ij,...jk", [[1, 2, 3], [2, 3, 2]]),
            ("iij->ji", [[2, 2, 3]]),
        ]
        for (k, (equation, shapes)) in cases.enumerated() {
            let op = try makeOperator("Einsum", inputs: shapes.count, attributes: ["equation": .string(equation)], opset: 12)
            let xs = shapes.enumerated().map { smoothPoints($0.element, seed: UInt64(30 + k * 5 + $0.offset)) }
            try checkVJP(op, xs, wrt: Array(0..<shapes.count))
        }
    }

    func testEinsumAttributeErrors() {
        XCTAssertThrowsError(try makeOperator("Einsum", inputs: 2, opset: 12)) { e in
            guard case GraphError.badAttribute = e else { return XCTFail("\(e)") }
        }
        XCTAssertThrowsError(try makeOperator("Einsum", inputs: 2, attributes: ["equation": .string("ij->i")], opset: 12))
    }
}
