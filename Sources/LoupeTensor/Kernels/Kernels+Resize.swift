import CLoupeKernels
import Foundation

/// How an output coordinate maps back to an input coordinate along one axis (ONNX Resize
/// `coordinate_transformation_mode`).
public enum ResizeCoordinateMode: String, Sendable {
    case halfPixel = "half_pixel"
    case pytorchHalfPixel = "pytorch_half_pixel"
    case alignCorners = "align_corners"
    case asymmetric
}

extension ResizeCoordinateMode {
    /// The input coordinate output index `o` samples, along an axis of `input` → `output` samples
    /// at `scale` (output/input, as the model gives it).
    func source(_ o: Int, input: Int, output: Int, scale: Float) -> Float {
        let x = Float(o)
        switch self {
        case .halfPixel: return (x + 0.5) / scale - 0.5
        case .pytorchHalfPixel: return output > 1 ? (x + 0.5) / scale - 0.5 : 0
        case .alignCorners:
            // The resized length is input × scale before flooring (ONNX reference and
            // onnxruntime), which differs from `output` when the scale is not exact.
            let resized = Float(input) * scale
            return resized > 1 ? x * Float(input - 1) / (resized - 1) : 0
        case .asymmetric: return x / scale
        }
    }
}

/// Rounding of the source coordinate in nearest-neighbour mode (ONNX `nearest_mode`).
public enum ResizeNearestMode: String, Sendable {
    case roundPreferFloor = "round_prefer_floor"
    case roundPreferCeil = "round_prefer_ceil"
    case floor
    case ceil
}

/// For one axis, the (at most two) input indices and weights each output index reads.
public struct ResizeAxisPlan: Sendable, Equatable {
    public var inputSize: Int
    public var index0: [Int], index1: [Int]
    public var weight0: [Float], weight1: [Float]
    public var outputSize: Int { index0.count }

    /// Builds the plan for `output` samples of an axis of `input` samples. `scale` is the
    /// output/input ratio in use (given by the model, or output/input when sizes are given).
    /// Linear mode clamps the source coordinate to [0, input − 1] as onnxruntime does.
    public init(input: Int, output: Int, scale: Float, linear: Bool, coordinates: ResizeCoordinateMode,
                nearest: ResizeNearestMode) {
        inputSize = input
        index0 = [Int](repeating: 0, count: output); index1 = index0
        weight0 = [Float](repeating: 1, count: output); weight1 = [Float](repeating: 0, count: output)
        for o in 0..<output {
            var src = coordinates.source(o, input: input, output: output, scale: scale)
            if linear {
                src = min(max(src, 0), Float(input - 1))
                let i0 = min(Int(src.rounded(.down)), input - 1)
                let i1 = min(i0 + 1, input - 1)
                let f = src - Float(i0)
                index0[o] = i0; index1[o] = i1
                weight0[o] = 1 - f; weight1[o] = i1 == i0 ? 0 : f
                if i1 == i0 { weight0[o] = 1 }
            } else {
                var r: Float
                switch nearest {
                case .floor: r = src.rounded(.down)
                case .ceil: r = src.rounded(.up)
                case .roundPreferFloor: r = src - src.rounded(.down) == 0.5 ? src.rounded(.down) : src.rounded()
                case .roundPreferCeil: r = src - src.rounded(.down) == 0.5 ? src.rounded(.up) : src.rounded()
                }
                index0[o] = min(max(Int(r), 0), input - 1)
                index1[o] = index0[o]
            }
        }
    }
}

extension Kernels {
    /// Separable resize of the last two axes: `x` holds `outer` planes of planH.inputSize ×
    /// planW.inputSize; returns `outer` planes of the output size.
    public static func resize2d(_ x: [Float], outer: Int, planH: ResizeAxisPlan, planW: ResizeAxisPlan) -> [Float] {
        let (h, w, oh, ow) = (planH.inputSize, planW.inputSize, planH.outputSize, planW.outputSize)
        var y = [Float](repeating: 0, count: outer * oh * ow)
        x.withUnsafeBufferPointer { xb in y.withUnsafeMutableBufferPointer { yb in
            for p in 0..<outer {
                let xp = p * h * w, yp = p * oh * ow
                for i in 0..<oh {
                    let r0 = xp + planH.index0[i] * w, r1 = xp + planH.index1[i] * w
                    let a0 = planH.weight0[i], a1 = planH.weight1[i]
                    for j in 0..<ow {
                        let c0 = planW.index0[j], c1 = planW.index1[j]
                        let b0 = planW.weight0[j], b1 = planW.weight1[j]
                        let top = b0 * xb[r0 + c0] + (b1 == 0 ? 0 : b1 * xb[r0 + c1])
                        let bottom = a1 == 0 ? 0 : b0 * xb[r1 + c0] + (b1 == 0 ? 0 : b1 * xb[r1 + c1])
                        yb[yp + i * ow + j] = a0 * top + (a1 == 0 ? 0 : a1 * bottom)
                    }
                }
            }
        } }
        return y
    }

    /// Adjoint of ``resize2d(_:outer:planH:planW:)``: scatters each output cotangent back to the
    /// input samples it read, with the same weights.
    public static func resize2dBackward(_ gy: [Float], outer: Int, planH: ResizeAxisPlan, planW: ResizeAxisPlan) -> [Float] {
        let (h, w, oh, ow) = (planH.inputSize, planW.inputSize, planH.outputSize, planW.outputSize)
        var gx = [Float](repeating: 0, count: outer * h * w)
        gy.withUnsafeBufferPointer { gb in gx.withUnsafeMutableBufferPointer { xb in
            for p in 0..<outer {
                let xp = p * h * w, yp = p * oh * ow
                for i in 0..<oh {
                    let r0 = xp + planH.index0[i] * w, r1 = xp + planH.index1[i] * w
                    let a0 = planH.weight0[i], a1 = planH.weight1[i]
                    for j in 0..<ow {
                        let g = gb[yp + i * ow + j]
                        let c0 = planW.index0[j], c1 = planW.index1[j]
                        let b0 = planW.weight0[j], b1 = planW.weight1[j]
                        xb[r0 + c0] += a0 * b0 * g
                        if b1 != 0 { xb[r0 + c1] += a0 * b1 * g }
                        if a1 != 0 {
                            xb[r1 + c0] += a1 * b0 * g
                            if b1 != 0 { xb[r1 + c1] += a1 * b1 * g }
                        }
                    }
                }
            }
        } }
        return gx
    }
}

extension Kernels {
    /// The vertical pass of a separable bilinear resize: output row r (`width` floats) is
    /// `rows[y0[r]]·(1 − fy[r]) + rows[y1[r]]·fy[r]` (products and sum unfused, as written), for
    /// `y0.count` rows. Returns the output's minimum and maximum (NaN ignored; (+inf, −inf) when
    /// there is none). `rows` holds the horizontally resized source rows, `width` floats each.
    public static func blendRows(_ rows: UnsafePointer<Float>, width: Int, y0: [Int32], y1: [Int32], fy: [Float],
                                 into out: UnsafeMutablePointer<Float>) -> (min: Float, max: Float) {
        precondition(y0.count == y1.count && y0.count == fy.count, "blendRows: one (y0, y1, fy) per output row")
        var lohi: [Float] = [0, 0]
        loupe_blend_rows(rows, width, y0, y1, fy, y0.count, out, &lohi)
        return (lohi[0], lohi[1])
    }
}

/// For one axis, `taps` input indices and weights per output index: ONNX Resize `cubic` (four
/// taps, Keys' kernel with coefficient `a`; PyTorch's bicubic is a = −0.75).
public struct ResizeAxisTaps: Sendable, Equatable {
    public var inputSize: Int
    public var taps: Int
    /// Output-major: output o reads `indices[o·taps + k]` with `weights[o·taps + k]`.
    public var indices: [Int], weights: [Float]
    public var outputSize: Int { taps == 0 ? 0 : indices.count / taps }

    /// Cubic convolution (Keys 1981) at the source coordinate of each output sample (the same
    /// `coordinates` as linear mode, not clamped). Taps outside the axis read the edge sample,
    /// or with `excludeOutside` get weight 0 and the others are renormalised (onnxruntime).
    public init(cubicInput input: Int, output: Int, scale: Float, coordinates: ResizeCoordinateMode,
                coefficient a: Float, excludeOutside: Bool) {
        inputSize = input
        taps = 4
        indices = [Int](repeating: 0, count: output * 4)
        weights = [Float](repeating: 0, count: output * 4)
        for o in 0..<output {
            let src = coordinates.source(o, input: input, output: output, scale: scale)
            let base = src.rounded(.down), t = src - base
            // Keys' kernel at distances 1 + t, t, 1 − t, 2 − t.
            func near(_ s: Float) -> Float { ((a + 2) * s - (a + 3)) * s * s + 1 }
            func far(_ s: Float) -> Float { ((a * s - 5 * a) * s + 8 * a) * s - 4 * a }
            var w = [far(1 + t), near(t), near(1 - t), far(2 - t)]
            var sum: Float = 0
            for k in 0..<4 {
                let i = Int(base) - 1 + k
                if excludeOutside && (i < 0 || i >= input) { w[k] = 0 }
                sum += w[k]
                indices[o * 4 + k] = min(max(i, 0), input - 1)
            }
            for k in 0..<4 { weights[o * 4 + k] = excludeOutside && sum != 0 ? w[k] / sum : w[k] }
        }
    }
}

extension Kernels {
    /// Separable resize of the last two axes through per-axis taps (``ResizeAxisTaps``): rows
    /// first, then columns of the row-resized planes.
    public static func resize2d(_ x: [Float], outer: Int, tapsH: ResizeAxisTaps, tapsW: ResizeAxisTaps) -> [Float] {
        let (h, w, oh, ow, kh, kw) = (tapsH.inputSize, tapsW.inputSize, tapsH.outputSize, tapsW.outputSize, tapsH.taps, tapsW.taps)
        var y = [Float](repeating: 0, count: outer * oh * ow)
        var rows = [Float](repeating: 0, count: h * ow)
        for p in 0..<outer {
            let xp = p * h * w, yp = p * oh * ow
            for r in 0..<h {
                for j in 0..<ow {
                    var s: Float = 0
                    for k in 0..<kw { s += tapsW.weights[j * kw + k] * x[xp + r * w + tapsW.indices[j * kw + k]] }
                    rows[r * ow + j] = s
                }
            }
            for i in 0..<oh {
                for j in 0..<ow {
                    var s: Float = 0
                    for k in 0..<kh { s += tapsH.weights[i * kh + k] * rows[tapsH.indices[i * kh + k] * ow + j] }
                    y[yp + i * ow + j] = s
                }
            }
        }
        return y
    }

    /// Adjoint of ``resize2d(_:outer:tapsH:tapsW:)``.
    public static func resize2dBackward(_ gy: [Float], outer: Int, tapsH: ResizeAxisTaps, tapsW: ResizeAxisTaps) -> [Float] {
        let (h, w, oh, ow, kh, kw) = (tapsH.inputSize, tapsW.inputSize, tapsH.outputSize, tapsW.outputSize, tapsH.taps, tapsW.taps)
        var gx = [Float](repeating: 0, count: outer * h * w)
        var rows = [Float](repeating: 0, count: h * ow)
        for p in 0..<outer {
            let xp = p * h * w, yp = p * oh * ow
            for i in 0..<rows.count { rows[i] = 0 }
            for i in 0..<oh {
                for k in 0..<kh {
                    let r = tapsH.indices[i * kh + k], a = tapsH.weights[i * kh + k]
                    for j in 0..<ow { rows[r * ow + j] += a * gy[yp + i * ow + j] }
                }
            }
            for r in 0..<h {
                for j in 0..<ow {
                    let g = rows[r * ow + j]
                    for k in 0..<kw { gx[xp + r * w + tapsW.indices[j * kw + k]] += tapsW.weights[j * kw + k] * g }
                }
            }
        }
        return gx
    }
}
