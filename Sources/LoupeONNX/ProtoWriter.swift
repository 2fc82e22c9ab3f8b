/// Appends protobuf wire-format fields to a byte array.
///
/// Nested messages are encoded into their own writer first and then copied in behind their
/// length; ONNX graphs nest only a few levels, so the copies cost little next to the tensors.
struct ProtoWriter {
    private(set) var bytes: [UInt8] = []

    private mutating func tag(_ field: Int, _ wire: WireType) {
        varint(UInt64(field) << 3 | UInt64(wire.rawValue))
    }

    private mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    /// `int64`, `int32` and enum fields (negative values take 10 bytes, as protobuf specifies).
    mutating func int(_ field: Int, _ value: Int64) {
        tag(field, .varint)
        varint(UInt64(bitPattern: value))
    }

    mutating func float(_ field: Int, _ value: Float) {
        tag(field, .fixed32)
        appendLittleEndian(value.bitPattern)
    }

    mutating func string(_ field: Int, _ value: String) {
        data(field, Array(value.utf8))
    }

    mutating func data(_ field: Int, _ value: [UInt8]) {
        tag(field, .lengthDelimited)
        varint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    /// A nested message written by `body`. The field is emitted even when the message is empty,
    /// because presence matters for some ONNX fields (an empty `shape` means rank 0).
    mutating func message(_ field: Int, _ body: (inout ProtoWriter) throws -> Void) rethrows {
        var sub = ProtoWriter()
        try body(&sub)
        data(field, sub.bytes)
    }

    mutating func packedInts(_ field: Int, _ values: [Int64]) {
        guard !values.isEmpty else { return }
        var sub = ProtoWriter()
        for v in values { sub.varint(UInt64(bitPattern: v)) }
        data(field, sub.bytes)
    }

    mutating func packedFloats(_ field: Int, _ values: [Float]) {
        guard !values.isEmpty else { return }
        var sub = ProtoWriter()
        sub.bytes.reserveCapacity(values.count * 4)
        for v in values { sub.appendLittleEndian(v.bitPattern) }
        data(field, sub.bytes)
    }

    private mutating func appendLittleEndian(_ v: UInt32) {
        for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(i)))) }
    }
}
