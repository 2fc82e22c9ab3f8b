/// Rounding float32 values to narrower float formats, for ONNX `Cast` to FLOAT16 / BFLOAT16:
/// Loupe stores them as float32, but the values must be the ones the narrow type can hold.
public enum NarrowFloat: Sendable {
    case float16
    case bfloat16

    /// Round-to-nearest-even, NaN and infinity preserved.
    @inlinable
    public func round(_ x: Float) -> Float {
        switch self {
        case .bfloat16:
            guard !x.isNaN else { return x }
            var bits = x.bitPattern
            bits &+= 0x7FFF &+ ((bits >> 16) & 1)
            return Float(bitPattern: bits & 0xFFFF_0000)
        case .float16:
            #if !(os(macOS) && arch(x86_64))
            return Float(Float16(x))
            #else
            return x
            #endif
        }
    }
}

extension Tensor {
    /// Float elements rounded to the narrower format; other dtypes unchanged.
    public func rounded(to format: NarrowFloat) -> Tensor {
        guard case var .float32(a) = storage else { return self }
        a.withUnsafeMutableBufferPointer { p in
            for i in p.indices { p[i] = format.round(p[i]) }
        }
        return Tensor(uncheckedShape: shape, storage: .float32(a))
    }
}
