import LoupeGraph
import LoupeTensor

/// DeepLIFT with the Rescale rule (Shrikumar, Greenside & Kundaje 2017, "Learning Important
/// Features Through Propagating Activation Differences"): the inputs and the baselines run as one
/// batch `[x; x']`; linear nodes pass plain gradients, and each element-wise nonlinearity passes
/// the multiplier `Δout / Δin` (difference between the input half and the baseline half) instead
/// of its derivative. Attribution `(x − x') ⊙ m`, which sums to `f(x) − f(x')`
/// (summation-to-delta; the residual is ``Explanation/convergenceDelta``).
///
/// Equals Captum `DeepLift.attribute(baselines:)` (Rescale, `eps = 1e-10`) when the PyTorch model
/// uses `nn.ReLU`/`nn.Sigmoid`/`nn.Tanh`/`nn.ELU`/`nn.LeakyReLU`/`nn.Softplus`/`nn.MaxPool2d`
/// modules for those operations — Captum hooks modules, so a functional `torch.relu` gets the
/// plain gradient there, while an ONNX file cannot tell the two apart and Loupe applies the rule
/// to every such node. Captum's `nn.Softmax` rule is not implemented: Softmax nodes pass plain
/// gradients.
///
/// MaxPool: ``MaxPoolRule/deepLift`` (default) is the max-pool rule of Captum's `maxpool`
/// (``DeepLiftMaxPoolRule``), which keeps summation-to-delta exact. Captum 0.9.0 itself loses
/// that rule whenever the pool's input is the output of another hooked module (the usual
/// `nn.ReLU → nn.MaxPool2d`): both modules hook the same tensor, the ReLU's hook reads the
/// gradient captured *before* the pool's hook rewrote it, so the pool effectively passes its
/// plain gradient and Σ attribution ≠ f(x) − f(x'). ``MaxPoolRule/gradient`` reproduces those
/// numbers (measured: equal to Captum to 1e-7 on the test CNN, where the rule changes the
/// attribution by 43 % of its maximum).
///
/// With ``ExplainOptions/layer``: Captum `LayerDeepLift` (layer output) — the multipliers at the
/// layer times `layer(x) − layer(x')`.
///
/// ``ExplainOptions/batchSize`` counts rows, so each pass holds `batchSize / 2` samples and their
/// baselines. A model exported with a fixed batch that cannot hold both (the default
/// `torch.onnx.export` of a batch-1 example) runs x and x' as two passes of its batch in
/// lockstep (``LoupeGraph/ForwardPass/pairedBackward(reference:seeds:referenceSeeds:wrt:)``), the
/// rules reading the reference values from the other pass: the same numbers.
public struct DeepLift: Explainer {
    public var baseline: Baseline
    /// |Δin| below this uses the node's plain gradient (Captum's `eps`).
    public var epsilon: Float
    public var multipliesByInputs: Bool
    public var maxPool: MaxPoolRule
    /// Runs x and x' as two passes in lockstep even when the model's batch could hold both
    /// (tests compare the two forms).
    var pairsPasses = false

    /// How MaxPool nodes pass multipliers.
    public enum MaxPoolRule: String, Sendable {
        /// DeepLIFT's max-pool rule (Captum's `maxpool` function); summation-to-delta exact.
        case deepLift
        /// The plain max-pool gradient: what Captum 0.9.0 effectively computes for a MaxPool
        /// that follows a ReLU module.
        case gradient
    }

    public init(baseline: Baseline = .zeros, epsilon: Float = 1e-10, multipliesByInputs: Bool = true,
                maxPool: MaxPoolRule = .deepLift) {
        self.baseline = baseline
        self.epsilon = epsilon
        self.multipliesByInputs = multipliesByInputs
        self.maxPool = maxPool
    }

    public var methodName: String { "DeepLift" }

    /// The rule map: Rescale on element-wise nonlinearities, the max-pool rule on MaxPool.
    public var rules: RuleMap {
        let rescale = DeepLiftRescaleRule(epsilon: epsilon)
        var table: [String: any BackwardRule] = [:]
        for op in ["Relu", "Sigmoid", "Tanh", "Elu", "LeakyRelu", "Softplus"] { table[op] = rescale }
        if maxPool == .deepLift { table["MaxPool"] = DeepLiftMaxPoolRule(epsilon: epsilon) }
        return .byOpType(table)
    }

    public func repeatingSamples(_ n: Int) throws -> DeepLift {
        var c = self
        c.baseline = try baseline.repeatingSamples(n)
        return c
    }

    public func explain(_ model: Model, inputs: [String: Tensor], target: Target, options: ExplainOptions) throws -> Explanation {
        let method = methodName
        let setup = try ExplainSetup(model: model, inputs: inputs, options: options, method: method)
        let t = try target.resolve(model: model, feeds: inputs, batch: setup.batch, method: method)
        let x = setup.x, b = try baseline.resolve(like: x, method: method)
        let B = setup.batch
        let engine = ModifiedBackward(rules: rules)
        var quiet = setup
        quiet.progress = nil
        var grads = [Float](), delta = [Float](), diffs = [Float]()
        var attributedShape = x.shape
        grads.reserveCapacity(B * x.rowSize)
        // A fixed batch that cannot hold [x_chunk; x'_chunk] (a batch-1 export): x and x' run as
        // two passes in lockstep instead, the rules pairing them across the passes.
        let paired = pairsPasses || setup.fixedBatch.map { $0 % 2 != 0 || B % ($0 / 2) != 0 } ?? false
        if paired {
            try engine.forEachPairedChunk(model, setup: setup, rows: x, referenceRows: b, rowSample: Array(0..<B), target: t,
                                          layer: options.layer, batchSize: options.batchSize.map { max(1, $0 / 2) }, method: method) {
                _, g, values, s, sr in
                grads += try g.floats(method)
                attributedShape = [B] + g.shape.dropFirst()
                if let (v, vr) = values {
                    let a = try v.floats(method), r = try vr.floats(method)
                    for i in 0..<a.count { diffs.append(a[i] - r[i]) }
                }
                if s.count == sr.count { for i in 0..<s.count { delta.append(s[i] - sr[i]) } }
            }
        } else {
            let per = setup.fixedBatch.map { $0 / 2 } ?? max(1, (options.batchSize ?? 2 * B) / 2)
            var lo = 0
            while lo < B {
                let hi = min(B, lo + per)
                let samples = Array(lo..<hi)
                // One pass over [x_chunk; x'_chunk]: the rules pair row i with row i + count.
                let rows = try Tensor.concatenated([x.rows(lo..<hi), b.rows(lo..<hi)], axis: 0)
                let r = try engine.run(model, setup: quiet, rows: rows, rowSample: samples + samples, target: t,
                                       layer: options.layer, batchSize: nil, method: method)
                let g = try r.gradients.floats(method), m = r.gradients.rowSize
                grads += g[0..<(samples.count * m)]
                attributedShape = [B] + r.gradients.shape.dropFirst()
                if let act = r.activations {
                    // Layer DeepLIFT: the multipliers at the layer times layer(x) − layer(x').
                    let v = try act.floats(method), half = samples.count * m
                    for i in 0..<half { diffs.append(v[i] - v[half + i]) }
                }
                for i in 0..<samples.count where r.scores.count == 2 * samples.count {
                    delta.append(r.scores[i] - r.scores[samples.count + i])
                }
                setup.progress?(2 * hi, 2 * B)
                lo = hi
            }
        }
        if options.layer == nil {
            let xs = try x.floats(method), bs = try b.floats(method)
            diffs = (0..<xs.count).map { xs[$0] - bs[$0] }
        }
        if multipliesByInputs { for i in 0..<grads.count { grads[i] *= diffs[i] } }
        var convergence: [Float]? = nil
        let m = grads.count / max(B, 1)
        if delta.count == B {
            convergence = (0..<B).map { s in grads[(s * m)..<((s + 1) * m)].reduce(0, +) - delta[s] }
        }
        return Explanation(attribution: try Tensor(shape: attributedShape, floats: grads), method: method,
                           parameters: ["epsilon": "\(epsilon)", "multipliesByInputs": "\(multipliesByInputs)", "maxPool": maxPool.rawValue],
                           input: setup.inputName, layer: options.layer, targets: t.perSample,
                           convergenceDelta: multipliesByInputs ? convergence : nil)
    }
}

/// DeepLIFT's Rescale rule for an element-wise nonlinearity run on `[x; x']` stacked on the batch
/// axis: `g_in = g_out ⊙ Δout / Δin` with `Δ = first half − second half` used for both halves,
/// and the node's exact gradient where `|Δin| < ε` (Captum's `nonlinear`).
public struct DeepLiftRescaleRule: BackwardRule {
    public var epsilon: Float
    public init(epsilon: Float = 1e-10) { self.epsilon = epsilon }
    public func extraNeeds(for node: Node) -> BackwardNeeds { BackwardNeeds(inputs: [0], outputs: [0]) }

    public func backward(node: Node, op: any Operator, context: VJPContext) throws -> [Tensor?] {
        guard let g = context.gradOutputs.first ?? nil else { return [nil] }
        let label = "DeepLift rescale at \(node.label)"
        let x = try context.input(0, label), y = try context.output(0, label)
        let exact = try op.vjp(context).first ?? nil
        let dIn = try Self.difference(x, context.partner.map { try $0.context.input(0, label) }, context.partner, label)
        let dOut = try Self.difference(y, context.partner.map { try $0.context.output(0, label) }, context.partner, label)
        let gs = try g.floats(label)
        let ex = try exact?.floats(label)
        let eps = epsilon
        var out = [Float](repeating: 0, count: gs.count)
        for i in 0..<gs.count {
            let d = dIn[i]
            out[i] = abs(d) < eps ? (ex?[i] ?? 0) : gs[i] * dOut[i] / d
        }
        var result = [Tensor?](repeating: nil, count: context.inputs.count)
        result[0] = try Tensor(shape: x.shape, floats: out)
        return result
    }

    /// `input − reference` for every element of a value: from the paired pass's value when the
    /// backward is paired (`partner`, `other` its value), else from the two halves of the batch.
    static func difference(_ own: Tensor, _ other: Tensor?, _ partner: VJPPartner?, _ label: String) throws -> [Float] {
        guard let partner, let other else { return try halfDifference(own, label) }
        guard other.shape == own.shape else {
            throw ExplainError.unsupported(method: label, reason: "paired values of shapes \(own.shape) and \(other.shape)")
        }
        let a = try own.floats(label), b = try other.floats(label)
        return partner.selfIsReference ? (0..<a.count).map { b[$0] - a[$0] } : (0..<a.count).map { a[$0] - b[$0] }
    }

    /// `first half − second half` along the batch axis, repeated for both halves.
    static func halfDifference(_ t: Tensor, _ label: String) throws -> [Float] {
        guard t.rank >= 1, t.shape[0] % 2 == 0 else {
            throw ExplainError.unsupported(method: label, reason: "value of shape \(t.shape) is not an [inputs; baselines] batch")
        }
        let v = try t.floats(label), half = v.count / 2
        var d = [Float](repeating: 0, count: v.count)
        for i in 0..<half {
            d[i] = v[i] - v[half + i]
            d[half + i] = d[i]
        }
        return d
    }
}

/// DeepLIFT's max-pool rule (Captum's `maxpool`): with `m = max(y, y')` element-wise, the
/// cotangent `g ⊙ (m − y')` is routed to the input half's argmax positions and `g ⊙ (y − m)` to
/// the baseline half's, the two are summed, divided by `Δin`, and used for both halves; the exact
/// gradient where `|Δin| < ε`.
public struct DeepLiftMaxPoolRule: BackwardRule {
    public var epsilon: Float
    public init(epsilon: Float = 1e-10) { self.epsilon = epsilon }
    public func extraNeeds(for node: Node) -> BackwardNeeds { BackwardNeeds(inputs: [0], outputs: [0]) }

    public func backward(node: Node, op: any Operator, context: VJPContext) throws -> [Tensor?] {
        guard let g = context.gradOutputs.first ?? nil else { return [nil] }
        let label = "DeepLift max-pool rule at \(node.label)"
        if let partner = context.partner { return try paired(op: op, context: context, partner: partner, label) }
        let x = try context.input(0, label), y = try context.output(0, label)
        guard y.rank >= 1, y.shape[0] % 2 == 0 else {
            throw ExplainError.unsupported(method: label, reason: "output of shape \(y.shape) is not an [inputs; baselines] batch")
        }
        let exact = try op.vjp(context).first ?? nil
        let ys = try y.floats(label), gs = try g.floats(label), half = ys.count / 2
        var scaled = [Float](repeating: 0, count: ys.count)
        for i in 0..<half {
            let m = max(ys[i], ys[half + i])
            scaled[i] = gs[i] * (m - ys[half + i])
            scaled[half + i] = gs[half + i] * (ys[i] - m)
        }
        var ctx = context
        ctx.gradOutputs[0] = try Tensor(shape: y.shape, floats: scaled)
        guard let routed = try op.vjp(ctx).first ?? nil else { return [nil] }
        let u = try routed.floats(label), xh = u.count / 2
        let dIn = try DeepLiftRescaleRule.halfDifference(x, label)
        let ex = try exact?.floats(label)
        var out = [Float](repeating: 0, count: u.count)
        for i in 0..<xh {
            let s = u[i] + u[xh + i]
            out[i] = abs(dIn[i]) < epsilon ? (ex?[i] ?? 0) : s / dIn[i]
            out[xh + i] = abs(dIn[i]) < epsilon ? (ex?[xh + i] ?? 0) : s / dIn[i]
        }
        var result = [Tensor?](repeating: nil, count: context.inputs.count)
        result[0] = try Tensor(shape: x.shape, floats: out)
        return result
    }

    /// The rule over a paired backward: the input pass's and the reference pass's cotangents
    /// are routed by each pass's own argmax, summed, and divided by `Δin`, as the batch form
    /// does with its two halves.
    private func paired(op: any Operator, context: VJPContext, partner: VJPPartner, _ label: String) throws -> [Tensor?] {
        let (inCtx, refCtx) = partner.selfIsReference ? (partner.context, context) : (context, partner.context)
        let yIn = try inCtx.output(0, label), yRef = try refCtx.output(0, label)
        let a = try yIn.floats(label), b = try yRef.floats(label)
        let gIn = try inCtx.gradOutputs.first??.floats(label) ?? [Float](repeating: 0, count: a.count)
        let gRef = try refCtx.gradOutputs.first??.floats(label) ?? [Float](repeating: 0, count: a.count)
        var scaledIn = [Float](repeating: 0, count: a.count), scaledRef = scaledIn
        for i in 0..<a.count {
            let m = max(a[i], b[i])
            scaledIn[i] = gIn[i] * (m - b[i])
            scaledRef[i] = gRef[i] * (a[i] - m)
        }
        var ci = inCtx, cr = refCtx
        ci.gradOutputs[0] = try Tensor(shape: yIn.shape, floats: scaledIn)
        cr.gradOutputs[0] = try Tensor(shape: yRef.shape, floats: scaledRef)
        guard let ui = try op.vjp(ci).first ?? nil, let ur = try op.vjp(cr).first ?? nil else { return [nil] }
        let u = try ui.floats(label), v = try ur.floats(label)
        let x = try context.input(0, label)
        let dIn = try DeepLiftRescaleRule.difference(x, try partner.context.input(0, label), partner, label)
        let ex = context.gradOutputs.first.flatMap { $0 } == nil ? nil : try (op.vjp(context).first ?? nil)?.floats(label)
        var out = [Float](repeating: 0, count: u.count)
        for i in 0..<u.count {
            out[i] = abs(dIn[i]) < epsilon ? (ex?[i] ?? 0) : (u[i] + v[i]) / dIn[i]
        }
        var result = [Tensor?](repeating: nil, count: context.inputs.count)
        result[0] = try Tensor(shape: x.shape, floats: out)
        return result
    }
}
