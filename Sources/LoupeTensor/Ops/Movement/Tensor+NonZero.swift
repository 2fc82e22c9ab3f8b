extension Tensor {
    /// ONNX `NonZero` (NumPy `nonzero` stacked): an int64 tensor `[rank, count]` whose column j
    /// holds the coordinates of the j-th non-zero element in row-major order. A rank-0 input
    /// gives shape `[0, count]` (count 0 or 1): it has no coordinates to list.
    public func nonZero() -> Tensor {
        var flat: [Int] = []
        switch storage {
        case let .float32(a): for (i, v) in a.enumerated() where v != 0 { flat.append(i) }
        case let .int64(a): for (i, v) in a.enumerated() where v != 0 { flat.append(i) }
        case let .bool(a): for (i, v) in a.enumerated() where v { flat.append(i) }
        }
        let r = rank, n = flat.count
        let strides = Shape.strides(shape)
        var out = [Int64](repeating: 0, count: r * n)
        for (j, f) in flat.enumerated() {
            var rem = f
            for d in 0 ..< r {
                out[d * n + j] = Int64(rem / strides[d])
                rem %= strides[d]
            }
        }
        return Tensor(uncheckedShape: [r, n], storage: .int64(out))
    }
}
