import LoupeGraph
import LoupeTensor

extension CAM {
    /// Which CAM variant ``CAM/explain(model:input:layer:classes:method:inputName:outputName:)``
    /// runs. Gradient-based and gradient-free variants are ``CAMWeighting`` values; Score-CAM and
    /// Ablation-CAM weigh channels by extra batched forward passes.
    public enum Method: Sendable {
        /// CAM with the (classes, C) weight matrix of the linear layer after global average pooling
        /// (``CAM/globalAveragePooledHeadWeight(model:layer:)`` reads it from the graph, and refuses
        /// heads where it would not decompose the class score).
        case cam(classifierWeight: Tensor)
        case gradCAM, gradCAMPlusPlus, xGradCAM, hiResCAM, layerCAM, eigenCAM, eigenGradCAM
        /// Score-CAM; `batchSize` masked inputs per forward (pytorch-grad-cam default 16).
        case scoreCAM(batchSize: Int = 16)
        /// Ablation-CAM; `batchSize` ablated copies per forward (pytorch-grad-cam default 32).
        case ablationCAM(batchSize: Int = 32, ablation: AblationValue = .pytorchGradCAM)
        /// Any other weighting.
        case custom(any CAMWeighting)

        /// The weighting value, nil for the forward-pass methods.
        public var weighting: (any CAMWeighting)? {
            switch self {
            case let .cam(w): return ClassifierWeights(weight: w)
            case .gradCAM: return GradCAM()
            case .gradCAMPlusPlus: return GradCAMPlusPlus()
            case .xGradCAM: return XGradCAM()
            case .hiResCAM: return HiResCAM()
            case .layerCAM: return LayerCAM()
            case .eigenCAM: return EigenCAM()
            case .eigenGradCAM: return EigenGradCAM()
            case let .custom(w): return w
            case .scoreCAM, .ablationCAM: return nil
            }
        }

        var usesGradients: Bool { weighting?.usesGradients ?? false }
    }

    /// Runs one CAM on a batch.
    ///
    /// One forward pass captures the layer; for gradient methods the seed is the one-hot of
    /// `classes[b]` on sample b's logits and backward stops at the layer (only the nodes after it
    /// are visited). The weighting then reads activations and gradients, reshaped to
    /// (B, C, h, w) — token layers (B, k + h·w, C) of vision transformers are rearranged
    /// automatically with the k leading tokens dropped (class token; DeiT's distillation token;
    /// registers: ``CAM/Layout/of(shape:layer:spatialLayers:)``), and channels-last feature maps (B, h, w, C)
    /// traced through the graph (a Swin Transformer's stages) are permuted.
    ///
    /// ```swift
    /// let r = try CAM.explain(model: model, input: x, layer: "/layer4/relu_1/Relu_output_0",
    ///                         classes: [243], method: .gradCAM)
    /// let heat = try CAM.scaledLikePytorchGradCAM(r.raw, height: 224, width: 224)
    /// ```
    ///
    /// - Parameters:
    ///   - input: the model input, (B, ...) — for Score-CAM an image batch (B, channels, H, W).
    ///   - layer: value name of the layer (see ``Model/hookableValues``).
    ///   - classes: target class per sample (a logit index of `outputName`, shape (B, classes)).
    ///   - inputName / outputName: default to the model's only input and its first output.
    /// - Throws: ``CAMError/noSpatialLayer(layer:shape:spatialLayers:)`` naming the layer and the
    ///   spatial layers before it; `GraphError.unknownValue` with close names for a typo.
    public static func explain(model: Model, input: Tensor, layer: String, classes: [Int], method: Method,
                               inputName: String? = nil, outputName: String? = nil) throws -> CAMResult {
        let hook = try model.hook(layer)
        guard let inName = inputName ?? (model.inputs.count == 1 ? model.inputs[0].name : nil) else {
            throw CAMError.invalidArgument("the model has \(model.inputs.count) inputs; name the image input with inputName")
        }
        guard let outName = outputName ?? model.outputs.first?.name else {
            throw CAMError.invalidArgument("the model declares no output")
        }
        var hooks = Hooks()
        hooks.capture(hook)
        guard model.outputs.contains(where: { $0.name == outName }) else {
            throw CAMError.invalidArgument("output '\(outName)' not found; outputs: \(model.outputs.map(\.name))")
        }
        // Class-agnostic weightings without gradients (Eigen-CAM) need the layer only: the
        // forward pass stops there instead of running the head.
        let layerOnly = method.weighting.map { !$0.usesGradients } ?? false
        let pass = try model.forward([inName: input], hooks: hooks, recording: method.usesGradients ? .gradient : nil,
                                     outputs: layerOnly ? [] : [outName])
        guard let value = pass.captured[layer] else { throw CAMError.invalidArgument("layer '\(layer)' was not captured") }
        let layout = try Layout.of(layer: layer, in: pass)
        // nil exactly when the pass stopped at the layer (no weighting there reads the logits).
        let logits = pass.outputs[outName]
        if let logits {
            try checkTargets(classes, logits: logits, batch: value.shape[0])
        } else if !layerOnly {
            throw CAMError.invalidArgument("output '\(outName)' was not computed")
        } else if classes.count != value.shape[0] {
            throw CAMError.badTarget("\(classes.count) target classes for a batch of \(value.shape[0])")
        }
        let acts = try grid(value, layout: layout)

        var grads: Tensor?
        var readout: CAMReadout
        if let weighting = method.weighting {
            if weighting.usesGradients, let logits {
                let k = logits.shape[1]
                var seed = [Float](repeating: 0, count: logits.count)
                for (b, c) in classes.enumerated() { seed[b * k + c] = 1 }
                let g = try pass.backward(seeds: [outName: try Tensor(shape: logits.shape, floats: seed)], wrt: [layer])
                guard let gl = g[layer] else { throw CAMError.invalidArgument("no gradient at layer '\(layer)'") }
                grads = try grid(gl, layout: layout)
            }
            readout = try weighting.readout(activations: acts, gradients: grads, classes: classes)
        } else if case .scoreCAM = method, case .volumetric = layout {
            throw CAMError.invalidArgument("Score-CAM on a 3-D layer \(value.shape) would need its maps upsampled in 3-D to mask the input; not implemented (use gradcam or ablationcam)")
        } else if case let .scoreCAM(batchSize) = method {
            readout = .channelWeights(try ScoreCAM.weights(model: model, input: input, inputName: inName, outputName: outName,
                                                          activations: acts, classes: classes, batchSize: batchSize))
        } else if case let .ablationCAM(batchSize, ablation) = method, let logits {
            readout = .channelWeights(try AblationCAM.weights(model: model, input: input, inputName: inName, outputName: outName,
                                                             layer: hook, layerValue: value, layout: layout, logits: logits,
                                                             classes: classes, batchSize: batchSize, ablation: ablation))
        } else {
            throw CAMError.invalidArgument("unhandled CAM method")
        }
        let raw = try maps(try rawMap(readout, activations: acts), layout: layout)
        var weights: Tensor?
        if case let .channelWeights(w) = readout { weights = w }
        if case .volumetric = layout {
            // The layer's own (B, C, D, h, w) values, not the weightings' view of them.
            return CAMResult(raw: raw, cam: relu(raw), weights: weights, activations: value,
                             gradients: try grads.map { try $0.reshaped(value.shape) }, layout: layout)
        }
        return CAMResult(raw: raw, cam: relu(raw), weights: weights, activations: acts, gradients: grads, layout: layout)
    }

    static func checkTargets(_ classes: [Int], logits: Tensor, batch: Int) throws {
        guard logits.rank == 2 else {
            throw CAMError.shapeMismatch(what: "model output for class targets", expected: "(batch, classes)", got: logits.shape)
        }
        guard classes.count == logits.shape[0], classes.count == batch else {
            throw CAMError.badTarget("\(classes.count) target classes for a batch of \(logits.shape[0])")
        }
        for c in classes where c < 0 || c >= logits.shape[1] {
            throw CAMError.badTarget("class \(c) outside 0..<\(logits.shape[1])")
        }
    }

    /// Up to three spatial layers computed before `layer`, nearest first.
    static func spatialLayers(before layer: String, in pass: ForwardPass) -> [String] {
        let names = pass.model.hookableValues
        let end = names.firstIndex(of: layer) ?? names.count
        var found: [String] = []
        for name in names[..<end].reversed() {
            if let s = try? pass.shape(of: name), Layout.isSpatial(s) { found.append(name) }
            if found.count == 3 { break }
        }
        return found
    }
}

/// The outcome of one CAM call.
public struct CAMResult: Sendable {
    /// `Σ_c w·A` (or the variant's map) before ReLU, (B, h, w) at the layer's resolution
    /// ((B, D, h, w) for a 3-D layer): pytorch-grad-cam's `get_cam_image`.
    public let raw: Tensor
    /// `ReLU(raw)`: the class activation map, unnormalized (Captum's `relu_attributions=True`).
    public let cam: Tensor
    /// Channel weights (B, C) for the channel-weighting variants, nil for pixel-wise ones.
    public let weights: Tensor?
    /// Layer activations as (B, C, h, w) (token and channels-last layers rearranged; a 3-D layer
    /// as it is, (B, C, D, h, w)).
    public let activations: Tensor
    /// Gradients at the layer, shaped as ``activations``, for gradient variants.
    public let gradients: Tensor?
    public let layout: CAM.Layout
}

extension CAMResult {
    /// The image pytorch-grad-cam 1.5.7 returns for this map: see
    /// ``CAM/scaledLikePytorchGradCAM(_:height:width:)``.
    public func scaled(height: Int, width: Int) throws -> Tensor {
        try CAM.scaledLikePytorchGradCAM(raw, height: height, width: width)
    }
}
