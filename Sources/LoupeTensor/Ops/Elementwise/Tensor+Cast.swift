extension Tensor {
    /// This tensor converted to `dtype`.
    ///
    /// float32 → int64 truncates toward zero (a C cast); NaN and values outside the int64 range,
    /// undefined behaviour in C, become `Int64.min` (what x86's `cvttss2si` produces, so what
    /// onnxruntime gives on this platform). Anything → bool is `value != 0` (NaN is true);
    /// bool → number is 0/1.
    public func cast(to dtype: DType, op: String = "Cast") throws -> Tensor {
        if dtype == self.dtype { return self }
        let out: Storage
        switch (storage, dtype) {
        case let (.float32(a), .int64):
            out = .int64(a.withUnsafeBufferPointer { p in
                arrayFilledBy(count: p.count) { (o: UnsafeMutableBufferPointer<Int64>) in mapLoop(p, o, truncatingInt64) }
            })
        case let (.float32(a), .bool): out = .bool(a.map { $0 != 0 })
        case let (.int64(a), .float32): out = .float32(a.map { Float($0) })
        case let (.int64(a), .bool): out = .bool(a.map { $0 != 0 })
        case let (.bool(a), .float32): out = .float32(a.map { $0 ? 1 : 0 })
        case let (.bool(a), .int64): out = .int64(a.map { $0 ? 1 : 0 })
        default: return self
        }
        return Tensor(uncheckedShape: shape, storage: out)
    }
}

/// C-style float → int64 conversion without trapping.
@inline(__always)
@usableFromInline
func truncatingInt64(_ v: Float) -> Int64 {
    // ±2^63 are exact in Float; NaN fails both comparisons.
    guard v >= -0x1p63, v < 0x1p63 else { return Int64.min }
    return Int64(v)
}
