import Foundation

/// Direct-definition twins of the softmax, row-normalisation and resize kernels (Double math).
extension ReferenceKernels {
    /// exp(x_k) / Σ_j exp(x_j) (or its log) along the middle axis of (outer, d, inner).
    public static func softmax(_ x: [Float], outer: Int, d: Int, inner: Int, log: Bool) -> [Float] {
        var y = [Float](repeating: 0, count: x.count)
        for o in 0..<outer {
            for i in 0..<inner {
                let idx = (0..<d).map { o * d * inner + $0 * inner + i }
                let s = idx.reduce(0.0) { $0 + Foundation.exp(Double(x[$1])) }
                for j in idx { y[j] = Float(log ? Double(x[j]) - Foundation.log(s) : Foundation.exp(Double(x[j])) / s) }
            }
        }
        return y
    }

    /// (x − mean)/√(var + ε) of each contiguous row of `d` elements, biased variance.
    public static func normalizeRows(_ x: [Float], d: Int, epsilon: Float) -> [Float] {
        var y = [Float](repeating: 0, count: x.count)
        for r in 0..<(x.count / d) {
            let row = x[(r * d)..<((r + 1) * d)].map(Double.init)
            let mean = row.reduce(0, +) / Double(d)
            let variance = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(d)
            for k in 0..<d { y[r * d + k] = Float((row[k] - mean) / (variance + Double(epsilon)).squareRoot()) }
        }
        return y
    }

    /// Bilinear (or nearest) resize of the last two axes straight from the ONNX formulas:
    /// every output pixel maps back to a source coordinate and reads its (up to four) neighbours.
    public static func resize2d(_ x: [Float], outer: Int, inH: Int, inW: Int, outH: Int, outW: Int,
                                scaleH: Float, scaleW: Float, linear: Bool, coordinates: ResizeCoordinateMode,
                                nearest: ResizeNearestMode) -> [Float] {
        // Source coordinates in Float, as onnxruntime computes them: at exact ties (x.5 for
        // nearest, integers for floor/ceil) the rounding of the coordinate decides the pixel.
        func source(_ o: Int, _ input: Int, _ output: Int, _ scale: Float) -> Double {
            let x = Float(o), s = scale
            switch coordinates {
            case .halfPixel: return Double((x + 0.5) / s - 0.5)
            case .pytorchHalfPixel: return output > 1 ? Double((x + 0.5) / s - 0.5) : 0
            case .alignCorners: return output > 1 ? Double(x * Float(input - 1) / Float(output - 1)) : 0
            case .asymmetric: return Double(x / s)
            }
        }
        func round(_ v: Double) -> Int {
            let f = v.rounded(.down), frac = v - f
            switch nearest {
            case .floor: return Int(f)
            case .ceil: return Int(v.rounded(.up))
            case .roundPreferFloor: return frac == 0.5 ? Int(f) : Int(v.rounded())
            case .roundPreferCeil: return frac == 0.5 ? Int(f) + 1 : Int(v.rounded())
            }
        }
        var y = [Float](repeating: 0, count: outer * outH * outW)
        for p in 0..<outer {
            for i in 0..<outH {
                for j in 0..<outW {
                    var sh = source(i, inH, outH, scaleH), sw = source(j, inW, outW, scaleW)
                    var v = 0.0
                    if linear {
                        sh = min(max(sh, 0), Double(inH - 1)); sw = min(max(sw, 0), Double(inW - 1))
                        let h0 = Int(sh.rounded(.down)), w0 = Int(sw.rounded(.down))
                        let h1 = min(h0 + 1, inH - 1), w1 = min(w0 + 1, inW - 1)
                        let fh = sh - Double(h0), fw = sw - Double(w0)
                        func at(_ h: Int, _ w: Int) -> Double { Double(x[(p * inH + h) * inW + w]) }
                        v = (1 - fh) * ((1 - fw) * at(h0, w0) + fw * at(h0, w1)) + fh * ((1 - fw) * at(h1, w0) + fw * at(h1, w1))
                    } else {
                        let h = min(max(round(sh), 0), inH - 1), w = min(max(round(sw), 0), inW - 1)
                        v = Double(x[(p * inH + h) * inW + w])
                    }
                    y[(p * outH + i) * outW + j] = Float(v)
                }
            }
        }
        return y
    }
}
