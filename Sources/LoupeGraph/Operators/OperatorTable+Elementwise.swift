import LoupeTensor

extension OperatorTable {
    /// Element-wise, broadcasting, comparison and cast operators. Attribute defaults follow the
    /// ONNX operator specification.
    static let elementwiseOperators: [String: OperatorFactory] = [
        // Binary arithmetic (Mod reads `fmod`).
        "Add": { try BinaryOperator(.add, $0) },
        "Sub": { try BinaryOperator(.sub, $0) },
        "Mul": { try BinaryOperator(.mul, $0) },
        "Div": { try BinaryOperator(.div, $0) },
        "Pow": { try BinaryOperator(.pow, $0) },
        "Mod": { try BinaryOperator(.mod, $0) },
        "PRelu": { try PReluOperator($0) },
        // Variadic.
        "Sum": { try VariadicOperator(.sum, $0) },
        "Mean": { try VariadicOperator(.mean, $0) },
        "Max": { try VariadicOperator(.max, $0) },
        "Min": { try VariadicOperator(.min, $0) },
        // Comparisons and logic.
        "Equal": { try CompareOperator(.equal, $0) },
        "Less": { try CompareOperator(.less, $0) },
        "LessOrEqual": { try CompareOperator(.lessOrEqual, $0) },
        "Greater": { try CompareOperator(.greater, $0) },
        "GreaterOrEqual": { try CompareOperator(.greaterOrEqual, $0) },
        "And": { try LogicOperator(.and, $0) },
        "Or": { try LogicOperator(.or, $0) },
        "Xor": { try LogicOperator(.xor, $0) },
        "Not": { try PredicateOperator(.not, $0) },
        "IsNaN": { try PredicateOperator(.isNaN, $0) },
        "IsInf": { try PredicateOperator.isInf($0) },
        "Where": { try WhereOperator($0) },
        // Unary math.
        "Neg": { try UnaryOperator(.neg, $0) },
        "Abs": { try UnaryOperator(.abs, $0) },
        "Exp": { try UnaryOperator(.exp, $0) },
        "Log": { try UnaryOperator(.log, $0) },
        "Sqrt": { try UnaryOperator(.sqrt, $0) },
        "Reciprocal": { try UnaryOperator(.reciprocal, $0) },
        "Floor": { try UnaryOperator(.floor, $0) },
        "Ceil": { try UnaryOperator(.ceil, $0) },
        "Round": { try UnaryOperator(.round, $0) },
        "Sign": { try UnaryOperator(.sign, $0) },
        "Sin": { try UnaryOperator(.sin, $0) },
        "Cos": { try UnaryOperator(.cos, $0) },
        "Tan": { try UnaryOperator(.tan, $0) },
        "Asin": { try UnaryOperator(.asin, $0) },
        "Acos": { try UnaryOperator(.acos, $0) },
        "Atan": { try UnaryOperator(.atan, $0) },
        "Sinh": { try UnaryOperator(.sinh, $0) },
        "Cosh": { try UnaryOperator(.cosh, $0) },
        "Asinh": { try UnaryOperator(.asinh, $0) },
        "Acosh": { try UnaryOperator(.acosh, $0) },
        "Atanh": { try UnaryOperator(.atanh, $0) },
        "Erf": { try UnaryOperator(.erf, $0) },
        // Activations.
        "Relu": { try UnaryOperator(.relu, $0) },
        "LeakyRelu": { try UnaryOperator(.leakyRelu(alpha: $0.float("alpha", default: 0.01)), $0) },
        "Elu": { try UnaryOperator(.elu(alpha: $0.float("alpha", default: 1)), $0) },
        "Selu": {
            try UnaryOperator(.selu(alpha: $0.float("alpha", default: 1.67326319217681884765625),
                                    gamma: $0.float("gamma", default: 1.05070102214813232421875)), $0)
        },
        "Celu": { ctx in
            let alpha = try ctx.float("alpha", default: 1)
            guard alpha != 0 else { throw ctx.bad("alpha", "must be non-zero") }
            return try UnaryOperator(.celu(alpha: alpha), ctx)
        },
        "Sigmoid": { try UnaryOperator(.sigmoid, $0) },
        "HardSigmoid": {
            try UnaryOperator(.hardSigmoid(alpha: $0.float("alpha", default: 0.2), beta: $0.float("beta", default: 0.5)), $0)
        },
        "HardSwish": { try UnaryOperator(.hardSwish, $0) },
        "Tanh": { try UnaryOperator(.tanh, $0) },
        "Softplus": { try UnaryOperator(.softplus, $0) },
        "Softsign": { try UnaryOperator(.softsign, $0) },
        "Mish": { try UnaryOperator(.mish, $0) },
        "ThresholdedRelu": { try UnaryOperator(.thresholdedRelu(alpha: $0.float("alpha", default: 1)), $0) },
        "Gelu": { try UnaryOperator.gelu($0) },
        "Clip": { try ClipOperator($0) },
        "QuantizeLinear": { try QuantizeLinearOperator($0) },
        "DequantizeLinear": { try DequantizeLinearOperator($0) },
        "Shrink": { try UnaryOperator(.shrink(lambda: $0.float("lambd", default: 0.5), bias: $0.float("bias", default: 0)), $0) },
        // Types, identity, broadcasting.
        "Cast": { try CastOperator($0) },
        "CastLike": { try CastOperator(like: $0) },
        "Identity": { try IdentityOperator($0) },
        "Dropout": { try IdentityOperator($0, dropout: true) },
        "Expand": { try ExpandOperator($0) },
    ]
}
