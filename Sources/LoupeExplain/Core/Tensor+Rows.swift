import LoupeTensor

/// Row (batch axis) helpers shared by the explainers: every expanded method builds a tensor of
/// rows, runs it in chunks and regroups the results.
extension Tensor {
    /// Size of the leading (batch) axis.
    func rowCount(_ method: String) throws -> Int {
        guard rank >= 1 else {
            throw ExplainError.unsupported(method: method, reason: "a tensor of shape \(shape) has no batch axis")
        }
        return shape[0]
    }

    /// Elements per row.
    var rowSize: Int { shape.dropFirst().reduce(1, *) }

    /// Rows `indices` in that order (repeats allowed).
    func gatheringRows(_ indices: [Int]) throws -> Tensor {
        try gathered(indices: Tensor(ints: indices.map(Int64.init)), axis: 0)
    }

    /// Rows `range` as a new tensor.
    func rows(_ range: Range<Int>) throws -> Tensor {
        let n = rowSize
        let f = try floats("rows")
        return try Tensor(shape: [range.count] + shape.dropFirst(), floats: Array(f[(range.lowerBound * n)..<(range.upperBound * n)]))
    }
}

/// Float tensors with the same shape, element-wise combined in one pass. Always inlined, so the
/// closure literal at each call site is inlined into the loop (no per-element call).
enum ExplainElementwise {
    @inline(__always)
    static func combine(_ a: Tensor, _ b: Tensor, _ method: String, _ f: (Float, Float) -> Float) throws -> Tensor {
        guard a.shape == b.shape else {
            throw ExplainError.invalidArgument(method: method, message: "shapes \(a.shape) and \(b.shape) differ")
        }
        let x = try a.floats(method), y = try b.floats(method)
        return Tensor.makeFloats(shape: a.shape) { o in
            for i in 0..<o.count { o[i] = f(x[i], y[i]) }
        }
    }

    @inline(__always)
    static func map(_ a: Tensor, _ method: String, _ f: (Float) -> Float) throws -> Tensor {
        let x = try a.floats(method)
        return Tensor.makeFloats(shape: a.shape) { o in
            for i in 0..<o.count { o[i] = f(x[i]) }
        }
    }
}
