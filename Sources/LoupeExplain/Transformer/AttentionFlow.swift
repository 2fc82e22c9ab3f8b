import LoupeGraph
import LoupeTensor

/// Attention flow (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers", §3):
/// the attention graph is layered — node (l, j) is token j after l layers, l = 0…L — with an
/// edge (l, j) → (l + 1, i) of capacity `Ã_l[i, j]`, the residual-augmented, head-fused
/// attention of ``AttentionRollout`` (`rownorm(fuse(A_l) + I)`). The relevance of input token
/// j for output token o is the maximum flow from (0, j) to (L, o).
///
/// Rollout multiplies along every path; flow treats the weights as pipe capacities, so a token
/// gets credit up to the narrowest layer on its best routes. The paper reports flow correlating
/// better with gradient and ablation importance.
///
/// Max-flow by Edmonds–Karp (shortest augmenting paths by breadth-first search), in double
/// precision, once per sample and input token. With V = (L + 1)·T nodes and E = L·T² edges,
/// one max-flow costs O(V·E²) in the worst case, so the whole relevance is
/// O(B·T·V·E²) = O(B·L³·T⁶) worst case; in practice every augmenting path has exactly L forward
/// edges and the count of paths is far below the bound, but this is meant for small ViTs
/// (T ≲ 65, L ≲ 12), not ViT-B/16's 197 tokens.
public struct AttentionFlow: Sendable {
    public var settings: AttentionSettings
    public init(_ settings: AttentionSettings = AttentionSettings()) { self.settings = settings }

    /// One forward pass capturing the attention maps, then ``flow(_:outputToken:headFusion:discardRatio:)``.
    public func explain(_ model: Model, input: Tensor) throws -> AttentionRelevance {
        let (names, maps) = try settings.capture(model, input: input, method: "AttentionFlow")
        guard let t = maps.first?.shape[2] else {
            throw ExplainError.unsupported(method: "AttentionFlow", reason: "no attention maps")
        }
        try settings.checkTokens(t, method: "AttentionFlow")
        let f = try Self.flow(maps, outputToken: settings.outputToken, headFusion: settings.headFusion,
                              discardRatio: settings.discardRatio)
        var out = try settings.relevance(rows: try f.floats(), batch: f.shape[0], tokens: t, method: "AttentionFlow")
        out.attentionNames = names
        return out
    }

    /// Max-flow into `outputToken` at the top from every input token: (B, T).
    public static func flow(_ attentions: [Tensor], outputToken: Int = 0, headFusion: HeadFusion = .mean,
                            discardRatio: Double = 0) throws -> Tensor {
        let (b, t, layers) = try AttentionMath.augmented(attentions, fusion: headFusion, discardRatio: discardRatio, method: "AttentionFlow")
        guard outputToken >= 0, outputToken < t else {
            throw ExplainError.invalidArgument(method: "AttentionFlow", message: "outputToken \(outputToken) outside the \(t) tokens")
        }
        var out = [Float](repeating: 0, count: b * t)
        for n in 0..<b {
            var net = FlowNetwork(nodes: (layers.count + 1) * t)
            for (l, m) in layers.enumerated() {
                for i in 0..<t {
                    for j in 0..<t {
                        let c = m[n * t * t + i * t + j]
                        if c > 0 { net.addEdge(from: l * t + j, to: (l + 1) * t + i, capacity: c) }
                    }
                }
            }
            let sink = layers.count * t + outputToken
            for j in 0..<t { out[n * t + j] = Float(net.maxFlow(from: j, to: sink)) }
        }
        return try Tensor(shape: [b, t], floats: out)
    }
}

/// A directed graph with capacities and Edmonds–Karp max-flow. Edge 2k is an edge, 2k + 1 its
/// residual reverse.
struct FlowNetwork {
    private(set) var head: [[Int]]
    private var to: [Int] = []
    private var capacity: [Double] = []

    init(nodes: Int) { head = Array(repeating: [], count: nodes) }

    mutating func addEdge(from u: Int, to v: Int, capacity c: Double) {
        head[u].append(to.count); to.append(v); capacity.append(c)
        head[v].append(to.count); to.append(u); capacity.append(0)
    }

    /// The maximum flow from `source` to `sink`; the network's capacities are left unchanged.
    func maxFlow(from source: Int, to sink: Int) -> Double {
        if source == sink { return .infinity }
        var residual = capacity
        // Residuals below this are rounding noise from earlier augmentations, not capacity.
        let eps = 1e-13 * (capacity.max() ?? 1)
        var total = 0.0
        var parentEdge = [Int](repeating: -1, count: head.count)
        var queue = [Int]()
        queue.reserveCapacity(head.count)
        while true {
            for i in parentEdge.indices { parentEdge[i] = -1 }
            queue.removeAll(keepingCapacity: true)
            queue.append(source)
            var visited = [Bool](repeating: false, count: head.count)
            visited[source] = true
            var q = 0
            while q < queue.count, !visited[sink] {
                let u = queue[q]; q += 1
                for e in head[u] where residual[e] > eps && !visited[to[e]] {
                    visited[to[e]] = true
                    parentEdge[to[e]] = e
                    queue.append(to[e])
                }
            }
            guard visited[sink] else { return total }
            var bottleneck = Double.infinity
            var v = sink
            while v != source { let e = parentEdge[v]; bottleneck = min(bottleneck, residual[e]); v = to[e ^ 1] }
            v = sink
            while v != source { let e = parentEdge[v]; residual[e] -= bottleneck; residual[e ^ 1] += bottleneck; v = to[e ^ 1] }
            total += bottleneck
        }
    }
}
