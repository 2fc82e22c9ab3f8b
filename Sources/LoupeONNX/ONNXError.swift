/// Errors from reading or writing ONNX files (`ModelProto`, `TensorProto`).
///
/// Every case names the file (or `<bytes>` when decoding from memory) and says what was
/// expected; wire-format errors also give the absolute byte offset and the field path
/// (for example `graph.node[3] 'conv1'.attribute 'pads'`).
public enum ONNXError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file could not be opened, read or written.
    case io(file: String, message: String)
    /// The bytes are not a valid protobuf message of the expected kind. `offset` is the
    /// absolute byte offset in the file where the problem was found.
    case malformed(file: String, offset: Int, message: String)
    /// The file is well formed but uses a feature Loupe does not read or write
    /// (string tensors, sparse initializers, complex numbers, float8, ...).
    case unsupported(file: String, message: String)
    /// A tensor stored outside the model file could not be loaded.
    case externalData(file: String, tensor: String, message: String)
    /// A graph cannot be written as ONNX (exporting only).
    case export(message: String)

    public var description: String {
        switch self {
        case let .io(file, message):
            return "\(file): \(message)"
        case let .malformed(file, offset, message):
            return "\(file): malformed ONNX protobuf at byte \(offset): \(message)"
        case let .unsupported(file, message):
            return "\(file): unsupported ONNX feature: \(message)"
        case let .externalData(file, tensor, message):
            return "\(file): external data of tensor '\(tensor)': \(message)"
        case let .export(message):
            return "cannot export ONNX: \(message)"
        }
    }
}
