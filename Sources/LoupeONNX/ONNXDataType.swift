import LoupeTensor

/// ONNX `TensorProto.DataType` codes Loupe reads, with their storage size in `raw_data`.
///
/// On import floating types widen or narrow to float32, integer types widen to int64 and bool
/// stays bool (see ``DType``); the original code is kept in ``ValueInfo/elementType``.
enum ONNXDataType: Int, CaseIterable {
    case float = 1
    case uint8 = 2
    case int8 = 3
    case uint16 = 4
    case int16 = 5
    case int32 = 6
    case int64 = 7
    case string = 8
    case bool = 9
    case float16 = 10
    case double = 11
    case uint32 = 12
    case uint64 = 13
    case complex64 = 14
    case complex128 = 15
    case bfloat16 = 16

    /// Bytes per element in `raw_data`, nil for types Loupe cannot hold.
    var rawSize: Int? {
        switch self {
        case .uint8, .int8, .bool: return 1
        case .uint16, .int16, .float16, .bfloat16: return 2
        case .float, .int32, .uint32: return 4
        case .int64, .double, .uint64: return 8
        case .string, .complex64, .complex128: return nil
        }
    }

    /// The Loupe storage type this ONNX type is converted to.
    var loupeType: DType {
        switch self {
        case .float, .float16, .bfloat16, .double, .complex64, .complex128, .string: return .float32
        case .bool: return .bool
        default: return .int64
        }
    }

    /// The ONNX code written on export for a Loupe storage type.
    static func code(for dtype: DType) -> Int {
        switch dtype {
        case .float32: return ONNXDataType.float.rawValue
        case .int64: return ONNXDataType.int64.rawValue
        case .bool: return ONNXDataType.bool.rawValue
        }
    }

    /// "FLOAT16 (10)" style name of any code, known to Loupe or not, for messages.
    static func name(_ code: Int) -> String {
        let names = [0: "UNDEFINED", 1: "FLOAT", 2: "UINT8", 3: "INT8", 4: "UINT16", 5: "INT16", 6: "INT32",
                     7: "INT64", 8: "STRING", 9: "BOOL", 10: "FLOAT16", 11: "DOUBLE", 12: "UINT32",
                     13: "UINT64", 14: "COMPLEX64", 15: "COMPLEX128", 16: "BFLOAT16", 17: "FLOAT8E4M3FN",
                     18: "FLOAT8E4M3FNUZ", 19: "FLOAT8E5M2", 20: "FLOAT8E5M2FNUZ", 21: "UINT4", 22: "INT4",
                     23: "FLOAT4E2M1", 24: "FLOAT8E8M0"]
        return "\(names[code] ?? "type") (\(code))"
    }
}

/// IEEE 754 binary16 bits to Float. Written out by hand because `Float16` is not available on
/// every platform Loupe builds for (macOS on Intel).
@inline(__always)
func floatFromHalfBits(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exponent = UInt32(h >> 10) & 0x1F
    let mantissa = UInt32(h & 0x03FF)
    if exponent == 0 {
        // Zero or subnormal: mantissa * 2^-24, exact in Float.
        let magnitude = Float(mantissa) * (1.0 / 16_777_216.0)
        return sign == 0 ? magnitude : -magnitude
    }
    if exponent == 0x1F {
        return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
    }
    return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))
}

/// bfloat16 bits are the upper half of a float32.
@inline(__always)
func floatFromBFloat16Bits(_ b: UInt16) -> Float {
    Float(bitPattern: UInt32(b) << 16)
}
