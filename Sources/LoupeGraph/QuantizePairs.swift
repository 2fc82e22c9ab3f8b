extension OperatorTable {
    /// The domain of the few operators Loupe introduces itself when it compiles a graph.
    public static let loupeDomain = "ai.loupe"

    /// Loupe's own operators (domain ``loupeDomain``).
    static let loupeOperators: [String: OperatorFactory] = [
        "QuantizeDequantize": { try QuantizeDequantizeOperator($0) },
        "DynamicQuantizedMatMul": { try DynamicQuantizedMatMulOperator($0) },
    ]
}

extension Graph {
    /// The graph with every QuantizeLinear → DequantizeLinear pair that shares its scale, zero
    /// point and axis replaced by one `ai.loupe.QuantizeDequantize` node (QDQ models: onnxruntime's
    /// `quantize_static`, `torch.onnx.export` of fake-quantized networks). The pair's value is
    /// unchanged; its integer intermediate disappears, so gradients cross it with PyTorch's
    /// fake-quantize rule (``QuantizeDequantizeOperator``) instead of stopping. A QuantizeLinear
    /// whose integer output is also read elsewhere, or is a graph output, is left as it is.
    public func fusingQuantizeDequantizePairs() -> Graph {
        let readers = readerIndices()
        let outputNames = Set(outputs.map(\.name))
        func axis(_ n: Node) -> Int { if case let .int(a)? = n.attributes["axis"] { return a }; return 1 }
        var replaced: [Int: Node] = [:]
        var dropped = Set<Int>()
        for (qi, q) in nodes.enumerated() where q.opType == "QuantizeLinear" && (q.domain.isEmpty || q.domain == "ai.onnx") {
            guard let qOut = q.outputs.first, !qOut.isEmpty, !outputNames.contains(qOut),
                  q.attributes["block_size"] == nil, q.inputs.count >= 2 else { continue }
            let params = Array(q.inputs.dropFirst())
            let users = readers[qOut] ?? []
            let pairs = users.filter { u in
                let d = nodes[u]
                var dParams = Array(d.inputs.dropFirst())
                while dParams.count > params.count, dParams.last == "" { dParams.removeLast() }
                var qParams = params
                while qParams.count > dParams.count, qParams.last == "" { qParams.removeLast() }
                return d.opType == "DequantizeLinear" && (d.domain.isEmpty || d.domain == "ai.onnx") && d.inputs.first == qOut
                    && dParams == qParams && axis(d) == axis(q) && d.attributes["block_size"] == nil
            }
            guard !users.isEmpty, pairs.count == users.count else { continue }
            for u in pairs {
                let d = nodes[u]
                var attributes: [String: Attribute] = ["axis": .int(axis(q))]
                if let t = q.attributes["output_dtype"] { attributes["output_dtype"] = t }
                replaced[u] = Node(name: d.name.isEmpty ? q.name : d.name, opType: "QuantizeDequantize", domain: OperatorTable.loupeDomain,
                                   inputs: q.inputs, outputs: d.outputs, attributes: attributes)
            }
            dropped.insert(qi)
        }
        guard !dropped.isEmpty else { return self }
        var g = self
        g.nodes = nodes.enumerated().compactMap { i, n in dropped.contains(i) ? nil : (replaced[i] ?? n) }
        if g.opsets[OperatorTable.loupeDomain] == nil { g.opsets[OperatorTable.loupeDomain] = 1 }
        return g
    }
}
