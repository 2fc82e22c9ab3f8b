import LoupeTensor

/// ONNX PRelu: `x < 0 ? slope·x : x`, with `slope` broadcast to `x`'s shape (unidirectional;
/// the output always has `x`'s shape). Backward follows PyTorch: the `x` branch for `x > 0`.
///
/// Before opset 7 a 1-D slope of length C is per channel (axis 1), not broadcast from the right.
struct PReluOperator: Operator {
    let label: String
    let legacyChannelSlope: Bool

    init(_ ctx: OperatorContext) throws {
        try ctx.expectInputs(2)
        label = ctx.label
        legacyChannelSlope = ctx.opset < 7
    }

    /// The slope as it broadcasts against `x` (legacy per-channel slopes get trailing 1s).
    func slope(_ slope: Tensor, for x: Tensor) throws -> Tensor {
        guard legacyChannelSlope, slope.rank == 1, x.rank > 2, slope.count == x.shape[1] else { return slope }
        return try slope.reshaped([slope.count] + Array(repeating: 1, count: x.rank - 2))
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try elementwiseOperand(inputs, 0, label)
        let slope = try self.slope(elementwiseOperand(inputs, 1, label), for: x)
        try checkUnidirectional(x.shape, slope.shape)
        let negative = try Tensor.compare(.less, x, Tensor(scalar: 0), name: label)
        return [try Tensor.select(negative, try Tensor.binary(.mul, x, slope, name: label), x, name: label)]
    }

    func checkUnidirectional(_ x: [Int], _ slope: [Int]) throws {
        guard try Shape.broadcast(x, slope, op: label) == x else {
            throw TensorError.shapeMismatch(op: label, expected: "slope broadcastable to X's shape \(x)", got: [x, slope])
        }
    }

    var backwardNeeds: BackwardNeeds { .allInputs(2) }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        guard let g = elementwiseCotangent(ctx) else { return [nil, nil] }
        let x = try ctx.input(0, label), given = try ctx.input(1, label)
        let slope = try self.slope(given, for: x)
        let positive = try Tensor.compare(.greater, x, Tensor(scalar: 0), name: label)
        var gx: Tensor?, gs: Tensor?
        if gradientWanted(ctx, 0) {
            gx = try Tensor.select(positive, g, g * slope.broadcast(to: x.shape, op: label), name: label)
        }
        if gradientWanted(ctx, 1) {
            gs = try Tensor.select(positive, Tensor(scalar: 0), g * x, name: label).sumToShape(slope.shape, op: label)
                .reshaped(given.shape)
        }
        return [gx, gs]
    }
}
