import LoupeTensor

extension CAM {
    /// How a layer's value maps onto the (B, C, h, w) grid that CAM weightings read.
    public enum Layout: Equatable, Sendable {
        /// A convolutional feature map, already (B, C, h, w).
        case spatial
        /// ViT tokens (B, 1 + h·w, C): token 0 is the class token, token 1 + i·w + j is patch (i, j).
        case tokens(height: Int, width: Int)

        /// Classifies the shape of the value named `layer`.
        ///
        /// Rank 4 is spatial; rank 3 with a square number of tokens after the class token is a
        /// token layer (the reshape `tensor[:, 1:, :].reshape(B, h, w, C)` then channels first,
        /// that pytorch-grad-cam users write by hand as `reshape_transform`). Anything else
        /// throws ``CAMError/noSpatialLayer(layer:shape:spatialLayers:)``.
        public static func of(shape: [Int], layer: String, spatialLayers: @autoclosure () -> [String] = []) throws -> Layout {
            if shape.count == 4 { return .spatial }
            if shape.count == 3, shape[1] >= 2 {
                let n = shape[1] - 1
                var s = Int(Double(n).squareRoot().rounded())
                while s * s > n { s -= 1 }
                while (s + 1) * (s + 1) <= n { s += 1 }
                guard s * s == n else { throw CAMError.tokensNotSquare(layer: layer, tokens: shape[1]) }
                return .tokens(height: s, width: s)
            }
            throw CAMError.noSpatialLayer(layer: layer, shape: shape, spatialLayers: spatialLayers())
        }

        /// True when `shape` could be read as a CAM layer (used to suggest alternatives).
        public static func isSpatial(_ shape: [Int]) -> Bool {
            if shape.count == 4 { return true }
            guard shape.count == 3, shape[1] >= 2 else { return false }
            let n = shape[1] - 1
            let s = Int(Double(n).squareRoot().rounded())
            return s * s == n
        }
    }

    /// Rearranges a layer value (activations or gradients) into (B, C, h, w).
    /// For tokens: class token dropped, `out[b, c, i, j] = t[b, 1 + i·w + j, c]`.
    public static func grid(_ value: Tensor, layout: Layout) throws -> Tensor {
        switch layout {
        case .spatial:
            guard value.rank == 4 else { throw CAMError.shapeMismatch(what: "spatial layer", expected: "(B, C, h, w)", got: value.shape) }
            return value
        case let .tokens(h, w):
            guard value.rank == 3, value.shape[1] == 1 + h * w else {
                throw CAMError.shapeMismatch(what: "token layer", expected: "(B, \(1 + h * w), C)", got: value.shape)
            }
            let b = value.shape[0], t = value.shape[1], c = value.shape[2], hw = h * w
            let src = try value.floats("CAM token grid")
            return Tensor.makeFloats(shape: [b, c, h, w]) { out in
                src.withUnsafeBufferPointer { s in
                    for n in 0..<b {
                        for p in 0..<hw {
                            let from = (n * t + 1 + p) * c
                            for ch in 0..<c { out[(n * c + ch) * hw + p] = s[from + ch] }
                        }
                    }
                }
            }
        }
    }
}
