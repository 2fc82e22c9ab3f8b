import LoupeTensor

/// The record of one forward call: outputs, captured hook values, and — when recorded for
/// backward — exactly the tensors the chosen backward rules read.
public struct ForwardPass: Sendable {
    /// The model that ran: the one called, or its specialisation to these input shapes when
    /// inputs have symbolic dimensions (``ShapeSpecialisation``), which shares its operators,
    /// value names and hooks.
    public let model: Model
    /// Declared outputs by name.
    public let outputs: [String: Tensor]
    /// Values requested with ``Hooks/capture(_:)``.
    public let captured: [String: Tensor]
    let values: [Tensor?]
    let shapes: [[Int]?]
    /// Float values carry gradients; integer and boolean values (shapes, indices, masks) do not.
    let isFloat: [Bool]
    let preHook: [Int: Tensor]
    let cut: Set<Int>
    /// Slots a hook replaced or edited in this pass.
    let edited: Set<Int>
    let rules: [any BackwardRule]?

    /// Shape of any value computed in this pass.
    public func shape(of name: String) throws -> [Int] {
        let s = try model.slot(named: name)
        guard let sh = shapes[s] else { throw GraphError.invalid("value '\(name)' was not computed in this pass") }
        return sh
    }

    /// One reverse walk over the recorded nodes.
    ///
    /// - Parameters:
    ///   - seeds: cotangent for each named value (usually an output): the walk computes
    ///     `Σ_v ⟨seeds[v], ∂v/∂w⟩` for every `w` in `wrt`, i.e. the gradient of the scalar
    ///     `Σ_v ⟨seeds[v], v⟩`. Shapes must equal the values' shapes.
    ///   - wrt: values to return cotangents for: graph inputs, intermediate values (layer
    ///     gradients), or initializers (parameter gradients).
    /// - Returns: a cotangent per `wrt` name, same shape as the value; zeros when the value does
    ///   not influence the seeds.
    /// - Throws: ``GraphError/notDifferentiable`` naming the node when the only paths from a
    ///   `wrt` value to the seeds run through a node without a gradient.
    ///
    /// Nodes whose inputs do not depend on any `wrt` value are not visited, so a gradient to a
    /// late layer costs only the backward of the layers after it.
    public func backward(seeds: [String: Tensor], wrt: [String]) throws -> [String: Tensor] {
        guard let rules else {
            throw GraphError.invalid("this forward pass was not recorded for backward; call forward(_:hooks:recording:) with a RuleMap")
        }
        let m = model
        let n = m.valueNames.count
        var grads = [Tensor?](repeating: nil, count: n)
        var reaches = [Bool](repeating: false, count: n)
        for (name, g) in seeds {
            let s = try m.slot(named: name)
            guard let shape = shapes[s] else { throw GraphError.invalid("seed '\(name)' was not computed in this pass") }
            guard g.shape == shape, g.dtype == .float32 else {
                throw GraphError.inputMismatch(name: name, expected: "float32 seed of shape \(shape)", got: "\(g.dtype) of shape \(g.shape)")
            }
            grads[s] = try Accumulate.add(grads[s], g)
            reaches[s] = true
        }
        let wrtSlots = try wrt.map { try m.slot(named: $0) }
        var depends = [Bool](repeating: false, count: n)
        for s in wrtSlots { depends[s] = true }
        for st in m.steps {
            let d = st.inputs.contains { $0 >= 0 && depends[$0] }
            if d { for s in st.outputs where s >= 0 && isFloat[s] && !cut.contains(s) { depends[s] = true } }
        }
        for st in m.steps.reversed() {
            if st.outputs.contains(where: { $0 >= 0 && reaches[$0] && !cut.contains($0) }) {
                for s in st.inputs where s >= 0 { reaches[s] = true }
            }
        }
        // The earliest step whose inputs can depend on a wrt value.
        let first = wrtSlots.map { m.producer[$0] + 1 }.min() ?? m.steps.count
        var result: [String: Tensor] = [:]
        var lastCut: Node?
        let wanted = Set(wrtSlots)
        // Steps whose cotangents an activation chain's single VJP already produced.
        var absorbed = [Bool](repeating: false, count: m.steps.count)
        // The recorded values, plus chain intermediates rebuilt for a step-by-step walk.
        var vals = values

        var i = m.steps.count - 1
        while i >= first {
            defer { i -= 1 }
            if absorbed[i] { continue }
            let st = m.steps[i]
            let want = st.inputs.map { $0 >= 0 && depends[$0] && reaches[$0] }
            guard want.contains(true) else { continue }
            var gOut: [Tensor?] = []
            for s in st.outputs { gOut.append(s >= 0 && !cut.contains(s) ? grads[s] : nil) }
            for s in st.outputs where s >= 0 {
                if wanted.contains(s), let g = grads[s] { result[m.valueNames[s]] = g }
                grads[s] = nil
            }
            guard gOut.contains(where: { $0 != nil }) else { lastCut = st.node; continue }
            if let end = m.activationChainEnd[i], let chain = m.activationChains[end] {
                if end == i, let gy = gOut[0], let x = fusedInput(chain, rules: rules, grads: grads, wanted: wanted) {
                    if depends[chain.input] && reaches[chain.input] {
                        let gx = try chain.vjp(input: x, grad: gy)
                        grads[chain.input] = try Accumulate.add(grads[chain.input], gx)
                    }
                    for q in chain.steps.dropLast() { absorbed[q] = true }
                    continue
                }
                try rematerialize(chain, &vals)
            }
            let ctx = VJPContext(
                inputs: st.inputs.map { $0 >= 0 ? vals[$0] : nil },
                inputShapes: st.inputs.map { $0 >= 0 ? shapes[$0] : nil },
                outputs: st.outputs.map { $0 >= 0 ? (preHook[$0] ?? vals[$0]) : nil },
                gradOutputs: gOut, wantInput: want)
            let gIn: [Tensor?]
            do {
                gIn = try rules[i].backward(node: st.node, op: st.op, context: ctx)
            } catch let e as GraphError {
                throw e
            } catch {
                throw GraphError.nodeFailed(node: st.node.displayName, opType: st.node.opType, underlying: "backward: \(error)")
            }
            for (k, s) in st.inputs.enumerated() where s >= 0 && want[k] {
                guard k < gIn.count, let g = gIn[k] else { lastCut = st.node; continue }
                guard g.shape == shapes[s] ?? g.shape else {
                    throw GraphError.nodeFailed(node: st.node.displayName, opType: st.node.opType,
                                                underlying: "backward produced gradient of shape \(g.shape) for input \(k) of shape \(shapes[s] ?? [])")
                }
                grads[s] = try Accumulate.add(grads[s], g)
            }
        }
        for s in wrtSlots where result[m.valueNames[s]] == nil {
            if let g = grads[s] {
                result[m.valueNames[s]] = g
            } else if depends[s] && reaches[s], let node = lastCut {
                throw GraphError.notDifferentiable(node: node.displayName, opType: node.opType,
                                                   reason: "no gradient reaches '\(m.valueNames[s])' through it")
            } else {
                result[m.valueNames[s]] = Tensor(zeros: shapes[s] ?? [])
            }
        }
        return result
    }

    /// The recorded input x of `chain` when its VJP can be taken in one step: every step in it
    /// uses the exact gradient, and no value inside it is cut or edited by a hook, seeded, or
    /// asked for (each of those needs the chain's own steps).
    private func fusedInput(_ chain: ActivationChain, rules: [any BackwardRule], grads: [Tensor?],
                            wanted: Set<Int>) -> Tensor? {
        guard chain.runsAsOne(under: rules, in: model.steps, edited: edited.contains), let x = values[chain.input],
              let y = model.steps[chain.steps[chain.steps.count - 1]].outputs.first, shapes[y] == x.shape else { return nil }
        for s in chain.intermediates(in: model.steps) {
            if s < 0 || cut.contains(s) || grads[s] != nil || wanted.contains(s) { return nil }
        }
        return x
    }

    /// Recomputes the values inside `chain` from its kept input when the recorded pass did not
    /// keep them (it ran the chain fused, expecting the one-step VJP) and this backward call takes
    /// the chain step by step (a value inside it is asked for or seeded). Same operators, same
    /// inputs: the values the unfused forward would have kept.
    private func rematerialize(_ chain: ActivationChain, _ vals: inout [Tensor?]) throws {
        // Only a chain the recorded pass ran fused (the executor's condition: every step on the
        // exact gradient, nothing inside edited); otherwise its rules kept what they read.
        guard let rules, chain.runsAsOne(under: rules, in: model.steps, edited: edited.contains),
              chain.intermediates(in: model.steps).contains(where: { vals[$0] == nil }) else { return }
        for q in chain.steps.dropLast() {
            let st = model.steps[q]
            let outs = try st.op.forward(st.inputs.map { $0 >= 0 ? vals[$0] : nil })
            for (k, s) in st.outputs.enumerated() where s >= 0 && k < outs.count { vals[s] = outs[k] }
        }
    }

    /// A value kept by this pass (outputs, captures, and what backward needs).
    public func value(_ name: String) throws -> Tensor {
        if let v = outputs[name] ?? captured[name] { return v }
        let s = try model.slot(named: name)
        if s < values.count, let v = values[s] { return v }
        throw GraphError.invalid("value '\(name)' was not kept by this pass; capture it with Hooks.capture")
    }
}

/// Sums cotangents arriving at one value from several consumers.
enum Accumulate {
    static func add(_ a: Tensor?, _ b: Tensor) throws -> Tensor {
        guard let a else { return b }
        guard a.shape == b.shape else {
            throw GraphError.invalid("cannot accumulate gradients of shapes \(a.shape) and \(b.shape)")
        }
        guard a.dtype == .float32, b.dtype == .float32 else {
            throw GraphError.invalid("gradients must be float32, got \(a.dtype) and \(b.dtype)")
        }
        // One vectorised pass into a new buffer: `a` is shared with the pass that made it, so an
        // in-place sum would first copy it whole.
        return try Tensor.binary(.add, a, b, name: "gradient accumulation")
    }
}
