extension Tensor {
    /// ONNX `OneHot`: inserts an axis of size `depth` at `axis` (−1 = last) holding `on` at each
    /// index and `off` elsewhere. Indices may be negative (counted from `depth`); indices outside
    /// `[-depth, depth)` give an all-`off` row, as the spec says. `off`/`on` set the output dtype:
    /// a two-element tensor `[off, on]` of any dtype.
    public func oneHot(depth: Int, values: Tensor, axis: Int = -1) throws -> Tensor {
        guard depth >= 0 else { throw TensorError.invalidArgument(op: "OneHot", message: "depth \(depth) must be non-negative") }
        guard values.count == 2 else {
            throw TensorError.shapeMismatch(op: "OneHot", expected: "values with 2 elements [off, on]", got: [values.shape])
        }
        let a = try Shape.normalizeAxis(axis, rank: rank + 1, op: "OneHot")
        let plan = try Movement.oneHotPlan(self, depth: depth, axis: a)
        switch values.storage {
        case let .float32(v): return Tensor(uncheckedShape: plan.shape, storage: .float32(Movement.oneHot(plan, off: v[0], on: v[1])))
        case let .int64(v): return Tensor(uncheckedShape: plan.shape, storage: .int64(Movement.oneHot(plan, off: v[0], on: v[1])))
        case let .bool(v): return Tensor(uncheckedShape: plan.shape, storage: .bool(Movement.oneHot(plan, off: v[0], on: v[1])))
        }
    }

    /// VJP of ``oneHot(depth:values:axis:)`` with respect to `values`: `[Σ g at off
    /// positions, Σ g at on positions]`, in `valuesShape`.
    public static func oneHotValuesGradient(_ grad: Tensor, indices: Tensor, depth: Int, axis: Int, valuesShape: [Int]) throws -> Tensor {
        let a = try Shape.normalizeAxis(axis, rank: indices.rank + 1, op: "OneHot")
        let plan = try Movement.oneHotPlan(indices, depth: depth, axis: a)
        let g = try grad.floats("OneHot")
        guard grad.shape == plan.shape else {
            throw TensorError.shapeMismatch(op: "OneHot", expected: "cotangent of shape \(plan.shape)", got: [grad.shape])
        }
        let total = g.reduce(0, +)
        var on: Float = 0
        for p in plan.hot where p >= 0 { on += g[p] }
        return Tensor(uncheckedShape: valuesShape, storage: .float32([total - on, on]))
    }
}

extension Movement {
    struct OneHotPlan {
        var shape: [Int]
        /// Output offset of the `on` element per index, or -1 when the index is out of range.
        var hot: [Int]
    }

    static func oneHotPlan(_ indices: Tensor, depth: Int, axis a: Int) throws -> OneHotPlan {
        let idx = try indexValues(indices, op: "OneHot")
        let outer = indices.shape[..<a].reduce(1, *)
        let inner = indices.shape[a...].reduce(1, *)
        var shape = indices.shape
        shape.insert(depth, at: a)
        try checkAllocatable(shape, op: "OneHot")
        var hot = [Int](repeating: -1, count: idx.count)
        for o in 0 ..< outer {
            for i in 0 ..< inner {
                var v = idx[o * inner + i]
                if v < 0 { v += depth }
                if v >= 0 && v < depth { hot[o * inner + i] = (o * depth + v) * inner + i }
            }
        }
        return OneHotPlan(shape: shape, hot: hot)
    }

    static func oneHot<T: MovableElement>(_ p: OneHotPlan, off: T, on: T) -> [T] {
        var out = [T](repeating: off, count: p.shape.reduce(1, *))
        for h in p.hot where h >= 0 { out[h] = on }
        return out
    }
}
