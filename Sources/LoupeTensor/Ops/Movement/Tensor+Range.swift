extension Tensor {
    /// ONNX `Range` (NumPy `arange`): `start, start+delta, ...` while before `limit`, with
    /// `max(ceil((limit − start) / delta), 0)` elements. All three scalars share a dtype (float32
    /// or int64), which the result takes. Throws for a zero delta.
    public static func range(start: Tensor, limit: Tensor, delta: Tensor) throws -> Tensor {
        guard start.count == 1, limit.count == 1, delta.count == 1 else {
            throw TensorError.shapeMismatch(op: "Range", expected: "scalar start, limit and delta", got: [start.shape, limit.shape, delta.shape])
        }
        switch (start.storage, limit.storage, delta.storage) {
        case let (.int64(s), .int64(l), .int64(d)):
            guard d[0] != 0 else { throw TensorError.invalidArgument(op: "Range", message: "delta must not be 0") }
            let n = try Movement.rangeCount((Double(l[0]) - Double(s[0])) / Double(d[0]))
            return Tensor(uncheckedShape: [n], storage: .int64((0 ..< n).map { s[0] + Int64($0) * d[0] }))
        case let (.float32(s), .float32(l), .float32(d)):
            guard d[0] != 0, s[0].isFinite, l[0].isFinite, d[0].isFinite else {
                throw TensorError.invalidArgument(op: "Range", message: "start, limit, delta must be finite and delta non-zero")
            }
            let n = try Movement.rangeCount(Double((l[0] - s[0]) / d[0]))
            // ONNX defines element i as start + i·delta (not a running sum).
            return Tensor(uncheckedShape: [n], storage: .float32((0 ..< n).map { s[0] + Float($0) * d[0] }))
        default:
            throw TensorError.dtypeMismatch(op: "Range", expected: "start, limit and delta of one numeric type", got: start.dtype)
        }
    }
}

extension Movement {
    /// Element count `max(ceil(q), 0)` of a Range whose span/delta is `q`, refusing absurd sizes
    /// (a corrupted model must not make us allocate terabytes).
    static func rangeCount(_ q: Double) throws -> Int {
        let n = q.rounded(.up)
        guard n.isFinite, n < Double(1 << 32) else {
            throw TensorError.invalidArgument(op: "Range", message: "would produce \(n) elements")
        }
        return max(Int(n), 0)
    }
}
