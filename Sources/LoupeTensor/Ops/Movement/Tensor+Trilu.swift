extension Tensor {
    /// ONNX `Trilu` (NumPy `triu`/`tril`) over the last two axes: keeps elements with
    /// `col − row ≥ k` (upper) or `col − row ≤ k` (lower) and zeroes the rest. Any dtype; rank ≥ 2.
    public func trilu(upper: Bool, k: Int = 0) throws -> Tensor {
        guard rank >= 2 else {
            throw TensorError.shapeMismatch(op: "Trilu", expected: "rank ≥ 2", got: [shape])
        }
        let rows = shape[rank - 2], cols = shape[rank - 1]
        switch storage {
        case let .float32(a): return Tensor(uncheckedShape: shape, storage: .float32(Movement.trilu(a, rows: rows, cols: cols, upper: upper, k: k)))
        case let .int64(a): return Tensor(uncheckedShape: shape, storage: .int64(Movement.trilu(a, rows: rows, cols: cols, upper: upper, k: k)))
        case let .bool(a): return Tensor(uncheckedShape: shape, storage: .bool(Movement.trilu(a, rows: rows, cols: cols, upper: upper, k: k)))
        }
    }
}

extension Movement {
    static func trilu<T: MovableElement>(_ src: [T], rows: Int, cols: Int, upper: Bool, k: Int) -> [T] {
        var out = src
        let m = rows * cols
        if m == 0 { return out }
        out.withUnsafeMutableBufferPointer { o in
            for base in stride(from: 0, to: o.count, by: m) {
                for i in 0 ..< rows {
                    // Keep j in [i+k, cols) for upper, [0, i+k] for lower; zero the rest.
                    let cut = i + k
                    let (z0, z1) = upper ? (0, min(max(cut, 0), cols)) : (min(max(cut + 1, 0), cols), cols)
                    for j in z0 ..< z1 { o[base + i * cols + j] = T.movementZero }
                }
            }
        }
        return out
    }
}
