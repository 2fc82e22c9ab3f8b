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
    /// The graph as given (before folding), with QuantizeLinear → DequantizeLinear pairs fused
    /// into `ai.loupe.QuantizeDequantize` nodes (``Graph/fusingQuantizeDequantizePairs()``) and
    /// `quantize_dynamic`'s integer products into `ai.loupe.DynamicQuantizedMatMul` steps
    /// (``Graph/fusingDynamicQuantizedProducts()``).
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
    /// Per step, the later step it can absorb when nothing observes the value between them (see
    /// ``StepFusion``), else nil.
    let fusions: [StepFusion?]
    /// Activation chains (exported SiLU, exact GELU) by their last step: backward takes each
    /// chain's VJP in one step when nothing observes its insides (``ActivationChain``).
    let activationChains: [Int: ActivationChain]
    /// For every step inside an activation chain, the chain's last step (its key above).
    let activationChainEnd: [Int: Int]
    /// When inputs have symbolic dimensions: the Shape nodes fixed by the input shapes, and the
    /// models specialised to the input shapes seen (``ShapeSpecialisation``); else nil.
    let shapeSpecialisation: ShapeSpecialisation?
    /// Index of the first Transpose step (`steps.count` if none): no value made before it can be
    /// a channels-last feature map (``FeatureMapTrace``).
    let firstTranspose: Int
    /// Per input shapes, whether ``run(_:hooks:)`` splits the batch over the cores
    /// (``BatchSplitVerdicts``).
    let batchSplitVerdicts = BatchSplitVerdicts()

    /// A class, not a struct: the executor reads a step per node per call, and copying a struct
    /// of a node, an operator and two arrays retained each of them (Step copies were half of
    /// the ARC traffic of a batch-1 mobilenet_v3_small forward).
    final class Step: Sendable {
        let node: Node
        let op: any Operator
        let inputs: [Int]   // -1 = omitted optional input
        let outputs: [Int]  // -1 = omitted optional output
        /// How the node passes on feature-map axis roles (``FeatureMapTrace``), classified once.
        let axisRoles: FeatureMapTrace.StepKind

        init(node: Node, op: any Operator, inputs: [Int], outputs: [Int]) {
            self.node = node
            self.op = op
            self.inputs = inputs
            self.outputs = outputs
            self.axisRoles = FeatureMapTrace.StepKind(node)
        }
    }

    /// Compiles a graph. Throws ``GraphError/unsupportedOperators(_:)`` listing every operator
    /// Loupe lacks (all at once, not the first), or an error naming the offending node.
    ///
    /// Constant subgraphs are folded. When every graph input has a fully static declared shape,
    /// the shape-computing chains that exporters emit (Shape → Gather → Unsqueeze → Concat →
    /// Reshape) are folded too: one dry run on zeros learns the value of every Shape/Size node,
    /// which then become constants and their consumers fold in turn. With symbolic input
    /// dimensions (a dynamic batch) the same chains are folded per input shape, from the values
    /// the first call with those shapes computes (``ShapeSpecialisation``).
    ///
    /// - Parameter customOperators: extra operators by op type (any domain), consulted before
    ///   the built-in table — how a user supplies a custom op without changing Loupe.
    public convenience init(graph file: Graph, customOperators: [String: OperatorFactory] = [:]) throws {
        Kernels.tuneAllocator()
        // QuantizeLinear → DequantizeLinear pairs run as one differentiable fake-quantize step;
        // `graph` is the graph as compiled, with those pairs fused.
        let graph = file.fusingQuantizeDequantizePairs().fusingDynamicQuantizedProducts()
        var parts = try Model.build(graph, customOperators, pinned: [:])
        let staticInputs = parts.inputSlots.allSatisfy { $0.info.staticShape != nil }
        let foldable = ShapeStaticity.foldableShapeOutputs(parts)
        if staticInputs, !foldable.isEmpty, let pinned = Model.dryRunShapes(parts, only: foldable) {
            parts = try Model.build(graph, customOperators, pinned: pinned)
        }
        let perShape = staticInputs ? [] : Set(foldable.compactMap { parts.slotOf[$0] })
        self.init(graph: graph, parts: parts, foldableShapes: perShape)
    }

    /// A model of compiled `parts`; `foldableShapes`, when not empty, are the Shape/Size output
    /// slots to fold per input shape.
    init(graph: Graph, parts: Parts, foldableShapes: Set<Int>) {
        self.graph = graph
        self.valueNames = parts.names
        self.slotOf = parts.slotOf
        self.constants = parts.constants
        self.steps = parts.steps
        self.inputSlots = parts.inputSlots
        self.outputSlots = parts.outputSlots
        self.producer = parts.producer
        self.lastUse = parts.lastUse
        self.foldedNodes = parts.folded
        self.fusions = Model.stepFusions(parts)
        self.activationChains = ActivationChain.chains(parts.steps, fusions)
        var end: [Int: Int] = [:]
        for (last, chain) in activationChains { for q in chain.steps { end[q] = last } }
        self.activationChainEnd = end
        self.shapeSpecialisation = foldableShapes.isEmpty ? nil : ShapeSpecialisation(slots: foldableShapes)
        self.firstTranspose = parts.steps.firstIndex { $0.axisRoles == .transpose } ?? parts.steps.count
    }

    /// Runs of steps whose intermediate values are read only inside the run and are not graph
    /// outputs: Conv → Relu / HardSwish / (Sigmoid(x), Mul(x, ·)) — the Conv applies the
    /// activation itself — and Add → Relu as one pass; else (Sigmoid(x), Mul(x, ·)) as one SiLU
    /// pass, and the exported exact GELU chain as one GELU pass; a squeeze-excitation Mul into
    /// the Conv reading it; a Linear layer's bias Add into its MatMul.
    static func stepFusions(_ p: Parts) -> [StepFusion?] {
        // How many steps read each slot, and the last one that does.
        var readers = [Int](repeating: 0, count: p.names.count), reader = [Int](repeating: -1, count: p.names.count)
        for (c, st) in p.steps.enumerated() { for s in Set(st.inputs) where s >= 0 { readers[s] += 1; reader[s] = c } }
        let outputs = Set(p.outputSlots)
        var fusion = [StepFusion?](repeating: nil, count: p.steps.count)
        /// The producer of slot `s` when it can take an activation and `s`, its only output, is read
        /// `count` times (by the activation's steps) and is not a graph output.
        func fusableProducer(of s: Int, readBy count: Int, before j: Int, _ activation: ConvActivation) -> Int? {
            guard s >= 0, readers[s] == count, !outputs.contains(s) else { return nil }
            let i = p.producer[s]
            guard i >= 0, i < j, let op = p.steps[i].op as? ActivationFusable, op.fuses(activation),
                  p.steps[i].outputs == [s], fusion[i] == nil else { return nil }
            return i
        }
        for (j, st) in p.steps.enumerated() {
            if let u = (st.op as? UnaryOperator)?.op, u == .relu || u == .hardSwish {
                let activation: ConvActivation = u == .relu ? .relu : .hardSwish
                guard let s = st.inputs.first, let i = fusableProducer(of: s, readBy: 1, before: j, activation) else { continue }
                fusion[i] = StepFusion(partner: j, kind: .activationIntoProducer(activation))
            } else if (st.op as? UnaryOperator)?.op == .erf, let g = geluChain(erf: j, p, readers, outputs) {
                fusion[g.first] = StepFusion(absorbed: g.rest, kind: .gelu)
            } else if (st.op as? BinaryOperator)?.op == .mul, st.inputs.count == 2 {
                // Mul(x, Sigmoid(x)) in either order.
                for (k, s) in st.inputs.enumerated() where s >= 0 && readers[s] == 1 && !outputs.contains(s) {
                    let i = p.producer[s]
                    guard i >= 0, i < j, (p.steps[i].op as? UnaryOperator)?.op == .sigmoid, p.steps[i].outputs == [s],
                          p.steps[i].inputs.count == 1, p.steps[i].inputs[0] == st.inputs[1 - k], fusion[i] == nil else { continue }
                    // x read only by the Sigmoid and the Mul, made by a Conv: SiLU in the Conv's own pass.
                    if let c = fusableProducer(of: st.inputs[1 - k], readBy: 2, before: i, .silu) {
                        fusion[c] = StepFusion(absorbed: [i, j], kind: .activationIntoProducer(.silu))
                    } else {
                        fusion[i] = StepFusion(partner: j, kind: .silu)
                    }
                    break
                }
            }
        }
        // Mul → Conv (squeeze-excitation → projection), after the activation fusions so that a
        // Mul they absorb is left to them.
        var absorbed = Set<Int>()
        for f in fusion { if let f { absorbed.formUnion(f.absorbed) } }
        for (j, st) in p.steps.enumerated() where fusion[j] == nil && !absorbed.contains(j) {
            guard (st.op as? BinaryOperator)?.op == .mul, st.inputs.count == 2, st.outputs.count == 1 else { continue }
            let s = st.outputs[0]
            guard s >= 0, readers[s] == 1, !outputs.contains(s) else { continue }
            let c = reader[s]
            guard c > j, fusion[c] == nil, !absorbed.contains(c), p.steps[c].op is ConvOperator,
                  p.steps[c].inputs.first == s, p.steps[c].outputs.count == 1,
                  p.steps[c].inputs.dropFirst().allSatisfy({ $0 < 0 || ($0 != s && p.constants[$0] != nil) }) else { continue }
            fusion[j] = StepFusion(partner: c, kind: .scaleIntoConsumer)
            absorbed.insert(c)
        }
        // MatMul with a constant (K, N) weight → Add of a constant N-vector, in either operand
        // order: a Linear layer as `torch.onnx.export` writes it, the bias added inside the GEMM.
        for (j, st) in p.steps.enumerated() where fusion[j] == nil && !absorbed.contains(j) {
            guard (st.op as? BinaryOperator)?.op == .add, st.inputs.count == 2, st.outputs.count == 1 else { continue }
            for (k, s) in st.inputs.enumerated() where s >= 0 && readers[s] == 1 && !outputs.contains(s) {
                let i = p.producer[s], b = st.inputs[1 - k]
                guard i >= 0, i < j, fusion[i] == nil, !absorbed.contains(i), p.steps[i].op is MatMulOperator,
                      p.steps[i].outputs == [s], p.steps[i].inputs.count == 2, b >= 0, b != s,
                      let w = p.constants[p.steps[i].inputs[1]], w.rank == 2,
                      let bias = p.constants[b], bias.rank == 1, bias.dtype == .float32, bias.count == w.shape[1] else { continue }
                fusion[i] = StepFusion(partner: j, kind: .biasIntoProducer)
                absorbed.insert(j)
                break
            }
        }
        return fusion
    }

    /// The exported exact-GELU chain around Erf step `e`: Div(x, √2) → Erf → Add(·, 1) →
    /// Mul(x, ·) → Mul(·, ½), operands of Add/Mul in either order, every intermediate read once
    /// and not a graph output. Returns the Div step and the four later steps.
    static func geluChain(erf e: Int, _ p: Parts, _ readers: [Int], _ outputs: Set<Int>) -> (first: Int, rest: [Int])? {
        // Rank-0 constants only (what the exporter writes): a [1, 1, 1] one would broadcast x up
        // in rank, which the fused pass would not.
        func scalar(_ s: Int, _ v: Float, tolerance: Float = 1e-6) -> Bool {
            guard s >= 0, s < p.constants.count, let t = p.constants[s], t.rank == 0, let f = try? t.floats().first else { return false }
            return abs(f - v) <= tolerance * max(1, abs(v))
        }
        func single(_ s: Int) -> Bool { s >= 0 && readers[s] == 1 && !outputs.contains(s) }
        /// The only step reading slot `s`.
        func reader(_ s: Int) -> Int? { p.steps.indices.first { p.steps[$0].inputs.contains(s) } }
        func binary(_ i: Int, _ op: BinaryOp) -> [Int]? {
            guard (p.steps[i].op as? BinaryOperator)?.op == op, p.steps[i].inputs.count == 2, p.steps[i].outputs.count == 1 else { return nil }
            return p.steps[i].inputs
        }
        let erf = p.steps[e]
        guard erf.inputs.count == 1, erf.outputs.count == 1, single(erf.inputs[0]), single(erf.outputs[0]) else { return nil }
        let d = p.producer[erf.inputs[0]]
        guard d >= 0, let dIn = binary(d, .div), scalar(dIn[1], 1.41421356) else { return nil }
        let x = dIn[0]
        guard let a = reader(erf.outputs[0]), let aIn = binary(a, .add),
              (aIn[0] == erf.outputs[0] && scalar(aIn[1], 1)) || (aIn[1] == erf.outputs[0] && scalar(aIn[0], 1)) else { return nil }
        let aOut = p.steps[a].outputs[0]
        guard single(aOut), let m1 = reader(aOut), let m1In = binary(m1, .mul), Set(m1In) == Set([x, aOut]), x != aOut else { return nil }
        let m1Out = p.steps[m1].outputs[0]
        guard single(m1Out), let m2 = reader(m1Out), let m2In = binary(m2, .mul),
              (m2In[0] == m1Out && scalar(m2In[1], 0.5)) || (m2In[1] == m1Out && scalar(m2In[0], 0.5)) else { return nil }
        guard single(p.steps[d].outputs[0]) else { return nil }
        return (d, [e, a, m1, m2])
    }

    /// Operators whose output depends only on their input's shape.
    static let shapeOps: Set<String> = ["Shape", "Size"]

    struct Parts {
        var names: [String] = []
        var slotOf: [String: Int] = [:]
        var constants: [Tensor?] = []
        var steps: [Step] = []
        var inputSlots: [(info: ValueInfo, slot: Int)] = []
        var outputSlots: [Int] = []
        var producer: [Int] = []
        var lastUse: [Int] = []
        var folded: [String] = []
    }

    /// Runs the compiled steps once on zero inputs of the declared static shapes and returns the
    /// outputs of Shape/Size nodes by value name; nil if the dry run fails (the real run will
    /// then report the problem with the user's data).
    static func dryRunShapes(_ p: Parts, only foldable: Set<String>) -> [String: Tensor]? {
        var values = p.constants
        for (info, s) in p.inputSlots {
            guard let shape = info.staticShape else { return nil }
            let n = shape.reduce(1, *)
            switch InputCheck.dtype(forONNX: info.elementType) ?? .float32 {
            case .float32: values[s] = Tensor(zeros: shape)
            case .int64: values[s] = try? Tensor(shape: shape, ints: [Int64](repeating: 0, count: n))
            case .bool: values[s] = try? Tensor(shape: shape, bools: [Bool](repeating: false, count: n))
            }
        }
        var pinned: [String: Tensor] = [:]
        for (i, st) in p.steps.enumerated() {
            guard let outs = try? st.op.forward(st.inputs.map { $0 >= 0 ? values[$0] : nil }) else { return nil }
            for (k, s) in st.outputs.enumerated() where s >= 0 && k < outs.count {
                values[s] = outs[k]
                if foldable.contains(p.names[s]) { pinned[p.names[s]] = outs[k] }
            }
            for s in st.inputs where s >= 0 && p.lastUse[s] == i && p.constants[s] == nil { values[s] = nil }
        }
        return pinned
    }

    static func build(_ given: Graph, _ customOperators: [String: OperatorFactory], pinned: [String: Tensor]) throws -> Parts {
        let graph = given.withImplicitSubgraphInputs()
        var p = Parts()
        func slot(_ n: String) -> Int {
            if let s = p.slotOf[n] { return s }
            p.slotOf[n] = p.names.count
            p.names.append(n)
            return p.names.count - 1
        }
        // Values available before any node runs.
        var available = Set<String>()
        for i in graph.inputs where graph.initializers[i.name] == nil { _ = slot(i.name); available.insert(i.name) }
        for k in graph.initializers.keys.sorted() { _ = slot(k); available.insert(k) }

        let order = try Model.topologicalOrder(graph.nodes, available: available)

        func setConstant(_ s: Int, _ t: Tensor) {
            while p.constants.count <= s { p.constants.append(nil) }
            p.constants[s] = t
        }
        for (k, t) in graph.initializers { setConstant(slot(k), t) }

        var unsupported: [String: GraphError.UnsupportedOperator] = [:]
        // Element types the file declares (graph inputs, value_info, outputs), for operators whose
        // semantics depend on a narrow integer type Loupe stores as int64 (QuantizeLinear).
        var declaredTypes: [String: Int] = [:]
        for v in graph.inputs + graph.valueInfo + graph.outputs where v.elementType != 0 { declaredTypes[v.name] = v.elementType }
        for idx in order {
            let node = graph.nodes[idx]
            let opset = graph.opsets[node.domain] ?? graph.opset
            let inSlots = node.inputs.map { $0.isEmpty ? -1 : slot($0) }
            let outSlots = node.outputs.map { $0.isEmpty ? -1 : slot($0) }
            guard let factory = customOperators[node.opType] ?? OperatorTable.factory(opType: node.opType, domain: node.domain) else {
                let key = "\(node.domain)/\(node.opType)"
                unsupported[key, default: .init(opType: node.opType, domain: node.domain, opset: opset, nodes: [], reason: "")]
                    .nodes.append(node.displayName)
                continue
            }
            let constIn = inSlots.map { s -> Tensor? in s >= 0 && s < p.constants.count ? p.constants[s] : nil }
            let op: any Operator
            do {
                op = try factory(OperatorContext(node: node, opset: opset, constantInputs: constIn,
                                                 inputElementTypes: node.inputs.map { declaredTypes[$0] ?? graph.constantElementTypes[$0] }))
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
            // A Shape/Size node whose value the dry run learned becomes a constant.
            if node.outputs.count == 1, let v = pinned[node.outputs[0]] {
                setConstant(outSlots[0], v)
                p.folded.append(node.displayName)
                continue
            }
            // Fold nodes whose every present input is constant (shape arithmetic, Constant).
            if try foldIfConstant(node: node, op: op, inSlots: inSlots, outSlots: outSlots, into: &p) { continue }
            p.steps.append(Step(node: node, op: op, inputs: inSlots, outputs: outSlots))
        }
        if !unsupported.isEmpty {
            throw GraphError.unsupportedOperators(unsupported.values.sorted { $0.opType < $1.opType })
        }
        for o in graph.outputs where p.slotOf[o.name] == nil {
            throw GraphError.undefinedValue(name: o.name, consumer: "graph output")
        }
        while p.constants.count < p.names.count { p.constants.append(nil) }
        p.outputSlots = graph.outputs.compactMap { p.slotOf[$0.name] }
        linkSlots(&p)
        p.inputSlots = graph.inputs.filter { graph.initializers[$0.name] == nil }.compactMap { i in p.slotOf[i.name].map { (i, $0) } }
        return p
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

    /// The constant value of `name` (an initializer, or a node's output folded at load), or nil
    /// for a value computed per call or a name not in the model.
    public func constantValue(named name: String) -> Tensor? {
        guard let s = slotOf[name], s < constants.count else { return nil }
        return constants[s]
    }

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

/// Two steps run as one: the first step's output (read only by the partner) is never stored.
struct StepFusion: Sendable, Equatable {
    enum Kind: Sendable, Equatable {
        /// An ``ActivationFusable`` producer (Conv) applies the activation of the absorbed steps
        /// (Relu; HardSwish; Sigmoid + Mul for SiLU) in its own pass.
        case activationIntoProducer(ConvActivation)
        /// Sigmoid(x) whose partner is Mul(x, Sigmoid(x)): x·σ(x) computed in one pass.
        case silu
        /// Div(x, √2) → Erf → Add(·, 1) → Mul(x, ·) → Mul(·, ½), the exact GELU that
        /// `torch.onnx.export` writes out for `nn.GELU()`: one vectorised GELU pass.
        case gelu
        /// Mul(x, s) whose only reader is a Conv with constant weights: the Conv of the product,
        /// with a squeeze-excitation scale s (N, C, 1, 1) folded into its GEMM
        /// (`ConvOperator.forwardScalingInput`). Runs at the Mul's place.
        case scaleIntoConsumer
        /// MatMul(x, W) with a constant (K, N) weight whose only reader is Add(·, b) with a
        /// constant N-vector b (a Linear layer): the bias added to each tile inside the GEMM
        /// (`MatMulOperator.forwardAddingBias`) instead of by a pass over the whole product.
        case biasIntoProducer
    }
    /// Step indices of the absorbed steps, in order; the last one's output is the result.
    let absorbed: [Int]
    let kind: Kind
    /// Step index whose output receives the result.
    var partner: Int { absorbed[absorbed.count - 1] }

    /// Slots of the values between the first step `first` and the result, never materialised.
    func intermediates(first: Int, in steps: [Model.Step]) -> [Int] {
        [steps[first].outputs[0]] + absorbed.dropLast().map { steps[$0].outputs[0] }
    }

    init(partner: Int, kind: Kind) {
        absorbed = [partner]
        self.kind = kind
    }

    init(absorbed: [Int], kind: Kind) {
        self.absorbed = absorbed
        self.kind = kind
    }
}
