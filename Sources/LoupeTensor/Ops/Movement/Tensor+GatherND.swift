extension Tensor {
    /// ONNX `GatherND`: `indices` (int64, rank q ≥ 1) holds tuples of length `k =
    /// indices.shape.last` addressing slices of this tensor after `batchDims` leading batch axes
    /// shared with `indices`. Output shape: `indices.shape[..<(q-1)] + shape[(batchDims+k)...]`.
    public func gatheredND(indices: Tensor, batchDims: Int = 0) throws -> Tensor {
        let p = try Movement.ndPlan(shape: shape, indices: indices, batchDims: batchDims, op: "GatherND")
        switch storage {
        case let .float32(a): return Tensor(uncheckedShape: p.outShape, storage: .float32(Movement.gatherSlices(a, p)))
        case let .int64(a): return Tensor(uncheckedShape: p.outShape, storage: .int64(Movement.gatherSlices(a, p)))
        case let .bool(a): return Tensor(uncheckedShape: p.outShape, storage: .bool(Movement.gatherSlices(a, p)))
        }
    }

    /// VJP of ``gatheredND(indices:batchDims:)``: slices of the cotangent scatter-added back.
    public static func gatheredNDGradient(_ grad: Tensor, inputShape: [Int], indices: Tensor, batchDims: Int = 0) throws -> Tensor {
        let p = try Movement.ndPlan(shape: inputShape, indices: indices, batchDims: batchDims, op: "GatherND")
        guard grad.shape == p.outShape else {
            throw TensorError.shapeMismatch(op: "GatherND", expected: "cotangent of shape \(p.outShape)", got: [grad.shape])
        }
        return try Movement.scatterAdd(grad, offsets: p.elementOffsets, sourceShape: inputShape, op: "GatherND")
    }
}

extension Movement {
    /// Where GatherND/ScatterND read or write: one source offset per index tuple, each the start
    /// of a contiguous slice of `sliceSize` elements.
    struct NDPlan {
        var offsets: [Int]
        var sliceSize: Int
        var outShape: [Int]

        /// Offset of every addressed element, slice after slice.
        var elementOffsets: [Int] {
            var out: [Int] = []
            out.reserveCapacity(offsets.count * sliceSize)
            for o in offsets { for s in 0 ..< sliceSize { out.append(o + s) } }
            return out
        }
    }

    static func ndPlan(shape: [Int], indices: Tensor, batchDims b: Int, op: String) throws -> NDPlan {
        let r = shape.count, q = indices.rank
        guard q >= 1, let k = indices.shape.last, b >= 0, b < min(q, r + 1), k >= 1, k <= r - b else {
            throw TensorError.shapeMismatch(op: op, expected: "indices of rank ≥ 1 whose last dimension is in 1...rank−batch_dims (batch_dims \(b))", got: [shape, indices.shape])
        }
        guard Array(shape[..<b]) == Array(indices.shape[..<b]) else {
            throw TensorError.shapeMismatch(op: op, expected: "the first \(b) (batch) dimensions of data and indices equal", got: [shape, indices.shape])
        }
        let idx = try indexValues(indices, op: op)
        let strides = Shape.strides(shape)
        let sliceSize = shape[(b + k)...].reduce(1, *)
        let batchStride = shape[b...].reduce(1, *)
        let tuples = indices.count / k
        let perBatch = indices.shape[b ..< (q - 1)].reduce(1, *)
        var offsets = [Int](repeating: 0, count: tuples)
        for t in 0 ..< tuples {
            var off = (perBatch > 0 ? t / perBatch : 0) * batchStride
            for j in 0 ..< k {
                off += try wrapIndex(idx[t * k + j], shape[b + j], op: op, axis: b + j) * strides[b + j]
            }
            offsets[t] = off
        }
        return NDPlan(offsets: offsets, sliceSize: sliceSize, outShape: Array(indices.shape[..<(q - 1)]) + Array(shape[(b + k)...]))
    }

    static func gatherSlices<T: MovableElement>(_ src: [T], _ p: NDPlan) -> [T] {
        var out = [T](repeating: T.movementZero, count: p.offsets.count * p.sliceSize)
        if out.isEmpty { return out }
        src.withUnsafeBufferPointer { s in
            out.withUnsafeMutableBufferPointer { o in
                for (t, off) in p.offsets.enumerated() {
                    (o.baseAddress! + t * p.sliceSize).update(from: s.baseAddress! + off, count: p.sliceSize)
                }
            }
        }
        return out
    }
}
