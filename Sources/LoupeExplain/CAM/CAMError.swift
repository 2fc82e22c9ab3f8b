import LoupeTensor

/// Why a CAM could not be computed. Every case names the layer (a value name in the model) or
/// the argument at fault and what was expected.
public enum CAMError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The layer's value is neither (B, C, h, w) nor ViT tokens (B, k + h·w, C).
    /// `spatialLayers` lists the spatial layers closest before it, to pick instead.
    case noSpatialLayer(layer: String, shape: [Int], spatialLayers: [String])
    /// A token layer whose token count minus 1, 2 or 5 leading tokens is not a square number.
    case tokensNotSquare(layer: String, tokens: Int)
    /// Shapes of activations, gradients, weights, targets or input do not fit together.
    case shapeMismatch(what: String, expected: String, got: [Int])
    /// A target class outside the model's outputs, or one class count per sample missing.
    case badTarget(String)
    /// The method needs something the call did not give (gradients, a model input name...).
    case invalidArgument(String)
    /// CAM's class-score decomposition does not hold for the layer: on the path to the scores,
    /// `node` (an `op`) stands where `expected` was needed.
    case headNotLinear(layer: String, node: String, op: String, expected: String)

    public var description: String {
        switch self {
        case let .noSpatialLayer(layer, shape, near):
            let hint = near.isEmpty ? "" : "; spatial layers before it: " + near.map { "'\($0)'" }.joined(separator: ", ")
            return "layer '\(layer)' has shape \(shape): no spatial layer — a CAM needs (batch, channels, height, width) or ViT tokens (batch, k + h·w, channels) after k = 1, 2 or 5 leading tokens\(hint)"
        case let .tokensNotSquare(layer, tokens):
            return "layer '\(layer)' holds \(tokens) tokens: after dropping 1, 2 or 5 leading tokens (class token; distillation token; registers) no square patch grid of at least 2 × 2 is left"
        case let .shapeMismatch(what, expected, got):
            return "\(what): expected \(expected), got shape \(got)"
        case let .badTarget(s):
            return "CAM target: \(s)"
        case let .invalidArgument(s):
            return "CAM: \(s)"
        case let .headNotLinear(layer, node, op, expected):
            return "CAM needs layer '\(layer)' to reach the class scores through global average pooling and one linear layer; found \(op) at '\(node)' where it expected \(expected) (Grad-CAM needs no such head)"
        }
    }
}
