/// Slow, obviously-correct twins of the fast kernels in ``Kernels``: direct loops straight from
/// the definitions, accumulating in Double. Tests compare the fast paths against these; nothing
/// else should call them.
public enum ReferenceKernels {
    /// `C = alpha · op(A) · op(B) + beta · C` by the triple loop (beta == 0 ignores C).
    public static func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: [Float], lda: Int,
                            b: [Float], ldb: Int, beta: Float, c: inout [Float], ldc: Int) {
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for p in 0..<k {
                    let av = transA ? a[p * lda + i] : a[i * lda + p]
                    let bv = transB ? b[j * ldb + p] : b[p * ldb + j]
                    s += Double(av) * Double(bv)
                }
                let old = beta == 0 ? 0 : Double(beta) * Double(c[i * ldc + j])
                c[i * ldc + j] = Float(Double(alpha) * s + old)
            }
        }
    }

    /// The input coordinate a window tap reads, or nil when it falls in the padding.
    static func tap(_ o: Int, _ k: Int, stride: Int, dilation: Int, pad: Int, size: Int) -> Int? {
        let i = o * stride - pad + k * dilation
        return i >= 0 && i < size ? i : nil
    }

    /// Direct convolution: y[n,m,oh,ow] = b[m] + Σ_{c in group, kh, kw} w[m,c,kh,kw] · x[n,c,ih,iw].
    public static func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, geometry p: ConvGeometry) throws -> Tensor {
        let s = try Kernels.convShapes(input: x.shape, weight: weight.shape, geometry: p, op: "Conv")
        let X = try x.floats(), W = try weight.floats(), B = try bias?.floats()
        var Y = [Float](repeating: 0, count: s.n * s.m * s.oh * s.ow)
        for n in 0..<s.n { for m in 0..<s.m {
            let grp = m / s.mg
            for oh in 0..<s.oh { for ow in 0..<s.ow {
                var acc = Double(B?[m] ?? 0)
                for cl in 0..<s.cg { for kh in 0..<p.kernelH { for kw in 0..<p.kernelW {
                    guard let ih = tap(oh, kh, stride: p.strideH, dilation: p.dilationH, pad: p.padTop, size: s.h),
                          let iw = tap(ow, kw, stride: p.strideW, dilation: p.dilationW, pad: p.padLeft, size: s.w) else { continue }
                    let c = grp * s.cg + cl
                    acc += Double(W[((m * s.cg + cl) * p.kernelH + kh) * p.kernelW + kw]) * Double(X[((n * s.c + c) * s.h + ih) * s.w + iw])
                } } }
                Y[((n * s.m + m) * s.oh + oh) * s.ow + ow] = Float(acc)
            } }
        } }
        return try Tensor(shape: [s.n, s.m, s.oh, s.ow], floats: Y)
    }

    /// Both convolution adjoints by scattering every multiply-add of the forward loop.
    public static func conv2dBackward(_ gradOutput: Tensor, input x: Tensor, weight: Tensor,
                                      geometry p: ConvGeometry) throws -> (input: Tensor, weight: Tensor) {
        let s = try Kernels.convShapes(input: x.shape, weight: weight.shape, geometry: p, op: "Conv")
        let X = try x.floats(), W = try weight.floats(), GY = try gradOutput.floats()
        var GX = [Double](repeating: 0, count: X.count), GW = [Double](repeating: 0, count: W.count)
        for n in 0..<s.n { for m in 0..<s.m {
            let grp = m / s.mg
            for oh in 0..<s.oh { for ow in 0..<s.ow {
                let g = Double(GY[((n * s.m + m) * s.oh + oh) * s.ow + ow])
                for cl in 0..<s.cg { for kh in 0..<p.kernelH { for kw in 0..<p.kernelW {
                    guard let ih = tap(oh, kh, stride: p.strideH, dilation: p.dilationH, pad: p.padTop, size: s.h),
                          let iw = tap(ow, kw, stride: p.strideW, dilation: p.dilationW, pad: p.padLeft, size: s.w) else { continue }
                    let xi = ((n * s.c + grp * s.cg + cl) * s.h + ih) * s.w + iw
                    let wi = ((m * s.cg + cl) * p.kernelH + kh) * p.kernelW + kw
                    GX[xi] += g * Double(W[wi])
                    GW[wi] += g * Double(X[xi])
                } } }
            } }
        } }
        return (try Tensor(shape: x.shape, floats: GX.map { Float($0) }), try Tensor(shape: weight.shape, floats: GW.map { Float($0) }))
    }

    /// Direct transposed convolution: every input element scatters w · x into the output.
    public static func convTranspose2d(_ x: Tensor, weight: Tensor, bias: Tensor?, geometry p: ConvGeometry,
                                       outputSize: (Int, Int)) throws -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let g = p.groups, cg = c / g, mg = weight.shape[1], m = mg * g
        let (oh, ow) = outputSize
        let X = try x.floats(), W = try weight.floats(), B = try bias?.floats()
        var Y = [Double](repeating: 0, count: n * m * oh * ow)
        for b in 0..<n { for ci in 0..<c {
            let grp = ci / cg
            for ih in 0..<h { for iw in 0..<w {
                let xv = Double(X[((b * c + ci) * h + ih) * w + iw])
                for ml in 0..<mg { for kh in 0..<p.kernelH { for kw in 0..<p.kernelW {
                    let y = ih * p.strideH - p.padTop + kh * p.dilationH
                    let xo = iw * p.strideW - p.padLeft + kw * p.dilationW
                    guard y >= 0, y < oh, xo >= 0, xo < ow else { continue }
                    let mo = grp * mg + ml
                    Y[((b * m + mo) * oh + y) * ow + xo] += xv * Double(W[((ci * mg + ml) * p.kernelH + kh) * p.kernelW + kw])
                } } }
            } }
        } }
        if let B { for i in 0..<Y.count { Y[i] += Double(B[(i / (oh * ow)) % m]) } }
        return try Tensor(shape: [n, m, oh, ow], floats: Y.map { Float($0) })
    }

    /// Direct max (`average == false`) or average pooling.
    public static func pool2d(_ x: Tensor, geometry p: ConvGeometry, ceilMode: Bool, average: Bool,
                              countIncludePad: Bool) throws -> Tensor {
        let s = try Kernels.poolShapes(x.shape, p, ceilMode: ceilMode, op: "Pool")
        let X = try x.floats()
        var Y = [Float](repeating: 0, count: s.planes * s.oh * s.ow)
        for t in 0..<s.planes { for oh in 0..<s.oh { for ow in 0..<s.ow {
            var best = -Float.infinity, sum = 0.0, inside = 0, padded = 0
            for kh in 0..<p.kernelH { for kw in 0..<p.kernelW {
                let ih = oh * p.strideH - p.padTop + kh * p.dilationH
                let iw = ow * p.strideW - p.padLeft + kw * p.dilationW
                if ih >= -p.padTop && ih < s.h + p.padBottom && iw >= -p.padLeft && iw < s.w + p.padRight { padded += 1 }
                guard ih >= 0, ih < s.h, iw >= 0, iw < s.w else { continue }
                inside += 1
                let v = X[(t * s.h + ih) * s.w + iw]
                best = max(best, v)
                sum += Double(v)
            } }
            let divisor = countIncludePad ? padded : inside
            Y[(t * s.oh + oh) * s.ow + ow] = average ? Float(sum / Double(max(divisor, 1))) : best
        } } }
        return try Tensor(shape: [x.shape[0], x.shape[1], s.oh, s.ow], floats: Y)
    }
}
