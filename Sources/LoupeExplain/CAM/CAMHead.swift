import LoupeTensor
import LoupeGraph

extension CAM {
    /// The (classes, C) weight matrix W for the original CAM (Zhou et al. 2016, eq. 2:
    /// `M_k(x, y) = Σ_c W[k, c]·A_c(x, y)`), read from the graph — and a check that CAM's identity
    /// `logit_k = mean_{x,y} M_k(x, y) + b_k` holds for `layer`, which it does only when the layer
    /// reaches the class scores through global average pooling and one linear layer.
    ///
    /// The path from `layer` is followed consumer by consumer and may hold, in this order:
    /// - inference no-ops (Identity, Dropout);
    /// - the pooling: GlobalAveragePool, or ReduceMean over exactly the two spatial axes (what the
    ///   dynamo exporter writes for `AdaptiveAvgPool2d(1)`);
    /// - shape-only steps (Flatten, Reshape, Squeeze, Unsqueeze) and no-ops;
    /// - the linear layer: Gemm with a constant weight (its `alpha` folded in), or MatMul by a
    ///   constant (C, classes) weight (and an Add of its bias);
    /// - shape-only steps, no-ops, Softmax or LogSoftmax up to a graph output (the weights are
    ///   those of the logits, as in the paper).
    ///
    /// Anything else (a LayerNorm after the pooling as in ConvNeXt, a second linear layer as in
    /// MobileNetV3, an activation before the pooling, a value read by two nodes) makes the CAM
    /// of those weights something other than a decomposition of the class score, so it throws
    /// ``CAMError/headNotLinear(layer:node:op:expected:)`` naming the node. Grad-CAM equals CAM
    /// up to 1/(h·w) on the heads this accepts and needs no such structure.
    ///
    /// - Parameters:
    ///   - model: the model whose graph holds the head.
    ///   - layer: a value name whose map is (B, C, h, w).
    /// - Returns: W as (classes, C), float.
    public static func globalAveragePooledHeadWeight(model: Model, layer: String) throws -> Tensor {
        let nodes = model.graph.nodes
        let readers = model.graph.readerIndices()
        let outputs = Set(model.outputs.map(\.name))
        var value = layer
        var stage = HeadStage.beforePool
        var weight: Tensor?
        var biasAdded = false
        var steps = 0
        while true {
            steps += 1
            let next = readers[value] ?? []
            if outputs.contains(value) {
                // The scores (logits) are a graph output, whatever else reads them.
                guard stage == .afterLinear, let w = weight else {
                    throw CAMError.headNotLinear(layer: layer, node: value, op: "graph output", expected: stage.expectation)
                }
                return w
            }
            guard next.count == 1, steps <= nodes.count + 1 else {
                let what = next.isEmpty ? "nothing (the value is not used)" : "\(next.count) readers"
                throw CAMError.headNotLinear(layer: layer, node: value, op: what, expected: stage.expectation + ", each value read by one node")
            }
            let node = nodes[next[0]]
            func blocked() -> CAMError {
                .headNotLinear(layer: layer, node: node.displayName, op: node.opType, expected: stage.expectation)
            }
            // The node must read `value` as its data input (not as, say, a Reshape's shape); an Add
            // of the bias may take it on either side.
            let dataInput = node.opType == "Add" ? node.inputs.contains(value) : node.inputs.first == value
            guard dataInput, let out = node.outputs.first else { throw blocked() }
            switch node.opType {
            case "Identity", "Dropout":
                break
            case "GlobalAveragePool" where stage == .beforePool:
                stage = .pooled
            case "ReduceMean" where stage == .beforePool:
                guard try reducesSpatialAxes(node, model: model) else { throw blocked() }
                stage = .pooled
            case let op where ["Flatten", "Reshape", "Squeeze", "Unsqueeze"].contains(op) && stage != .beforePool:
                break
            case "Gemm" where stage == .pooled:
                weight = try gemmWeight(node, model: model) ?? { throw blocked() }()
                stage = .afterLinear
            case "MatMul" where stage == .pooled:
                guard node.inputs.count >= 2, let w = model.constantValue(named: node.inputs[1]), w.rank == 2 else { throw blocked() }
                weight = try w.permuted([1, 0])
                stage = .afterLinear
            case let op where (op == "Softmax" || op == "LogSoftmax") && stage == .afterLinear:
                // Probabilities as the output: CAM's weights are those of the logits before them.
                break
            case "Add" where stage == .afterLinear && !biasAdded:
                // The bias of a MatMul head: a constant added to the scores.
                guard node.inputs.count == 2, let other = node.inputs.first(where: { $0 != value }),
                      model.constantValue(named: other) != nil else { throw blocked() }
                biasAdded = true
            default:
                throw blocked()
            }
            value = out
        }
    }

    private enum HeadStage {
        case beforePool, pooled, afterLinear
        var expectation: String {
            switch self {
            case .beforePool: return "global average pooling (GlobalAveragePool, or ReduceMean over the two spatial axes) right after the layer"
            case .pooled: return "one linear layer (Gemm or MatMul with a constant weight) after the pooling"
            case .afterLinear: return "the linear layer's output to be the class scores (a graph output)"
            }
        }
    }

    private static func reducesSpatialAxes(_ node: Node, model: Model) throws -> Bool {
        var axes: [Int]?
        if case let .ints(a)? = node.attributes["axes"] { axes = a }
        if axes == nil, node.inputs.count >= 2, let t = model.constantValue(named: node.inputs[1]) {
            axes = try t.ints().map { Int($0) }
        }
        guard let a = axes else { return false }
        return Set(a.map { $0 < 0 ? $0 + 4 : $0 }) == [2, 3]
    }

    /// Gemm(pooled, W[, b]) with a constant W and no transposed A: W as (classes, C), alpha folded in.
    private static func gemmWeight(_ node: Node, model: Model) throws -> Tensor? {
        guard node.inputs.count >= 2, let w = model.constantValue(named: node.inputs[1]), w.rank == 2 else { return nil }
        if case let .int(t)? = node.attributes["transA"], t != 0 { return nil }
        var transB = false
        if case let .int(t)? = node.attributes["transB"] { transB = t != 0 }
        var alpha: Float = 1
        if case let .float(a)? = node.attributes["alpha"] { alpha = a }
        let kc = transB ? w : try w.permuted([1, 0])
        guard alpha != 1 else { return kc }
        return try Tensor(shape: kc.shape, floats: try kc.floats().map { $0 * alpha })
    }
}
