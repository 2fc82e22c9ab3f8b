import LoupeGraph
import LoupeTensor

/// Guided Grad-CAM (Selvaraju et al. 2017, "Grad-CAM: Visual Explanations from Deep Networks via
/// Gradient-based Localization", arXiv:1610.02391, §3.1): guided backpropagation in input space,
/// multiplied element-wise by the Grad-CAM map of a layer upsampled to the input's spatial size,
///
///     attribution[b, c, y, x] = GB[b, c, y, x] · up(ReLU(Σ_k w[b,k]·A[b,k]))[b, y, x],
///     w[b,k] = mean_ij ∂f_b/∂A[b,k,i,j]
///
/// — Captum 0.9.0's `GuidedGradCam(model, layer).attribute(x, target, interpolate_mode)`:
/// `LayerGradCam(relu_attributions=True)` (plain gradients) times `GuidedBackprop` (Relu nodes
/// pass only positive gradients where their input was positive), the map upsampled by
/// `F.interpolate` (`.nearest`, Captum's default, or `.bilinear`, `align_corners=False`).
///
/// The input must be an image batch (B, C, H, W). The layer is a hook name whose value is
/// (B, K, h, w), or ViT tokens (B, k + h·w, K) read like ``CAM/Layout/tokens(height:width:prefix:)``
/// (an extension: Captum would average over the channel axis of a token layer instead).
/// `weighting` replaces Grad-CAM's channel weights by any CAM variant (Guided Grad-CAM++ ...);
/// the default is Grad-CAM.
///
/// ```swift
/// let e = try GuidedGradCAM(layer: "/conv2/Conv_output_0").explain(model, input: x, target: .top)
/// e.attribution   // (B, C, H, W)
/// ```
public struct GuidedGradCAM: Explainer {
    /// How the layer map reaches the input's size (`F.interpolate` modes).
    public enum Interpolation: String, Sendable {
        /// `mode="nearest"`: source index `floor(o · in / out)` (float32 scale, as PyTorch).
        case nearest
        /// `mode="bilinear", align_corners=False`: half-pixel centres, clamped at the edges.
        case bilinear
    }

    /// The hook name of the Grad-CAM layer.
    public var layer: String
    public var interpolation: Interpolation
    public var weighting: any CAMWeighting

    public init(layer: String, interpolation: Interpolation = .nearest, weighting: any CAMWeighting = CAM.GradCAM()) {
        self.layer = layer
        self.interpolation = interpolation
        self.weighting = weighting
    }

    public var methodName: String { "GuidedGradCAM" }

    public func explain(_ model: Model, inputs: [String: Tensor], target: Target, options: ExplainOptions) throws -> Explanation {
        if options.layer != nil {
            throw ExplainError.unsupported(method: methodName, reason: "Guided Grad-CAM attributes to the input; its layer is the Grad-CAM layer ('\(layer)'), not options.layer")
        }
        var guided = try GuidedBackprop().explain(model, inputs: inputs, target: target, options: options)
        let gb = guided.attribution
        guard gb.rank == 4 else {
            throw ExplainError.unsupported(method: methodName, reason: "input '\(guided.input)' has shape \(gb.shape); Guided Grad-CAM needs an image batch (B, C, H, W)")
        }
        // The Grad-CAM half uses plain gradients (Captum runs LayerGradCam without the guided hooks).
        let readout = try ModifiedBackward().readout(model, inputs: inputs, target: target, layer: layer, options: options)
        let layout = try CAM.Layout.of(layer: layer, shape: readout.activations.shape, in: model,
                                       inputShapes: inputs.mapValues(\.shape))
        let acts = try CAM.grid(readout.activations, layout: layout)
        let grads = try CAM.grid(readout.gradients, layout: layout)
        let map = CAM.relu(try CAM.rawMap(try weighting.readout(activations: acts, gradients: grads, classes: readout.targets ?? []),
                                          activations: acts))
        let (b, c, h, w) = (gb.shape[0], gb.shape[1], gb.shape[2], gb.shape[3])
        guard map.rank == 3, map.shape[0] == b else {
            throw ExplainError.unsupported(method: methodName, reason: "layer '\(layer)' gives maps of shape \(map.shape) for a batch of \(b)")
        }
        let up: Tensor
        switch interpolation {
        case .nearest: up = try Self.resizedNearest(map, height: h, width: w)
        case .bilinear: up = try CAM.resizedBilinear(map, height: h, width: w, alignCorners: false)
        }
        let g = try gb.floats(methodName), m = try up.floats(methodName)
        let hw = h * w
        guided.attribution = Tensor.makeFloats(shape: gb.shape) { out in
            g.withUnsafeBufferPointer { gp in
                m.withUnsafeBufferPointer { mp in
                    for n in 0..<b {
                        for ch in 0..<c {
                            let o = (n * c + ch) * hw, mo = n * hw
                            for p in 0..<hw { out[o + p] = gp[o + p] * mp[mo + p] }
                        }
                    }
                }
            }
        }
        guided.method = methodName
        guided.parameters = ["layer": layer, "interpolation": interpolation.rawValue,
                             "weighting": String(describing: type(of: weighting))]
        return guided
    }

    /// Nearest-neighbour resize of (N, h, w) maps like `F.interpolate(mode="nearest")`:
    /// output index o reads `min(floor(o · Float(in)/Float(out)), in − 1)`.
    public static func resizedNearest(_ maps: Tensor, height: Int, width: Int) throws -> Tensor {
        guard maps.rank == 3, height > 0, width > 0 else {
            throw CAMError.shapeMismatch(what: "nearest resize to \(height)×\(width)", expected: "(N, h, w) and a positive size", got: maps.shape)
        }
        let (n, h, w) = (maps.shape[0], maps.shape[1], maps.shape[2])
        let ys = nearestTaps(from: h, to: height), xs = nearestTaps(from: w, to: width)
        let v = try maps.floats("nearest resize")
        return Tensor.makeFloats(shape: [n, height, width]) { out in
            for k in 0..<n {
                for oy in 0..<height {
                    let row = k * h * w + ys[oy] * w, o = (k * height + oy) * width
                    for ox in 0..<width { out[o + ox] = v[row + xs[ox]] }
                }
            }
        }
    }

    static func nearestTaps(from inSize: Int, to outSize: Int) -> [Int] {
        // PyTorch computes the scale in float32 and truncates the product (its nearest_idx).
        let scale = Float(inSize) / Float(outSize)
        return (0..<outSize).map { o in
            if outSize == inSize { return o }
            if outSize == 2 * inSize { return o >> 1 }
            return min(Int((Float(o) * scale).rounded(.down)), inSize - 1)
        }
    }
}
