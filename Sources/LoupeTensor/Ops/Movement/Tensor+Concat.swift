extension Tensor {
    /// Joins tensors along `axis` (ONNX `Concat`). All parts need the same dtype, rank and sizes
    /// except on `axis`; parts with zero elements on `axis` are allowed. Negative axes count from
    /// the end.
    public static func concatenated(_ parts: [Tensor], axis: Int) throws -> Tensor {
        guard let first = parts.first else {
            throw TensorError.invalidArgument(op: "Concat", message: "needs at least one input")
        }
        let a = try Shape.normalizeAxis(axis, rank: first.rank, op: "Concat")
        guard first.rank > 0 else {
            throw TensorError.invalidArgument(op: "Concat", message: "cannot concatenate rank-0 tensors")
        }
        var outShape = first.shape
        outShape[a] = 0
        for p in parts {
            guard p.dtype == first.dtype else {
                throw TensorError.dtypeMismatch(op: "Concat", expected: "\(first.dtype) like the first input", got: p.dtype)
            }
            var s = p.shape
            guard s.count == first.rank else {
                throw TensorError.shapeMismatch(op: "Concat", expected: "inputs of rank \(first.rank)", got: parts.map(\.shape))
            }
            outShape[a] += s[a]
            s[a] = first.shape[a]
            guard s == first.shape else {
                throw TensorError.shapeMismatch(op: "Concat", expected: "equal sizes except on axis \(a)", got: parts.map(\.shape))
            }
        }
        let outer = first.shape[..<a].reduce(1, *)
        let inner = first.shape[(a + 1)...].reduce(1, *)
        let widths = parts.map { $0.shape[a] * inner }
        switch first.storage {
        case .float32: return Tensor(uncheckedShape: outShape, storage: .float32(Movement.concat(parts.map { Float.elements(of: $0.storage) ?? [] }, outer: outer, widths: widths)))
        case .int64: return Tensor(uncheckedShape: outShape, storage: .int64(Movement.concat(parts.map { Int64.elements(of: $0.storage) ?? [] }, outer: outer, widths: widths)))
        case .bool: return Tensor(uncheckedShape: outShape, storage: .bool(Movement.concat(parts.map { Bool.elements(of: $0.storage) ?? [] }, outer: outer, widths: widths)))
        }
    }

    /// Cuts the tensor along `axis` into consecutive pieces of the given sizes (ONNX `Split`),
    /// which must sum to the axis' size. The inverse of ``concatenated(_:axis:)``.
    public func split(axis: Int, sizes: [Int]) throws -> [Tensor] {
        let a = try Shape.normalizeAxis(axis, rank: rank, op: "Split")
        guard rank > 0, sizes.allSatisfy({ $0 >= 0 }), sizes.reduce(0, +) == shape[a] else {
            throw TensorError.invalidArgument(op: "Split", message: "sizes \(sizes) must be non-negative and sum to \(rank > 0 ? shape[a] : 0), the size of axis \(axis) of \(shape)")
        }
        let outer = shape[..<a].reduce(1, *)
        let inner = shape[(a + 1)...].reduce(1, *)
        let widths = sizes.map { $0 * inner }
        let shapes = sizes.map { n -> [Int] in var s = shape; s[a] = n; return s }
        switch storage {
        case let .float32(x): return zip(shapes, Movement.split(x, outer: outer, widths: widths)).map { Tensor(uncheckedShape: $0, storage: .float32($1)) }
        case let .int64(x): return zip(shapes, Movement.split(x, outer: outer, widths: widths)).map { Tensor(uncheckedShape: $0, storage: .int64($1)) }
        case let .bool(x): return zip(shapes, Movement.split(x, outer: outer, widths: widths)).map { Tensor(uncheckedShape: $0, storage: .bool($1)) }
        }
    }
}

extension Movement {
    /// Interleaves `outer` blocks: for each outer index, `widths[k]` elements of part k.
    static func concat<T: MovableElement>(_ parts: [[T]], outer: Int, widths: [Int]) -> [T] {
        let total = widths.reduce(0, +)
        // Every element is written exactly once (the widths tile each output row), so the
        // output starts uninitialised.
        return filled(outer * total) { o in
            var column = 0
            for (k, part) in parts.enumerated() {
                let w = widths[k]
                if w > 0 {
                    part.withUnsafeBufferPointer { p in
                        for i in 0 ..< outer { (o + i * total + column).initialize(from: p.baseAddress! + i * w, count: w) }
                    }
                }
                column += w
            }
        }
    }

    /// Inverse of ``concat(_:outer:widths:)``.
    static func split<T: MovableElement>(_ src: [T], outer: Int, widths: [Int]) -> [[T]] {
        let total = widths.reduce(0, +)
        var column = 0
        return src.withUnsafeBufferPointer { s in
            widths.map { w in
                let part: [T] = filled(outer * w) { p in
                    for i in 0 ..< outer { (p + i * w).initialize(from: s.baseAddress! + i * total + column, count: w) }
                }
                column += w
                return part
            }
        }
    }
}
