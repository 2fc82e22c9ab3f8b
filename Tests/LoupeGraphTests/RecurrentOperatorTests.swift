import XCTest
import LoupeTensor
@testable import LoupeGraph

/// RNN, GRU and LSTM: back-propagation through time against finite differences for every
/// float input (X, W, R, B, initial states, peepholes), over directions, `sequence_lens`,
/// `layout`, `clip`, GRU `linear_before_reset` and LSTM `input_forget`. (Forward values are
/// checked by the ONNX backend node tests in CI: 18 cases.)
final class RecurrentOperatorTests: XCTestCase {
    private func inputs(gates: Int, lstm: Bool, dirs: Int, seq: Int = 4, batch: Int = 3, input: Int = 3, hidden: Int = 2,
                        batchFirst: Bool = false, lengths: [Int64]? = nil, seed: UInt64) throws -> [Tensor?] {
        var rng = TestRNG(seed: seed)
        let x = rng.tensor(batchFirst ? [batch, seq, input] : [seq, batch, input])
        let w = rng.tensor([dirs, gates * hidden, input], -0.8, 0.8)
        let r = rng.tensor([dirs, gates * hidden, hidden], -0.8, 0.8)
        let b = rng.tensor([dirs, 2 * gates * hidden], -0.5, 0.5)
        let lens = try lengths.map { try Tensor(shape: [batch], ints: $0) }
        let state = batchFirst ? [batch, dirs, hidden] : [dirs, batch, hidden]
        let h0 = rng.tensor(state, -0.5, 0.5)
        var all: [Tensor?] = [x, w, r, b, lens, h0]
        if lstm { all += [rng.tensor(state, -0.5, 0.5), rng.tensor([dirs, 3 * hidden], -0.5, 0.5)] }
        return all
    }

    private func check(_ opType: String, _ attributes: [String: Attribute], gates: Int, dirs: Int, batchFirst: Bool = false,
                       lengths: [Int64]? = nil, seed: UInt64, file: StaticString = #filePath, line: UInt = #line) throws {
        let lstm = opType == "LSTM"
        let xs = try inputs(gates: gates, lstm: lstm, dirs: dirs, batchFirst: batchFirst, lengths: lengths, seed: seed)
        let op = try makeOperator(opType, inputs: xs.count, outputs: lstm ? 3 : 2, attributes: attributes)
        let wrt = lstm ? [0, 1, 2, 3, 5, 6, 7] : [0, 1, 2, 3, 5]
        try checkVJP(op, xs, wrt: wrt, eps: 5e-3, rtol: 2e-2, atol: 2e-4, maxEntries: 40, seed: seed, file: file, line: line)
    }

    func testRNNGradients() throws {
        try check("RNN", ["hidden_size": .int(2)], gates: 1, dirs: 1, seed: 1)
        try check("RNN", ["hidden_size": .int(2), "direction": .string("bidirectional"), "activations": .strings(["Relu", "Tanh"])],
                  gates: 1, dirs: 2, lengths: [4, 2, 3], seed: 2)
    }

    func testGRUGradientsBothResetPlacements() throws {
        for lbr in [0, 1] {
            try check("GRU", ["hidden_size": .int(2), "linear_before_reset": .int(lbr)], gates: 3, dirs: 1, seed: 3)
            try check("GRU", ["hidden_size": .int(2), "linear_before_reset": .int(lbr), "direction": .string("bidirectional")],
                      gates: 3, dirs: 2, lengths: [1, 4, 3], seed: 4)
            try check("GRU", ["hidden_size": .int(2), "linear_before_reset": .int(lbr), "direction": .string("reverse"), "layout": .int(1)],
                      gates: 3, dirs: 1, batchFirst: true, lengths: [2, 4, 3], seed: 5)
        }
    }

    func testLSTMGradientsWithPeepholesClipAndCoupledGates() throws {
        try check("LSTM", ["hidden_size": .int(2)], gates: 4, dirs: 1, seed: 6)
        try check("LSTM", ["hidden_size": .int(2), "direction": .string("bidirectional")], gates: 4, dirs: 2, lengths: [3, 4, 1], seed: 7)
        try check("LSTM", ["hidden_size": .int(2), "input_forget": .int(1), "layout": .int(1)], gates: 4, dirs: 1, batchFirst: true, seed: 8)
        // A clip that bounds some gate inputs: their derivative is 0 there, as the forward is flat.
        try check("LSTM", ["hidden_size": .int(2), "clip": .float(0.6), "direction": .string("reverse")], gates: 4, dirs: 1, seed: 9)
    }

    /// Past `sequence_lens` the outputs are 0 and the last state is the one after the sample's
    /// last step; a reverse direction starts at the sample's own last step.
    func testSequenceLengths() throws {
        let xs = try inputs(gates: 4, lstm: true, dirs: 2, lengths: [4, 2, 0], seed: 11)
        let op = try makeOperator("LSTM", inputs: xs.count, outputs: 3, attributes: ["hidden_size": .int(2), "direction": .string("bidirectional")])
        let out = try op.forward(xs)
        let y = try out[0].floats(), yh = try out[1].floats(), h0 = try XCTUnwrap(xs[5]).floats()
        XCTAssertEqual(out[0].shape, [4, 2, 3, 2])
        func yAt(_ t: Int, _ d: Int, _ b: Int, _ j: Int) -> Float { y[((t * 2 + d) * 3 + b) * 2 + j] }
        for d in 0..<2 { for j in 0..<2 {
            for t in 2..<4 { XCTAssertEqual(yAt(t, d, 1, j), 0) }
            for t in 0..<4 { XCTAssertEqual(yAt(t, d, 2, j), 0) }
            XCTAssertEqual(yh[(d * 3 + 2) * 2 + j], h0[(d * 3 + 2) * 2 + j], "no steps: the initial state")
        } }
        // Forward direction ends at step 1 for sample 1, the reverse one at step 0.
        for j in 0..<2 {
            XCTAssertEqual(yh[(0 * 3 + 1) * 2 + j], yAt(1, 0, 1, j))
            XCTAssertEqual(yh[(1 * 3 + 1) * 2 + j], yAt(0, 1, 1, j))
        }
    }

    /// An empty batch or sequence gives empty or initial-state outputs, not a crash.
    func testEmptyBatchAndSequence() throws {
        var rng = TestRNG(seed: 5)
        for lbr in [0, 1] {
            let op = try makeOperator("GRU", inputs: 3, outputs: 2, attributes: ["hidden_size": .int(2), "linear_before_reset": .int(lbr)])
            let w = rng.tensor([1, 6, 3]), r = rng.tensor([1, 6, 2])
            let empty = try op.forward([Tensor(zeros: [4, 0, 3]), w, r])
            XCTAssertEqual(empty.map(\.shape), [[4, 1, 0, 2], [1, 0, 2]])
            let none = try op.forward([Tensor(zeros: [0, 2, 3]), w, r])
            XCTAssertEqual(none.map(\.shape), [[0, 1, 2, 2], [1, 2, 2]])
            let ctx = VJPContext(inputs: [Tensor(zeros: [4, 0, 3]), w, r], inputShapes: [[4, 0, 3], w.shape, r.shape], outputs: [nil, nil],
                                 gradOutputs: [Tensor(zeros: [4, 1, 0, 2]), nil], wantInput: [true, true, true])
            XCTAssertEqual(try op.vjp(ctx)[1]?.shape, w.shape)
        }
    }

    func testBadShapesAndAttributesAreNamed() throws {
        var rng = TestRNG(seed: 3)
        let op = try makeOperator("GRU", inputs: 3, outputs: 2, attributes: ["hidden_size": .int(2)])
        XCTAssertThrowsError(try op.forward([rng.tensor([4, 3, 3]), rng.tensor([1, 5, 3]), rng.tensor([1, 6, 2])])) { error in
            XCTAssertTrue("\(error)".contains("W must be"), "\(error)")
        }
        XCTAssertThrowsError(try makeOperator("LSTM", inputs: 3, outputs: 3, attributes: ["direction": .string("sideways")])) { error in
            XCTAssertTrue("\(error)".contains("direction"), "\(error)")
        }
        XCTAssertThrowsError(try makeOperator("RNN", inputs: 3, outputs: 2, attributes: ["activations": .strings(["Cosh"])])) { error in
            XCTAssertTrue("\(error)".contains("Cosh"), "\(error)")
        }
    }
}
