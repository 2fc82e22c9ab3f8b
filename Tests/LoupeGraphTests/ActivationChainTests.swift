import XCTest
import LoupeTensor
@testable import LoupeGraph

/// The exact gradient rule with another type: the backward pass then takes every step of an
/// activation chain on its own, the reference the one-step chain VJP must equal.
private struct StepByStepGradient: BackwardRule {
    func backward(node: Node, op: any Operator, context: VJPContext) throws -> [Tensor?] { try op.vjp(context) }
}

/// Backward takes an exported SiLU (Sigmoid + Mul) or exact-GELU chain in one VJP when nothing
/// observes its inside, with the gradients of the step-by-step walk.
extension StepFusionTests {
    private func values(_ n: Int, scale: Float, seed: Int) -> [Float] {
        (0..<n).map { i in scale * sin(Float(i * 7 + seed) * 0.61) }
    }

    private func assertClose(_ a: Tensor?, _ b: Tensor?, _ what: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let x = try XCTUnwrap(a, what, file: file, line: line).floats(), y = try XCTUnwrap(b, what, file: file, line: line).floats()
        XCTAssertEqual(x.count, y.count, what, file: file, line: line)
        let scale = y.reduce(Float(0)) { max($0, abs($1)) }
        for i in x.indices where abs(x[i] - y[i]) > 2e-6 * max(scale, 1) {
            XCTFail("\(what)[\(i)]: \(x[i]) vs \(y[i])", file: file, line: line)
            return
        }
    }

    /// Gradients of `model` at `x` (fed as "x") for `seeds`, recorded with the exact gradient
    /// (chains in one VJP) and step by step, compared for every name in `wrt`.
    private func assertChainWalkMatches(_ model: Model, _ x: Tensor, seeds: [String: Tensor], wrt: [String], hooks: Hooks = .none,
                                        _ what: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let fused = try model.forward(["x": x], hooks: hooks, recording: .gradient).backward(seeds: seeds, wrt: wrt)
        let stepwise = try model.forward(["x": x], hooks: hooks, recording: RuleMap(fallback: StepByStepGradient()))
            .backward(seeds: seeds, wrt: wrt)
        for k in wrt { try assertClose(fused[k], stepwise[k], "\(what) d\(k)", file: file, line: line) }
    }

    func testActivationChainsAreFoundByTheirLastStep() throws {
        let silu = try Model(graph: siluGraph()), gelu = try Model(graph: try geluGraph()), conv = try Model(graph: try activationGraph())
        let at = { (m: Model, s: String) in m.nodes.map(\.name).firstIndex(of: s)! }
        XCTAssertEqual(silu.activationChains[at(silu, "mul")], ActivationChain(steps: [at(silu, "sig"), at(silu, "mul")], input: silu.slotOf["x"]!, kind: .silu))
        XCTAssertNil(silu.activationChains[at(silu, "mul2")], "t is a graph output")
        XCTAssertEqual(gelu.activationChains[at(gelu, "half")]?.steps, ["div", "erf", "add", "mul", "half"].map { at(gelu, $0) })
        XCTAssertEqual(gelu.activationChains[at(gelu, "half")]?.kind, .gelu)
        // Conv → SiLU: the Conv keeps its own backward step, the chain is the Sigmoid and the Mul.
        XCTAssertEqual(conv.activationChains[at(conv, "mul")], ActivationChain(steps: [at(conv, "sig"), at(conv, "mul")], input: conv.slotOf["a"]!, kind: .silu))
    }

    func testChainVJPEqualsTheStepByStepWalk() throws {
        // SiLU on a graph input (large |x|: both tails of σ), its output feeding a second,
        // unfused SiLU.
        try assertChainWalkMatches(try Model(graph: siluGraph()), try Tensor(shape: [3, 37], floats: values(111, scale: 25, seed: 1)),
                                   seeds: ["z": try Tensor(shape: [3, 37], floats: values(111, scale: 1, seed: 2))], wrt: ["x", "y"], "SiLU")
        // GELU, x also read after the chain (two cotangents summed).
        try assertChainWalkMatches(try Model(graph: try geluGraph()), try Tensor(shape: [4, 29], floats: values(116, scale: 6, seed: 3)),
                                   seeds: ["z": try Tensor(shape: [4, 29], floats: values(116, scale: 1, seed: 4))], wrt: ["x"], "GELU")
        // Conv → SiLU → depthwise Conv → HardSwish …: input and weight gradients.
        try assertChainWalkMatches(try Model(graph: try activationGraph()),
                                   try Tensor(shape: [2, 4, 9, 8], floats: values(576, scale: 3, seed: 5)),
                                   seeds: ["z": try Tensor(shape: [2, 5, 9, 8], floats: values(720, scale: 1, seed: 6))],
                                   wrt: ["x", "w1", "b1"], "conv SiLU")
    }

    /// Asking for, seeding or editing a value inside a chain takes the steps one by one, so that
    /// value gets its own gradient and the edit counts.
    func testObservedChainsTakeTheStepByStepWalk() throws {
        let model = try Model(graph: siluGraph())
        let x = try Tensor(shape: [3, 37], floats: values(111, scale: 4, seed: 7))
        let seed = try Tensor(shape: [3, 37], floats: values(111, scale: 1, seed: 8))
        // The sigmoid's output as a wrt value, and as a second seed.
        try assertChainWalkMatches(model, x, seeds: ["z": seed], wrt: ["x", "s"], "s asked for")
        try assertChainWalkMatches(model, x, seeds: ["z": seed, "s": seed], wrt: ["x"], "s seeded")
        // A hook that adds to σ(x): Mul's VJP reads the edited value, which x·σ(x)'s formula would not.
        var hooks = Hooks()
        hooks.add(try model.hook("s"), try Tensor(shape: [3, 37], floats: values(111, scale: 2, seed: 9)))
        try assertChainWalkMatches(model, x, seeds: ["z": seed], wrt: ["x"], hooks: hooks, "s edited")
        let e = try model.forward(["x": x], hooks: hooks, recording: .gradient).backward(seeds: ["z": seed], wrt: ["x"])
        let plain = try model.forward(["x": x], recording: .gradient).backward(seeds: ["z": seed], wrt: ["x"])
        XCTAssertNotEqual(try e["x"]?.floats(), try plain["x"]?.floats(), "the edit must change the gradient")
    }

    /// A recorded pass keeps only a chain's input: σ(x) is never stored (the chain runs as one
    /// SiLU pass, after the Conv when the Conv's output is that input). A later call that walks
    /// the chain step by step — a seed on σ(x) alone, σ(x) asked for — rebuilds it from x.
    func testRecordedPassKeepsOnlyTheChainInput() throws {
        let stepwise = RuleMap(fallback: StepByStepGradient())
        let model = try Model(graph: siluGraph())
        let x = try Tensor(shape: [3, 37], floats: values(111, scale: 4, seed: 10))
        let pass = try model.forward(["x": x], recording: .gradient)
        let slot = { (n: String) in model.slotOf[n]! }
        XCTAssertNotNil(pass.values[slot("x")])
        XCTAssertNil(pass.values[slot("s")], "σ(x) is not kept")
        XCTAssertNotNil(try model.forward(["x": x], recording: stepwise).values[slot("s")], "the step-by-step rules read σ(x)")
        let seed = try Tensor(shape: [3, 37], floats: values(111, scale: 1, seed: 11))
        // Only σ(x) seeded: the walk never reaches the chain's last step.
        try assertClose(try pass.backward(seeds: ["s": seed], wrt: ["x"])["x"],
                        try model.forward(["x": x], recording: stepwise).backward(seeds: ["s": seed], wrt: ["x"])["x"], "dx from s alone")
        // The same pass serves a fused walk afterwards.
        try assertClose(try pass.backward(seeds: ["z": seed], wrt: ["x"])["x"],
                        try model.forward(["x": x], recording: stepwise).backward(seeds: ["z": seed], wrt: ["x"])["x"], "dx after a rebuild")

        let conv = try Model(graph: try activationGraph())
        let xc = try Tensor(shape: [2, 4, 9, 8], floats: values(576, scale: 3, seed: 12))
        let cp = try conv.forward(["x": xc], recording: .gradient)
        XCTAssertNotNil(cp.values[conv.slotOf["a"]!], "the Conv's output is the chain's input")
        XCTAssertNil(cp.values[conv.slotOf["s"]!])
        let seedC = try Tensor(shape: [2, 5, 9, 8], floats: values(720, scale: 1, seed: 13))
        try assertClose(try cp.backward(seeds: ["z": seedC], wrt: ["x", "s"])["s"],
                        try conv.forward(["x": xc], recording: stepwise).backward(seeds: ["z": seedC], wrt: ["x", "s"])["s"], "ds rebuilt")
        // The forward values are the unfused graph's.
        try assertClose(cp.outputs["z"], try conv.forward(["x": xc], recording: stepwise).outputs["z"], "z")
    }
}
