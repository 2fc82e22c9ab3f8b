import LoupeTensor

extension ForwardPass {
    /// The reverse walk behind ``backward(seeds:wrt:)`` (one pass) and
    /// ``pairedBackward(reference:seeds:referenceSeeds:wrt:)`` (two passes of one model on the
    /// same shapes). Which steps are visited depends only on the graph, the seeds' names and
    /// `wrt`, so the passes advance together; each keeps its own cotangents and values.
    static func walk(_ passes: [ForwardPass], seeds: [[String: Tensor]], wrt: [String]) throws -> [[String: Tensor]] {
        let head = passes[0]
        guard let rules = head.rules, passes.allSatisfy({ $0.rules != nil }) else {
            throw GraphError.invalid("this forward pass was not recorded for backward; call forward(_:hooks:recording:) with a RuleMap")
        }
        let m = head.model, cut = head.cut
        let n = m.valueNames.count, count = passes.count
        var grads = [[Tensor?]](repeating: [Tensor?](repeating: nil, count: n), count: count)
        var reaches = [Bool](repeating: false, count: n)
        for (p, pass) in passes.enumerated() {
            for (name, g) in seeds[p] {
                let s = try m.slot(named: name)
                guard let shape = pass.shapes[s] else { throw GraphError.invalid("seed '\(name)' was not computed in this pass") }
                guard g.shape == shape, g.dtype == .float32 else {
                    throw GraphError.inputMismatch(name: name, expected: "float32 seed of shape \(shape)", got: "\(g.dtype) of shape \(g.shape)")
                }
                grads[p][s] = try Accumulate.add(grads[p][s], g)
                reaches[s] = true
            }
        }
        let wrtSlots = try wrt.map { try m.slot(named: $0) }
        var depends = [Bool](repeating: false, count: n)
        for s in wrtSlots { depends[s] = true }
        for st in m.steps {
            let d = st.inputs.contains { $0 >= 0 && depends[$0] }
            if d { for s in st.outputs where s >= 0 && head.isFloat[s] && !cut.contains(s) { depends[s] = true } }
        }
        for st in m.steps.reversed() {
            if st.outputs.contains(where: { $0 >= 0 && reaches[$0] && !cut.contains($0) }) {
                for s in st.inputs where s >= 0 { reaches[s] = true }
            }
        }
        // The earliest step whose inputs can depend on a wrt value.
        let first = wrtSlots.map { m.producer[$0] + 1 }.min() ?? m.steps.count
        var results = [[String: Tensor]](repeating: [:], count: count)
        var lastCut: Node?
        let wanted = Set(wrtSlots)
        // Steps whose cotangents an activation chain's single VJP already produced.
        var absorbed = [Bool](repeating: false, count: m.steps.count)
        // The recorded values, plus chain intermediates rebuilt for a step-by-step walk.
        var vals = passes.map(\.values)

        var i = m.steps.count - 1
        while i >= first {
            defer { i -= 1 }
            if absorbed[i] { continue }
            let st = m.steps[i]
            let want = st.inputs.map { $0 >= 0 && depends[$0] && reaches[$0] }
            guard want.contains(true) else { continue }
            var gOut = [[Tensor?]](repeating: [], count: count)
            for p in 0..<count {
                for s in st.outputs { gOut[p].append(s >= 0 && !cut.contains(s) ? grads[p][s] : nil) }
                for s in st.outputs where s >= 0 {
                    if wanted.contains(s), let g = grads[p][s] { results[p][m.valueNames[s]] = g }
                    grads[p][s] = nil
                }
            }
            let live = gOut.map { $0.contains { $0 != nil } }
            guard live.contains(true) else { lastCut = st.node; continue }
            if let end = m.activationChainEnd[i], let chain = m.activationChains[end] {
                // One VJP for the whole chain, when every pass can take it.
                if end == i {
                    let xs = (0..<count).map { p in
                        gOut[p][0] == nil ? nil : passes[p].fusedInput(chain, rules: rules, grads: grads[p], wanted: wanted)
                    }
                    if xs.allSatisfy({ $0 != nil }) {
                        if depends[chain.input] && reaches[chain.input] {
                            for p in 0..<count {
                                guard let x = xs[p], let gy = gOut[p][0] else { continue }
                                grads[p][chain.input] = try Accumulate.add(grads[p][chain.input], try chain.vjp(input: x, grad: gy))
                            }
                        }
                        for q in chain.steps.dropLast() { absorbed[q] = true }
                        continue
                    }
                }
                for p in 0..<count { try passes[p].rematerialize(chain, &vals[p]) }
            }
            let contexts = (0..<count).map { p in
                VJPContext(
                    inputs: st.inputs.map { $0 >= 0 ? vals[p][$0] : nil },
                    inputShapes: st.inputs.map { $0 >= 0 ? passes[p].shapes[$0] : nil },
                    outputs: st.outputs.map { $0 >= 0 ? (passes[p].preHook[$0] ?? vals[p][$0]) : nil },
                    gradOutputs: gOut[p], wantInput: want)
            }
            for p in 0..<count where live[p] {
                var ctx = contexts[p]
                if count == 2 { ctx.partner = VJPPartner(other: contexts[1 - p], selfIsReference: p == 1) }
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
                    guard g.shape == passes[p].shapes[s] ?? g.shape else {
                        throw GraphError.nodeFailed(node: st.node.displayName, opType: st.node.opType,
                                                    underlying: "backward produced gradient of shape \(g.shape) for input \(k) of shape \(passes[p].shapes[s] ?? [])")
                    }
                    grads[p][s] = try Accumulate.add(grads[p][s], g)
                }
            }
        }
        for p in 0..<count {
            for s in wrtSlots where results[p][m.valueNames[s]] == nil {
                if let g = grads[p][s] {
                    results[p][m.valueNames[s]] = g
                } else if depends[s] && reaches[s], let node = lastCut {
                    // Name the step where the path turned into integers (a QuantizeLinear, an
                    // ArgMax...), when there is one: that is why no gradient arrived.
                    if let stop = integerStop(m, from: s, reaches: reaches, isFloat: head.isFloat, cut: cut) {
                        throw GraphError.notDifferentiable(node: stop.displayName, opType: stop.opType,
                                                           reason: "its output is an integer tensor, which carries no gradient, so none reaches '\(m.valueNames[s])' (rounding and indexing have zero derivative almost everywhere)")
                    }
                    throw GraphError.notDifferentiable(node: node.displayName, opType: node.opType,
                                                       reason: "no gradient reaches '\(m.valueNames[s])' through it")
                } else {
                    results[p][m.valueNames[s]] = Tensor(zeros: passes[p].shapes[s] ?? [])
                }
            }
        }
        return results
    }

    /// The first step, in execution order after `from`'s producer, that turns a value depending
    /// on `from` into a non-float output on the way to the seeds, or nil.
    private static func integerStop(_ m: Model, from: Int, reaches: [Bool], isFloat: [Bool], cut: Set<Int>) -> Node? {
        var dependsAny = [Bool](repeating: false, count: m.valueNames.count)
        dependsAny[from] = true
        for st in m.steps where st.inputs.contains(where: { $0 >= 0 && dependsAny[$0] }) {
            for o in st.outputs where o >= 0 && !cut.contains(o) {
                if !isFloat[o] && reaches[o] { return st.node }
                dependsAny[o] = true
            }
        }
        return nil
    }
}
