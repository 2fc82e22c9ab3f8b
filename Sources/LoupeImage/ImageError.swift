/// Errors of image decoding, encoding and processing. Each names the file (or `<bytes>` for
/// in-memory data) and what was wrong, in one line.
public enum ImageError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file could not be read or written.
    case io(path: String, message: String)
    /// The file holds zero bytes.
    case empty(path: String)
    /// The first bytes are neither PNG nor JPEG (the format is sniffed, never taken from the
    /// extension); `magic` shows them in hex.
    case unknownFormat(path: String, magic: String)
    /// The file claims a format but is truncated or corrupt; `message` is the decoder's reason.
    case corrupt(path: String, format: ImageFormat, message: String)
    /// A valid file using a feature Loupe does not decode (e.g. CMYK JPEG).
    case unsupported(path: String, format: ImageFormat, message: String)
    /// The decoded image would exceed the decode size limit.
    case tooLarge(path: String, width: Int, height: Int, limitBytes: Int)
    /// A bad argument to an image operation (`op` names it).
    case invalidArgument(op: String, message: String)

    public var description: String {
        switch self {
        case let .io(path, message): return "\(path): \(message)"
        case let .empty(path): return "\(path): empty file (0 bytes), expected a PNG or JPEG image"
        case let .unknownFormat(path, magic):
            return "\(path): not a PNG or JPEG image (file starts with \(magic))"
        case let .corrupt(path, format, message): return "\(path): corrupt \(format.name) file: \(message)"
        case let .unsupported(path, format, message): return "\(path): unsupported \(format.name) file: \(message)"
        case let .tooLarge(path, width, height, limit):
            return "\(path): image of \(width) x \(height) pixels exceeds the decode limit of \(limit) bytes"
        case let .invalidArgument(op, message): return "\(op): \(message)"
        }
    }
}
