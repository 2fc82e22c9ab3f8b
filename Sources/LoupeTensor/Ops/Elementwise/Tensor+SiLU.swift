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

    /// Vector-Jacobian product of SiLU: `grad · σ(x)·(1 + x·(1 − σ(x)))`, from the input x (the
    /// derivative of x·σ(x)). One pass where the exported `Mul(x, Sigmoid(x))` takes four (two
    /// products for the Mul, the sigmoid's derivative, the sum of x's two cotangents).
    public static func siluVJP(input x: Tensor, grad: Tensor, name: String = "SiLU") throws -> Tensor {
        guard x.shape == grad.shape else {
            throw TensorError.shapeMismatch(op: name, expected: "gradient shaped like the input", got: [grad.shape, x.shape])
        }
        let xv = try x.floats(name), g = try grad.floats(name)
        let out = xv.withUnsafeBufferPointer { a in
            g.withUnsafeBufferPointer { gp in
                arrayFilledBy(count: a.count) { (o: UnsafeMutableBufferPointer<Float>) in
                    if loupe_vmath_reference() != 0 {
                        // The scalar reference: the unfused graph's four steps, element by element.
                        for i in 0..<a.count {
                            let s = scalarSigmoid(a[i])
                            o[i] = gp[i] * s + (gp[i] * a[i]) * s * (1 - s)
                        }
                    } else {
                        loupe_vderiv(Int32(LOUPE_VD_SILU.rawValue), a.baseAddress, gp.baseAddress, o.baseAddress, a.count, 0, 0)
                    }
                }
            }
        }
        return Tensor(uncheckedShape: grad.shape, storage: .float32(out))
    }
}
