/// Errors from explainers. Each case names the method and what was expected; errors from the
/// model itself (an operator without a gradient, a bad input shape) arrive as `GraphError`.
public enum ExplainError: Error, Sendable, CustomStringConvertible {
    /// A parameter of the method is out of range or inconsistent with the inputs.
    case invalidArgument(method: String, message: String)
    /// The method cannot run on this model or input (no such input, a value without a batch axis).
    case unsupported(method: String, reason: String)

    public var description: String {
        switch self {
        case let .invalidArgument(method, message): return "\(method): \(message)"
        case let .unsupported(method, reason): return "\(method) cannot run here: \(reason)"
        }
    }
}
