import LoupeTensor

/// ONNX `Shape`: the input's dimensions as a 1-D int64 tensor; from opset 15 the optional
/// `start`/`end` attributes pick a sub-range (negative counts from the end, clamped to the rank).
struct ShapeOperator: NonDifferentiableOperator {
    let start: Int
    let end: Int?
    let label: String

    init(_ ctx: OperatorContext) throws {
        try ctx.expectInputs(1)
        start = try ctx.int("start", default: 0)
        end = ctx.has("end") ? try ctx.int("end") : nil
        label = ctx.label
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let s = try ShapeOps.input(inputs, 0, label, "data").shape
        let r = s.count
        func clamp(_ v: Int) -> Int { min(max(v < 0 ? v + r : v, 0), r) }
        let a = clamp(start), b = clamp(end ?? r)
        return [Tensor(ints: a < b ? s[a ..< b].map { Int64($0) } : [])]
    }
}

/// ONNX `Size`: the element count as an int64 scalar.
struct SizeOperator: NonDifferentiableOperator {
    let label: String

    init(_ ctx: OperatorContext) throws {
        try ctx.expectInputs(1)
        label = ctx.label
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try ShapeOps.input(inputs, 0, label, "data")
        return [try Tensor(shape: [], ints: [Int64(x.count)])]
    }
}
