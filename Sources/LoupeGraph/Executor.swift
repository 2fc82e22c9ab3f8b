import LoupeTensor

extension Model {
    /// Runs the model and returns its declared outputs by name.
    ///
    /// - Parameter feeds: one tensor per graph input (see ``inputs``); float inputs must be
    ///   finite. Shapes must match the declared fixed dimensions; symbolic dimensions (batch)
    ///   take any size.
    ///
    /// Without hooks, a batch of at least two samples per thread is split into one share per
    /// core, run concurrently, when the model is known to keep samples apart
    /// (``BatchSplitVerdicts``: checked on the first call with those shapes, which runs whole).
    /// The outputs are the whole batch's, up to float rounding.
    public func run(_ feeds: [String: Tensor], hooks: Hooks = .none) throws -> [String: Tensor] {
        if hooks.captures.isEmpty && hooks.edits.isEmpty, let outputs = try runSplittingBatch(feeds) { return outputs }
        return try forward(feeds, hooks: hooks, recording: nil).outputs
    }

    /// Runs the model, keeping what a later ``ForwardPass/backward(seeds:wrt:)`` needs when
    /// `recording` is given: for each node, exactly the inputs/outputs its rule reads
    /// (``BackwardNeeds``), every other intermediate is freed after its last use.
    ///
    /// - Parameters:
    ///   - allowNonFinite: accept NaN/infinity in float inputs (rejected by default because they
    ///     almost always mean a broken preprocessing step upstream).
    ///   - outputs: names of the graph outputs wanted (nil: all). Only the nodes these outputs
    ///     and the hooks' captures depend on run — e.g. `[]` with a capture computes the model up
    ///     to that layer and stops (Eigen-CAM, activation extraction).
    ///
    /// With symbolic input dimensions, a call with input shapes seen before runs the model
    /// specialised to them (``ShapeSpecialisation``): the returned pass's ``ForwardPass/model``
    /// is then that specialisation, which shares this model's operators and value names.
    public func forward(_ feeds: [String: Tensor], hooks: Hooks = .none, recording rules: RuleMap? = nil,
                        allowNonFinite: Bool = false, outputs wanted: Set<String>? = nil) throws -> ForwardPass {
        var log: ShapeLog?
        var key: [[Int]] = []
        if let (made, k) = specialisation(for: feeds) {
            if let made, !made.freezes(hooks) {
                return try made.forward(feeds, hooks: hooks, recording: rules, allowNonFinite: allowNonFinite, outputs: wanted)
            }
            // Learn the shape values from a pass whose hooks cannot change any shape.
            if made == nil && hooks.edits.isEmpty, let spec = shapeSpecialisation {
                log = ShapeLog(slots: spec.slots)
                key = k
            }
        }
        // A recorded pass decides the backward pass's ReLU masks: no Winograd rounding in it.
        let pass = rules == nil
            ? try forwardPass(feeds, hooks: hooks, recording: rules, allowNonFinite: allowNonFinite, wanted: wanted, shapeLog: log)
            : try Kernels.withDirectConvolutions {
                try forwardPass(feeds, hooks: hooks, recording: rules, allowNonFinite: allowNonFinite, wanted: wanted, shapeLog: log)
            }
        if let log { specialise(for: key, from: log) }
        return pass
    }

    /// Whether `hooks` edit a value this model has folded into a constant (an edit there would
    /// never be applied): such calls run the unspecialised model.
    func freezes(_ hooks: Hooks) -> Bool {
        hooks.edits.keys.contains { $0 < constants.count && constants[$0] != nil }
    }

    /// Which steps the wanted outputs and the captures depend on (all steps when `wanted` is nil).
    private func neededSteps(wanted: Set<String>?, captures: Set<Int>) throws -> [Bool]? {
        guard let wanted else { return nil }
        var needed = [Bool](repeating: false, count: valueNames.count)
        for name in wanted {
            guard let s = outputSlots.first(where: { valueNames[$0] == name }) else {
                throw GraphError.invalid("'\(name)' is not an output of the model; outputs: \(outputSlots.map { valueNames[$0] })")
            }
            needed[s] = true
        }
        for s in captures { needed[s] = true }
        var run = [Bool](repeating: false, count: steps.count)
        for i in steps.indices.reversed() where steps[i].outputs.contains(where: { $0 >= 0 && needed[$0] }) {
            run[i] = true
            for s in steps[i].inputs where s >= 0 { needed[s] = true }
        }
        return run
    }

    /// - Parameter stepNanoseconds: when given (``profile(_:runs:)``), one counter per step, each
    ///   step's wall time added to it.
    func forwardPass(_ feeds: [String: Tensor], hooks: Hooks, recording rules: RuleMap?,
                     allowNonFinite: Bool, wanted: Set<String>?,
                     stepNanoseconds: UnsafeMutableBufferPointer<UInt64>? = nil, shapeLog: ShapeLog? = nil) throws -> ForwardPass {
        var values = constants
        var shapes = [[Int]?](repeating: nil, count: values.count)
        for (s, c) in values.enumerated() { shapes[s] = c?.shape }
        try bindInputs(feeds, into: &values, allowNonFinite: allowNonFinite)

        var keep = [Bool](repeating: false, count: values.count)
        var stepRules: [any BackwardRule] = []
        if let rules {
            stepRules = steps.map { rules.rule(for: $0.node) }
            // An activation chain whose backward will be one VJP from its input (every step on
            // the exact gradient, no hook editing a value inside) keeps only that input; its
            // intermediates are then free to run fused below. Backward rebuilds them from the
            // input if a later call asks for one of them (ForwardPass.rematerialize).
            var chained = [Bool](repeating: false, count: steps.count)
            for chain in activationChains.values where chain.runsAsOne(under: stepRules, in: steps, edited: { hooks.edits[$0] != nil }) {
                for q in chain.steps { chained[q] = true }
                keep[chain.input] = true
            }
            for (k, st) in steps.enumerated() where !chained[k] {
                let n = st.op.backwardNeeds, x = stepRules[k].extraNeeds(for: st.node)
                for i in n.inputs + x.inputs where i < st.inputs.count && st.inputs[i] >= 0 { keep[st.inputs[i]] = true }
                for i in n.outputs + x.outputs where i < st.outputs.count && st.outputs[i] >= 0 { keep[st.outputs[i]] = true }
            }
        }
        for s in hooks.captures { keep[s] = true }

        var cut = Set<Int>()
        var preHook: [Int: Tensor] = [:]
        if !hooks.isEmpty {
            for (_, s) in inputSlots { try applyHooks(hooks, slot: s, values: &values, cut: &cut, preHook: &preHook, keepOriginal: false) }
        }
        var isFloat = [Bool](repeating: false, count: values.count)
        for s in values.indices { if let v = values[s] { shapes[s] = v.shape; isFloat[s] = v.dtype == .float32 } }

        // Fused pairs (Conv+Relu, Sigmoid+Mul), when nothing needs the value in between: no rule,
        // hook or capture reads it (keep) and no hook edits it.
        var fuseWith = [StepFusion?](repeating: nil, count: steps.count)
        var fusedAway = [Bool](repeating: false, count: steps.count)
        for (i, f) in fusions.enumerated() {
            guard var f else { continue }
            var first = i
            let observed = { (s: Int) in keep[s] || hooks.edits[s] != nil }
            // A Conv's SiLU whose pre-activation is needed (the input a recorded chain keeps, or a
            // captured value): the Sigmoid and the Mul still run as one SiLU pass.
            if case .activationIntoProducer(.silu) = f.kind, f.absorbed.count == 2, observed(steps[i].outputs[0]),
               hooks.edits[steps[i].outputs[0]] == nil {
                first = f.absorbed[0]
                f = StepFusion(partner: f.absorbed[1], kind: .silu)
            }
            // Every value between the first step and the result is never materialised.
            if f.intermediates(first: first, in: steps).contains(where: observed) { continue }
            fuseWith[first] = f
            for q in f.absorbed { fusedAway[q] = true }
        }

        let needed = try neededSteps(wanted: wanted, captures: Set(hooks.captures))
        var args: [Tensor?] = []
        for (i, st) in steps.enumerated() {
            if fusedAway[i] || needed?[i] == false {
                // Its work was done by the fused step; its inputs still die here (x of SiLU and
                // GELU is read by an absorbed Mul, possibly after other steps that need it).
                for s in st.inputs where s >= 0 && lastUse[s] == i && !keep[s] && constants[s] == nil { values[s] = nil }
                continue
            }
            let started = stepNanoseconds == nil ? 0 : monotonicNanoseconds()
            defer { if let stepNanoseconds { stepNanoseconds[i] &+= monotonicNanoseconds() &- started } }
            args.removeAll(keepingCapacity: true)
            for s in st.inputs { args.append(s >= 0 ? values[s] : nil) }
            let outs: [Tensor]
            let fusion = fuseWith[i]
            var productShape: [Int]?
            do {
                switch fusion?.kind {
                case .scaleIntoConsumer?:
                    guard let fusion, let op = steps[fusion.partner].op as? ConvOperator else {
                        throw GraphError.invalid("\(st.node.label): cannot fold a product into its reader")
                    }
                    guard let a = args[0], let b = args[1] else { throw GraphError.invalid("\(st.node.label): missing input") }
                    let convInputs = steps[fusion.partner].inputs.map { $0 >= 0 ? values[$0] : nil }
                    (outs, productShape) = try op.forwardScalingInput(a, b, convInputs)
                case let .activationIntoProducer(activation)?:
                    guard let op = st.op as? ActivationFusable else {
                        throw GraphError.invalid("\(st.node.label): cannot fuse an activation")
                    }
                    outs = try op.forwardFusing(args, activation: activation)
                case .biasIntoProducer?:
                    guard let fusion, let op = st.op as? MatMulOperator, let s = st.outputs.first else {
                        throw GraphError.invalid("\(st.node.label): cannot add a bias inside its product")
                    }
                    let add = steps[fusion.partner].inputs
                    let b = add[0] == s ? add[1] : add[0]
                    guard b >= 0, let bias = values[b] else { throw GraphError.invalid("\(st.node.label): missing bias") }
                    outs = try op.forwardAddingBias(args, bias: bias)
                case .silu?:
                    guard let x = args.first ?? nil else { throw GraphError.invalid("\(st.node.label): missing input") }
                    outs = [try x.silu(name: st.node.label)]
                case .gelu?:
                    guard let x = args.first ?? nil else { throw GraphError.invalid("\(st.node.label): missing input") }
                    outs = [try x.unary(.gelu(tanhApproximation: false), name: st.node.label)]
                case nil:
                    outs = try st.op.forward(args)
                }
            } catch let e as GraphError {
                throw e
            } catch {
                throw GraphError.nodeFailed(node: st.node.displayName, opType: st.node.opType, underlying: "\(error)")
            }
            if let fusion, let y = outs.first {
                // The intermediate values are never materialised; their shapes (all the result's:
                // the fused chains are element-wise) are still known to backward.
                let out = steps[fusion.partner].outputs[0]
                for mid in fusion.intermediates(first: i, in: steps) where mid >= 0 {
                    shapes[mid] = productShape ?? y.shape
                    isFloat[mid] = true
                }
                for s in st.inputs where s >= 0 && lastUse[s] == i && !keep[s] && constants[s] == nil { values[s] = nil }
                guard out >= 0 else { continue }
                values[out] = y
                shapes[out] = y.shape
                isFloat[out] = y.dtype == .float32
                if !hooks.isEmpty {
                    try applyHooks(hooks, slot: out, values: &values, cut: &cut, preHook: &preHook, keepOriginal: rules != nil && keep[out])
                }
                if lastUse[out] < 0 && !keep[out] { values[out] = nil }
                continue
            }
            for (k, s) in st.outputs.enumerated() where s >= 0 {
                guard k < outs.count else {
                    throw GraphError.nodeFailed(node: st.node.displayName, opType: st.node.opType,
                                                underlying: "produced \(outs.count) outputs, graph uses output \(k)")
                }
                values[s] = outs[k]
                shapes[s] = outs[k].shape
                isFloat[s] = outs[k].dtype == .float32
                if let shapeLog, shapeLog.slots.contains(s) { shapeLog.values[s] = outs[k] }
                if !hooks.isEmpty {
                    let needsOwnOutput = rules != nil && keep[s]
                    try applyHooks(hooks, slot: s, values: &values, cut: &cut, preHook: &preHook, keepOriginal: needsOwnOutput)
                }
            }
            // Free what no later node, backward rule or hook needs.
            for s in st.inputs where s >= 0 && lastUse[s] == i && !keep[s] && constants[s] == nil { values[s] = nil }
            for s in st.outputs where s >= 0 && lastUse[s] < 0 && !keep[s] { values[s] = nil }
        }

        var outputs: [String: Tensor] = [:]
        for o in outputSlots where wanted?.contains(valueNames[o]) ?? true { if let v = values[o] { outputs[valueNames[o]] = v } }
        var captured: [String: Tensor] = [:]
        for s in hooks.captures { if let v = values[s] { captured[valueNames[s]] = v } }
        return ForwardPass(model: self, outputs: outputs, captured: captured,
                           values: rules == nil ? [] : values, shapes: shapes, isFloat: isFloat, preHook: preHook,
                           cut: cut, edited: Set(hooks.edits.keys), rules: rules == nil ? nil : stepRules)
    }

    private func applyHooks(_ hooks: Hooks, slot s: Int, values: inout [Tensor?], cut: inout Set<Int>,
                            preHook: inout [Int: Tensor], keepOriginal: Bool) throws {
        guard let v = values[s], hooks.edits[s] != nil else { return }
        let (nv, isCut) = try hooks.apply(slot: s, to: v)
        if keepOriginal { preHook[s] = v }
        values[s] = nv
        if isCut { cut.insert(s) }
    }

    /// Checks feeds against declared inputs and writes them into their slots.
    private func bindInputs(_ feeds: [String: Tensor], into values: inout [Tensor?], allowNonFinite: Bool) throws {
        let known = Set(inputSlots.map(\.info.name))
        for name in feeds.keys where !known.contains(name) {
            throw GraphError.inputMismatch(name: name, expected: "one of the model inputs \(known.sorted())", got: "an unknown input name")
        }
        for (info, s) in inputSlots {
            guard let t = feeds[info.name] else {
                throw GraphError.missingInput(name: info.name, expected: InputCheck.describe(info))
            }
            try InputCheck.validate(t, against: info, allowNonFinite: allowNonFinite)
            values[s] = t
        }
    }
}

/// Validation of fed tensors against declared input types.
enum InputCheck {
    /// Storage dtype an ONNX element type maps to (nil: unknown/any).
    static func dtype(forONNX code: Int) -> DType? {
        switch code {
        case 1, 10, 11, 16: return .float32
        case 2, 3, 4, 5, 6, 7, 12, 13: return .int64
        case 9: return .bool
        default: return nil
        }
    }

    static func describe(_ info: ValueInfo) -> String {
        let t = dtype(forONNX: info.elementType).map { "\($0)" } ?? "tensor"
        guard let shape = info.shape else { return t }
        return "\(t) of shape [\(shape.map(\.description).joined(separator: ", "))]"
    }

    static func validate(_ t: Tensor, against info: ValueInfo, allowNonFinite: Bool = false) throws {
        if let want = dtype(forONNX: info.elementType), want != t.dtype {
            throw GraphError.inputMismatch(name: info.name, expected: describe(info), got: "\(t.dtype) of shape \(t.shape)")
        }
        if let dims = info.shape {
            var ok = dims.count == t.rank
            if ok {
                for (d, n) in zip(dims, t.shape) { if let v = d.value, v != n { ok = false } }
            }
            if !ok {
                throw GraphError.inputMismatch(name: info.name, expected: describe(info), got: "\(t.dtype) of shape \(t.shape)")
            }
        }
        if !allowNonFinite && t.hasNonFinite { throw GraphError.nonFiniteInput(name: info.name) }
    }
}
