/// How ONNX ScatterElements/ScatterND combine an update with the value already there.
public enum ScatterReduction: String, Sendable, Equatable, CaseIterable {
    case none, add, mul, max, min
}

/// Element types scatter reductions can combine.
public protocol ScatterCombinable: MovableElement {
    static func combine(_ old: Self, _ new: Self, _ r: ScatterReduction) -> Self
}

extension Float: ScatterCombinable {
    public static func combine(_ old: Float, _ new: Float, _ r: ScatterReduction) -> Float {
        switch r {
        case .none: return new
        case .add: return old + new
        case .mul: return old * new
        case .max: return Swift.max(old, new)
        case .min: return Swift.min(old, new)
        }
    }
}

extension Int64: ScatterCombinable {
    public static func combine(_ old: Int64, _ new: Int64, _ r: ScatterReduction) -> Int64 {
        switch r {
        case .none: return new
        case .add: return old &+ new
        case .mul: return old &* new
        case .max: return Swift.max(old, new)
        case .min: return Swift.min(old, new)
        }
    }
}

extension Bool: ScatterCombinable {
    /// Booleans combine as in NumPy: add/max = or, mul/min = and.
    public static func combine(_ old: Bool, _ new: Bool, _ r: ScatterReduction) -> Bool {
        switch r {
        case .none: return new
        case .add, .max: return old || new
        case .mul, .min: return old && new
        }
    }
}

extension Tensor {
    /// ONNX `ScatterElements`: a copy of this tensor with `updates[i]` written (or combined by
    /// `reduction`) at the position GatherElements would read for `indices[i]`. `indices` and
    /// `updates` share a shape. With reduction `none`, duplicate indices leave the last update.
    public func scatteringElements(indices: Tensor, updates: Tensor, axis: Int, reduction: ScatterReduction = .none) throws -> Tensor {
        guard indices.shape == updates.shape else {
            throw TensorError.shapeMismatch(op: "ScatterElements", expected: "indices and updates of one shape", got: [indices.shape, updates.shape])
        }
        let offsets = try Movement.elementOffsets(shape: shape, indices: indices, axis: axis, op: "ScatterElements")
        return try Movement.scatter(self, offsets: offsets, updates: updates, reduction: reduction, op: "ScatterElements")
    }

    /// ONNX `ScatterND`: a copy of this tensor with slices of `updates` written (or combined) at
    /// the index tuples in `indices` (last dimension k). `updates.shape` must be
    /// `indices.shape[..<(q-1)] + shape[k...]`.
    public func scatteringND(indices: Tensor, updates: Tensor, reduction: ScatterReduction = .none) throws -> Tensor {
        let p = try Movement.ndPlan(shape: shape, indices: indices, batchDims: 0, op: "ScatterND")
        guard updates.shape == p.outShape else {
            throw TensorError.shapeMismatch(op: "ScatterND", expected: "updates of shape \(p.outShape)", got: [updates.shape])
        }
        return try Movement.scatter(self, offsets: p.elementOffsets, updates: updates, reduction: reduction, op: "ScatterND")
    }
}

extension Movement {
    static func scatter(_ data: Tensor, offsets: [Int], updates: Tensor, reduction: ScatterReduction, op: String) throws -> Tensor {
        guard updates.dtype == data.dtype else {
            throw TensorError.dtypeMismatch(op: op, expected: "updates of the data's type \(data.dtype)", got: updates.dtype)
        }
        switch (data.storage, updates.storage) {
        case let (.float32(d), .float32(u)): return Tensor(uncheckedShape: data.shape, storage: .float32(scatterKernel(d, offsets, u, reduction)))
        case let (.int64(d), .int64(u)): return Tensor(uncheckedShape: data.shape, storage: .int64(scatterKernel(d, offsets, u, reduction)))
        case let (.bool(d), .bool(u)): return Tensor(uncheckedShape: data.shape, storage: .bool(scatterKernel(d, offsets, u, reduction)))
        default: throw TensorError.dtypeMismatch(op: op, expected: "\(data.dtype) updates", got: updates.dtype)
        }
    }

    static func scatterKernel<T: ScatterCombinable>(_ data: [T], _ offsets: [Int], _ updates: [T], _ r: ScatterReduction) -> [T] {
        var out = data
        out.withUnsafeMutableBufferPointer { o in
            updates.withUnsafeBufferPointer { u in
                for k in 0 ..< offsets.count { o[offsets[k]] = T.combine(o[offsets[k]], u[k], r) }
            }
        }
        return out
    }

    /// Gradients of a scatter with reduction `none` or `add` given the output cotangent `g`:
    /// data gets `g` (with overwritten positions zeroed for `none`), updates get `g` gathered.
    static func scatterGradients(_ g: Tensor, offsets: [Int], updatesShape: [Int], reduction: ScatterReduction, op: String) throws -> (data: Tensor, updates: Tensor) {
        var gd = try g.floats(op)
        let gu = offsets.map { gd[$0] }
        if reduction == .none { for o in offsets { gd[o] = 0 } }
        return (Tensor(uncheckedShape: g.shape, storage: .float32(gd)), Tensor(uncheckedShape: updatesShape, storage: .float32(gu)))
    }
}

extension Tensor {
    /// VJP of ``scatteringElements(indices:updates:axis:reduction:)`` for reductions `none`
    /// and `add` (others have no simple VJP and throw).
    public static func scatteringElementsGradients(_ grad: Tensor, dataShape: [Int], indices: Tensor, axis: Int,
                                                   reduction: ScatterReduction) throws -> (data: Tensor, updates: Tensor) {
        guard reduction == .none || reduction == .add else {
            throw TensorError.invalidArgument(op: "ScatterElements", message: "no gradient for reduction \(reduction.rawValue)")
        }
        let offsets = try Movement.elementOffsets(shape: dataShape, indices: indices, axis: axis, op: "ScatterElements")
        return try Movement.scatterGradients(grad, offsets: offsets, updatesShape: indices.shape, reduction: reduction, op: "ScatterElements")
    }

    /// VJP of ``scatteringND(indices:updates:reduction:)`` for reductions `none` and `add`.
    public static func scatteringNDGradients(_ grad: Tensor, dataShape: [Int], indices: Tensor,
                                             reduction: ScatterReduction) throws -> (data: Tensor, updates: Tensor) {
        guard reduction == .none || reduction == .add else {
            throw TensorError.invalidArgument(op: "ScatterND", message: "no gradient for reduction \(reduction.rawValue)")
        }
        let p = try Movement.ndPlan(shape: dataShape, indices: indices, batchDims: 0, op: "ScatterND")
        return try Movement.scatterGradients(grad, offsets: p.elementOffsets, updatesShape: p.outShape, reduction: reduction, op: "ScatterND")
    }
}
