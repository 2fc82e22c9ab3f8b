import LoupeTensor

/// ONNX `RNN`, `GRU` (Cho et al. 2014) and `LSTM` (Hochreiter & Schmidhuber 1997, with the
/// ONNX peepholes and `input_forget`): one operator, three cells sharing the sequence loop,
/// directions, `sequence_lens`, `layout`, `clip` and the backward pass through time.
///
/// Gate order as ONNX stores it: GRU z, r, h; LSTM i, o, f, c (peepholes i, o, f). Per step, the
/// input projections of all steps come from one GEMM, the recurrent one from a GEMM over the
/// batch. `clip` bounds each gate's input before its activation (onnxruntime's placement, after
/// the bias and peephole terms); its derivative is 0 where it clipped.
///
/// `sequence_lens[b]`: sample b runs its first `len` steps (a reverse direction runs them from
/// `len − 1` down); `Y` is 0 past them and `Y_h`/`Y_c` hold the state after its last step.
///
/// The VJP replays the forward pass keeping every step's gate inputs and states, then walks the
/// steps backwards (back-propagation through time) for X, W, R, B, the initial states and P.
struct RecurrentOperator: Operator {
    enum Cell: Equatable, Sendable {
        case rnn
        case gru(linearBeforeReset: Bool)
        case lstm(inputForget: Bool)
    }

    let cell: Cell
    /// 0: read from R's shape.
    let hiddenSize: Int
    /// Per direction: whether it runs backwards in time.
    let reverse: [Bool]
    /// Per direction: RNN (f), GRU (f, g), LSTM (f, g, h).
    let activations: [[RecurrentActivation]]
    let clip: Float?
    /// `layout = 1`: X is (batch, seq, input), Y (batch, seq, directions, hidden).
    let batchFirst: Bool
    let label: String

    var gates: Int {
        switch cell {
        case .rnn: return 1
        case .gru: return 3
        case .lstm: return 4
        }
    }
    var isLSTM: Bool { if case .lstm = cell { return true } else { return false } }

    init(_ ctx: OperatorContext, cell: Cell) throws {
        self.cell = cell
        label = ctx.label
        let lstm: Bool
        if case .lstm = cell { lstm = true } else { lstm = false }
        try ctx.expectInputs(3, lstm ? 8 : 6)
        hiddenSize = try ctx.int("hidden_size", default: 0)
        let direction = try ctx.string("direction", default: "forward")
        switch direction {
        case "forward": reverse = [false]
        case "reverse": reverse = [true]
        case "bidirectional": reverse = [false, true]
        default: throw ctx.bad("direction", "forward, reverse or bidirectional; got '\(direction)'")
        }
        let perDirection: [String]
        switch cell {
        case .rnn: perDirection = ["Tanh"]
        case .gru: perDirection = ["Sigmoid", "Tanh"]
        case .lstm: perDirection = ["Sigmoid", "Tanh", "Tanh"]
        }
        var names = perDirection
        if case let .strings(v)? = ctx.node.attributes["activations"] { names = v }
        if names.count == perDirection.count && reverse.count == 2 { names += names }
        guard names.count == perDirection.count * reverse.count else {
            throw ctx.bad("activations", "\(perDirection.count) per direction (\(perDirection.count * reverse.count) in all), got \(names.count)")
        }
        let parsed = try RecurrentActivation.parse(names, alphas: try ctx.floats("activation_alpha", default: []),
                                                   betas: try ctx.floats("activation_beta", default: []), label: ctx.label)
        activations = (0..<reverse.count).map { Array(parsed[($0 * perDirection.count)..<(($0 + 1) * perDirection.count)]) }
        clip = ctx.has("clip") ? try ctx.float("clip") : nil
        if let clip, !(clip > 0) { throw ctx.bad("clip", "a positive threshold, got \(clip)") }
        batchFirst = try ctx.int("layout", default: 0) != 0
    }

    var backwardNeeds: BackwardNeeds { .allInputs(8) }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let p = try Problem(self, inputs)
        let run = try p.run(keepingSteps: false)
        return try p.outputs(run)
    }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        let p = try Problem(self, ctx.inputs)
        let run = try p.run(keepingSteps: true)
        return try p.backward(run, ctx)
    }
}

extension RecurrentOperator {
    /// One call's tensors, checked and laid out time-major.
    struct Problem {
        let op: RecurrentOperator
        let seq: Int, batch: Int, input: Int, hidden: Int, dirs: Int
        var gh: Int { op.gates * hidden }
        /// X as (seq, batch, input).
        let x: [Float]
        let w: [Float], r: [Float]
        let bias: [Float]?
        let lengths: [Int]
        let h0: [Float]?, c0: [Float]?   // (dirs, batch, hidden)
        let peep: [Float]?                // (dirs, 3·hidden)

        init(_ op: RecurrentOperator, _ inputs: [Tensor?]) throws {
            self.op = op
            let label = op.label
            func arg(_ i: Int) -> Tensor? { i < inputs.count ? inputs[i] : nil }
            guard let xt = arg(0), let wt = arg(1), let rt = arg(2) else {
                throw GraphError.invalid("\(label): X, W and R are required")
            }
            guard xt.rank == 3 else { throw GraphError.invalid("\(label): X must be 3-D, got \(xt.shape)") }
            let (s0, s1) = (xt.shape[0], xt.shape[1])
            seq = op.batchFirst ? s1 : s0
            batch = op.batchFirst ? s0 : s1
            input = xt.shape[2]
            dirs = op.reverse.count
            guard rt.rank == 3, rt.shape[0] == dirs else {
                throw GraphError.invalid("\(label): R must be (\(dirs), \(op.gates)·hidden, hidden), got \(rt.shape)")
            }
            hidden = op.hiddenSize > 0 ? op.hiddenSize : rt.shape[2]
            let gh = op.gates * hidden
            guard rt.shape == [dirs, gh, hidden] else {
                throw GraphError.invalid("\(label): R must be \([dirs, gh, hidden]) (hidden_size \(hidden)), got \(rt.shape)")
            }
            guard wt.shape == [dirs, gh, input] else {
                throw GraphError.invalid("\(label): W must be \([dirs, gh, input]), got \(wt.shape)")
            }
            x = try (op.batchFirst ? xt.permuted([1, 0, 2]) : xt).floats(label)
            w = try wt.floats(label)
            r = try rt.floats(label)
            if let bt = arg(3) {
                guard bt.shape == [dirs, 2 * gh] else { throw GraphError.invalid("\(label): B must be \([dirs, 2 * gh]), got \(bt.shape)") }
                bias = try bt.floats(label)
            } else {
                bias = nil
            }
            if let lt = arg(4) {
                guard lt.shape == [batch] else { throw GraphError.invalid("\(label): sequence_lens must be (\(batch)), got \(lt.shape)") }
                guard lt.dtype == .int64 else { throw GraphError.invalid("\(label): sequence_lens must be integers, got \(lt.dtype)") }
                let v = try lt.ints(label), steps = Int64(seq)
                guard v.allSatisfy({ $0 >= 0 && $0 <= steps }) else {
                    throw GraphError.invalid("\(label): sequence_lens must lie in 0...\(steps), got \(v)")
                }
                lengths = v.map { Int($0) }
            } else {
                lengths = [Int](repeating: seq, count: batch)
            }
            let (nb, nd, nh, first) = (batch, dirs, hidden, op.batchFirst)
            func state(_ t: Tensor?, _ name: String) throws -> [Float]? {
                guard let t else { return nil }
                let want = first ? [nb, nd, nh] : [nd, nb, nh]
                guard t.shape == want else { throw GraphError.invalid("\(label): \(name) must be \(want), got \(t.shape)") }
                return try (first ? t.permuted([1, 0, 2]) : t).floats(label)
            }
            h0 = try state(arg(5), "initial_h")
            c0 = op.isLSTM ? try state(arg(6), "initial_c") : nil
            if op.isLSTM, let pt = arg(7) {
                guard pt.shape == [dirs, 3 * hidden] else { throw GraphError.invalid("\(label): P must be \([dirs, 3 * hidden]), got \(pt.shape)") }
                peep = try pt.floats(label)
            } else {
                peep = nil
            }
        }

        /// Time index of step `s` for sample `b` in direction `d`, nil past its length.
        func time(_ s: Int, _ b: Int, _ d: Int) -> Int? {
            guard s < lengths[b] else { return nil }
            return op.reverse[d] ? lengths[b] - 1 - s : s
        }
    }

    /// What a forward run produced, and with `keepingSteps` what backward reads, per direction,
    /// indexed by (time, sample): the gate inputs before clipping (`pre`, seq × batch × gates·H),
    /// the state entering the step (`hPrev`), LSTM cell states before and after (`cPrev`,
    /// `cNew`), and the GRU candidate's recurrent input (r ⊙ H_{t−1}, or H_{t−1}·Rhᵀ + Rbh with
    /// `linear_before_reset`).
    struct Run {
        var y: [Float]        // (seq, dirs, batch, hidden)
        var hLast: [Float]    // (dirs, batch, hidden)
        var cLast: [Float]
        var pre: [[Float]] = [], hPrev: [[Float]] = [], cPrev: [[Float]] = [], cNew: [[Float]] = [], rh: [[Float]] = []
    }
}

extension RecurrentOperator.Problem {
    private func clipped(_ v: Float) -> Float {
        guard let c = op.clip else { return v }
        return min(max(v, -c), c)
    }
    private func passes(_ v: Float) -> Float {
        guard let c = op.clip else { return 1 }
        return v >= -c && v <= c ? 1 : 0
    }

    func run(keepingSteps keep: Bool) throws -> RecurrentOperator.Run {
        let H = hidden, GH = gh, B = batch
        var out = RecurrentOperator.Run(y: [Float](repeating: 0, count: seq * dirs * B * H),
                                        hLast: [Float](repeating: 0, count: dirs * B * H),
                                        cLast: [Float](repeating: 0, count: dirs * B * H))
        for d in 0..<dirs {
            let act = op.activations[d]
            let w0 = d * GH * input, r0 = d * GH * H
            // Input projections of every step, with the biases that add to them directly.
            var xw = [Float](repeating: 0, count: seq * B * GH)
            if seq * B > 0 && input > 0 {
                x.withUnsafeBufferPointer { xp in w.withUnsafeBufferPointer { wp in xw.withUnsafeMutableBufferPointer { cp in
                    Kernels.gemm(transB: true, m: seq * B, n: GH, k: input, a: xp.baseAddress!, lda: input,
                                 b: wp.baseAddress! + w0, ldb: input, c: cp.baseAddress!, ldc: GH)
                } } }
            }
            var rbh = [Float](repeating: 0, count: H)   // GRU linear_before_reset: Rbh inside r ⊙ (·)
            if let bias {
                var add = [Float](repeating: 0, count: GH)
                for g in 0..<GH { add[g] = bias[d * 2 * GH + g] + bias[d * 2 * GH + GH + g] }
                if case .gru(true) = op.cell {
                    for j in 0..<H { add[2 * H + j] = bias[d * 2 * GH + 2 * H + j]; rbh[j] = bias[d * 2 * GH + GH + 2 * H + j] }
                }
                for row in 0..<(seq * B) { for g in 0..<GH { xw[row * GH + g] += add[g] } }
            }
            var h = h0.map { Array($0[(d * B * H)..<((d + 1) * B * H)]) } ?? [Float](repeating: 0, count: B * H)
            var c = c0.map { Array($0[(d * B * H)..<((d + 1) * B * H)]) } ?? [Float](repeating: 0, count: B * H)
            var pre = keep ? [Float](repeating: 0, count: seq * B * GH) : []
            var hPrev = keep ? [Float](repeating: 0, count: seq * B * H) : []
            var cPrev = keep && op.isLSTM ? [Float](repeating: 0, count: seq * B * H) : []
            var cNew = cPrev
            var rhKeep = keep && op.gates == 3 ? [Float](repeating: 0, count: seq * B * H) : []
            var rec = [Float](repeating: 0, count: B * GH)
            var rhStep = [Float](repeating: 0, count: B * H), rhRec = [Float](repeating: 0, count: B * H)
            let lbr0: Bool
            if case .gru(false) = op.cell { lbr0 = true } else { lbr0 = false }
            for s in 0..<seq {
                // Recurrent projections for every row (rows past their length are ignored);
                // GRU without linear_before_reset leaves the candidate's block for after r.
                let n = lbr0 ? 2 * H : GH
                if H > 0 && B > 0 {
                    h.withUnsafeBufferPointer { hp in r.withUnsafeBufferPointer { rp in rec.withUnsafeMutableBufferPointer { cp in
                        Kernels.gemm(transB: true, m: B, n: n, k: H, a: hp.baseAddress!, lda: H, b: rp.baseAddress! + r0, ldb: H,
                                     c: cp.baseAddress!, ldc: GH)
                    } } }
                }
                if lbr0 {
                    for b in 0..<B {
                        guard let t = time(s, b, d) else { continue }
                        let xrow = (t * B + b) * GH
                        for j in 0..<H {
                            let rv = act[0](clipped(xw[xrow + H + j] + rec[b * GH + H + j]))
                            rhStep[b * H + j] = rv * h[b * H + j]
                        }
                    }
                    if H > 0 && B > 0 {
                        rhStep.withUnsafeBufferPointer { ap in r.withUnsafeBufferPointer { rp in rhRec.withUnsafeMutableBufferPointer { cp in
                            Kernels.gemm(transB: true, m: B, n: H, k: H, a: ap.baseAddress!, lda: H, b: rp.baseAddress! + r0 + 2 * H * H,
                                         ldb: H, c: cp.baseAddress!, ldc: H)
                        } } }
                    }
                }
                for b in 0..<B {
                    guard let t = time(s, b, d) else { continue }
                    let xrow = (t * B + b) * GH, hrow = b * H, krow = (t * B + b)
                    if keep { for j in 0..<H { hPrev[krow * H + j] = h[hrow + j] } }
                    switch op.cell {
                    case .rnn:
                        for j in 0..<H {
                            let v = xw[xrow + j] + rec[b * GH + j]
                            if keep { pre[krow * GH + j] = v }
                            h[hrow + j] = act[0](clipped(v))
                        }
                    case let .gru(lbr):
                        for j in 0..<H {
                            let vz = xw[xrow + j] + rec[b * GH + j]
                            let vr = xw[xrow + H + j] + rec[b * GH + H + j]
                            let z = act[0](clipped(vz))
                            let vh: Float, keepRh: Float
                            if lbr {
                                let rv = act[0](clipped(vr))
                                let q = rec[b * GH + 2 * H + j] + rbh[j]
                                vh = xw[xrow + 2 * H + j] + rv * q
                                keepRh = q
                            } else {
                                vh = xw[xrow + 2 * H + j] + rhRec[b * H + j]
                                keepRh = rhStep[b * H + j]
                            }
                            if keep {
                                pre[krow * GH + j] = vz; pre[krow * GH + H + j] = vr; pre[krow * GH + 2 * H + j] = vh
                                rhKeep[krow * H + j] = keepRh
                            }
                            let hh = act[1](clipped(vh))
                            h[hrow + j] = (1 - z) * hh + z * h[hrow + j]
                        }
                    case let .lstm(inputForget):
                        for j in 0..<H {
                            let cp = c[hrow + j]
                            let pi = peep.map { $0[d * 3 * H + j] } ?? 0
                            let po = peep.map { $0[d * 3 * H + H + j] } ?? 0
                            let pf = peep.map { $0[d * 3 * H + 2 * H + j] } ?? 0
                            let vi = xw[xrow + j] + rec[b * GH + j] + pi * cp
                            let vf = xw[xrow + 2 * H + j] + rec[b * GH + 2 * H + j] + pf * cp
                            let vc = xw[xrow + 3 * H + j] + rec[b * GH + 3 * H + j]
                            let i = act[0](clipped(vi))
                            let f = inputForget ? 1 - i : act[0](clipped(vf))
                            let cNext = f * cp + i * act[1](clipped(vc))
                            let vo = xw[xrow + H + j] + rec[b * GH + H + j] + po * cNext
                            let o = act[0](clipped(vo))
                            if keep {
                                pre[krow * GH + j] = vi; pre[krow * GH + H + j] = vo
                                pre[krow * GH + 2 * H + j] = vf; pre[krow * GH + 3 * H + j] = vc
                                cPrev[krow * H + j] = cp; cNew[krow * H + j] = cNext
                            }
                            c[hrow + j] = cNext
                            h[hrow + j] = o * act[2](cNext)
                        }
                    }
                    for j in 0..<H { out.y[((t * dirs + d) * B + b) * H + j] = h[hrow + j] }
                }
            }
            for i in 0..<(B * H) { out.hLast[d * B * H + i] = h[i]; out.cLast[d * B * H + i] = c[i] }
            if keep {
                out.pre.append(pre); out.hPrev.append(hPrev); out.cPrev.append(cPrev); out.cNew.append(cNew); out.rh.append(rhKeep)
            }
        }
        return out
    }

    /// Y, Y_h (and Y_c) in the operator's layout.
    func outputs(_ run: RecurrentOperator.Run) throws -> [Tensor] {
        let H = hidden, B = batch
        if !op.batchFirst {
            var outs = [try Tensor(shape: [seq, dirs, B, H], floats: run.y), try Tensor(shape: [dirs, B, H], floats: run.hLast)]
            if op.isLSTM { outs.append(try Tensor(shape: [dirs, B, H], floats: run.cLast)) }
            return outs
        }
        // layout = 1: (batch, seq, dirs, hidden) and (batch, dirs, hidden).
        var outs = [try Tensor(shape: [seq, dirs, B, H], floats: run.y).permuted([2, 0, 1, 3]),
                    try Tensor(shape: [dirs, B, H], floats: run.hLast).permuted([1, 0, 2])]
        if op.isLSTM { outs.append(try Tensor(shape: [dirs, B, H], floats: run.cLast).permuted([1, 0, 2])) }
        return outs
    }
}

extension RecurrentOperator.Problem {
    /// Back-propagation through time over a run kept step by step.
    func backward(_ run: RecurrentOperator.Run, _ ctx: VJPContext) throws -> [Tensor?] {
        let H = hidden, GH = gh, B = batch, label = op.label
        // Output cotangents, time-major like the run (layout = 1 permuted back).
        func grad(_ i: Int, _ perm: [Int]) throws -> [Float]? {
            guard i < ctx.gradOutputs.count, let g = ctx.gradOutputs[i] else { return nil }
            return try (op.batchFirst ? g.permuted(perm) : g).floats(label)
        }
        let gy = try grad(0, [1, 2, 0, 3])
        let gyh = try grad(1, [1, 0, 2])
        let gyc = op.isLSTM ? try grad(2, [1, 0, 2]) : nil

        var gx = [Float](repeating: 0, count: seq * B * input)
        var gw = [Float](repeating: 0, count: dirs * GH * input), gr = [Float](repeating: 0, count: dirs * GH * H)
        var gb = [Float](repeating: 0, count: dirs * 2 * GH), gp = [Float](repeating: 0, count: dirs * 3 * H)
        var gh0 = [Float](repeating: 0, count: dirs * B * H), gc0 = gh0
        for d in 0..<dirs {
            let act = op.activations[d]
            let pre = run.pre[d], hPrev = run.hPrev[d], cPrev = run.cPrev[d], cNew = run.cNew[d], rh = run.rh[d]
            let w0 = d * GH * input, r0 = d * GH * H
            var dh = gyh.map { Array($0[(d * B * H)..<((d + 1) * B * H)]) } ?? [Float](repeating: 0, count: B * H)
            var dc = gyc.map { Array($0[(d * B * H)..<((d + 1) * B * H)]) } ?? [Float](repeating: 0, count: B * H)
            // Cotangents of the gate inputs (X·Wᵀ + biases + recurrent terms) and of the rows of
            // the recurrent products (what R's gradient is made of), by (time, sample).
            var dPre = [Float](repeating: 0, count: seq * B * GH), dRec = dPre
            var stepRec = [Float](repeating: 0, count: B * GH), dhLocal = [Float](repeating: 0, count: B * H)
            var back = [Float](repeating: 0, count: B * H), drh = back
            var lbr0 = false
            if case .gru(false) = op.cell { lbr0 = true }
            for s in stride(from: seq - 1, through: 0, by: -1) {
                for i in 0..<stepRec.count { stepRec[i] = 0 }
                for b in 0..<B {
                    guard let t = time(s, b, d) else { continue }
                    let k = t * B + b
                    if let gy { for j in 0..<H { dh[b * H + j] += gy[((t * dirs + d) * B + b) * H + j] } }
                    for j in 0..<H {
                        let dH = dh[b * H + j]
                        switch op.cell {
                        case .rnn:
                            let v = pre[k * GH + j], xc = clipped(v), y = act[0](xc)
                            let g = dH * act[0].derivative(xc, y) * passes(v)
                            dPre[k * GH + j] = g; dRec[k * GH + j] = g; stepRec[b * GH + j] = g
                            dhLocal[b * H + j] = 0
                        case let .gru(lbr):
                            let vz = pre[k * GH + j], vr = pre[k * GH + H + j], vh = pre[k * GH + 2 * H + j]
                            let hp = hPrev[k * H + j]
                            let z = act[0](clipped(vz)), r = act[0](clipped(vr)), hh = act[1](clipped(vh))
                            let dvz = dH * (hp - hh) * act[0].derivative(clipped(vz), z) * passes(vz)
                            let dvh = dH * (1 - z) * act[1].derivative(clipped(vh), hh) * passes(vh)
                            dhLocal[b * H + j] = dH * z
                            dPre[k * GH + j] = dvz; dRec[k * GH + j] = dvz; stepRec[b * GH + j] = dvz
                            dPre[k * GH + 2 * H + j] = dvh
                            if lbr {
                                let q = rh[k * H + j]
                                let dvr = dvh * q * act[0].derivative(clipped(vr), r) * passes(vr)
                                let dq = dvh * r
                                dPre[k * GH + H + j] = dvr; dRec[k * GH + H + j] = dvr; stepRec[b * GH + H + j] = dvr
                                dRec[k * GH + 2 * H + j] = dq; stepRec[b * GH + 2 * H + j] = dq
                            } else {
                                // r's cotangent needs (dvh·Rh) first: filled in below.
                                dRec[k * GH + 2 * H + j] = dvh; stepRec[b * GH + 2 * H + j] = dvh
                            }
                        case let .lstm(inputForget):
                            let vi = pre[k * GH + j], vo = pre[k * GH + H + j], vf = pre[k * GH + 2 * H + j], vc = pre[k * GH + 3 * H + j]
                            let cp = cPrev[k * H + j], cn = cNew[k * H + j]
                            let pi = peep.map { $0[d * 3 * H + j] } ?? 0
                            let po = peep.map { $0[d * 3 * H + H + j] } ?? 0
                            let pf = peep.map { $0[d * 3 * H + 2 * H + j] } ?? 0
                            let i = act[0](clipped(vi)), o = act[0](clipped(vo)), ct = act[1](clipped(vc))
                            let fg = inputForget ? 1 - i : act[0](clipped(vf))
                            let hc = act[2](cn)
                            let dvo = dH * hc * act[0].derivative(clipped(vo), o) * passes(vo)
                            let dC = dc[b * H + j] + dH * o * act[2].derivative(cn, hc) + dvo * po
                            let dfg = dC * cp
                            var dvf: Float = 0, di = dC * ct
                            if inputForget { di -= dfg } else { dvf = dfg * act[0].derivative(clipped(vf), fg) * passes(vf) }
                            let dvi = di * act[0].derivative(clipped(vi), i) * passes(vi)
                            let dvc = dC * i * act[1].derivative(clipped(vc), ct) * passes(vc)
                            dc[b * H + j] = dC * fg + dvi * pi + dvf * pf
                            dhLocal[b * H + j] = 0
                            for (g, v) in [(0, dvi), (1, dvo), (2, dvf), (3, dvc)] {
                                dPre[k * GH + g * H + j] = v; dRec[k * GH + g * H + j] = v; stepRec[b * GH + g * H + j] = v
                            }
                            if peep != nil {
                                gp[d * 3 * H + j] += dvi * cp; gp[d * 3 * H + H + j] += dvo * cn; gp[d * 3 * H + 2 * H + j] += dvf * cp
                            }
                        }
                    }
                }
                var k = GH
                if lbr0 && H > 0 && B > 0 {
                    // GRU candidate: pre_h = … + (r ⊙ H_{t−1})·Rhᵀ, so d(r ⊙ H_{t−1}) = dvh·Rh.
                    stepRec.withUnsafeBufferPointer { ap in r.withUnsafeBufferPointer { rp in drh.withUnsafeMutableBufferPointer { cp in
                        Kernels.gemm(m: B, n: H, k: H, a: ap.baseAddress! + 2 * H, lda: GH, b: rp.baseAddress! + r0 + 2 * H * H, ldb: H,
                                     c: cp.baseAddress!, ldc: H)
                    } } }
                    for b in 0..<B {
                        guard let t = time(s, b, d) else { continue }
                        let kk = t * B + b
                        for j in 0..<H {
                            let vr = pre[kk * GH + H + j], hp = hPrev[kk * H + j]
                            let r = act[0](clipped(vr))
                            let dvr = drh[b * H + j] * hp * act[0].derivative(clipped(vr), r) * passes(vr)
                            dhLocal[b * H + j] += drh[b * H + j] * r
                            dPre[kk * GH + H + j] = dvr; dRec[kk * GH + H + j] = dvr; stepRec[b * GH + H + j] = dvr
                        }
                    }
                    k = 2 * H   // the candidate's block reached H_{t−1} through r ⊙ H_{t−1} above
                }
                if H > 0 && B > 0 {
                    stepRec.withUnsafeBufferPointer { ap in r.withUnsafeBufferPointer { rp in back.withUnsafeMutableBufferPointer { cp in
                        Kernels.gemm(m: B, n: H, k: k, a: ap.baseAddress!, lda: GH, b: rp.baseAddress! + r0, ldb: H, c: cp.baseAddress!, ldc: H)
                    } } }
                }
                for b in 0..<B where time(s, b, d) != nil {
                    for j in 0..<H { dh[b * H + j] = dhLocal[b * H + j] + back[b * H + j] }
                }
            }
            for i in 0..<(B * H) { gh0[d * B * H + i] = dh[i]; gc0[d * B * H + i] = dc[i] }
            let rows = seq * B
            if rows > 0 && GH > 0 {
                dPre.withUnsafeBufferPointer { dp in
                    w.withUnsafeBufferPointer { wp in gx.withUnsafeMutableBufferPointer { gp in
                        if input > 0 {
                            Kernels.gemm(m: rows, n: input, k: GH, a: dp.baseAddress!, lda: GH, b: wp.baseAddress! + w0, ldb: input,
                                         beta: 1, c: gp.baseAddress!, ldc: input)
                        }
                    } }
                    x.withUnsafeBufferPointer { xp in gw.withUnsafeMutableBufferPointer { gp in
                        if input > 0 {
                            Kernels.gemm(transA: true, m: GH, n: input, k: rows, a: dp.baseAddress!, lda: GH, b: xp.baseAddress!, ldb: input,
                                         c: gp.baseAddress! + w0, ldc: input)
                        }
                    } }
                }
                dRec.withUnsafeBufferPointer { dp in hPrev.withUnsafeBufferPointer { hp in rh.withUnsafeBufferPointer { rhp in
                    gr.withUnsafeMutableBufferPointer { gp in
                        guard H > 0 else { return }
                        // Rows of R against the recurrent input they multiplied: H_{t−1}, or for a
                        // GRU candidate without linear_before_reset r ⊙ H_{t−1}.
                        let plain = lbr0 ? 2 * H : GH
                        Kernels.gemm(transA: true, m: plain, n: H, k: rows, a: dp.baseAddress!, lda: GH, b: hp.baseAddress!, ldb: H,
                                     c: gp.baseAddress! + r0, ldc: H)
                        if lbr0 {
                            Kernels.gemm(transA: true, m: H, n: H, k: rows, a: dp.baseAddress! + 2 * H, lda: GH, b: rhp.baseAddress!, ldb: H,
                                         c: gp.baseAddress! + r0 + 2 * H * H, ldc: H)
                        }
                    }
                } } }
            }
            for row in 0..<rows {
                for g in 0..<GH {
                    gb[d * 2 * GH + g] += dPre[row * GH + g]
                    gb[d * 2 * GH + GH + g] += dRec[row * GH + g]
                }
            }
        }
        func want(_ i: Int) -> Bool { i < ctx.wantInput.count && ctx.wantInput[i] && i < ctx.inputs.count && ctx.inputs[i] != nil }
        var result = [Tensor?](repeating: nil, count: ctx.inputs.count)
        if want(0) {
            let g = try Tensor(shape: [seq, B, input], floats: gx)
            result[0] = op.batchFirst ? try g.permuted([1, 0, 2]) : g
        }
        if want(1) { result[1] = try Tensor(shape: [dirs, GH, input], floats: gw) }
        if want(2) { result[2] = try Tensor(shape: [dirs, GH, H], floats: gr) }
        if want(3) { result[3] = try Tensor(shape: [dirs, 2 * GH], floats: gb) }
        func state(_ v: [Float]) throws -> Tensor {
            let t = try Tensor(shape: [dirs, B, H], floats: v)
            return op.batchFirst ? try t.permuted([1, 0, 2]) : t
        }
        if want(5) { result[5] = try state(gh0) }
        if op.isLSTM {
            if want(6) { result[6] = try state(gc0) }
            if want(7) { result[7] = try Tensor(shape: [dirs, 3 * H], floats: gp) }
        }
        return result
    }
}
