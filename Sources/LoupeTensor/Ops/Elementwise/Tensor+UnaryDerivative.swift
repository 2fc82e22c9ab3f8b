import CLoupeKernels
import Foundation

extension UnaryOp {
    /// Whether ``Tensor/unaryVJP(_:input:output:grad:name:)`` reads the output `y` instead of the
    /// input `x`: for exp, sigmoid, tanh, sqrt and reciprocal the derivative is a function of y,
    /// and for Relu/LeakyRelu/Elu the sign of y equals the sign of x. Reading y lets the executor
    /// free x (typically a convolution's output) after the forward pass.
    public var derivativeUsesOutput: Bool {
        switch self {
        case .exp, .sqrt, .reciprocal, .sigmoid, .tanh, .relu: return true
        case let .leakyRelu(alpha): return alpha >= 0
        case let .elu(alpha): return alpha > 0
        default: return false
        }
    }

    /// The `loupe_vderiv` op code and parameters where a vectorised derivative exists (it reads
    /// the same operand, x or y, as the scalar code: see ``derivativeUsesOutput``).
    var vectorDerivative: (Int32, Float, Float)? {
        switch self {
        case .sigmoid: return (Int32(LOUPE_VD_SIGMOID.rawValue), 0, 0)
        case .tanh: return (Int32(LOUPE_VD_TANH.rawValue), 0, 0)
        case .exp: return (Int32(LOUPE_VD_EXP.rawValue), 0, 0)
        case .relu: return (Int32(LOUPE_VD_RELU.rawValue), 0, 0)
        case .gelu(tanhApproximation: false): return (Int32(LOUPE_VD_GELU.rawValue), 0, 0)
        case .gelu(tanhApproximation: true): return (Int32(LOUPE_VD_GELU_TANH.rawValue), 0, 0)
        case .erf: return (Int32(LOUPE_VD_ERF.rawValue), 0, 0)
        case .hardSwish: return (Int32(LOUPE_VD_HARD_SWISH.rawValue), 0, 0)
        case let .hardSigmoid(alpha, beta): return (Int32(LOUPE_VD_HARD_SIGMOID.rawValue), alpha, beta)
        default: return nil
        }
    }

    /// Piecewise-constant ops whose derivative is zero almost everywhere (PyTorch returns zeros).
    public var hasZeroDerivative: Bool {
        switch self {
        case .floor, .ceil, .round, .trunc, .sign: return true
        default: return false
        }
    }
}

extension Tensor {
    /// Vector-Jacobian product of an element-wise op: `grad · f'(x)`.
    ///
    /// Pass `output` (y) when ``UnaryOp/derivativeUsesOutput``, else `input` (x). At kinks the
    /// one-sided choice matches PyTorch's autograd (checked at the kinks against torch 2.x):
    /// Relu, LeakyRelu, Elu, Selu, Celu, PRelu take the `x > 0` branch only for `x > 0`; Abs has
    /// derivative 0 at 0; Clip passes the gradient strictly inside `(lo, hi)` (`torch.clamp`
    /// with constant bounds, `hardtanh`, `relu6`); HardSigmoid passes it strictly inside its
    /// linear region; HardSwish uses `x/3 + 1/2` on `(-3, 3)`, 0 at −3 and 1 at 3;
    /// ThresholdedRelu passes it for `x > alpha`.
    public static func unaryVJP(_ op: UnaryOp, input: Tensor?, output: Tensor?, grad: Tensor, name: String = "unary") throws -> Tensor {
        let g = try grad.floats(name)
        if op.hasZeroDerivative { return Tensor(zeros: grad.shape) }
        guard let source = op.derivativeUsesOutput ? output : input else {
            throw TensorError.invalidArgument(op: name, message: "backward needs the recorded \(op.derivativeUsesOutput ? "output" : "input")")
        }
        guard source.shape == grad.shape else {
            throw TensorError.shapeMismatch(op: name, expected: "gradient shaped like the operand", got: [grad.shape, source.shape])
        }
        let v = try source.floats(name)
        let out = v.withUnsafeBufferPointer { a in
            g.withUnsafeBufferPointer { gp in
                arrayFilledBy(count: a.count) { (o: UnsafeMutableBufferPointer<Float>) in
                    unaryDerivative(op, a, gp, o)
                }
            }
        }
        return Tensor(uncheckedShape: grad.shape, storage: .float32(out))
    }

    /// `o[i] = g[i] · f'(v[i])` where v is x or y as ``UnaryOp/derivativeUsesOutput`` says.
    static func unaryDerivative(_ op: UnaryOp, _ a: UnsafeBufferPointer<Float>, _ gp: UnsafeBufferPointer<Float>,
                                _ o: UnsafeMutableBufferPointer<Float>) {
        if let (code, p0, p1) = op.vectorDerivative, loupe_vmath_reference() == 0 {
            loupe_vderiv(code, a.baseAddress, gp.baseAddress, o.baseAddress, a.count, p0, p1)
        } else {
            unaryDerivativeScalar(op, a, gp, o)
        }
    }

    /// Per-element Swift loops for every op: the path for ops without a vector kernel and the
    /// reference the vector kernels are tested against.
    static func unaryDerivativeScalar(_ op: UnaryOp, _ a: UnsafeBufferPointer<Float>, _ gp: UnsafeBufferPointer<Float>,
                                      _ o: UnsafeMutableBufferPointer<Float>) {
        switch op {
        case .neg: zipLoop(a, gp, o) { _, g in -g }
        case .abs: zipLoop(a, gp, o) { x, g in x > 0 ? g : (x < 0 ? -g : 0) }
        case .exp: zipLoop(a, gp, o) { y, g in g * y }
        case .log: zipLoop(a, gp, o) { x, g in g / x }
        case .sqrt: zipLoop(a, gp, o) { y, g in g / (2 * y) }
        case .reciprocal: zipLoop(a, gp, o) { y, g in -g * y * y }
        case .floor, .ceil, .round, .trunc, .sign: zipLoop(a, gp, o) { _, _ in 0 }
        case .sin: zipLoop(a, gp, o) { x, g in g * Foundation.cos(x) }
        case .cos: zipLoop(a, gp, o) { x, g in -g * Foundation.sin(x) }
        case .tan: zipLoop(a, gp, o) { x, g in let t = Foundation.tan(x); return g * (1 + t * t) }
        case .asin: zipLoop(a, gp, o) { x, g in g / (1 - x * x).squareRoot() }
        case .acos: zipLoop(a, gp, o) { x, g in -g / (1 - x * x).squareRoot() }
        case .atan: zipLoop(a, gp, o) { x, g in g / (1 + x * x) }
        case .sinh: zipLoop(a, gp, o) { x, g in g * Foundation.cosh(x) }
        case .cosh: zipLoop(a, gp, o) { x, g in g * Foundation.sinh(x) }
        case .asinh: zipLoop(a, gp, o) { x, g in g / (x * x + 1).squareRoot() }
        case .acosh: zipLoop(a, gp, o) { x, g in g / (x * x - 1).squareRoot() }
        case .atanh: zipLoop(a, gp, o) { x, g in g / (1 - x * x) }
        case .erf: zipLoop(a, gp, o) { x, g in g * 1.1283791670955126 * Foundation.exp(-x * x) }
        // y > 0 exactly when x > 0 for these (alpha ≥ 0 / > 0, see derivativeUsesOutput).
        case .relu: zipLoop(a, gp, o) { y, g in y > 0 ? g : 0 }
        case let .leakyRelu(alpha) where alpha >= 0: zipLoop(a, gp, o) { y, g in y > 0 ? g : alpha * g }
        case let .leakyRelu(alpha): zipLoop(a, gp, o) { x, g in x > 0 ? g : alpha * g }
        // alpha·eˣ = y + alpha on the negative side.
        case let .elu(alpha) where alpha > 0: zipLoop(a, gp, o) { y, g in y > 0 ? g : g * (y + alpha) }
        case let .elu(alpha): zipLoop(a, gp, o) { x, g in x > 0 ? g : g * alpha * Foundation.exp(x) }
        case let .selu(alpha, gamma): zipLoop(a, gp, o) { x, g in gamma * (x > 0 ? g : g * alpha * Foundation.exp(x)) }
        case let .celu(alpha): zipLoop(a, gp, o) { x, g in x > 0 ? g : g * Foundation.exp(x / alpha) }
        case .sigmoid: zipLoop(a, gp, o) { y, g in g * y * (1 - y) }
        case let .hardSigmoid(alpha, beta):
            zipLoop(a, gp, o) { x, g in let t = alpha * x + beta; return (t > 0 && t < 1) ? g * alpha : 0 }
        case .hardSwish: zipLoop(a, gp, o) { x, g in x <= -3 ? 0 : (x < 3 ? g * (x / 3 + 0.5) : g) }
        case .tanh: zipLoop(a, gp, o) { y, g in g * (1 - y * y) }
        case .softplus: zipLoop(a, gp, o) { x, g in g * scalarSigmoid(x) }
        case .softsign: zipLoop(a, gp, o) { x, g in let d = 1 + Swift.abs(x); return g / (d * d) }
        case .mish:
            zipLoop(a, gp, o) { x, g in
                let t = Foundation.tanh(scalarSoftplus(x))
                return g * (t + x * scalarSigmoid(x) * (1 - t * t))
            }
        case let .thresholdedRelu(alpha): zipLoop(a, gp, o) { x, g in x > alpha ? g : 0 }
        case .gelu(tanhApproximation: false):
            zipLoop(a, gp, o) { x, g in
                let cdf = 0.5 * (1 + Foundation.erf(x * invSqrt2))
                let pdf = 0.3989422804014327 * Foundation.exp(-0.5 * x * x)
                return g * (cdf + x * pdf)
            }
        case .gelu(tanhApproximation: true):
            zipLoop(a, gp, o) { x, g in
                let inner = sqrt2OverPi * (x + 0.044715 * x * x * x)
                let t = Foundation.tanh(inner)
                let dInner = sqrt2OverPi * (1 + 3 * 0.044715 * x * x)
                return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * dInner)
            }
        case let .clip(lo, hi): zipLoop(a, gp, o) { x, g in (x > lo && x < hi) ? g : 0 }
        case let .shrink(lambda, _): zipLoop(a, gp, o) { x, g in (x < -lambda || x > lambda) ? g : 0 }
        }
    }
}
