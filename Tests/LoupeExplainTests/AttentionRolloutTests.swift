import Foundation
import XCTest
import LoupeTensor
import LoupeGraph
import LoupeONNX
@testable import LoupeExplain

/// Attention rollout and flow on a tiny torchvision ViT (Tests/Fixtures/rollout, written by
/// tools/fixtures/make_rollout_fixtures.py: float64 NumPy rollout, networkx max-flow), and the
/// identities that hold without a reference.
final class AttentionRolloutTests: XCTestCase {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/rollout").path

    struct Meta: Decodable {
        struct ViT: Decodable { var softmax: [String]; var tokens: Int }
        var vit: ViT
    }

    nonisolated(unsafe) static var cached: (Model, Meta)?
    func load() throws -> (Model, Meta, Tensor) {
        if Self.cached == nil {
            let meta = try JSONDecoder().decode(Meta.self, from: Data(contentsOf: URL(fileURLWithPath: "\(Self.dir)/meta.json")))
            Self.cached = (try Model(graph: try ONNXModel.load(path: "\(Self.dir)/vit_rollout.onnx")), meta)
        }
        let (m, meta) = Self.cached!
        return (m, meta, try npy("input"))
    }

    func npy(_ key: String) throws -> Tensor { try Tensor.readNPY(path: "\(Self.dir)/vit_rollout.\(key).npy") }

    func testFinderLocatesTheSoftmaxOutputs() throws {
        let (model, meta, x) = try load()
        XCTAssertEqual(AttentionMaps.candidates(in: model), meta.vit.softmax)
        let (names, maps) = try AttentionMaps.capture(model, inputs: ["input": x])
        XCTAssertEqual(names, meta.vit.softmax)
        XCTAssertEqual(maps.map(\.shape), [[2, 2, 17, 17], [2, 2, 17, 17]])
        for (l, m) in maps.enumerated() {
            assertGradientClose(m, try npy("attn\(l)"), 1e-5, "attention \(l) vs onnxruntime")
        }
    }

    func testRolloutAgreesWithNumPy() throws {
        let (model, _, x) = try load()
        let maps = try AttentionMaps.capture(model, inputs: ["input": x]).maps
        for fusion in HeadFusion.allCases {
            let r = try AttentionRollout.rollout(maps, headFusion: fusion)
            let ref = try npy("rollout_\(fusion.rawValue)")
            assertGradientClose(r, ref, 1e-5, "rollout \(fusion)")
        }
        let d = try AttentionRollout.rollout(maps, headFusion: .mean, discardRatio: 0.5)
        assertGradientClose(d, try npy("rollout_mean_discard50"), 1e-5, "rollout discard 0.5")
        // The fixture discriminates between the options.
        XCTAssertGreaterThan(gradientRelativeError(try npy("rollout_max"), try npy("rollout_mean")), 1e-2)
        XCTAssertGreaterThan(gradientRelativeError(d, try npy("rollout_mean")), 1e-2)

        // End to end: the class token's row without the class token, on the 4×4 patch grid.
        let e = try AttentionRollout().explain(model, input: x)
        XCTAssertEqual(e.map.shape, [2, 4, 4])
        let ref = try npy("rollout_mean").doubles
        let got = e.map.doubles
        for n in 0..<2 { for p in 0..<16 { XCTAssertEqual(got[n * 16 + p], ref[n * 289 + 1 + p], accuracy: 1e-5) } }
        assertGradientClose(e.full, try npy("rollout_mean"), 1e-5, "explain rollout matrix")
    }

    func testFlowAgreesWithNetworkx() throws {
        let (model, _, x) = try load()
        let ref = try npy("flow_mean")
        let ek = try AttentionFlow(algorithm: .edmondsKarp).explain(model, input: x)
        assertGradientClose(ek.full, ref, 1e-5, "attention flow (Edmonds–Karp) vs networkx")
        let e = try AttentionFlow().explain(model, input: x)
        assertGradientClose(e.full, ref, 1e-5, "attention flow (Dinic) vs networkx")
        XCTAssertEqual(e.map.shape, [2, 4, 4])
        let r = ref.doubles
        for (i, v) in e.tokens.doubles.enumerated() { XCTAssertEqual(v, r[(i / 16) * 17 + 1 + i % 16], accuracy: 1e-5) }
    }

    func testRolloutRowsSumToOne() throws {
        let (model, _, x) = try load()
        let maps = try AttentionMaps.capture(model, inputs: ["input": x]).maps
        for fusion in HeadFusion.allCases {
            let r = try AttentionRollout.rollout(maps, headFusion: fusion, discardRatio: 0.3).doubles
            for row in 0..<(2 * 17) {
                XCTAssertEqual(r[(row * 17)..<(row * 17 + 17)].reduce(0, +), 1, accuracy: 1e-6, "\(fusion) row \(row)")
            }
        }
    }

    func identity(batch: Int, heads: Int, tokens t: Int) throws -> Tensor {
        var v = [Float](repeating: 0, count: batch * heads * t * t)
        for bh in 0..<(batch * heads) { for i in 0..<t { v[bh * t * t + i * t + i] = 1 } }
        return try Tensor(shape: [batch, heads, t, t], floats: v)
    }

    func testIdentityAttentionGivesIdentity() throws {
        let a = try identity(batch: 2, heads: 3, tokens: 5)
        for fusion in HeadFusion.allCases {
            let r = try AttentionRollout.rollout([a, a, a], headFusion: fusion).doubles
            for n in 0..<2 { for i in 0..<5 { for j in 0..<5 {
                XCTAssertEqual(r[(n * 5 + i) * 5 + j], i == j ? 1 : 0, accuracy: 1e-12)
            } } }
        }
        // Flow through identity attention: only the output token's own column carries flow (1).
        let f = try AttentionFlow.flow([a, a], outputToken: 2).doubles
        XCTAssertEqual(f, [0, 0, 1, 0, 0, 0, 0, 1, 0, 0])
    }

    /// Hand-computed: one layer, one head, T = 2, A = [[0.2, 0.8], [0.6, 0.4]] ⇒
    /// Ã = ½(A + I) = [[0.6, 0.4], [0.3, 0.7]]; two layers: Ã² = [[0.48, 0.52], [0.39, 0.61]].
    /// Flow into token 0 over two layers (edge (l, j) → (l + 1, i) has capacity Ã[i, j]): from
    /// token 1, paths 1→1→0 (min(0.7, 0.4)) and 1→0→0 (min(0.4, 0.6)), sharing no edge:
    /// 0.4 + 0.4 = 0.8; from token 0: 0→0→0 (min(0.6, 0.6)) plus 0→1→0 (min(0.3, 0.4)) = 0.9.
    /// One layer: flow = Ã's row 0.
    func testHandComputed() throws {
        let a = try Tensor(shape: [1, 1, 2, 2], floats: [0.2, 0.8, 0.6, 0.4])
        let one = try AttentionRollout.rollout([a]).doubles
        for (g, w) in zip(one, [0.6, 0.4, 0.3, 0.7]) { XCTAssertEqual(g, w, accuracy: 1e-7) }
        let two = try AttentionRollout.rollout([a, a]).doubles
        for (g, w) in zip(two, [0.48, 0.52, 0.39, 0.61]) { XCTAssertEqual(g, w, accuracy: 1e-7) }
        let f1 = try AttentionFlow.flow([a]).doubles
        for (g, w) in zip(f1, [0.6, 0.4]) { XCTAssertEqual(g, w, accuracy: 1e-7) }
        let f2 = try AttentionFlow.flow([a, a]).doubles
        for (g, w) in zip(f2, [0.9, 0.8]) { XCTAssertEqual(g, w, accuracy: 1e-7) }
        // Max fusion of two heads, hand-computed: max([[.2,.8],[.6,.4]], [[.5,.5],[.9,.1]]) =
        // [[.5,.8],[.9,.4]]; + I = [[1.5,.8],[.9,1.4]], rows normalised by 2.3.
        let h2 = try Tensor(shape: [1, 2, 2, 2], floats: [0.2, 0.8, 0.6, 0.4, 0.5, 0.5, 0.9, 0.1])
        let mx = try AttentionRollout.rollout([h2], headFusion: .max).doubles
        for (g, w) in zip(mx, [1.5 / 2.3, 0.8 / 2.3, 0.9 / 2.3, 1.4 / 2.3]) { XCTAssertEqual(g, w, accuracy: 1e-7) }
    }

    /// The finder also reads a hand-written attention (tools/models/small_transformers.py's
    /// SelfAttention in the explain fixtures' one-block ViT, 2 heads, 5 tokens): with one layer
    /// the rollout is the augmented attention itself, and the flow into the class token equals
    /// its row (a single edge per input token).
    func testOtherViTExport() throws {
        let c = try GradientFixtures.load("vit_tiny")
        let x = try c.array("input")
        let (names, maps) = try AttentionMaps.capture(c.model, inputs: ["input": x])
        XCTAssertEqual(names, ["/attention/Softmax_output_0"])
        XCTAssertEqual(maps[0].shape, [2, 2, 5, 5])
        let r = try AttentionRollout().explain(c.model, input: x)
        let f = try AttentionFlow().explain(c.model, input: x)
        XCTAssertEqual(r.map.shape, [2, 2, 2])
        let a = maps[0].doubles
        for n in 0..<2 {
            for j in 1..<5 {
                let fused = (a[((n * 2) * 5 + 0) * 5 + j] + a[((n * 2 + 1) * 5 + 0) * 5 + j]) / 2
                XCTAssertEqual(r.tokens.doubles[n * 4 + j - 1], fused / 2, accuracy: 1e-6)
                XCTAssertEqual(f.tokens.doubles[n * 4 + j - 1], fused / 2, accuracy: 1e-6)
            }
        }
    }

    /// Both max-flow algorithms on the textbook network of Cormen et al. (CLRS 3rd ed., fig. 26.1),
    /// a graph with a cycle, where backward residual edges matter; values from networkx 3.6.1.
    func testMaxFlowOnTextbookNetwork() {
        var net = FlowNetwork(nodes: 6)
        for (u, v, c) in [(0, 1, 16.0), (0, 2, 13), (2, 1, 4), (1, 3, 12), (3, 2, 9), (2, 4, 14), (4, 3, 7), (3, 5, 20), (4, 5, 4)] {
            net.addEdge(from: u, to: v, capacity: c)
        }
        for (s, t, want) in [(0, 5, 23.0), (2, 5, 15), (1, 4, 9)] {
            XCTAssertEqual(net.maxFlow(from: s, to: t), want, accuracy: 1e-12, "Dinic \(s)→\(t)")
            XCTAssertEqual(net.maxFlowEdmondsKarp(from: s, to: t), want, accuracy: 1e-12, "Edmonds–Karp \(s)→\(t)")
        }
        XCTAssertEqual(net.maxFlow(from: 5, to: 0), 0)
    }

    func testErrorsNameTheProblem() throws {
        let c = try GradientFixtures.load("cnn_bn")
        let x = try c.array("input")
        XCTAssertThrowsError(try AttentionRollout().explain(c.model, input: x)) { e in
            XCTAssertTrue("\(e)".contains("Softmax"), "\(e)")
        }
        let (model, _, vx) = try load()
        let settings = AttentionSettings(attentionNames: ["/encoder/ln/LayerNormalization_output_0"])
        XCTAssertThrowsError(try AttentionRollout(settings).explain(model, input: vx)) { e in
            XCTAssertTrue("\(e)".contains("/encoder/ln/LayerNormalization_output_0"), "\(e)")
        }
        XCTAssertThrowsError(try AttentionRollout(AttentionSettings(grid: (3, 5))).explain(model, input: vx)) { e in
            XCTAssertTrue("\(e)".contains("16 patch tokens"), "\(e)")
        }
        XCTAssertThrowsError(try AttentionRollout.rollout([try identity(batch: 1, heads: 1, tokens: 3)], discardRatio: 1))
    }
}
