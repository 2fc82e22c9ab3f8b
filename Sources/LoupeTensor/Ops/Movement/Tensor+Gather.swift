extension Tensor {
    /// Picks slices along `axis` (ONNX `Gather`, NumPy `take(x, indices, axis)`).
    ///
    /// `indices` is an int64 tensor of any rank (rank 0 drops the axis); negative entries count
    /// from the end. Output shape: `shape[..<axis] + indices.shape + shape[(axis+1)...]`.
    /// Throws naming Gather for an index outside `[-n, n)`.
    public func gathered(indices: Tensor, axis: Int) throws -> Tensor {
        guard !shape.isEmpty else { throw TensorError.invalidArgument(op: "Gather", message: "data must have rank ≥ 1") }
        let a = try Shape.normalizeAxis(axis, rank: shape.count, op: "Gather")
        let n = shape[a]
        let inner = shape[(a + 1)...].reduce(1, *), outer = shape[..<a].reduce(1, *)
        let outShape = Array(shape[..<a]) + indices.shape + Array(shape[(a + 1)...])
        // Scalar index into an int64 shape vector: the hottest case of exported shape
        // arithmetic, answered without any table or intermediate array.
        if case let .int64(v) = storage, rank == 1, indices.rank == 0, case let .int64(iv) = indices.storage {
            let j = try Movement.wrapIndex(Int(iv[0]), n, op: "Gather", axis: a)
            return Tensor(uncheckedShape: [], storage: .int64([v[j]]))
        }
        let idx = try Movement.indexValues(indices, op: "Gather").map { try Movement.wrapIndex($0, n, op: "Gather", axis: a) }
        // Each (outer, index) pair is one contiguous block of `inner` elements.
        func blocks<T: MovableElement>(_ src: [T]) -> [T] {
            src.withUnsafeBufferPointer { sp in
                Movement.filled(outer * idx.count * inner) { o in
                    idx.withUnsafeBufferPointer { ip in
                        Movement.gatherBlocks(sp.baseAddress!, n: n, inner: inner, outer: outer, indices: ip, to: o)
                    }
                }
            }
        }
        switch storage {
        case let .float32(x): return Tensor(uncheckedShape: outShape, storage: .float32(blocks(x)))
        case let .int64(x): return Tensor(uncheckedShape: outShape, storage: .int64(blocks(x)))
        case let .bool(x): return Tensor(uncheckedShape: outShape, storage: .bool(blocks(x)))
        }
    }

    /// VJP of ``gathered(indices:axis:)``: cotangent rows scatter-added back, so repeated
    /// indices accumulate.
    public static func gatheredGradient(_ grad: Tensor, inputShape: [Int], indices: Tensor, axis: Int) throws -> Tensor {
        guard !inputShape.isEmpty else { throw TensorError.invalidArgument(op: "Gather", message: "data must have rank ≥ 1") }
        let a = try Shape.normalizeAxis(axis, rank: inputShape.count, op: "Gather")
        let n = inputShape[a]
        let inner = inputShape[(a + 1)...].reduce(1, *), outer = inputShape[..<a].reduce(1, *)
        let outShape = Array(inputShape[..<a]) + indices.shape + Array(inputShape[(a + 1)...])
        guard grad.shape == outShape else {
            throw TensorError.shapeMismatch(op: "Gather", expected: "cotangent of shape \(outShape)", got: [grad.shape])
        }
        let idx = try Movement.indexValues(indices, op: "Gather").map { try Movement.wrapIndex($0, n, op: "Gather", axis: a) }
        let g = try grad.floats("Gather")
        // Block scatter-add: cotangent block (o, j) adds onto source block (o, idx[j]), so
        // repeated indices accumulate.
        var out = [Float](repeating: 0, count: outer * n * inner)
        out.withUnsafeMutableBufferPointer { o in
            g.withUnsafeBufferPointer { src in
                guard let d0 = o.baseAddress, let s0 = src.baseAddress else { return }
                var s = s0
                for b in 0 ..< outer {
                    for j in idx {
                        let d = d0 + (b * n + j) * inner
                        for e in 0 ..< inner { d[e] += s[e] }
                        s += inner
                    }
                }
            }
        }
        return Tensor(uncheckedShape: inputShape, storage: .float32(out))
    }
}

extension Movement {
    /// `out[o, j, :] = src[o, indices[j], :]` over `[outer, n, inner]` source blocks (indices
    /// already wrapped into `[0, n)`).
    static func gatherBlocks<T: MovableElement>(_ src: UnsafePointer<T>, n: Int, inner: Int, outer: Int,
                                                indices: UnsafeBufferPointer<Int>, to dst: UnsafeMutablePointer<T>) {
        let k = indices.count
        if inner == 1 {
            for o in 0 ..< outer {
                let s = src + o * n, d = dst + o * k
                for j in 0 ..< k { (d + j).initialize(to: s[indices[j]]) }
            }
            return
        }
        // Large single-index gathers (splitting fused q/k/v) go through the parallel run copier.
        if k == 1 {
            copyRuns(src, base: indices[0] * inner, outer: [outer], srcStrides: [n * inner], run: inner, to: dst)
            return
        }
        var d = dst
        for o in 0 ..< outer {
            let s = src + o * n * inner
            for j in 0 ..< k {
                d.initialize(from: s + indices[j] * inner, count: inner)
                d += inner
            }
        }
    }

    /// Index values of an int64 (or, leniently, float-valued integer) index tensor.
    static func indexValues(_ t: Tensor, op: String) throws -> [Int] {
        switch t.storage {
        case let .int64(a): return a.map { Int($0) }
        case let .float32(a):
            // ONNX allows only integer index types, but widened imports are lenient elsewhere.
            return try a.map {
                guard let v = Int(exactly: $0) else {
                    throw TensorError.invalidArgument(op: op, message: "index \($0) is not an integer")
                }
                return v
            }
        case .bool: throw TensorError.dtypeMismatch(op: op, expected: "int64 indices", got: .bool)
        }
    }

    /// Normalises index `i` into `[0, n)`, throwing naming `op` when outside `[-n, n)`.
    @inline(__always)
    static func wrapIndex(_ i: Int, _ n: Int, op: String, axis: Int) throws -> Int {
        let j = i < 0 ? i + n : i
        guard j >= 0 && j < n else {
            throw TensorError.invalidArgument(op: op, message: "index \(i) out of range [\(-n), \(n)) on axis \(axis)")
        }
        return j
    }

    /// Gather along one axis as a 3-axis table map over `[outer, k, inner]` views, plus the ONNX
    /// output shape.
    static func gatherTables(shape: [Int], indices: Tensor, axis: Int) throws -> (AxisTables, [Int]) {
        guard !shape.isEmpty else { throw TensorError.invalidArgument(op: "Gather", message: "data must have rank ≥ 1") }
        let a = try Shape.normalizeAxis(axis, rank: shape.count, op: "Gather")
        let n = shape[a]
        let inner = shape[(a + 1)...].reduce(1, *)
        let outer = shape[..<a].reduce(1, *)
        let idx = try indexValues(indices, op: "Gather").map { try wrapIndex($0, n, op: "Gather", axis: a) * inner }
        let m = AxisTables(shape: [outer, idx.count, inner],
                           tables: [(0 ..< outer).map { $0 * n * inner }, idx, Array(0 ..< inner)])
        return (m, Array(shape[..<a]) + indices.shape + Array(shape[(a + 1)...]))
    }
}
