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
        try Self.walk([self], seeds: [seeds], wrt: wrt)[0]
    }

    /// One reverse walk over this pass and a `reference` pass of the same model, in lockstep:
    /// the two-pass form of a batch `[x; x']` whose rules pair each row with its reference row
    /// (DeepLIFT's multipliers `Δout / Δin`), for models whose fixed batch cannot hold both.
    ///
    /// Each pass gets the cotangents of its own seeds, as two independent
    /// ``backward(seeds:wrt:)`` calls would, except that at every step the rule's context
    /// carries the same step of the other pass (``VJPContext/partner``). Rules that ignore it
    /// give exactly the two independent results.
    ///
    /// - Throws: `GraphError.invalid` unless both passes are recorded, come from the same model
    ///   and computed the same shapes with the same hooks cutting or editing values.
    public func pairedBackward(reference: ForwardPass, seeds: [String: Tensor], referenceSeeds: [String: Tensor],
                               wrt: [String]) throws -> (gradients: [String: Tensor], reference: [String: Tensor]) {
        guard reference.model === model else {
            throw GraphError.invalid("paired backward: the reference pass ran a different model")
        }
        guard reference.shapes == shapes, reference.cut == cut, reference.edited == edited else {
            throw GraphError.invalid("paired backward: the reference pass computed different shapes or was hooked differently")
        }
        let r = try Self.walk([self, reference], seeds: [seeds, referenceSeeds], wrt: wrt)
        return (r[0], r[1])
    }

    /// The recorded input x of `chain` when its VJP can be taken in one step: every step in it
    /// uses the exact gradient, and no value inside it is cut or edited by a hook, seeded, or
    /// asked for (each of those needs the chain's own steps).
    func fusedInput(_ chain: ActivationChain, rules: [any BackwardRule], grads: [Tensor?],
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
    func rematerialize(_ chain: ActivationChain, _ vals: inout [Tensor?]) throws {
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
