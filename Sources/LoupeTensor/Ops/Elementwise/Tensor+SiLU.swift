import CLoupeKernels

extension Tensor {
    /// x·σ(x) (SiLU / Swish, Elfwing et al. 2018) in one pass: what an exported
    /// `Mul(x, Sigmoid(x))` computes, without storing σ(x). Float32 only.
    public func silu(name: String = "SiLU") throws -> Tensor {
        guard case let .float32(x) = storage else {
            throw TensorError.dtypeMismatch(op: name, expected: "float32", got: dtype)
        }
        if loupe_vmath_reference() != 0 {
            // The scalar reference path: the same two steps as the unfused graph.
            return Tensor(uncheckedShape: shape, storage: .float32(zip(x, Tensor.floatUnaryScalar(.sigmoid, x)).map { $0 * $1 }))
        }
        let y = x.withUnsafeBufferPointer { a in
            arrayFilledBy(count: a.count) { (o: UnsafeMutableBufferPointer<Float>) in
                loupe_vunary(Int32(LOUPE_VU_SILU.rawValue), a.baseAddress, o.baseAddress, a.count, 0, 0)
            }
        }
        return Tensor(uncheckedShape: shape, storage: .float32(y))
    }
}
