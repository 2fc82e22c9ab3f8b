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
/// Max-flow in double precision, once per sample and input token, on V = (L + 1)·T nodes and
/// E = L·T² edges: by Dinic's algorithm (default; O(V²·E) per max-flow) or Edmonds–Karp
/// (O(V·E²); the textbook reference, what the paper's networkx code ran). The whole relevance is
/// B·T max-flows. Every augmenting path has at least L upward edges and the bounds are far from
/// reached, but this is meant for small ViTs: measured in a debug build, one sample with T = 65
/// tokens and L = 4 layers takes 0.36 s with Dinic and 20 s with Edmonds–Karp; ViT-B/16
/// (T = 197, L = 12) 30 s with Dinic (docs/attention.md).
public struct AttentionFlow: Sendable {
    /// The max-flow algorithm; both give the same values (to rounding).
    public enum Algorithm: String, Sendable { case dinic, edmondsKarp }

    public var settings: AttentionSettings
    public var algorithm: Algorithm
    public init(_ settings: AttentionSettings = AttentionSettings(), algorithm: Algorithm = .dinic) {
        self.settings = settings
        self.algorithm = algorithm
    }

    /// One forward pass capturing the attention maps, then ``flow(_:outputToken:headFusion:discardRatio:algorithm:)``.
    public func explain(_ model: Model, input: Tensor) throws -> AttentionRelevance {
        let (names, maps) = try settings.capture(model, input: input, method: "AttentionFlow")
        guard let t = maps.first?.shape[2] else {
            throw ExplainError.unsupported(method: "AttentionFlow", reason: "no attention maps")
        }
        try settings.checkTokens(t, method: "AttentionFlow")
        let f = try Self.flow(maps, outputToken: settings.outputToken, headFusion: settings.headFusion,
                              discardRatio: settings.discardRatio, algorithm: algorithm)
        var out = try settings.relevance(rows: try f.floats(), batch: f.shape[0], tokens: t, method: "AttentionFlow")
        out.attentionNames = names
        return out
    }

    /// Max-flow into `outputToken` at the top from every input token: (B, T).
    public static func flow(_ attentions: [Tensor], outputToken: Int = 0, headFusion: HeadFusion = .mean,
                            discardRatio: Double = 0, algorithm: Algorithm = .dinic) throws -> Tensor {
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
            for j in 0..<t {
                let f = algorithm == .dinic ? net.maxFlow(from: j, to: sink) : net.maxFlowEdmondsKarp(from: j, to: sink)
                out[n * t + j] = Float(f)
            }
        }
        return try Tensor(shape: [b, t], floats: out)
    }
}

/// A directed graph with capacities and two max-flow algorithms. Edge 2k is an edge, 2k + 1 its
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

    /// Residuals below this are rounding noise left by earlier augmentations, not capacity.
    private var epsilon: Double { 1e-13 * (capacity.max() ?? 1) }

    /// The maximum flow from `source` to `sink` by Edmonds–Karp (one shortest augmenting path per
    /// breadth-first search, O(V·E²)). The network's capacities are left unchanged.
    func maxFlowEdmondsKarp(from source: Int, to sink: Int) -> Double {
        if source == sink { return .infinity }
        var residual = capacity
        let eps = epsilon
        var total = 0.0
        var parentEdge = [Int](repeating: -1, count: head.count)
        var visited = [Bool](repeating: false, count: head.count)
        var queue = [Int]()
        queue.reserveCapacity(head.count)
        while true {
            for i in visited.indices { visited[i] = false }
            queue.removeAll(keepingCapacity: true)
            queue.append(source)
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

    /// The maximum flow by Dinic's algorithm: a breadth-first search labels nodes by residual
    /// distance, then depth-first searches saturate every shortest path at once (a blocking
    /// flow). O(V²·E) worst case, and on the attention graph — where the first phase's shortest
    /// paths are the L-edge upward routes — far fewer searches than Edmonds–Karp's one per path.
    /// Same value as ``maxFlowEdmondsKarp(from:to:)`` (tested).
    func maxFlow(from source: Int, to sink: Int) -> Double {
        if source == sink { return .infinity }
        var residual = capacity
        let eps = epsilon
        let n = head.count
        var level = [Int](repeating: -1, count: n)
        var next = [Int](repeating: 0, count: n)
        var queue = [Int]()
        queue.reserveCapacity(n)
        var total = 0.0

        var path: [Int] = []   // edges from the source to the current node (no recursion: paths can be long)

        while true {
            for i in 0..<n { level[i] = -1; next[i] = 0 }
            level[source] = 0
            queue.removeAll(keepingCapacity: true)
            queue.append(source)
            var q = 0
            while q < queue.count {
                let u = queue[q]; q += 1
                for e in head[u] where residual[e] > eps && level[to[e]] < 0 {
                    level[to[e]] = level[u] + 1
                    queue.append(to[e])
                }
            }
            if level[sink] < 0 { return total }
            // Blocking flow: advance along level-increasing residual edges; at the sink push the
            // bottleneck and retreat to the first saturated edge; at a dead end retreat one edge.
            path.removeAll(keepingCapacity: true)
            var u = source
            while true {
                if u == sink {
                    var f = Double.infinity
                    for e in path { f = min(f, residual[e]) }
                    for e in path { residual[e] -= f; residual[e ^ 1] += f }
                    total += f
                    var k = 0
                    while k < path.count - 1, residual[path[k]] > eps { k += 1 }
                    u = to[path[k] ^ 1]
                    path.removeSubrange(k...)
                    continue
                }
                var advanced = false
                while next[u] < head[u].count {
                    let e = head[u][next[u]]
                    if residual[e] > eps, level[to[e]] == level[u] + 1 {
                        path.append(e)
                        u = to[e]
                        advanced = true
                        break
                    }
                    next[u] += 1
                }
                if !advanced {
                    guard let e = path.popLast() else { break }
                    u = to[e ^ 1]
                    next[u] += 1
                }
            }
        }
    }
}
