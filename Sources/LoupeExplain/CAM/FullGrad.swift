import LoupeGraph
import LoupeTensor

extension CAM {
    /// FullGrad (Srinivas & Fleuret 2019, arXiv:1905.00780) as pytorch-grad-cam 1.5.7 computes
    /// it. It ignores any target layer and uses every 2-D convolution with a bias and every
    /// batch normalisation (bias `B − mean·scale/√(var + ε)`):
    ///
    ///     map = Σ_cin s(|x ⊙ ∂y/∂x|)  +  Σ_layers Σ_c s(|bias_c · ∂y/∂z_c|)
    ///
    /// where `s` min-max scales each (sample, channel) map and resizes it to the input size
    /// (like `cv2.resize`), `z` is the layer's output and y the target logit; the sum is
    /// min-max scaled once more per sample. Agreement with the library needs the exported
    /// graph to keep the BatchNormalization nodes (`do_constant_folding=False`): folding BN
    /// into the convolution changes which biases exist.
    public enum FullGrad {
        /// A bias-carrying layer: its output value name and its per-channel bias.
        public struct BiasLayer: Sendable, Equatable {
            public let value: String
            public let bias: [Float]
        }

        /// Conv (with a constant bias) and BatchNormalization nodes of `model`, in run order.
        public static func biasLayers(of model: Model) -> [BiasLayer] {
            let graph = model.graph
            var producer: [String: Node] = [:]
            for n in graph.nodes { for o in n.outputs where !o.isEmpty { producer[o] = n } }
            func constant(_ name: String, depth: Int = 0) -> [Float]? {
                // Folded constants too: a quantized model's biases are DequantizeLinear of int32.
                if let t = model.constantValue(named: name) ?? graph.initializers[name] { return try? t.floats() }
                guard depth < 16, let n = producer[name] else { return nil }
                if n.opType == "Identity", let i = n.inputs.first { return constant(i, depth: depth + 1) }
                if n.opType == "Constant", case let .tensor(t)? = n.attributes["value"] { return try? t.floats() }
                return nil
            }
            var layers: [BiasLayer] = []
            for n in model.nodes {
                guard let out = n.outputs.first, !out.isEmpty else { continue }
                if n.opType == "Conv", n.inputs.count >= 3, !n.inputs[2].isEmpty, let b = constant(n.inputs[2]) {
                    layers.append(BiasLayer(value: out, bias: b))
                } else if n.opType == "BatchNormalization", n.inputs.count >= 5,
                          let scale = constant(n.inputs[1]), let shift = constant(n.inputs[2]),
                          let mean = constant(n.inputs[3]), let variance = constant(n.inputs[4]),
                          scale.count == shift.count, mean.count == shift.count, variance.count == shift.count {
                    var eps: Float = 1e-5
                    if case let .float(e)? = n.attributes["epsilon"] { eps = e }
                    let b = (0..<shift.count).map { -(mean[$0] * scale[$0] / (variance[$0] + eps).squareRoot()) + shift[$0] }
                    layers.append(BiasLayer(value: out, bias: b))
                }
            }
            return layers
        }

        /// The FullGrad map (B, H, W) of an image batch (B, channels, H, W), scaled to [0, 1]
        /// per sample as the library returns it.
        public static func explain(model: Model, input: Tensor, classes: [Int],
                                   inputName: String? = nil, outputName: String? = nil) throws -> Tensor {
            guard let inName = inputName ?? (model.inputs.count == 1 ? model.inputs[0].name : nil) else {
                throw CAMError.invalidArgument("the model has \(model.inputs.count) inputs; name the image input with inputName")
            }
            guard let outName = outputName ?? model.outputs.first?.name else { throw CAMError.invalidArgument("the model declares no output") }
            guard input.rank == 4 else {
                throw CAMError.shapeMismatch(what: "FullGrad input", expected: "an image batch (B, channels, H, W)", got: input.shape)
            }
            let (b, hh, ww) = (input.shape[0], input.shape[2], input.shape[3])
            let pass = try model.forward([inName: input], recording: .gradient)
            guard let logits = pass.outputs[outName] else { throw CAMError.invalidArgument("output '\(outName)' not found") }
            try checkTargets(classes, logits: logits, batch: b)
            let layers = try biasLayers(of: model).filter { try pass.shape(of: $0.value).count == 4 }
            guard !layers.isEmpty else {
                throw CAMError.invalidArgument("FullGrad: the model has no 2-D Conv with a bias and no BatchNormalization")
            }
            let k = logits.shape[1]
            var seed = [Float](repeating: 0, count: logits.count)
            for (n, c) in classes.enumerated() { seed[n * k + c] = 1 }
            let grads = try pass.backward(seeds: [outName: try Tensor(shape: logits.shape, floats: seed)],
                                          wrt: [inName] + layers.map(\.value))

            var total = [Float](repeating: 0, count: b * hh * ww)
            func accumulate(_ maps: [Float], channels: Int, h: Int, w: Int) throws {
                let scaled = try resizedBilinear(try minMaxScaled(try Tensor(shape: [b * channels, h, w], floats: maps)),
                                                 height: hh, width: ww, alignCorners: false).floats()
                let plane = hh * ww
                for n in 0..<b {
                    for c in 0..<channels {
                        let src = (n * channels + c) * plane
                        for i in 0..<plane { total[n * plane + i] += scaled[src + i] }
                    }
                }
            }
            let x = try input.floats(), gx = try (grads[inName] ?? Tensor(zeros: input.shape)).floats()
            var inputMaps = [Float](repeating: 0, count: x.count)
            for i in 0..<x.count { inputMaps[i] = abs(x[i] * gx[i]) }
            try accumulate(inputMaps, channels: input.shape[1], h: hh, w: ww)
            for layer in layers {
                guard let g = grads[layer.value], g.rank == 4, g.shape[1] == layer.bias.count else { continue }
                let (c, h, w) = (g.shape[1], g.shape[2], g.shape[3])
                let gv = try g.floats()
                var maps = [Float](repeating: 0, count: gv.count)
                for row in 0..<(gv.count / (h * w)) {
                    let bias = layer.bias[row % c]
                    for i in (row * h * w)..<((row + 1) * h * w) { maps[i] = abs(bias * gv[i]) }
                }
                try accumulate(maps, channels: c, h: h, w: w)
            }
            return try minMaxScaled(try Tensor(shape: [b, hh, ww], floats: total))
        }
    }
}
