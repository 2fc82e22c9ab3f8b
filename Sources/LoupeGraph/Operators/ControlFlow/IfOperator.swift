import LoupeTensor

/// ONNX `If`: runs `then_branch` or `else_branch` on a scalar boolean condition. Each branch is
/// compiled once, at load, as a model whose inputs are the outer-scope values it reads (the node's
/// inputs after the condition, see ``Graph/withImplicitSubgraphInputs()``), constants included, so
/// that gradients reach outer parameters too.
///
/// Backward: the VJP reruns the taken branch recording plain gradients and walks it back to the
/// outer values (modified rules such as DeepLIFT's apply outside branches, not inside them).
struct IfOperator: Operator {
    let thenBranch: Branch, elseBranch: Branch
    let label: String

    struct Branch: Sendable {
        let model: Model
        /// For each node input after the condition: its name inside the branch, if the branch reads it.
        let feeds: [String?]
        let outputs: [String]
    }

    init(_ ctx: OperatorContext) throws {
        label = ctx.label
        guard ctx.hasInput(0) else { throw GraphError.arity(node: label, expected: "a condition input", got: 0) }
        func branch(_ name: String) throws -> Branch {
            guard case let .graph(g)? = ctx.node.attributes[name] else { throw ctx.bad(name, "is required (graph)") }
            let reads = Set(g.outerScopeNames())
            var sub = g
            var feeds: [String?] = []
            for outer in ctx.node.inputs.dropFirst() {
                guard reads.contains(outer) else { feeds.append(nil); continue }
                // Outer constants stay inputs too: a gradient may be asked for them (parameters).
                sub.inputs.append(ValueInfo(name: outer, elementType: 0))   // any type, any shape: the outer value as computed
                feeds.append(outer)
            }
            if sub.opsets.isEmpty { sub.opsets = [ctx.node.domain: ctx.opset] }
            let model: Model
            do { model = try Model(graph: sub) } catch let e as GraphError {
                // An operator Loupe lacks inside a branch is reported as such, by name.
                if case .unsupportedOperators = e { throw e }
                throw GraphError.nodeFailed(node: ctx.node.displayName, opType: "If", underlying: "\(name): \(e)")
            }
            return Branch(model: model, feeds: feeds, outputs: g.outputs.map(\.name))
        }
        thenBranch = try branch("then_branch")
        elseBranch = try branch("else_branch")
        guard thenBranch.outputs.count == elseBranch.outputs.count else {
            throw ctx.bad("else_branch", "as many outputs as then_branch (\(thenBranch.outputs.count)), got \(elseBranch.outputs.count)")
        }
    }

    var backwardNeeds: BackwardNeeds { .allInputs(thenBranch.feeds.count + 1) }

    private func chosen(_ inputs: [Tensor?]) throws -> (Branch, [String: Tensor]) {
        guard let c = inputs.first ?? nil, c.count == 1 else {
            throw GraphError.invalid("\(label): the condition must be a single boolean, got \(inputs.first??.shape.description ?? "nothing")")
        }
        let taken: Bool
        switch c.storage {
        case let .bool(v): taken = v[0]
        case let .int64(v): taken = v[0] != 0
        case let .float32(v): taken = v[0] != 0
        }
        let b = taken ? thenBranch : elseBranch
        var feeds: [String: Tensor] = [:]
        for (k, name) in b.feeds.enumerated() {
            guard let name else { continue }
            guard k + 1 < inputs.count, let t = inputs[k + 1] else { throw GraphError.invalid("\(label): outer value '\(name)' was not computed") }
            feeds[name] = t
        }
        return (b, feeds)
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let (b, feeds) = try chosen(inputs)
        let out = try b.model.forward(feeds).outputs
        return try b.outputs.map { name in
            guard let t = out[name] else { throw GraphError.invalid("\(label): branch output '\(name)' was not computed") }
            return t
        }
    }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        let (b, feeds) = try chosen(ctx.inputs)
        var result = [Tensor?](repeating: nil, count: ctx.inputs.count)
        // Outer values the branch reads as float inputs, and are wanted.
        var wrt: [(Int, String)] = []
        for (k, name) in b.feeds.enumerated() {
            guard let name, k + 1 < ctx.wantInput.count, ctx.wantInput[k + 1], feeds[name]?.dtype == .float32 else { continue }
            wrt.append((k + 1, name))
        }
        guard !wrt.isEmpty else { return result }
        let pass = try b.model.forward(feeds, recording: .gradient)
        var seeds: [String: Tensor] = [:]
        for (k, name) in b.outputs.enumerated() where k < ctx.gradOutputs.count {
            if let g = ctx.gradOutputs[k] { seeds[name] = g }
        }
        guard !seeds.isEmpty else { return result }
        let grads = try pass.backward(seeds: seeds, wrt: wrt.map(\.1))
        for (i, name) in wrt { result[i] = grads[name] }
        return result
    }
}
