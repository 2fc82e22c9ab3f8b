import Foundation

/// Softmax and mean/variance normalisation kernels over a (outer, d, inner) view of a buffer:
/// the reduced axis has length `d` and stride `inner`.
extension Kernels {
    /// Softmax (or log-softmax) over the middle axis of an (outer, d, inner) layout, max-shifted
    /// for stability. `x` and `y` may not alias.
    public static func softmax(_ x: UnsafeBufferPointer<Float>, _ y: UnsafeMutableBufferPointer<Float>,
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
    /// of `d` elements.
    public static func rowMoments(_ x: UnsafeBufferPointer<Float>, rows: Int, d: Int, epsilon: Float) -> (mean: [Float], invStd: [Float]) {
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
