extension Tensor {
    /// Splits `shape` around `axis` into (outer, length, inner) element counts.
    static func reductionAxisSplit(_ shape: [Int], _ axis: Int) -> (outer: Int, length: Int, inner: Int) {
        (shape[..<axis].reduce(1, *), shape[axis], shape[(axis + 1)...].reduce(1, *))
    }

    /// ONNX ArgMax / ArgMin: int64 index of the largest (`largest: true`) or smallest element
    /// along `axis`. Ties go to the first index, or the last with `selectLastIndex`. NaN counts as
    /// the extremum (first NaN wins), like `torch.argmax`. Throws on an empty axis.
    public func argExtremum(axis: Int, largest: Bool, keepDims: Bool = true, selectLastIndex: Bool = false,
                            name: String? = nil) throws -> Tensor {
        let opName = name ?? (largest ? "ArgMax" : "ArgMin")
        let ax = try Shape.normalizeAxis(axis, rank: rank, op: opName)
        guard rank > 0 else { throw TensorError.invalidArgument(op: opName, message: "input must have rank ≥ 1") }
        let (outer, len, inner) = Tensor.reductionAxisSplit(shape, ax)
        guard len > 0 else { throw TensorError.invalidArgument(op: opName, message: "axis \(axis) has size 0") }
        var outShape = shape
        if keepDims { outShape[ax] = 1 } else { outShape.remove(at: ax) }
        let x: [Float]
        switch storage {
        case let .float32(a): x = a
        case let .int64(a):
            return try argIntExtremum(a, outer: outer, len: len, inner: inner, largest: largest, last: selectLastIndex, outShape: outShape)
        case .bool: throw TensorError.dtypeMismatch(op: opName, expected: "float32 or int64", got: dtype)
        }
        var out = [Int64](repeating: 0, count: outer * inner)
        x.withUnsafeBufferPointer { p in
            for o in 0..<outer {
                for i in 0..<inner {
                    var best = p[o * len * inner + i], bi = 0
                    if !best.isNaN {
                        for k in 1..<len {
                            let v = p[(o * len + k) * inner + i]
                            if v.isNaN { bi = k; break }
                            let better = largest ? (selectLastIndex ? v >= best : v > best)
                                                 : (selectLastIndex ? v <= best : v < best)
                            if better { best = v; bi = k }
                        }
                    }
                    out[o * inner + i] = Int64(bi)
                }
            }
        }
        return Tensor(uncheckedShape: outShape, storage: .int64(out))
    }

    private func argIntExtremum(_ p: [Int64], outer: Int, len: Int, inner: Int, largest: Bool, last: Bool,
                                outShape: [Int]) throws -> Tensor {
        // Compared as integers: a float detour would tie distinct values above 2^24.
        var out = [Int64](repeating: 0, count: outer * inner)
        for o in 0..<outer {
            for i in 0..<inner {
                var best = p[o * len * inner + i], bi = 0
                for k in 1..<len {
                    let v = p[(o * len + k) * inner + i]
                    let better = largest ? (last ? v >= best : v > best) : (last ? v <= best : v < best)
                    if better { best = v; bi = k }
                }
                out[o * inner + i] = Int64(bi)
            }
        }
        return Tensor(uncheckedShape: outShape, storage: .int64(out))
    }
}
