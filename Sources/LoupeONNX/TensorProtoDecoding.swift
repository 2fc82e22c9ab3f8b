import Foundation
import LoupeTensor

/// Where a decode runs: the file name used in errors and the directory external data is read
/// from (nil when decoding bytes that came from nowhere on disk).
struct DecodeContext {
    var file: String
    var baseDirectory: String?
}

/// The fields of one `TensorProto` as found on the wire, before conversion. Typed repeated
/// fields are kept as raw bit patterns until the data type is known.
struct TensorProtoFields {
    var offset = 0
    var name = ""
    var dims: [Int64] = []
    var dataType = 0
    var rawData: Range<Int>?
    var floatData: [Float] = []
    var int32Data: [UInt64] = []
    var int64Data: [Int64] = []
    var doubleData: [UInt64] = []
    var uint64Data: [UInt64] = []
    var stringCount = 0
    var hasSegment = false
    var externalData: [String: String] = [:]
    var dataLocation = 0
}

extension ProtoReader {
    /// Reads the fields of a `TensorProto` (onnx.proto3 field numbers).
    mutating func readTensorFields() throws -> TensorProtoFields {
        var t = TensorProtoFields()
        t.offset = position
        while let (field, wire) = try nextField() {
            switch field {
            case 1: try appendInt64s(wire, field: "dims", into: &t.dims)
            case 2: t.dataType = Int(try readInt32(wire, field: "data_type"))
            case 3: t.hasSegment = true; try skip(wire, field: field)
            case 4: try appendFloats(wire, field: "float_data", into: &t.floatData)
            case 5: try appendVarints(wire, field: "int32_data", into: &t.int32Data)
            case 6: _ = try readBytes(wire, field: "string_data"); t.stringCount += 1
            case 7: try appendInt64s(wire, field: "int64_data", into: &t.int64Data)
            case 8: t.name = try readString(wire, field: "name")
            case 9: t.rawData = try readBytes(wire, field: "raw_data")
            case 10: try appendFixed64s(wire, field: "double_data", into: &t.doubleData)
            case 11: try appendVarints(wire, field: "uint64_data", into: &t.uint64Data)
            case 13:
                var entry = try readMessage(wire, field: "external_data", path: "external_data")
                let (key, value) = try entry.readStringPair()
                t.externalData[key] = value
            case 14: t.dataLocation = Int(try readInt32(wire, field: "data_location"))
            default: try skip(wire, field: field)
            }
        }
        return t
    }

    /// A `StringStringEntryProto` (key = 1, value = 2).
    mutating func readStringPair() throws -> (String, String) {
        var key = "", value = ""
        while let (field, wire) = try nextField() {
            switch field {
            case 1: key = try readString(wire, field: "key")
            case 2: value = try readString(wire, field: "value")
            default: try skip(wire, field: field)
            }
        }
        return (key, value)
    }

    /// Reads a `TensorProto` message and converts it to a Loupe tensor (see ``convertTensor``).
    mutating func readTensor(_ context: DecodeContext) throws -> (name: String, tensor: Tensor) {
        let (name, tensor, _) = try readTypedTensor(context)
        return (name, tensor)
    }

    /// ``readTensor(_:)`` with the file's `TensorProto.DataType` code, which the conversion to
    /// Loupe's storage types loses (an int8 zero point is stored as int64).
    mutating func readTypedTensor(_ context: DecodeContext) throws -> (name: String, tensor: Tensor, dataType: Int) {
        let fields = try readTensorFields()
        return (fields.name, try convertTensor(fields, context: context), fields.dataType)
    }

    /// Converts decoded `TensorProto` fields to a tensor: float16/bfloat16/double → float32,
    /// every integer type → int64, bool → bool. Data comes from `raw_data` (little-endian), the
    /// typed repeated field for the type, or the external file named in `external_data`.
    func convertTensor(_ t: TensorProtoFields, context: DecodeContext) throws -> Tensor {
        let label = t.name.isEmpty ? "<unnamed>" : t.name
        func bad(_ message: String) -> ONNXError {
            .malformed(file: file, offset: t.offset, message: "\(pathPrefix)tensor '\(label)': \(message)")
        }
        var shape: [Int] = []
        var count = 1
        for d in t.dims {
            guard d >= 0 else { throw bad("negative dimension \(d) in dims \(t.dims)") }
            let (p, overflow) = count.multipliedReportingOverflow(by: Int(d))
            guard !overflow else { throw bad("dims \(t.dims) overflow the element count") }
            shape.append(Int(d))
            count = p
        }
        guard t.dataType != 0 else { throw bad("data_type is missing (UNDEFINED)") }
        guard let type = ONNXDataType(rawValue: t.dataType), let size = type.rawSize else {
            throw ONNXError.unsupported(file: file, message: "\(pathPrefix)tensor '\(label)' has element type \(ONNXDataType.name(t.dataType)); Loupe reads float, float16, bfloat16, double, integer and bool tensors")
        }
        guard !t.hasSegment else {
            throw ONNXError.unsupported(file: file, message: "\(pathPrefix)tensor '\(label)' is split into segments")
        }
        let (byteCount, overflow) = count.multipliedReportingOverflow(by: size)
        guard !overflow else { throw bad("dims \(t.dims) overflow the byte count") }

        if t.dataLocation == 1 {
            let bytes = try loadExternalData(t, label: label, byteCount: byteCount, context: context)
            return try Tensor(shape: shape, storage: bytes.withUnsafeBytes { convertRaw($0, type: type, count: count) })
        }
        if let raw = t.rawData {
            guard raw.count == byteCount else {
                throw bad("shape \(shape) of \(ONNXDataType.name(t.dataType)) needs \(byteCount) bytes of raw_data, found \(raw.count)")
            }
            let storage = convertRaw(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: buffer[raw])), type: type, count: count)
            return try Tensor(shape: shape, storage: storage)
        }
        return try Tensor(shape: shape, storage: convertTyped(t, type: type, count: count, bad: bad))
    }

    private func convertTyped(_ t: TensorProtoFields, type: ONNXDataType, count: Int,
                              bad: (String) -> ONNXError) throws -> Tensor.Storage {
        func check(_ got: Int, _ field: String) throws {
            guard got == count else {
                throw bad(count > 0 && got == 0
                    ? "declares \(count) elements but carries no data (no raw_data, \(field) or external data)"
                    : "declares \(count) elements but \(field) has \(got)")
            }
        }
        switch type {
        case .float:
            try check(t.floatData.count, "float_data")
            return .float32(t.floatData)
        case .double:
            try check(t.doubleData.count, "double_data")
            return .float32(t.doubleData.map { Float(Double(bitPattern: $0)) })
        case .float16:
            try check(t.int32Data.count, "int32_data")
            return .float32(t.int32Data.map { floatFromHalfBits(UInt16(truncatingIfNeeded: $0)) })
        case .bfloat16:
            try check(t.int32Data.count, "int32_data")
            return .float32(t.int32Data.map { floatFromBFloat16Bits(UInt16(truncatingIfNeeded: $0)) })
        case .bool:
            try check(t.int32Data.count, "int32_data")
            return .bool(t.int32Data.map { $0 != 0 })
        case .int32, .int16, .int8, .uint16, .uint8:
            // int32 values are sign-extended varints; the narrower types are stored widened.
            try check(t.int32Data.count, "int32_data")
            return .int64(t.int32Data.map { Int64(Int32(truncatingIfNeeded: $0)) })
        case .int64:
            try check(t.int64Data.count, "int64_data")
            return .int64(t.int64Data)
        case .uint32, .uint64:
            // uint64 values above Int64.max keep their bit pattern (wrap negative).
            try check(t.uint64Data.count, "uint64_data")
            return .int64(t.uint64Data.map { Int64(bitPattern: $0) })
        case .string, .complex64, .complex128:
            throw bad("element type \(ONNXDataType.name(type.rawValue)) is not supported")
        }
    }

    /// Reads the bytes of a tensor stored outside the model (`data_location = EXTERNAL`).
    /// The location is relative to the model's directory; absolute paths and paths with `..`
    /// are refused so that a model cannot make Loupe read arbitrary files.
    private func loadExternalData(_ t: TensorProtoFields, label: String, byteCount: Int,
                                  context: DecodeContext) throws -> [UInt8] {
        func fail(_ message: String) -> ONNXError { .externalData(file: file, tensor: label, message: message) }
        guard let location = t.externalData["location"], !location.isEmpty else {
            throw fail("data_location is EXTERNAL but external_data has no 'location' entry")
        }
        let components = location.split(whereSeparator: { $0 == "/" || $0 == "\\" })
        guard !location.hasPrefix("/"), !location.hasPrefix("\\"), !location.contains(":"),
              !components.contains("..") else {
            throw fail("location '\(location)' is absolute or escapes the model's directory with '..'; external data must sit beside the model")
        }
        guard let base = context.baseDirectory else {
            throw fail("location '\(location)' is relative to the model file, but the model was decoded from memory without a base directory")
        }
        var offset = 0
        if let s = t.externalData["offset"] {
            guard let v = Int(s), v >= 0 else { throw fail("'offset' is '\(s)', expected a non-negative integer") }
            offset = v
        }
        var length: Int?
        if let s = t.externalData["length"] {
            guard let v = Int(s), v >= 0 else { throw fail("'length' is '\(s)', expected a non-negative integer") }
            length = v
        }
        let fullPath = (base.isEmpty ? "." : base) + "/" + location
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: fullPath),
              let fileSize = (attributes[.size] as? NSNumber)?.intValue else {
            throw fail("file '\(location)' not found (looked for \(fullPath))")
        }
        guard offset <= fileSize else {
            throw fail("offset \(offset) is past the end of '\(location)' (\(fileSize) bytes)")
        }
        let available = fileSize - offset
        let n = length ?? available
        guard n <= available else {
            throw fail("offset \(offset) + length \(n) runs past the end of '\(location)' (\(fileSize) bytes)")
        }
        guard n == byteCount else {
            throw fail("'\(location)' provides \(n) bytes at offset \(offset), but shape \(t.dims) of \(ONNXDataType.name(t.dataType)) needs \(byteCount)")
        }
        do {
            let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: fullPath))
            defer { try? handle.close() }
            try handle.seek(toOffset: UInt64(offset))
            let data = try handle.read(upToCount: n) ?? Data()
            guard data.count == n else { throw fail("read only \(data.count) of \(n) bytes from '\(location)'") }
            return [UInt8](data)
        } catch let error as ONNXError {
            throw error
        } catch {
            throw fail("cannot read '\(location)': \(error.localizedDescription)")
        }
    }
}

/// Converts little-endian `raw_data` bytes (already size-checked) to Loupe storage.
func convertRaw(_ raw: UnsafeRawBufferPointer, type: ONNXDataType, count: Int) -> Tensor.Storage {
    func load<T: FixedWidthInteger>(_: T.Type, _ i: Int) -> T {
        T(littleEndian: raw.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self))
    }
    switch type {
    case .float:
        var out = [Float](repeating: 0, count: count)
        #if _endian(little)
        out.withUnsafeMutableBytes { $0.copyMemory(from: raw) }
        #else
        for i in 0..<count { out[i] = Float(bitPattern: load(UInt32.self, i)) }
        #endif
        return .float32(out)
    case .int64:
        var out = [Int64](repeating: 0, count: count)
        #if _endian(little)
        out.withUnsafeMutableBytes { $0.copyMemory(from: raw) }
        #else
        for i in 0..<count { out[i] = load(Int64.self, i) }
        #endif
        return .int64(out)
    case .double:
        return .float32((0..<count).map { Float(Double(bitPattern: load(UInt64.self, $0))) })
    case .float16:
        return .float32((0..<count).map { floatFromHalfBits(load(UInt16.self, $0)) })
    case .bfloat16:
        return .float32((0..<count).map { floatFromBFloat16Bits(load(UInt16.self, $0)) })
    case .bool:
        return .bool((0..<count).map { raw[$0] != 0 })
    case .uint8:
        return .int64((0..<count).map { Int64(raw[$0]) })
    case .int8:
        return .int64((0..<count).map { Int64(Int8(bitPattern: raw[$0])) })
    case .uint16:
        return .int64((0..<count).map { Int64(load(UInt16.self, $0)) })
    case .int16:
        return .int64((0..<count).map { Int64(load(Int16.self, $0)) })
    case .int32:
        return .int64((0..<count).map { Int64(load(Int32.self, $0)) })
    case .uint32:
        return .int64((0..<count).map { Int64(load(UInt32.self, $0)) })
    case .uint64:
        return .int64((0..<count).map { Int64(bitPattern: load(UInt64.self, $0)) })
    case .string, .complex64, .complex128:
        // Rejected by the caller (rawSize is nil); keep the switch total.
        return .float32([])
    }
}
