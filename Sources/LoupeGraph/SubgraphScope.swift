/// Outer-scope reads of control-flow subgraphs (ONNX `If` branches): a subgraph may name any
/// value of an enclosing graph without listing it as an input. Compilation appends those names
/// to the node's inputs, so topological order, liveness and the operator's feeds see them.
extension Graph {
    /// Names this graph reads but does not define (inputs, initializers, node outputs), its
    /// nested subgraphs' outer reads included, in first-use order.
    func outerScopeNames() -> [String] {
        var defined = Set(inputs.map(\.name))
        defined.formUnion(initializers.keys)
        for n in nodes { defined.formUnion(n.outputs.filter { !$0.isEmpty }) }
        var seen = Set<String>(), names: [String] = []
        func use(_ name: String) {
            guard !name.isEmpty, !defined.contains(name), seen.insert(name).inserted else { return }
            names.append(name)
        }
        for n in nodes {
            n.inputs.forEach(use)
            for g in n.subgraphs { g.outerScopeNames().forEach(use) }
        }
        outputs.map(\.name).forEach(use)
        return names
    }

    /// This graph with each node that holds subgraphs reading, after its own inputs, the
    /// outer-scope names its subgraphs use.
    func withImplicitSubgraphInputs() -> Graph {
        guard nodes.contains(where: { !$0.subgraphs.isEmpty }) else { return self }
        var g = self
        g.nodes = nodes.map { n in
            guard !n.subgraphs.isEmpty else { return n }
            var m = n
            var seen = Set(n.inputs)
            for s in n.subgraphs { for name in s.outerScopeNames() where seen.insert(name).inserted { m.inputs.append(name) } }
            return m
        }
        return g
    }
}

extension Node {
    /// Graph-valued attributes (If branches, Loop and Scan bodies).
    var subgraphs: [Graph] {
        attributes.keys.sorted().flatMap { k -> [Graph] in
            switch attributes[k] {
            case let .graph(g)?: return [g]
            case let .graphs(gs)?: return gs
            default: return []
            }
        }
    }
}
