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
        let once = try resizedBilinear(try minMaxScaled(relu(cam)), height: height, width: width, alignCorners: false)
        return try minMaxScaled(relu(once))
    }

    /// Bilinear resize of (N, h, w) maps to (N, height, width).
    ///
    /// - `alignCorners: false`: half-pixel centres, source coordinate `(o + 0.5)·h/height − 0.5`
    ///   clamped to the edges — `cv2.resize(..., INTER_LINEAR)`, `F.interpolate(align_corners=False)`.
    /// - `alignCorners: true`: corners map to corners, `o·(h − 1)/(height − 1)` —
    ///   `torch.nn.UpsamplingBilinear2d`, which Score-CAM uses.
    public static func resizedBilinear(_ maps: Tensor, height: Int, width: Int, alignCorners: Bool) throws -> Tensor {
        guard maps.rank == 3, height > 0, width > 0 else {
            throw CAMError.shapeMismatch(what: "bilinear resize to \(height)×\(width)", expected: "(N, h, w) and a positive size", got: maps.shape)
        }
        let (n, h, w) = (maps.shape[0], maps.shape[1], maps.shape[2])
        let ys = taps(from: h, to: height, alignCorners: alignCorners)
        let xs = taps(from: w, to: width, alignCorners: alignCorners)
        let v = try maps.floats()
        return Tensor.makeFloats(shape: [n, height, width]) { out in
            v.withUnsafeBufferPointer { src in
                for k in 0..<n {
                    let s = k * h * w, o = k * height * width
                    for oy in 0..<height {
                        let (y0, y1, fy) = ys[oy]
                        for ox in 0..<width {
                            let (x0, x1, fx) = xs[ox]
                            let top = src[s + y0 * w + x0] * (1 - fx) + src[s + y0 * w + x1] * fx
                            let bottom = src[s + y1 * w + x0] * (1 - fx) + src[s + y1 * w + x1] * fx
                            out[o + oy * width + ox] = top * (1 - fy) + bottom * fy
                        }
                    }
                }
            }
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
