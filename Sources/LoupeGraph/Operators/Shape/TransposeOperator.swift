import LoupeTensor

/// ONNX `Transpose`: output axis d is input axis `perm[d]`; `perm` defaults to reversing the axes.
/// VJP: the cotangent permuted by the inverse permutation.
struct TransposeOperator: Operator {
    let perm: [Int]?
    let label: String

    init(_ ctx: OperatorContext) throws {
        try ctx.expectInputs(1)
        perm = ctx.has("perm") ? try ctx.ints("perm") : nil
        if let perm, Set(perm) != Set(0 ..< perm.count) || perm.count != Set(perm).count {
            throw ctx.bad("perm", "must be a permutation of 0..<rank, got \(perm)")
        }
        label = ctx.label
    }

    private func permutation(rank: Int) throws -> [Int] {
        let p = perm ?? Array((0 ..< rank).reversed())
        guard p.count == rank else {
            throw TensorError.invalidArgument(op: label, message: "perm \(p) does not match input rank \(rank)")
        }
        return p
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try ShapeOps.input(inputs, 0, label, "data")
        return [try x.permuted(permutation(rank: x.rank))]
    }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        guard let g = ctx.gradOutputs.first ?? nil else { return ShapeOps.firstOnly(nil, ctx) }
        return ShapeOps.firstOnly(try g.permuted(Tensor.inversePermutation(permutation(rank: g.rank))), ctx)
    }
}
