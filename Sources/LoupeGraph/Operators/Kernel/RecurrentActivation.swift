import Foundation

/// An activation of the ONNX recurrent operators (`activations` attribute of RNN, GRU, LSTM),
/// with the `activation_alpha` / `activation_beta` values it takes (defaults of the
/// same-named ONNX operators). Applied element-wise to gate pre-activations.
struct RecurrentActivation: Sendable, Equatable {
    enum Kind: String, Sendable { case sigmoid, tanh, relu, hardSigmoid, leakyRelu, thresholdedRelu, affine, scaledTanh, elu, softsign, softplus }
    let kind: Kind
    let alpha: Float
    let beta: Float

    static let sigmoid = RecurrentActivation(kind: .sigmoid, alpha: 0, beta: 0)
    static let tanh = RecurrentActivation(kind: .tanh, alpha: 0, beta: 0)

    /// Parses `names` (case-insensitive ONNX names), taking alphas and betas in order for the
    /// activations that use them (onnxruntime's reading of the specification).
    static func parse(_ names: [String], alphas: [Float], betas: [Float], label: String) throws -> [RecurrentActivation] {
        var a = alphas[...], b = betas[...]
        return try names.map { name in
            func next(_ list: inout ArraySlice<Float>, _ d: Float) -> Float { list.isEmpty ? d : list.removeFirst() }
            switch name.lowercased() {
            case "sigmoid": return .sigmoid
            case "tanh": return .tanh
            case "relu": return RecurrentActivation(kind: .relu, alpha: 0, beta: 0)
            case "hardsigmoid": return RecurrentActivation(kind: .hardSigmoid, alpha: next(&a, 0.2), beta: next(&b, 0.5))
            case "leakyrelu": return RecurrentActivation(kind: .leakyRelu, alpha: next(&a, 0.01), beta: 0)
            case "thresholdedrelu": return RecurrentActivation(kind: .thresholdedRelu, alpha: next(&a, 1), beta: 0)
            case "affine": return RecurrentActivation(kind: .affine, alpha: next(&a, 1), beta: next(&b, 0))
            case "scaledtanh": return RecurrentActivation(kind: .scaledTanh, alpha: next(&a, 1), beta: next(&b, 1))
            case "elu": return RecurrentActivation(kind: .elu, alpha: next(&a, 1), beta: 0)
            case "softsign": return RecurrentActivation(kind: .softsign, alpha: 0, beta: 0)
            case "softplus": return RecurrentActivation(kind: .softplus, alpha: 0, beta: 0)
            default:
                throw GraphError.badAttribute(node: label, attribute: "activations",
                                              expected: "names among Sigmoid, Tanh, Relu, HardSigmoid, LeakyRelu, ThresholdedRelu, Affine, ScaledTanh, Elu, Softsign, Softplus; got '\(name)'")
            }
        }
    }

    func callAsFunction(_ x: Float) -> Float {
        switch kind {
        case .sigmoid: return 1 / (1 + Foundation.exp(-x))
        case .tanh: return Foundation.tanh(x)
        case .relu: return max(x, 0)
        case .hardSigmoid: return min(max(alpha * x + beta, 0), 1)
        case .leakyRelu: return x >= 0 ? x : alpha * x
        case .thresholdedRelu: return x > alpha ? x : 0
        case .affine: return alpha * x + beta
        case .scaledTanh: return alpha * Foundation.tanh(beta * x)
        case .elu: return x >= 0 ? x : alpha * (Foundation.exp(x) - 1)
        case .softsign: return x / (1 + abs(x))
        case .softplus: return Foundation.log1p(Foundation.exp(-abs(x))) + max(x, 0)
        }
    }

    /// d activation / dx at `x`, where `y` is the activation's value there.
    func derivative(_ x: Float, _ y: Float) -> Float {
        switch kind {
        case .sigmoid: return y * (1 - y)
        case .tanh: return 1 - y * y
        case .relu: return x > 0 ? 1 : 0
        case .hardSigmoid:
            let v = alpha * x + beta
            return v > 0 && v < 1 ? alpha : 0
        case .leakyRelu: return x >= 0 ? 1 : alpha
        case .thresholdedRelu: return x > alpha ? 1 : 0
        case .affine: return alpha
        case .scaledTanh:
            let t = Foundation.tanh(beta * x)
            return alpha * beta * (1 - t * t)
        case .elu: return x >= 0 ? 1 : y + alpha
        case .softsign:
            let d = 1 + abs(x)
            return 1 / (d * d)
        case .softplus: return 1 / (1 + Foundation.exp(-x))
        }
    }
}
