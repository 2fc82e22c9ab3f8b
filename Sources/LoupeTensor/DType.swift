/// Element type of a ``Tensor``.
///
/// Loupe computes in `float32`. `int64` and `bool` exist for the shape arithmetic and masks that
/// exported graphs carry (Shape/Gather/Concat chains, Where, Equal). Narrower ONNX integer types
/// are widened to `int64` and `float16`/`double` are stored as `float32` on import.
public enum DType: String, Sendable, Hashable, CustomStringConvertible {
    case float32
    case int64
    case bool

    public var description: String { rawValue }
}
