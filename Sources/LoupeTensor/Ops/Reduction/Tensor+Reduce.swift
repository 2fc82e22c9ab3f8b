import Foundation

/// Reductions over a set of axes (ONNX ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceProd,
/// ReduceL1, ReduceL2, ReduceSumSquare, ReduceLogSum, ReduceLogSumExp).
public enum ReduceOp: String, Sendable, Hashable, CaseIterable {
    case sum, mean, max, min, prod, l1, l2, sumSquare, logSum, logSumExp

    public var onnxName: String {
        switch self {
        case .sum: return "ReduceSum"
        case .mean: return "ReduceMean"
        case .max: return "ReduceMax"
        case .min: return "ReduceMin"
        case .prod: return "ReduceProd"
        case .l1: return "ReduceL1"
        case .l2: return "ReduceL2"
        case .sumSquare: return "ReduceSumSquare"
        case .logSum: return "ReduceLogSum"
        case .logSumExp: return "ReduceLogSumExp"
        }
    }

    /// Ops defined on int64 tensors (shape arithmetic uses ReduceProd/ReduceSum/ReduceMax/Min).
    public var supportsInt64: Bool {
        switch self {
        case .sum, .mean, .max, .min, .prod, .l1, .sumSquare: return true
        default: return false
        }
    }
}

extension Tensor {
    /// Normalised, sorted, de-duplicated reduction axes; `nil` or empty means all axes.
    public static func reductionAxes(_ axes: [Int]?, rank: Int, op: String) throws -> [Int] {
        guard let axes, !axes.isEmpty else { return Array(0..<rank) }
        let n = try axes.map { try Shape.normalizeAxis($0, rank: rank, op: op) }
        return Array(Set(n)).sorted()
    }

    /// `shape` with the reduced `axes` set to 1.
    static func keptShape(_ shape: [Int], _ axes: [Int]) -> [Int] {
        var s = shape
        for a in axes where a < s.count { s[a] = 1 }
        return s
    }

    /// Reduces over `axes` (nil or empty: all axes). `keepDims` keeps reduced axes as size 1.
    ///
    /// float32 for every op (Max/Min propagate NaN, like `torch.amax`; onnxruntime's CPU
    /// ReduceMax skips NaN instead, so the two differ only on NaN inputs); int64 where
    /// ``ReduceOp/supportsInt64`` (Mean then truncates toward zero). An empty reduction gives the
    /// op's identity (0 for sums, 1 for Prod, ∓∞ for Max/Min).
    public func reduce(_ op: ReduceOp, axes: [Int]?, keepDims: Bool, name: String? = nil) throws -> Tensor {
        let opName = name ?? op.onnxName
        let ax = try Tensor.reductionAxes(axes, rank: rank, op: opName)
        let kept = Tensor.keptShape(shape, ax)
        let outShape = keepDims ? kept : shape.enumerated().filter { !ax.contains($0.offset) }.map(\.element)
        let plan = try BroadcastPlan(shape: shape, operands: [kept], op: opName)
        let n = ax.reduce(1) { $0 * shape[$1] }
        let outCount = kept.reduce(1, *)
        switch storage {
        case let .float32(x):
            let out = x.withUnsafeBufferPointer { Tensor.floatReduce(op, plan, $0, reducedCount: n, outCount: outCount) }
            return Tensor(uncheckedShape: outShape, storage: .float32(out))
        case let .int64(x) where op.supportsInt64:
            let out = x.withUnsafeBufferPointer { Tensor.intReduce(op, plan, $0, reducedCount: n, outCount: outCount) }
            return Tensor(uncheckedShape: outShape, storage: .int64(out))
        default:
            throw TensorError.dtypeMismatch(op: opName, expected: op.supportsInt64 ? "float32 or int64" : "float32", got: dtype)
        }
    }

    /// Sums this tensor (a gradient of a broadcast result) back to `shape`, the shape of an
    /// operand that was broadcast: sums over the leading axes `shape` lacks and over the axes
    /// where `shape` has 1 and this tensor does not. The adjoint of ``broadcast(to:op:)``.
    public func sumToShape(_ shape: [Int], op: String = "sumToShape") throws -> Tensor {
        if shape == self.shape { return self }
        let lead = rank - shape.count
        guard lead >= 0 else {
            throw TensorError.shapeMismatch(op: op, expected: "target rank ≤ \(rank)", got: [self.shape, shape])
        }
        var axes = Array(0..<lead)
        for (i, d) in shape.enumerated() {
            let s = self.shape[lead + i]
            if d == s { continue }
            guard d == 1 else {
                throw TensorError.shapeMismatch(op: op, expected: "a shape that broadcasts to \(self.shape)", got: [self.shape, shape])
            }
            axes.append(lead + i)
        }
        // Empty `axes` with different shapes means only size-1 dims differ in placement: reshape.
        if axes.isEmpty { return try reshaped(shape) }
        return try reduce(.sum, axes: axes, keepDims: true, name: op).reshaped(shape)
    }

    // MARK: Kernels

    /// One pass of `acc = f(acc, x)` into a kept-shape output initialised to `initial`.
    @inline(__always)
    static func accumulate<T>(_ plan: BroadcastPlan, _ x: UnsafeBufferPointer<T>, _ o: UnsafeMutableBufferPointer<T>,
                              _ f: (T, T) -> T) {
        guard let px = x.baseAddress, let po = o.baseAddress else { return }
        let n = plan.inner
        let so = plan.innerStrides.0
        var runs = plan.runs()
        while runs.next() {
            let src = px + runs.out, dst = po + runs.offset0
            if so == 0 {
                var acc = dst[0]
                for i in 0..<n { acc = f(acc, src[i]) }
                dst[0] = acc
            } else {
                for i in 0..<n { dst[i] = f(dst[i], src[i]) }
            }
        }
    }

    /// `o += Σ f(x)` for the sum-like reductions. A run that collapses to one output is summed
    /// in eight interleaved partial sums: the loop vectorises, and each partial sum sees an
    /// eighth of the terms, which also keeps float32 rounding error lower than one running sum.
    @inline(__always)
    static func accumulateSum(_ plan: BroadcastPlan, _ x: UnsafeBufferPointer<Float>, _ o: UnsafeMutableBufferPointer<Float>,
                              _ fv: (SIMD8<Float>) -> SIMD8<Float>, _ fs: (Float) -> Float) {
        guard let base = x.baseAddress else { return }
        let n = plan.inner
        let so = plan.innerStrides.0
        guard let po = o.baseAddress else { return }
        var runs = plan.runs()
        while runs.next() {
            let p = base + runs.out, dst = po + runs.offset0
            if so == 0 {
                var acc = SIMD8<Float>(repeating: 0)
                var i = 0
                while i + 8 <= n {
                    acc += fv(UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self))
                    i += 8
                }
                var tail: Float = 0
                while i < n { tail += fs(p[i]); i += 1 }
                dst[0] += acc.sum() + tail
            } else {
                for i in 0..<n { dst[i] += fs(p[i]) }
            }
        }
    }

    /// Max/Min with NaN propagation. A collapsing run uses eight lanes and remembers whether a
    /// NaN went by, since lane-wise max/min need not propagate NaN.
    @inline(__always)
    static func accumulateExtremum(_ plan: BroadcastPlan, _ x: UnsafeBufferPointer<Float>, _ o: UnsafeMutableBufferPointer<Float>,
                                   largest: Bool) {
        guard let px = x.baseAddress, let po = o.baseAddress else { return }
        let n = plan.inner
        let so = plan.innerStrides.0
        var runs = plan.runs()
        while runs.next() {
            let src = px + runs.out, dst = po + runs.offset0
            if so == 0 {
                var acc = SIMD8<Float>(repeating: dst[0])
                var nan = SIMDMask<SIMD8<Int32>>(repeating: false)
                var i = 0
                while i + 8 <= n {
                    let v = UnsafeRawPointer(src + i).loadUnaligned(as: SIMD8<Float>.self)
                    nan .|= v .!= v
                    // `replace(with:where:)` inlines; pointwiseMax/Min were calls per vector.
                    acc.replace(with: v, where: largest ? v .> acc : v .< acc)
                    i += 8
                }
                var r = largest ? acc.max() : acc.min()
                if any(nan) { r = .nan }
                while i < n {
                    let v = src[i]
                    if r.isNaN { break }
                    if v.isNaN || (largest ? v > r : v < r) { r = v }
                    i += 1
                }
                dst[0] = dst[0].isNaN ? dst[0] : r
            } else if largest {
                for i in 0..<n { let v = src[i], a = dst[i]; dst[i] = (v > a || v.isNaN) ? v : a }
            } else {
                for i in 0..<n { let v = src[i], a = dst[i]; dst[i] = (v < a || v.isNaN) ? v : a }
            }
        }
    }

    static func floatReduce(_ op: ReduceOp, _ plan: BroadcastPlan, _ x: UnsafeBufferPointer<Float>,
                            reducedCount n: Int, outCount: Int) -> [Float] {
        let initial: Float
        switch op {
        case .max: initial = -.infinity
        case .min: initial = .infinity
        case .prod: initial = 1
        default: initial = 0
        }
        var out = [Float](repeating: initial, count: outCount)
        // Reducing an empty axis leaves one identity element per kept position.
        if plan.count == 0 { return out }
        out.withUnsafeMutableBufferPointer { o in
            switch op {
            case .sum, .mean, .logSum: accumulateSum(plan, x, o, { $0 }, { $0 })
            case .max: accumulateExtremum(plan, x, o, largest: true)
            case .min: accumulateExtremum(plan, x, o, largest: false)
            case .prod: accumulate(plan, x, o) { $0 * $1 }
            case .l1: accumulateSum(plan, x, o, { pointwiseMax($0, -$0) }, { Swift.abs($0) })
            case .l2, .sumSquare: accumulateSum(plan, x, o, { $0 * $0 }, { $0 * $0 })
            case .logSumExp:
                var m = [Float](repeating: -.infinity, count: o.count)
                m.withUnsafeMutableBufferPointer { mp in
                    accumulate(plan, x, mp) { ($1 > $0 || $1.isNaN) ? $1 : $0 }
                    // Shift by the finite max so exp never overflows; an all −∞ group stays −∞.
                    for i in 0..<mp.count where !mp[i].isFinite { mp[i] = mp[i].isNaN ? mp[i] : 0 }
                    let len = plan.inner, so = plan.innerStrides.0
                    var runs = plan.runs()
                    while runs.next() {
                        let ix = runs.out, oo = runs.offset0
                        if so == 0 {
                            var acc = o[oo]
                            let mv = mp[oo]
                            for i in 0..<len { acc += Foundation.exp(x[ix + i] - mv) }
                            o[oo] = acc
                        } else {
                            for i in 0..<len { o[oo + i] += Foundation.exp(x[ix + i] - mp[oo + i]) }
                        }
                    }
                    for i in 0..<o.count { o[i] = Foundation.log(o[i]) + mp[i] }
                }
            }
            switch op {
            case .mean: let s = 1 / Float(n); for i in 0..<o.count { o[i] *= s }
            case .l2: for i in 0..<o.count { o[i] = o[i].squareRoot() }
            case .logSum: for i in 0..<o.count { o[i] = Foundation.log(o[i]) }
            default: break
            }
        }
        return out
    }

    static func intReduce(_ op: ReduceOp, _ plan: BroadcastPlan, _ x: UnsafeBufferPointer<Int64>,
                          reducedCount n: Int, outCount: Int) -> [Int64] {
        let initial: Int64
        switch op {
        case .max: initial = .min
        case .min: initial = .max
        case .prod: initial = 1
        default: initial = 0
        }
        var out = [Int64](repeating: initial, count: outCount)
        if plan.count == 0 { return out }
        out.withUnsafeMutableBufferPointer { o in
            switch op {
            case .max: accumulate(plan, x, o) { Swift.max($0, $1) }
            case .min: accumulate(plan, x, o) { Swift.min($0, $1) }
            case .prod: accumulate(plan, x, o) { $0 &* $1 }
            case .l1: accumulate(plan, x, o) { $0 &+ ($1 < 0 ? 0 &- $1 : $1) }
            case .sumSquare: accumulate(plan, x, o) { $0 &+ $1 &* $1 }
            default: accumulate(plan, x, o) { $0 &+ $1 }
            }
            if op == .mean { for i in 0..<o.count { o[i] /= Int64(n) } }
        }
        return out
    }
}
