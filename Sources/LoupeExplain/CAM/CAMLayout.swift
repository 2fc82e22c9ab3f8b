import LoupeGraph
import LoupeTensor

extension CAM {
    /// How a layer's value maps onto the (B, C, h, w) grid that CAM weightings read.
    public enum Layout: Equatable, Sendable {
        /// A convolutional feature map, already (B, C, h, w).
        case spatial
        /// ViT tokens (B, prefix + h·w, C): the first `prefix` tokens are the class token and any
        /// other learned tokens before the patches (DeiT's distillation token, ViT registers);
        /// token prefix + i·w + j is patch (i, j).
        case tokens(height: Int, width: Int, prefix: Int = 1)
        /// A channels-last feature map (B, h, w, C), as a Swin Transformer's stages and norms
        /// (``FeatureMapLayout/channelsLast``): pytorch-grad-cam users pass
        /// `reshape_transform=lambda t: t.permute(0, 3, 1, 2)` for it.
        case channelsLast
        /// A 3-D feature map (B, C, D, h, w) of a video or volume network: the weightings see its
        /// D·h·w positions (pytorch-grad-cam's 3-D Grad-CAM), maps come out (B, D, h, w).
        case volumetric(depth: Int)

        /// Classifies the shape of the value named `layer`.
        ///
        /// Rank 4 is spatial; rank 3 is a token layer when, after a prefix of 1 (the class token),
        /// 2 (class and distillation tokens, DeiT; Touvron et al. 2021) or 5 (class token and
        /// four registers; Darcet et al. 2024, *Vision Transformers Need Registers*) tokens, the
        /// rest is a square grid of at least 2 × 2 — the smallest such prefix (the reshape
        /// `tensor[:, k:, :].reshape(B, h, w, C)` then channels first that pytorch-grad-cam users
        /// write by hand as `reshape_transform`). Anything else throws
        /// ``CAMError/noSpatialLayer(layer:shape:spatialLayers:)`` or
        /// ``CAMError/tokensNotSquare(layer:tokens:)``.
        public static func of(shape: [Int], layer: String, spatialLayers: @autoclosure () -> [String] = []) throws -> Layout {
            if shape.count == 4 { return .spatial }
            if shape.count == 5 { return .volumetric(depth: shape[2]) }
            if shape.count == 3, shape[1] >= 2 {
                guard let (prefix, side) = tokenGrid(shape[1]) else { throw CAMError.tokensNotSquare(layer: layer, tokens: shape[1]) }
                return .tokens(height: side, width: side, prefix: prefix)
            }
            throw CAMError.noSpatialLayer(layer: layer, shape: shape, spatialLayers: spatialLayers())
        }

        /// The layout of the value `layer` computed in `pass`: as ``of(shape:layer:spatialLayers:)``,
        /// except that a rank-4 value traced as channels-last through the graph
        /// (``ForwardPass/isChannelsLast(_:)``) is ``channelsLast``.
        public static func of(layer: String, in pass: ForwardPass) throws -> Layout {
            let shape = try pass.shape(of: layer)
            let layout = try of(shape: shape, layer: layer, spatialLayers: CAM.spatialLayers(before: layer, in: pass))
            if layout == .spatial, try pass.isChannelsLast(layer) { return .channelsLast }
            return layout
        }

        /// The layout of `layer` when no pass is at hand: the model's shapes are inferred from
        /// the input shapes to trace it.
        public static func of(layer: String, shape: [Int], in model: Model, inputShapes: [String: [Int]]) throws -> Layout {
            let layout = try of(shape: shape, layer: layer)
            guard layout == .spatial else { return layout }
            let shapes = try model.inferShapes(inputShapes: inputShapes)
            return model.featureMapLayouts(shapes: shapes)[layer] == .channelsLast ? .channelsLast : .spatial
        }

        /// (channels, positions) of one sample of a value in this layout, and the element strides
        /// of the channel and position indices within the sample.
        func channelGeometry(_ shape: [Int]) -> (channels: Int, positions: Int, channelStride: Int, positionStride: Int) {
            switch self {
            case .spatial: return (shape[1], shape[2] * shape[3], shape[2] * shape[3], 1)
            case .tokens: return (shape[2], shape[1], 1, shape[2])
            case .channelsLast: return (shape[3], shape[1] * shape[2], 1, shape[3])
            case .volumetric: return (shape[1], shape[2] * shape[3] * shape[4], shape[2] * shape[3] * shape[4], 1)
            }
        }

        /// True when `shape` could be read as a CAM layer (used to suggest alternatives).
        public static func isSpatial(_ shape: [Int]) -> Bool {
            if shape.count == 4 || shape.count == 5 { return true }
            return shape.count == 3 && tokenGrid(shape[1]) != nil
        }

        /// Token prefixes tried, in order: class token; class + distillation token; class + 4 registers.
        static let tokenPrefixes = [1, 2, 5]

        /// (prefix, side) of the first prefix in ``tokenPrefixes`` leaving a square grid of side ≥ 2.
        static func tokenGrid(_ tokens: Int) -> (prefix: Int, side: Int)? {
            for prefix in tokenPrefixes where tokens - prefix >= 4 {
                let n = tokens - prefix
                var side = Int(Double(n).squareRoot().rounded())
                while side * side > n { side -= 1 }
                while (side + 1) * (side + 1) <= n { side += 1 }
                if side * side == n { return (prefix, side) }
            }
            return nil
        }
    }

    /// Rearranges a layer value (activations or gradients) into (B, C, h, w); a 3-D layer into
    /// (B, C, D·h, w), whose maps ``maps(_:layout:)`` restores to (B, D, h, w).
    /// For tokens: the prefix (class token...) dropped, `out[b, c, i, j] = t[b, prefix + i·w + j, c]`; channels-last:
    /// `out[b, c, i, j] = t[b, i, j, c]`.
    public static func grid(_ value: Tensor, layout: Layout) throws -> Tensor {
        switch layout {
        case .spatial:
            guard value.rank == 4 else { throw CAMError.shapeMismatch(what: "spatial layer", expected: "(B, C, h, w)", got: value.shape) }
            return value
        case .channelsLast:
            guard value.rank == 4 else { throw CAMError.shapeMismatch(what: "channels-last layer", expected: "(B, h, w, C)", got: value.shape) }
            return try value.permuted([0, 3, 1, 2])
        case let .volumetric(depth):
            guard value.rank == 5, value.shape[2] == depth else {
                throw CAMError.shapeMismatch(what: "3-D layer", expected: "(B, C, \(depth), h, w)", got: value.shape)
            }
            // Depth and height as one axis: the weightings only ever sum or pair positions.
            return try value.reshaped([value.shape[0], value.shape[1], depth * value.shape[3], value.shape[4]])
        case let .tokens(h, w, prefix):
            guard value.rank == 3, value.shape[1] == prefix + h * w else {
                throw CAMError.shapeMismatch(what: "token layer", expected: "(B, \(prefix + h * w), C)", got: value.shape)
            }
            let b = value.shape[0], t = value.shape[1], c = value.shape[2], hw = h * w
            let src = try value.floats("CAM token grid")
            return Tensor.makeFloats(shape: [b, c, h, w]) { out in
                src.withUnsafeBufferPointer { s in
                    for n in 0..<b {
                        for p in 0..<hw {
                            let from = (n * t + prefix + p) * c
                            for ch in 0..<c { out[(n * c + ch) * hw + p] = s[from + ch] }
                        }
                    }
                }
            }
        }
    }

    /// A raw or ReLU'd map (B, h', w) of the grid back in the layer's own positions: (B, D, h, w)
    /// for a 3-D layer, unchanged otherwise.
    static func maps(_ m: Tensor, layout: Layout) throws -> Tensor {
        guard case let .volumetric(depth) = layout, m.rank == 3, depth > 0, m.shape[1] % depth == 0 else { return m }
        return try m.reshaped([m.shape[0], depth, m.shape[1] / depth, m.shape[2]])
    }
}
