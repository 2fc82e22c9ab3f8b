extension Tensor {
    /// ONNX CumSum along `axis`: inclusive running sums, or exclusive (each output omits its own
    /// element), from the front or (`reverse`) from the back. float32 and int64.
    ///
    /// Its VJP is the same op with `reverse` flipped (the transpose of a triangular matrix of
    /// ones), which is how ``CumSumOperator`` differentiates it.
    public func cumulativeSum(axis: Int, exclusive: Bool = false, reverse: Bool = false, name: String = "CumSum") throws -> Tensor {
        guard rank > 0 else { throw TensorError.invalidArgument(op: name, message: "input must have rank ≥ 1") }
        let ax = try Shape.normalizeAxis(axis, rank: rank, op: name)
        let (outer, len, inner) = Tensor.reductionAxisSplit(shape, ax)
        switch storage {
        case let .float32(a):
            return Tensor(uncheckedShape: shape, storage: .float32(Tensor.scan(a, outer, len, inner, exclusive, reverse, 0, +)))
        case let .int64(a):
            return Tensor(uncheckedShape: shape, storage: .int64(Tensor.scan(a, outer, len, inner, exclusive, reverse, 0, &+)))
        case .bool:
            throw TensorError.dtypeMismatch(op: name, expected: "float32 or int64", got: dtype)
        }
    }

    @inline(__always)
    static func scan<T>(_ x: [T], _ outer: Int, _ len: Int, _ inner: Int, _ exclusive: Bool, _ reverse: Bool,
                        _ zero: T, _ add: (T, T) -> T) -> [T] {
        var out = [T](repeating: zero, count: x.count)
        x.withUnsafeBufferPointer { p in
            out.withUnsafeMutableBufferPointer { o in
                for ob in 0..<outer {
                    let base = ob * len * inner
                    // Running sums for all `inner` columns at once keep the innermost loop contiguous.
                    var acc = [T](repeating: zero, count: inner)
                    for step in 0..<len {
                        let k = reverse ? len - 1 - step : step
                        let row = base + k * inner
                        if exclusive {
                            for i in 0..<inner { o[row + i] = acc[i]; acc[i] = add(acc[i], p[row + i]) }
                        } else {
                            for i in 0..<inner { acc[i] = add(acc[i], p[row + i]); o[row + i] = acc[i] }
                        }
                    }
                }
            }
        }
        return out
    }
}
