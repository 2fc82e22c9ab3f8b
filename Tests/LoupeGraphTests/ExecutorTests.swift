import XCTest
import LoupeTensor
@testable import LoupeGraph

/// Test-local operators so the executor's mechanics are tested independently of the operator
/// table: y = a * x (elementwise, same shape) and y = x * x, and an int-valued "shape" op.
private struct ScaleOp: Operator {
    let a: Float
    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        guard let x = inputs[0] else { throw GraphError.invalid("missing") }
        return [try Tensor(shape: x.shape, floats: try x.floats().map { $0 * a })]
    }
    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        guard let g = ctx.gradOutputs[0] else { return [nil] }
        return [try Tensor(shape: g.shape, floats: try g.floats().map { $0 * a })]
    }
}

private struct MulOp: Operator {
    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        guard let x = inputs[0], let y = inputs[1] else { throw GraphError.invalid("missing") }
        let a = try x.floats(), b = try y.floats()
        return [try Tensor(shape: x.shape, floats: zip(a, b).map { $0 * $1 })]
    }
    var backwardNeeds: BackwardNeeds { .allInputs(2) }
    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        guard let g = ctx.gradOutputs[0] else { return [nil, nil] }
        let x = try ctx.input(0, "Mul").floats(), y = try ctx.input(1, "Mul").floats(), gv = try g.floats()
        return [try Tensor(shape: g.shape, floats: zip(gv, y).map { $0 * $1 }),
                try Tensor(shape: g.shape, floats: zip(gv, x).map { $0 * $1 })]
    }
}

private struct CountOp: NonDifferentiableOperator {
    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        [Tensor(ints: [Int64(inputs[0]?.count ?? 0)])]
    }
}

/// Turns an int64 count back into a float tensor (no gradient to its input exists).
private struct IntToFloatOp: Operator {
    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        [try Tensor(shape: [1], floats: try inputs[0]!.ints().map { Float($0) })]
    }
    func vjp(_ ctx: VJPContext) throws -> [Tensor?] { [nil] }
}

final class ExecutorTests: XCTestCase {
    let ops: [String: OperatorFactory] = [
        "Scale": { ctx in ScaleOp(a: try ctx.float("a")) },
        "TMul": { _ in MulOp() },
        "Count": { _ in CountOp() },
        "IntToFloat": { _ in IntToFloatOp() },
    ]

    /// y = 3 * (x * (2x)) = 6 x², so dy/dx = 12 x; also checks node order independence.
    func graph() -> Graph {
        Graph(nodes: [
            Node(name: "mul", opType: "TMul", inputs: ["x", "h"], outputs: ["m"]),
            Node(name: "double", opType: "Scale", inputs: ["x"], outputs: ["h"], attributes: ["a": .float(2)]),
            Node(name: "triple", opType: "Scale", inputs: ["m"], outputs: ["y"], attributes: ["a": .float(3)]),
        ], inputs: [ValueInfo(name: "x", shape: [.symbolic("n")])], outputs: [ValueInfo(name: "y")])
    }

    func testForwardAndBackwardToInputAndIntermediate() throws {
        let model = try Model(graph: graph(), customOperators: ops)
        XCTAssertEqual(model.nodes.map(\.name), ["double", "mul", "triple"])
        let x = try Tensor(shape: [3], floats: [1, -2, 0.5])
        let pass = try model.forward(["x": x], recording: .gradient)
        XCTAssertEqual(try pass.outputs["y"]?.floats(), [6, 24, 1.5])
        let seed = try Tensor(shape: [3], floats: [1, 1, 1])
        let g = try pass.backward(seeds: ["y": seed], wrt: ["x", "h", "m"])
        XCTAssertEqual(try g["x"]?.floats(), [12, -24, 6])
        XCTAssertEqual(try g["m"]?.floats(), [3, 3, 3])
        // dy/dh = 3 x
        XCTAssertEqual(try g["h"]?.floats(), [3, -6, 1.5])
    }

    func testInitializerGradientAndFolding() throws {
        var g = graph()
        // Make h a constant: double's input becomes an initializer, so the node folds away.
        g.nodes[1].inputs = ["w"]
        g.initializers["w"] = try Tensor(shape: [3], floats: [1, 1, 1])
        let model = try Model(graph: g, customOperators: ops)
        XCTAssertEqual(model.foldedNodes, ["double"])
        let pass = try model.forward(["x": try Tensor(shape: [3], floats: [1, 2, 3])], recording: .gradient)
        XCTAssertEqual(try pass.outputs["y"]?.floats(), [6, 12, 18])
        let grads = try pass.backward(seeds: ["y": try Tensor(shape: [3], floats: [1, 0, 2])], wrt: ["x", "h"])
        XCTAssertEqual(try grads["x"]?.floats(), [6, 0, 12])
        XCTAssertEqual(try grads["h"]?.floats(), [3, 0, 18])
    }

    func testHooksCaptureReplaceAddAreScopedToOneCall() throws {
        let model = try Model(graph: graph(), customOperators: ops)
        let x = try Tensor(shape: [2], floats: [1, 2])
        var hooks = Hooks()
        let h = try model.hook("h"), m = try model.hook("m")
        hooks.capture(h)
        hooks.replace(h, with: try Tensor(shape: [2], floats: [10, 10]))
        let pass = try model.forward(["x": x], hooks: hooks, recording: .gradient)
        XCTAssertEqual(try pass.captured["h"]?.floats(), [10, 10])
        XCTAssertEqual(try pass.outputs["y"]?.floats(), [30, 60])
        // Replaced value cuts the path through `double`: dy/dx = 3 * 10.
        let g = try pass.backward(seeds: ["y": try Tensor(shape: [2], floats: [1, 1])], wrt: ["x"])
        XCTAssertEqual(try g["x"]?.floats(), [30, 30])

        var add = Hooks()
        add.add(m, Tensor(scalar: 1))
        XCTAssertEqual(try model.run(["x": x], hooks: add)["y"]?.floats(), [9, 27])
        // Nothing was left behind on the model.
        XCTAssertEqual(try model.run(["x": x])["y"]?.floats(), [6, 24])
    }

    func testUnknownHookNameSuggests() throws {
        let model = try Model(graph: graph(), customOperators: ops)
        XCTAssertThrowsError(try model.hook("hh")) { e in
            XCTAssertTrue("\(e)".contains("'h'"), "\(e)")
        }
    }

    func testInputValidation() throws {
        let model = try Model(graph: graph(), customOperators: ops)
        XCTAssertThrowsError(try model.run([:])) { XCTAssertTrue("\($0)".contains("input 'x' was not given"), "\($0)") }
        XCTAssertThrowsError(try model.run(["x": Tensor(ints: [1])])) { XCTAssertTrue("\($0)".contains("expected float32"), "\($0)") }
        XCTAssertThrowsError(try model.run(["x": try Tensor(shape: [1, 2], floats: [1, 2])])) { XCTAssertTrue("\($0)".contains("shape"), "\($0)") }
        XCTAssertThrowsError(try model.run(["x": try Tensor(shape: [1], floats: [.nan])])) { XCTAssertTrue("\($0)".contains("NaN"), "\($0)") }
        XCTAssertThrowsError(try model.run(["x": try Tensor(shape: [1], floats: [1]), "z": Tensor(scalar: 0)]))
    }

    func testUnsupportedOperatorsAreListedTogether() throws {
        let g = Graph(nodes: [
            Node(name: "a", opType: "Frobnicate", inputs: ["x"], outputs: ["y"]),
            Node(name: "b", opType: "Frobnicate", inputs: ["y"], outputs: ["z"]),
            Node(name: "c", opType: "Quux", domain: "com.example", inputs: ["z"], outputs: ["w"]),
        ], inputs: [ValueInfo(name: "x")], outputs: [ValueInfo(name: "w")], opsets: ["": 17, "com.example": 1])
        XCTAssertThrowsError(try Model(graph: g)) { e in
            let s = "\(e)"
            XCTAssertTrue(s.contains("Frobnicate (ai.onnx opset 17) at a, b"), s)
            XCTAssertTrue(s.contains("Quux (com.example opset 1)"), s)
        }
    }

    func testStructuralErrors() throws {
        let cyc = Graph(nodes: [
            Node(name: "a", opType: "Scale", inputs: ["q"], outputs: ["p"], attributes: ["a": .float(1)]),
            Node(name: "b", opType: "Scale", inputs: ["p"], outputs: ["q"], attributes: ["a": .float(1)]),
        ], inputs: [ValueInfo(name: "x")], outputs: [ValueInfo(name: "q")])
        XCTAssertThrowsError(try Model(graph: cyc, customOperators: ops)) { XCTAssertTrue("\($0)".contains("cycle"), "\($0)") }
        let undef = Graph(nodes: [Node(name: "a", opType: "Scale", inputs: ["nope"], outputs: ["y"], attributes: ["a": .float(1)])],
                          inputs: [ValueInfo(name: "x")], outputs: [ValueInfo(name: "y")])
        XCTAssertThrowsError(try Model(graph: undef, customOperators: ops)) { XCTAssertTrue("\($0)".contains("'nope'"), "\($0)") }
        let badAttr = Graph(nodes: [Node(name: "a", opType: "Scale", inputs: ["x"], outputs: ["y"], attributes: ["a": .string("big")])],
                            inputs: [ValueInfo(name: "x")], outputs: [ValueInfo(name: "y")])
        XCTAssertThrowsError(try Model(graph: badAttr, customOperators: ops)) { XCTAssertTrue("\($0)".contains("attribute 'a'"), "\($0)") }
    }

    func testGradientThroughIntegerPathIsReportedByName() throws {
        let g = Graph(nodes: [
            Node(name: "count", opType: "Count", inputs: ["x"], outputs: ["n"]),
            Node(name: "tofloat", opType: "IntToFloat", inputs: ["n"], outputs: ["y"]),
        ], inputs: [ValueInfo(name: "x")], outputs: [ValueInfo(name: "y")])
        let model = try Model(graph: g, customOperators: ops)
        let pass = try model.forward(["x": try Tensor(shape: [2], floats: [1, 2])], recording: .gradient)
        XCTAssertEqual(try pass.outputs["y"]?.floats(), [2])
        // x influences y only through an integer value: asking for its gradient names the node.
        XCTAssertThrowsError(try pass.backward(seeds: ["y": try Tensor(shape: [1], floats: [1])], wrt: ["x"])) { e in
            XCTAssertEqual("\(e)", "cannot differentiate through node count (Count): its output is an integer tensor, which carries no gradient, so none reaches 'x' (rounding and indexing have zero derivative almost everywhere)")
        }
    }

    func testBackwardWithoutRecordingThrows() throws {
        let model = try Model(graph: graph(), customOperators: ops)
        let pass = try model.forward(["x": try Tensor(shape: [1], floats: [1])])
        XCTAssertThrowsError(try pass.backward(seeds: ["y": try Tensor(shape: [1], floats: [1])], wrt: ["x"]))
    }

    func testConcurrentCallsShareOneModel() throws {
        let model = try Model(graph: graph(), customOperators: ops)
        nonisolated(unsafe) let results = UnsafeMutableBufferPointer<Float>.allocate(capacity: 64)
        defer { results.deallocate() }
        DispatchQueue.concurrentPerform(iterations: 64) { i in
            let x = try? Tensor(shape: [1], floats: [Float(i)])
            guard let x else { return }
            results[i] = (try? model.run(["x": x])["y"]?.floats()[0]) ?? -1
        }
        for i in 0..<64 { XCTAssertEqual(results[i], 6 * Float(i * i)) }
    }
}

/// Shape folding with a test-local Shape operator (registered under the ONNX name so the
/// compiler treats it as shape-only).
private struct TestShapeOp: NonDifferentiableOperator {
    func forward(_ inputs: [Tensor?]) throws -> [Tensor] { [Tensor(ints: (inputs[0]?.shape ?? []).map { Int64($0) })] }
}

private struct ShapeToFloatOp: Operator {
    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try inputs[0]!.floats(), n = try inputs[1]!.ints()
        return [try Tensor(shape: [x.count], floats: x.map { $0 * Float(n.reduce(1, *)) })]
    }
    func vjp(_ ctx: VJPContext) throws -> [Tensor?] { [ctx.gradOutputs[0], nil] }
}

/// Integer arithmetic on a shape (the exporters' Gather/Concat chains).
private struct DoubleIntsOp: NonDifferentiableOperator {
    func forward(_ inputs: [Tensor?]) throws -> [Tensor] { [Tensor(ints: try inputs[0]!.ints().map { 2 * $0 })] }
}

final class ShapeFoldingTests: XCTestCase {
    let ops: [String: OperatorFactory] = ["Shape": { _ in TestShapeOp() }, "ScaleByCount": { _ in ShapeToFloatOp() },
                                          "DoubleInts": { _ in DoubleIntsOp() }]

    func graph(_ dims: [Dim]) -> Graph {
        Graph(nodes: [
            Node(name: "shape", opType: "Shape", inputs: ["x"], outputs: ["s"]),
            Node(name: "scale", opType: "ScaleByCount", inputs: ["x", "s"], outputs: ["y"]),
        ], inputs: [ValueInfo(name: "x", shape: dims)], outputs: [ValueInfo(name: "y")])
    }

    func testStaticInputsFoldShapeNodes() throws {
        let m = try Model(graph: graph([.fixed(3)]), customOperators: ops)
        XCTAssertEqual(m.foldedNodes, ["shape"])
        XCTAssertEqual(m.nodes.map(\.name), ["scale"])
        XCTAssertEqual(try m.run(["x": try Tensor(shape: [3], floats: [1, 2, 3])])["y"]?.floats(), [3, 6, 9])
        XCTAssertEqual(try m.inferShapes()["y"], [3])
    }

    /// Symbolic batch: the first call with given input shapes runs every node and learns the
    /// shape values; later calls with those shapes run the specialisation with the Shape node
    /// and the arithmetic on it folded, and other shapes never see another shape's constants.
    func testSymbolicInputsFoldPerInputShape() throws {
        let g = Graph(nodes: [
            Node(name: "shape", opType: "Shape", inputs: ["x"], outputs: ["s"]),
            Node(name: "double", opType: "DoubleInts", inputs: ["s"], outputs: ["d"]),
            Node(name: "scale", opType: "ScaleByCount", inputs: ["x", "d"], outputs: ["y"]),
        ], inputs: [ValueInfo(name: "x", shape: [.symbolic("n")])], outputs: [ValueInfo(name: "y")])
        let m = try Model(graph: g, customOperators: ops)
        XCTAssertEqual(m.foldedNodes, [])
        let two = try Tensor(shape: [2], floats: [1, 2]), three = try Tensor(shape: [3], floats: [1, 2, 3])
        let first = try m.forward(["x": two])
        XCTAssertTrue(first.model === m)
        XCTAssertEqual(try first.outputs["y"]?.floats(), [4, 8])
        for _ in 0..<2 {
            let p2 = try m.forward(["x": two]), p3 = try m.forward(["x": three])
            XCTAssertEqual(try p2.outputs["y"]?.floats(), [4, 8])
            XCTAssertEqual(try p3.outputs["y"]?.floats(), [6, 12, 18])
            XCTAssertEqual(p2.model.foldedNodes, ["shape", "double"])
            XCTAssertEqual(p2.model.nodes.map(\.name), ["scale"])
            XCTAssertEqual(try p2.shape(of: "d"), [1])
        }
        // Gradients through the specialisation, and a profile of what runs.
        let rec = try m.forward(["x": two], recording: RuleMap())
        XCTAssertFalse(rec.model === m)
        let gx = try rec.backward(seeds: ["y": try Tensor(shape: [2], floats: [1, 1])], wrt: ["x"])
        XCTAssertEqual(try gx["x"]?.floats(), [1, 1])
        XCTAssertEqual(try m.profile(["x": two], runs: 1).map(\.node), ["scale"])
        // An edit of a folded value runs the unspecialised model, where the edit applies.
        var hooks = Hooks()
        hooks.replace(try m.hook("d"), with: Tensor(ints: [5]))
        let edited = try m.forward(["x": two], hooks: hooks)
        XCTAssertTrue(edited.model === m)
        XCTAssertEqual(try edited.outputs["y"]?.floats(), [5, 10])
    }

    func testSymbolicInputsKeepShapeNodes() throws {
        let m = try Model(graph: graph([.symbolic("n")]), customOperators: ops)
        XCTAssertEqual(m.foldedNodes, [])
        XCTAssertEqual(try m.run(["x": try Tensor(shape: [2], floats: [1, 2])])["y"]?.floats(), [2, 4])
        XCTAssertEqual(try m.inferShapes(inputShapes: ["x": [5]])["s"], [1])
    }
}
