import CLoupeKernels
import Foundation

/// Softmax and mean/variance normalisation kernels over a (outer, d, inner) view of a buffer:
/// the reduced axis has length `d` and stride `inner`.
extension Kernels {
    /// Softmax (or log-softmax) over the middle axis of an (outer, d, inner) layout, max-shifted
    /// for stability. `x` and `y` may not alias. Vectorised along the axis when it is the last
    /// one (inner = 1), across `inner` otherwise; large inputs run on the pool.
    public static func softmax(_ x: UnsafeBufferPointer<Float>, _ y: UnsafeMutableBufferPointer<Float>,
                               outer: Int, d: Int, inner: Int, log: Bool) {
        precondition(x.count == outer * d * inner && y.count == x.count, "softmax: buffer sizes")
        if scalarElementwiseReference { return softmaxScalar(x, y, outer: outer, d: d, inner: inner, log: log) }
        loupe_softmax(x.baseAddress, y.baseAddress, outer, d, inner, log ? 1 : 0)
    }

    /// The previous per-element implementation (libm exp, strided loops), kept as the A/B and
    /// test reference for ``softmax(_:_:outer:d:inner:log:)``.
    static func softmaxScalar(_ x: UnsafeBufferPointer<Float>, _ y: UnsafeMutableBufferPointer<Float>,
                              outer: Int, d: Int, inner: Int, log: Bool) {
        precondition(x.count == outer * d * inner && y.count == x.count, "softmax: buffer sizes")
        // Large inputs: split the outer rows over the pool (rows are independent).
        let chunks = min(outer, x.count >= 1 << 16 ? 4 * threads : 1)
        if chunks > 1 {
            let per = (outer + chunks - 1) / chunks
            parallelFor(chunks) { t in
                let lo = t * per, hi = min(outer, lo + per)
                guard lo < hi else { return }
                let n = d * inner
                softmaxRows(UnsafeBufferPointer(rebasing: x[(lo * n)..<(hi * n)]),
                            UnsafeMutableBufferPointer(rebasing: y[(lo * n)..<(hi * n)]), outer: hi - lo, d: d, inner: inner, log: log)
            }
            return
        }
        softmaxRows(x, y, outer: outer, d: d, inner: inner, log: log)
    }

    private static func softmaxRows(_ x: UnsafeBufferPointer<Float>, _ y: UnsafeMutableBufferPointer<Float>,
                                    outer: Int, d: Int, inner: Int, log: Bool) {
        for o in 0..<outer {
            for i in 0..<inner {
                let base = o * d * inner + i
                var m = -Float.infinity
                for k in 0..<d { m = max(m, x[base + k * inner]) }
                if m == -.infinity { m = 0 } // an all -inf row gives NaN (0/0) as in PyTorch for softmax
                var s: Float = 0
                for k in 0..<d {
                    let e = Foundation.exp(x[base + k * inner] - m)
                    y[base + k * inner] = e
                    s += e
                }
                if log {
                    let ls = Foundation.log(s) + m
                    for k in 0..<d { y[base + k * inner] = x[base + k * inner] - ls }
                } else {
                    let r = 1 / s
                    for k in 0..<d { y[base + k * inner] *= r }
                }
            }
        }
    }

    /// VJP of ``softmax(_:_:outer:d:inner:log:)`` from its output `y`: softmax gives
    /// y·(g − Σ g·y), log-softmax gives g − exp(y)·Σ g.
    public static func softmaxBackward(_ y: UnsafeBufferPointer<Float>, _ g: UnsafeBufferPointer<Float>,
                                       _ gx: UnsafeMutableBufferPointer<Float>, outer: Int, d: Int, inner: Int, log: Bool) {
        precondition(y.count == outer * d * inner && g.count == y.count && gx.count == y.count, "softmaxBackward: buffer sizes")
        if scalarElementwiseReference { return softmaxBackwardScalar(y, g, gx, outer: outer, d: d, inner: inner, log: log) }
        loupe_softmax_backward(y.baseAddress, g.baseAddress, gx.baseAddress, outer, d, inner, log ? 1 : 0)
    }

    /// Per-element reference of ``softmaxBackward(_:_:_:outer:d:inner:log:)``.
    static func softmaxBackwardScalar(_ y: UnsafeBufferPointer<Float>, _ g: UnsafeBufferPointer<Float>,
                                      _ gx: UnsafeMutableBufferPointer<Float>, outer: Int, d: Int, inner: Int, log: Bool) {
        for o in 0..<outer {
            for i in 0..<inner {
                let base = o * d * inner + i
                var s: Float = 0
                if log {
                    for k in 0..<d { s += g[base + k * inner] }
                    for k in 0..<d { let j = base + k * inner; gx[j] = g[j] - Foundation.exp(y[j]) * s }
                } else {
                    for k in 0..<d { let j = base + k * inner; s += g[j] * y[j] }
                    for k in 0..<d { let j = base + k * inner; gx[j] = y[j] * (g[j] - s) }
                }
            }
        }
    }

    /// Mean and 1/sqrt(variance + epsilon) (biased variance, two passes) of each contiguous row
    /// of `d` elements: the same values ``normalizeRows(_:_:rows:d:epsilon:scale:scaleRow:scaleInner:bias:biasRow:biasInner:mean:invStd:)``
    /// normalises with.
    public static func rowMoments(_ x: UnsafeBufferPointer<Float>, rows: Int, d: Int, epsilon: Float) -> (mean: [Float], invStd: [Float]) {
        precondition(x.count == rows * d, "rowMoments: buffer size")
        var mean = [Float](repeating: 0, count: rows), inv = [Float](repeating: 0, count: rows)
        guard d > 0, !scalarElementwiseReference else { return rowMomentsScalar(x, rows: rows, d: d, epsilon: epsilon) }
        mean.withUnsafeMutableBufferPointer { m in inv.withUnsafeMutableBufferPointer { r in
            loupe_normalize_rows(x.baseAddress, nil, rows, d, epsilon, nil, 0, 0, nil, 0, 0, m.baseAddress, r.baseAddress)
        } }
        return (mean, inv)
    }

    /// y = (x − μ)·r·scale + bias over `rows` contiguous rows of `d` elements, r = 1/√(var + ε)
    /// (biased variance). Element k of row `row` uses `scale[row·scaleRow + k·scaleInner]`
    /// (strides 0 broadcast; bias likewise, nil = 0). `mean`/`invStd` (rows elements) receive μ
    /// and r when given. Vectorised per row, rows spread over the pool when large.
    public static func normalizeRows(_ x: UnsafeBufferPointer<Float>, _ y: UnsafeMutableBufferPointer<Float>, rows: Int, d: Int,
                                     epsilon: Float, scale: UnsafeBufferPointer<Float>, scaleRow: Int, scaleInner: Int,
                                     bias: UnsafeBufferPointer<Float>?, biasRow: Int, biasInner: Int,
                                     mean: UnsafeMutableBufferPointer<Float>?, invStd: UnsafeMutableBufferPointer<Float>?) {
        precondition(x.count == rows * d && y.count == x.count, "normalizeRows: buffer sizes")
        precondition(rows == 0 || d == 0 || scale.count > (rows - 1) * scaleRow + (d - 1) * scaleInner, "normalizeRows: scale too short")
        precondition(bias.map { rows == 0 || d == 0 || $0.count > (rows - 1) * biasRow + (d - 1) * biasInner } ?? true, "normalizeRows: bias too short")
        precondition((mean?.count ?? rows) >= rows && (invStd?.count ?? rows) >= rows, "normalizeRows: statistics buffers")
        if scalarElementwiseReference {
            // The previous operator code: Double moments, then one scalar pass.
            let (m, r) = rowMomentsScalar(x, rows: rows, d: d, epsilon: epsilon)
            for row in 0..<rows {
                for k in 0..<d {
                    let b = bias.map { $0[row * biasRow + k * biasInner] } ?? 0
                    y[row * d + k] = (x[row * d + k] - m[row]) * r[row] * scale[row * scaleRow + k * scaleInner] + b
                }
                mean?[row] = m[row]
                invStd?[row] = r[row]
            }
            return
        }
        loupe_normalize_rows(x.baseAddress, y.baseAddress, rows, d, epsilon, scale.baseAddress, scaleRow, scaleInner,
                             bias?.baseAddress, biasRow, biasInner, mean?.baseAddress, invStd?.baseAddress)
    }

    /// Row moments in Double (the previous implementation), kept as the test reference.
    static func rowMomentsScalar(_ x: UnsafeBufferPointer<Float>, rows: Int, d: Int, epsilon: Float) -> (mean: [Float], invStd: [Float]) {
        var mean = [Float](repeating: 0, count: rows), inv = [Float](repeating: 0, count: rows)
        for r in 0..<rows {
            let base = r * d
            var s: Double = 0
            for k in 0..<d { s += Double(x[base + k]) }
            let mu = s / Double(d)
            var v: Double = 0
            for k in 0..<d { let t = Double(x[base + k]) - mu; v += t * t }
            mean[r] = Float(mu)
            inv[r] = Float(1 / (v / Double(d) + Double(epsilon)).squareRoot())
        }
        return (mean, inv)
    }

    /// Backward of ``normalizeRows(_:_:rows:d:epsilon:scale:scaleRow:scaleInner:bias:biasRow:biasInner:mean:invStd:)``
    /// with per-element scale (`scaleInner` 1, or 0 for one shared value) and no per-row scale:
    /// gx of every row (including the cotangents `gradMean`/`gradInvStd` of the statistics,
    /// one per row, when given), and when `gScale`/`gBias` (d elements) are given, Σ_rows g·x̂
    /// and Σ_rows g added into them. Rows run on the pool when large (each task accumulates
    /// its own partial sums, added in task order, so results do not depend on timing).
    public static func normalizeRowsBackward(x: UnsafeBufferPointer<Float>, grad g: UnsafeBufferPointer<Float>, rows: Int, d: Int,
                                             mean: [Float], invStd: [Float], scale: UnsafeBufferPointer<Float>, scaleInner: Int,
                                             gradMean: [Float]?, gradInvStd: [Float]?, gx: UnsafeMutableBufferPointer<Float>,
                                             gScale: UnsafeMutableBufferPointer<Float>?, gBias: UnsafeMutableBufferPointer<Float>?) {
        precondition(x.count == rows * d && g.count == x.count && gx.count == x.count, "normalizeRowsBackward: buffer sizes")
        precondition(mean.count >= rows && invStd.count >= rows && scale.count > (d - 1) * scaleInner, "normalizeRowsBackward: parameters")
        precondition((gradMean?.count ?? rows) >= rows && (gradInvStd?.count ?? rows) >= rows, "normalizeRowsBackward: statistics cotangents")
        precondition((gScale?.count ?? d) >= d && (gBias?.count ?? d) >= d, "normalizeRowsBackward: accumulators")
        guard rows > 0, d > 0, let x0 = x.baseAddress, let g0 = g.baseAddress, let gx0 = gx.baseAddress else { return }
        if scalarElementwiseReference {
            // The previous operator code: ĝ = g·s per row, scalar sums, normalizeRowBackward.
            var gh = [Float](repeating: 0, count: d)
            gh.withUnsafeMutableBufferPointer { ghb in
                guard let gh0 = ghb.baseAddress else { return }
                for r in 0..<rows {
                    for k in 0..<d {
                        let gv = g[r * d + k]
                        ghb[k] = gv * scale[k * scaleInner]
                        gScale?[k] += gv * (x[r * d + k] - mean[r]) * invStd[r]
                        gBias?[k] += gv
                    }
                    normalizeRowBackward(x: x0 + r * d, gxhat: UnsafePointer(gh0), d: d, mean: mean[r], invStd: invStd[r],
                                         gradMean: gradMean?[r] ?? 0, gradInvStd: gradInvStd?[r] ?? 0, into: gx0 + r * d)
                }
            }
            return
        }
        let tasks = x.count >= 1 << 18 ? min(rows, 2 * threads) : 1
        let per = (rows + tasks - 1) / tasks
        let wantScale = gScale != nil, wantBias = gBias != nil
        // Per-task accumulators: [gScale(d) | gBias(d)] each.
        var partial = [Float](repeating: 0, count: tasks * 2 * d)
        partial.withUnsafeMutableBufferPointer { acc in
            guard let acc0 = acc.baseAddress else { return }
            let body = { (t: Int) in
                let lo = t * per, hi = min(rows, lo + per)
                guard lo < hi else { return }
                let sAcc = wantScale ? acc0 + t * 2 * d : nil, bAcc = wantBias ? acc0 + t * 2 * d + d : nil
                for r in lo..<hi {
                    loupe_normalize_row_backward(x0 + r * d, g0 + r * d, d, mean[r], invStd[r], scale.baseAddress, scaleInner,
                                                 gradMean?[r] ?? 0, gradInvStd?[r] ?? 0, gx0 + r * d, sAcc, bAcc, nil)
                }
            }
            if tasks > 1 { parallelFor(tasks, body) } else { body(0) }
            for t in 0..<tasks {
                if let gs = gScale { for k in 0..<d { gs[k] += acc0[t * 2 * d + k] } }
                if let gb = gBias { for k in 0..<d { gb[k] += acc0[t * 2 * d + d + k] } }
            }
        }
    }

    /// Backward of one row with a single scale value, for InstanceNormalization: gx of the row
    /// and (Σ g, Σ g·x̂) for the channel's scale and bias gradients.
    public static func normalizeRowBackward(x: UnsafePointer<Float>, grad g: UnsafePointer<Float>, d: Int, mean: Float,
                                            invStd: Float, scale: Float, into gx: UnsafeMutablePointer<Float>) -> (sumGrad: Float, sumGradXHat: Float) {
        var s = scale
        var sums: (Float, Float) = (0, 0)
        withUnsafeMutablePointer(to: &sums) { sp in
            sp.withMemoryRebound(to: Float.self, capacity: 2) { p in
                loupe_normalize_row_backward(x, g, d, mean, invStd, &s, 0, 0, 0, gx, nil, nil, p)
            }
        }
        return sums
    }

    /// Input gradient of y = (x − μ)·r over one row given dL/dy (`gxhat`, already multiplied by
    /// any scale), plus optional cotangents of μ and r themselves:
    /// gx = r·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)) + gμ/d − gr·r²·x̂/d.
    public static func normalizeRowBackward(x: UnsafePointer<Float>, gxhat: UnsafePointer<Float>, d: Int, mean: Float,
                                            invStd r: Float, gradMean: Float, gradInvStd: Float,
                                            into gx: UnsafeMutablePointer<Float>) {
        var sg: Float = 0, sgx: Float = 0
        for k in 0..<d {
            let xh = (x[k] - mean) * r
            sg += gxhat[k]
            sgx += gxhat[k] * xh
        }
        let n = Float(d)
        let mg = sg / n, mgx = sgx / n
        for k in 0..<d {
            let xh = (x[k] - mean) * r
            gx[k] = r * (gxhat[k] - mg - xh * mgx) + gradMean / n - gradInvStd * r * r * xh / n
        }
    }
}

extension Kernels {
    /// y = a[c]·x + b[c] for every element of channel c of an (N, C, plane) layout — inference
    /// BatchNormalization after folding mean, variance, scale and bias into a and b. Large inputs
    /// are split over the pool by (image, channel) plane.
    public static func channelAffine(_ x: UnsafeBufferPointer<Float>, _ y: UnsafeMutableBufferPointer<Float>,
                                     a: [Float], b: [Float], n: Int, plane: Int) {
        let c = a.count
        precondition(b.count == c && x.count == n * c * plane && y.count == x.count, "channelAffine: sizes")
        guard let x0 = x.baseAddress, let y0 = y.baseAddress else { return }
        let planes = n * c
        a.withUnsafeBufferPointer { ab in b.withUnsafeBufferPointer { bb in
            let body: (Int) -> Void = { t in
                let av = ab[t % c], bv = bb[t % c]
                let src = x0 + t * plane, dst = y0 + t * plane
                for i in 0..<plane { dst[i] = av * src[i] + bv }
            }
            if x.count >= 1 << 16 { parallelFor(planes, body) } else { for t in 0..<planes { body(t) } }
        } }
    }
}
