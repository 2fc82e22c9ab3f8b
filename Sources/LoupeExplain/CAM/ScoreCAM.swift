import LoupeGraph
import LoupeTensor

extension CAM {
    /// Score-CAM (Wang et al. 2020, arXiv:1910.01279), as pytorch-grad-cam 1.5.7 computes it:
    /// each activation map `A[b,c]` is upsampled to the input size with corner-aligned bilinear
    /// interpolation (`nn.UpsamplingBilinear2d`), min-max normalised as
    /// `(u − min)/(max − min + 1e-8)`, multiplied into the input (broadcast over its channels),
    /// and the model scores the masked image: `s[b,c] = logit[class_b]`. The weights are
    /// `softmax_c(s[b,:])`. The C masked images of each sample run `batchSize` at a time.
    public enum ScoreCAM {
        public static func weights(model: Model, input: Tensor, inputName: String, outputName: String,
                                   activations: Tensor, classes: [Int], batchSize: Int) throws -> Tensor {
            guard batchSize > 0 else { throw CAMError.invalidArgument("Score-CAM batchSize must be positive, got \(batchSize)") }
            let d = try CAMDims(activations, "CAM activations")
            guard input.rank == 4, input.shape[0] == d.b else {
                throw CAMError.shapeMismatch(what: "Score-CAM input", expected: "an image batch (\(d.b), channels, H, W)", got: input.shape)
            }
            let (ci, hh, ww) = (input.shape[1], input.shape[2], input.shape[3])
            let plane = hh * ww, image = ci * plane
            let up = try resizedBilinear(try activations.reshaped([d.b * d.c, d.h, d.w]), height: hh, width: ww, alignCorners: true)
            var masks = try up.floats()
            for k in 0..<(d.b * d.c) {
                var lo = Float.infinity, hi = -Float.infinity
                for i in 0..<plane { lo = min(lo, masks[k * plane + i]); hi = max(hi, masks[k * plane + i]) }
                let den = hi - lo + 1e-8
                for i in 0..<plane { masks[k * plane + i] = (masks[k * plane + i] - lo) / den }
            }
            let x = try input.floats()
            var out = [Float](repeating: 0, count: d.b * d.c)
            for b in 0..<d.b {
                var scores = [Float](repeating: 0, count: d.c)
                var c0 = 0
                while c0 < d.c {
                    let k = min(batchSize, d.c - c0)
                    var batch = [Float](repeating: 0, count: k * image)
                    for j in 0..<k {
                        let m = (b * d.c + c0 + j) * plane
                        for ch in 0..<ci {
                            let src = b * image + ch * plane, dst = j * image + ch * plane
                            for i in 0..<plane { batch[dst + i] = x[src + i] * masks[m + i] }
                        }
                    }
                    let y = try model.run([inputName: try Tensor(shape: [k, ci, hh, ww], floats: batch)])
                    scores.replaceSubrange(c0..<(c0 + k), with: try targetScores(y, outputName, classes[b], rows: k))
                    c0 += k
                }
                let top = scores.max() ?? 0
                var sum: Float = 0
                for c in 0..<d.c { scores[c] = expf(scores[c] - top); sum += scores[c] }
                for c in 0..<d.c { out[b * d.c + c] = scores[c] / sum }
            }
            return try Tensor(shape: [d.b, d.c], floats: out)
        }
    }

    /// `y[output][j, cls]` for j < rows.
    static func targetScores(_ y: [String: Tensor], _ output: String, _ cls: Int, rows: Int) throws -> [Float] {
        guard let t = y[output], t.rank == 2, t.shape[0] == rows, cls < t.shape[1] else {
            throw CAMError.shapeMismatch(what: "model output '\(output)' on a perturbed batch", expected: "(\(rows), > \(cls))", got: y[output]?.shape ?? [])
        }
        let v = try t.floats()
        return (0..<rows).map { v[$0 * t.shape[1] + cls] }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
