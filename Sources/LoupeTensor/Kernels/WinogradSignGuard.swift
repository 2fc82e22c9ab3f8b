import CLoupeKernels

/// The signs of a Winograd convolution's outputs, made exact where its rounding could flip them.
///
/// A forward pass recorded for a gradient decides every ReLU mask of the backward pass from the
/// sign of a pre-activation. Winograd F(4×4, 3×3) rounds about 4× more than a direct sum, so
/// pre-activations within that error of zero could take the other side (docs/kernels.md). The
/// guard bounds each output's Winograd error from cheap magnitudes, and the elements of the
/// pre-activation whose value lies within that bound of zero are recomputed exactly (a float64
/// direct sum): every other sign is already certain. The masks then equal those of the exact
/// convolution, while the bulk of the work keeps Winograd's speed.
///
/// The bound for an output of tile t (4×4 outputs, reading a 6×6 input patch) in channel m is
/// `κ · ε · (Σ_c ‖w_mc‖₁ · max_patch |x_c| + |b_m|)`: the direct sum's magnitude Σ|w||x| bounded
/// from above per tile, times Winograd's measured error amplification κ with a wide margin
/// (``amplification``). The column of maxima costs one pass over the input and an M × C × tiles
/// product, 1/144 of the direct convolution's work.
public struct WinogradSignGuard: @unchecked Sendable {
    /// κ. The worst |Winograd − exact| / (ε · Σ_c ‖w_mc‖₁ · max_patch |x_c|) seen on uniform,
    /// post-ReLU and heavy-tailed inputs of 16 to 512 channels was about 15 (ε = 2⁻²⁴); 128 keeps
    /// a margin of 8 over it (WinogradSignGuardTests). A rigorous worst case would be about 60×
    /// larger (the transforms' absolute row sums, 29.3² for F(4×4, 3×3), times the rounding
    /// steps) and would flag some 3 % of resnet18's outputs instead of 0.01–0.05 %.
    static let amplification: Double = 128

    let x: [Float]
    let weight: [Float]
    let bias: [Float]?
    let n: Int, c: Int, h: Int, w: Int, m: Int, oh: Int, ow: Int
    let padTop: Int, padLeft: Int
    let tilesH: Int, tilesW: Int
    /// (M, N, tilesH, tilesW): the bound on |Winograd − exact| of every output of a tile.
    let tolerance: [Float]
    /// The Winograd output the bound is about (before any activation), (N, M, oh, ow).
    let winograd: [Float]

    /// The guard of `y` = Winograd convolution of `x` (N, C, H, W) with 3×3 `weight` (M, C, 3, 3),
    /// stride 1, pads `padTop`/`padLeft` (the others follow from the output size).
    init(x: [Float], weight: [Float], bias: [Float]?, shapes s: Kernels.ConvShapes, padTop: Int, padLeft: Int, winograd y: [Float]) {
        self.x = x
        self.weight = weight
        self.bias = bias
        (n, c, h, w, m, oh, ow) = (s.n, s.c, s.h, s.w, s.m, s.oh, s.ow)
        self.padTop = padTop
        self.padLeft = padLeft
        tilesH = (s.oh + 3) / 4
        tilesW = (s.ow + 3) / 4
        winograd = y
        tolerance = Self.tolerances(x: x, weight: weight, bias: bias, s, padTop: padTop, padLeft: padLeft,
                                    tilesH: tilesH, tilesW: tilesW)
    }

    private static func tolerances(x: [Float], weight: [Float], bias: [Float]?, _ s: Kernels.ConvShapes,
                                   padTop: Int, padLeft: Int, tilesH: Int, tilesW: Int) -> [Float] {
        let tiles = tilesH * tilesW, cols = s.n * tiles
        // patchMax (C, N·tiles): max |x| over each tile's 6×6 input patch (zero padding counts 0).
        var patchMax = [Float](repeating: 0, count: s.c * cols)
        x.withUnsafeBufferPointer { xb in patchMax.withUnsafeMutableBufferPointer { pb in
            guard let x0 = xb.baseAddress, let p0 = pb.baseAddress else { return }
            let planes = s.n * s.c, tasks = min(planes, 8 * Kernels.threads)
            Kernels.parallelFor(tasks) { task in
                withUnsafeTemporaryAllocation(of: Float.self, capacity: s.w) { scratch in
                    guard let cm = scratch.baseAddress else { return }
                    for plane in (planes * task / tasks)..<(planes * (task + 1) / tasks) {
                        let img = plane / s.c, ch = plane % s.c
                        loupe_sign_guard_patch_max(x0 + plane * s.h * s.w, s.h, s.w, padTop, padLeft,
                                                   tilesH, tilesW, cm, p0 + ch * cols + img * tiles)
                    }
                }
            }
        } }
        // ‖w_mc‖₁ (M × C), scaled by κ·ε so the product below is the tolerance itself.
        let scale = Float(amplification * 0x1p-24)
        var wAbs = [Float](repeating: 0, count: s.m * s.c)
        for i in wAbs.indices {
            var a: Float = 0
            for k in 0..<9 { a += abs(weight[i * 9 + k]) }
            wAbs[i] = a * scale
        }
        var tol = [Float](repeating: 0, count: s.m * cols)
        if let bias {
            for mm in 0..<s.m {
                let b = abs(bias[mm]) * scale
                for i in 0..<cols { tol[mm * cols + i] = b }
            }
        }
        wAbs.withUnsafeBufferPointer { ab in patchMax.withUnsafeBufferPointer { pb in tol.withUnsafeMutableBufferPointer { tb in
            guard let a0 = ab.baseAddress, let p0 = pb.baseAddress, let t0 = tb.baseAddress else { return }
            Kernels.gemm(m: s.m, n: cols, k: s.c, a: a0, lda: s.c, b: p0, ldb: cols, beta: bias == nil ? 0 : 1, c: t0, ldc: cols)
        } } }
        return tol
    }

    /// The convolution by the direct path.
    func directOutput() throws -> Tensor {
        let g = ConvGeometry(kernel: (3, 3), pads: (padTop, padLeft, oh - h + 2 - padTop, ow - w + 2 - padLeft))
        return try Kernels.withDirectConvolutions {
            try Kernels.conv2d(Tensor(shape: [n, c, h, w], floats: x), weight: Tensor(shape: [m, c, 3, 3], floats: weight),
                               bias: bias.map { try Tensor(shape: [m], floats: $0) }, geometry: g)
        }
    }

    /// The output (img, ch, oy, ox) of the convolution, summed in float64.
    func exact(_ img: Int, _ ch: Int, _ oy: Int, _ ox: Int) -> Double {
        let sum = x.withUnsafeBufferPointer { xb in weight.withUnsafeBufferPointer { wb -> Double in
            guard let x0 = xb.baseAddress, let w0 = wb.baseAddress else { return 0 }
            return loupe_sign_guard_exact(x0 + img * c * h * w, w0 + ch * c * 9, c, h, w, padTop, padLeft, oy, ox)
        } }
        return sum + Double(bias?[ch] ?? 0)
    }
}

/// The Winograd convolutions whose outputs were summed into a value (one for a convolution's
/// own output, more after an Add of several), and the repair of that value's uncertain signs.
public struct KinkGuard: Sendable {
    let terms: [WinogradSignGuard]

    init(_ term: WinogradSignGuard) { terms = [term] }
    init(terms: [WinogradSignGuard]) { self.terms = terms }

    /// The guard of the element-wise sum of values guarded by `self` and `other`.
    public func adding(_ other: KinkGuard?) -> KinkGuard { KinkGuard(terms: terms + (other?.terms ?? [])) }

    /// The guarded value computed exactly (a direct convolution per term, summed).
    public func exactValue() throws -> Tensor {
        var total: Tensor?
        for t in terms {
            let y = try t.directOutput()
            total = try total.map { try Tensor.binary(.add, $0, y) } ?? y
        }
        guard let total else { throw TensorError.shapeMismatch(op: "Winograd sign guard", expected: "a guarded value", got: []) }
        return total
    }

    /// The shape (N, M, oh, ow) of the values the guard covers.
    public var shape: [Int] { terms.first.map { [$0.n, $0.m, $0.oh, $0.ow] } ?? [] }

    /// Replaces each element of `v` (the guarded sum, shape ``shape``) that lies within the summed
    /// Winograd error bounds of zero by its value with every Winograd term made exact. Returns
    /// how many elements were recomputed.
    @discardableResult
    public func repair(_ v: inout Tensor) throws -> Int {
        guard v.shape == shape, terms.allSatisfy({ [$0.n, $0.m, $0.oh, $0.ow] == v.shape }) else {
            throw TensorError.shapeMismatch(op: "Winograd sign guard", expected: "values of shape \(shape)", got: [v.shape])
        }
        let shape = v.shape
        var values = try v.floats("Winograd sign guard")
        // Let go of the tensor's own reference, so that a caller holding no other copy of it
        // has the few elements patched in place rather than the whole buffer copied.
        v = Tensor(uncheckedShape: [0], storage: .float32([]))
        let repaired = repair(&values, own: false)
        v = Tensor(uncheckedShape: shape, storage: .float32(values))
        return repaired
    }

    /// The repair on the raw values; with `own`, `values` are the one term's Winograd output
    /// itself (the term need not keep a copy).
    func repair(_ values: inout [Float], own: Bool) -> Int {
        guard let first = terms.first, values.count == first.n * first.m * first.oh * first.ow else { return 0 }
        let (n, m, oh, ow, tilesW, tiles) = (first.n, first.m, first.oh, first.ow, first.tilesW, first.tilesH * first.tilesW)
        let cols = n * tiles
        // Each plane's tolerance grid, summed over the terms of a sum (layout (M, N, tiles)).
        var summed = first.tolerance
        for t in terms.dropFirst() { for i in summed.indices { summed[i] += t.tolerance[i] } }
        var counts = [Int](repeating: 0, count: n * m)
        values.withUnsafeMutableBufferPointer { vb in counts.withUnsafeMutableBufferPointer { cb in summed.withUnsafeBufferPointer { tb in
            guard let v0 = vb.baseAddress, let c0 = cb.baseAddress, let t0 = tb.baseAddress else { return }
            Kernels.parallelFor(n * m) { plane in
                let img = plane / m, ch = plane % m
                let row = v0 + plane * oh * ow, tol = t0 + ch * cols + img * tiles
                let fix = { (found: UnsafeMutableBufferPointer<Int>, count: Int) in
                    for idx in found.prefix(count) {
                        let oy = idx / ow, ox = idx % ow
                        if own {
                            row[idx] = Float(first.exact(img, ch, oy, ox))
                        } else {
                            var value = Double(row[idx])
                            for term in terms {
                                value += term.exact(img, ch, oy, ox) - Double(term.winograd[plane * oh * ow + idx])
                            }
                            row[idx] = Float(value)
                        }
                    }
                }
                let count = withUnsafeTemporaryAllocation(of: Int.self, capacity: 64) { found -> Int in
                    guard let f0 = found.baseAddress else { return 0 }
                    let k = loupe_sign_guard_scan(row, oh, ow, tol, tilesW, f0, 64)
                    if k <= 64 { fix(found, k) }
                    return k
                }
                if count > 64 {
                    var all = [Int](repeating: 0, count: count)
                    all.withUnsafeMutableBufferPointer { found in
                        guard let f0 = found.baseAddress else { return }
                        fix(found, loupe_sign_guard_scan(row, oh, ow, tol, tilesW, f0, count))
                    }
                }
                c0[plane] = count
            }
        } } }
        return counts.reduce(0, +)
    }
}

extension Kernels {
    /// ``conv2d(_:weight:bias:geometry:packed:activation:)`` for a forward pass recorded for a
    /// backward pass: a 3×3 stride-1 convolution that suits Winograd
    /// (``loupe_winograd_guarded_suits``) runs by Winograd with a ``KinkGuard``; any other takes
    /// the direct path, as recorded passes otherwise do.
    ///
    /// With `activation` .relu the guard is spent here: the pre-activations within its bound of
    /// zero are made exact before the ReLU, and no guard is returned. With .none the output and
    /// its guard are returned for the consumer that decides a sign (an Add feeding a ReLU). Other
    /// activations take the direct path.
    public static func conv2dGuarded(_ x: Tensor, weight: Tensor, bias: Tensor?, geometry p: ConvGeometry,
                                     packed: PackedConvWeights?, activation: ConvActivation) throws -> (Tensor, KinkGuard?) {
        let direct = { (try conv2d(x, weight: weight, bias: bias, geometry: p, packed: packed, activation: activation), KinkGuard?.none) }
        guard activation == .none || activation == .relu, p.isWinogradShape, let packed, packed.matches(weight, groups: 1) else {
            return try direct()
        }
        let s = try convShapes(input: x.shape, weight: weight.shape, geometry: p, op: "Conv")
        guard s.n * s.m * s.plane > 0, s.c > 0, bias.map({ $0.count == s.m }) ?? true,
              loupe_winograd_guarded_suits(s.n, s.m, s.c, s.oh, s.ow) != 0,
              let handle = packed.winogradHandle(adjoint: false) else { return try direct() }
        let X = try x.floats("Conv"), W = try weight.floats("Conv"), Bv = try bias?.floats("Conv")
        var win = p.window(inH: s.h, inW: s.w, outH: s.oh, outW: s.ow)
        let count = s.n * s.m * s.plane
        var ran = false
        var Y = X.withUnsafeBufferPointer { xb in
            withOptionalPointer(Bv) { bp in
                [Float](unsafeUninitializedCapacity: count) { yb, initialized in
                    guard let x0 = xb.baseAddress, let y0 = yb.baseAddress else { return }
                    ran = loupe_conv2d_winograd(handle, s.n, x0, &win, bp, Int32(LOUPE_ACT_NONE), y0, 1) != 0
                    initialized = ran ? count : 0
                }
            }
        }
        // Not finite input, or memory short: the direct sum, as PyTorch computes it.
        guard ran else { return try direct() }
        let shape = [s.n, s.m, s.oh, s.ow]
        guard activation == .relu else {
            let guardian = KinkGuard(WinogradSignGuard(x: X, weight: W, bias: Bv, shapes: s, padTop: p.padTop,
                                                       padLeft: p.padLeft, winograd: Y))
            return (Tensor(uncheckedShape: shape, storage: .float32(Y)), guardian)
        }
        // The ReLU decides here: the guard is spent on Y itself, which it need not keep.
        let own = KinkGuard(WinogradSignGuard(x: X, weight: W, bias: Bv, shapes: s, padTop: p.padTop,
                                              padLeft: p.padLeft, winograd: []))
        _ = own.repair(&Y, own: true)
        activation.apply(&Y)
        return (Tensor(uncheckedShape: shape, storage: .float32(Y)), nil)
    }
}
