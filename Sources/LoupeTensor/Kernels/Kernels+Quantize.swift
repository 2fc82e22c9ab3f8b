import CLoupeKernels

extension Kernels {
    /// The value of a QuantizeLinear → DequantizeLinear pair over `count` floats:
    /// `y = (clamp(rint(x / scale) + zeroPoint, lo, hi) − zeroPoint) · scale`, rounding half to even,
    /// NaN → 0 (it quantizes to the zero point). `lo`/`hi`: the integer type's range. Vectorised,
    /// split over the pool for large counts; the same IEEE operations in the same order on every path.
    public static func fakeQuantize(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int,
                                    scale: Float, zeroPoint: Float, lo: Float, hi: Float) {
        loupe_fake_quantize(x, y, count, scale, zeroPoint, lo, hi)
    }

    /// The straight-through gradient of ``fakeQuantize(_:_:count:scale:zeroPoint:lo:hi:)`` (PyTorch's
    /// fake-quantize backward): `gx = g` where `lo ≤ rint(x / scale) + zeroPoint ≤ hi`, else 0.
    public static func fakeQuantizeGradient(_ x: UnsafePointer<Float>, _ g: UnsafePointer<Float>, _ gx: UnsafeMutablePointer<Float>,
                                            count: Int, scale: Float, zeroPoint: Float, lo: Float, hi: Float) {
        loupe_fake_quantize_grad(x, g, gx, count, scale, zeroPoint, lo, hi)
    }
}
