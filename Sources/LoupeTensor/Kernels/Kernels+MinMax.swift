import CLoupeKernels

extension Kernels {
    /// y = (x − min x) / (max(x − min x) + epsilon) over `count` floats (x and y may be the same
    /// buffer): the min-max scaling of a heat map, with the same IEEE operations as the plain
    /// loops (subtract, then divide) — eight interleaved accumulators for the extrema and the
    /// vector kernels for the element-wise steps, about a tenth of the single-chain loops' time.
    public static func minMaxScale(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count n: Int,
                                   epsilon: Float) {
        guard n > 0 else { return }
        var lo = extremum(x, n, Swift.min, .infinity)
        loupe_vbinary(Int32(LOUPE_VB_SUB.rawValue), x, 0, 1, &lo, 0, 0, y, 1, n)
        var d = epsilon + extremum(UnsafePointer(y), n, Swift.max, -.infinity)
        loupe_vbinary(Int32(LOUPE_VB_DIV.rawValue), y, 0, 1, &d, 0, 0, y, 1, n)
    }

    /// min or max of x[0..<n] over eight interleaved accumulators (no single dependency chain).
    @inline(__always)
    static func extremum(_ x: UnsafePointer<Float>, _ n: Int, _ pick: (Float, Float) -> Float, _ start: Float) -> Float {
        var a = (start, start, start, start, start, start, start, start)
        var i = 0
        while i + 8 <= n {
            a.0 = pick(a.0, x[i]); a.1 = pick(a.1, x[i + 1]); a.2 = pick(a.2, x[i + 2]); a.3 = pick(a.3, x[i + 3])
            a.4 = pick(a.4, x[i + 4]); a.5 = pick(a.5, x[i + 5]); a.6 = pick(a.6, x[i + 6]); a.7 = pick(a.7, x[i + 7])
            i += 8
        }
        var r = pick(pick(pick(a.0, a.1), pick(a.2, a.3)), pick(pick(a.4, a.5), pick(a.6, a.7)))
        while i < n { r = pick(r, x[i]); i += 1 }
        return r
    }
}
