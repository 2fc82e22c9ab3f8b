/// One axis of a strided slice, in ONNX `Slice` terms (before clamping).
public struct SliceRange: Sendable, Equatable {
    public var axis: Int
    public var start: Int
    public var end: Int
    public var step: Int

    public init(axis: Int, start: Int, end: Int, step: Int = 1) {
        self.axis = axis
        self.start = start
        self.end = end
        self.step = step
    }

    /// Resolves the range against a dimension of size `dim` with ONNX Slice rules: negative
    /// start/end count from the end, then start is clamped to `[0, dim]` (`[0, dim-1]` for
    /// negative steps) and end to `[0, dim]` (`[-1, dim-1]` for negative steps), so `INT64_MAX`
    /// and `INT64_MIN` mean "to the end". Returns the first index and the element count.
    public static func resolve(start: Int, end: Int, step: Int, dim: Int) -> (first: Int, count: Int) {
        var s = start, e = end
        if s < 0 { s = s &+ dim }
        if e < 0 { e = e &+ dim }
        if step > 0 {
            s = min(max(s, 0), dim)
            e = min(max(e, 0), dim)
            return (s, e > s ? 1 + (e - s - 1) / step : 0)
        } else {
            s = min(max(s, 0), dim - 1)
            e = min(max(e, -1), dim - 1)
            let down = step == Int.min ? Int.max : -step
            return (s, s > e ? 1 + (s - e - 1) / down : 0)
        }
    }
}

extension Tensor {
    /// Strided slice (ONNX `Slice`, NumPy `x[a:b:c]`): each range restricts one axis; axes not
    /// listed are kept whole. Steps may be negative; out-of-range bounds clamp as in ONNX.
    /// Throws for a zero step, a repeated or out-of-range axis.
    public func sliced(_ ranges: [SliceRange]) throws -> Tensor {
        let axes = try Movement.resolveSlice(shape: shape, ranges)
        let r = shape.count
        guard r > 0, axes[r - 1].step == 1 else {
            return Movement.gather(self, try Movement.sliceTables(shape: shape, ranges))
        }
        // Unit step on the last axis: contiguous runs, longer when trailing axes are whole.
        let strides = Shape.strides(shape)
        var k = r - 1
        while k > 0 && axes[k].first == 0 && axes[k].count == shape[k] && axes[k - 1].step == 1 { k -= 1 }
        let run = axes[k...].reduce(1) { $0 * $1.count }
        let base = axes.indices.reduce(0) { $0 + axes[$1].first * strides[$1] }
        let outer = axes[..<k].map(\.count), srcStrides = (0 ..< k).map { strides[$0] * axes[$0].step }
        let outShape = axes.map(\.count)
        let total = outShape.reduce(1, *)
        func copy<T: MovableElement>(_ src: [T]) -> [T] {
            src.withUnsafeBufferPointer { sp in
                Movement.filled(total) { o in
                    Movement.copyRuns(sp.baseAddress!, base: base, outer: outer, srcStrides: srcStrides, run: run, to: o)
                }
            }
        }
        switch storage {
        case let .float32(x): return Tensor(uncheckedShape: outShape, storage: .float32(copy(x)))
        case let .int64(x): return Tensor(uncheckedShape: outShape, storage: .int64(copy(x)))
        case let .bool(x): return Tensor(uncheckedShape: outShape, storage: .bool(copy(x)))
        }
    }

    /// VJP of ``sliced(_:)``: the cotangent scattered into zeros of `inputShape`.
    public static func slicedGradient(_ grad: Tensor, inputShape: [Int], _ ranges: [SliceRange]) throws -> Tensor {
        try Movement.scatterAdd(grad, Movement.sliceTables(shape: inputShape, ranges), sourceShape: inputShape, op: "Slice")
    }
}

extension Movement {
    /// First index, element count and step of every axis after ONNX clamping (unlisted axes
    /// whole), validating axes and steps.
    static func resolveSlice(shape: [Int], _ ranges: [SliceRange]) throws -> [(first: Int, count: Int, step: Int)] {
        var axes = shape.map { (first: 0, count: $0, step: 1) }
        var seen = Set<Int>()
        for r in ranges {
            let a = try Shape.normalizeAxis(r.axis, rank: shape.count, op: "Slice")
            guard a < shape.count, seen.insert(a).inserted else {
                throw TensorError.invalidArgument(op: "Slice", message: "axis \(r.axis) repeated or out of range for rank \(shape.count)")
            }
            guard r.step != 0 else { throw TensorError.invalidArgument(op: "Slice", message: "step must not be 0 (axis \(r.axis))") }
            let (first, n) = SliceRange.resolve(start: r.start, end: r.end, step: r.step, dim: shape[a])
            axes[a] = (first, n, r.step)
        }
        return axes
    }

    static func sliceTables(shape: [Int], _ ranges: [SliceRange]) throws -> AxisTables {
        let strides = Shape.strides(shape)
        var outShape = shape
        var tables = shape.indices.map { d in (0 ..< shape[d]).map { $0 * strides[d] } }
        var seen = Set<Int>()
        for r in ranges {
            let a = try Shape.normalizeAxis(r.axis, rank: shape.count, op: "Slice")
            guard a < shape.count, seen.insert(a).inserted else {
                throw TensorError.invalidArgument(op: "Slice", message: "axis \(r.axis) repeated or out of range for rank \(shape.count)")
            }
            guard r.step != 0 else { throw TensorError.invalidArgument(op: "Slice", message: "step must not be 0 (axis \(r.axis))") }
            let (first, n) = SliceRange.resolve(start: r.start, end: r.end, step: r.step, dim: shape[a])
            outShape[a] = n
            tables[a] = (0 ..< n).map { (first + $0 * r.step) * strides[a] }
        }
        return AxisTables(shape: outShape, tables: tables)
    }
}
