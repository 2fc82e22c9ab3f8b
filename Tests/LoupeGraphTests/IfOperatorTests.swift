import XCTest
import LoupeTensor
@testable import LoupeGraph

/// ONNX `If`: branches read outer-scope values (also from a nested `If`), run by the condition,
/// and differentiate back to those outer values.
final class IfOperatorTests: XCTestCase {
    /// y = If(c, then: x·w, else: If(c2, then: x − w, else: Tanh(x) + k)), with w an outer
    /// initializer, k an initializer of the else branch, c and c2 graph inputs.
    private func model() throws -> Model {
        let inner = Graph(name: "inner_else", nodes: [
            Node(name: "tanh", opType: "Tanh", inputs: ["x"], outputs: ["t"]),
            Node(name: "addk", opType: "Add", inputs: ["t", "k"], outputs: ["ie"]),
        ], outputs: [ValueInfo(name: "ie")])
        let innerThen = Graph(name: "inner_then", nodes: [Node(name: "sub", opType: "Sub", inputs: ["x", "w"], outputs: ["it"])],
                              outputs: [ValueInfo(name: "it")])
        var elseBranch = Graph(name: "else", nodes: [
            Node(name: "inner_if", opType: "If", inputs: ["c2"], outputs: ["e"],
                 attributes: ["then_branch": .graph(innerThen), "else_branch": .graph(inner)]),
        ], outputs: [ValueInfo(name: "e")])
        elseBranch.initializers["k"] = try Tensor(shape: [3], floats: [0.5, -1, 2])
        let thenBranch = Graph(name: "then", nodes: [Node(name: "mul", opType: "Mul", inputs: ["x", "w"], outputs: ["m"])],
                               outputs: [ValueInfo(name: "m")])
        var g = Graph(nodes: [
            Node(name: "if", opType: "If", inputs: ["c"], outputs: ["y"],
                 attributes: ["then_branch": .graph(thenBranch), "else_branch": .graph(elseBranch)]),
        ], inputs: [ValueInfo(name: "x", elementType: 1, shape: [.fixed(2), .fixed(3)]),
                    ValueInfo(name: "c", elementType: 9), ValueInfo(name: "c2", elementType: 9)],
           outputs: [ValueInfo(name: "y")])
        g.initializers["w"] = try Tensor(shape: [3], floats: [2, -3, 0.25])
        return try Model(graph: g)
    }

    func testBranchesNestedScopesAndGradients() throws {
        let m = try model()
        var rng = TestRNG(seed: 4)
        let x = rng.tensor([2, 3])
        let xs = try x.floats(), w: [Float] = [2, -3, 0.25], k: [Float] = [0.5, -1, 2]
        let gy = rng.tensor([2, 3])
        let gs = try gy.floats()
        for (c, c2) in [(true, false), (false, true), (false, false)] {
            let feeds = ["x": x, "c": try Tensor(shape: [], bools: [c]), "c2": try Tensor(shape: [], bools: [c2])]
            let pass = try m.forward(feeds, recording: .gradient)
            let y = try XCTUnwrap(pass.outputs["y"]).floats()
            let gx = try XCTUnwrap(try pass.backward(seeds: ["y": gy], wrt: ["x"])["x"]).floats()
            for i in 0..<6 {
                let j = i % 3
                let (want, dwant): (Float, Float)
                if c { (want, dwant) = (xs[i] * w[j], gs[i] * w[j]) }
                else if c2 { (want, dwant) = (xs[i] - w[j], gs[i]) }
                else { let t = tanh(xs[i]); (want, dwant) = (t + k[j], gs[i] * (1 - t * t)) }
                XCTAssertEqual(y[i], want, accuracy: 1e-6, "value, c \(c) c2 \(c2)")
                XCTAssertEqual(gx[i], dwant, accuracy: 1e-6, "gradient, c \(c) c2 \(c2)")
            }
        }
        // The outer initializer is a gradient target too (through the then branch).
        let feeds = ["x": x, "c": try Tensor(shape: [], bools: [true]), "c2": try Tensor(shape: [], bools: [true])]
        let gw = try XCTUnwrap(try m.forward(feeds, recording: .gradient).backward(seeds: ["y": gy], wrt: ["w"])["w"]).floats()
        for j in 0..<3 { XCTAssertEqual(gw[j], gs[j] * xs[j] + gs[3 + j] * xs[3 + j], accuracy: 1e-5) }
    }

    func testBadConditionAndMissingBranchAreNamed() throws {
        let m = try model()
        let x = try Tensor(shape: [2, 3], floats: [Float](repeating: 1, count: 6))
        XCTAssertThrowsError(try m.run(["x": x, "c": try Tensor(shape: [2], bools: [true, false]), "c2": try Tensor(shape: [], bools: [true])])) { error in
            XCTAssertTrue("\(error)".contains("single boolean"), "\(error)")
        }
        let g = Graph(nodes: [Node(name: "if", opType: "If", inputs: ["c"], outputs: ["y"])],
                      inputs: [ValueInfo(name: "c", elementType: 9, shape: [])], outputs: [ValueInfo(name: "y")])
        XCTAssertThrowsError(try Model(graph: g)) { error in XCTAssertTrue("\(error)".contains("then_branch"), "\(error)") }
    }
}
