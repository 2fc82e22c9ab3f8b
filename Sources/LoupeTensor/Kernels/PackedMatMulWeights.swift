import CLoupeKernels

/// The constant right-hand operand of a MatMul (K × N, a Linear layer's weight as
/// `torch.onnx.export` writes it) or of a Gemm (also (N, K) with `transB`, a classifier head)
/// packed once into the GEMM micro-kernel's column panels, so a call packs only its activations.
/// Used by ``Kernels/matmul(_:_:transposeA:transposeB:packedB:)`` and the Gemm operator for the
/// very tensor it was made from (``matches(_:transposed:)``), on the GEMM path it was laid out for.
public final class PackedMatMulWeights: @unchecked Sendable {
    // Immutable after init; the C panels are only read (the transpose, made on first use, is
    // published by compare-and-swap on the C side).
    private let handle: OpaquePointer
    private let source: Tensor
    /// The panels hold `source`ᵀ: the weight was given as (N, K).
    public let transposed: Bool

    /// Packs a float32 matrix of shape (K, N), or (N, K) with `transposed` (its transpose is the
    /// operand). Throws for another rank or dtype, an empty matrix, or when memory for the panels
    /// cannot be had.
    public init(weight: Tensor, transposed: Bool = false) throws {
        guard weight.rank == 2, weight.count > 0 else {
            throw TensorError.shapeMismatch(op: "MatMul", expected: "a non-empty 2-D weight (K, N)", got: [weight.shape])
        }
        let (k, n) = transposed ? (weight.shape[1], weight.shape[0]) : (weight.shape[0], weight.shape[1])
        let ld = weight.shape[1]
        let made = try weight.withFloats("MatMul") { w -> OpaquePointer? in
            guard let w0 = w.baseAddress else { return nil }
            return loupe_packed_b_create(transposed ? 1 : 0, k, n, w0, ld)
        }
        guard let made else { throw TensorError.invalidArgument(op: "MatMul", message: "out of memory packing a \(k)×\(n) weight") }
        handle = made
        source = weight
        self.transposed = transposed
    }

    deinit { loupe_packed_b_destroy(handle) }

    /// True when `weight` is the very tensor these panels were packed from (same storage), used
    /// with the same transposition, and the GEMM path in force still has the panel width they
    /// were laid out for.
    public func matches(_ weight: Tensor, transposed: Bool = false) -> Bool {
        guard transposed == self.transposed, weight.shape == source.shape, loupe_packed_b_matches(handle) != 0 else { return false }
        let a = try? weight.withFloats { $0.baseAddress }, b = try? source.withFloats { $0.baseAddress }
        return a != nil && a == b
    }

    /// C (m × N, row stride `ldc`) = op(A)·B for A (m × K, or K × m with `transposeA`, row stride
    /// `lda`), over both cores, plus `columnBias[j]` (N floats) in every row when given — a
    /// Linear layer's bias, added while each tile of C is in cache. False, with nothing written,
    /// when these panels do not suit the GEMM path in force.
    public func multiply(transposeA: Bool, m: Int, _ a: UnsafePointer<Float>, lda: Int,
                         into c: UnsafeMutablePointer<Float>, ldc: Int, columnBias: UnsafePointer<Float>? = nil) -> Bool {
        loupe_sgemm_packed_b(transposeA ? 1 : 0, m, a, lda, handle, c, ldc, columnBias, 1) != 0
    }

    /// C (m × K, row stride `ldc`) = G·Bᵀ for G (m × N, row stride `ldg`), with B the operand
    /// these panels hold: the input gradient of a product with this weight. Bᵀ is packed on first
    /// use and kept (a backward pass otherwise re-packs the whole weight on every call). False,
    /// with nothing written, when the panels do not suit the GEMM path in force or memory is short.
    public func multiplyByTranspose(m: Int, _ g: UnsafePointer<Float>, ldg: Int,
                                    into c: UnsafeMutablePointer<Float>, ldc: Int) -> Bool {
        guard let t = (try? source.withFloats { w in loupe_packed_b_transposed(handle, w.baseAddress, source.shape[1]) }) ?? nil
        else { return false }
        return loupe_sgemm_packed_b(0, m, g, ldg, t, c, ldc, nil, 1) != 0
    }
}
