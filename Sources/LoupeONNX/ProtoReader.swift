/// Protocol-buffer wire types (https://protobuf.dev/programming-guides/encoding/).
enum WireType: UInt8, CustomStringConvertible {
    case varint = 0
    case fixed64 = 1
    case lengthDelimited = 2
    case startGroup = 3
    case endGroup = 4
    case fixed32 = 5

    var description: String {
        switch self {
        case .varint: return "varint"
        case .fixed64: return "64-bit"
        case .lengthDelimited: return "length-delimited"
        case .startGroup: return "start-group"
        case .endGroup: return "end-group"
        case .fixed32: return "32-bit"
        }
    }
}

/// A bounds-checked reader over one protobuf message inside a byte buffer.
///
/// Hand-written instead of generated so that every error can say *where* it happened: the
/// absolute byte offset in the file and a field path such as `graph.node[2] 'conv'.attribute`.
/// Offsets are absolute positions in `buffer`; a nested message gets a reader over its byte range
/// with one more level of depth. Every read checks `end`, so truncated or lying lengths become
/// errors, never out-of-bounds reads. The caller must keep `buffer` alive for the reader's life
/// (decoding runs inside one `withUnsafeBufferPointer` scope).
struct ProtoReader {
    /// Deepest message nesting accepted (protobuf's own default limit), so a crafted file of
    /// nested subgraphs cannot exhaust the stack.
    static let maxDepth = 100

    let buffer: UnsafeBufferPointer<UInt8>
    let file: String
    /// Field path of this message, for errors.
    let path: String
    let depth: Int
    private(set) var position: Int
    let end: Int
    /// Offset of the tag of the field being read, for errors.
    private(set) var fieldStart: Int

    init(buffer: UnsafeBufferPointer<UInt8>, file: String, path: String) {
        self.init(buffer: buffer, file: file, path: path, depth: 0, range: 0..<buffer.count)
    }

    private init(buffer: UnsafeBufferPointer<UInt8>, file: String, path: String, depth: Int, range: Range<Int>) {
        self.buffer = buffer
        self.file = file
        self.path = path
        self.depth = depth
        self.position = range.lowerBound
        self.end = range.upperBound
        self.fieldStart = range.lowerBound
    }

    var isAtEnd: Bool { position >= end }

    /// "path: " for prefixing messages, or "" at the top level.
    var pathPrefix: String { path.isEmpty ? "" : "\(path): " }

    /// A malformed-file error at the current field, naming the field path.
    func malformed(_ message: String, at offset: Int? = nil) -> ONNXError {
        .malformed(file: file, offset: offset ?? fieldStart, message: pathPrefix + message)
    }

    // MARK: Primitive reads

    mutating func readVarint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        let start = position
        while true {
            guard position < end else {
                throw malformed("varint runs past the end of the message (ends at byte \(end))", at: start)
            }
            let byte = buffer[position]
            position += 1
            if shift == 63 && byte > 1 {
                throw malformed("varint longer than 64 bits", at: start)
            }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
            if shift > 63 { throw malformed("varint longer than 10 bytes", at: start) }
        }
    }

    mutating func readFixed32() throws -> UInt32 {
        guard end - position >= 4 else {
            throw malformed("32-bit value needs 4 bytes, \(end - position) left in the message", at: position)
        }
        var v: UInt32 = 0
        for i in 0..<4 { v |= UInt32(buffer[position + i]) << (8 * UInt32(i)) }
        position += 4
        return v
    }

    mutating func readFixed64() throws -> UInt64 {
        guard end - position >= 8 else {
            throw malformed("64-bit value needs 8 bytes, \(end - position) left in the message", at: position)
        }
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(buffer[position + i]) << (8 * UInt64(i)) }
        position += 8
        return v
    }

    /// Reads a length prefix and returns the absolute byte range of the payload.
    mutating func readLengthDelimited(field: String? = nil) throws -> Range<Int> {
        let lengthAt = position
        let length = try readVarint()
        guard length <= UInt64(end - position) else {
            let what = field.map { "field '\($0)': " } ?? ""
            let hint = end == buffer.count ? "; the file may be truncated" : ""
            throw malformed("\(what)length \(length) runs past the end of the message (\(end - position) bytes left)\(hint)", at: lengthAt)
        }
        let start = position
        position += Int(length)
        return start..<position
    }

    // MARK: Fields

    /// The next field's number and wire type, or nil at the end of the message.
    mutating func nextField() throws -> (number: Int, wireType: WireType)? {
        guard position < end else { return nil }
        fieldStart = position
        let key = try readVarint()
        let number = key >> 3
        guard number >= 1 && number <= 536_870_911 else {
            throw malformed("invalid field number \(number)")
        }
        guard let wire = WireType(rawValue: UInt8(key & 7)) else {
            throw malformed("invalid wire type \(key & 7) for field \(number)")
        }
        return (Int(number), wire)
    }

    /// Skips a field Loupe does not use. Groups (deprecated proto2 feature, never used by ONNX)
    /// are rejected rather than skipped.
    mutating func skip(_ wire: WireType, field: Int) throws {
        switch wire {
        case .varint: _ = try readVarint()
        case .fixed64: _ = try readFixed64()
        case .fixed32: _ = try readFixed32()
        case .lengthDelimited: _ = try readLengthDelimited(field: "\(field)")
        case .startGroup, .endGroup:
            throw malformed("field \(field) uses the \(wire) wire type, which ONNX never uses")
        }
    }

    func expect(_ wire: WireType, _ expected: WireType, field: String) throws {
        guard wire == expected else {
            throw malformed("field '\(field)' has wire type \(wire), expected \(expected)")
        }
    }

    /// A reader over a nested message's bytes; fails beyond ``maxDepth`` levels.
    mutating func readMessage(_ wire: WireType, field: String, path childPath: String) throws -> ProtoReader {
        try expect(wire, .lengthDelimited, field: field)
        let range = try readLengthDelimited(field: field)
        guard depth + 1 <= Self.maxDepth else {
            throw malformed("messages nested deeper than \(Self.maxDepth) levels")
        }
        let full = path.isEmpty ? childPath : "\(path).\(childPath)"
        return ProtoReader(buffer: buffer, file: file, path: full, depth: depth + 1, range: range)
    }

    mutating func readBytes(_ wire: WireType, field: String) throws -> Range<Int> {
        try expect(wire, .lengthDelimited, field: field)
        return try readLengthDelimited(field: field)
    }

    /// A `string` field. Invalid UTF-8 is repaired (U+FFFD) rather than rejected, as protobuf
    /// runtimes in other languages accept such names too.
    mutating func readString(_ wire: WireType, field: String) throws -> String {
        let r = try readBytes(wire, field: field)
        return String(decoding: UnsafeBufferPointer(rebasing: buffer[r]), as: UTF8.self)
    }

    mutating func readInt64(_ wire: WireType, field: String) throws -> Int64 {
        try expect(wire, .varint, field: field)
        return Int64(bitPattern: try readVarint())
    }

    /// An `int32`/enum field: the varint carries a sign-extended 64-bit value.
    mutating func readInt32(_ wire: WireType, field: String) throws -> Int32 {
        try expect(wire, .varint, field: field)
        return Int32(truncatingIfNeeded: try readVarint())
    }

    mutating func readFloat(_ wire: WireType, field: String) throws -> Float {
        try expect(wire, .fixed32, field: field)
        return Float(bitPattern: try readFixed32())
    }

    // MARK: Repeated scalars (packed or not: protobuf parsers must accept both)

    mutating func appendVarints(_ wire: WireType, field: String, into out: inout [UInt64]) throws {
        switch wire {
        case .varint:
            out.append(try readVarint())
        case .lengthDelimited:
            let r = try readLengthDelimited(field: field)
            var sub = ProtoReader(buffer: buffer, file: file, path: path, depth: depth, range: r)
            while !sub.isAtEnd { out.append(try sub.readVarint()) }
        default:
            throw malformed("repeated field '\(field)' has wire type \(wire), expected varint or packed")
        }
    }

    mutating func appendInt64s(_ wire: WireType, field: String, into out: inout [Int64]) throws {
        var raw: [UInt64] = []
        try appendVarints(wire, field: field, into: &raw)
        out.reserveCapacity(out.count + raw.count)
        for v in raw { out.append(Int64(bitPattern: v)) }
    }

    mutating func appendFixed32s(_ wire: WireType, field: String, into out: inout [UInt32]) throws {
        switch wire {
        case .fixed32:
            out.append(try readFixed32())
        case .lengthDelimited:
            let r = try readLengthDelimited(field: field)
            guard r.count % 4 == 0 else {
                throw malformed("packed field '\(field)' has \(r.count) bytes, not a multiple of 4")
            }
            out.reserveCapacity(out.count + r.count / 4)
            var sub = ProtoReader(buffer: buffer, file: file, path: path, depth: depth, range: r)
            while !sub.isAtEnd { out.append(try sub.readFixed32()) }
        default:
            throw malformed("repeated field '\(field)' has wire type \(wire), expected 32-bit or packed")
        }
    }

    mutating func appendFixed64s(_ wire: WireType, field: String, into out: inout [UInt64]) throws {
        switch wire {
        case .fixed64:
            out.append(try readFixed64())
        case .lengthDelimited:
            let r = try readLengthDelimited(field: field)
            guard r.count % 8 == 0 else {
                throw malformed("packed field '\(field)' has \(r.count) bytes, not a multiple of 8")
            }
            out.reserveCapacity(out.count + r.count / 8)
            var sub = ProtoReader(buffer: buffer, file: file, path: path, depth: depth, range: r)
            while !sub.isAtEnd { out.append(try sub.readFixed64()) }
        default:
            throw malformed("repeated field '\(field)' has wire type \(wire), expected 64-bit or packed")
        }
    }

    mutating func appendFloats(_ wire: WireType, field: String, into out: inout [Float]) throws {
        var raw: [UInt32] = []
        try appendFixed32s(wire, field: field, into: &raw)
        out.reserveCapacity(out.count + raw.count)
        for v in raw { out.append(Float(bitPattern: v)) }
    }
}
