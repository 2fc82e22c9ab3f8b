import LoupeTensor

extension CAM {
    /// Per-sample min-max scaling of (B, h, w) maps: `(m − min) / (max − min + 1e-7)`, the
    /// formula of pytorch-grad-cam 1.5.7's `scale_cam_image` (ε added to the max after the
    /// minimum is subtracted).
    public static func minMaxScaled(_ maps: Tensor) throws -> Tensor {
        guard maps.rank == 3 else { throw CAMError.shapeMismatch(what: "CAM maps", expected: "(B, h, w)", got: maps.shape) }
        let n = maps.shape[1] * maps.shape[2]
        let v = try maps.floats()
        return Tensor.makeFloats(shape: maps.shape) { out in
            // The 224×224 final image is scaled twice per CAM: the vectorised kernel.
            v.withUnsafeBufferPointer { vb in
                guard let src = vb.baseAddress, let dst = out.baseAddress else { return }
                for b in 0..<maps.shape[0] { Kernels.minMaxScale(src + b * n, dst + b * n, count: n, epsilon: 1e-7) }
            }
        }
    }

    /// pytorch-grad-cam 1.5.7's final image for one target layer: `ReLU`, min-max scale,
    /// bilinear resize to (height, width) as OpenCV's `cv2.resize` (half-pixel centres, edge
    /// clamping), then min-max scale again (its multi-layer aggregation step).
    ///
    /// - Parameter cam: raw maps (B, h, w) as ``CAMResult/raw``.
    public static func scaledLikePytorchGradCAM(_ cam: Tensor, height: Int, width: Int) throws -> Tensor {
        // The resized map is scaled where it was written. pytorch-grad-cam's ReLU before that
        // second scaling is skipped: bilinear weights lie in [0, 1] and the first scaling left
        // every value ≥ +0 (or NaN, which ReLU keeps), so it could change no value.
        try resizedBilinear(try minMaxScaled(relu(cam)), height: height, width: width, alignCorners: false) { plane, count, lo, hi in
            Kernels.scale(plane, plane, count: count, minimum: lo, maximum: hi, epsilon: 1e-7)
        }
    }

    /// Bilinear resize of (N, h, w) maps to (N, height, width).
    ///
    /// - `alignCorners: false`: half-pixel centres, source coordinate `(o + 0.5)·h/height − 0.5`
    ///   clamped to the edges — `cv2.resize(..., INTER_LINEAR)`, `F.interpolate(align_corners=False)`.
    /// - `alignCorners: true`: corners map to corners, `o·(h − 1)/(height − 1)` —
    ///   `torch.nn.UpsamplingBilinear2d`, which Score-CAM uses.
    public static func resizedBilinear(_ maps: Tensor, height: Int, width: Int, alignCorners: Bool) throws -> Tensor {
        try resizedBilinear(maps, height: height, width: width, alignCorners: alignCorners) { _, _, _, _ in }
    }

    /// The resize, then `finish` on each output plane's pixels while they are in cache, given the
    /// plane's minimum and maximum: (pointer, count, min, max). `finish` must be element-wise: a
    /// large plane (≥ 2¹⁴ pixels, a 224² image) is blended and finished in row halves on two
    /// threads, each half getting the whole plane's extrema.
    static func resizedBilinear(_ maps: Tensor, height: Int, width: Int, alignCorners: Bool,
                                finish: (UnsafeMutablePointer<Float>, Int, Float, Float) -> Void) throws -> Tensor {
        guard maps.rank == 3, height > 0, width > 0 else {
            throw CAMError.shapeMismatch(what: "bilinear resize to \(height)×\(width)", expected: "(N, h, w) and a positive size", got: maps.shape)
        }
        let (n, h, w) = (maps.shape[0], maps.shape[1], maps.shape[2])
        guard h > 0, w > 0 else {
            throw CAMError.shapeMismatch(what: "bilinear resize to \(height)×\(width)", expected: "maps with at least one pixel", got: maps.shape)
        }
        let ys = taps(from: h, to: height, alignCorners: alignCorners)
        let xs = taps(from: w, to: width, alignCorners: alignCorners)
        let v = try maps.floats()
        let y0 = ys.map { Int32($0.0) }, y1 = ys.map { Int32($0.1) }, fy = ys.map(\.2)
        // Row halves for large planes: Eigen-CAM's image comes right after a forward pass, with
        // the pool awake, and its blend and scaling are memory passes over 200 KB.
        let parts = height * width >= 1 << 14 && height >= 2 && Kernels.threads > 1 ? 2 : 1
        let cuts = (0...parts).map { height * $0 / parts }
        let piece = (0..<parts).map { p in (Array(y0[cuts[p]..<cuts[p + 1]]), Array(y1[cuts[p]..<cuts[p + 1]]), Array(fy[cuts[p]..<cuts[p + 1]])) }
        // Separable: each source row is resized along x once (h rows, not `height`), then every
        // output row blends two of those rows (a vector kernel that also finds the extrema). Same
        // products in the same order as the four-tap formula, so the result is bit-identical to it.
        var rows = [Float](repeating: 0, count: h * width)
        var extrema = [(Float, Float)](repeating: (.infinity, -.infinity), count: parts)
        return Tensor.makeFloats(writingAll: [n, height, width]) { out in
            v.withUnsafeBufferPointer { src in rows.withUnsafeMutableBufferPointer { rb in extrema.withUnsafeMutableBufferPointer { eb in
                guard let s0 = src.baseAddress, let r0 = rb.baseAddress, let o0 = out.baseAddress, let e0 = eb.baseAddress else { return }
                for k in 0..<n {
                    let s = s0 + k * h * w
                    for y in 0..<h {
                        let row = s + y * w, dst = r0 + y * width
                        for ox in 0..<width {
                            let (x0, x1, fx) = xs[ox]
                            dst[ox] = row[x0] * (1 - fx) + row[x1] * fx
                        }
                    }
                    let o = o0 + k * height * width
                    Kernels.parallelFor(parts) { p in
                        e0[p] = Kernels.blendRows(r0, width: width, y0: piece[p].0, y1: piece[p].1, fy: piece[p].2,
                                                  into: o + cuts[p] * width)
                    }
                    // Swift's min/max of the parts: NaN never replaces an extremum (blendRows ignores it too).
                    var lo = Float.infinity, hi = -Float.infinity
                    for p in 0..<parts { lo = Swift.min(lo, e0[p].0); hi = Swift.max(hi, e0[p].1) }
                    Kernels.parallelFor(parts) { p in finish(o + cuts[p] * width, (cuts[p + 1] - cuts[p]) * width, lo, hi) }
                }
            } } }
        }
    }

    /// For each output index: the two source indices and the weight of the second.
    static func taps(from inSize: Int, to outSize: Int, alignCorners: Bool) -> [(Int, Int, Float)] {
        (0..<outSize).map { o in
            var src: Double
            if alignCorners {
                src = outSize > 1 ? Double(o) * Double(inSize - 1) / Double(outSize - 1) : 0
            } else {
                src = (Double(o) + 0.5) * Double(inSize) / Double(outSize) - 0.5
                src = max(src, 0)
            }
            let i0 = min(Int(src.rounded(.down)), inSize - 1)
            let i1 = min(i0 + 1, inSize - 1)
            let f = i0 == inSize - 1 ? 0 : Float(src - Double(i0))
            return (i0, i1, f)
        }
    }
}
