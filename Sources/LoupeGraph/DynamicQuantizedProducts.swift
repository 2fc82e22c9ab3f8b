extension Graph {
    /// The graph with each of `quantize_dynamic`'s integer products fused into one step whose
    /// value is exactly the integer chain's and whose gradient crosses it:
    ///
    ///     (q, s, z) = DynamicQuantizeLinear(x)
    ///     k = Mul(s, Ws)                                   →   y = ai.loupe.DynamicQuantizedMatMul(x, Wq, Ws, Wz)
    ///     y = Mul(Cast(MatMulInteger(q, Wq, z, Wz)), k)
    ///
    /// with `Wq`, `Ws`, `Wz` constants (onnxruntime writes them as initializers). The fused step
    /// computes the same integer sum, cast and scale as the chain (``DynamicQuantizedMatMulOperator``),
    /// so its output is the chain's bit for bit; its VJP is the straight-through estimator, the
    /// gradient of `x · dequantize(W)` (a dynamic range holds every value of x: nothing saturates).
    /// Products in any other form are left as they are (their gradient is refused by name).
    public func fusingDynamicQuantizedProducts() -> Graph {
        var producer: [String: Int] = [:]
        for (i, node) in nodes.enumerated() { for o in node.outputs where !o.isEmpty { producer[o] = i } }
        let readers = readerIndices()
        let outputNames = Set(outputs.map(\.name))
        func isDefault(_ n: Node) -> Bool { n.domain.isEmpty || n.domain == "ai.onnx" }
        func onlyReader(_ value: String) -> Int? {
            guard !outputNames.contains(value), let r = readers[value], r.count == 1 else { return nil }
            return r[0]
        }
        var replaced: [Int: [Node]] = [:]
        var dropped = Set<Int>()
        // The scale products and DynamicQuantizeLinear nodes of fused chains: dropped once no
        // node reads them any more (one DynamicQuantizeLinear may feed several products).
        var orphanCandidates = Set<Int>()
        for (mi, m) in nodes.enumerated() where m.opType == "MatMulInteger" && isDefault(m) && m.inputs.count == 4 {
            let (q, wq, z, wz) = (m.inputs[0], m.inputs[1], m.inputs[2], m.inputs[3])
            guard let di = producer[q], nodes[di].opType == "DynamicQuantizeLinear", isDefault(nodes[di]),
                  nodes[di].outputs.count == 3, nodes[di].outputs[0] == q, nodes[di].outputs[2] == z,
                  initializers[wq] != nil, initializers[wz] != nil,
                  let ci = onlyReader(m.outputs[0]), nodes[ci].opType == "Cast", case .int(1)? = nodes[ci].attributes["to"],
                  let xi = onlyReader(nodes[ci].outputs[0]), nodes[xi].opType == "Mul", nodes[xi].inputs.count == 2,
                  let k = nodes[xi].inputs.first(where: { $0 != nodes[ci].outputs[0] }),
                  let ki = producer[k], nodes[ki].opType == "Mul", nodes[ki].inputs.count == 2 else { continue }
            let s = nodes[di].outputs[1]
            guard let ws = nodes[ki].inputs.first(where: { $0 != s }), nodes[ki].inputs.contains(s),
                  initializers[ws] != nil else { continue }
            let x = nodes[di].inputs[0]
            let new = [Node(name: nodes[xi].name.isEmpty ? m.name : nodes[xi].name, opType: "DynamicQuantizedMatMul",
                            domain: OperatorTable.loupeDomain, inputs: [x, wq, ws, wz], outputs: nodes[xi].outputs)]
            // The fused node takes the MatMulInteger's place (its operands exist there); the
            // Cast and the final Mul go.
            replaced[mi] = new
            dropped.formUnion([ci, xi])
            orphanCandidates.formUnion([ki, di])
        }
        guard !replaced.isEmpty else { return self }
        var g = self
        var kept: [(index: Int, node: Node)] = []
        for (i, n) in nodes.enumerated() {
            if let r = replaced[i] { kept += r.map { (-1, $0) } } else if !dropped.contains(i) { kept.append((i, n)) }
        }
        // A scale product goes first (it reads the DynamicQuantizeLinear), then the quantizer.
        for phase in 0..<2 {
            let read = Set(kept.flatMap(\.node.inputs)).union(outputNames)
            kept.removeAll { orphanCandidates.contains($0.index) && (nodes[$0.index].opType == "Mul") == (phase == 0)
                             && $0.node.outputs.allSatisfy { !read.contains($0) } }
        }
        g.nodes = kept.map(\.node)
        if g.opsets[OperatorTable.loupeDomain] == nil { g.opsets[OperatorTable.loupeDomain] = 1 }
        return g
    }
}
