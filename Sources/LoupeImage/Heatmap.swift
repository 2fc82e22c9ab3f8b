import LoupeTensor

/// How raw attribution values become colour-table positions in [0, 1].
public enum HeatmapScaling: String, Codable, Sendable, CaseIterable {
    /// Unsigned maps (CAMs, |gradient|): `(v - min) / (p - min)` clipped to [0, 1], where `p`
    /// is the clip percentile of the values (pytorch-grad-cam's min-max scaling when the
    /// percentile is 100).
    case unsigned
    /// Signed relevance: `v / p` clipped to [-1, 1] and mapped to `(x + 1) / 2`, where `p` is
    /// the clip percentile of |v|; zero lands on the centre of a diverging colormap (Zennit's
    /// `imgify(symmetric=True)` when the percentile is 100).
    case signed
    /// Magnitude only: `|v| / p` clipped to [0, 1], `p` the clip percentile of |v| (Captum's
    /// `absolute_value` sign mode).
    case absolute
}

/// Heatmap rendering: percentile clipping, scaling, bilinear upsampling, colouring and alpha
/// overlay. All maps are row-major `[Float]` of `height * width` values.
public enum Heatmap {
    /// The `q`-th percentile (0–100) of `values` with NumPy's default (`linear`) method:
    /// sorted values `s`, position `q/100 * (n - 1)`, linear interpolation between the two
    /// neighbours. NaNs are ignored; an empty input gives 0.
    public static func percentile(_ values: [Float], _ q: Double) -> Float {
        let sorted = values.filter { !$0.isNaN }.sorted()
        guard !sorted.isEmpty else { return 0 }
        let position = min(max(q, 0), 100) / 100 * Double(sorted.count - 1)
        let lo = Int(position.rounded(.down)), hi = min(lo + 1, sorted.count - 1)
        let t = position - Double(lo)
        let a = Double(sorted[lo]), b = Double(sorted[hi])
        // NumPy's _lerp: interpolate from whichever end is nearer, for monotonicity.
        return Float(t < 0.5 ? a + (b - a) * t : b - (b - a) * (1 - t))
    }

    /// `values` scaled to [0, 1] colour-table positions (see ``HeatmapScaling``), clipping at
    /// the `clipPercentile`-th percentile (100 = no clipping). A constant map gives all 0
    /// (unsigned, absolute) or all 0.5 (signed).
    public static func scaled(_ values: [Float], _ scaling: HeatmapScaling, clipPercentile: Double = 100) -> [Float] {
        let finite = values.map { $0.isFinite ? $0 : 0 }
        switch scaling {
        case .unsigned:
            let lo = finite.min() ?? 0
            let hi = percentile(finite, clipPercentile)
            let range = hi - lo
            guard range > 0 else { return [Float](repeating: 0, count: values.count) }
            return finite.map { min(max(($0 - lo) / range, 0), 1) }
        case .signed:
            let p = percentile(finite.map(abs), clipPercentile)
            guard p > 0 else { return [Float](repeating: 0.5, count: values.count) }
            return finite.map { (min(max($0 / p, -1), 1) + 1) / 2 }
        case .absolute:
            let p = percentile(finite.map(abs), clipPercentile)
            guard p > 0 else { return [Float](repeating: 0, count: values.count) }
            return finite.map { min(abs($0) / p, 1) }
        }
    }

    /// Bilinear resampling of an `height` × `width` map to `outHeight` × `outWidth`, equal to
    /// `torch.nn.functional.interpolate(x, size=(outHeight, outWidth), mode="bilinear",
    /// align_corners=False)` (no antialiasing): source coordinate `(dst + 0.5) * in/out - 0.5`
    /// clamped at 0, computed in float32 as PyTorch's CPU kernel does.
    public static func upsampled(_ values: [Float], width: Int, height: Int, toWidth outWidth: Int, height outHeight: Int) throws -> [Float] {
        guard values.count == width * height, width > 0, height > 0, outWidth > 0, outHeight > 0 else {
            throw ImageError.invalidArgument(op: "Heatmap.upsampled", message: "cannot resample \(values.count) values as \(width) x \(height) to \(outWidth) x \(outHeight)")
        }
        let xs = axisTaps(inSize: width, outSize: outWidth)
        let ys = axisTaps(inSize: height, outSize: outHeight)
        var out = [Float](repeating: 0, count: outWidth * outHeight)
        values.withUnsafeBufferPointer { v in
            out.withUnsafeMutableBufferPointer { o in
                for oy in 0..<outHeight {
                    let (y0, y1, wy0, wy1) = ys[oy]
                    let r0 = y0 * width, r1 = y1 * width
                    for ox in 0..<outWidth {
                        let (x0, x1, wx0, wx1) = xs[ox]
                        o[oy * outWidth + ox] = wy0 * (wx0 * v[r0 + x0] + wx1 * v[r0 + x1])
                            + wy1 * (wx0 * v[r1 + x0] + wx1 * v[r1 + x1])
                    }
                }
            }
        }
        return out
    }

    /// PyTorch's `area_pixel_compute_source_index` and neighbour weights along one axis.
    private static func axisTaps(inSize: Int, outSize: Int) -> [(Int, Int, Float, Float)] {
        let scale = Float(inSize) / Float(outSize)
        return (0..<outSize).map { d in
            let source = max(scale * (Float(d) + 0.5) - 0.5, 0)
            let i0 = min(Int(source), inSize - 1)
            let i1 = i0 < inSize - 1 ? i0 + 1 : i0
            let l1 = source - Float(i0)
            return (i0, i1, 1 - l1, l1)
        }
    }

    /// The values of a single-map tensor of shape (h, w), (1, h, w) or (1, 1, h, w) — what a
    /// CAM or a channel-reduced attribution gives — with its size.
    public static func map(from tensor: Tensor) throws -> (values: [Float], width: Int, height: Int) {
        let s = tensor.shape
        guard s.count >= 2, s.dropLast(2).allSatisfy({ $0 == 1 }) else {
            throw ImageError.invalidArgument(op: "Heatmap", message: "expected a map of shape (h, w), (1, h, w) or (1, 1, h, w), got \(s); reduce the channels first")
        }
        return (try tensor.floats("Heatmap"), s[s.count - 1], s[s.count - 2])
    }

    /// Blends `overlay` over `base` (same size; gray bases are expanded to RGB):
    /// `out = (1 - a) * base + a * overlay`, rounded, where `a = alpha * weights[i]` (or just
    /// `alpha` without weights — weighting by the scaled map lets unimportant pixels show the
    /// image through).
    public static func blend(_ overlay: Image, over base: Image, alpha: Float, weights: [Float]? = nil) throws -> Image {
        guard overlay.width == base.width, overlay.height == base.height else {
            throw ImageError.invalidArgument(op: "Heatmap.blend", message: "overlay is \(overlay.width) x \(overlay.height), image is \(base.width) x \(base.height)")
        }
        guard (0...1).contains(alpha) else {
            throw ImageError.invalidArgument(op: "Heatmap.blend", message: "alpha must be in [0, 1], got \(alpha)")
        }
        let n = base.width * base.height
        if let weights, weights.count != n {
            throw ImageError.invalidArgument(op: "Heatmap.blend", message: "\(weights.count) weights for \(n) pixels")
        }
        let b = try base.converted(toChannels: 3), o = try overlay.converted(toChannels: 3)
        let w = weights ?? [Float](repeating: 1, count: n)
        var out = [UInt8](repeating: 0, count: n * 3)
        b.pixels.withUnsafeBufferPointer { bp in
            o.pixels.withUnsafeBufferPointer { op in
                w.withUnsafeBufferPointer { wp in
                    out.withUnsafeMutableBufferPointer { dst in
                        for i in 0..<n {
                            let a = alpha * min(max(wp[i], 0), 1)
                            for k in i * 3..<i * 3 + 3 {
                                let v = (1 - a) * Float(bp[k]) + a * Float(op[k])
                                dst[k] = UInt8(min(max(v.rounded(), 0), 255))
                            }
                        }
                    }
                }
            }
        }
        return Image(unchecked: base.width, base.height, 3, out)
    }

    /// Renders an attribution map over `image`: upsample to the image size (bilinear, as
    /// ``upsampled(_:width:height:toWidth:height:)``), scale with `scaling` clipping at
    /// `clipPercentile`, colour with `colormap`, and blend with `alpha`. With
    /// `weightByValue`, the blend weight of each pixel is also multiplied by its scaled
    /// magnitude (distance from the table's zero point for signed maps).
    ///
    /// `map`: shape (h, w), (1, h, w) or (1, 1, h, w). Returns an RGB image of `image`'s size;
    /// write it with ``Image/pngData()``.
    public static func render(_ map: Tensor, over image: Image, colormap: Colormap = .jet,
                              scaling: HeatmapScaling = .unsigned, clipPercentile: Double = 99.5,
                              alpha: Float = 0.5, weightByValue: Bool = false) throws -> Image {
        let (values, w, h) = try Heatmap.map(from: map)
        let up = (w == image.width && h == image.height)
            ? values
            : try upsampled(values, width: w, height: h, toWidth: image.width, height: image.height)
        let positions = scaled(up, scaling, clipPercentile: clipPercentile)
        let colors = try colormap.apply(positions, width: image.width, height: image.height)
        var weights: [Float]? = nil
        if weightByValue {
            weights = scaling == .signed ? positions.map { abs($0 - 0.5) * 2 } : positions
        }
        return try blend(colors, over: image, alpha: alpha, weights: weights)
    }
}
