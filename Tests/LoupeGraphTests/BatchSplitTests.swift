import XCTest
import LoupeTensor
@testable import LoupeGraph

/// `Model.run` splits a batch over the cores only where the model keeps samples apart
/// (`BatchSplitCheck`), and then returns the whole batch's outputs.
final class BatchSplitTests: XCTestCase {
    private var savedThreads = 1
    override func setUp() { savedThreads = Kernels.threads; Kernels.threads = 2 }
    override func tearDown() { Kernels.threads = savedThreads }

    private func input(_ dims: [Dim]) -> ValueInfo { ValueInfo(name: "x", elementType: 1, shape: dims) }

    /// Conv → Relu → MaxPool → GlobalAveragePool → Flatten → Gemm → Softmax(axis 1), with a
    /// symbolic batch: what an exported image classifier is.
    private func classifier() -> Graph {
        var rng = TestRNG(seed: 41)
        var g = Graph(nodes: [
            Node(name: "conv", opType: "Conv", inputs: ["x", "w", "b"], outputs: ["c"], attributes: ["pads": .ints([1, 1, 1, 1])]),
            Node(name: "relu", opType: "Relu", inputs: ["c"], outputs: ["r"]),
            Node(name: "pool", opType: "MaxPool", inputs: ["r"], outputs: ["p"], attributes: ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2])]),
            Node(name: "gap", opType: "GlobalAveragePool", inputs: ["p"], outputs: ["g"]),
            Node(name: "flat", opType: "Flatten", inputs: ["g"], outputs: ["f"]),
            Node(name: "fc", opType: "Gemm", inputs: ["f", "fw", "fb"], outputs: ["l"], attributes: ["transB": .int(1)]),
            Node(name: "sm", opType: "Softmax", inputs: ["l"], outputs: ["y"], attributes: ["axis": .int(1)]),
        ], inputs: [input([.symbolic("N"), .fixed(3), .fixed(8), .fixed(8)])], outputs: [ValueInfo(name: "y"), ValueInfo(name: "l")])
        g.initializers = ["w": rng.tensor([4, 3, 3, 3]), "b": rng.tensor([4]), "fw": rng.tensor([5, 4]), "fb": rng.tensor([5])]
        return g
    }

    private func assertSame(_ a: [String: Tensor], _ b: [String: Tensor], _ what: String) throws {
        XCTAssertEqual(Set(a.keys), Set(b.keys), what)
        for (k, t) in b {
            let u = try XCTUnwrap(a[k], what)
            XCTAssertEqual(u.shape, t.shape, "\(what) \(k)")
            let x = try u.floats(), y = try t.floats()
            for i in y.indices { XCTAssertEqual(x[i], y[i], accuracy: 1e-6 * max(1, abs(y[i])), "\(what) \(k)[\(i)]") }
        }
    }

    /// Runs twice (the first call checks, the second splits when allowed) and compares both with
    /// an unsplit forward; returns the verdict recorded for the shapes.
    private func verdict(_ model: Model, _ x: Tensor) throws -> BatchSplitVerdicts.Verdict? {
        let whole = try model.forward(["x": x]).outputs
        try assertSame(try model.run(["x": x]), whole, "first call")
        try assertSame(try model.run(["x": x]), whole, "second call")
        return model.batchSplitVerdicts.lookup([x.shape])?.verdict
    }

    func testClassifierSplitsAndMatchesTheWholeBatch() throws {
        let model = try Model(graph: classifier())
        var rng = TestRNG(seed: 7)
        for n in [6, 5] {   // even shares, and 3 + 2
            let x = rng.tensor([n, 3, 8, 8])
            XCTAssertEqual(try verdict(model, x), .split, "batch \(n)")
            XCTAssertEqual(model.batchSplitVerdicts.lookup([x.shape])?.verified, true, "batch \(n): the split call checked its shapes")
        }
        // A feed that is not an input is reported as before, split or not.
        let x6 = rng.tensor([6, 3, 8, 8])
        XCTAssertThrowsError(try model.run(["x": x6, "extra": x6])) { error in
            guard case GraphError.inputMismatch(name: "extra", expected: _, got: _) = error else {
                return XCTFail("expected an unknown-input error, got \(error)")
            }
        }
        // Fewer than two samples per thread, or one thread: never split (nothing recorded).
        let small = rng.tensor([3, 3, 8, 8])
        _ = try model.run(["x": small])
        XCTAssertNil(model.batchSplitVerdicts.lookup([small.shape]))
        Kernels.threads = 1
        let single = rng.tensor([8, 3, 8, 8])
        _ = try model.run(["x": single])
        XCTAssertNil(model.batchSplitVerdicts.lookup([single.shape]))
    }

    /// Token ids (int64) looked up in an embedding table, pooled, classified, and an int64 ArgMax
    /// output: the table is not split, the ids and both outputs are.
    func testTokenIdsAndIntegerOutputsSplit() throws {
        var rng = TestRNG(seed: 21)
        var g = Graph(nodes: [
            Node(name: "emb", opType: "Gather", inputs: ["table", "ids"], outputs: ["e"], attributes: ["axis": .int(0)]),
            Node(name: "pool", opType: "ReduceMean", inputs: ["e"], outputs: ["p"], attributes: ["axes": .ints([1]), "keepdims": .int(0)]),
            Node(name: "fc", opType: "Gemm", inputs: ["p", "w", "b"], outputs: ["l"], attributes: ["transB": .int(1)]),
            Node(name: "top", opType: "ArgMax", inputs: ["l"], outputs: ["k"], attributes: ["axis": .int(1), "keepdims": .int(0)]),
        ], inputs: [ValueInfo(name: "ids", elementType: 7, shape: [.symbolic("N"), .symbolic("T")])],
           outputs: [ValueInfo(name: "l"), ValueInfo(name: "k")])
        g.opsets = ["": 13]
        g.initializers = ["table": rng.tensor([10, 6]), "w": rng.tensor([4, 6]), "b": rng.tensor([4])]
        let model = try Model(graph: g)
        let ids = try Tensor(shape: [7, 5], ints: (0..<35).map { Int64(($0 * 7 + 3) % 10) })
        let whole = try model.forward(["ids": ids]).outputs
        for call in 0..<2 {
            let out = try model.run(["ids": ids])
            XCTAssertEqual(try out["l"]?.floats(), try whole["l"]?.floats(), "call \(call)")
            XCTAssertEqual(try out["k"]?.ints(), try whole["k"]?.ints(), "call \(call)")
        }
        XCTAssertEqual(model.splitsBatch(inputShapes: [[7, 5]]), true)
    }

    /// A ViT's class token: a constant row expanded to the batch by a shape read from the input,
    /// then concatenated with each sample's tokens. The expanded rows are the same for every
    /// sample, so the model still splits.
    func testClassTokenExpandedToTheBatchSplits() throws {
        var rng = TestRNG(seed: 12)
        var g = Graph(nodes: [
            Node(name: "shape", opType: "Shape", inputs: ["x"], outputs: ["s"]),
            Node(name: "n", opType: "Gather", inputs: ["s", "zero"], outputs: ["n"], attributes: ["axis": .int(0)]),
            Node(name: "n1", opType: "Unsqueeze", inputs: ["n", "axes"], outputs: ["n1"]),
            Node(name: "target", opType: "Concat", inputs: ["n1", "rest"], outputs: ["t"], attributes: ["axis": .int(0)]),
            Node(name: "expand", opType: "Expand", inputs: ["cls", "t"], outputs: ["c"]),
            Node(name: "cat", opType: "Concat", inputs: ["c", "x"], outputs: ["y"], attributes: ["axis": .int(1)]),
        ], inputs: [input([.symbolic("N"), .fixed(4), .fixed(3)])], outputs: [ValueInfo(name: "y")])
        g.initializers = ["zero": try Tensor(shape: [], ints: [0]), "axes": try Tensor(shape: [1], ints: [0]),
                          "rest": try Tensor(shape: [2], ints: [1, 3]), "cls": rng.tensor([1, 1, 3])]
        let model = try Model(graph: g)
        XCTAssertEqual(try verdict(model, rng.tensor([6, 4, 3])), .split)
    }

    /// Resize of (N, 1, 2, 2) to 4×4 by scales (1, 1, 2, 2), or by constant sizes (6, 1, 4, 4).
    private func resize(sizes: Bool) throws -> Graph {
        var g = Graph(nodes: [
            Node(name: "r", opType: "Resize", inputs: sizes ? ["x", "", "", "sz"] : ["x", "", "sc"], outputs: ["y"],
                 attributes: ["mode": .string("linear")]),
        ], inputs: [input([.symbolic("N"), .fixed(1), .fixed(2), .fixed(2)])], outputs: [ValueInfo(name: "y")])
        g.initializers = sizes ? ["sz": try Tensor(shape: [4], ints: [6, 1, 4, 4])] : ["sc": try Tensor(shape: [4], floats: [1, 1, 2, 2])]
        return g
    }

    /// Resize by scales keeping the batch splits; to constant sizes (which name the whole
    /// batch's size) it runs whole.
    func testResizeSplitsOnlyByScales() throws {
        var rng = TestRNG(seed: 10)
        XCTAssertEqual(try verdict(try Model(graph: try resize(sizes: false)), rng.tensor([6, 1, 2, 2])), .split)
        XCTAssertEqual(try verdict(try Model(graph: try resize(sizes: true)), rng.tensor([6, 1, 2, 2])), .whole)
    }

    /// Models that let samples meet: each runs the whole batch, with the same outputs.
    func testModelsMixingSamplesRunWhole() throws {
        var rng = TestRNG(seed: 9)
        let x = rng.tensor([6, 4])
        let batchAxis: [String: Attribute] = ["axes": .ints([0]), "keepdims": .int(1)]
        var reshape = Graph(nodes: [
            Node(name: "r", opType: "Reshape", inputs: ["x", "s"], outputs: ["r"]),
            Node(name: "a", opType: "Relu", inputs: ["r"], outputs: ["y"]),
        ], inputs: [input([.symbolic("N"), .fixed(4)])], outputs: [ValueInfo(name: "y")])
        // A target shape with the batch's size written in: a share of 3 would be made 6 rows.
        reshape.initializers = ["s": try Tensor(shape: [2], ints: [6, -1])]
        let cases: [(String, Graph)] = [
            ("mean over the batch", Graph(nodes: [
                Node(name: "m", opType: "ReduceMean", inputs: ["x"], outputs: ["m"], attributes: batchAxis),
                Node(name: "d", opType: "Sub", inputs: ["x", "m"], outputs: ["y"]),
            ], inputs: [input([.symbolic("N"), .fixed(4)])], outputs: [ValueInfo(name: "y")])),
            ("softmax over the batch", Graph(nodes: [
                Node(name: "s", opType: "Softmax", inputs: ["x"], outputs: ["y"], attributes: ["axis": .int(0)]),
            ], inputs: [input([.symbolic("N"), .fixed(4)])], outputs: [ValueInfo(name: "y")])),
            ("transpose moving the batch", Graph(nodes: [
                Node(name: "t", opType: "Transpose", inputs: ["x"], outputs: ["t"], attributes: ["perm": .ints([1, 0])]),
                Node(name: "s", opType: "Softmax", inputs: ["t"], outputs: ["u"], attributes: ["axis": .int(1)]),
                Node(name: "b", opType: "Transpose", inputs: ["u"], outputs: ["y"], attributes: ["perm": .ints([1, 0])]),
            ], inputs: [input([.symbolic("N"), .fixed(4)])], outputs: [ValueInfo(name: "y")])),
            ("an unknown operator", Graph(nodes: [
                Node(name: "c", opType: "CumSum", inputs: ["x", "axis"], outputs: ["y"]),
            ], inputs: [input([.symbolic("N"), .fixed(4)])], outputs: [ValueInfo(name: "y")],
               initializers: ["axis": try Tensor(shape: [], ints: [1])])),
            ("a constant target shape with the batch in it", reshape),
        ]
        for (what, graph) in cases {
            let model = try Model(graph: graph)
            XCTAssertEqual(try verdict(model, x), .whole, what)
        }
    }
}
