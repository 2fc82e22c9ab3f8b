import LoupeTensor

/// A compiled, immutable, thread-safe model: operators resolved and validated, nodes in
/// topological order, constant subgraphs folded, every value given an integer slot.
///
/// One `Model` can serve concurrent calls: all per-call state lives in the call.
///
/// ```swift
/// let model = try Model(graph: try ONNXModel.load(path: "resnet18.onnx"))
/// let logits = try model.run(["input": image])["logits"]
/// ```
public final class Model: Sendable {
    /// The graph as given (before folding).
    public let graph: Graph
    /// Value names by slot.
    public let valueNames: [String]
    /// Slot of each value name.
    let slotOf: [String: Int]
    /// Constant value of a slot (initializers and folded nodes), else nil.
    let constants: [Tensor?]
    /// Nodes left to run, in topological order.
    let steps: [Step]
    /// Graph inputs the caller feeds, with their slots.
    let inputSlots: [(info: ValueInfo, slot: Int)]
    /// Graph output slots, in declaration order.
    let outputSlots: [Int]
    /// Index of the step producing each slot, or -1 (input, constant).
    let producer: [Int]
    /// Index of the last step reading each slot (-1 if none); graph outputs never die.
    let lastUse: [Int]
    /// Names of nodes removed by constant folding.
    public let foldedNodes: [String]

    struct Step: Sendable {
        let node: Node
        let op: any Operator
        let inputs: [Int]   // -1 = omitted optional input
        let outputs: [Int]  // -1 = omitted optional output
    }

    /// Compiles a graph. Throws ``GraphError/unsupportedOperators(_:)`` listing every operator
    /// Loupe lacks (all at once, not the first), or an error naming the offending node.
    ///
    /// - Parameter customOperators: extra operators by op type (any domain), consulted before
    ///   the built-in table — how a user supplies a custom op without changing Loupe.
    public init(graph: Graph, customOperators: [String: OperatorFactory] = [:]) throws {
        self.graph = graph
        var names: [String] = []
        var slotOf: [String: Int] = [:]
        func slot(_ n: String) -> Int {
            if let s = slotOf[n] { return s }
            slotOf[n] = names.count
            names.append(n)
            return names.count - 1
        }
        // Values available before any node runs.
        var available = Set<String>()
        for i in graph.inputs where graph.initializers[i.name] == nil { _ = slot(i.name); available.insert(i.name) }
        for k in graph.initializers.keys.sorted() { _ = slot(k); available.insert(k) }

        let order = try Model.topologicalOrder(graph.nodes, available: available)

        var constants: [Tensor?] = []
        func setConstant(_ s: Int, _ t: Tensor) {
            while constants.count <= s { constants.append(nil) }
            constants[s] = t
        }
        for (k, t) in graph.initializers { setConstant(slot(k), t) }

        var unsupported: [String: GraphError.UnsupportedOperator] = [:]
        var steps: [Step] = []
        var folded: [String] = []
        for idx in order {
            let node = graph.nodes[idx]
            let opset = graph.opsets[node.domain] ?? (node.domain == "ai.onnx" ? graph.opset : graph.opset)
            let inSlots = node.inputs.map { $0.isEmpty ? -1 : slot($0) }
            let outSlots = node.outputs.map { $0.isEmpty ? -1 : slot($0) }
            guard let factory = customOperators[node.opType] ?? OperatorTable.factory(opType: node.opType, domain: node.domain) else {
                let key = "\(node.domain)/\(node.opType)"
                unsupported[key, default: .init(opType: node.opType, domain: node.domain, opset: opset, nodes: [], reason: "")]
                    .nodes.append(node.name.isEmpty ? (node.outputs.first ?? "?") : node.name)
                continue
            }
            let constIn = inSlots.map { s -> Tensor? in s >= 0 && s < constants.count ? constants[s] : nil }
            let op: any Operator
            do {
                op = try factory(OperatorContext(node: node, opset: opset, constantInputs: constIn))
            } catch let e as GraphError {
                if case let .unsupportedOperators(list) = e {
                    for u in list {
                        let key = "\(u.domain)/\(u.opType)/\(u.reason)"
                        if var e = unsupported[key] { e.nodes += u.nodes; unsupported[key] = e } else { unsupported[key] = u }
                    }
                    continue
                }
                throw e
            } catch {
                throw GraphError.nodeFailed(node: node.displayName, opType: node.opType, underlying: "\(error)")
            }
            // Fold nodes whose every present input is constant (shape arithmetic, Constant).
            let foldable = inSlots.allSatisfy { $0 < 0 || ($0 < constants.count && constants[$0] != nil) }
            if foldable && !Model.neverFold.contains(node.opType) {
                do {
                    let outs = try op.forward(constIn)
                    for (s, t) in zip(outSlots, outs) where s >= 0 { setConstant(s, t) }
                    folded.append(node.name)
                    continue
                } catch {
                    throw GraphError.nodeFailed(node: node.displayName, opType: node.opType, underlying: "\(error)")
                }
            }
            steps.append(Step(node: node, op: op, inputs: inSlots, outputs: outSlots))
        }
        if !unsupported.isEmpty {
            throw GraphError.unsupportedOperators(unsupported.values.sorted { $0.opType < $1.opType })
        }
        for o in graph.outputs where slotOf[o.name] == nil {
            throw GraphError.undefinedValue(name: o.name, consumer: "graph output")
        }
        while constants.count < names.count { constants.append(nil) }

        var producer = [Int](repeating: -1, count: names.count)
        var lastUse = [Int](repeating: -1, count: names.count)
        for (i, st) in steps.enumerated() {
            for s in st.outputs where s >= 0 { producer[s] = i }
            for s in st.inputs where s >= 0 { lastUse[s] = i }
        }
        let outs = graph.outputs.compactMap { slotOf[$0.name] }
        for s in outs { lastUse[s] = Int.max }

        self.valueNames = names
        self.slotOf = slotOf
        self.constants = constants
        self.steps = steps
        self.inputSlots = graph.inputs.filter { graph.initializers[$0.name] == nil }.compactMap { i in slotOf[i.name].map { (i, $0) } }
        self.outputSlots = outs
        self.producer = producer
        self.lastUse = lastUse
        self.foldedNodes = folded
    }

    /// Operators that must run every call even with constant inputs (none yet: random ops are
    /// unsupported). Kept as a seam for RandomNormal-like ops.
    static let neverFold: Set<String> = []

    /// Kahn's algorithm, keeping file order among ready nodes so results are reproducible.
    static func topologicalOrder(_ nodes: [Node], available: Set<String>) throws -> [Int] {
        var producerOf: [String: Int] = [:]
        for (i, n) in nodes.enumerated() {
            for o in n.outputs where !o.isEmpty {
                if producerOf[o] != nil || available.contains(o) {
                    throw GraphError.invalid("value '\(o)' is produced twice (node \(n.label))")
                }
                producerOf[o] = i
            }
        }
        var indegree = [Int](repeating: 0, count: nodes.count)
        var consumers = [[Int]](repeating: [], count: nodes.count)
        for (i, n) in nodes.enumerated() {
            for v in Set(n.inputs) where !v.isEmpty {
                if let p = producerOf[v] {
                    indegree[i] += 1
                    consumers[p].append(i)
                } else if !available.contains(v) {
                    throw GraphError.undefinedValue(name: v, consumer: "node \(n.label)")
                }
            }
        }
        var ready = (0..<nodes.count).filter { indegree[$0] == 0 }.reversed().map { $0 }
        var order: [Int] = []
        order.reserveCapacity(nodes.count)
        while let i = ready.popLast() {
            order.append(i)
            for c in consumers[i].reversed() {
                indegree[c] -= 1
                if indegree[c] == 0 { ready.append(c) }
            }
        }
        if order.count != nodes.count {
            let stuck = (0..<nodes.count).filter { indegree[$0] > 0 }.flatMap { nodes[$0].outputs }
            throw GraphError.cycle(values: stuck)
        }
        return order
    }

    // MARK: - Introspection

    /// Inputs the caller must feed.
    public var inputs: [ValueInfo] { inputSlots.map(\.info) }
    /// Declared outputs.
    public var outputs: [ValueInfo] { graph.outputs }
    /// Names of values a hook can read or replace: every node output that is computed at run
    /// time, in execution order.
    public var hookableValues: [String] {
        steps.flatMap { $0.outputs.filter { $0 >= 0 }.map { valueNames[$0] } }
    }
    /// Number of float parameters in initializers.
    public var parameterCount: Int {
        graph.initializers.values.reduce(0) { $0 + ($1.dtype == .float32 ? $1.count : 0) }
    }
    /// Node count per op type of the nodes that run (after folding).
    public var opHistogram: [String: Int] {
        steps.reduce(into: [:]) { $0[$1.node.opType, default: 0] += 1 }
    }
    /// Nodes that run, in order.
    public var nodes: [Node] { steps.map(\.node) }

    /// Slot of a value name, or an error with close-name suggestions.
    func slot(named name: String) throws -> Int {
        if let s = slotOf[name] { return s }
        throw GraphError.unknownValue(name: name, suggestions: Suggest.closest(to: name, in: valueNames))
    }
}

/// Close-name suggestions for error messages (Levenshtein distance, then substring matches).
public enum Suggest {
    public static func closest(to s: String, in names: [String], limit: Int = 3) -> [String] {
        let a = Array(s.lowercased())
        func dist(_ t: String) -> Int {
            let b = Array(t.lowercased())
            if a.isEmpty { return b.count }
            if b.isEmpty { return a.count }
            var prev = Array(0...b.count)
            var cur = [Int](repeating: 0, count: b.count + 1)
            for i in 1...a.count {
                cur[0] = i
                for j in 1...b.count {
                    cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
                }
                swap(&prev, &cur)
            }
            return prev[b.count]
        }
        let scored = names.map { (n: $0, d: $0.lowercased().contains(s.lowercased()) ? 0 : dist($0)) }
        let cutoff = max(2, s.count / 2)
        return scored.filter { $0.d <= cutoff }.sorted { ($0.d, $0.n) < ($1.d, $1.n) }.prefix(limit).map(\.n)
    }
}
