import LoupeTensor

/// Small helpers shared by the shape and data-movement operators.
enum ShapeOps {
    /// Input `i`, or an error naming the node when a required input is missing.
    static func input(_ inputs: [Tensor?], _ i: Int, _ label: String, _ what: String) throws -> Tensor {
        guard i < inputs.count, let t = inputs[i] else {
            throw GraphError.invalid("node \(label): missing required input \(i) (\(what))")
        }
        return t
    }

    /// The values of an int64 scalar or 1-D tensor used as a shape, axes, pads, starts...
    static func intList(_ t: Tensor, _ label: String, _ what: String) throws -> [Int] {
        guard t.rank <= 1 else {
            throw TensorError.shapeMismatch(op: label, expected: "\(what) as a 1-D int64 tensor", got: [t.shape])
        }
        guard case let .int64(a) = t.storage else {
            throw TensorError.dtypeMismatch(op: label, expected: "int64 \(what)", got: t.dtype)
        }
        return a.map { Int($0) }
    }

    /// The single value of an int64 (or integral float) one-element tensor.
    static func intScalar(_ t: Tensor, _ label: String, _ what: String) throws -> Int {
        guard t.count == 1 else {
            throw TensorError.shapeMismatch(op: label, expected: "\(what) with one element", got: [t.shape])
        }
        switch t.storage {
        case let .int64(a): return Int(a[0])
        case let .float32(a):
            guard let v = Int(exactly: a[0]) else {
                throw TensorError.invalidArgument(op: label, message: "\(what) \(a[0]) is not an integer")
            }
            return v
        case .bool: throw TensorError.dtypeMismatch(op: label, expected: "integer \(what)", got: .bool)
        }
    }

    /// The single gradient `g` for input 0 (when wanted) and nil for the `count − 1` index
    /// inputs after it.
    static func firstOnly(_ g: Tensor?, _ ctx: VJPContext) -> [Tensor?] {
        var out = [Tensor?](repeating: nil, count: ctx.inputs.count)
        if !out.isEmpty, ctx.wantInput.first ?? true { out[0] = g }
        return out
    }

    /// Input `i`'s shape as recorded for backward.
    static func inputShape(_ ctx: VJPContext, _ i: Int, _ label: String) throws -> [Int] {
        guard i < ctx.inputShapes.count, let s = ctx.inputShapes[i] else {
            throw GraphError.invalid("\(label) backward: shape of input \(i) was not recorded")
        }
        return s
    }

    /// Normalised axes (negative counted from the end), refusing repeats and out-of-range axes.
    static func normalizeAxes(_ axes: [Int], rank: Int, op: String) throws -> [Int] {
        var seen = Set<Int>()
        return try axes.map { a in
            let n = a < 0 ? a + rank : a
            guard n >= 0 && n < rank else {
                throw TensorError.invalidArgument(op: op, message: "axis \(a) out of range for rank \(rank)")
            }
            guard seen.insert(n).inserted else {
                throw TensorError.invalidArgument(op: op, message: "axis \(a) repeated in \(axes)")
            }
            return n
        }
    }

    /// Wraps a Tensor-level error thrown while resolving an attribute at load time.
    static func attributeError(_ ctx: OperatorContext, _ attribute: String, _ error: Error) -> GraphError {
        ctx.bad(attribute, "is invalid: \(error)")
    }
}
