import LoupeTensor

/// The reference input of path methods (Integrated Gradients, DeepLIFT-style "x − baseline").
public enum Baseline: Sendable {
    /// All zeros (Captum's default).
    case zeros
    /// The same value everywhere.
    case constant(Float)
    /// A tensor with the input's shape, or with batch 1 (shared by every sample).
    case tensor(Tensor)

    /// The baseline as a tensor of `x`'s shape.
    func resolve(like x: Tensor, method: String) throws -> Tensor {
        switch self {
        case .zeros: return Tensor(zeros: x.shape)
        case let .constant(v): return Tensor(zeros: x.shape, value: v)
        case let .tensor(b):
            if b.shape == x.shape { return b }
            if b.rank == x.rank, b.rank >= 1, b.shape[0] == 1, Array(b.shape.dropFirst()) == Array(x.shape.dropFirst()) {
                return try b.gatheringRows(Array(repeating: 0, count: x.shape[0]))
            }
            throw ExplainError.invalidArgument(method: method, message: "baseline of shape \(b.shape) for an input of shape \(x.shape); use the input's shape or batch 1")
        }
    }

    /// The baseline for inputs whose samples were each repeated `n` times in place.
    func repeatingSamples(_ n: Int) throws -> Baseline {
        guard case let .tensor(b) = self, b.rank >= 1, b.shape[0] > 1 else { return self }
        return .tensor(try b.gatheringRows((0..<b.shape[0]).flatMap { Array(repeating: $0, count: n) }))
    }
}
