import LoupeTensor

/// Multiplies every element by `s` (returns `t` unchanged when s == 1).
func kernelScaled(_ t: Tensor, _ s: Float, _ label: String) throws -> Tensor {
    if s == 1 { return t }
    var v = try t.floats(label)
    for i in v.indices { v[i] *= s }
    return try Tensor(shape: t.shape, floats: v)
}

/// ONNX MatMul: NumPy `matmul` semantics (1-D operands promoted and squeezed back, batch
/// dimensions broadcast). VJP wrt both operands, summed over broadcast batch dimensions.
struct MatMulOperator: Operator {
    let label: String
    /// A constant 2-D right operand (a Linear layer's weight) packed at load time.
    let packed: PackedMatMulWeights?

    init(_ ctx: OperatorContext) throws {
        try ctx.expectInputs(2)
        label = ctx.label
        let w = ctx.constantInputs.count > 1 ? ctx.constantInputs[1] : nil
        packed = w.flatMap { $0.rank == 2 && $0.dtype == .float32 && $0.count >= 1024 ? try? PackedMatMulWeights(weight: $0) : nil }
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        [try Kernels.matmul(try kernelInput(inputs, 0, label), try kernelInput(inputs, 1, label), packedB: packed)]
    }

    /// The product plus `bias` (its last dimension's values) in every row: this MatMul and the
    /// Add of a Linear layer's bias after it, as one step (``StepFusion/Kind/biasIntoProducer``).
    func forwardAddingBias(_ inputs: [Tensor?], bias: Tensor) throws -> [Tensor] {
        [try Kernels.matmul(try kernelInput(inputs, 0, label), try kernelInput(inputs, 1, label), packedB: packed,
                            columnBias: bias)]
    }

    var backwardNeeds: BackwardNeeds { .allInputs(2) }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        let a = try ctx.input(0, label), b = try ctx.input(1, label)
        guard let gy = ctx.gradOutputs.first ?? nil else { return [nil, nil] }
        let a2 = a.rank == 1 ? try a.reshaped([1, a.count]) : a
        let b2 = b.rank == 1 ? try b.reshaped([b.count, 1]) : b
        let batch = try Shape.broadcast(Array(a2.shape.dropLast(2)), Array(b2.shape.dropLast(2)), op: label)
        let gy2 = try gy.reshaped(batch + [a2.shape[a2.rank - 2], b2.shape[b2.rank - 1]])
        var grads: [Tensor?] = [nil, nil]
        if ctx.wantInput[0] {
            if let packed, b.rank == 2, Array(a2.shape.dropLast(2)) == batch, packed.matches(b),
               let g = try Self.gradientThroughPacked(gy2, packed: packed, k: b.shape[0]) {
                grads[0] = try g.reshaped(a.shape)
            } else {
                let g = try Kernels.matmul(gy2, b2, transposeB: true)
                grads[0] = try Kernels.sumToShape(g, a2.shape).reshaped(a.shape)
            }
        }
        if ctx.wantInput.count > 1 && ctx.wantInput[1] {
            if b2.rank == 2 && a2.rank > 2 && b2.count > 0 {
                // A weight shared by every batch entry (a Linear layer): its gradient is one GEMM
                // over all rows, Aᵀ(K × rows)·G(rows × N), instead of one K × N product per batch
                // entry followed by a sum over them.
                let k = a2.shape[a2.rank - 1], n = b2.shape[1]
                let g = try Kernels.matmul(a2.reshaped([a2.count / max(k, 1), k]), gy2.reshaped([gy2.count / max(n, 1), n]),
                                           transposeA: true)
                grads[1] = try g.reshaped(b.shape)
            } else {
                let g = try Kernels.matmul(a2, gy2, transposeA: true)
                grads[1] = try Kernels.sumToShape(g, b2.shape).reshaped(b.shape)
            }
        }
        return grads
    }

    /// dA = dY·Bᵀ (rows × k) through the weight's packed transpose, for a dY of `rows` × n
    /// (contiguous) — nil when the panels do not suit the GEMM path in force (the caller then
    /// takes the plain product).
    static func gradientThroughPacked(_ gy: Tensor, packed: PackedMatMulWeights, k: Int) throws -> Tensor? {
        let n = gy.shape[gy.rank - 1], rows = gy.count / max(n, 1)
        // One row is a matrix-vector product: the plain path reads the weight in place.
        guard rows > 1, n > 0, k > 0 else { return nil }
        let g = try gy.floats("MatMul backward")
        var ok = false
        let out = [Float](unsafeUninitializedCapacity: rows * k) { o, count in
            count = rows * k
            g.withUnsafeBufferPointer { gp in
                guard let g0 = gp.baseAddress, let o0 = o.baseAddress else { return }
                ok = packed.multiplyByTranspose(m: rows, g0, ldg: n, into: o0, ldc: k)
            }
        }
        guard ok else { return nil }
        return try Tensor(shape: Array(gy.shape.dropLast()) + [k], floats: out)
    }
}

/// ONNX Gemm: Y = alpha·op(A)·op(B) + beta·C with A, B 2-D, transA/transB, and C (optional
/// from opset 11) unidirectionally broadcast to (M, N). VJP wrt A, B and C.
struct GemmOperator: Operator {
    let alpha: Float, beta: Float
    let transA: Bool, transB: Bool
    let label: String
    /// A constant B (a classifier head's weight, usually (N, K) with transB) packed at load time.
    let packed: PackedMatMulWeights?

    init(_ ctx: OperatorContext) throws {
        try ctx.expectInputs(ctx.opset >= 11 ? 2 : 3, 3)
        label = ctx.label
        alpha = try ctx.float("alpha", default: 1)
        beta = try ctx.float("beta", default: 1)
        transA = try ctx.int("transA", default: 0) != 0
        transB = try ctx.int("transB", default: 0) != 0
        let w = ctx.constantInputs.count > 1 ? ctx.constantInputs[1] : nil
        let tB = transB
        packed = w.flatMap { $0.rank == 2 && $0.dtype == .float32 && $0.count >= 1024 ? try? PackedMatMulWeights(weight: $0, transposed: tB) : nil }
    }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let a = try kernelInput(inputs, 0, label), b = try kernelInput(inputs, 1, label)
        let c = inputs.count > 2 ? inputs[2] : nil
        guard a.rank == 2, b.rank == 2 else {
            throw GraphError.invalid("\(label): A and B must be 2-D, got \(a.shape) and \(b.shape)")
        }
        let m = transA ? a.shape[1] : a.shape[0], k = transA ? a.shape[0] : a.shape[1]
        let kb = transB ? b.shape[1] : b.shape[0], n = transB ? b.shape[0] : b.shape[1]
        guard k == kb else {
            throw GraphError.invalid("\(label): inner dimensions differ: op(A) is \(m)x\(k), op(B) is \(kb)x\(n)")
        }
        var betaEff: Float = 0
        var rowStride = 0, colStride = 0
        var cv: [Float] = []
        if let c, beta != 0 {
            let cs = try Shape.broadcast(c.shape, [m, n], op: label)
            guard cs == [m, n] else { throw GraphError.invalid("\(label): C \(c.shape) does not broadcast to (\(m), \(n))") }
            cv = try c.floats(label)
            rowStride = c.rank == 2 && c.shape[0] == m ? (c.shape[1] == n ? n : 1) : 0
            colStride = c.rank >= 1 && c.shape[c.rank - 1] == n && n != 1 ? 1 : 0
            betaEff = 1
        }
        let A = try a.floats(label), B = try b.floats(label)
        let total = m * n
        let y = [Float](unsafeUninitializedCapacity: total) { pc, initialized in
            initialized = total
            guard let c0 = pc.baseAddress, total > 0 else { return }
            if betaEff != 0 {
                // beta·C broadcast into Y, a row at a time (C is a bias row, a column or full).
                cv.withUnsafeBufferPointer { pcv in
                    let src = pcv.baseAddress!
                    for i in 0 ..< m {
                        let row = c0 + i * n, crow = src + i * rowStride
                        if colStride == 1 {
                            if beta == 1 { row.initialize(from: crow, count: n) }
                            else { for j in 0 ..< n { row[j] = beta * crow[j] } }
                        } else {
                            row.initialize(repeating: beta * crow[0], count: n)
                        }
                    }
                }
            }
            A.withUnsafeBufferPointer { pa in B.withUnsafeBufferPointer { pb in
                guard let a0 = pa.baseAddress, let b0 = pb.baseAddress, k > 0 else {
                    // k == 0: op(A)·op(B) is all zeros, Y is beta·C (already written) or zero.
                    if betaEff == 0 { c0.initialize(repeating: 0, count: total) }
                    return
                }
                // Several rows against a pre-packed constant B: only A is packed per call. (One row
                // takes the GEMV path below, which reads B in place.)
                if m > 1, let packed, packed.matches(b, transposed: transB),
                   prepackedProduct(a0, lda: a.shape[1], m: m, n: n, packed: packed, c0, accumulate: betaEff != 0) {
                    return
                }
                Kernels.gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a0, lda: a.shape[1],
                             b: b0, ldb: b.shape[1], beta: betaEff, c: c0, ldc: n)
            } }
        }
        return [try Tensor(shape: [m, n], floats: y)]
    }

    /// Y (m × n, holding beta·C when `accumulate`) = alpha·op(A)·B + Y through the pre-packed B.
    /// False (nothing written) when the kernel declines, e.g. the GEMM path changed since packing.
    private func prepackedProduct(_ a0: UnsafePointer<Float>, lda: Int, m: Int, n: Int, packed: PackedMatMulWeights,
                                  _ c0: UnsafeMutablePointer<Float>, accumulate: Bool) -> Bool {
        let total = m * n
        guard accumulate || alpha != 1 else {
            return packed.multiply(transposeA: transA, m: m, a0, lda: lda, into: c0, ldc: n)
        }
        let product = UnsafeMutablePointer<Float>.allocate(capacity: total)
        defer { product.deallocate() }
        guard packed.multiply(transposeA: transA, m: m, a0, lda: lda, into: product, ldc: n) else { return false }
        if accumulate {
            for i in 0..<total { c0[i] += alpha * product[i] }
        } else {
            for i in 0..<total { c0[i] = alpha * product[i] }
        }
        return true
    }

    var backwardNeeds: BackwardNeeds { .allInputs(2) }

    func vjp(_ ctx: VJPContext) throws -> [Tensor?] {
        let a = try ctx.input(0, label), b = try ctx.input(1, label)
        var grads: [Tensor?] = Array(repeating: nil, count: ctx.inputs.count)
        guard let gy = ctx.gradOutputs.first ?? nil else { return grads }
        if ctx.wantInput[0] {
            let g: Tensor
            if !transA, let packed, packed.matches(b, transposed: transB),
               let viaPacked = try MatMulOperator.gradientThroughPacked(gy, packed: packed, k: a.shape[1]) {
                g = viaPacked
            } else {
                g = transA ? try Kernels.matmul(b, gy, transposeA: transB, transposeB: true)
                           : try Kernels.matmul(gy, b, transposeB: !transB)
            }
            grads[0] = try kernelScaled(g, alpha, label)
        }
        if ctx.wantInput.count > 1 && ctx.wantInput[1] {
            let g = transB ? try Kernels.matmul(gy, a, transposeA: true, transposeB: transA)
                           : try Kernels.matmul(a, gy, transposeA: !transA)
            grads[1] = try kernelScaled(g, alpha, label)
        }
        if ctx.wantInput.count > 2 && ctx.wantInput[2], let cs = ctx.inputShapes.count > 2 ? ctx.inputShapes[2] : nil {
            grads[2] = try kernelScaled(try Kernels.sumToShape(gy, cs), beta, label)
        }
        return grads
    }
}
