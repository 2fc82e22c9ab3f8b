import LoupeGraph
import LoupeTensor

extension CAM {
    /// What an ablated channel is set to.
    public enum AblationValue: Sendable, Equatable {
        /// Zero, as in the paper.
        case zero
        /// pytorch-grad-cam 1.5.7's `AblationLayer`: zero when the sample's smallest activation
        /// is exactly 0 (after a ReLU), otherwise a very negative value. Because the library
        /// recomputes the minimum after ablating each row of a batch, row r of a batch gets
        /// `min − (r + 1)·1e7` (in float32, one subtraction at a time), so the value depends
        /// on `batchSize`; reproduced here for exact agreement.
        case pytorchGradCAM
    }

    /// Ablation-CAM (Desai & Ramaswamy 2020, WACV, "Ablation-CAM: Visual Explanations for Deep
    /// Convolutional Network via Gradient-free Localization"): channel c of the layer is
    /// ablated (its whole map; for token and channels-last layers the channel at every position,
    /// class token included, as pytorch-grad-cam's `AblationLayerVit`) by a `Hooks.replace` at the layer,
    /// and the weight is the relative drop of the target logit `(y − y_c)/y`.
    public enum AblationCAM {
        public static func weights(model: Model, input: Tensor, inputName: String, outputName: String,
                                   layer: HookName, layerValue: Tensor, layout: Layout, logits: Tensor,
                                   classes: [Int], batchSize: Int, ablation: AblationValue) throws -> Tensor {
            guard batchSize > 0 else { throw CAMError.invalidArgument("Ablation-CAM batchSize must be positive, got \(batchSize)") }
            let b = layerValue.shape[0]
            guard input.rank >= 1, input.shape[0] == b else {
                throw CAMError.shapeMismatch(what: "Ablation-CAM input", expected: "batch \(b)", got: input.shape)
            }
            let per = layerValue.count / max(b, 1)
            let perInput = input.count / max(b, 1)
            // Channel count and the element stride/positions of one channel inside a sample.
            let (channels, positions, channelStride, positionStride) = layout.channelGeometry(layerValue.shape)
            let v = try layerValue.floats(), x = try input.floats(), y = try logits.floats()
            let k = logits.shape[1]
            var out = [Float](repeating: 0, count: b * channels)
            for n in 0..<b {
                let sample = Array(v[(n * per)..<((n + 1) * per)])
                let minimum = sample.min() ?? 0
                let original = y[n * k + classes[n]]
                var c0 = 0
                while c0 < channels {
                    let rows = min(batchSize, channels - c0)
                    var acts = [Float](repeating: 0, count: rows * per)
                    var inputs = [Float](repeating: 0, count: rows * perInput)
                    var fill = minimum
                    for r in 0..<rows {
                        acts.replaceSubrange((r * per)..<((r + 1) * per), with: sample)
                        inputs.replaceSubrange((r * perInput)..<((r + 1) * perInput), with: x[(n * perInput)..<((n + 1) * perInput)])
                        let value: Float
                        if ablation == .zero || minimum == 0 {
                            value = 0
                        } else {
                            fill = fill - 1e7
                            value = fill
                        }
                        let c = c0 + r
                        for p in 0..<positions { acts[r * per + c * channelStride + p * positionStride] = value }
                    }
                    var hooks = Hooks()
                    hooks.replace(layer, with: try Tensor(shape: [rows] + layerValue.shape.dropFirst(), floats: acts))
                    let res = try model.run([inputName: try Tensor(shape: [rows] + input.shape.dropFirst(), floats: inputs)], hooks: hooks)
                    let scores = try targetScores(res, outputName, classes[n], rows: rows)
                    for r in 0..<rows { out[n * channels + c0 + r] = (original - scores[r]) / original }
                    c0 += rows
                }
            }
            return try Tensor(shape: [b, channels], floats: out)
        }
    }
}
