import CLoupeKernels
import XCTest
import LoupeTensor
@testable import LoupeGraph

/// Recorded passes run a Conv whose sign decides a ReLU mask — Conv → Relu, Conv → Add → Relu —
/// by Winograd under a sign guard, and the backward pass's masks are then those of the exact
/// convolution, even where the pre-activations were built to sit within rounding of zero.
/// The exact gradient under another type, which the guard does not assume.
private struct OtherRule: BackwardRule {
    func backward(node: Node, op: any Operator, context: VJPContext) throws -> [Tensor?] { try op.vjp(context) }
}

final class GuardedConvolutionTests: XCTestCase {
    override func tearDown() { loupe_winograd_set_guarded(-1) }

    private func weights(_ n: Int, seed: Int) -> [Float] { (0..<n).map { i in sin(Float(i * 13 + seed) * 0.37) } }

    /// x (1, 8, 16, 16) → c1 (3×3) → r1 → c2 (3×3) → Add(·, s) → r2 → out; c3 (1×1 of h) read twice.
    private func residualGraph() throws -> Graph {
        var g = Graph(nodes: [
            Node(name: "c1", opType: "Conv", inputs: ["x", "w1", "b1"], outputs: ["a"], attributes: ["pads": .ints([1, 1, 1, 1])]),
            Node(name: "r1", opType: "Relu", inputs: ["a"], outputs: ["h"]),
            Node(name: "c2", opType: "Conv", inputs: ["h", "w2", "b2"], outputs: ["e"], attributes: ["pads": .ints([1, 1, 1, 1])]),
            Node(name: "add", opType: "Add", inputs: ["e", "s"], outputs: ["f"]),
            Node(name: "r2", opType: "Relu", inputs: ["f"], outputs: ["out"]),
            Node(name: "c3", opType: "Conv", inputs: ["h", "w3"], outputs: ["k"]),
            Node(name: "sq", opType: "Mul", inputs: ["k", "k"], outputs: ["k2"]),
        ], inputs: [ValueInfo(name: "x", elementType: 1, shape: [.fixed(1), .fixed(8), .fixed(16), .fixed(16)]),
                    ValueInfo(name: "s", elementType: 1, shape: [.fixed(1), .fixed(16), .fixed(16), .fixed(16)])],
           outputs: [ValueInfo(name: "out"), ValueInfo(name: "k2")])
        g.initializers = ["w1": try Tensor(shape: [16, 8, 3, 3], floats: weights(1152, seed: 1)),
                          "b1": try Tensor(shape: [16], floats: weights(16, seed: 2)),
                          "w2": try Tensor(shape: [16, 16, 3, 3], floats: weights(2304, seed: 3)),
                          "b2": try Tensor(shape: [16], floats: weights(16, seed: 4)),
                          "w3": try Tensor(shape: [4, 16, 1, 1], floats: weights(64, seed: 5))]
        return g
    }

    func testPatternsAreFound() throws {
        let model = try Model(graph: try residualGraph())
        let at = { (s: String) in model.nodes.map(\.name).firstIndex(of: s)! }
        XCTAssertEqual(model.guardedConvolutions[at("c1")], GuardedConvolution(conv: at("c1"), add: nil, relu: at("r1")))
        XCTAssertEqual(model.guardedConvolutions[at("c2")], GuardedConvolution(conv: at("c2"), add: at("add"), relu: at("r2")))
        XCTAssertNil(model.guardedConvolutions[at("c3")], "its output feeds a Mul")
        XCTAssertEqual(model.guardedConvolutions.count, 2)
    }

    /// c2's output plus s = −(c2's exact output, rounded): every element of the sum is a rounding
    /// residual. The ReLU's mask, and so the gradient to s, must follow the exact sign.
    func testMasksFollowTheExactPreActivation() throws {
        guard loupe_gemm_level() == 2 else { return } // no Winograd, so no guard, off AVX-512
        let model = try Model(graph: try residualGraph())
        let x = try Tensor(shape: [1, 8, 16, 16], floats: weights(2048, seed: 6).map { 2 * $0 })
        var capture = Hooks()
        capture.capture(try model.hook("h"))
        let zero = try Tensor(shape: [1, 16, 16, 16], floats: Array(repeating: 0, count: 4096))
        let h = try XCTUnwrap(try model.forward(["x": x, "s": zero], hooks: capture, recording: .gradient).captured["h"]).floats()
        // c2(h) in float64.
        let w2 = weights(2304, seed: 3), b2 = weights(16, seed: 4)
        var exact = [Double](repeating: 0, count: 4096)
        for o in 0..<16 { for oy in 0..<16 { for ox in 0..<16 {
            var acc = Double(b2[o])
            for c in 0..<16 { for kh in 0..<3 { for kw in 0..<3 {
                let iy = oy - 1 + kh, ix = ox - 1 + kw
                guard iy >= 0, iy < 16, ix >= 0, ix < 16 else { continue }
                acc += Double(w2[((o * 16 + c) * 3 + kh) * 3 + kw]) * Double(h[(c * 16 + iy) * 16 + ix])
            } } }
            exact[(o * 16 + oy) * 16 + ox] = acc
        } } }
        let sValues = exact.map { Float(-$0) }
        let residual = zip(exact, sValues).map { $0 + Double($1) }
        let s = try Tensor(shape: [1, 16, 16, 16], floats: sValues)
        let seed = try Tensor(shape: [1, 16, 16, 16], floats: weights(4096, seed: 7))

        func mismatches(guarded: Bool, rules: RuleMap = .gradient, hooks: Hooks? = nil) throws -> Int {
            let pass = try model.forward(["x": x, "s": s], hooks: hooks ?? capture, recording: rules)
            if guarded { XCTAssertTrue(try pass.captured["h"]?.floats() == h, "the first block is deterministic") }
            let out = try XCTUnwrap(pass.outputs["out"]).floats()
            let gs = try XCTUnwrap(try pass.backward(seeds: ["out": seed], wrt: ["s"])["s"]).floats()
            let g = try seed.floats()
            var wrong = 0
            for i in residual.indices where residual[i] != 0 {
                let on = residual[i] > 0
                if (out[i] > 0) != on || gs[i] != (on ? g[i] : 0) { wrong += 1 }
            }
            return wrong
        }
        XCTAssertEqual(try mismatches(guarded: true), 0)
        // A rule of another type, or a capture of the Conv's output (which would then show
        // Winograd's values), keeps the direct convolution, and its float rounding.
        XCTAssertGreaterThan(try mismatches(guarded: false, rules: RuleMap(fallback: OtherRule())), 0)
        var observe = capture
        observe.capture(try model.hook("e"))
        XCTAssertGreaterThan(try mismatches(guarded: false, hooks: observe), 0)
        // Without the guard the recorded pass sums directly in float, whose rounding gets some of
        // these signs wrong: the comparison above has teeth.
        loupe_winograd_set_guarded(0)
        XCTAssertGreaterThan(try mismatches(guarded: false), 0)
    }
}
