/// Element types that data-movement ops copy without looking at: every ``Tensor/Storage`` case.
///
/// Movement kernels are generic over this protocol so Reshape/Gather/Concat/Slice... move the
/// int64 shape arithmetic and bool masks of exported graphs exactly like float activations.
public protocol MovableElement: Sendable, Equatable {
    /// The additive identity (0, 0, false): what padding and masking write by default.
    static var movementZero: Self { get }
    /// Converts a numeric constant (a pad value, an off/on value) to this type.
    init(movementValue: Double)
    /// The storage's elements when it holds this type.
    static func elements(of s: Tensor.Storage) -> [Self]?
    /// Wraps elements of this type as storage.
    static func storage(of a: [Self]) -> Tensor.Storage
}

extension Float: MovableElement {
    public static var movementZero: Float { 0 }
    public init(movementValue: Double) { self = Float(movementValue) }
    public static func elements(of s: Tensor.Storage) -> [Float]? { if case let .float32(a) = s { return a } else { return nil } }
    public static func storage(of a: [Float]) -> Tensor.Storage { .float32(a) }
}

extension Int64: MovableElement {
    public static var movementZero: Int64 { 0 }
    public init(movementValue: Double) {
        self = movementValue.isFinite ? Int64(exactly: movementValue.rounded(.towardZero)) ?? 0 : 0
    }
    public static func elements(of s: Tensor.Storage) -> [Int64]? { if case let .int64(a) = s { return a } else { return nil } }
    public static func storage(of a: [Int64]) -> Tensor.Storage { .int64(a) }
}

extension Bool: MovableElement {
    public static var movementZero: Bool { false }
    public init(movementValue: Double) { self = movementValue != 0 }
    public static func elements(of s: Tensor.Storage) -> [Bool]? { if case let .bool(a) = s { return a } else { return nil } }
    public static func storage(of a: [Bool]) -> Tensor.Storage { .bool(a) }
}

/// Internal machinery shared by the movement ops.
///
/// Most movement ops (permute, strided slice, tile, pad, gather along one axis) are one gather:
/// `out[i_0, ..., i_{r-1}] = src[Σ_d table_d[i_d]]`, where `table_d` maps an output coordinate on
/// axis `d` to an element offset in the source (coordinate × source stride), or to `-1` meaning
/// "no source element: write the fill value" (constant padding). Their VJPs are the adjoint of
/// the same map, a scatter-add, which accumulates duplicates (tile, reflect/edge pad, repeated
/// gather indices) for free.
enum Movement {
    /// Per-axis offset tables of a gather; see ``Movement``.
    struct AxisTables {
        /// Output shape; `tables[d].count == shape[d]`.
        var shape: [Int]
        /// Flattened tables, axis after axis.
        var flat: [Int]
        /// Start of each axis' table in `flat`.
        var starts: [Int]

        init(shape: [Int], tables: [[Int]]) {
            precondition(shape.count == tables.count)
            self.shape = shape
            var flat: [Int] = []
            var starts: [Int] = []
            for (d, t) in tables.enumerated() {
                precondition(t.count == shape[d])
                starts.append(flat.count)
                flat.append(contentsOf: t)
            }
            self.flat = flat
            self.starts = starts
        }

        var count: Int { shape.reduce(1, *) }

        /// Calls `body(outOffset, baseOffset, lastTable)` for every output row (run along the last
        /// axis). `baseOffset` is the source offset of the row from all other axes, or -1 when one
        /// of them points outside the source.
        @inline(__always)
        func forEachRow(_ body: (Int, Int, UnsafeBufferPointer<Int>) -> Void) {
            let r = shape.count
            let total = count
            if total == 0 { return }
            flat.withUnsafeBufferPointer { fp in
                if r == 0 {
                    // A rank-0 gather reads element 0.
                    let zero: [Int] = [0]
                    zero.withUnsafeBufferPointer { body(0, 0, $0) }
                    return
                }
                let inner = shape[r - 1]
                let last = UnsafeBufferPointer(rebasing: fp[starts[r - 1] ..< starts[r - 1] + inner])
                let outer = total / inner
                var idx = [Int](repeating: 0, count: max(r - 1, 1))
                var partial = [Int](repeating: 0, count: max(r - 1, 1))
                // partial[d] = Σ_{k ≤ d} table_k[idx_k], or -1 once any term is -1.
                func refresh(from d0: Int) {
                    for d in d0 ..< r - 1 {
                        let prev = d == 0 ? 0 : partial[d - 1]
                        let t = fp[starts[d] + idx[d]]
                        partial[d] = (prev < 0 || t < 0) ? -1 : prev + t
                    }
                }
                if r > 1 { refresh(from: 0) }
                for row in 0 ..< outer {
                    body(row * inner, r > 1 ? partial[r - 2] : 0, last)
                    if row + 1 == outer { break }
                    var d = r - 2
                    while d >= 0 {
                        idx[d] += 1
                        if idx[d] < shape[d] { break }
                        idx[d] = 0
                        d -= 1
                    }
                    refresh(from: max(d, 0))
                }
            }
        }

        /// `out = src[map]`, with `fill` where the map has no source element.
        func gather<T: MovableElement>(_ src: [T], fill: T) -> [T] {
            // Without holes every element is written below, so skip the fill pass.
            let holes = flat.contains { $0 < 0 }
            var out = holes ? [T](repeating: fill, count: count)
                            : [T](unsafeUninitializedCapacity: count) { _, n in n = count }
            let r = shape.count
            let lastContiguous = r > 0 && shape[r - 1] > 0 && flat.withUnsafeBufferPointer { fp in
                let t = UnsafeBufferPointer(rebasing: fp[starts[r - 1] ..< starts[r - 1] + shape[r - 1]])
                return t[0] >= 0 && Movement.isUnitRun(t)
            }
            src.withUnsafeBufferPointer { s in
                out.withUnsafeMutableBufferPointer { o in
                    forEachRow { outStart, base, last in
                        guard base >= 0 else { return }  // already filled
                        let n = last.count
                        // Contiguous source run: one bulk copy.
                        if lastContiguous {
                            (o.baseAddress! + outStart).update(from: s.baseAddress! + base + last[0], count: n)
                            return
                        }
                        for j in 0 ..< n {
                            let t = last[j]
                            if t >= 0 { o[outStart + j] = s[base + t] }
                        }
                    }
                }
            }
            return out
        }

        /// Adjoint of ``gather(_:fill:)`` for floats: `grad_src[map[i]] += grad_out[i]`.
        func scatterAdd(_ gradOut: [Float], sourceCount: Int) -> [Float] {
            var g = [Float](repeating: 0, count: sourceCount)
            gradOut.withUnsafeBufferPointer { go in
                g.withUnsafeMutableBufferPointer { gs in
                    forEachRow { outStart, base, last in
                        guard base >= 0 else { return }
                        for j in 0 ..< last.count {
                            let t = last[j]
                            if t >= 0 { gs[base + t] += go[outStart + j] }
                        }
                    }
                }
            }
            return g
        }
    }

    @inline(__always)
    static func isUnitRun(_ t: UnsafeBufferPointer<Int>) -> Bool {
        var prev = t[0]
        for j in 1 ..< max(t.count, 1) {
            if t[j] != prev + 1 { return false }
            prev = t[j]
        }
        return true
    }

    /// Runs the gather `m` on whatever storage `t` has (float32, int64 or bool).
    static func gather(_ t: Tensor, _ m: AxisTables, fill: Double = 0) -> Tensor {
        switch t.storage {
        case let .float32(a): return Tensor(uncheckedShape: m.shape, storage: .float32(m.gather(a, fill: Float(movementValue: fill))))
        case let .int64(a): return Tensor(uncheckedShape: m.shape, storage: .int64(m.gather(a, fill: Int64(movementValue: fill))))
        case let .bool(a): return Tensor(uncheckedShape: m.shape, storage: .bool(m.gather(a, fill: Bool(movementValue: fill))))
        }
    }

    /// Adjoint of ``gather(_:_:fill:)`` for a float cotangent, giving a gradient of `sourceShape`.
    static func scatterAdd(_ grad: Tensor, _ m: AxisTables, sourceShape: [Int], op: String) throws -> Tensor {
        guard grad.shape == m.shape else {
            throw TensorError.shapeMismatch(op: op, expected: "cotangent of shape \(m.shape)", got: [grad.shape])
        }
        let g = try grad.floats(op)
        return Tensor(uncheckedShape: sourceShape, storage: .float32(m.scatterAdd(g, sourceCount: sourceShape.reduce(1, *))))
    }

    /// Throws unless `shape` has a representable element count below 2³², so a corrupted repeat,
    /// pad or depth value fails with an error instead of an impossible allocation.
    static func checkAllocatable(_ shape: [Int], op: String) throws {
        var n = 1
        for d in shape {
            let (p, overflow) = n.multipliedReportingOverflow(by: d)
            guard !overflow, d >= 0, p < 1 << 32 else {
                throw TensorError.invalidArgument(op: op, message: "output shape \(shape) is too large")
            }
            n = p
        }
    }

    /// Checks that every dimension is non-negative and the axis list has no repeats after
    /// normalisation; returns the normalised axes.
    static func normalizeAxes(_ axes: [Int], rank: Int, op: String) throws -> [Int] {
        var seen = Set<Int>()
        var out: [Int] = []
        for a in axes {
            let n = try Shape.normalizeAxis(a, rank: rank, op: op)
            guard seen.insert(n).inserted else {
                throw TensorError.invalidArgument(op: op, message: "axis \(a) repeated in \(axes)")
            }
            out.append(n)
        }
        return out
    }
}
