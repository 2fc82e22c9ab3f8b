import Foundation
import XCTest
import LoupeTensor
@testable import LoupeGraph

/// Conv → Relu runs as one fused Conv (ReLU in the GEMM epilogue), and Mul(x, Sigmoid(x)) as one
/// SiLU pass, when nothing observes the value in between; results, gradients and hooks must be
/// those of the unfused graph.
final class StepFusionTests: XCTestCase {
    /// x (1,2,6,5) → Conv(3 filters, 3x3, pad 1) → Relu → Conv(2, 1x1) = z → Relu → y, with z
    /// also a graph output (so that second pair must not fuse).
    func graph() throws -> Graph {
        var rng = SplitMix(seed: 3)
        var g = Graph(nodes: [
            Node(name: "c1", opType: "Conv", inputs: ["x", "w1", "b1"], outputs: ["a"], attributes: ["pads": .ints([1, 1, 1, 1])]),
            Node(name: "r1", opType: "Relu", inputs: ["a"], outputs: ["h"]),
            Node(name: "c2", opType: "Conv", inputs: ["h", "w2"], outputs: ["z"]),
            Node(name: "r2", opType: "Relu", inputs: ["z"], outputs: ["y"]),
        ], inputs: [ValueInfo(name: "x", elementType: 1, shape: [.fixed(1), .fixed(2), .fixed(6), .fixed(5)])],
           outputs: [ValueInfo(name: "y"), ValueInfo(name: "z")])
        g.initializers = ["w1": try rng.tensor([3, 2, 3, 3]), "b1": try rng.tensor([3]), "w2": try rng.tensor([2, 3, 1, 1])]
        return g
    }

    func testPairsAreFoundOnlyWhereTheReluIsTheSoleReaderAndNotAnOutput() throws {
        let model = try Model(graph: try graph())
        let names = model.nodes.map(\.name)
        // c1 fuses r1; c2's output z is a graph output, so r2 stays separate.
        XCTAssertEqual(model.fusions[names.firstIndex(of: "c1")!], StepFusion(partner: names.firstIndex(of: "r1")!, kind: .activationIntoProducer(.relu)))
        XCTAssertNil(model.fusions[names.firstIndex(of: "c2")!])
    }

    func testFusedEqualsUnfusedForwardAndBackward() throws {
        let model = try Model(graph: try graph())
        var rng = SplitMix(seed: 9)
        let x = try Tensor(shape: [1, 2, 6, 5], floats: (0..<60).map { _ in rng.uniform() })
        // Capturing the pre-Relu value `a` forces the unfused path.
        var observe = Hooks()
        observe.capture(try model.hook("a"))
        let fused = try model.run(["x": x]), plain = try model.run(["x": x], hooks: observe)
        XCTAssertEqual(try fused["y"]?.floats(), try plain["y"]?.floats())
        XCTAssertEqual(try fused["z"]?.floats(), try plain["z"]?.floats())

        let seed = try Tensor(shape: [1, 2, 6, 5], floats: (0..<60).map { Float($0 % 7) - 3 })
        let pf = try model.forward(["x": x], recording: .gradient)
        let pp = try model.forward(["x": x], hooks: observe, recording: .gradient)
        let gf = try pf.backward(seeds: ["y": seed], wrt: ["x", "a", "w1"])
        let gp = try pp.backward(seeds: ["y": seed], wrt: ["x", "a", "w1"])
        for k in ["x", "a", "w1"] {
            XCTAssertEqual(try gf[k]?.floats(), try gp[k]?.floats(), k)
        }
        // The captured pre-Relu value really has negatives that the Relu removed.
        XCTAssertTrue(try pp.captured["a"]!.floats().contains { $0 < 0 })
    }

    func testHookOnTheReluOutputStillApplies() throws {
        let model = try Model(graph: try graph())
        let x = Tensor(zeros: [1, 2, 6, 5])
        var hooks = Hooks()
        hooks.replace(try model.hook("h"), with: Tensor(zeros: [1, 3, 6, 5]))
        XCTAssertEqual(try model.run(["x": x], hooks: hooks)["z"]?.floats(), [Float](repeating: 0, count: 60))
    }
}

extension StepFusionTests {
    /// x → Sigmoid → s; y = Mul(s, x) (operands swapped on purpose); z = Mul(x, Sigmoid(x)) where
    /// the sigmoid is also a graph output (must not fuse).
    func siluGraph() -> Graph {
        Graph(nodes: [
            Node(name: "sig", opType: "Sigmoid", inputs: ["x"], outputs: ["s"]),
            Node(name: "mul", opType: "Mul", inputs: ["s", "x"], outputs: ["y"]),
            Node(name: "sig2", opType: "Sigmoid", inputs: ["y"], outputs: ["t"]),
            Node(name: "mul2", opType: "Mul", inputs: ["y", "t"], outputs: ["z"]),
        ], inputs: [ValueInfo(name: "x", elementType: 1, shape: [.fixed(3), .fixed(37)])],
           outputs: [ValueInfo(name: "z"), ValueInfo(name: "t")])
    }

    func testSiLUPairsAndValues() throws {
        let model = try Model(graph: siluGraph())
        let names = model.nodes.map(\.name)
        XCTAssertEqual(model.fusions[names.firstIndex(of: "sig")!], StepFusion(partner: names.firstIndex(of: "mul")!, kind: .silu))
        XCTAssertNil(model.fusions[names.firstIndex(of: "sig2")!], "t is a graph output")
        var rng = SplitMix(seed: 5)
        let xs = (0..<111).map { _ in rng.uniform() * 12 } + [0, -0.0, 30, -30, 88, -88, 1e-20, -1e-20, .infinity, -.infinity]
        let x = try Tensor(shape: [3, 37], floats: Array(xs.prefix(111)))
        var observe = Hooks()
        observe.capture(try model.hook("s"))
        let fused = try model.run(["x": x]), plain = try model.run(["x": x], hooks: observe)
        let a = try fused["z"]!.floats(), b = try plain["z"]!.floats()
        for i in a.indices { XCTAssertEqual(a[i], b[i], accuracy: 4e-6 * max(1, abs(b[i])), "\(i)") }
        // Against x·σ(x) in Double, edge values included.
        let edge = try Tensor(shape: [1, 10], floats: Array(xs.suffix(10)))
        let y = try edge.silu().floats()
        for (i, v) in xs.suffix(10).enumerated() {
            let want = Double(v) / (1 + exp(-Double(v)))
            if want.isNaN { XCTAssertTrue(y[i].isNaN); continue }
            XCTAssertEqual(Double(y[i]), want, accuracy: 3e-7 * max(1, abs(want)), "silu(\(v))")
        }
        // Recording for gradients keeps σ(x) for Mul's VJP, so nothing fuses and gradients are exact.
        let pass = try model.forward(["x": x], recording: .gradient)
        let g = try pass.backward(seeds: ["z": Tensor(zeros: [3, 37], value: 1)], wrt: ["x"])
        XCTAssertEqual(g["x"]?.shape, [3, 37])
    }
}

extension StepFusionTests {
    /// The exact-GELU chain as torch.onnx.export writes it (constants as initializers, the Add's
    /// and last Mul's operands swapped on purpose), with x also read by a later Add after the chain.
    func geluGraph() throws -> Graph {
        var g = Graph(nodes: [
            Node(name: "div", opType: "Div", inputs: ["x", "sqrt2"], outputs: ["d"]),
            Node(name: "erf", opType: "Erf", inputs: ["d"], outputs: ["e"]),
            Node(name: "add", opType: "Add", inputs: ["one", "e"], outputs: ["a"]),
            Node(name: "mul", opType: "Mul", inputs: ["x", "a"], outputs: ["m"]),
            Node(name: "half", opType: "Mul", inputs: ["half_c", "m"], outputs: ["y"]),
            Node(name: "res", opType: "Add", inputs: ["y", "x"], outputs: ["z"]),
        ], inputs: [ValueInfo(name: "x", elementType: 1, shape: [.fixed(4), .fixed(29)])], outputs: [ValueInfo(name: "z")])
        g.initializers = ["sqrt2": Tensor(scalar: 1.4142135), "one": Tensor(scalar: 1), "half_c": Tensor(scalar: 0.5)]
        return g
    }

    func testGELUChainFusesAndMatchesTheExactGELU() throws {
        let model = try Model(graph: try geluGraph())
        let names = model.nodes.map(\.name)
        let idx = { (n: String) in names.firstIndex(of: n)! }
        XCTAssertEqual(model.fusions[idx("div")], StepFusion(absorbed: [idx("erf"), idx("add"), idx("mul"), idx("half")], kind: .gelu))
        var rng = SplitMix(seed: 8)
        let xs = (0..<116).map { _ in rng.uniform() * 8 }
        let x = try Tensor(shape: [4, 29], floats: xs)
        var observe = Hooks()
        observe.capture(try model.hook("e"))
        let fused = try model.run(["x": x])["z"]!.floats(), plain = try model.run(["x": x], hooks: observe)["z"]!.floats()
        for i in xs.indices {
            let v = Double(xs[i])
            let want = v * 0.5 * (1 + erf(v / 2.0.squareRoot())) + v
            XCTAssertEqual(Double(fused[i]), want, accuracy: 2e-6 * max(1, abs(want)), "fused at \(xs[i])")
            XCTAssertEqual(fused[i], plain[i], accuracy: 2e-6 * max(1, abs(plain[i])), "fused vs chain at \(xs[i])")
        }
        // A different constant is not GELU, and a rank-3 one would broadcast x: no fusion.
        var g = try geluGraph()
        g.initializers["half_c"] = Tensor(scalar: 0.25)
        XCTAssertNil(try Model(graph: g).fusions[idx("div")])
        g = try geluGraph()
        g.initializers["one"] = try Tensor(shape: [1, 1, 1], floats: [1])
        let broadcasting = try Model(graph: g)
        XCTAssertNil(broadcasting.fusions[idx("div")])
        XCTAssertEqual(try broadcasting.run(["x": x])["z"]?.shape, [1, 4, 29])
    }
}

/// Deterministic uniform numbers in [-1, 1) for this file.
private struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func uniform() -> Float {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Float(z >> 40) / Float(1 << 23) - 1
    }
    /// A tensor of `shape` filled with scale · uniform().
    mutating func tensor(_ shape: [Int], scale: Float = 1) throws -> Tensor {
        try Tensor(shape: shape, floats: (0..<shape.reduce(1, *)).map { _ in scale * uniform() })
    }
}

extension StepFusionTests {
    /// x (2,4,9,8) → Conv 3x3 → a → Sigmoid → s, Mul(a, s) = h (SiLU) → depthwise Conv 3x3 → d →
    /// HardSwish → y, and a 1x1 Conv → e → HardSwish → z whose e is also a graph output.
    func activationGraph() throws -> Graph {
        var rng = SplitMix(seed: 5)
        var g = Graph(nodes: [
            Node(name: "c1", opType: "Conv", inputs: ["x", "w1", "b1"], outputs: ["a"], attributes: ["pads": .ints([1, 1, 1, 1])]),
            Node(name: "sig", opType: "Sigmoid", inputs: ["a"], outputs: ["s"]),
            Node(name: "mul", opType: "Mul", inputs: ["a", "s"], outputs: ["h"]),
            Node(name: "dw", opType: "Conv", inputs: ["h", "w2"], outputs: ["d"],
                 attributes: ["pads": .ints([1, 1, 1, 1]), "group": .int(6)]),
            Node(name: "hs", opType: "HardSwish", inputs: ["d"], outputs: ["y"]),
            Node(name: "c3", opType: "Conv", inputs: ["y", "w3"], outputs: ["e"]),
            Node(name: "hs2", opType: "HardSwish", inputs: ["e"], outputs: ["z"]),
        ], inputs: [ValueInfo(name: "x", elementType: 1, shape: [.fixed(2), .fixed(4), .fixed(9), .fixed(8)])],
           outputs: [ValueInfo(name: "z"), ValueInfo(name: "e")])
        g.initializers = ["w1": try rng.tensor([6, 4, 3, 3], scale: 2), "b1": try rng.tensor([6], scale: 2),
                          "w2": try rng.tensor([6, 1, 3, 3], scale: 2), "w3": try rng.tensor([5, 6, 1, 1], scale: 2)]
        return g
    }

    /// Conv → SiLU (Sigmoid + Mul) and Conv → HardSwish run inside the Conv (GEMM and depthwise
    /// paths) with the unfused graph's results; an activation whose input is a graph output does
    /// not fuse; gradients (which read the pre-activation) take the unfused path.
    func testConvActivationsFuseAndMatchTheUnfusedGraph() throws {
        let model = try Model(graph: try activationGraph())
        let n = model.nodes.map(\.name), at = { (s: String) in n.firstIndex(of: s)! }
        XCTAssertEqual(model.fusions[at("c1")], StepFusion(absorbed: [at("sig"), at("mul")], kind: .activationIntoProducer(.silu)))
        XCTAssertEqual(model.fusions[at("dw")], StepFusion(partner: at("hs"), kind: .activationIntoProducer(.hardSwish)))
        XCTAssertNil(model.fusions[at("c3")])
        XCTAssertNil(model.fusions[at("sig")])

        var rng = SplitMix(seed: 8)
        let x = try Tensor(shape: [2, 4, 9, 8], floats: (0..<576).map { _ in 3 * rng.uniform() })
        var observe = Hooks()
        observe.capture(try model.hook("a"))
        observe.capture(try model.hook("d"))
        let fused = try model.run(["x": x]), plain = try model.run(["x": x], hooks: observe)
        for k in ["z", "e"] {
            let f = try fused[k]!.floats(), p = try plain[k]!.floats()
            XCTAssertEqual(f.count, p.count)
            for i in f.indices { XCTAssertEqual(f[i], p[i], accuracy: 1e-5 * max(1, abs(p[i])), "\(k)[\(i)]") }
        }
        // Both activations really bend the values: some pre-activations are well below zero.
        let pass = try model.forward(["x": x], hooks: observe)
        XCTAssertTrue(try pass.captured["a"]!.floats().contains { $0 < -1 })
        XCTAssertTrue(try pass.captured["d"]!.floats().contains { $0 < -1 })

        let seed = try Tensor(shape: [2, 5, 9, 8], floats: (0..<720).map { Float($0 % 5) - 2 })
        let g = try model.forward(["x": x], recording: .gradient).backward(seeds: ["z": seed], wrt: ["x"])
        let gp = try model.forward(["x": x], hooks: observe, recording: .gradient).backward(seeds: ["z": seed], wrt: ["x"])
        XCTAssertEqual(try g["x"]?.floats(), try gp["x"]?.floats())
    }
}

extension StepFusionTests {
    /// `outputs:` runs only what the wanted outputs and the captures depend on: asking for none
    /// with a capture stops at the captured layer (whose value is that of a full pass), asking
    /// for one output of two skips the other's branch, and an unknown name is an error.
    func testForwardRunsOnlyWhatTheWantedOutputsNeed() throws {
        let model = try Model(graph: try activationGraph())
        var rng = SplitMix(seed: 12)
        let x = try Tensor(shape: [2, 4, 9, 8], floats: (0..<576).map { _ in rng.uniform() })
        var hooks = Hooks()
        hooks.capture(try model.hook("d"))
        let full = try model.forward(["x": x], hooks: hooks)
        // A hook past the captured layer must not run when nothing past it is wanted.
        final class Flag: @unchecked Sendable { var hit = false }
        let flag = Flag()
        hooks.transform(try model.hook("y")) { flag.hit = true; return $0 }
        let upToD = try model.forward(["x": x], hooks: hooks, outputs: [])
        XCTAssertFalse(flag.hit, "the step after the captured layer ran")
        XCTAssertTrue(upToD.outputs.isEmpty)
        _ = try model.forward(["x": x], hooks: hooks)
        XCTAssertTrue(flag.hit)
        XCTAssertEqual(try upToD.captured["d"]?.floats(), try full.captured["d"]?.floats())
        let onlyE = try model.forward(["x": x], outputs: ["e"])
        XCTAssertEqual(Set(onlyE.outputs.keys), ["e"])
        XCTAssertEqual(try onlyE.outputs["e"]?.floats(), try full.outputs["e"]?.floats())
        XCTAssertThrowsError(try model.forward(["x": x], outputs: ["nope"]))
        // A recorded pass pruned to one output still differentiates it.
        let seed = try Tensor(shape: [2, 5, 9, 8], floats: (0..<720).map { Float($0 % 3) - 1 })
        let g = try model.forward(["x": x], recording: .gradient, outputs: ["e"]).backward(seeds: ["e": seed], wrt: ["x"])
        let gFull = try model.forward(["x": x], recording: .gradient).backward(seeds: ["e": seed], wrt: ["x"])
        XCTAssertEqual(try g["x"]?.floats(), try gFull["x"]?.floats())
    }
}


extension StepFusionTests {
    /// A squeeze-excitation block as torchvision exports it: x → GlobalAveragePool → Conv (fc1) →
    /// Relu → Conv (fc2) → HardSigmoid = s; Mul(s, x) → pointwise Conv (projection, constant
    /// weights). The Mul folds into the projection (its scale applied while the GEMM packs x);
    /// maps of 8x8 and 6x5 take the fold, 7x7 maps (the transposed product) and a Mul whose scale is not
    /// per channel fall back to the product; all equal the unfused graph (to rounding: the scale
    /// multiplies the same operands), and gradients take the unfused path.
    func seGraph(batch: Int, h: Int, w: Int, scaleShape: [Int]? = nil) throws -> Graph {
        var rng = SplitMix(seed: 21)
        let c = 24, m = 80
        var nodes = [
            Node(name: "pool", opType: "GlobalAveragePool", inputs: ["x"], outputs: ["p"]),
            Node(name: "fc1", opType: "Conv", inputs: ["p", "wf1", "bf1"], outputs: ["f1"]),
            Node(name: "relu", opType: "Relu", inputs: ["f1"], outputs: ["r"]),
            Node(name: "fc2", opType: "Conv", inputs: ["r", "wf2", "bf2"], outputs: ["f2"]),
            Node(name: "hsig", opType: "HardSigmoid", inputs: ["f2"], outputs: ["s"]),
            Node(name: "mul", opType: "Mul", inputs: ["s", "x"], outputs: ["xs"]),
            Node(name: "proj", opType: "Conv", inputs: ["xs", "wp", "bp"], outputs: ["y"]),
        ]
        var g = Graph(nodes: [], inputs: [ValueInfo(name: "x", elementType: 1, shape: [.fixed(batch), .fixed(c), .fixed(h), .fixed(w)])],
                      outputs: [ValueInfo(name: "y")])
        if let scaleShape {
            // A plain elementwise Mul by a constant instead of the squeeze-excitation scale.
            nodes = [Node(name: "mul", opType: "Mul", inputs: ["k", "x"], outputs: ["xs"]), nodes[6]]
            g.initializers["k"] = try rng.tensor(scaleShape)
        }
        g.nodes = nodes
        g.initializers["wf1"] = try rng.tensor([8, c, 1, 1])
        g.initializers["bf1"] = try rng.tensor([8])
        g.initializers["wf2"] = try rng.tensor([c, 8, 1, 1])
        g.initializers["bf2"] = try rng.tensor([c])
        g.initializers["wp"] = try rng.tensor([m, c, 1, 1])
        g.initializers["bp"] = try rng.tensor([m])
        return g
    }

    func testSqueezeExcitationProductFoldsIntoTheProjection() throws {
        for (batch, h, w, scaleShape) in [(2, 8, 8, nil), (1, 7, 7, nil), (3, 6, 5, nil), (2, 8, 8, [1, 24, 8, 8]) as (Int, Int, Int, [Int]?)] {
            let model = try Model(graph: try seGraph(batch: batch, h: h, w: w, scaleShape: scaleShape))
            let n = model.nodes.map(\.name), at = { (s: String) in n.firstIndex(of: s)! }
            XCTAssertEqual(model.fusions[at("mul")], StepFusion(partner: at("proj"), kind: .scaleIntoConsumer))
            var rng = SplitMix(seed: UInt64(7 + h))
            let count = batch * 24 * h * w
            let x = try Tensor(shape: [batch, 24, h, w], floats: (0..<count).map { _ in 2 * rng.uniform() })
            var observe = Hooks()
            observe.capture(try model.hook("xs"))
            let fused = try model.run(["x": x]), plain = try model.run(["x": x], hooks: observe)
            let f = try fused["y"]!.floats(), p = try plain["y"]!.floats()
            XCTAssertEqual(f.count, batch * 80 * h * w)
            for i in f.indices { XCTAssertEqual(f[i], p[i], accuracy: 2e-5 * max(1, abs(p[i])), "\(batch)x\(h)x\(w) y[\(i)]") }
            // The product is a real scaling: the captured value differs from x.
            XCTAssertNotEqual(try model.forward(["x": x], hooks: observe).captured["xs"]?.floats(), try x.floats())
            let seed = try Tensor(shape: [batch, 80, h, w], floats: (0..<(batch * 80 * h * w)).map { Float($0 % 5) - 2 })
            let g = try model.forward(["x": x], recording: .gradient).backward(seeds: ["y": seed], wrt: ["x"])
            let gp = try model.forward(["x": x], hooks: observe, recording: .gradient).backward(seeds: ["y": seed], wrt: ["x"])
            XCTAssertEqual(try g["x"]?.floats(), try gp["x"]?.floats())
        }
        // The scale really is folded on the 8x8 maps (into the column panels) and on 7x7 ones (into
        // the transposed product's packed pixel rows: the same products as scaling x first, so
        // bit-identical, bias and ReLU included, one image and a batch).
        var rng = SplitMix(seed: 30)
        let wp = try rng.tensor([80, 24, 1, 1]), packed = try PackedConvWeights(weight: wp, groups: 1)
        let g = ConvGeometry(kernel: (1, 1))
        let x88 = try rng.tensor([2, 24, 8, 8]), s = try rng.tensor([2, 24, 1, 1])
        let folded = try Kernels.conv2dScaledInput(x88, scale: s, weight: wp, bias: nil, geometry: g, packed: packed, activation: .none)
        let reference = try Kernels.conv2d(try Tensor.binary(.mul, x88, s), weight: wp, bias: nil, geometry: g)
        guard let folded else { return XCTFail("8x8 maps: the scale was not folded") }
        let a = try folded.floats(), b = try reference.floats()
        for i in a.indices { XCTAssertEqual(a[i], b[i], accuracy: 2e-5 * max(1, abs(b[i])), "folded[\(i)]") }
        let bias = try rng.tensor([80])
        for batch in [1, 3] {
            let x77 = try rng.tensor([batch, 24, 7, 7]), s77 = try rng.tensor([batch, 24, 1, 1])
            let y = try Kernels.conv2dScaledInput(x77, scale: s77, weight: wp, bias: bias, geometry: g, packed: packed, activation: .relu)
            let ref = try Kernels.conv2d(try Tensor.binary(.mul, x77, s77), weight: wp, bias: bias, geometry: g, packed: packed,
                                         activation: .relu)
            guard let y else { return XCTFail("7x7 maps: the scale was not folded") }
            XCTAssertEqual(try y.floats(), try ref.floats(), "7x7 batch \(batch)")
        }
    }
}

extension StepFusionTests {
    /// `Model.profile` times every step of a plain forward: one entry per node, in execution
    /// order, the fused-away Relu at zero (its time is its Conv's), the others positive.
    func testProfileTimesEveryStep() throws {
        let model = try Model(graph: try graph())
        let x = Tensor(zeros: [1, 2, 6, 5])
        let steps = try model.profile(["x": x], runs: 3)
        XCTAssertEqual(steps.map(\.node), model.nodes.map(\.displayName))
        XCTAssertEqual(steps.map(\.opType), ["Conv", "Relu", "Conv", "Relu"])
        XCTAssertEqual(steps[1].milliseconds, 0, "r1 runs inside c1")
        for i in [0, 2, 3] { XCTAssertGreaterThan(steps[i].milliseconds, 0, steps[i].node) }
    }
}

extension StepFusionTests {
    /// Residual-block tails: Add(x, r) → Relu and Add(h, c) → Relu with a broadcast constant both
    /// fuse into one ReLU(a + b) pass; Sub → Relu does not (only Add takes the ReLU).
    func addReluGraph() throws -> Graph {
        var g = Graph(nodes: [
            Node(name: "add1", opType: "Add", inputs: ["x", "r"], outputs: ["s1"]),
            Node(name: "relu1", opType: "Relu", inputs: ["s1"], outputs: ["h"]),
            Node(name: "add2", opType: "Add", inputs: ["c", "h"], outputs: ["s2"]),
            Node(name: "relu2", opType: "Relu", inputs: ["s2"], outputs: ["y"]),
            Node(name: "sub", opType: "Sub", inputs: ["h", "r"], outputs: ["s3"]),
            Node(name: "relu3", opType: "Relu", inputs: ["s3"], outputs: ["z"]),
        ], inputs: [ValueInfo(name: "x", elementType: 1, shape: [.fixed(2), .fixed(3), .fixed(4), .fixed(5)]),
                    ValueInfo(name: "r", elementType: 1, shape: [.fixed(2), .fixed(3), .fixed(4), .fixed(5)])],
           outputs: [ValueInfo(name: "y"), ValueInfo(name: "z"), ValueInfo(name: "h")])
        g.initializers = ["c": try Tensor(shape: [3, 1, 1], floats: [0.5, -0.25, -4])]
        return g
    }

    func testAddReluFusesAndMatchesTheUnfusedPair() throws {
        let model = try Model(graph: try addReluGraph())
        let names = model.nodes.map(\.name)
        let idx = { (n: String) in names.firstIndex(of: n)! }
        XCTAssertEqual(model.fusions[idx("add1")], StepFusion(partner: idx("relu1"), kind: .activationIntoProducer(.relu)))
        XCTAssertEqual(model.fusions[idx("add2")], StepFusion(partner: idx("relu2"), kind: .activationIntoProducer(.relu)))
        XCTAssertNil(model.fusions[idx("sub")])
        var rng = SplitMix(seed: 21)
        var xs = (0..<120).map { _ in rng.uniform() * 4 - 2 }, rs = (0..<120).map { _ in rng.uniform() * 4 - 2 }
        // NaN kept; −0 + −0 = −0 stays −0 (s < 0 is false), as the unfused Relu does.
        xs[3] = .nan; xs[7] = -0.0; rs[7] = -0.0; rs[11] = .infinity; xs[12] = -.infinity
        let x = try Tensor(shape: [2, 3, 4, 5], floats: xs), r = try Tensor(shape: [2, 3, 4, 5], floats: rs)
        var observe = Hooks()
        observe.capture(try model.hook("s1"))
        observe.capture(try model.hook("s2"))
        let fused = try model.forward(["x": x, "r": r], allowNonFinite: true).outputs
        let plain = try model.forward(["x": x, "r": r], hooks: observe, allowNonFinite: true).outputs
        for k in ["y", "z", "h"] {
            XCTAssertEqual(try fused[k]!.floats().map(\.bitPattern), try plain[k]!.floats().map(\.bitPattern), k)
        }
        XCTAssertTrue(try fused["y"]!.floats().contains(0), "some sums were negative")
        // Gradients through the fused pairs equal the unfused graph's.
        let seeds = ["y": try Tensor(shape: [2, 3, 4, 5], floats: (0..<120).map { Float($0 % 5) - 2 })]
        let feeds = ["x": try Tensor(shape: [2, 3, 4, 5], floats: (0..<120).map { _ in rng.uniform() * 4 - 2 }),
                     "r": try Tensor(shape: [2, 3, 4, 5], floats: (0..<120).map { _ in rng.uniform() * 4 - 2 })]
        let gf = try model.forward(feeds, recording: .gradient).backward(seeds: seeds, wrt: ["x"])
        let gp = try model.forward(feeds, hooks: observe, recording: .gradient).backward(seeds: seeds, wrt: ["x"])
        XCTAssertEqual(try gf["x"]!.floats(), try gp["x"]!.floats())
    }

    /// Linear layers: MatMul with a constant weight, then Add of a constant bias vector in either
    /// operand order, the bias added inside the GEMM's tiles (full and partial, 50 rows by 40 and
    /// 33 columns); a bias that is not a vector keeps its own Add.
    func linearGraph() throws -> Graph {
        var rng = SplitMix(seed: 5)
        func t(_ shape: [Int]) throws -> Tensor { try Tensor(shape: shape, floats: (0..<shape.reduce(1, *)).map { _ in rng.uniform() * 2 - 1 }) }
        var g = Graph(nodes: [
            Node(name: "mm1", opType: "MatMul", inputs: ["x", "w1"], outputs: ["m1"]),
            Node(name: "add1", opType: "Add", inputs: ["m1", "b1"], outputs: ["h"]),
            Node(name: "mm2", opType: "MatMul", inputs: ["h", "w2"], outputs: ["m2"]),
            Node(name: "add2", opType: "Add", inputs: ["b2", "m2"], outputs: ["y"]),
            Node(name: "mm3", opType: "MatMul", inputs: ["x", "w1"], outputs: ["m3"]),
            Node(name: "add3", opType: "Add", inputs: ["m3", "b3"], outputs: ["z"]),
        ], inputs: [ValueInfo(name: "x", elementType: 1, shape: [.fixed(2), .fixed(25), .fixed(48)])],
           outputs: [ValueInfo(name: "y"), ValueInfo(name: "z"), ValueInfo(name: "h")])
        g.initializers = ["w1": try t([48, 40]), "b1": try t([40]), "w2": try t([40, 33]), "b2": try t([33]), "b3": try t([1, 40])]
        return g
    }

    func testLinearBiasFusesIntoItsMatMul() throws {
        let g = try linearGraph()
        let model = try Model(graph: g)
        let names = model.nodes.map(\.name)
        let idx = { (n: String) in names.firstIndex(of: n)! }
        XCTAssertEqual(model.fusions[idx("mm1")], StepFusion(partner: idx("add1"), kind: .biasIntoProducer))
        XCTAssertEqual(model.fusions[idx("mm2")], StepFusion(partner: idx("add2"), kind: .biasIntoProducer))
        XCTAssertNil(model.fusions[idx("mm3")], "a (1, 40) bias keeps its Add")
        var rng = SplitMix(seed: 6)
        let x = try Tensor(shape: [2, 25, 48], floats: (0..<2400).map { _ in rng.uniform() * 4 - 2 })
        var observe = Hooks()
        observe.capture(try model.hook("m1"))
        observe.capture(try model.hook("m2"))
        let fused = try model.forward(["x": x]).outputs
        let plain = try model.forward(["x": x], hooks: observe).outputs
        for k in ["y", "z", "h"] {
            XCTAssertEqual(try fused[k]!.floats().map(\.bitPattern), try plain[k]!.floats().map(\.bitPattern), k)
        }
        // Against the definition, in Double.
        let xs = try x.floats(), w1 = try g.initializers["w1"]!.floats(), b1 = try g.initializers["b1"]!.floats()
        let h = try fused["h"]!.floats()
        for r in 0 ..< 50 {
            for j in 0 ..< 40 {
                var s = Double(b1[j]), size = abs(Double(b1[j]))
                for k in 0 ..< 48 {
                    let p = Double(xs[r * 48 + k]) * Double(w1[k * 40 + j])
                    s += p
                    size += abs(p)
                }
                XCTAssertEqual(Double(h[r * 40 + j]), s, accuracy: 1e-6 * size, "h[\(r), \(j)]")
            }
        }
        // Gradients through the fused layers equal the unfused graph's.
        let seeds = ["y": try Tensor(shape: [2, 25, 33], floats: (0..<1650).map { Float($0 % 7) - 3 })]
        let gf = try model.forward(["x": x], recording: .gradient).backward(seeds: seeds, wrt: ["x"])
        let gp = try model.forward(["x": x], hooks: observe, recording: .gradient).backward(seeds: seeds, wrt: ["x"])
        XCTAssertEqual(try gf["x"]!.floats(), try gp["x"]!.floats())
    }
}
