/// Swift SIMD8 exp/sigmoid: the previous element-wise path, now only the scalar reference
/// (`Tensor.floatUnaryScalar`, `Kernels.scalarElementwiseReference`). The engine uses the C
/// kernels of CLoupeVMath.h: Swift SIMD compiles to SSE2 here (no per-function target
/// attributes), and this code was not inlined (17% of efficientnet_b0 batch 16 in simdSigmoid).

/// `eˣ` for eight lanes, within 2 ulp of the correctly rounded result on [-87.3, 88.7].
///
/// Cody–Waite reduction `x = n·ln2 + r` with ln2 split in two parts, the Cephes `expf`
/// polynomial on |r| ≤ ln2/2, and the 2ⁿ scale built in the exponent bits. Results that would be
/// subnormal (x < −87.3) flush to 0; x > 88.72 gives +∞; NaN stays NaN.
@inline(__always)
@usableFromInline
func simdExp(_ x: SIMD8<Float>) -> SIMD8<Float> {
    let hi = SIMD8<Float>(repeating: 88.72283935546875), lo = SIMD8<Float>(repeating: -87.33654022216797)
    var xc = x
    xc.replace(with: hi, where: x .> hi)
    xc.replace(with: lo, where: x .< lo)
    // Round-to-nearest by adding 1.5·2²³: the sum's low mantissa bits then hold n as an
    // integer, which avoids the generic (per-lane, libm) float → int SIMD conversions.
    let magic = SIMD8<Float>(repeating: 12582912)
    let t = xc * 1.44269504088896341 + magic
    let n = t - magic
    var r = xc - n * 0.693359375
    r = r - n * -2.12194440e-4
    let r2 = r * r
    var p = SIMD8<Float>(repeating: 1.9875691500e-4)
    p = p * r + 1.3981999507e-3
    p = p * r + 8.3334519073e-3
    p = p * r + 4.1665795894e-2
    p = p * r + 1.6666665459e-1
    p = p * r + 5.0000001201e-1
    p = p * r2 + r + 1
    // 2ⁿ with n ∈ [-126, 128]: n = 128 needs two steps to avoid an infinite exponent field.
    let ni = unsafeBitCast(t, to: SIMD8<Int32>.self) &- unsafeBitCast(magic, to: SIMD8<Int32>.self)
    let half = ni &>> 1
    let s1 = unsafeBitCast((half &+ 127) &<< 23, to: SIMD8<Float>.self)
    let s2 = unsafeBitCast((ni &- half &+ 127) &<< 23, to: SIMD8<Float>.self)
    var y = p * s1 * s2
    y.replace(with: SIMD8<Float>(repeating: .infinity), where: x .> hi)
    y.replace(with: SIMD8<Float>(repeating: 0), where: x .< lo)
    y.replace(with: x, where: x .!= x)
    return y
}

/// `1 / (1 + e⁻ˣ)` for eight lanes (no cancellation anywhere: e⁻ˣ is accurate to 2 ulp and the
/// remaining operations are a sum of positives and a division).
@inline(__always)
@usableFromInline
func simdSigmoid(_ x: SIMD8<Float>) -> SIMD8<Float> {
    1 / (1 + simdExp(-x))
}

/// `out[i] = f(a[i])` eight lanes at a time; the tail goes through the same vector function
/// (zero-padded), so every element gets identical arithmetic.
@inline(__always)
@usableFromInline
func mapLoopSIMD(_ a: UnsafeBufferPointer<Float>, _ o: UnsafeMutableBufferPointer<Float>, _ f: (SIMD8<Float>) -> SIMD8<Float>) {
    guard let pa = a.baseAddress, let po = o.baseAddress else { return }
    let n = a.count
    var i = 0
    while i + 8 <= n {
        let v = UnsafeRawPointer(pa + i).loadUnaligned(as: SIMD8<Float>.self)
        UnsafeMutableRawPointer(po + i).storeBytes(of: f(v), as: SIMD8<Float>.self)
        i += 8
    }
    if i < n {
        var v = SIMD8<Float>(repeating: 0)
        for k in 0..<(n - i) { v[k] = pa[i + k] }
        let r = f(v)
        for k in 0..<(n - i) { po[i + k] = r[k] }
    }
}
