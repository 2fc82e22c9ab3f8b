extension Tensor {
    /// ONNX TopK: the `k` largest (or smallest) elements along `axis` and their int64 indices.
    ///
    /// Results are always sorted (best first), which also satisfies `sorted = 0`. Equal values
    /// keep ascending index order, as the ONNX spec requires. NaN ranks above every number when
    /// `largest` (below when not), matching `torch.topk`.
    public func topK(_ k: Int, axis: Int = -1, largest: Bool = true, name: String = "TopK") throws -> (values: Tensor, indices: Tensor) {
        guard rank > 0 else { throw TensorError.invalidArgument(op: name, message: "input must have rank ≥ 1") }
        let ax = try Shape.normalizeAxis(axis, rank: rank, op: name)
        let (outer, len, inner) = Tensor.reductionAxisSplit(shape, ax)
        guard k >= 0 && k <= len else {
            throw TensorError.invalidArgument(op: name, message: "k = \(k) outside 0...\(len) (axis \(axis) of \(shape))")
        }
        var outShape = shape
        outShape[ax] = k
        var indices = [Int64](repeating: 0, count: outer * k * inner)
        let key: [Double] = doubles
        var order = [Int](repeating: 0, count: len)
        for o in 0..<outer {
            for i in 0..<inner {
                let base = o * len * inner + i
                for j in 0..<len { order[j] = j }
                // `sort(by:)` is not stable, so ties are broken by index explicitly.
                order.sort { a, b in
                    let va = key[base + a * inner], vb = key[base + b * inner]
                    if va.isNaN || vb.isNaN {
                        if va.isNaN && vb.isNaN { return a < b }
                        return va.isNaN == largest
                    }
                    if va != vb { return largest ? va > vb : va < vb }
                    return a < b
                }
                for j in 0..<k { indices[(o * k + j) * inner + i] = Int64(order[j]) }
            }
        }
        let idx = Tensor(uncheckedShape: outShape, storage: .int64(indices))
        return (try topKGather(axis: ax, indices: idx), idx)
    }

    /// `out[..., j, ...] = self[..., indices[..., j, ...], ...]` along `axis` (indices already
    /// validated, same rank as self).
    func topKGather(axis ax: Int, indices: Tensor) throws -> Tensor {
        let (outer, len, inner) = Tensor.reductionAxisSplit(shape, ax)
        let k = indices.shape[ax]
        let idx = try indices.ints()
        func pick<T>(_ a: [T]) -> [T] {
            var out = [T]()
            out.reserveCapacity(idx.count)
            for o in 0..<outer { for j in 0..<k { for i in 0..<inner {
                out.append(a[(o * len + Int(idx[(o * k + j) * inner + i])) * inner + i])
            } } }
            return out
        }
        switch storage {
        case let .float32(a): return Tensor(uncheckedShape: indices.shape, storage: .float32(pick(a)))
        case let .int64(a): return Tensor(uncheckedShape: indices.shape, storage: .int64(pick(a)))
        case let .bool(a): return Tensor(uncheckedShape: indices.shape, storage: .bool(pick(a)))
        }
    }

    /// Adjoint of ``topK(_:axis:largest:name:)``'s values: a zero tensor of `shape` with `grad`
    /// added at the positions `indices` selected along `axis`.
    public static func scatterTopKGradient(axis: Int, shape: [Int], indices: Tensor, grad: Tensor, name: String = "TopK") throws -> Tensor {
        let ax = try Shape.normalizeAxis(axis, rank: shape.count, op: name)
        let (outer, len, inner) = reductionAxisSplit(shape, ax)
        guard indices.shape == grad.shape, indices.rank == shape.count else {
            throw TensorError.shapeMismatch(op: name, expected: "indices and gradient of one shape", got: [indices.shape, grad.shape])
        }
        let k = indices.shape[ax]
        let idx = try indices.ints(name), g = try grad.floats(name)
        var out = [Float](repeating: 0, count: shape.reduce(1, *))
        for o in 0..<outer { for j in 0..<k { for i in 0..<inner {
            let t = Int(idx[(o * k + j) * inner + i])
            guard t >= 0 && t < len else { throw TensorError.invalidArgument(op: name, message: "index \(t) out of range 0..<\(len)") }
            out[(o * len + t) * inner + i] += g[(o * k + j) * inner + i]
        } } }
        return Tensor(uncheckedShape: shape, storage: .float32(out))
    }
}
