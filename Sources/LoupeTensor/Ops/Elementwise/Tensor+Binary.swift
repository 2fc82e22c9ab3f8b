import CLoupeKernels
import Foundation

/// Arithmetic of two broadcast operands (ONNX Add, Sub, Mul, Div, Pow, Min, Max, Mod).
public enum BinaryOp: String, Sendable, Hashable, CaseIterable {
    case add, sub, mul, div, pow, min, max
    /// C `fmod`: the result has the sign of the dividend (ONNX Mod with `fmod=1`).
    case fmod
    /// Floored modulo: the result has the sign of the divisor (ONNX Mod with `fmod=0`, Python `%`).
    case mod

    /// The ONNX operator name, for error messages.
    public var onnxName: String {
        switch self {
        case .add: return "Add"
        case .sub: return "Sub"
        case .mul: return "Mul"
        case .div: return "Div"
        case .pow: return "Pow"
        case .min: return "Min"
        case .max: return "Max"
        case .fmod, .mod: return "Mod"
        }
    }
}

extension Tensor {
    /// `a op b` element-wise with NumPy/ONNX broadcasting.
    ///
    /// - float32: IEEE arithmetic; Min/Max propagate NaN (like `torch.minimum`).
    /// - int64: wrapping `+ - *`, division truncating toward zero (C semantics, as ONNX Div on
    ///   integers), `fmod` with the dividend's sign, `mod` with the divisor's sign; a zero divisor
    ///   throws instead of trapping. Pow with a negative integer exponent truncates the real result.
    /// - Pow may mix types (ONNX T/T1): the result has the base's type.
    ///
    /// Throws naming `name` (default: the ONNX op) on shapes that do not broadcast or mismatched
    /// element types.
    public static func binary(_ op: BinaryOp, _ a: Tensor, _ b: Tensor, name: String? = nil) throws -> Tensor {
        let opName = name ?? op.onnxName
        let shape = try Shape.broadcast(a.shape, b.shape, op: opName)
        switch (a.storage, b.storage) {
        case let (.float32(x), .float32(y)):
            let plan = try BroadcastPlan(shape: shape, operands: [a.shape, b.shape], op: opName)
            return Tensor(uncheckedShape: shape, storage: .float32(floatBinary(op, plan, x, y)))
        case let (.int64(x), .int64(y)):
            if op == .div || op == .fmod || op == .mod, y.contains(0) {
                throw TensorError.invalidArgument(op: opName, message: "integer division by zero")
            }
            let plan = try BroadcastPlan(shape: shape, operands: [a.shape, b.shape], op: opName)
            return Tensor(uncheckedShape: shape, storage: .int64(intBinary(op, plan, x, y)))
        case let (.float32, .int64(y)) where op == .pow:
            return try binary(.pow, a, Tensor(uncheckedShape: b.shape, storage: .float32(y.map { Float($0) })), name: opName)
        case let (.int64(x), .float32) where op == .pow:
            let r = try binary(.pow, Tensor(uncheckedShape: a.shape, storage: .float32(x.map { Float($0) })), b, name: opName)
            return try r.cast(to: .int64, op: opName)
        default:
            throw TensorError.dtypeMismatch(op: opName, expected: "\(a.dtype) operands of the same type", got: b.dtype)
        }
    }

    /// `ReLU(a + b)` with broadcasting, in one pass for float32 (`s < 0 ? 0 : s`, NaN kept, as
    /// `binary(.add, a, b).unary(.relu)`, bit for bit). Other types: that pair of calls.
    public static func addReLU(_ a: Tensor, _ b: Tensor, name: String? = nil) throws -> Tensor {
        guard case let .float32(x) = a.storage, case let .float32(y) = b.storage else {
            return try binary(.add, a, b, name: name).unary(.relu, name: name ?? "Relu")
        }
        let opName = name ?? "Add"
        let shape = try Shape.broadcast(a.shape, b.shape, op: opName)
        let plan = try BroadcastPlan(shape: shape, operands: [a.shape, b.shape], op: opName)
        let out = plan.count > 0 && loupe_vmath_reference() == 0
            ? vectorBinary(Int32(LOUPE_VB_ADD_RELU.rawValue), plan, x, y)
            : floatBinaryScalar(.add, plan, x, y).map { $0 < 0 ? 0 : $0 }
        return Tensor(uncheckedShape: shape, storage: .float32(out))
    }

    static func floatBinary(_ op: BinaryOp, _ plan: BroadcastPlan, _ x: [Float], _ y: [Float]) -> [Float] {
        guard let code = op.vectorCode, plan.count > 0, loupe_vmath_reference() == 0 else { return floatBinaryScalar(op, plan, x, y) }
        return vectorBinary(code, plan, x, y)
    }

    /// The vector kernel `code` (LOUPE_VB_*) over the broadcast plan, into a new array.
    private static func vectorBinary(_ code: Int32, _ plan: BroadcastPlan, _ x: [Float], _ y: [Float]) -> [Float] {
        x.withUnsafeBufferPointer { a in
            y.withUnsafeBufferPointer { b in
                arrayFilledBy(count: plan.count) { (o: UnsafeMutableBufferPointer<Float>) in
                    vectorBinary(code, plan, a, b, o)
                }
            }
        }
    }

    /// The broadcast as (blocks) × rows × inner: the last coalesced outer dimension becomes the
    /// rows of one `loupe_vbinary` call (per-channel and row-vector operands stay contiguous
    /// vector loops); any dimensions outside it are walked here, over the pool when there are
    /// many blocks.
    private static func vectorBinary(_ code: Int32, _ plan: BroadcastPlan, _ a: UnsafeBufferPointer<Float>,
                                     _ b: UnsafeBufferPointer<Float>, _ o: UnsafeMutableBufferPointer<Float>) {
        guard let pa = a.baseAddress, let pb = b.baseAddress, let po = o.baseAddress else { return }
        let (ia, ib, _) = plan.innerStrides
        let n = plan.inner
        let dims = plan.outerShape, strides = plan.outerStrides
        guard let rows = dims.last, let rowStride = strides.last else {
            loupe_vbinary(code, pa, 0, ia, pb, 0, ib, po, 1, n)
            return
        }
        let blockDims = Array(dims.dropLast()), blockStrides = Array(strides.dropLast())
        let blocks = blockDims.reduce(1, *), blockSize = rows * n
        let runBlock = { (blk: Int) in
            var rem = blk, offA = 0, offB = 0
            for d in stride(from: blockDims.count - 1, through: 0, by: -1) {
                let i = rem % blockDims[d]
                rem /= blockDims[d]
                offA += i * blockStrides[d].0
                offB += i * blockStrides[d].1
            }
            loupe_vbinary(code, pa + offA, rowStride.0, ia, pb + offB, rowStride.1, ib, po + blk * blockSize, rows, n)
        }
        if blocks >= 2 * Kernels.threads && plan.count >= 1 << 18 {
            let tasks = min(blocks, 4 * Kernels.threads), per = (blocks + tasks - 1) / tasks
            Kernels.parallelFor(tasks) { t in
                for blk in (t * per)..<min(blocks, (t + 1) * per) { runBlock(blk) }
            }
        } else {
            for blk in 0..<blocks { runBlock(blk) }
        }
    }

    /// Per-element Swift loops over the broadcast plan: the path for Pow and Mod, and the
    /// reference the vector kernels are tested and timed against.
    static func floatBinaryScalar(_ op: BinaryOp, _ plan: BroadcastPlan, _ x: [Float], _ y: [Float]) -> [Float] {
        x.withUnsafeBufferPointer { a in
            y.withUnsafeBufferPointer { b in
                arrayFilledBy(count: plan.count) { (o: UnsafeMutableBufferPointer<Float>) in
                    switch op {
                    case .add: broadcastLoop2(plan, a, b, o) { $0 + $1 }
                    case .sub: broadcastLoop2(plan, a, b, o) { $0 - $1 }
                    case .mul: broadcastLoop2(plan, a, b, o) { $0 * $1 }
                    case .div: broadcastLoop2(plan, a, b, o) { $0 / $1 }
                    case .pow: broadcastLoop2(plan, a, b, o) { Foundation.pow($0, $1) }
                    case .min: broadcastLoop2(plan, a, b, o) { ($0 < $1 || $0.isNaN) ? $0 : $1 }
                    case .max: broadcastLoop2(plan, a, b, o) { ($0 > $1 || $0.isNaN) ? $0 : $1 }
                    case .fmod: broadcastLoop2(plan, a, b, o) { Foundation.fmod($0, $1) }
                    case .mod: broadcastLoop2(plan, a, b, o) { floorMod($0, $1) }
                    }
                }
            }
        }
    }

    static func intBinary(_ op: BinaryOp, _ plan: BroadcastPlan, _ x: [Int64], _ y: [Int64]) -> [Int64] {
        x.withUnsafeBufferPointer { a in
            y.withUnsafeBufferPointer { b in
                arrayFilledBy(count: plan.count) { (o: UnsafeMutableBufferPointer<Int64>) in
                    switch op {
                    case .add: broadcastLoop2(plan, a, b, o) { $0 &+ $1 }
                    case .sub: broadcastLoop2(plan, a, b, o) { $0 &- $1 }
                    case .mul: broadcastLoop2(plan, a, b, o) { $0 &* $1 }
                    // Divisors were checked non-zero; the reporting form also survives Int64.min / -1.
                    case .div: broadcastLoop2(plan, a, b, o) { $0.dividedReportingOverflow(by: $1).partialValue }
                    case .pow: broadcastLoop2(plan, a, b, o) { intPow($0, $1) }
                    case .min: broadcastLoop2(plan, a, b, o) { Swift.min($0, $1) }
                    case .max: broadcastLoop2(plan, a, b, o) { Swift.max($0, $1) }
                    case .fmod: broadcastLoop2(plan, a, b, o) { $0.remainderReportingOverflow(dividingBy: $1).partialValue }
                    case .mod:
                        broadcastLoop2(plan, a, b, o) { p, q in
                            let r = p.remainderReportingOverflow(dividingBy: q).partialValue
                            return (r != 0 && (r < 0) != (q < 0)) ? r &+ q : r
                        }
                    }
                }
            }
        }
    }
}

extension BinaryOp {
    /// The `loupe_vbinary` op code where the vector kernel covers the op (float32).
    var vectorCode: Int32? {
        switch self {
        case .add: return Int32(LOUPE_VB_ADD.rawValue)
        case .sub: return Int32(LOUPE_VB_SUB.rawValue)
        case .mul: return Int32(LOUPE_VB_MUL.rawValue)
        case .div: return Int32(LOUPE_VB_DIV.rawValue)
        case .min: return Int32(LOUPE_VB_MIN.rawValue)
        case .max: return Int32(LOUPE_VB_MAX.rawValue)
        case .pow, .fmod, .mod: return nil
        }
    }
}

/// Floored modulo of floats (sign of the divisor).
@inline(__always)
@usableFromInline
func floorMod(_ a: Float, _ b: Float) -> Float {
    let r = Foundation.fmod(a, b)
    return (r != 0 && (r < 0) != (b < 0)) ? r + b : r
}

/// Integer power by squaring with wrapping overflow; a negative exponent gives the truncated
/// real result (only ±1 bases give non-zero).
@inline(__always)
@usableFromInline
func intPow(_ base: Int64, _ exponent: Int64) -> Int64 {
    if exponent < 0 {
        if base == 1 { return 1 }
        if base == -1 { return exponent & 1 == 0 ? 1 : -1 }
        return 0
    }
    var result: Int64 = 1, b = base, e = exponent
    while e > 0 {
        if e & 1 == 1 { result = result &* b }
        b = b &* b
        e >>= 1
    }
    return result
}

// MARK: - Operators

extension Tensor {
    /// Element-wise sum with broadcasting. Throws on incompatible shapes or element types.
    public static func + (a: Tensor, b: Tensor) throws -> Tensor { try binary(.add, a, b) }
    /// Element-wise difference with broadcasting.
    public static func - (a: Tensor, b: Tensor) throws -> Tensor { try binary(.sub, a, b) }
    /// Element-wise product with broadcasting.
    public static func * (a: Tensor, b: Tensor) throws -> Tensor { try binary(.mul, a, b) }
    /// Element-wise quotient with broadcasting (integers truncate toward zero).
    public static func / (a: Tensor, b: Tensor) throws -> Tensor { try binary(.div, a, b) }
}
