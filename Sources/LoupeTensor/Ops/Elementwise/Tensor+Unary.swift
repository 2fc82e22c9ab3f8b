import CLoupeKernels
import Foundation

/// Element-wise functions of one tensor, with their ONNX parameters. Formulas follow the ONNX
/// operator specification; defaults (e.g. LeakyRelu `alpha = 0.01`) are applied by the caller.
public enum UnaryOp: Sendable, Hashable {
    case neg, abs, exp, log, sqrt, reciprocal, floor, ceil
    /// Round half to even (ONNX Round, `torch.round`).
    case round
    /// Round toward zero (not an ONNX op; Mod's backward and float → int casts use it).
    case trunc
    case sign, sin, cos, tan, asin, acos, atan, sinh, cosh, asinh, acosh, atanh, erf
    case relu
    /// `x ≥ 0 ? x : alpha·x`.
    case leakyRelu(alpha: Float)
    /// `x > 0 ? x : alpha·(eˣ − 1)`.
    case elu(alpha: Float)
    /// `gamma·(x > 0 ? x : alpha·(eˣ − 1))` (Klambauer et al. 2017).
    case selu(alpha: Float, gamma: Float)
    /// `max(0, x) + min(0, alpha·(exp(x/alpha) − 1))` (Barron 2017).
    case celu(alpha: Float)
    case sigmoid
    /// `max(0, min(1, alpha·x + beta))`.
    case hardSigmoid(alpha: Float, beta: Float)
    /// `x·max(0, min(1, x/6 + 1/2))` (Howard et al. 2019).
    case hardSwish
    case tanh
    /// `log(1 + eˣ)`, evaluated without overflow.
    case softplus
    /// `x / (1 + |x|)`.
    case softsign
    /// `x·tanh(scalarSoftplus(x))` (Misra 2019).
    case mish
    /// `x > alpha ? x : 0`.
    case thresholdedRelu(alpha: Float)
    /// Gaussian error linear unit (Hendrycks & Gimpel 2016): exact `x·Φ(x)` or the tanh form.
    case gelu(tanhApproximation: Bool)
    /// `min(max(x, lo), hi)`.
    case clip(lo: Float, hi: Float)
    /// ONNX Shrink: `x < −lambda ? x + bias : (x > lambda ? x − bias : 0)`.
    case shrink(lambda: Float, bias: Float)

    /// Whether the op is defined on int64 tensors (ONNX allows these on integers).
    public var supportsInt64: Bool {
        switch self {
        case .neg, .abs, .sign, .relu, .floor, .ceil, .round, .trunc, .clip: return true
        default: return false
        }
    }
}

let sqrt2OverPi: Float = 0.7978845608028654
let invSqrt2: Float = 0.7071067811865476

extension Tensor {
    /// `op` applied to every element. float32 for every op; int64 where
    /// ``UnaryOp/supportsInt64`` (Clip bounds are then truncated toward zero).
    public func unary(_ op: UnaryOp, name: String = "unary") throws -> Tensor {
        switch storage {
        case let .float32(x):
            return Tensor(uncheckedShape: shape, storage: .float32(Tensor.floatUnary(op, x)))
        case let .int64(x) where op.supportsInt64:
            return Tensor(uncheckedShape: shape, storage: .int64(Tensor.intUnary(op, x)))
        default:
            throw TensorError.dtypeMismatch(op: name, expected: op.supportsInt64 ? "float32 or int64" : "float32", got: dtype)
        }
    }

    static func floatUnary(_ op: UnaryOp, _ x: [Float]) -> [Float] {
        guard let (code, p0, p1) = op.vectorKernel, loupe_vmath_reference() == 0 else { return floatUnaryScalar(op, x) }
        return x.withUnsafeBufferPointer { a in
            arrayFilledBy(count: a.count) { (o: UnsafeMutableBufferPointer<Float>) in
                loupe_vunary(code, a.baseAddress, o.baseAddress, a.count, p0, p1)
            }
        }
    }

    /// The per-element Swift loops (libm transcendentals): the path for ops without a vector
    /// kernel, and the reference the vector kernels are tested and timed against.
    static func floatUnaryScalar(_ op: UnaryOp, _ x: [Float]) -> [Float] {
        x.withUnsafeBufferPointer { a in
            arrayFilledBy(count: a.count) { (o: UnsafeMutableBufferPointer<Float>) in
                switch op {
                case .neg: mapLoop(a, o) { -$0 }
                case .abs: mapLoop(a, o) { Swift.abs($0) }
                case .exp: mapLoopSIMD(a, o) { simdExp($0) }
                case .log: mapLoop(a, o) { Foundation.log($0) }
                case .sqrt: mapLoop(a, o) { $0.squareRoot() }
                case .reciprocal: mapLoop(a, o) { 1 / $0 }
                case .floor: mapLoop(a, o) { $0.rounded(.down) }
                case .ceil: mapLoop(a, o) { $0.rounded(.up) }
                case .round: mapLoop(a, o) { $0.rounded(.toNearestOrEven) }
                case .trunc: mapLoop(a, o) { $0.rounded(.towardZero) }
                case .sign: mapLoop(a, o) { $0 > 0 ? 1 : ($0 < 0 ? -1 : $0) }
                case .sin: mapLoop(a, o) { Foundation.sin($0) }
                case .cos: mapLoop(a, o) { Foundation.cos($0) }
                case .tan: mapLoop(a, o) { Foundation.tan($0) }
                case .asin: mapLoop(a, o) { Foundation.asin($0) }
                case .acos: mapLoop(a, o) { Foundation.acos($0) }
                case .atan: mapLoop(a, o) { Foundation.atan($0) }
                case .sinh: mapLoop(a, o) { Foundation.sinh($0) }
                case .cosh: mapLoop(a, o) { Foundation.cosh($0) }
                case .asinh: mapLoop(a, o) { Foundation.asinh($0) }
                case .acosh: mapLoop(a, o) { Foundation.acosh($0) }
                case .atanh: mapLoop(a, o) { Foundation.atanh($0) }
                case .erf: mapLoop(a, o) { Foundation.erf($0) }
                // NaN kept, as torch.relu and the ReLU fused into Conv (-0 stays -0 too).
                case .relu: mapLoop(a, o) { $0 < 0 ? 0 : $0 }
                case let .leakyRelu(alpha): mapLoop(a, o) { $0 >= 0 ? $0 : alpha * $0 }
                case let .elu(alpha): mapLoop(a, o) { $0 > 0 ? $0 : alpha * Foundation.expm1($0) }
                case let .selu(alpha, gamma): mapLoop(a, o) { gamma * ($0 > 0 ? $0 : alpha * Foundation.expm1($0)) }
                case let .celu(alpha): mapLoop(a, o) { Swift.max(0, $0) + Swift.min(0, alpha * Foundation.expm1($0 / alpha)) }
                case .sigmoid: mapLoopSIMD(a, o) { simdSigmoid($0) }
                case let .hardSigmoid(alpha, beta): mapLoop(a, o) { Swift.max(0, Swift.min(1, alpha * $0 + beta)) }
                case .hardSwish: mapLoop(a, o) { $0 * Swift.max(0, Swift.min(1, $0 / 6 + 0.5)) }
                case .tanh: mapLoop(a, o) { Foundation.tanh($0) }
                case .softplus: mapLoop(a, o) { scalarSoftplus($0) }
                case .softsign: mapLoop(a, o) { $0 / (1 + Swift.abs($0)) }
                case .mish: mapLoop(a, o) { $0 * Foundation.tanh(scalarSoftplus($0)) }
                case let .thresholdedRelu(alpha): mapLoop(a, o) { $0 > alpha ? $0 : 0 }
                case .gelu(tanhApproximation: false): mapLoop(a, o) { 0.5 * $0 * (1 + Foundation.erf($0 * invSqrt2)) }
                case .gelu(tanhApproximation: true):
                    mapLoop(a, o) { v in 0.5 * v * (1 + Foundation.tanh(sqrt2OverPi * (v + 0.044715 * v * v * v))) }
                case let .clip(lo, hi): mapLoop(a, o) { Swift.min(Swift.max($0, lo), hi) }
                case let .shrink(lambda, bias): mapLoop(a, o) { $0 < -lambda ? $0 + bias : ($0 > lambda ? $0 - bias : 0) }
                }
            }
        }
    }

    static func intUnary(_ op: UnaryOp, _ x: [Int64]) -> [Int64] {
        x.withUnsafeBufferPointer { a in
            arrayFilledBy(count: a.count) { (o: UnsafeMutableBufferPointer<Int64>) in
                switch op {
                case .neg: mapLoop(a, o) { 0 &- $0 }
                case .abs: mapLoop(a, o) { $0 < 0 ? 0 &- $0 : $0 }
                case .sign: mapLoop(a, o) { $0.signum() }
                case .relu: mapLoop(a, o) { Swift.max($0, 0) }
                case let .clip(lo, hi):
                    let l = truncatingInt64(lo), h = truncatingInt64(hi)
                    mapLoop(a, o) { Swift.min(Swift.max($0, l), h) }
                default: mapLoop(a, o) { $0 }
                }
            }
        }
    }
}

extension UnaryOp {
    /// The `loupe_vunary` op code and parameters of the ops that have a vectorised kernel
    /// (CLoupeVMath.h), nil for the others.
    var vectorKernel: (Int32, Float, Float)? {
        switch self {
        case .exp: return (Int32(LOUPE_VU_EXP.rawValue), 0, 0)
        case .sigmoid: return (Int32(LOUPE_VU_SIGMOID.rawValue), 0, 0)
        case .tanh: return (Int32(LOUPE_VU_TANH.rawValue), 0, 0)
        case .erf: return (Int32(LOUPE_VU_ERF.rawValue), 0, 0)
        case .gelu(tanhApproximation: false): return (Int32(LOUPE_VU_GELU.rawValue), 0, 0)
        case .gelu(tanhApproximation: true): return (Int32(LOUPE_VU_GELU_TANH.rawValue), 0, 0)
        case .relu: return (Int32(LOUPE_VU_RELU.rawValue), 0, 0)
        case let .leakyRelu(alpha): return (Int32(LOUPE_VU_LEAKY_RELU.rawValue), alpha, 0)
        case let .clip(lo, hi): return (Int32(LOUPE_VU_CLIP.rawValue), lo, hi)
        case let .hardSigmoid(alpha, beta): return (Int32(LOUPE_VU_HARD_SIGMOID.rawValue), alpha, beta)
        case .hardSwish: return (Int32(LOUPE_VU_HARD_SWISH.rawValue), 0, 0)
        case let .elu(alpha): return (Int32(LOUPE_VU_ELU.rawValue), alpha, 0)
        case let .selu(alpha, gamma): return (Int32(LOUPE_VU_SELU.rawValue), alpha, gamma)
        default: return nil
        }
    }
}

@inline(__always)
@usableFromInline
func scalarSigmoid(_ x: Float) -> Float {
    // Two branches keep exp's argument non-positive, so neither overflows.
    if x >= 0 { return 1 / (1 + Foundation.exp(-x)) }
    let e = Foundation.exp(x)
    return e / (1 + e)
}

@inline(__always)
@usableFromInline
func scalarSoftplus(_ x: Float) -> Float {
    Swift.max(x, 0) + Foundation.log1p(Foundation.exp(-Swift.abs(x)))
}
