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

    /// ONNX DynamicQuantizeLinear's uint8 parameters for `count` floats: `scale = (max(0, max x) −
    /// min(0, min x)) / 255` and `zeroPoint = clamp(rint(−min(0, min x) / scale), 0, 255)`; scale 0
    /// when x is all zeros (the extrema by the vectorised reductions, NaN ignored as Swift's min/max).
    public static func dynamicQuantization(_ x: UnsafePointer<Float>, count: Int) -> (scale: Float, zeroPoint: Float) {
        guard count > 0 else { return (0, 0) }
        let lo = Swift.min(0, loupe_vextremum(x, count, 0)), hi = Swift.max(0, loupe_vextremum(x, count, 1))
        let scale = (hi - lo) / 255
        guard scale > 0, scale.isFinite else { return (0, 0) }
        return (scale, Swift.min(Swift.max((0 - lo / scale).rounded(.toNearestOrEven), 0), 255))
    }

    /// `clamp(rint(x / scale) + zeroPoint, lo, hi) − zeroPoint` as floats (NaN → 0): the quantized
    /// values shifted by their zero point, the operand of an integer product, in one vectorised pass.
    public static func quantizeShifted(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int,
                                       scale: Float, zeroPoint: Float, lo: Float, hi: Float) {
        loupe_quantize_shifted(x, y, count, scale, zeroPoint, lo, hi)
    }

    /// The straight-through gradient of ``fakeQuantize(_:_:count:scale:zeroPoint:lo:hi:)`` (PyTorch's
    /// fake-quantize backward): `gx = g` where `lo ≤ rint(x / scale) + zeroPoint ≤ hi`, else 0.
    public static func fakeQuantizeGradient(_ x: UnsafePointer<Float>, _ g: UnsafePointer<Float>, _ gx: UnsafeMutablePointer<Float>,
                                            count: Int, scale: Float, zeroPoint: Float, lo: Float, hi: Float) {
        loupe_fake_quantize_grad(x, g, gx, count, scale, zeroPoint, lo, hi)
    }
}
