extension Tensor {
    /// ONNX `GatherElements` (PyTorch `gather`): `out[i] = self[i with coordinate `axis`
    /// replaced by indices[i]]`. `indices` has this tensor's rank, with every other dimension
    /// no larger than this tensor's; the output has the indices' shape. Negative indices wrap.
    public func gatheredElements(indices: Tensor, axis: Int) throws -> Tensor {
        let offsets = try Movement.elementOffsets(shape: shape, indices: indices, axis: axis, op: "GatherElements")
        switch storage {
        case let .float32(a): return Tensor(uncheckedShape: indices.shape, storage: .float32(offsets.map { a[$0] }))
        case let .int64(a): return Tensor(uncheckedShape: indices.shape, storage: .int64(offsets.map { a[$0] }))
        case let .bool(a): return Tensor(uncheckedShape: indices.shape, storage: .bool(offsets.map { a[$0] }))
        }
    }

    /// VJP of ``gatheredElements(indices:axis:)``: scatter-add of the cotangent.
    public static func gatheredElementsGradient(_ grad: Tensor, inputShape: [Int], indices: Tensor, axis: Int) throws -> Tensor {
        let offsets = try Movement.elementOffsets(shape: inputShape, indices: indices, axis: axis, op: "GatherElements")
        return try Movement.scatterAdd(grad, offsets: offsets, sourceShape: inputShape, op: "GatherElements")
    }
}

extension Movement {
    /// For each element of `indices`, the flat offset into a tensor of `shape` that
    /// GatherElements/ScatterElements address.
    static func elementOffsets(shape: [Int], indices: Tensor, axis: Int, op: String) throws -> [Int] {
        let r = shape.count
        guard r > 0, indices.rank == r else {
            throw TensorError.shapeMismatch(op: op, expected: "indices of the data's rank \(r)", got: [shape, indices.shape])
        }
        let a = try Shape.normalizeAxis(axis, rank: r, op: op)
        for d in 0 ..< r where d != a && indices.shape[d] > shape[d] {
            throw TensorError.shapeMismatch(op: op, expected: "indices no larger than the data off axis \(a)", got: [shape, indices.shape])
        }
        let idx = try indexValues(indices, op: op)
        let strides = Shape.strides(shape)
        let istr = Shape.strides(indices.shape)
        var out = [Int](repeating: 0, count: idx.count)
        for k in 0 ..< idx.count {
            var rem = k, off = 0
            for d in 0 ..< r {
                let c = rem / istr[d]
                rem -= c * istr[d]
                off += (d == a ? try wrapIndex(idx[k], shape[a], op: op, axis: a) : c) * strides[d]
            }
            out[k] = off
        }
        return out
    }

    /// `grad_src[offsets[k]] += grad[k]`.
    static func scatterAdd(_ grad: Tensor, offsets: [Int], sourceShape: [Int], op: String) throws -> Tensor {
        let g = try grad.floats(op)
        guard g.count == offsets.count else {
            throw TensorError.shapeMismatch(op: op, expected: "cotangent with \(offsets.count) elements", got: [grad.shape])
        }
        var out = [Float](repeating: 0, count: sourceShape.reduce(1, *))
        out.withUnsafeMutableBufferPointer { o in
            for k in 0 ..< offsets.count { o[offsets[k]] += g[k] }
        }
        return Tensor(uncheckedShape: sourceShape, storage: .float32(out))
    }
}
