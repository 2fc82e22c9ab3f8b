extension Tensor {
    /// ONNX `NonZero` (NumPy `nonzero` stacked): an int64 tensor `[rank, count]` whose column j
    /// holds the coordinates of the j-th non-zero element in row-major order. A rank-0 input is
    /// treated as shape `[1]`, giving `[1, count]`, as ONNX Runtime does.
    public func nonZero() -> Tensor {
        var flat: [Int] = []
        switch storage {
        case let .float32(a): for (i, v) in a.enumerated() where v != 0 { flat.append(i) }
        case let .int64(a): for (i, v) in a.enumerated() where v != 0 { flat.append(i) }
        case let .bool(a): for (i, v) in a.enumerated() where v { flat.append(i) }
        }
        let dims = rank == 0 ? [1] : shape
        let r = dims.count, n = flat.count
        let strides = Shape.strides(dims)
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
