import CLoupeKernels

extension Kernels {
    /// y = (x − min x) / (max(x − min x) + epsilon) over `count` floats (x and y may be the same
    /// buffer): the min-max scaling of a heat map, with the same IEEE operations as the plain
    /// loops (subtract, then divide) — vector kernels for the extrema (16 interleaved lanes) and
    /// for the element-wise steps.
    public static func minMaxScale(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count n: Int,
                                   epsilon: Float) {
        guard n > 0 else { return }
        scale(x, y, count: n, minimum: loupe_vextremum(x, n, 0), maximum: loupe_vextremum(x, n, 1), epsilon: epsilon)
    }

    /// y = (x − lo) / ((hi − lo) + epsilon) for x's known extrema lo, hi: ``minMaxScale(_:_:count:epsilon:)``
    /// without its two reductions. Rounding is monotone, so hi − lo is exactly max(x − lo).
    public static func scale(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count n: Int,
                             minimum lo: Float, maximum hi: Float, epsilon: Float) {
        guard n > 0 else { return }
        // One pass, subtract then divide per element: the same roundings as two passes.
        loupe_vunary(Int32(LOUPE_VU_SHIFT_DIVIDE.rawValue), x, y, n, lo, epsilon + (hi - lo))
    }
}
