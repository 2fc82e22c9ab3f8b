/// Errors raised by tensor operations. Each case names the operation and what it expected, so
/// callers higher up (a graph node, the CLI) can prefix their own context.
public enum TensorError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Element count does not match the shape.
    case countMismatch(shape: [Int], count: Int)
    /// An operation got a shape it cannot use.
    case shapeMismatch(op: String, expected: String, got: [[Int]])
    /// An operation got an element type it does not handle.
    case dtypeMismatch(op: String, expected: String, got: DType)
    /// An argument (axis, attribute value, index) is out of range or inconsistent.
    case invalidArgument(op: String, message: String)
    /// A file could not be read or written as a tensor (NPY, ...).
    case io(path: String, message: String)

    public var description: String {
        switch self {
        case let .countMismatch(shape, count):
            return "tensor of shape \(shape) needs \(shape.reduce(1, *)) elements, got \(count)"
        case let .shapeMismatch(op, expected, got):
            return "\(op): expected \(expected), got shapes \(got.map { "\($0)" }.joined(separator: ", "))"
        case let .dtypeMismatch(op, expected, got):
            return "\(op): expected \(expected) tensor, got \(got)"
        case let .invalidArgument(op, message):
            return "\(op): \(message)"
        case let .io(path, message):
            return "\(path): \(message)"
        }
    }
}
