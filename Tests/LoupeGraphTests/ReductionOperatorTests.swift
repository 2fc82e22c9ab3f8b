import XCTest
import LoupeTensor
@testable import LoupeGraph

final class ReductionOperatorTests: XCTestCase {
    let names = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
                 "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp"]

    /// Positive, well-separated values: L1 away from its kink, LogSum defined, Max/Min unique.
    let x = try! Tensor(shape: [2, 3, 2], floats: [0.3, 1.2, 0.7, 2.1, 1.6, 0.9, 0.45, 1.35, 2.4, 0.15, 1.05, 1.85])

    func testVJPsWithAxesAttribute() throws {
        for name in names {
            for keep in [0, 1] {
                let op = try makeOperator(name, inputs: 1, attributes: ["axes": .ints([0, -1]), "keepdims": .int(keep)], opset: 11)
                try checkVJP(op, [x], wrt: [0])
                let all = try makeOperator(name, inputs: 1, attributes: ["keepdims": .int(keep)], opset: 11)
                try checkVJP(all, [x], wrt: [0])
            }
        }
    }

    func testVJPsWithAxesInput() throws {
        for name in names {
            let op = try makeOperator(name, inputs: 2, attributes: ["keepdims": .int(0)], opset: 18)
            try checkVJP(op, [x, Tensor(ints: [1])], wrt: [0])
            try checkVJP(op, [x, nil], wrt: [0])
        }
    }

    func testAxesMoveToInputAtTheRightOpset() throws {
        let axes = Tensor(ints: [1])
        // ReduceSum: input from opset 13; the others from 18.
        let sum13 = try makeOperator("ReduceSum", inputs: 2, attributes: ["keepdims": .int(0)], opset: 13)
        XCTAssertEqual(try sum13.forward([x, axes])[0].shape, [2, 2])
        XCTAssertThrowsError(try makeOperator("ReduceSum", inputs: 2, opset: 12))
        XCTAssertThrowsError(try makeOperator("ReduceMean", inputs: 2, opset: 17))
        let mean17 = try makeOperator("ReduceMean", inputs: 1, attributes: ["axes": .ints([1])], opset: 17)
        let mean18 = try makeOperator("ReduceMean", inputs: 2, opset: 18)
        XCTAssertEqual(try mean17.forward([x])[0], try mean18.forward([x, axes])[0])
        assertValues(try mean18.forward([x, axes])[0], [0.8666667, 1.4, 1.3, 1.1166667], shape: [2, 1, 2])
    }

    func testNoopWithEmptyAxes() throws {
        let noop = try makeOperator("ReduceSum", inputs: 2, attributes: ["noop_with_empty_axes": .int(1)], opset: 13)
        XCTAssertEqual(try noop.forward([x, Tensor(ints: [])])[0], x)
        XCTAssertEqual(try noop.forward([x, nil])[0], x)
        try checkVJP(noop, [x, nil], wrt: [0])
        let all = try makeOperator("ReduceSum", inputs: 2, attributes: ["keepdims": .int(0)], opset: 13)
        assertValues(try all.forward([x, Tensor(ints: [])])[0], [14.05], shape: [])
    }

    func testInt64ReductionsThroughOperators() throws {
        let s = Tensor(ints: [2, 3, 4])
        XCTAssertEqual(try makeOperator("ReduceProd", inputs: 1, attributes: ["keepdims": .int(0)]).forward([s])[0].ints(), [24])
        XCTAssertEqual(try makeOperator("ReduceMax", inputs: 1, attributes: ["keepdims": .int(1)]).forward([s])[0].ints(), [4])
    }

    func testMaxBackwardSplitsTies() throws {
        let op = try makeOperator("ReduceMax", inputs: 1, attributes: ["axes": .ints([1]), "keepdims": .int(0)], opset: 13)
        let t = try Tensor(shape: [1, 4], floats: [3, 1, 3, 3])
        let y = try op.forward([t])[0]
        let g = try op.vjp(VJPContext(inputs: [t], inputShapes: [[1, 4]], outputs: [y], gradOutputs: [Tensor(shape: [1], floats: [1.5])],
                                      wantInput: [true]))
        XCTAssertEqual(try XCTUnwrap(g[0]).floats(), [0.5, 0, 0.5, 0.5])
    }

    func testArgMaxArgMin() throws {
        let t = try Tensor(shape: [2, 3], floats: [1, 5, 5, 7, -2, 7])
        let am = try makeOperator("ArgMax", inputs: 1, attributes: ["axis": .int(1), "keepdims": .int(0)])
        XCTAssertEqual(try am.forward([t])[0].ints(), [1, 0])
        let last = try makeOperator("ArgMax", inputs: 1, attributes: ["axis": .int(1), "select_last_index": .int(1)])
        let y = try last.forward([t])[0]
        XCTAssertEqual(y.shape, [2, 1])
        XCTAssertEqual(try y.ints(), [2, 2])
        XCTAssertEqual(try makeOperator("ArgMin", inputs: 1).forward([t])[0].ints(), [0, 1, 0])
        XCTAssertTrue(am is any NonDifferentiableOperator)
    }

    func testCumSum() throws {
        let t = try Tensor(shape: [2, 3], floats: [1, 2, 3, 4, 5, 6])
        let variants: [(Int, Int, [Float])] = [(0, 0, [1, 3, 6, 4, 9, 15]), (1, 0, [0, 1, 3, 0, 4, 9]),
                                               (0, 1, [6, 5, 3, 15, 11, 6]), (1, 1, [5, 3, 0, 11, 6, 0])]
        for (exclusive, reverse, expected) in variants {
            let op = try makeOperator("CumSum", inputs: 2, attributes: ["exclusive": .int(exclusive), "reverse": .int(reverse)])
            XCTAssertEqual(try op.forward([t, Tensor(shape: [], ints: [-1])])[0].floats(), expected)
            try checkVJP(op, [smoothPoints([2, 3, 2], seed: 21), Tensor(shape: [], ints: [1])], wrt: [0])
        }
        XCTAssertThrowsError(try makeOperator("CumSum", inputs: 2).forward([t, Tensor(ints: [0, 1])]))
    }

    func testTopK() throws {
        let op = try makeOperator("TopK", inputs: 2, outputs: 2, attributes: ["axis": .int(1)])
        let t = try Tensor(shape: [2, 4], floats: [0.3, -1, 2, 0.7, 5, 4, -3, 4.5])
        let out = try op.forward([t, Tensor(ints: [2])])
        XCTAssertEqual(try out[0].floats(), [2, 0.7, 5, 4.5])
        XCTAssertEqual(try out[1].ints(), [2, 3, 0, 3])
        let small = try makeOperator("TopK", inputs: 2, outputs: 2, attributes: ["largest": .int(0)])
        XCTAssertEqual(try small.forward([t, Tensor(ints: [1])])[1].ints(), [1, 2])
        try checkVJP(op, [smoothPoints([2, 5], seed: 22), Tensor(ints: [3])], wrt: [0])
        try checkVJP(small, [smoothPoints([3, 4], seed: 23), Tensor(ints: [2])], wrt: [0])
        XCTAssertThrowsError(try op.forward([t, Tensor(ints: [5])]))
    }

    func assertValues(_ t: Tensor, _ e: [Double], shape: [Int], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(t.shape, shape, file: file, line: line)
        for (a, b) in zip(t.doubles, e) { XCTAssertEqual(a, b, accuracy: 1e-5, file: file, line: line) }
        XCTAssertEqual(t.count, e.count, file: file, line: line)
    }
}
