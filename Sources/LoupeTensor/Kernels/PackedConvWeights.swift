import CLoupeKernels

/// Convolution weights (M, C/group, kH, kW) packed once into the GEMM micro-kernel's row panels,
/// one packed matrix (M/group × C/group·kH·kW) per group.
///
/// A model packs each constant weight when it loads; ``Kernels/conv2d(_:weight:bias:geometry:packed:relu:)``
/// then skips the per-call packing of A that a plain GEMM does. The packed object keeps the
/// source tensor alive and is used only for that very tensor (``matches(_:)``), so a weight
/// replaced at run time can never be paired with stale panels.
public final class PackedConvWeights: @unchecked Sendable {
    // Immutable after init; the C panels are only read.
    private let handles: [OpaquePointer]
    private let source: Tensor
    /// Weight shape (M, C/group, kH, kW).
    public let shape: [Int]
    /// Convolution groups.
    public let groups: Int

    /// Packs a float32 weight of shape (M, C/group, kH, kW). Throws for another rank or dtype,
    /// a group count that does not divide M, or when memory for the panels cannot be had.
    public init(weight: Tensor, groups: Int) throws {
        guard weight.rank == 4, groups >= 1, weight.shape[0] % groups == 0 else {
            throw TensorError.shapeMismatch(op: "Conv", expected: "weight (M, C/group, kH, kW) with M divisible by group \(groups)",
                                            got: [weight.shape])
        }
        let mg = weight.shape[0] / groups, k = weight.shape[1] * weight.shape[2] * weight.shape[3]
        var made: [OpaquePointer] = []
        try weight.withFloats("Conv") { w in
            guard let w0 = w.baseAddress else { return }
            for g in 0..<groups {
                guard let h = loupe_packed_a_create(0, mg, k, w0 + g * mg * k, k) else {
                    for h in made { loupe_packed_a_destroy(h) }
                    throw TensorError.invalidArgument(op: "Conv", message: "out of memory packing a \(mg)×\(k) weight")
                }
                made.append(h)
            }
        }
        guard made.count == groups else {
            throw TensorError.invalidArgument(op: "Conv", message: "cannot pack an empty weight \(weight.shape)")
        }
        handles = made
        source = weight
        shape = weight.shape
        self.groups = groups
    }

    deinit {
        for h in handles { loupe_packed_a_destroy(h) }
    }

    /// True when `weight` is the very tensor these panels were packed from (same storage) and the
    /// GEMM path in force still has the tile shape they were laid out for.
    public func matches(_ weight: Tensor, groups: Int) -> Bool {
        guard groups == self.groups, weight.shape == shape, handles.allSatisfy({ loupe_packed_a_matches($0) != 0 }) else {
            return false
        }
        let a = try? weight.withFloats { $0.baseAddress }, b = try? source.withFloats { $0.baseAddress }
        return a != nil && a == b
    }

    /// The packed matrix of one group.
    func handle(group g: Int) -> OpaquePointer { handles[g] }

    /// The transposed matrix of one group ((C/group·kH·kW) × M/group), packed on first use, for
    /// the input gradient; nil when it cannot be had for the GEMM path in force.
    func transposedHandle(group g: Int) -> OpaquePointer? { loupe_packed_a_transpose(handles[g]) }

    /// The flipped, channel-transposed kernel of one group (C/group × M/group·taps), packed on
    /// first use: a stride-1 convolution's input gradient is a convolution with it.
    func adjointHandle(group g: Int, taps: Int) -> OpaquePointer? { loupe_packed_a_conv_adjoint(handles[g], taps) }

    /// The Winograd F(tile×tile, 3×3) form (tile 2 or 4) of an ungrouped 3×3 weight (of its
    /// adjoint, the flipped and channel-transposed kernel, when `adjoint`), made on first use and
    /// kept; nil for other shapes or when it cannot be had for the GEMM path in force.
    func winogradHandle(adjoint: Bool, tile: Int = 4) -> OpaquePointer? {
        guard groups == 1, shape[2] == 3, shape[3] == 3, tile == 4 || tile == 2 else { return nil }
        return loupe_packed_a_winograd(handles[0], Int32(adjoint ? (tile == 2 ? 3 : 1) : (tile == 2 ? 2 : 0)))
    }
}
